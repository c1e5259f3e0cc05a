//! The parameters scope-deck steers, their ranges, and who last set them.
//!
//! Scope does not validate its data channel, so every value is checked and clamped here before
//! it can reach the transport. Ranges start from a built-in table of Scope's well-known keys and
//! are replaced by the loaded pipeline's JSON schema once the transport has read it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::ActionSource;

/// A parameter value as sent on the wire (JSON).
pub type ParamValue = serde_json::Value;

/// The shape and range a parameter accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParamKind {
    /// A float clamped to `[min, max]`.
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// An integer clamped to `[min, max]`.
    Int {
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
    },
    /// true / false.
    Bool,
    /// Free text.
    Text,
    /// One of a fixed set of strings.
    Choice {
        /// Allowed values.
        options: Vec<String>,
    },
    /// A list of integers kept strictly descending (Scope's `denoising_step_list`).
    DescendingInts {
        /// Lower bound of each item.
        min: i64,
        /// Upper bound of each item.
        max: i64,
    },
    /// Structured JSON passed through (prompts, transition, lora scales, ...).
    Json,
}

/// What the controller knows about one parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Wire key.
    pub key: String,
    /// Accepted shape and range.
    pub kind: ParamKind,
    /// One-shot triggers (`reset_cache`) are never stored, merged or replayed.
    pub one_shot: bool,
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The loaded pipeline does not take this key.
    #[error("parameter `{0}` is not known to the loaded pipeline")]
    Unknown(String),
    /// The value has the wrong type.
    #[error("parameter `{key}` expects {expected}, got {got}")]
    WrongType {
        /// Wire key.
        key: String,
        /// What it takes.
        expected: String,
        /// What was given.
        got: String,
    },
}

/// The outcome of a successful set: the value that will be sent and whether it had to be clamped.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The value after clamping.
    pub value: ParamValue,
    /// True when the requested value was outside the range.
    pub clamped: bool,
}

impl ParamSpec {
    fn new(key: &str, kind: ParamKind) -> Self {
        ParamSpec {
            key: key.to_string(),
            kind,
            one_shot: false,
        }
    }

    /// Checks and clamps `value` against this spec.
    pub fn accept(&self, value: &ParamValue) -> Result<Accepted, ParamError> {
        let wrong = |expected: &str| ParamError::WrongType {
            key: self.key.clone(),
            expected: expected.to_string(),
            got: short_json(value),
        };
        match &self.kind {
            ParamKind::Float { min, max } => {
                let v = value
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| wrong("a number"))?;
                let c = v.clamp(*min, *max);
                Ok(Accepted {
                    value: serde_json::json!(c),
                    clamped: c != v,
                })
            }
            ParamKind::Int { min, max } => {
                let v = value
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| wrong("an integer"))?;
                let r = v.round() as i64;
                let c = r.clamp(*min, *max);
                Ok(Accepted {
                    value: serde_json::json!(c),
                    clamped: c as f64 != v,
                })
            }
            ParamKind::Bool => value
                .as_bool()
                .map(|b| Accepted {
                    value: serde_json::json!(b),
                    clamped: false,
                })
                .ok_or_else(|| wrong("true or false")),
            ParamKind::Text => value
                .as_str()
                .map(|s| Accepted {
                    value: serde_json::json!(s),
                    clamped: false,
                })
                .ok_or_else(|| wrong("text")),
            ParamKind::Choice { options } => match value.as_str() {
                Some(s) if options.iter().any(|o| o == s) => Ok(Accepted {
                    value: value.clone(),
                    clamped: false,
                }),
                _ => Err(wrong(&format!("one of {}", options.join("|")))),
            },
            ParamKind::DescendingInts { min, max } => {
                let items = value
                    .as_array()
                    .ok_or_else(|| wrong("a list of integers"))?;
                let mut out: Vec<i64> = Vec::with_capacity(items.len());
                for it in items {
                    let v = it
                        .as_f64()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| wrong("a list of integers"))?;
                    out.push((v.round() as i64).clamp(*min, *max));
                }
                let before = out.clone();
                out.sort_unstable_by(|a, b| b.cmp(a));
                out.dedup();
                if out.is_empty() {
                    return Err(wrong("a non-empty list of integers"));
                }
                let clamped = out != before
                    || items
                        .iter()
                        .zip(&before)
                        .any(|(i, b)| i.as_f64() != Some(*b as f64));
                Ok(Accepted {
                    value: serde_json::json!(out),
                    clamped,
                })
            }
            ParamKind::Json => Ok(Accepted {
                value: value.clone(),
                clamped: false,
            }),
        }
    }

    /// Numeric range, for meters and relative adjustments.
    pub fn range(&self) -> Option<(f64, f64)> {
        match &self.kind {
            ParamKind::Float { min, max } => Some((*min, *max)),
            ParamKind::Int { min, max } => Some((*min as f64, *max as f64)),
            ParamKind::Bool => Some((0.0, 1.0)),
            _ => None,
        }
    }
}

fn short_json(v: &ParamValue) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(39).collect::<String>())
    } else {
        s
    }
}

/// The built-in table of Scope runtime parameters (observed on Scope 0.2.4), used until the
/// pipeline schema arrives.
pub fn builtin_specs() -> BTreeMap<String, ParamSpec> {
    let mut m = BTreeMap::new();
    let mut add = |s: ParamSpec| {
        m.insert(s.key.clone(), s);
    };
    add(ParamSpec::new(
        "noise_scale",
        ParamKind::Float { min: 0.0, max: 1.0 },
    ));
    add(ParamSpec::new("noise_controller", ParamKind::Bool));
    add(ParamSpec::new("manage_cache", ParamKind::Bool));
    add(ParamSpec::new("paused", ParamKind::Bool));
    add(ParamSpec::new(
        "vace_context_scale",
        ParamKind::Float { min: 0.0, max: 2.0 },
    ));
    add(ParamSpec::new(
        "denoising_step_list",
        ParamKind::DescendingInts { min: 0, max: 1000 },
    ));
    add(ParamSpec::new(
        "prompt_interpolation_method",
        ParamKind::Choice {
            options: vec!["linear".into(), "slerp".into()],
        },
    ));
    for k in ["prompts", "lora_scales", "vace_ref_images", "output_sinks"] {
        add(ParamSpec::new(k, ParamKind::Json));
    }
    add(ParamSpec {
        key: "reset_cache".into(),
        kind: ParamKind::Bool,
        one_shot: true,
    });
    // A crossfade and Scope's quantise flags act once, on the message they ride in: never
    // stored or replayed on reconnect (a replayed `_quantized` would delay the whole state).
    add(ParamSpec {
        key: "transition".into(),
        kind: ParamKind::Json,
        one_shot: true,
    });
    add(ParamSpec {
        key: "_quantized".into(),
        kind: ParamKind::Bool,
        one_shot: true,
    });
    add(ParamSpec {
        key: "quantize_mode".into(),
        kind: ParamKind::Choice {
            options: ["none", "beat", "bar", "2_bar", "4_bar"]
                .map(String::from)
                .to_vec(),
        },
        one_shot: true,
    });
    add(ParamSpec {
        key: "lookahead_ms".into(),
        kind: ParamKind::Int { min: 0, max: 10000 },
        one_shot: true,
    });
    // Beat state forwarded to Scope's tempo engine.
    add(ParamSpec::new(
        "bpm",
        ParamKind::Float {
            min: 20.0,
            max: 300.0,
        },
    ));
    add(ParamSpec::new(
        "beat_phase",
        ParamKind::Float { min: 0.0, max: 1.0 },
    ));
    add(ParamSpec::new(
        "bar_position",
        ParamKind::Float {
            min: 0.0,
            max: 64.0,
        },
    ));
    add(ParamSpec::new(
        "beat_count",
        ParamKind::Int {
            min: 0,
            max: i64::MAX,
        },
    ));
    add(ParamSpec::new("is_playing", ParamKind::Bool));
    m
}

/// One stored parameter value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamEntry {
    /// Current value (what the server has, or will have once connected).
    pub value: ParamValue,
    /// Who set it last.
    pub source: ActionSource,
    /// When (engine time).
    #[serde(skip)]
    pub changed_at: Duration,
}

/// The full desired parameter state. The transport replays it on every (re)connect, so nothing
/// the performer set is lost while the link is down.
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    specs: BTreeMap<String, ParamSpec>,
    values: BTreeMap<String, ParamEntry>,
    /// Bumped on every change of a held value or spec, so the engine publishes only when
    /// something changed.
    revision: u64,
    /// How many schemas were merged (transports wait for this before their offer).
    schemas_merged: u64,
}

/// What a schema merge did to one held value.
#[derive(Debug, Clone, PartialEq)]
pub enum Revalidated {
    /// The value was out of the new range and now holds `to`.
    Clamped {
        /// Wire key.
        key: String,
        /// The held value before.
        from: ParamValue,
        /// The value now held.
        to: ParamValue,
    },
    /// The new schema refuses the value's type: it is no longer held (the server would refuse
    /// it too).
    Dropped {
        /// Wire key.
        key: String,
        /// Why.
        error: ParamError,
    },
}

impl ParamStore {
    /// A store with the built-in specs.
    pub fn new() -> Self {
        ParamStore {
            specs: builtin_specs(),
            values: BTreeMap::new(),
            revision: 0,
            schemas_merged: 0,
        }
    }

    /// Replaces the specs (e.g. from the pipeline schema); keys the new schema lacks keep the
    /// built-in spec so the performer's mapped values survive a schema without them. Every
    /// held value under a replaced spec is checked again, so nothing held reaches the wire
    /// outside the loaded pipeline's range; returns what changed.
    pub fn merge_specs(&mut self, specs: impl IntoIterator<Item = ParamSpec>) -> Vec<Revalidated> {
        let mut changed = Vec::new();
        for s in specs {
            if let Some(entry) = self.values.get_mut(&s.key) {
                match s.accept(&entry.value) {
                    Ok(acc) if acc.value != entry.value => {
                        changed.push(Revalidated::Clamped {
                            key: s.key.clone(),
                            from: std::mem::replace(&mut entry.value, acc.value.clone()),
                            to: acc.value,
                        });
                    }
                    Ok(_) => {}
                    Err(error) => {
                        self.values.remove(&s.key);
                        changed.push(Revalidated::Dropped {
                            key: s.key.clone(),
                            error,
                        });
                    }
                }
            }
            self.specs.insert(s.key.clone(), s);
        }
        self.schemas_merged += 1;
        self.revision += 1;
        changed
    }

    /// How many schemas were merged so far.
    pub fn schemas_merged(&self) -> u64 {
        self.schemas_merged
    }

    /// Changes whenever a held value or a spec changed.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The spec of `key`.
    pub fn spec(&self, key: &str) -> Option<&ParamSpec> {
        self.specs.get(key)
    }

    /// Validates, clamps and (unless one-shot) stores a value.
    pub fn set(
        &mut self,
        key: &str,
        value: &ParamValue,
        source: ActionSource,
        now: Duration,
    ) -> Result<Accepted, ParamError> {
        let spec = self
            .specs
            .get(key)
            .ok_or_else(|| ParamError::Unknown(key.to_string()))?;
        let acc = spec.accept(value)?;
        if !spec.one_shot {
            self.revision += 1;
            self.values.insert(
                key.to_string(),
                ParamEntry {
                    value: acc.value.clone(),
                    source,
                    changed_at: now,
                },
            );
        }
        Ok(acc)
    }

    /// Moves a numeric value by `delta` (from its current value, or the middle of its range).
    pub fn adjust(
        &mut self,
        key: &str,
        delta: f64,
        source: ActionSource,
        now: Duration,
    ) -> Result<Accepted, ParamError> {
        let spec = self
            .specs
            .get(key)
            .ok_or_else(|| ParamError::Unknown(key.to_string()))?;
        let (lo, hi) = spec.range().ok_or_else(|| ParamError::WrongType {
            key: key.to_string(),
            expected: "a numeric parameter".into(),
            got: "a non-numeric one".into(),
        })?;
        let cur = self
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or((lo + hi) / 2.0);
        self.set(key, &serde_json::json!(cur + delta), source, now)
    }

    /// The current value of `key`.
    pub fn get(&self, key: &str) -> Option<&ParamValue> {
        self.values.get(key).map(|e| &e.value)
    }

    /// Every stored value with its provenance.
    pub fn entries(&self) -> &BTreeMap<String, ParamEntry> {
        &self.values
    }

    /// The full state as one JSON object (for `initialParameters` and reconnect replays).
    pub fn full_state(&self) -> serde_json::Map<String, ParamValue> {
        self.values
            .iter()
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: Duration = Duration::ZERO;

    #[test]
    fn floats_are_clamped_and_flagged() {
        let mut s = ParamStore::new();
        let a = s
            .set("noise_scale", &json!(1.7), ActionSource::Midi, T)
            .unwrap();
        assert_eq!(
            a,
            Accepted {
                value: json!(1.0),
                clamped: true
            }
        );
        assert_eq!(s.get("noise_scale"), Some(&json!(1.0)));
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_refused() {
        let mut s = ParamStore::new();
        assert!(matches!(
            s.set("paused", &json!("yes"), ActionSource::Script, T),
            Err(ParamError::WrongType { .. })
        ));
        assert_eq!(
            s.set("warp", &json!(1), ActionSource::Script, T),
            Err(ParamError::Unknown("warp".into()))
        );
        assert!(
            s.set("noise_scale", &json!(f64::NAN), ActionSource::Script, T)
                .is_err()
        );
    }

    #[test]
    fn step_lists_are_kept_descending_and_in_range() {
        let mut s = ParamStore::new();
        let a = s
            .set(
                "denoising_step_list",
                &json!([250, 1000, 1200, 750]),
                ActionSource::Mapping,
                T,
            )
            .unwrap();
        assert_eq!(a.value, json!([1000, 750, 250]));
        assert!(a.clamped);
    }

    #[test]
    fn one_shots_are_not_stored_for_replay() {
        let mut s = ParamStore::new();
        s.set("reset_cache", &json!(true), ActionSource::Keyboard, T)
            .unwrap();
        assert!(s.full_state().is_empty());
    }

    #[test]
    fn adjust_moves_from_current_value_and_clamps() {
        let mut s = ParamStore::new();
        s.set("noise_scale", &json!(0.5), ActionSource::Keyboard, T)
            .unwrap();
        let a = s
            .adjust("noise_scale", 0.25, ActionSource::Keyboard, T)
            .unwrap();
        assert_eq!(a.value, json!(0.75));
        let a = s
            .adjust("noise_scale", 1.0, ActionSource::Keyboard, T)
            .unwrap();
        assert_eq!(a.value, json!(1.0));
        assert!(s.adjust("prompts", 1.0, ActionSource::Keyboard, T).is_err());
    }

    #[test]
    fn a_new_schema_reclamps_and_drops_held_values() {
        let mut s = ParamStore::new();
        s.set("noise_scale", &json!(0.9), ActionSource::Midi, T)
            .unwrap();
        s.set("paused", &json!(true), ActionSource::Keyboard, T)
            .unwrap();
        s.set("vace_context_scale", &json!(0.5), ActionSource::Midi, T)
            .unwrap();
        let rev = s.revision();
        let changed = s.merge_specs([
            ParamSpec::new("noise_scale", ParamKind::Float { min: 0.0, max: 0.6 }),
            ParamSpec::new("paused", ParamKind::Text),
            ParamSpec::new(
                "vace_context_scale",
                ParamKind::Float { min: 0.0, max: 1.0 },
            ),
        ]);
        assert_eq!(
            changed[0],
            Revalidated::Clamped {
                key: "noise_scale".into(),
                from: json!(0.9),
                to: json!(0.6)
            }
        );
        assert!(matches!(&changed[1], Revalidated::Dropped { key, .. } if key == "paused"));
        assert_eq!(changed.len(), 2, "an in-range value is left alone");
        assert_eq!(s.get("noise_scale"), Some(&json!(0.6)));
        assert_eq!(s.get("paused"), None);
        assert_eq!(s.get("vace_context_scale"), Some(&json!(0.5)));
        assert_eq!(s.schemas_merged(), 1);
        assert!(s.revision() > rev);
    }

    #[test]
    fn choices_accept_only_listed_values() {
        let mut s = ParamStore::new();
        assert!(
            s.set(
                "prompt_interpolation_method",
                &json!("slerp"),
                ActionSource::Script,
                T
            )
            .is_ok()
        );
        assert!(
            s.set(
                "prompt_interpolation_method",
                &json!("cubic"),
                ActionSource::Script,
                T
            )
            .is_err()
        );
    }
}
