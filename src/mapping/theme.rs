//! Generation themes (`themes/*.toml`): what the model is asked to paint.
//!
//! The Foundation loads and validates the essentials (name, prompts, parameter defaults); the
//! mapping issue adds mappings, triggers and transitions to the same files.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::diagnostics::{ConfigError, SourceDoc};
use crate::core::params::{ParamStore, ParamValue};

/// A theme file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: String,
    #[serde(default)]
    description: String,
    prompts: Vec<String>,
    #[serde(default)]
    negative_prompt: String,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
}

/// A validated theme.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// File stem (how config and actions refer to it).
    pub id: String,
    /// Display name.
    pub name: String,
    /// One line about its mood.
    pub description: String,
    /// Prompt list; the first is the starting prompt.
    pub prompts: Vec<String>,
    /// Negative prompt, for backends that take one.
    pub negative_prompt: String,
    /// Parameter defaults applied when the theme becomes active (validated against the built-in
    /// parameter table).
    pub params: BTreeMap<String, ParamValue>,
}

impl Theme {
    /// Parses and validates one theme file; `None` with errors pushed when it is invalid.
    pub fn from_text(
        name: &str,
        stem: &str,
        text: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Theme> {
        let doc = match SourceDoc::parse(name, text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let raw: RawTheme = match doc.deserialize() {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let before = errors.len();
        if raw.name.trim().is_empty() {
            errors.push(doc.error_at("name", "must not be empty", None));
        }
        if raw.prompts.is_empty() {
            errors.push(doc.error_at("prompts", "needs at least one prompt", None));
        }
        for (i, p) in raw.prompts.iter().enumerate() {
            if p.trim().is_empty() {
                errors.push(doc.error_at(&format!("prompts[{i}]"), "must not be empty", None));
            }
        }
        let store = ParamStore::new();
        let mut params = BTreeMap::new();
        for (k, v) in &raw.params {
            let path = format!("params.{k}");
            let json = match serde_json::to_value(v) {
                Ok(j) => j,
                Err(e) => {
                    errors.push(doc.error_at(
                        &path,
                        format!("cannot be used as a parameter: {e}"),
                        None,
                    ));
                    continue;
                }
            };
            match store.spec(k) {
                None => errors.push(doc.error_at(&path, "not a known Scope parameter", None)),
                Some(spec) if spec.one_shot => {
                    errors.push(doc.error_at(&path, "is a one-shot trigger, not a default", None))
                }
                Some(spec) => match spec.accept(&json) {
                    Ok(acc) if acc.clamped => errors.push(doc.error_at(
                        &path,
                        match spec.range() {
                            Some((lo, hi)) => format!("out of range {lo}..{hi}"),
                            None => "out of range".to_string(),
                        },
                        None,
                    )),
                    Ok(acc) => {
                        params.insert(k.clone(), acc.value);
                    }
                    Err(e) => errors.push(doc.error_at(&path, e.to_string(), None)),
                },
            }
        }
        (errors.len() == before).then(|| Theme {
            id: stem.to_string(),
            name: raw.name,
            description: raw.description,
            prompts: raw.prompts,
            negative_prompt: raw.negative_prompt,
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_against_the_parameter_table() {
        let mut errs = Vec::new();
        let t = "name = \"x\"\nprompts = [\"a\"]\n[params]\nnoise_scale = 4.0\nwarp = 1\nreset_cache = true\n";
        assert!(Theme::from_text("t.toml", "t", t, &mut errs).is_none());
        let mut keys: Vec<_> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                (4, "params.noise_scale"),
                (5, "params.warp"),
                (6, "params.reset_cache")
            ]
        );
    }
}
