//! Looks: a named capture of the live state (theme, prompts with weights, the performer's
//! parameter values, mapping toggles) that `recall_look` brings back, the theme with its own
//! switch rule and transition. The core captures and recalls; the edge reads `looks/*.toml` and
//! writes a saved look (`Effect::SaveLook`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::diagnostics::{ConfigError, SourceDoc};
use crate::effect::Effect;
use crate::params::{ParamStore, ParamValue};
use crate::state::{AppState, Level};

/// One saved look.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// Name (also the file stem when saved from the deck).
    pub name: String,
    /// Theme id.
    pub theme: Option<String>,
    /// Prompts with weights.
    pub prompts: Vec<(String, f64)>,
    /// Parameter values the performer set.
    pub params: BTreeMap<String, ParamValue>,
    /// Mapping and trigger names of the theme with their on/off state.
    pub mappings: BTreeMap<String, bool>,
    /// The prompt crossfader when it was engaged: slots A and B (uncomposed parts) and the
    /// fader position (`[crossfade]` in the file).
    pub crossfade: Option<LookCrossfade>,
}

/// A look's crossfader: both slots and where the fader stood.
#[derive(Debug, Clone, PartialEq)]
pub struct LookCrossfade {
    /// Slot A's parts (text, weight).
    pub a: Vec<(String, f64)>,
    /// Slot B's parts.
    pub b: Vec<(String, f64)>,
    /// 0 = A, 1 = B.
    pub position: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrossfade {
    a: Vec<RawPrompt>,
    b: Vec<RawPrompt>,
    position: f64,
}

/// Saved looks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookSlice {
    /// In file order.
    pub list: Vec<Look>,
    /// The look recalled last (index), so `recall_look` without a name steps on.
    pub last: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLook {
    name: String,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    prompts: Vec<RawPrompt>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    mappings: BTreeMap<String, bool>,
    #[serde(default)]
    crossfade: Option<RawCrossfade>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    text: String,
    weight: f64,
}

impl Look {
    /// Parses and validates one look file; every problem with file:line:column and key.
    pub fn from_text(
        file: &str,
        text: &str,
        themes: &[&str],
        errors: &mut Vec<ConfigError>,
    ) -> Option<Look> {
        let (doc, raw) = SourceDoc::load::<RawLook>(file, text, errors)?;
        let before = errors.len();
        let mut err = |path: &str, msg: &str| errors.push(doc.error_at(path, msg, None));
        if raw.name.trim().is_empty() {
            err("name", "must not be empty");
        }
        if let Some(t) = &raw.theme {
            if !themes.is_empty() && !themes.contains(&t.as_str()) {
                err(
                    "theme",
                    &format!("unknown theme (known: {})", themes.join(", ")),
                );
            }
        }
        for (i, p) in raw.prompts.iter().enumerate() {
            if p.text.trim().is_empty() {
                err(&format!("prompts[{i}].text"), "must not be empty");
            }
            if !p.weight.is_finite() || p.weight < 0.0 {
                err(&format!("prompts[{i}].weight"), "must be 0 or more");
            }
        }
        if !raw.prompts.is_empty() && raw.prompts.iter().all(|p| p.weight <= 0.0) {
            err("prompts", "at least one weight must be above 0");
        }
        if let Some(x) = &raw.crossfade {
            if !x.position.is_finite() || !(0.0..=1.0).contains(&x.position) {
                err(
                    "crossfade.position",
                    "must be 0..1 (0 = slot A, 1 = slot B)",
                );
            }
            for (slot, parts) in [("a", &x.a), ("b", &x.b)] {
                if parts.is_empty() {
                    err(&format!("crossfade.{slot}"), "needs at least one prompt");
                }
                for (i, p) in parts.iter().enumerate() {
                    if p.text.trim().is_empty() {
                        err(&format!("crossfade.{slot}[{i}].text"), "must not be empty");
                    }
                    if !p.weight.is_finite() || p.weight <= 0.0 {
                        err(&format!("crossfade.{slot}[{i}].weight"), "must be above 0");
                    }
                }
            }
        }
        let store = ParamStore::new();
        let mut params = BTreeMap::new();
        for (k, v) in &raw.params {
            let path = format!("params.{k}");
            let Ok(j) = serde_json::to_value(v) else {
                err(&path, "cannot be sent as JSON");
                continue;
            };
            match store.spec(k) {
                None => err(&path, "unknown parameter"),
                Some(spec) if spec.one_shot => err(&path, "a one-shot cannot be part of a look"),
                Some(spec) => match spec.accept(&j) {
                    Ok(acc) if acc.clamped => {
                        let (lo, hi) = spec.range().unwrap_or_default();
                        err(&path, &format!("outside the parameter's range {lo}..{hi}"))
                    }
                    Ok(_) => {
                        params.insert(k.clone(), j);
                    }
                    Err(e) => err(&path, &e.to_string()),
                },
            }
        }
        if errors.len() > before {
            return None;
        }
        Some(Look {
            name: raw.name.trim().to_string(),
            theme: raw.theme,
            prompts: raw
                .prompts
                .into_iter()
                .map(|p| (p.text, p.weight))
                .collect(),
            params,
            mappings: raw.mappings,
            crossfade: raw.crossfade.map(|x| LookCrossfade {
                a: x.a.into_iter().map(|p| (p.text, p.weight)).collect(),
                b: x.b.into_iter().map(|p| (p.text, p.weight)).collect(),
                position: x.position,
            }),
        })
    }
}

/// Captures the live state under `name`.
pub fn capture(state: &AppState, name: &str) -> Look {
    let theme = state.mapping.theme();
    let prompts = state
        .params
        .store
        .get("prompts")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p["text"].as_str()?.to_string(), p["weight"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    // The performer's values: what a key, a MIDI control or a script set (mapped values move
    // with the music and are the theme's business).
    let params = state
        .params
        .store
        .entries()
        .iter()
        .filter(|(k, e)| {
            k.as_str() != "prompts"
                && matches!(
                    e.source,
                    ActionSource::Keyboard | ActionSource::Midi | ActionSource::Script
                )
        })
        .map(|(k, e)| (k.clone(), e.value.clone()))
        .collect();
    let mut mappings = BTreeMap::new();
    if let Some(t) = theme {
        for m in &t.mappings {
            mappings.insert(
                m.name.clone(),
                state.mapping.engine.is_enabled(&m.name, m.enabled),
            );
        }
        for tr in &t.triggers {
            mappings.insert(
                tr.name.clone(),
                state.mapping.engine.is_enabled(&tr.name, tr.enabled),
            );
        }
    }
    let x = &state.xfade;
    let crossfade = match (&x.a, &x.b) {
        (Some(a), Some(b)) => Some(LookCrossfade {
            a: a.parts.clone(),
            b: b.parts.clone(),
            position: x.position,
        }),
        _ => None,
    };
    Look {
        name: name.to_string(),
        theme: theme.map(|t| t.id.clone()),
        prompts,
        params,
        mappings,
        crossfade,
    }
}

/// Handles `save_look` and `recall_look`.
pub fn on_action(state: &mut AppState, action: &Action, now: Duration, fx: &mut Vec<Effect>) {
    match action {
        Action::SaveLook { name } => {
            let name = match name.as_deref().map(str::trim) {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => next_free_name(&state.looks),
            };
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                notice(
                    state,
                    fx,
                    Level::Warn,
                    format!("look name `{name}`: letters, digits, - and _ only"),
                    now,
                );
                return;
            }
            let look = capture(state, &name);
            match state.looks.list.iter().position(|l| l.name == name) {
                Some(i) => state.looks.list[i] = look.clone(),
                None => state.looks.list.push(look.clone()),
            }
            notice(state, fx, Level::Info, format!("look {name} saved"), now);
            fx.push(Effect::SaveLook(Box::new(look)));
        }
        Action::RecallLook { name } => {
            let n = state.looks.list.len();
            let i = match name {
                Some(name) => state.looks.list.iter().position(|l| &l.name == name),
                None if n > 0 => Some(state.looks.last.map_or(0, |l| (l + 1) % n)),
                None => None,
            };
            let Some(i) = i else {
                let what = name.as_deref().unwrap_or("any");
                notice(state, fx, Level::Warn, format!("no look {what}"), now);
                return;
            };
            state.looks.last = Some(i);
            let look = state.looks.list[i].clone();
            recall(state, &look, now, fx);
        }
        _ => {}
    }
}

fn next_free_name(s: &LookSlice) -> String {
    (1..)
        .map(|i| format!("look-{i}"))
        .find(|n| s.list.iter().all(|l| &l.name != n))
        .unwrap_or_else(|| "look".into())
}

/// Brings a look back: theme (its switch rule and transition), prompts, parameters, toggles.
fn recall(state: &mut AppState, look: &Look, now: Duration, fx: &mut Vec<Effect>) {
    let src = ActionSource::System;
    notice(state, fx, Level::Info, format!("look {}", look.name), now);
    if let Some(id) = &look.theme {
        if let Some(index) = state.mapping.themes.iter().position(|t| &t.id == id) {
            if index != state.mapping.active {
                crate::update::apply(state, Action::SelectTheme { index }, src, now, fx);
            }
        } else {
            notice(
                state,
                fx,
                Level::Warn,
                format!("look theme {id} is not loaded"),
                now,
            );
        }
    }
    // A look with the crossfader sends its blend below instead.
    let prompts: &[(String, f64)] = if look.crossfade.is_some() {
        &[]
    } else {
        &look.prompts
    };
    match prompts {
        [] => {}
        [(text, w)] if (*w - 1.0).abs() < f64::EPSILON => crate::update::apply(
            state,
            Action::SetPrompt {
                text: text.clone(),
                raw: true,
            },
            src,
            now,
            fx,
        ),
        blend => {
            let value = serde_json::Value::Array(
                blend
                    .iter()
                    .map(|(t, w)| serde_json::json!({ "text": t, "weight": w }))
                    .collect(),
            );
            let a = Action::SetParam {
                key: "prompts".into(),
                value,
            };
            crate::update::apply(state, a, src, now, fx);
        }
    }
    if let Some(x) = &look.crossfade {
        // The slots themselves (composed in the theme's template when sent), then the blend.
        state.xfade = crate::xfade::XfadeSlice {
            a: Some(crate::mapping::theme::PromptEntry { parts: x.a.clone() }),
            b: Some(crate::mapping::theme::PromptEntry { parts: x.b.clone() }),
            position: x.position,
        };
        crate::xfade::send(state, src, now, true, fx);
    }
    for (key, value) in &look.params {
        if key == "prompt_interpolation_method" && look.crossfade.is_some() {
            continue;
        }
        let a = Action::SetParam {
            key: key.clone(),
            value: value.clone(),
        };
        crate::update::apply(state, a, src, now, fx);
    }
    // Toggles belong to the look's theme: applied when it is the active one.
    apply_toggles(state, look.theme.as_deref(), &look.mappings, src, now, fx);
}

/// Sets mapping and trigger toggles saved with `theme` (a look's, a recalled show's) when that
/// theme is the active one; a name the theme does not declare is skipped.
pub(crate) fn apply_toggles(
    state: &mut AppState,
    theme: Option<&str>,
    toggles: &BTreeMap<String, bool>,
    src: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let Some(active) = state.mapping.theme().cloned() else {
        return;
    };
    if theme.is_some_and(|t| t != active.id) {
        return;
    }
    for (name, on) in toggles {
        let declared = active
            .mappings
            .iter()
            .find(|m| &m.name == name)
            .map(|m| m.enabled)
            .or_else(|| {
                active
                    .triggers
                    .iter()
                    .find(|t| &t.name == name)
                    .map(|t| t.enabled)
            });
        if let Some(d) = declared {
            if state.mapping.engine.is_enabled(name, d) != *on {
                let a = Action::ToggleMapping { name: name.clone() };
                crate::update::apply(state, a, src, now, fx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::update::update;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn act(s: &mut AppState, a: Action, t: u64) -> Vec<Effect> {
        update(s, Msg::key(a), ms(t))
    }

    #[test]
    fn a_look_keeps_the_crossfader_slots_and_position() {
        let mut s = AppState::new(CoreSettings::default());
        update(&mut s, Msg::Started, ms(0));
        let slot = |slot, text: &str| Action::SetPromptSlot {
            slot,
            text: Some(text.into()),
            index: None,
        };
        act(&mut s, slot(crate::xfade::Slot::A, "fog"), 1);
        act(&mut s, slot(crate::xfade::Slot::B, "rain | hail"), 2);
        act(
            &mut s,
            Action::SetParam {
                key: crate::xfade::CROSSFADE_KEY.into(),
                value: serde_json::json!(0.25),
            },
            3,
        );
        act(
            &mut s,
            Action::SaveLook {
                name: Some("xf".into()),
            },
            4,
        );
        let saved = s.looks.list[0].crossfade.clone().unwrap();
        assert_eq!(saved.position, 0.25);
        assert_eq!(saved.b, vec![("rain".into(), 1.0), ("hail".into(), 1.0)]);
        act(&mut s, Action::CrossfadeOff, 5);
        assert!(!s.xfade.engaged());
        let fx = act(
            &mut s,
            Action::RecallLook {
                name: Some("xf".into()),
            },
            6,
        );
        assert!(s.xfade.engaged());
        assert_eq!(s.xfade.position, 0.25);
        let prompts: Vec<_> = fx
            .iter()
            .filter_map(|f| match f {
                Effect::Transport(crate::transport::types::TransportCmd::Update(u)) => {
                    u.values.get("prompts").cloned()
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            prompts,
            vec![serde_json::json!([
                {"text": "fog", "weight": 0.75},
                {"text": "rain", "weight": 0.125},
                {"text": "hail", "weight": 0.125}
            ])],
            "one blend, the look's"
        );
    }

    #[test]
    fn save_captures_performer_values_and_recall_brings_them_back() {
        let mut s = AppState::new(CoreSettings::default());
        update(&mut s, Msg::Started, ms(0));
        act(
            &mut s,
            Action::SetPrompt {
                text: "fog".into(),
                raw: false,
            },
            10,
        );
        let set = |v: f64| Action::SetParam {
            key: "noise_scale".into(),
            value: serde_json::json!(v),
        };
        act(&mut s, set(0.3), 20);
        let fx = act(&mut s, Action::SaveLook { name: None }, 30);
        let saved = fx.iter().find_map(|e| match e {
            Effect::SaveLook(l) => Some(l.clone()),
            _ => None,
        });
        let saved = saved.expect("an effect asks the edge to write it");
        assert_eq!(saved.name, "look-1");
        assert_eq!(saved.prompts, vec![("fog".to_string(), 1.0)]);
        assert_eq!(
            saved.params.get("noise_scale"),
            Some(&serde_json::json!(0.3))
        );
        assert!(
            !saved.params.contains_key("paused"),
            "system values are not the performer's"
        );
        act(
            &mut s,
            Action::SetPrompt {
                text: "rain".into(),
                raw: false,
            },
            40,
        );
        act(&mut s, set(0.9), 50);
        act(
            &mut s,
            Action::RecallLook {
                name: Some("look-1".into()),
            },
            60,
        );
        assert_eq!(s.params.prompt, "fog");
        assert_eq!(
            s.params.store.get("noise_scale"),
            Some(&serde_json::json!(0.3))
        );
        let fx = act(
            &mut s,
            Action::RecallLook {
                name: Some("nope".into()),
            },
            70,
        );
        assert!(fx.iter().any(|e| format!("{e:?}").contains("no look nope")));
        let fx = act(
            &mut s,
            Action::SaveLook {
                name: Some("bad name!".into()),
            },
            80,
        );
        assert!(!fx.iter().any(|e| matches!(e, Effect::SaveLook(_))));
    }

    #[test]
    fn look_files_are_checked_with_keys() {
        let mut e = Vec::new();
        let l = Look::from_text(
            "l.toml",
            "name = \"a\"\nprompts = [{ text = \"x\", weight = 0.5 }]\n[params]\nnoise_scale = 0.4\n[mappings]\nwobble = false\n",
            &[],
            &mut e,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(l.unwrap().mappings.get("wobble"), Some(&false));
        let mut e = Vec::new();
        assert!(
            Look::from_text(
                "l.toml",
                "name = \"a\"\n[params]\nreset_cache = true\n",
                &[],
                &mut e
            )
            .is_none()
        );
        assert_eq!((e[0].line, e[0].key.as_str()), (3, "params.reset_cache"));
    }
}
