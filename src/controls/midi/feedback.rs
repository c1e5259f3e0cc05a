//! MIDI out: light pads and rings from the published [`UiSnapshot`] (panic, pause, beat flash,
//! one-shot flash, parameter values, the active theme and prompt, mapping toggles). Pure:
//! computes which messages changed since last time; the MIDI edge sends them.

use serde::{Deserialize, Serialize};

use crate::controls::midi::parse::MidiMsg;
use crate::core::snapshot::UiSnapshot;

/// What a light shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FeedbackSource {
    /// Lit while panic is engaged.
    Panic,
    /// Lit while generation is paused.
    Paused,
    /// Flashes on every beat (for the dashboard's flash duration).
    Beat,
    /// Flashes when a one-shot fires (cache reset, prompt change, panic).
    Trigger,
    /// A parameter's value scaled into 0..127 (LED rings, motor faders).
    Param,
    /// Lit while the stream is live (streaming or degraded).
    Streaming,
    /// Lit while learn mode waits for a control or a target.
    Learn,
    /// Lit while MIDI clock leads the tempo.
    Clock,
    /// Lit while the theme named (or numbered) by `theme` is active: the pad that selects a
    /// theme shows which one is playing.
    Theme,
    /// Lit while the active theme's prompt number `prompt` (0-based) is the current one.
    Prompt,
    /// Lit while the mapping or trigger named by `mapping` is enabled in the active theme
    /// (`toggle_mapping` pads); `"*"` is the whole mapping engine.
    Mapping,
}

/// Which theme a `source = "theme"` light follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ThemeRef {
    /// 0-based position in the theme list (as `select_theme` counts).
    Index(usize),
    /// Theme file stem or display name (case-insensitive), robust against list reordering.
    Name(String),
}

/// One validated `[[feedback]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Feedback {
    /// Output-port name pattern.
    pub(crate) device: String,
    /// What it shows.
    pub(crate) source: FeedbackSource,
    /// 0-based channel.
    pub(crate) channel: u8,
    /// Note to light (velocity = value).
    pub(crate) note: Option<u8>,
    /// CC to send (value = value).
    pub(crate) cc: Option<u8>,
    /// Parameter key for `source = "param"`.
    pub(crate) param: Option<String>,
    /// Theme for `source = "theme"`.
    pub(crate) theme: Option<ThemeRef>,
    /// 0-based prompt number for `source = "prompt"`.
    pub(crate) prompt: Option<usize>,
    /// Mapping or trigger name for `source = "mapping"` (`"*"`: the engine itself).
    pub(crate) mapping: Option<String>,
    /// Value when lit.
    pub(crate) on: u8,
    /// Value when dark.
    pub(crate) off: u8,
}

impl Feedback {
    /// The 0..127 value this light should show now.
    pub(crate) fn value(&self, snap: &UiSnapshot) -> u8 {
        let lit = match self.source {
            FeedbackSource::Panic => snap.controls.panic.is_some(),
            FeedbackSource::Paused => snap
                .params
                .iter()
                .find(|r| r.key == "paused")
                .and_then(|r| r.value.as_bool())
                .unwrap_or(false),
            FeedbackSource::Beat => snap
                .audio
                .last_beat
                .as_ref()
                .is_some_and(|(_, at)| snap.now.saturating_sub(*at) < snap.flash),
            FeedbackSource::Trigger => snap.trigger_flash().is_some(),
            FeedbackSource::Streaming => matches!(
                snap.transport.state,
                crate::transport::types::ConnState::Streaming
                    | crate::transport::types::ConnState::Degraded
            ),
            FeedbackSource::Learn => !matches!(
                snap.controls.learn,
                crate::controls::midi::learn::LearnStage::Off
            ),
            FeedbackSource::Clock => {
                snap.audio.tempo_source == crate::audio::features::TempoSource::MidiClock
            }
            FeedbackSource::Theme => {
                let m = &snap.mapping;
                match (&self.theme, m.active) {
                    (Some(ThemeRef::Index(i)), Some(a)) => *i == a,
                    (Some(ThemeRef::Name(n)), Some(a)) => {
                        let is = |t: &String| t.eq_ignore_ascii_case(n);
                        snap.theme_ids.get(a).is_some_and(is) || m.themes.get(a).is_some_and(is)
                    }
                    _ => false,
                }
            }
            FeedbackSource::Prompt => {
                snap.mapping.active.is_some() && self.prompt == Some(snap.mapping.prompt_index)
            }
            FeedbackSource::Mapping => {
                let m = &snap.mapping;
                match self.mapping.as_deref() {
                    Some("*" | "all") => m.active.is_some() && !m.off,
                    Some(name) => {
                        m.mappings.iter().any(|r| r.name == name && r.enabled)
                            || m.triggers.iter().any(|r| r.name == name && r.enabled)
                    }
                    None => false,
                }
            }
            FeedbackSource::Param => {
                let row = self
                    .param
                    .as_deref()
                    .and_then(|k| snap.params.iter().find(|r| r.key == k));
                let Some(row) = row else { return self.off };
                let Some(v) = row.value.as_f64() else {
                    return if row.value.as_bool() == Some(true) {
                        self.on
                    } else {
                        self.off
                    };
                };
                let (lo, hi) = row.range.unwrap_or((0.0, 1.0));
                let x = if hi != lo {
                    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (a, b) = (f64::from(self.off), f64::from(self.on));
                return (a + x * (b - a)).round().clamp(0.0, 127.0) as u8;
            }
        };
        if lit { self.on } else { self.off }
    }

    /// The message that shows `value`.
    pub(crate) fn message(&self, value: u8) -> MidiMsg {
        match (self.note, self.cc) {
            (Some(note), _) => MidiMsg::NoteOn {
                channel: self.channel,
                note,
                velocity: value,
            },
            (None, cc) => MidiMsg::Cc {
                channel: self.channel,
                cc: cc.unwrap_or(0),
                value,
            },
        }
    }
}

/// Remembers what each light shows so only changes go out.
#[derive(Debug, Clone, Default)]
pub(crate) struct FeedbackState {
    last: Vec<Option<u8>>,
}

impl FeedbackState {
    /// State for `n` feedback entries, all unknown (the first update sends everything).
    pub(crate) fn new(n: usize) -> Self {
        FeedbackState {
            last: vec![None; n],
        }
    }

    /// Messages to send for `snap`: (feedback index, message), only where the value changed.
    pub(crate) fn update(&mut self, fb: &[Feedback], snap: &UiSnapshot) -> Vec<(usize, MidiMsg)> {
        self.last.resize(fb.len(), None);
        let mut out = Vec::new();
        for (i, f) in fb.iter().enumerate() {
            let v = f.value(snap);
            if self.last[i] != Some(v) {
                self.last[i] = Some(v);
                out.push((i, f.message(v)));
            }
        }
        out
    }

    /// Forgets what entry `i` shows (a port reconnected: resend its state).
    #[cfg(test)]
    pub(crate) fn forget(&mut self, i: usize) {
        if let Some(slot) = self.last.get_mut(i) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::state::{AppState, PanicSnapshot};

    fn fb(source: FeedbackSource) -> Feedback {
        Feedback {
            device: "x".into(),
            source,
            channel: 0,
            note: Some(5),
            cc: None,
            param: None,
            theme: None,
            prompt: None,
            mapping: None,
            on: 127,
            off: 0,
        }
    }

    #[test]
    fn panic_light_turns_on_once_and_off_again() {
        let mut st = AppState::new(Default::default());
        let f = vec![fb(FeedbackSource::Panic)];
        let mut s = FeedbackState::new(1);
        let out = s.update(&f, &UiSnapshot::of(&st, Duration::ZERO));
        assert_eq!(
            out,
            vec![(
                0,
                MidiMsg::NoteOn {
                    channel: 0,
                    note: 5,
                    velocity: 0
                }
            )]
        );
        assert!(
            s.update(&f, &UiSnapshot::of(&st, Duration::ZERO))
                .is_empty()
        );
        st.controls.panic = Some(PanicSnapshot {
            since: Duration::ZERO,
            paused: None,
            prompts: None,
        });
        let out = s.update(&f, &UiSnapshot::of(&st, Duration::ZERO));
        assert_eq!(out[0].1.to_bytes(), vec![0x90, 5, 127]);
        s.forget(0);
        assert_eq!(s.update(&f, &UiSnapshot::of(&st, Duration::ZERO)).len(), 1);
    }

    #[test]
    fn learn_and_clock_lights() {
        let mut st = AppState::new(Default::default());
        let snap = |st: &AppState| UiSnapshot::of(st, Duration::ZERO);
        assert_eq!(fb(FeedbackSource::Learn).value(&snap(&st)), 0);
        assert_eq!(fb(FeedbackSource::Clock).value(&snap(&st)), 0);
        st.controls.learn = crate::controls::midi::learn::LearnStage::WaitingControl;
        st.audio.tempo_source = crate::audio::features::TempoSource::MidiClock;
        assert_eq!(fb(FeedbackSource::Learn).value(&snap(&st)), 127);
        assert_eq!(fb(FeedbackSource::Clock).value(&snap(&st)), 127);
        assert_eq!(fb(FeedbackSource::Streaming).value(&snap(&st)), 0);
    }

    #[test]
    fn beat_flashes_for_the_flash_duration() {
        let mut st = AppState::new(Default::default());
        st.audio.last_beat = Some((
            crate::audio::features::AudioEvent::Beat {
                time: 1.0,
                count: 1,
                in_bar: 0,
                bpm: 120.0,
            },
            Duration::from_secs(1),
        ));
        let f = fb(FeedbackSource::Beat);
        assert_eq!(
            f.value(&UiSnapshot::of(&st, Duration::from_millis(1100))),
            127
        );
        assert_eq!(
            f.value(&UiSnapshot::of(&st, Duration::from_millis(1600))),
            0
        );
    }

    #[test]
    fn param_ring_scales_value_into_on_off_span() {
        let mut st = AppState::new(Default::default());
        st.params
            .store
            .set(
                "noise_scale",
                &serde_json::json!(0.5),
                crate::core::action::ActionSource::Midi,
                Duration::ZERO,
            )
            .unwrap();
        let mut f = fb(FeedbackSource::Param);
        f.note = None;
        f.cc = Some(20);
        f.param = Some("noise_scale".into());
        let snap = UiSnapshot::of(&st, Duration::ZERO);
        let row = snap.params.iter().find(|r| r.key == "noise_scale").unwrap();
        let (lo, hi) = row.range.unwrap_or((0.0, 1.0));
        let expect = ((0.5 - lo) / (hi - lo) * 127.0).round() as u8;
        assert_eq!(f.value(&snap), expect);
        assert_eq!(
            f.message(expect),
            MidiMsg::Cc {
                channel: 0,
                cc: 20,
                value: expect
            }
        );
        // Paused flag.
        st.params
            .store
            .set(
                "paused",
                &serde_json::json!(true),
                crate::core::action::ActionSource::Midi,
                Duration::ZERO,
            )
            .unwrap();
        assert_eq!(
            fb(FeedbackSource::Paused).value(&UiSnapshot::of(&st, Duration::ZERO)),
            127
        );
    }

    fn with_themes() -> AppState {
        let mut st = AppState::new(Default::default());
        let themes = crate::config::builtin_themes().unwrap();
        st.mapping = crate::mapping::slice::MappingSlice::new(themes, "cosmic-voyage", 4);
        st
    }

    fn lit(f: &Feedback, st: &AppState) -> bool {
        f.value(&UiSnapshot::of(st, Duration::ZERO)) == f.on
    }

    #[test]
    fn theme_lights_follow_the_active_theme_by_id_name_or_index() {
        let mut st = AppState::new(Default::default());
        let mut by_id = fb(FeedbackSource::Theme);
        by_id.theme = Some(ThemeRef::Name("Cosmic-Voyage".into()));
        assert!(!lit(&by_id, &st), "no themes loaded: dark");
        st = with_themes();
        let active = st.mapping.active;
        let mut by_name = fb(FeedbackSource::Theme);
        by_name.theme = Some(ThemeRef::Name("cosmic voyage".into()));
        let mut by_index = fb(FeedbackSource::Theme);
        by_index.theme = Some(ThemeRef::Index(active));
        let mut other = fb(FeedbackSource::Theme);
        other.theme = Some(ThemeRef::Index(active + 1));
        assert!(lit(&by_id, &st) && lit(&by_name, &st) && lit(&by_index, &st));
        assert!(!lit(&other, &st));
        // Another theme becomes active: the lights swap, and only the changes go out.
        let lights = vec![by_id.clone(), other.clone()];
        let mut state = FeedbackState::new(2);
        assert_eq!(
            state
                .update(&lights, &UiSnapshot::of(&st, Duration::ZERO))
                .len(),
            2
        );
        st.mapping.active = active + 1;
        let out = state.update(&lights, &UiSnapshot::of(&st, Duration::ZERO));
        assert_eq!(out, vec![(0, by_id.message(0)), (1, other.message(127)),]);
        assert!(!lit(&by_id, &st) && lit(&other, &st));
    }

    #[test]
    fn prompt_lights_follow_the_prompt_number() {
        let mut st = with_themes();
        let mut first = fb(FeedbackSource::Prompt);
        first.prompt = Some(0);
        let mut second = fb(FeedbackSource::Prompt);
        second.prompt = Some(1);
        assert!(lit(&first, &st) && !lit(&second, &st));
        crate::core::update::update(
            &mut st,
            crate::core::msg::Msg::key(crate::core::action::Action::PromptNext),
            Duration::ZERO,
        );
        assert_eq!(st.mapping.prompt_index, 1);
        assert!(!lit(&first, &st) && lit(&second, &st));
    }

    #[test]
    fn mapping_lights_follow_toggle_mapping_and_the_engine_switch() {
        let mut st = with_themes();
        let toggle = |st: &mut AppState, name: &str| {
            crate::core::update::update(
                st,
                crate::core::msg::Msg::key(crate::core::action::Action::ToggleMapping {
                    name: name.into(),
                }),
                Duration::ZERO,
            );
        };
        let mut noise = fb(FeedbackSource::Mapping);
        noise.mapping = Some("nebula-noise".into());
        let mut drift = fb(FeedbackSource::Mapping);
        drift.mapping = Some("bass-drift".into());
        let mut engine = fb(FeedbackSource::Mapping);
        engine.mapping = Some("*".into());
        let mut missing = fb(FeedbackSource::Mapping);
        missing.mapping = Some("no-such-mapping".into());
        let was = lit(&noise, &st);
        assert!(lit(&engine, &st) && !lit(&missing, &st));
        toggle(&mut st, "nebula-noise");
        assert_eq!(lit(&noise, &st), !was, "a mapping toggle flips its light");
        toggle(&mut st, "nebula-noise");
        assert_eq!(lit(&noise, &st), was);
        let trig = lit(&drift, &st);
        toggle(&mut st, "bass-drift");
        assert_eq!(lit(&drift, &st), !trig, "triggers too");
        toggle(&mut st, "*");
        assert!(!lit(&engine, &st), "engine off");
    }
}
