//! Input and output health: what the show depends on, each in a named state the dashboard shows
//! and scripts receive as a `health` event when it changes.
//!
//! The states are derived here from messages the edges already send (audio frames and source
//! problems, MIDI activity, video statistics) plus [`Msg::InputHealth`] for edges with nothing
//! else to say (the video input). Derivation runs on the frame tick, so a change shows within one
//! tick of its threshold: every threshold below is under a second, the 1 s goal of issue 16.
//!
//! [`Msg::InputHealth`]: crate::msg::Msg::InputHealth

use std::time::Duration;

use serde::Serialize;

use crate::effect::{Effect, Event};
use crate::state::AppState;

/// Audio frames stop arriving for this long → `lost` (the analysis publishes ~60 a second).
pub const AUDIO_LOST_AFTER: Duration = Duration::from_millis(500);
/// Quieter than [`SILENCE_DB`] for this long → `silent`.
pub const SILENT_AFTER: Duration = Duration::from_millis(800);
/// RMS level under which the input counts as silent.
pub const SILENCE_DB: f32 = -60.0;
/// A peak at or over this level counts as clipping.
pub const CLIP_DB: f32 = -0.1;
/// How long `clipping` stays shown after the last clipped frame.
pub const CLIP_HOLD: Duration = Duration::from_secs(1);
/// Window over which the stream time is compared with engine time (`stale`).
pub const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Audio arriving slower than this fraction of real time is `stale`.
pub const STALE_RATIO: f64 = 0.5;
/// With the detected tempo, no beat for this long (or a lost / silent input) shows "no beat".
pub const NO_BEAT_AFTER: Duration = Duration::from_secs(3);

/// The state of one input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Working.
    Ok,
    /// Nothing arrives (device gone, network sender stopped, source error).
    Lost,
    /// Audio arrives but carries no signal.
    Silent,
    /// The level hits full scale.
    Clipping,
    /// Audio arrives slower than real time (a starved network stream, a drifting clock).
    Stale,
    /// A device disappeared (MIDI port unplugged).
    Gone,
    /// A video input stopped delivering frames.
    Stalled,
    /// An output failed (a video sink restarting with backoff).
    Failed,
}

impl HealthState {
    /// Lower-case label for the dashboard and the log.
    pub fn label(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::Lost => "signal lost",
            HealthState::Silent => "silent",
            HealthState::Clipping => "clipping",
            HealthState::Stale => "stale",
            HealthState::Gone => "gone",
            HealthState::Stalled => "stalled",
            HealthState::Failed => "failed",
        }
    }
}

/// One input or output that is not ok.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Fault {
    /// `audio`, `midi <port>`, `video in`, `sink <label>`.
    pub input: String,
    /// What is wrong.
    pub state: HealthState,
    /// What to do or why, for the performer.
    pub detail: String,
    /// Engine time it started.
    pub since: Duration,
}

/// Current faults and the trackers they are derived from.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct HealthSlice {
    /// Current faults, in a stable order (audio, MIDI, video in, sinks).
    pub faults: Vec<Fault>,
    /// A frame has arrived since start (before that, the source's own problems speak).
    pub had_frame: bool,
    /// Since when the input has been below [`SILENCE_DB`].
    pub quiet_since: Option<Duration>,
    /// When a frame last peaked at [`CLIP_DB`] or over.
    pub clipped_at: Option<Duration>,
    /// Start of the current rate window: (engine time, stream time).
    pub rate_window: Option<(Duration, f64)>,
    /// The last rate window was slower than [`STALE_RATIO`] of real time (its ratio).
    pub slow: Option<f64>,
    /// The video input's own report (`None` = fine).
    pub video_in: Option<(HealthState, String)>,
}

impl HealthSlice {
    /// The fault of `input`, if it has one.
    pub fn of(&self, input: &str) -> Option<&Fault> {
        self.faults.iter().find(|f| f.input == input)
    }

    /// The audio input's state.
    pub fn audio(&self) -> HealthState {
        self.of("audio").map_or(HealthState::Ok, |f| f.state)
    }
}

/// Tracks levels and stream time of a new audio frame (before [`refresh`]).
pub fn on_audio_frame(state: &mut AppState, now: Duration) {
    let f = &state.audio.frame;
    let h = &mut state.health;
    h.had_frame = true;
    if f.rms_db < SILENCE_DB {
        h.quiet_since.get_or_insert(now);
    } else {
        h.quiet_since = None;
    }
    if f.peak_db >= CLIP_DB {
        h.clipped_at = Some(now);
    }
    match h.rate_window {
        None => h.rate_window = Some((now, f.time)),
        Some((t0, s0)) if now.saturating_sub(t0) >= RATE_WINDOW => {
            let ratio = (f.time - s0) / now.saturating_sub(t0).as_secs_f64();
            h.slow = (ratio < STALE_RATIO).then_some(ratio);
            h.rate_window = Some((now, f.time));
        }
        Some(_) => {}
    }
}

/// The audio input's state at `now`, with the detail shown to the performer.
fn audio_state(state: &AppState, now: Duration) -> (HealthState, String) {
    let a = &state.audio;
    let h = &state.health;
    let src = if a.source.is_empty() {
        "the source"
    } else {
        a.source.as_str()
    };
    if let Some(p) = &a.problem {
        return (HealthState::Lost, p.clone());
    }
    if h.had_frame && now.saturating_sub(a.frame_at) > AUDIO_LOST_AFTER {
        return (
            HealthState::Lost,
            format!("no audio arriving from {src}: check the sender / cable"),
        );
    }
    if h.clipped_at
        .is_some_and(|t| now.saturating_sub(t) < CLIP_HOLD)
    {
        return (
            HealthState::Clipping,
            "input at full scale: turn the gain down".into(),
        );
    }
    if h.quiet_since
        .is_some_and(|t| now.saturating_sub(t) >= SILENT_AFTER)
    {
        return (
            HealthState::Silent,
            format!("no signal from {src} (below {SILENCE_DB} dBFS): check mute / gain"),
        );
    }
    if let Some(r) = h.slow {
        return (
            HealthState::Stale,
            format!(
                "audio arrives at {:.0}% of real time: network or clock trouble",
                r * 100.0
            ),
        );
    }
    (HealthState::Ok, String::new())
}

/// Everything that should be a fault at `now`, in display order.
fn wanted(state: &AppState, now: Duration) -> Vec<(String, HealthState, String)> {
    let mut out = Vec::new();
    let (s, d) = audio_state(state, now);
    if s != HealthState::Ok {
        out.push(("audio".to_string(), s, d));
    }
    for dev in &state.controls.midi.devices {
        if !dev.activity.connected {
            out.push((
                format!("midi {}", dev.label()),
                HealthState::Gone,
                "plug it back in; it reopens by itself".into(),
            ));
        }
    }
    if let Some((s, d)) = &state.health.video_in {
        out.push(("video in".to_string(), *s, d.clone()));
    }
    if let Some(v) = &state.video_output {
        // A sink waiting for its first video is a state, not a failure.
        for sink in v.stats.sinks.iter().filter(|s| !s.running && !s.waiting) {
            let why = sink
                .last_error
                .clone()
                .unwrap_or_else(|| "not running".into());
            out.push((
                format!("sink {}", sink.label),
                HealthState::Failed,
                format!("{why}; restarting with backoff"),
            ));
        }
    }
    out
}

/// Recomputes the faults at `now`; every change becomes a `health` event.
pub fn refresh(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    let wanted = wanted(state, now);
    let faults = &mut state.health.faults;
    // Cleared ones.
    for old in faults.iter() {
        if !wanted.iter().any(|(i, _, _)| *i == old.input) {
            fx.push(Effect::Emit(Event::Health {
                input: old.input.clone(),
                state: HealthState::Ok,
                detail: String::new(),
            }));
        }
    }
    let mut next = Vec::with_capacity(wanted.len());
    for (input, s, detail) in wanted {
        let prev = faults.iter().find(|f| f.input == input);
        let since = match prev {
            Some(p) if p.state == s => p.since,
            _ => now,
        };
        if prev.is_none_or(|p| p.state != s || p.detail != detail) {
            fx.push(Effect::Emit(Event::Health {
                input: input.clone(),
                state: s,
                detail: detail.clone(),
            }));
        }
        next.push(Fault {
            input,
            state: s,
            detail,
            since,
        });
    }
    *faults = next;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::features::AudioFrame;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::update::update;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn health_events(fx: &[Effect]) -> Vec<(String, HealthState)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Emit(Event::Health { input, state, .. }) => Some((input.clone(), *state)),
                _ => None,
            })
            .collect()
    }

    fn loud(t: f64) -> Msg {
        Msg::AudioFrame(AudioFrame {
            time: t,
            rms_db: -12.0,
            peak_db: -3.0,
            ..AudioFrame::default()
        })
    }

    #[test]
    fn frames_that_stop_arriving_are_signal_lost_within_a_second_and_come_back() {
        let mut s = AppState::new(CoreSettings::default());
        s.audio.source = "gstreamer".into();
        let mut t = 0;
        while t <= 1000 {
            update(&mut s, loud(t as f64 / 1000.0), ms(t));
            assert!(health_events(&update(&mut s, Msg::Tick, ms(t))).is_empty());
            t += 20;
        }
        // The sender stops: only ticks from now on.
        let mut lost_at = None;
        while t <= 3000 && lost_at.is_none() {
            let fx = update(&mut s, Msg::Tick, ms(t));
            if health_events(&fx) == vec![("audio".to_string(), HealthState::Lost)] {
                lost_at = Some(t);
            }
            t += 33;
        }
        let lost_at = lost_at.expect("signal lost reported");
        assert!(
            lost_at - 1000 <= 1000,
            "reported {} ms after",
            lost_at - 1000
        );
        assert!(s.health.of("audio").unwrap().detail.contains("gstreamer"));
        update(&mut s, loud(2.0), ms(t));
        let fx = update(&mut s, Msg::Tick, ms(t));
        assert_eq!(
            health_events(&fx),
            vec![("audio".to_string(), HealthState::Ok)]
        );
        assert!(s.health.faults.is_empty());
    }

    #[test]
    fn silence_and_clipping_are_named() {
        let mut s = AppState::new(CoreSettings::default());
        let quiet = |t: f64| {
            Msg::AudioFrame(AudioFrame {
                time: t,
                ..AudioFrame::default()
            })
        };
        update(&mut s, quiet(0.0), ms(0));
        update(&mut s, quiet(0.5), ms(500));
        update(&mut s, Msg::Tick, ms(500));
        assert_eq!(s.health.audio(), HealthState::Ok, "too short to call");
        update(&mut s, quiet(0.9), ms(900));
        update(&mut s, Msg::Tick, ms(900));
        assert_eq!(s.health.audio(), HealthState::Silent);
        let hot = Msg::AudioFrame(AudioFrame {
            time: 1.0,
            rms_db: -3.0,
            peak_db: 0.0,
            ..AudioFrame::default()
        });
        update(&mut s, hot, ms(1000));
        update(&mut s, Msg::Tick, ms(1000));
        assert_eq!(s.health.audio(), HealthState::Clipping);
        update(&mut s, loud(1.5), ms(1500));
        update(&mut s, loud(2.1), ms(2100));
        update(&mut s, Msg::Tick, ms(2100));
        assert_eq!(s.health.audio(), HealthState::Ok, "clip hold is over");
    }

    #[test]
    fn audio_slower_than_real_time_is_stale() {
        let mut s = AppState::new(CoreSettings::default());
        // Stream time advances 0.3 s per engine second.
        for k in 0..=60u64 {
            let t = k * 50;
            update(&mut s, loud(t as f64 * 0.0003), ms(t));
            update(&mut s, Msg::Tick, ms(t));
        }
        assert_eq!(s.health.audio(), HealthState::Stale);
    }

    #[test]
    fn a_source_problem_is_lost_with_its_own_words() {
        let mut s = AppState::new(CoreSettings::default());
        update(
            &mut s,
            Msg::AudioProblem(Some("input device X stopped delivering audio".into())),
            ms(10),
        );
        let fx = update(&mut s, Msg::Tick, ms(20));
        // Reported once, not again on the next tick.
        assert_eq!(health_events(&fx).len(), 0, "reported with the problem");
        assert_eq!(s.health.audio(), HealthState::Lost);
        assert!(health_events(&update(&mut s, Msg::Tick, ms(40))).is_empty());
        assert_eq!(
            s.health.of("audio").unwrap().detail,
            "input device X stopped delivering audio"
        );
    }

    #[test]
    fn a_failed_sink_and_a_stalled_video_input_are_faults() {
        let mut s = AppState::new(CoreSettings::default());
        let stats = crate::video::VideoStats {
            sinks: vec![crate::video::SinkStatus {
                label: "v4l2:/dev/video10".into(),
                running: false,
                last_error: Some("device busy".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        update(&mut s, Msg::VideoStats(Box::new(stats)), ms(100));
        update(
            &mut s,
            Msg::InputHealth {
                input: "video in".into(),
                problem: Some((HealthState::Stalled, "no frames from the webcam".into())),
            },
            ms(200),
        );
        let states: Vec<_> = s
            .health
            .faults
            .iter()
            .map(|f| (f.input.as_str(), f.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("video in", HealthState::Stalled),
                ("sink v4l2:/dev/video10", HealthState::Failed)
            ]
        );
        assert!(s.health.faults[1].detail.contains("device busy"));
    }
}
