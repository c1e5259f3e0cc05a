//! Pipeline JSON schema (`/api/v1/pipelines/schemas`) → [`ParamSpec`]s.
//!
//! Scope does not validate its data channel, so the controller clamps against the loaded
//! pipeline's own schema. This is a pure function over the reply; it understands what Pydantic
//! emits (`anyOf` with `null`, `$ref` into `$defs`, `exclusiveMinimum`, enums).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::core::params::{ParamKind, ParamSpec, builtin_specs};

/// Keys that are load-time settings, not runtime parameters (never sent on the data channel).
const LOAD_ONLY: &[&str] = &["height", "width", "seed", "vace_enabled", "quantization"];

/// The schema reply did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// No `pipelines` object.
    #[error("schemas reply has no `pipelines` object")]
    NoPipelines,
    /// A loaded pipeline is missing from the reply.
    #[error("schemas reply does not describe pipeline `{0}`")]
    Missing(String),
}

/// Maps the schemas of `pipeline_ids` to specs (later pipelines override earlier ones).
pub fn specs_from_schemas(
    reply: &Value,
    pipeline_ids: &[String],
) -> Result<Vec<ParamSpec>, SchemaError> {
    let pipelines = reply
        .get("pipelines")
        .and_then(Value::as_object)
        .ok_or(SchemaError::NoPipelines)?;
    let builtin = builtin_specs();
    let mut out: BTreeMap<String, ParamSpec> = BTreeMap::new();
    for id in pipeline_ids {
        let p = pipelines
            .get(id)
            .ok_or_else(|| SchemaError::Missing(id.clone()))?;
        let schema = p.get("config_schema").unwrap_or(&Value::Null);
        let defs = schema
            .get("$defs")
            .or_else(|| schema.get("definitions"))
            .cloned()
            .unwrap_or(Value::Null);
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (key, prop) in props {
            if LOAD_ONLY.contains(&key.as_str()) {
                continue;
            }
            let kind = kind_of(key, resolve(prop, &defs), &defs, builtin.get(key));
            out.insert(
                key.clone(),
                ParamSpec {
                    key: key.clone(),
                    kind,
                    one_shot: builtin.get(key).is_some_and(|s| s.one_shot),
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

/// Follows a local `$ref` and picks the first non-null branch of `anyOf`/`oneOf`.
fn resolve<'a>(prop: &'a Value, defs: &'a Value) -> &'a Value {
    let mut p = prop;
    for _ in 0..8 {
        if let Some(r) = p.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or("");
            match defs.get(name) {
                Some(d) => {
                    p = d;
                    continue;
                }
                None => return p,
            }
        }
        if let Some(alts) = p
            .get("anyOf")
            .or_else(|| p.get("oneOf"))
            .and_then(Value::as_array)
        {
            match alts
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            {
                Some(a) => {
                    p = a;
                    continue;
                }
                None => return p,
            }
        }
        if let Some(all) = p.get("allOf").and_then(Value::as_array) {
            if let Some(a) = all.first() {
                p = a;
                continue;
            }
        }
        break;
    }
    p
}

fn num(p: &Value, key: &str) -> Option<f64> {
    p.get(key).and_then(Value::as_f64).filter(|v| v.is_finite())
}

fn bounds(p: &Value) -> (Option<f64>, Option<f64>, bool, bool) {
    let min = num(p, "minimum");
    let max = num(p, "maximum");
    let xmin = num(p, "exclusiveMinimum");
    let xmax = num(p, "exclusiveMaximum");
    (
        min.or(xmin),
        max.or(xmax),
        min.is_none() && xmin.is_some(),
        max.is_none() && xmax.is_some(),
    )
}

fn builtin_range(b: Option<&ParamSpec>) -> Option<(f64, f64)> {
    b.and_then(ParamSpec::range)
}

fn kind_of(key: &str, p: &Value, defs: &Value, builtin: Option<&ParamSpec>) -> ParamKind {
    let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
    if let Some(opts) = p.get("enum").and_then(Value::as_array) {
        let options: Vec<String> = opts
            .iter()
            .filter_map(|o| o.as_str().map(str::to_string))
            .collect();
        if !options.is_empty() && options.len() == opts.len() {
            return ParamKind::Choice { options };
        }
    }
    let (lo, hi, xlo, xhi) = bounds(p);
    let fallback = builtin_range(builtin);
    match ty {
        "number" => {
            let min = lo.or(fallback.map(|r| r.0)).unwrap_or(f64::MIN);
            let max = hi.or(fallback.map(|r| r.1)).unwrap_or(f64::MAX);
            ParamKind::Float { min, max }
        }
        "integer" => {
            let min = lo
                .map(|v| {
                    if xlo {
                        v.floor() as i64 + 1
                    } else {
                        v.ceil() as i64
                    }
                })
                .or(fallback.map(|r| r.0 as i64))
                .unwrap_or(i64::MIN);
            let max = hi
                .map(|v| {
                    if xhi {
                        v.ceil() as i64 - 1
                    } else {
                        v.floor() as i64
                    }
                })
                .or(fallback.map(|r| r.1 as i64))
                .unwrap_or(i64::MAX);
            ParamKind::Int { min, max }
        }
        "boolean" => ParamKind::Bool,
        "string" => ParamKind::Text,
        "array" => {
            let items = resolve(p.get("items").unwrap_or(&Value::Null), defs);
            let item_ty = items.get("type").and_then(Value::as_str);
            let descending = key == "denoising_step_list"
                || matches!(
                    builtin.map(|b| &b.kind),
                    Some(ParamKind::DescendingInts { .. })
                );
            if item_ty == Some("integer") && descending {
                let (lo, hi, _, _) = bounds(items);
                let (bmin, bmax) = match builtin.map(|b| &b.kind) {
                    Some(ParamKind::DescendingInts { min, max }) => (*min, *max),
                    _ => (0, 1000),
                };
                ParamKind::DescendingInts {
                    min: lo.map(|v| v as i64).unwrap_or(bmin),
                    max: hi.map(|v| v as i64).unwrap_or(bmax),
                }
            } else {
                ParamKind::Json
            }
        }
        _ => builtin.map(|b| b.kind.clone()).unwrap_or(ParamKind::Json),
    }
}

/// The pipeline ids the server offers (the keys of the schemas reply's `pipelines`).
pub(crate) fn known_pipelines(reply: &Value) -> Option<Vec<String>> {
    let map = reply.get("pipelines")?.as_object()?;
    Some(map.keys().cloned().collect())
}

/// Checks `ids` against the server's list before a load: the first unknown id is named with the
/// nearest known one ("did you mean"), since a typo would otherwise fail only in the server's log.
pub(crate) fn check_pipeline_ids(ids: &[String], known: &[String]) -> Result<(), String> {
    let Some(bad) = ids.iter().find(|id| !known.contains(id)) else {
        return Ok(());
    };
    let mut list = known.to_vec();
    list.sort();
    let hint = match suggest(bad, known) {
        Some(s) => format!("did you mean `{s}`? "),
        None => String::new(),
    };
    Err(format!(
        "pipeline `{bad}` is not on this server: {hint}it offers {}",
        list.join(", ")
    ))
}

/// The known id closest to `id`: a prefix either way, or within a third of its length in edits.
pub(crate) fn suggest<'a>(id: &str, known: &'a [String]) -> Option<&'a str> {
    let id_l = id.to_lowercase();
    known
        .iter()
        .map(|k| {
            let kl = k.to_lowercase();
            let d = if kl.starts_with(&id_l) || id_l.starts_with(&kl) {
                0
            } else {
                edit_distance(&id_l, &kl)
            };
            (d, k)
        })
        .filter(|(d, k)| *d <= (id.chars().count().max(k.chars().count()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over chars (ids are short; two rows suffice).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply() -> Value {
        json!({"pipelines": {"longlive": {
        "supports_prompts": true,
        "config_schema": {
            "$defs": {"Interp": {"type": "string", "enum": ["linear", "slerp"]}},
            "properties": {
                "noise_scale": {"type": "number", "minimum": 0.0, "maximum": 0.8},
                "vace_context_scale": {"anyOf": [
                    {"type": "number", "minimum": 0.0, "maximum": 2.0}, {"type": "null"}]},
                "prompt_interpolation_method": {"$ref": "#/$defs/Interp"},
                "denoising_step_list": {"type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": 999}},
                "reset_cache": {"type": "boolean"},
                "beat_cache_reset_rate": {"type": "integer", "exclusiveMinimum": -1,
                    "exclusiveMaximum": 17},
                "bpm": {"type": "number"},
                "mystery": {"type": "number"},
                "prompts": {"type": "array", "items": {"type": "object"}},
                "height": {"type": "integer", "minimum": 64},
                "weird": {}
            }}}}})
    }

    fn by_key(specs: &[ParamSpec]) -> BTreeMap<&str, &ParamSpec> {
        specs.iter().map(|s| (s.key.as_str(), s)).collect()
    }

    #[test]
    fn maps_types_ranges_refs_and_nullable_fields() {
        let specs = specs_from_schemas(&reply(), &["longlive".into()]).unwrap();
        let m = by_key(&specs);
        assert_eq!(
            m["noise_scale"].kind,
            ParamKind::Float { min: 0.0, max: 0.8 }
        );
        assert_eq!(
            m["vace_context_scale"].kind,
            ParamKind::Float { min: 0.0, max: 2.0 }
        );
        assert_eq!(
            m["prompt_interpolation_method"].kind,
            ParamKind::Choice {
                options: vec!["linear".into(), "slerp".into()]
            }
        );
        assert_eq!(
            m["denoising_step_list"].kind,
            ParamKind::DescendingInts { min: 0, max: 999 }
        );
        assert_eq!(
            m["beat_cache_reset_rate"].kind,
            ParamKind::Int { min: 0, max: 16 }
        );
        assert!(
            m["reset_cache"].one_shot,
            "one-shot nature comes from the built-in table"
        );
        assert!(!m["noise_scale"].one_shot);
        assert_eq!(
            m["bpm"].kind,
            ParamKind::Float {
                min: 20.0,
                max: 300.0
            },
            "unbounded schema numbers keep the built-in range"
        );
        assert_eq!(
            m["mystery"].kind,
            ParamKind::Float {
                min: f64::MIN,
                max: f64::MAX
            }
        );
        assert_eq!(m["prompts"].kind, ParamKind::Json);
        assert_eq!(m["weird"].kind, ParamKind::Json);
        assert!(
            !m.contains_key("height"),
            "load-time keys are not runtime parameters"
        );
    }

    #[test]
    fn missing_pipelines_and_bad_shapes_are_errors_not_panics() {
        assert_eq!(
            specs_from_schemas(&json!({"x": 1}), &["a".into()]),
            Err(SchemaError::NoPipelines)
        );
        assert_eq!(
            specs_from_schemas(&reply(), &["gray".into()]),
            Err(SchemaError::Missing("gray".into()))
        );
        let odd = json!({"pipelines": {"a": {"config_schema": {"properties": 5}}}});
        assert_eq!(specs_from_schemas(&odd, &["a".into()]), Ok(vec![]));
        let loops = json!({"pipelines": {"a": {"config_schema": {
            "$defs": {"A": {"$ref": "#/$defs/A"}},
            "properties": {"x": {"$ref": "#/$defs/A"}}}}}});
        assert!(
            specs_from_schemas(&loops, &["a".into()]).is_ok(),
            "ref loops terminate"
        );
    }

    #[test]
    fn clamping_uses_the_schema_range() {
        let specs = specs_from_schemas(&reply(), &["longlive".into()]).unwrap();
        let m = by_key(&specs);
        let acc = m["noise_scale"].accept(&json!(0.95)).unwrap();
        assert_eq!(acc.value, json!(0.8));
        assert!(acc.clamped);
    }

    #[test]
    fn unknown_pipelines_are_named_with_the_nearest_known_one() {
        let known: Vec<String> = ["longlive", "passthrough", "gray", "streamdiffusionv2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(edit_distance("passthru", "passthrough"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(suggest("passthru", &known), Some("passthrough"));
        assert_eq!(suggest("longlve", &known), Some("longlive"));
        assert_eq!(suggest("Gray", &known), Some("gray"));
        assert_eq!(suggest("krea", &known), None);
        let err = check_pipeline_ids(&["passthru".into()], &known).unwrap_err();
        assert!(
            err.contains("`passthru`") && err.contains("did you mean `passthrough`"),
            "{err}"
        );
        let err = check_pipeline_ids(&["longlive".into(), "krea".into()], &known).unwrap_err();
        assert!(
            err.contains("`krea`") && !err.contains("did you mean"),
            "{err}"
        );
        assert!(check_pipeline_ids(&["gray".into()], &known).is_ok());
        let reply = serde_json::json!({"pipelines": {"a": {}, "b": {}}});
        assert_eq!(known_pipelines(&reply), Some(vec!["a".into(), "b".into()]));
        assert_eq!(known_pipelines(&serde_json::json!({})), None);
    }
}
