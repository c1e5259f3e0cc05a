//! The prompt crossfader: two prompt slots A and B and a position between them, sent as one
//! weighted `prompts` blend (each slot's parts scaled by its side of the fader) with the
//! configured `prompt_interpolation_method`.
//!
//! A fader move is a continuous value: it goes on the transport's latest-wins lane, so a MIDI
//! fader (already flushed at most once per control period) never floods the server. The slots
//! hold uncomposed parts; the theme's template (persona, style) is applied when the blend is
//! sent, so editing a slot edits its parts, never the rendered `×0.7 +` text.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::effect::{Effect, Event};
use crate::mapping::prompt::compose;
use crate::mapping::theme::PromptEntry;
use crate::params::ParamValue;
use crate::state::{AppState, Level};
use crate::transport::types::{ParamUpdate, TransportCmd};

/// The `set_param` key a MIDI fader binds to for the crossfade position (0 = A, 1 = B).
pub const CROSSFADE_KEY: &str = "crossfade";

/// Weights under this are left out of the blend (the far slot at an end of the fader).
const SILENT: f64 = 1e-6;

/// One of the two crossfader slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The 0 end of the fader.
    A,
    /// The 1 end of the fader.
    B,
}

impl Slot {
    /// `A` or `B`.
    pub fn label(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

/// Crossfader state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XfadeSlice {
    /// Slot A's parts (uncomposed text, weight).
    pub a: Option<PromptEntry>,
    /// Slot B's parts.
    pub b: Option<PromptEntry>,
    /// 0 = all A, 1 = all B.
    pub position: f64,
}

impl XfadeSlice {
    /// Both slots hold a prompt: prompts are the blend of the two.
    pub fn engaged(&self) -> bool {
        self.a.is_some() && self.b.is_some()
    }

    /// A slot's parts.
    pub fn slot(&self, s: Slot) -> Option<&PromptEntry> {
        match s {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    fn slot_mut(&mut self, s: Slot) -> &mut Option<PromptEntry> {
        match s {
            Slot::A => &mut self.a,
            Slot::B => &mut self.b,
        }
    }

    /// The slot the fader is nearer to (A at the middle).
    pub fn near(&self) -> Slot {
        if self.position > 0.5 {
            Slot::B
        } else {
            Slot::A
        }
    }
}

/// What the prompt panel shows of the crossfader: each slot's composed text and the weight it
/// is sent with.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct XfadeView {
    /// (slot, composed parts with their sent weights).
    pub slots: Vec<(Slot, Vec<(String, f64)>)>,
    /// 0 = A, 1 = B.
    pub position: f64,
    /// What a prompt editor starts with for each slot (its parts joined with ` | `, never the
    /// rendered blend).
    pub edit_texts: Vec<(Slot, String)>,
}

impl XfadeView {
    /// The view of `state` (None when the crossfader is not engaged).
    pub fn of(state: &AppState) -> Option<XfadeView> {
        let x = &state.xfade;
        if !x.engaged() {
            return None;
        }
        let slots = [Slot::A, Slot::B]
            .into_iter()
            .map(|s| {
                let parts = x.slot(s).map(|e| weighted(state, e, side(x.position, s)));
                (s, parts.unwrap_or_default())
            })
            .collect();
        Some(XfadeView {
            slots,
            position: x.position,
            edit_texts: [Slot::A, Slot::B]
                .into_iter()
                .map(|s| (s, edit_text(state, Some(s))))
                .collect(),
        })
    }
}

/// How much of slot `s` the position lets through.
fn side(position: f64, s: Slot) -> f64 {
    match s {
        Slot::A => 1.0 - position,
        Slot::B => position,
    }
}

/// An entry's parts composed with the active theme's template and scaled to `share` of the
/// blend (its own weights normalised first).
fn weighted(state: &AppState, entry: &PromptEntry, share: f64) -> Vec<(String, f64)> {
    let total: f64 = entry.parts.iter().map(|(_, w)| w.max(0.0)).sum();
    let total = if total > 0.0 { total } else { 1.0 };
    entry
        .parts
        .iter()
        .map(|(t, w)| {
            (
                compose_live(state, t),
                crate::mapping::smoothing::round6(w.max(0.0) / total * share),
            )
        })
        .collect()
}

/// `text` in the active theme's template with the persona in effect (as typed when no theme is
/// loaded).
pub fn compose_live(state: &AppState, text: &str) -> String {
    match state.mapping.theme() {
        Some(t) => compose(&t.template, &state.mapping.persona(), text, &t.style),
        None => text.trim().to_string(),
    }
}

/// The `prompts` value of the crossfader now.
pub fn blend_value(state: &AppState) -> ParamValue {
    let x = &state.xfade;
    let mut out = Vec::new();
    for s in [Slot::A, Slot::B] {
        if let Some(e) = x.slot(s) {
            for (text, weight) in weighted(state, e, side(x.position, s)) {
                if weight > SILENT {
                    out.push(json!({ "text": text, "weight": weight }));
                }
            }
        }
    }
    ParamValue::Array(out)
}

/// Splits editor text into parts: `a | b` keeps the weights `previous` had by position (a new
/// part weighs 1).
pub fn parse_parts(text: &str, previous: Option<&PromptEntry>) -> Vec<(String, f64)> {
    text.split('|')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, t)| {
            let w = previous
                .and_then(|p| p.parts.get(i))
                .map_or(1.0, |(_, w)| *w);
            (t.to_string(), w)
        })
        .collect()
}

/// What an editor of `slot` (None: the live prompt) starts with, as parts joined with ` | `
/// (never the rendered blend).
pub fn edit_text(state: &AppState, slot: Option<Slot>) -> String {
    let parts = match slot {
        Some(s) => state.xfade.slot(s).map(|e| e.parts.clone()),
        None => Some(state.params.parts.clone()),
    };
    match parts {
        Some(p) if !p.is_empty() => p
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        _ => state.params.prompt.clone(),
    }
}

/// The prompt playing now as a slot entry (the theme's entry, or the typed prompt's parts).
fn live_entry(state: &AppState) -> PromptEntry {
    if !state.params.parts.is_empty() {
        return PromptEntry {
            parts: state.params.parts.clone(),
        };
    }
    PromptEntry {
        parts: vec![(state.params.prompt.clone(), 1.0)],
    }
}

/// The active theme's entry `i`.
fn theme_entry(state: &AppState, i: usize) -> Option<PromptEntry> {
    state
        .mapping
        .theme()
        .and_then(|t| t.prompts.get(i))
        .cloned()
}

/// Fills empty slots so the crossfader can engage: A the live prompt, B the theme's next one
/// (or the live prompt again when the theme has no other).
fn engage(state: &mut AppState) {
    if state.xfade.a.is_none() {
        state.xfade.a = Some(live_entry(state));
    }
    if state.xfade.b.is_none() {
        let n = state.mapping.theme().map_or(0, |t| t.prompts.len());
        let next = if n > 1 {
            theme_entry(state, (state.mapping.prompt_index + 1) % n)
        } else {
            None
        };
        state.xfade.b = Some(next.unwrap_or_else(|| live_entry(state)));
    }
}

/// Handles the crossfader's actions; false when `action` is not one of them.
pub(crate) fn on_action(
    state: &mut AppState,
    action: &Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> bool {
    match action {
        Action::SetParam { key, value } if key == CROSSFADE_KEY => match value.as_f64() {
            Some(v) if v.is_finite() => move_to(state, v, source, now, fx),
            _ => notice(
                state,
                fx,
                Level::Warn,
                "crossfade: expects a number 0..1".into(),
                now,
            ),
        },
        Action::AdjustParam { key, delta } if key == CROSSFADE_KEY => {
            if delta.is_finite() {
                let to = state.xfade.position + delta;
                move_to(state, to, source, now, fx);
            }
        }
        Action::SetPromptSlot { slot, text, index } => {
            let entry = match (text, index) {
                (Some(t), _) => {
                    let parts = parse_parts(t, state.xfade.slot(*slot));
                    if parts.is_empty() {
                        notice(state, fx, Level::Warn, "empty prompt ignored".into(), now);
                        return true;
                    }
                    PromptEntry { parts }
                }
                (None, Some(i)) => match theme_entry(state, *i) {
                    Some(e) => e,
                    None => {
                        notice(
                            state,
                            fx,
                            Level::Warn,
                            format!("no prompt #{} in the active theme", i + 1),
                            now,
                        );
                        return true;
                    }
                },
                (None, None) => live_entry(state),
            };
            *state.xfade.slot_mut(*slot) = Some(entry);
            engage(state);
            send(state, source, now, true, fx);
        }
        Action::CrossfadeOff => {
            if let Some(e) = state.xfade.slot(state.xfade.near()).cloned() {
                state.params.parts = e.parts.clone();
                state.params.prompt = e.label();
            }
            state.xfade = XfadeSlice::default();
            notice(state, fx, Level::Info, "crossfader off".into(), now);
        }
        _ => return false,
    }
    true
}

/// Moves the fader (engaging the crossfader if needed) and sends the blend.
fn move_to(
    state: &mut AppState,
    to: f64,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    engage(state);
    let to = to.clamp(0.0, 1.0);
    if (to - state.xfade.position).abs() < SILENT && state.params.store.get("prompts").is_some() {
        return;
    }
    state.xfade.position = to;
    send(state, source, now, false, fx);
}

/// Sends the blend (`urgent` for a slot change, the latest-wins lane for fader moves) with the
/// interpolation method in use: the one set in the store, else the theme's transition method.
pub(crate) fn send(
    state: &mut AppState,
    source: ActionSource,
    now: Duration,
    urgent: bool,
    fx: &mut Vec<Effect>,
) {
    let value = blend_value(state);
    let x = &state.xfade;
    state.params.prompt = [Slot::A, Slot::B]
        .into_iter()
        .filter_map(|s| {
            x.slot(s).map(|e| {
                format!(
                    "{} {:.0}% {}",
                    s.label(),
                    side(x.position, s) * 100.0,
                    e.label()
                )
            })
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let method = state
        .params
        .store
        .get("prompt_interpolation_method")
        .and_then(|v| v.as_str().map(str::to_string))
        .or_else(|| state.mapping.theme().map(|t| t.transition.method.clone()))
        .unwrap_or_else(|| "linear".into());
    match state.params.store.set("prompts", &value, source, now) {
        Ok(acc) => {
            let mut upd = ParamUpdate {
                urgent,
                ..ParamUpdate::default()
            };
            upd.values.insert("prompts".into(), acc.value.clone());
            if let Ok(m) =
                state
                    .params
                    .store
                    .set("prompt_interpolation_method", &json!(method), source, now)
            {
                upd.values
                    .insert("prompt_interpolation_method".into(), m.value);
            }
            fx.push(Effect::Emit(Event::Param {
                key: "prompts".into(),
                value: acc.value,
                clamped: false,
            }));
            fx.push(Effect::Transport(TransportCmd::Update(upd)));
        }
        Err(e) => notice(state, fx, Level::Error, e.to_string(), now),
    }
}

/// With the crossfader engaged, the theme's prompt list loads the far slot (the one the fader is
/// away from), so the next prompt is cued without a cut; the fader then brings it in.
pub(crate) fn load_far(
    state: &mut AppState,
    action: &Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let n = state.mapping.theme().map_or(0, |t| t.prompts.len());
    if n == 0 {
        notice(state, fx, Level::Warn, "no themes loaded".into(), now);
        return;
    }
    let cur = state.mapping.prompt_index;
    let to = match action {
        Action::PromptNext => (cur + 1) % n,
        Action::PromptPrev => (cur + n - 1) % n,
        Action::SelectPrompt { index } if *index < n => *index,
        _ => {
            notice(
                state,
                fx,
                Level::Warn,
                format!("no such prompt (the theme has {n})"),
                now,
            );
            return;
        }
    };
    state.mapping.prompt_index = to;
    let far = state.xfade.near().other();
    *state.xfade.slot_mut(far) = theme_entry(state, to);
    send(state, source, now, true, fx);
}

/// A theme change or a typed prompt replaces what the crossfader blended: it lets go.
pub(crate) fn release(state: &mut AppState) {
    state.xfade = XfadeSlice::default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::update::update;

    fn act(s: &mut AppState, a: Action, at: u64) -> Vec<Effect> {
        update(
            s,
            Msg::Action {
                action: a,
                source: ActionSource::Midi,
            },
            Duration::from_millis(at),
        )
    }

    fn fader(v: f64) -> Action {
        Action::SetParam {
            key: CROSSFADE_KEY.into(),
            value: json!(v),
        }
    }

    fn sent(fx: &[Effect]) -> Vec<&ParamUpdate> {
        fx.iter()
            .filter_map(|f| match f {
                Effect::Transport(TransportCmd::Update(u)) => Some(u),
                _ => None,
            })
            .collect()
    }

    fn themed() -> AppState {
        let mut s = AppState::new(CoreSettings::default());
        let mut errs = Vec::new();
        let theme = crate::mapping::theme::Theme::from_text(
            "t.toml",
            "t",
            "name = \"T\"\ntemplate = \"{prompt}, {style}\"\nstyle = \"ink\"\nprompts = [\"fog\", \"rain\", { blend = [{ text = \"sun\", weight = 3 }, { text = \"moon\", weight = 1 }] }]\n[transition]\nsteps = 4\nmethod = \"slerp\"\n",
            &mut errs,
        )
        .unwrap_or_else(|| panic!("{errs:?}"));
        s.mapping = crate::mapping::slice::MappingSlice::new(vec![theme], "t", 4);
        update(&mut s, Msg::Started, Duration::ZERO);
        s
    }

    #[test]
    fn the_fader_engages_with_the_live_and_next_prompt_and_sends_weighted_blends() {
        let mut s = themed();
        let fx = act(&mut s, fader(0.25), 10);
        let u = sent(&fx);
        assert_eq!(u.len(), 1);
        assert!(!u[0].urgent, "a fader move is a continuous value");
        assert_eq!(
            u[0].values["prompts"],
            json!([{"text": "fog, ink", "weight": 0.75}, {"text": "rain, ink", "weight": 0.25}])
        );
        assert_eq!(u[0].values["prompt_interpolation_method"], json!("slerp"));
        // An end of the fader leaves the far slot out entirely.
        let fx = act(&mut s, fader(1.0), 20);
        assert_eq!(
            sent(&fx)[0].values["prompts"],
            json!([{"text": "rain, ink", "weight": 1.0}])
        );
        // The same position again sends nothing.
        assert!(sent(&act(&mut s, fader(1.0), 30)).is_empty());
    }

    #[test]
    fn a_blended_slot_keeps_its_own_proportions_inside_the_crossfade() {
        let mut s = themed();
        act(
            &mut s,
            Action::SetPromptSlot {
                slot: Slot::B,
                text: None,
                index: Some(2),
            },
            5,
        );
        let fx = act(&mut s, fader(0.5), 10);
        assert_eq!(
            sent(&fx)[0].values["prompts"],
            json!([
                {"text": "fog, ink", "weight": 0.5},
                {"text": "sun, ink", "weight": 0.375},
                {"text": "moon, ink", "weight": 0.125}
            ])
        );
        let v = XfadeView::of(&s).unwrap();
        assert_eq!(v.slots[1].1[0], ("sun, ink".to_string(), 0.375));
    }

    #[test]
    fn editing_a_slot_edits_its_parts_and_keeps_their_weights() {
        let mut s = themed();
        act(
            &mut s,
            Action::SetPromptSlot {
                slot: Slot::A,
                text: None,
                index: Some(2),
            },
            5,
        );
        assert_eq!(edit_text(&s, Some(Slot::A)), "sun | moon");
        let fx = act(
            &mut s,
            Action::SetPromptSlot {
                slot: Slot::A,
                text: Some("sun | stars".into()),
                index: None,
            },
            10,
        );
        let u = sent(&fx);
        assert!(u[0].urgent, "a slot change is a cut in what is blended");
        assert_eq!(
            u[0].values["prompts"],
            json!([{"text": "sun, ink", "weight": 0.75}, {"text": "stars, ink", "weight": 0.25}])
        );
        let text = u[0].values["prompts"].to_string();
        assert!(!text.contains('×'), "never the rendered blend: {text}");
    }

    #[test]
    fn crossfade_off_keeps_the_nearer_slot_and_a_theme_switch_lets_go() {
        let mut s = themed();
        act(&mut s, fader(0.8), 10);
        act(&mut s, Action::CrossfadeOff, 20);
        assert!(!s.xfade.engaged());
        assert_eq!(s.params.prompt, "rain");
        act(&mut s, fader(0.3), 30);
        assert!(s.xfade.engaged());
        // The theme's list cues the far slot (B here) without a cut.
        act(&mut s, Action::PromptNext, 38);
        let fx = act(&mut s, Action::PromptNext, 40);
        assert_eq!(s.mapping.prompt_index, 2);
        assert_eq!(
            s.xfade.b.as_ref().map(|e| e.parts[0].0.clone()),
            Some("sun".into())
        );
        assert_eq!(
            s.xfade.a.as_ref().map(|e| e.parts[0].0.clone()),
            Some("rain".into())
        );
        assert!(sent(&fx)[0].values.contains_key("prompts"));
        act(
            &mut s,
            Action::SetPrompt {
                text: "hail".into(),
                raw: false,
            },
            45,
        );
        assert!(!s.xfade.engaged(), "a typed prompt replaces the blend");
        let bad = act(&mut s, fader(f64::NAN), 50);
        assert!(sent(&bad).is_empty());
    }
}
