//! State recall: what the journal keeps of a running show and how it comes back.
//!
//! The edge (`src/app/journal.rs`) captures [`Recall`] at most every 100 ms, writes it
//! atomically when it changed, and on `--resume` (or a yes in the terminal) hands it back as
//! `Msg::Resume`, folded right after `Msg::Started` so the first connect already carries it.
//! Capture reuses the looks' capture (theme, prompts with weights, mapping toggles) and adds what
//! a look leaves out: every value not owned by the mapping, macros, persona, tempo, the cue
//! position, and with several outputs each output's own values, the selection and the
//! failovers in force (`crate::outputs::OutputsRecall`).
//!
//! Extension point: when prompt A/B slots (the crossfader, issue 17) exist, add them here as a
//! field with `#[serde(default)]`, fill it in [`capture`] and apply it in [`restore`]; old
//! journals then read as "no slots", and `VERSION` stays unless a field changes meaning.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionSource};
use crate::audio::features::TempoSource;
use crate::ctx::notice;
use crate::effect::Effect;
use crate::params::ParamValue;
use crate::state::{AppState, Level};

/// Journal format version; a journal with a higher one is refused (written by a newer deck).
pub const VERSION: u32 = 1;

/// The live state worth bringing back after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Recall {
    /// Active theme id.
    #[serde(default)]
    pub theme: Option<String>,
    /// Position in the active theme's prompt list.
    #[serde(default)]
    pub prompt_index: usize,
    /// The prompt label shown on the dashboard (without persona).
    #[serde(default)]
    pub prompt: String,
    /// The prompts sent, with weights (a blend has several).
    #[serde(default)]
    pub prompts: Vec<PromptWeight>,
    /// Parameter values not owned by the mapping engine (the performer's, a cue's, a look's).
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Mapping and trigger names of the active theme with their on/off state.
    #[serde(default)]
    pub mappings: BTreeMap<String, bool>,
    /// The whole mapping engine switched off (`toggle_mapping *`).
    #[serde(default)]
    pub mapping_off: bool,
    /// Macro values 0..1.
    #[serde(default)]
    pub macros: BTreeMap<String, f32>,
    /// The performer's persona (`None`: the theme's own).
    #[serde(default)]
    pub persona: Option<String>,
    /// Tempo source and, for a tapped tempo, its BPM.
    #[serde(default)]
    pub tempo: TempoRecall,
    /// Setlist position, when a setlist is loaded.
    #[serde(default)]
    pub cues: Option<CueRecall>,
    /// Several outputs (`[[outputs]]`): each output's own values, the selection, the failovers
    /// in force (`crate::outputs::OutputsRecall`); absent with a single `[server]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<crate::outputs::OutputsRecall>,
}

/// One prompt with its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptWeight {
    /// Prompt text as sent.
    pub text: String,
    /// Blend weight.
    pub weight: f64,
}

/// Where the tempo came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct TempoRecall {
    /// `detected`, `tap` or `midi_clock`.
    #[serde(default)]
    pub source: TempoSource,
    /// BPM at capture (kept for a tapped tempo; detected and clocked tempos come back by
    /// themselves).
    #[serde(default)]
    pub bpm: Option<f64>,
}

/// The cue list's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CueRecall {
    /// Setlist name (a different list is not positioned).
    pub setlist: String,
    /// Cue count (an edited list with another count is not positioned).
    pub count: usize,
    /// The cue that landed last (0-based).
    #[serde(default)]
    pub current: Option<usize>,
    /// The standby cue (0-based).
    #[serde(default)]
    pub standby: usize,
}

/// Captures what the journal keeps. Cheap enough for the engine's control tick (a few small
/// maps), and deterministic: the same state gives an equal value, so the edge writes only on
/// change.
pub fn capture(state: &AppState) -> Recall {
    let look = crate::look::capture(state, "");
    let params = state
        .params
        .store
        .entries()
        .iter()
        .filter(|(k, e)| {
            k.as_str() != "prompts"
                && e.source != ActionSource::Mapping
                && !state.params.store.spec(k).is_some_and(|s| s.one_shot)
        })
        .map(|(k, e)| (k.clone(), e.value.clone()))
        .collect();
    let tempo_source = state.audio.tempo_source;
    let bpm = state.audio.frame.bpm;
    Recall {
        theme: look.theme,
        prompt_index: state.mapping.prompt_index,
        prompt: state.params.prompt.clone(),
        prompts: look
            .prompts
            .into_iter()
            .map(|(text, weight)| PromptWeight { text, weight })
            .collect(),
        params,
        mappings: look.mappings,
        mapping_off: state.mapping.off,
        macros: state.mapping.macros.clone(),
        persona: state.mapping.persona.clone(),
        tempo: TempoRecall {
            source: tempo_source,
            bpm: (tempo_source == TempoSource::Tap && bpm.is_finite() && bpm > 0.0)
                .then_some(f64::from(bpm)),
        },
        cues: state.cues.setlist.as_ref().map(|s| CueRecall {
            setlist: s.name.clone(),
            count: s.cues.len(),
            current: state.cues.current,
            standby: state.cues.standby,
        }),
        outputs: crate::outputs::capture_recall(state),
    }
}

/// Brings a recalled state back: the theme at once (a cut, no quantise wait), persona, macros,
/// prompts, values, toggles, a tapped tempo and the cue position (no cue fires). Values come
/// back as the performer's (`Script`), so the next capture keeps them.
pub fn restore(state: &mut AppState, r: &Recall, now: Duration, fx: &mut Vec<Effect>) {
    let src = ActionSource::Script;
    if let Some(id) = &r.theme {
        match state.mapping.themes.iter().position(|t| &t.id == id) {
            Some(i) if i != state.mapping.active => {
                crate::mapping::reduce::switch_now(state, i, now, fx)
            }
            Some(_) => {}
            None => notice(
                state,
                fx,
                Level::Warn,
                format!("resume: theme {id} is not loaded; staying on this one"),
                now,
            ),
        }
    }
    state.mapping.persona = r.persona.clone();
    for (k, v) in &r.macros {
        if v.is_finite() {
            state.mapping.macros.insert(k.clone(), v.clamp(0.0, 1.0));
        }
    }
    let n_prompts = state.mapping.theme().map_or(0, |t| t.prompts.len());
    if r.prompt_index < n_prompts {
        state.mapping.prompt_index = r.prompt_index;
    }
    if !r.prompts.is_empty() {
        let value = serde_json::Value::Array(
            r.prompts
                .iter()
                .map(|p| serde_json::json!({ "text": p.text, "weight": p.weight }))
                .collect(),
        );
        let a = Action::SetParam {
            key: "prompts".into(),
            value,
        };
        crate::update::apply(state, a, src, now, fx);
        if !r.prompt.trim().is_empty() {
            state.params.prompt = r.prompt.clone();
        }
    }
    for (key, value) in &r.params {
        let a = Action::SetParam {
            key: key.clone(),
            value: value.clone(),
        };
        crate::update::apply(state, a, src, now, fx);
    }
    restore_toggles(state, r, now, fx);
    if let Some(o) = &r.outputs {
        crate::outputs::restore_recall(state, o, now, fx);
    }
    if let (TempoSource::Tap, Some(bpm)) = (r.tempo.source, r.tempo.bpm) {
        if bpm.is_finite() && bpm > 0.0 {
            // Two taps one beat apart: the tracker holds that tempo as a tapped one (and gives
            // way when the music disagrees, as after real taps).
            let t = now.as_secs_f64();
            let beat = 60.0 / bpm;
            state.audio.tempo_source = TempoSource::Tap;
            for at_secs in [t - beat, t] {
                fx.push(Effect::Tempo(crate::audio::tempo::TempoCmd::Tap {
                    at_secs,
                }));
            }
        }
    }
    if let (Some(c), Some(s)) = (&r.cues, &state.cues.setlist) {
        if c.setlist == s.name && c.count == s.cues.len() {
            state.cues.current = c.current.filter(|i| *i < c.count);
            state.cues.standby = c.standby.min(c.count.saturating_sub(1));
            state.cues.pending = None;
        } else {
            notice(
                state,
                fx,
                Level::Warn,
                format!(
                    "resume: the setlist changed ({} with {} cues was saved); cue position not restored",
                    c.setlist, c.count
                ),
                now,
            );
        }
    }
    let theme = r.theme.as_deref().unwrap_or("-");
    notice(
        state,
        fx,
        Level::Info,
        format!(
            "resumed the last show: theme {theme}, {} value(s)",
            r.params.len()
        ),
        now,
    );
}

/// Mapping toggles belong to the active theme; `mapping_off` is the global switch.
fn restore_toggles(state: &mut AppState, r: &Recall, now: Duration, fx: &mut Vec<Effect>) {
    let active = state.mapping.theme().map(|t| t.id.clone());
    if active.is_none() || r.theme.is_some() && r.theme != active {
        return;
    }
    let src = ActionSource::Script;
    crate::look::apply_toggles(state, r.theme.as_deref(), &r.mappings, src, now, fx);
    if state.mapping.off != r.mapping_off {
        let a = Action::ToggleMapping { name: "*".into() };
        crate::update::apply(state, a, src, now, fx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::theme::Theme;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::update::update;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn themes() -> Vec<Theme> {
        let a = "name = \"Alpha\"\nprompts = [\"alpha one\", \"alpha two\"]\n[params]\nnoise_scale = 0.5\n\
                 [[mappings]]\nname = \"wobble\"\nsource = \"energy\"\ntarget = \"noise_scale\"\n";
        let b = "name = \"Beta\"\nprompts = [\"beta one\"]\n[macros]\ndrive = 0.2\n";
        let mut errs = Vec::new();
        let ta = Theme::from_text("alpha.toml", "alpha", a, &mut errs);
        let tb = Theme::from_text("beta.toml", "beta", b, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        vec![ta.unwrap(), tb.unwrap()]
    }

    fn fresh() -> AppState {
        let mut s = AppState::new(CoreSettings::default());
        s.mapping = crate::mapping::slice::MappingSlice::new(themes(), "alpha", 4);
        update(&mut s, Msg::Started, ms(0));
        s
    }

    fn act(s: &mut AppState, a: Action, t: u64) {
        update(s, Msg::key(a), ms(t));
    }

    #[test]
    fn a_captured_show_comes_back_in_a_fresh_engine() {
        let mut s = fresh();
        act(&mut s, Action::SelectTheme { index: 1 }, 10);
        act(
            &mut s,
            Action::SetParam {
                key: "prompts".into(),
                value: serde_json::json!([{"text":"fog","weight":0.7},{"text":"rain","weight":0.3}]),
            },
            20,
        );
        act(
            &mut s,
            Action::SetParam {
                key: "noise_scale".into(),
                value: serde_json::json!(0.33),
            },
            30,
        );
        act(
            &mut s,
            Action::SetMacro {
                name: "drive".into(),
                value: 0.9,
            },
            40,
        );
        act(
            &mut s,
            Action::SetPersona {
                name: "female".into(),
            },
            45,
        );
        act(
            &mut s,
            Action::SetParam {
                key: "prompts".into(),
                value: serde_json::json!([{"text":"fog","weight":0.7},{"text":"rain","weight":0.3}]),
            },
            50,
        );
        let r = capture(&s);
        assert_eq!(r.theme.as_deref(), Some("beta"));
        assert_eq!(r.prompts.len(), 2);
        assert_eq!(r.params.get("noise_scale"), Some(&serde_json::json!(0.33)));
        assert_eq!(r.macros.get("drive"), Some(&0.9));
        // Through JSON, as the journal stores it.
        let text = serde_json::to_string(&r).unwrap();
        let back: Recall = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);

        let mut t = fresh();
        let fx = update(&mut t, Msg::Resume(Box::new(back)), ms(5));
        assert_eq!(t.mapping.theme().map(|t| t.id.as_str()), Some("beta"));
        assert_eq!(
            t.params.store.get("noise_scale"),
            Some(&serde_json::json!(0.33))
        );
        assert_eq!(
            t.params.store.get("prompts"),
            s.params.store.get("prompts"),
            "the blend comes back as it was sent"
        );
        assert_eq!(t.mapping.macros.get("drive"), Some(&0.9));
        assert_eq!(t.mapping.persona.as_deref(), Some("female"));
        let sent: Vec<String> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Transport(c) => Some(format!("{c:?}")),
                _ => None,
            })
            .collect();
        assert!(
            sent.iter().any(|c| c.contains("noise_scale")),
            "the values go to the server: {sent:?}"
        );
        assert_eq!(
            capture(&t),
            capture(&s),
            "a second capture is the same show"
        );
    }

    #[test]
    fn toggles_tempo_and_unknown_themes() {
        let mut s = fresh();
        act(
            &mut s,
            Action::ToggleMapping {
                name: "wobble".into(),
            },
            10,
        );
        let mut r = capture(&s);
        assert_eq!(r.mappings.get("wobble"), Some(&false));
        r.tempo = TempoRecall {
            source: TempoSource::Tap,
            bpm: Some(120.0),
        };
        let mut t = fresh();
        let fx = update(&mut t, Msg::Resume(Box::new(r.clone())), ms(2000));
        assert!(!t.mapping.engine.is_enabled("wobble", true));
        let taps: Vec<f64> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Tempo(crate::audio::tempo::TempoCmd::Tap { at_secs }) => Some(*at_secs),
                _ => None,
            })
            .collect();
        assert_eq!(taps, vec![1.5, 2.0], "two taps one beat apart at 120 BPM");
        r.theme = Some("gone".into());
        let mut u = fresh();
        let fx = update(&mut u, Msg::Resume(Box::new(r)), ms(10));
        assert!(
            fx.iter()
                .any(|e| format!("{e:?}").contains("theme gone is not loaded"))
        );
        assert_eq!(u.mapping.theme().map(|t| t.id.as_str()), Some("alpha"));
    }

    #[test]
    fn mapped_values_and_one_shots_are_not_kept() {
        let mut s = fresh();
        act(&mut s, Action::ResetCache, 10);
        let r = capture(&s);
        assert!(!r.params.contains_key("reset_cache"));
        // alpha's noise_scale default is the theme's (a mapping value), not the performer's.
        assert!(!r.params.contains_key("noise_scale"), "{:?}", r.params);
        assert!(r.params.contains_key("paused"));
    }
}
