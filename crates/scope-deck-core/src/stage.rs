//! What leaves the deck locally: blackout, the master fade and recording on a key.
//!
//! The reducer only decides a level (1 = picture, 0 = black) and whether a recording should run;
//! the video edge applies both to every local output (the GStreamer sinks), so they act the
//! same on every backend and never wait for a server. Server-side outputs (Scope's own
//! NDI/Spout/Syphon) are not reached: see `docs/cues.md`.

use std::time::Duration;

use crate::action::Action;
use crate::ctx::notice;
use crate::effect::{Effect, Event};
use crate::state::{AppState, Level};

/// Beats a `master_fade` without `beats` takes.
pub const DEFAULT_FADE_BEATS: f64 = 4.0;

/// Tempo assumed for a beat-timed fade when no tempo is known.
pub const FALLBACK_BPM: f64 = 120.0;

/// The `set_param` key a MIDI fader binds to for the master fade (0 = picture, 1 = black).
pub const MASTER_FADE_KEY: &str = "master_fade";

/// A timed fade between two amounts of black.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimedFade {
    /// Amount of black at the start (0..1).
    pub from: f64,
    /// Amount of black at the end (0..1).
    pub to: f64,
    /// When it started (engine time).
    pub start: Duration,
    /// How long it takes.
    pub length: Duration,
}

impl TimedFade {
    /// The amount of black at `now` (linear, clamped at both ends).
    pub fn at(&self, now: Duration) -> f64 {
        if self.length.is_zero() {
            return self.to;
        }
        let t = (now.saturating_sub(self.start).as_secs_f64() / self.length.as_secs_f64())
            .clamp(0.0, 1.0);
        self.from + (self.to - self.from) * t
    }

    /// Whether it has reached its end at `now`.
    pub fn done(&self, now: Duration) -> bool {
        now.saturating_sub(self.start) >= self.length
    }
}

/// Local output state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageSlice {
    /// Blackout is on (every local output black at once).
    pub blackout: bool,
    /// Panic blanked the output (released with panic).
    pub panic_blank: bool,
    /// The master fader (0 = picture, 1 = black).
    pub fader: f64,
    /// The timed fade's amount of black now (stays where it ended).
    pub faded: f64,
    /// A timed fade in progress.
    pub fade: Option<TimedFade>,
    /// Recording asked for since this engine time (None: not recording).
    pub recording: Option<Duration>,
}

/// What the video edge applies (published on a watch when it changes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputControl {
    /// 1 = the picture as received, 0 = black; in between the picture is faded towards black.
    pub level: f32,
    /// Recorders bound to the record key (`on_key = true` file sinks) should run.
    pub record: bool,
}

impl Default for OutputControl {
    fn default() -> Self {
        OutputControl {
            level: 1.0,
            record: false,
        }
    }
}

impl StageSlice {
    /// The output level: 0 in blackout or panic blank, otherwise the fader and the timed fade
    /// multiplied.
    pub fn level(&self) -> f64 {
        if self.blackout || self.panic_blank {
            0.0
        } else {
            ((1.0 - self.fader) * (1.0 - self.faded)).clamp(0.0, 1.0)
        }
    }

    /// What the video edge must apply.
    pub fn control(&self) -> OutputControl {
        OutputControl {
            level: self.level() as f32,
            record: self.recording.is_some(),
        }
    }
}

/// Handles the stage actions; false when `action` is not one of them.
pub(crate) fn on_action(
    state: &mut AppState,
    action: &Action,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> bool {
    match action {
        Action::Blackout { on } => {
            let on = on.unwrap_or(!state.stage.blackout);
            if on != state.stage.blackout {
                state.stage.blackout = on;
                let server = server_outputs_on(state);
                let text = match (on, server.is_empty()) {
                    (true, true) => "BLACKOUT: every local output is black".to_string(),
                    (true, false) => format!(
                        "BLACKOUT: every local output is black; the server's own {} output is \
                         not (it is sent by the server: turn it off there)",
                        server.join("/")
                    ),
                    (false, _) => "blackout released".to_string(),
                };
                notice(state, fx, Level::Info, text, now);
            }
        }
        Action::MasterFade { beats } => {
            let beats = beats.unwrap_or(DEFAULT_FADE_BEATS).max(0.0);
            let bpm = f64::from(state.audio.frame.bpm);
            let bpm = if bpm.is_finite() && bpm > 0.0 {
                bpm
            } else {
                FALLBACK_BPM
            };
            let from = current_faded(&state.stage, now);
            // Towards black unless already (going) there: the same key fades back in.
            let to = match state.stage.fade {
                Some(f) if f.to >= 0.5 => 0.0,
                None if from >= 0.5 => 0.0,
                _ => 1.0,
            };
            let length = Duration::from_secs_f64((beats * 60.0 / bpm).min(3600.0));
            state.stage.fade = Some(TimedFade {
                from,
                to,
                start: now,
                length,
            });
            state.stage.faded = from;
            let dir = if to > from { "out" } else { "in" };
            notice(
                state,
                fx,
                Level::Info,
                format!(
                    "master fade {dir} over {beats} beat(s) ({:.1} s)",
                    length.as_secs_f64()
                ),
                now,
            );
            advance(state, now);
        }
        Action::SetParam { key, value } if key == MASTER_FADE_KEY => match value.as_f64() {
            Some(v) if v.is_finite() => {
                state.stage.fader = v.clamp(0.0, 1.0);
                fx.push(Effect::Emit(Event::Param {
                    key: MASTER_FADE_KEY.into(),
                    value: serde_json::json!(state.stage.fader),
                    clamped: !(0.0..=1.0).contains(&v),
                }));
            }
            _ => notice(
                state,
                fx,
                Level::Warn,
                "master_fade: expects a number 0..1".into(),
                now,
            ),
        },
        Action::AdjustParam { key, delta } if key == MASTER_FADE_KEY => {
            if delta.is_finite() {
                state.stage.fader = (state.stage.fader + delta).clamp(0.0, 1.0);
            }
        }
        Action::Record { on } => {
            let on = on.unwrap_or(state.stage.recording.is_none());
            match (on, state.stage.recording) {
                (true, None) if state.settings.key_recorders == 0 => notice(
                    state,
                    fx,
                    Level::Warn,
                    "record: no recorder follows the key; add a [[video.sinks]] kind = \"file\" \
                     with on_key = true"
                        .into(),
                    now,
                ),
                (true, None) => {
                    state.stage.recording = Some(now);
                    notice(state, fx, Level::Info, "recording started".into(), now);
                }
                (false, Some(since)) => {
                    state.stage.recording = None;
                    notice(
                        state,
                        fx,
                        Level::Info,
                        format!(
                            "recording stopped after {}",
                            clock(now.saturating_sub(since))
                        ),
                        now,
                    );
                }
                _ => {}
            }
        }
        _ => return false,
    }
    true
}

/// The Scope server's own outputs that are on (NDI, Spout, Syphon): the deck cannot blank them.
pub fn server_outputs_on(state: &AppState) -> Vec<&'static str> {
    crate::video::reduce::ScopeOutputsView::of(state)
        .outputs
        .iter()
        .filter(|o| o.enabled)
        .map(|o| o.output.label())
        .collect()
}

/// The timed fade's amount at `now` (what it was left at when none runs).
fn current_faded(stage: &StageSlice, now: Duration) -> f64 {
    stage.fade.map_or(stage.faded, |f| f.at(now))
}

/// Moves a running timed fade on (called at every control tick and after the action).
pub(crate) fn advance(state: &mut AppState, now: Duration) {
    if let Some(f) = state.stage.fade {
        state.stage.faded = f.at(now);
        if f.done(now) {
            state.stage.fade = None;
        }
    }
}

/// `m:ss` (or `h:mm:ss`) for the REC display and notices.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// What the dashboard shows for the stage (None when nothing is on).
pub fn status_text(stage: &StageSlice) -> Option<String> {
    if stage.blackout || stage.panic_blank {
        return Some("BLACKOUT".into());
    }
    let level = stage.level();
    if level < 1.0 {
        let pct = ((1.0 - level) * 100.0).round();
        let dir = match stage.fade {
            Some(f) if f.to > f.from => " ↓",
            Some(_) => " ↑",
            None => "",
        };
        return Some(format!("FADE {pct:.0}%{dir}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::ActionSource;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::update::update;

    fn act(s: &mut AppState, a: Action, at: Duration) -> Vec<Effect> {
        update(
            s,
            Msg::Action {
                action: a,
                source: ActionSource::Keyboard,
            },
            at,
        )
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn blackout_toggles_and_takes_the_level_to_zero_at_once() {
        let mut s = AppState::new(CoreSettings::default());
        assert_eq!(s.stage.control().level, 1.0);
        act(&mut s, Action::Blackout { on: None }, ms(10));
        assert_eq!(s.stage.control().level, 0.0);
        assert_eq!(status_text(&s.stage).as_deref(), Some("BLACKOUT"));
        act(&mut s, Action::Blackout { on: None }, ms(20));
        assert_eq!(s.stage.control().level, 1.0);
        // Explicit: idempotent for scripts.
        act(&mut s, Action::Blackout { on: Some(false) }, ms(30));
        assert_eq!(s.stage.control().level, 1.0);
        act(&mut s, Action::Blackout { on: Some(true) }, ms(40));
        act(&mut s, Action::Blackout { on: Some(true) }, ms(50));
        assert!(s.stage.blackout);
        // The server's own NDI output is named as not blanked.
        act(&mut s, Action::Blackout { on: Some(false) }, ms(60));
        act(
            &mut s,
            Action::SetScopeOutput {
                output: crate::video::scope_api::ScopeOutput::Ndi,
                enabled: true,
            },
            ms(70),
        );
        assert_eq!(server_outputs_on(&s), vec!["NDI"]);
        let fx = act(&mut s, Action::Blackout { on: None }, ms(80));
        assert!(
            fx.iter()
                .any(|f| matches!(f, Effect::Emit(Event::Notice { message, .. })
                if message.contains("server's own NDI output is not"))),
            "{fx:?}"
        );
    }

    #[test]
    fn a_beat_fade_falls_monotonically_over_its_beats_and_the_same_key_fades_back() {
        let mut s = AppState::new(CoreSettings::default());
        s.audio.frame.bpm = 120.0; // a beat = 0.5 s; 4 beats = 2 s
        act(&mut s, Action::MasterFade { beats: Some(4.0) }, ms(1000));
        let mut last = 1.0f32;
        for t in (1000..=3200).step_by(10) {
            update(&mut s, Msg::Tick, ms(t));
            let l = s.stage.control().level;
            assert!(l <= last, "level rose from {last} to {l} at {t} ms");
            last = l;
        }
        assert_eq!(last, 0.0);
        assert!(s.stage.fade.is_none(), "the fade ended");
        // Halfway means half.
        let mut h = AppState::new(CoreSettings::default());
        h.audio.frame.bpm = 120.0;
        act(&mut h, Action::MasterFade { beats: Some(4.0) }, ms(0));
        update(&mut h, Msg::Tick, ms(1000));
        assert!((h.stage.level() - 0.5).abs() < 1e-9, "{}", h.stage.level());
        assert_eq!(status_text(&h.stage).as_deref(), Some("FADE 50% ↓"));
        // Pressed again from black: back in.
        act(&mut s, Action::MasterFade { beats: Some(2.0) }, ms(4000));
        update(&mut s, Msg::Tick, ms(5000));
        assert_eq!(s.stage.control().level, 1.0);
    }

    #[test]
    fn a_fade_reversed_midway_turns_around_where_it_is() {
        let mut s = AppState::new(CoreSettings::default());
        s.audio.frame.bpm = 60.0; // a beat = 1 s
        act(&mut s, Action::MasterFade { beats: Some(4.0) }, ms(0));
        update(&mut s, Msg::Tick, ms(1000));
        act(&mut s, Action::MasterFade { beats: Some(1.0) }, ms(1000));
        assert!((s.stage.level() - 0.75).abs() < 1e-9);
        update(&mut s, Msg::Tick, ms(1500));
        assert!(s.stage.level() > 0.75 && s.stage.level() < 1.0);
    }

    #[test]
    fn the_fader_and_blackout_combine_with_the_fade() {
        let mut s = AppState::new(CoreSettings::default());
        let set = |v: serde_json::Value| Action::SetParam {
            key: MASTER_FADE_KEY.into(),
            value: v,
        };
        let fx = act(&mut s, set(serde_json::json!(0.25)), ms(0));
        assert!((s.stage.level() - 0.75).abs() < 1e-9);
        // Not a server parameter: nothing goes to the transport.
        assert!(
            !fx.iter().any(|f| matches!(f, Effect::Transport(_))),
            "{fx:?}"
        );
        act(&mut s, set(serde_json::json!(7.0)), ms(10));
        assert_eq!(s.stage.level(), 0.0);
        act(&mut s, set(serde_json::json!("loud")), ms(20));
        assert_eq!(s.stage.fader, 1.0, "a bad value changes nothing");
        act(
            &mut s,
            Action::AdjustParam {
                key: MASTER_FADE_KEY.into(),
                delta: -0.5,
            },
            ms(30),
        );
        assert!((s.stage.level() - 0.5).abs() < 1e-9);
        act(&mut s, Action::Blackout { on: None }, ms(40));
        assert_eq!(s.stage.level(), 0.0);
    }

    #[test]
    fn record_toggles_and_says_for_how_long() {
        let mut none = AppState::new(CoreSettings::default());
        let fx = act(&mut none, Action::Record { on: None }, ms(0));
        assert!(!none.stage.control().record, "no recorder, no REC");
        assert!(
            fx.iter()
                .any(|f| matches!(f, Effect::Emit(Event::Notice { message, .. })
                if message.contains("on_key = true"))),
            "{fx:?}"
        );
        let mut s = AppState::new(CoreSettings {
            key_recorders: 1,
            ..CoreSettings::default()
        });
        act(&mut s, Action::Record { on: None }, ms(1000));
        assert!(s.stage.control().record);
        let fx = act(&mut s, Action::Record { on: None }, ms(66_000));
        assert!(!s.stage.control().record);
        assert!(
            fx.iter()
                .any(|f| matches!(f, Effect::Emit(Event::Notice { message, .. })
                if message.contains("1:05"))),
            "{fx:?}"
        );
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }

    fn sent_keys(fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .filter_map(|f| match f {
                Effect::Transport(crate::transport::types::TransportCmd::Update(u)) => {
                    Some(u.values.keys().cloned().collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn panic_on_daydream_sends_only_what_the_hosted_api_takes_and_blanks_locally() {
        let mut s = AppState::new(CoreSettings {
            backend: "daydream".into(),
            ..CoreSettings::default()
        });
        update(&mut s, Msg::Started, ms(0));
        let fx = act(&mut s, Action::Panic, ms(0));
        assert_eq!(sent_keys(&fx), vec!["prompts".to_string()]);
        assert_eq!(s.stage.control().level, 0.0);
        let fx = act(&mut s, Action::ReleasePanic, ms(100));
        assert_eq!(sent_keys(&fx), vec!["prompts".to_string()]);
        assert_eq!(s.stage.control().level, 1.0);
        assert!(
            crate::state::PanicMode::Pause
                .unsupported_on("daydream")
                .is_some()
        );
        assert!(
            crate::state::PanicMode::Auto
                .unsupported_on("daydream")
                .is_none()
        );
    }

    #[test]
    fn panic_on_scope_pauses_as_before_and_blackout_mode_only_blanks() {
        let mut s = AppState::new(CoreSettings {
            backend: "scope".into(),
            ..CoreSettings::default()
        });
        let mut keys = sent_keys(&act(&mut s, Action::Panic, ms(0)));
        keys.sort();
        assert_eq!(keys, vec!["paused".to_string(), "reset_cache".to_string()]);
        assert_eq!(s.stage.control().level, 1.0, "auto on Scope does not blank");
        let mut b = AppState::new(CoreSettings {
            backend: "scope".into(),
            panic_mode: crate::state::PanicMode::Blackout,
            ..CoreSettings::default()
        });
        assert!(sent_keys(&act(&mut b, Action::Panic, ms(0))).is_empty());
        assert_eq!(b.stage.control().level, 0.0);
        act(&mut b, Action::Resume, ms(10));
        assert_eq!(b.stage.control().level, 1.0, "resume releases panic");
    }
}
