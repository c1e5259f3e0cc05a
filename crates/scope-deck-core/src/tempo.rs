//! The room's clock: which tempo source sets the beat grid (Ableton Link, MIDI clock in, tap,
//! detected audio), the grid itself (predicted beat times in engine time), and the beats that
//! beat-locked changes run on — early by the pipeline latency (`[server] latency_ms`), so a
//! quantised switch *appears* on the beat instead of arriving there.
//!
//! Arbitration is an explicit priority list (`[tempo] sources`): the first source that is alive
//! wins; detection is the last resort. A tap holds until cleared. The performer can pin one source
//! live (`tempo_source` / `cycle_tempo_source`). Pure: every decision takes engine time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionSource};
use crate::audio::features::{AudioEvent, TempoSource};
use crate::audio::tempo::TempoCmd;
use crate::ctx::notice;
use crate::effect::{Effect, Event};
use crate::state::{AppState, Level};

/// A MIDI clock that has not announced itself for this long is gone (it reports once a beat, so
/// this covers 30 BPM).
pub const MIDI_STALE: Duration = Duration::from_millis(2500);
/// A Link report older than this means the Link edge stopped (it reports several times a beat).
pub const LINK_STALE: Duration = Duration::from_secs(1);
/// Taps further apart than this start a new run (as the tracker does).
const TAP_GAP: std::ops::RangeInclusive<f64> = 0.2..=2.0;
/// Taps kept for the median.
const TAPS: usize = 8;
/// The grid counts as running while its last anchor is at most this old.
pub const GRID_STALE: Duration = Duration::from_secs(3);
/// Headless `tempo` events at most this often while only the confidence moves.
const EVENT_EVERY: Duration = Duration::from_secs(1);

/// `[tempo]` and the latency, fixed at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct TempoSettings {
    /// Priority: the first alive source wins (detection is appended when missing).
    pub sources: Vec<TempoSource>,
    /// Pipeline latency (`[server] latency_ms`): beat-locked changes go out this much early
    /// (until a measurement replaces it, see `measure_latency`).
    pub latency: Duration,
    /// Measure the glass-to-glass latency on the running show (`[server] measure_latency`) and
    /// use it instead of `latency` once measured (`crate::latency`).
    pub measure_latency: bool,
}

impl Default for TempoSettings {
    fn default() -> Self {
        TempoSettings {
            sources: vec![
                TempoSource::Link,
                TempoSource::MidiClock,
                TempoSource::Tap,
                TempoSource::Detected,
            ],
            latency: Duration::ZERO,
            measure_latency: false,
        }
    }
}

/// What the Link edge reports (several times a beat and on every change).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkReport {
    /// Engine time at which `beat` was read from the session.
    #[serde(skip)]
    pub at: Duration,
    /// The session's beat position at `at` (Link's beat timeline, quantum = bar length).
    pub beat: f64,
    /// Session tempo.
    pub bpm: f64,
    /// Other peers in the session.
    pub peers: u32,
    /// Session transport (start/stop sync).
    pub playing: bool,
}

/// What the reducer asks of the Link edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum LinkCmd {
    /// Set the session tempo (tap or nudge while on Link: everyone follows).
    SetTempo {
        /// New tempo.
        bpm: f64,
    },
    /// Start or stop the session transport.
    SetPlaying {
        /// Playing.
        playing: bool,
    },
}

/// The beat grid: beat `count` (`in_bar` within its bar) falls at engine time `at`; later beats
/// follow at `bpm`. Predicts every beat time; re-anchored by each source's reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Grid {
    /// Engine time of beat `count`.
    #[serde(skip)]
    pub at: Duration,
    /// Beat number at `at`.
    pub count: u64,
    /// Beat index within the bar at `at`.
    pub in_bar: u32,
    /// Tempo (0 = no grid).
    pub bpm: f64,
    /// Transport running (MIDI clock out start/stop, Scope's `is_playing`).
    pub playing: bool,
}

impl Grid {
    /// Seconds per beat, when there is a tempo.
    pub fn period(&self) -> Option<f64> {
        (self.bpm > 0.0 && self.bpm.is_finite()).then(|| 60.0 / self.bpm)
    }

    /// The (fractional) beat number at engine time `t`.
    pub fn beat_at(&self, t: Duration) -> Option<f64> {
        let p = self.period()?;
        Some(self.count as f64 + (t.as_secs_f64() - self.at.as_secs_f64()) / p)
    }

    /// Engine time at which the grid reaches beat `beat` (None before engine time zero).
    pub fn time_of(&self, beat: f64) -> Option<Duration> {
        let p = self.period()?;
        let t = self.at.as_secs_f64() + (beat - self.count as f64) * p;
        (t >= 0.0 && t.is_finite()).then(|| Duration::from_secs_f64(t))
    }

    /// Index in the bar of beat `k`.
    pub fn in_bar_of(&self, k: u64, beats_per_bar: u32) -> u32 {
        let bpb = u64::from(beats_per_bar.max(1));
        let d = (k as i128 - self.count as i128).rem_euclid(bpb as i128) as u64;
        ((u64::from(self.in_bar) + d) % bpb) as u32
    }
}

/// Held tap tempo.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tap {
    /// Recent tap times (engine seconds), ring.
    times: [f64; TAPS],
    /// Taps in the current run.
    n: usize,
    /// The held tempo once two taps agree on one (cleared by `clear_tap`).
    pub bpm: Option<f64>,
}

impl Tap {
    /// Records a tap at `t` seconds; returns the tempo (median interval) after two or more.
    fn tap(&mut self, t: f64) -> Option<f64> {
        if self.n > 0 && !TAP_GAP.contains(&(t - self.times[(self.n - 1) % TAPS])) {
            self.n = 0;
        }
        self.times[self.n % TAPS] = t;
        self.n += 1;
        let k = self.n.min(TAPS);
        if k < 2 {
            return self.bpm;
        }
        let first = self.n - k;
        let mut iv = [0.0f64; TAPS];
        for i in 1..k {
            iv[i - 1] = self.times[(first + i) % TAPS] - self.times[(first + i - 1) % TAPS];
        }
        let iv = &mut iv[..k - 1];
        iv.sort_by(f64::total_cmp);
        let med = iv[iv.len() / 2];
        if med > 0.0 {
            // To 0.01 BPM: a tap is not more exact, and the figure stays readable.
            self.bpm = Some(((6000.0 / med).round() / 100.0).clamp(20.0, 400.0));
        }
        self.bpm
    }
}

/// The tempo slice of the state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TempoSlice {
    /// Start-up settings.
    pub settings: TempoSettings,
    /// Pinned by the performer (None = automatic by priority).
    pub pinned: Option<TempoSource>,
    /// Who sets the grid now.
    pub active: TempoSource,
    /// Since when (engine time).
    pub since: Duration,
    /// Confidence of the active source, 0..1.
    pub confidence: f32,
    /// Last MIDI clock report: tempo and when.
    pub midi: Option<(f64, Duration)>,
    /// Last Link report (`None`: no Link in this build or not enabled).
    pub link: Option<LinkReport>,
    /// Tap tempo.
    pub tap: Tap,
    /// The arbitrated beat grid.
    pub grid: Grid,
    /// Engine time minus stream time, the smallest seen (frames are folded late, never early).
    stream_offset: Option<f64>,
    /// The glass-to-glass latency measured on the running show.
    pub meter: crate::latency::LatencyMeter,
    /// Next beat (grid numbering) to announce to beat-locked changes when latency is on.
    lead_next: Option<u64>,
    /// The largest latency of several outputs (`[[outputs]] latency_ms`), kept by
    /// `crate::outputs`: beat-locked changes are decided at least this early. Zero with one
    /// server.
    pub lead_floor: Duration,
    /// Last `tempo` event: source, rounded BPM, confidence tenths, when.
    last_event: Option<(TempoSource, i64, i32, Duration)>,
    /// The Link beat and tempo last handed to the tracker (once a beat, as MIDI clock does).
    link_forwarded: Option<(i64, u64)>,
    /// The Link session's transport has been started at least once: from then on it says when
    /// the grid plays (sessions without start/stop sync never start it, and always play).
    link_transport_seen: bool,
}

impl TempoSlice {
    /// A slice with these settings, detection active.
    pub fn new(settings: TempoSettings) -> Self {
        TempoSlice {
            settings,
            ..Default::default()
        }
    }

    /// The priority list as used: detection last when not listed.
    pub fn order(&self) -> Vec<TempoSource> {
        let mut v = self.settings.sources.clone();
        if !v.contains(&TempoSource::Detected) {
            v.push(TempoSource::Detected);
        }
        v
    }

    /// Whether `s` can lead right now.
    pub fn alive(&self, s: TempoSource, now: Duration) -> bool {
        match s {
            TempoSource::Detected => true,
            TempoSource::Tap => self.tap.bpm.is_some(),
            TempoSource::MidiClock => self
                .midi
                .is_some_and(|(_, at)| now.saturating_sub(at) <= MIDI_STALE),
            TempoSource::Link => self.link.is_some_and(|l| {
                l.peers > 0 && l.bpm > 0.0 && now.saturating_sub(l.at) <= LINK_STALE
            }),
        }
    }

    /// The source that should lead at `now`: the pinned one when alive, else the first alive.
    pub fn choose(&self, now: Duration) -> TempoSource {
        if let Some(p) = self.pinned.filter(|p| self.alive(*p, now)) {
            return p;
        }
        self.order()
            .into_iter()
            .find(|s| self.alive(*s, now))
            .unwrap_or(TempoSource::Detected)
    }

    /// The latency beat-locked changes are decided early by: the measured one when measuring
    /// and measured, else `[server] latency_ms` — or, with several outputs, the largest of
    /// theirs when that is more ([`TempoSlice::lead_floor`]; each output's own share is held
    /// back for it, `crate::outputs`).
    pub fn latency(&self) -> Duration {
        self.base_latency().max(self.lead_floor)
    }

    /// The measured latency when measuring and measured, else `[server] latency_ms` (the first
    /// output's, whose video the deck measures on).
    pub fn base_latency(&self) -> Duration {
        self.measured_latency().unwrap_or(self.settings.latency)
    }

    /// The next beat (grid numbering) beat-locked changes will be decided for; it moves exactly
    /// when a fold decided some.
    pub fn lead_next(&self) -> Option<u64> {
        self.lead_next
    }

    /// The measured latency in use (None: the configured one serves).
    pub fn measured_latency(&self) -> Option<Duration> {
        self.settings
            .measure_latency
            .then(|| self.meter.measured())
            .flatten()
    }
}

/// The command that hands the tracker to source `s`.
fn command_for(t: &TempoSlice, s: TempoSource, now: Duration) -> Option<TempoCmd> {
    match s {
        TempoSource::Detected => Some(TempoCmd::ExternalStopped),
        TempoSource::Tap => t.tap.bpm.map(|bpm| TempoCmd::External {
            bpm,
            beat_phase: None,
            source: TempoSource::Tap,
        }),
        TempoSource::MidiClock => t.midi.map(|(bpm, _)| TempoCmd::External {
            bpm,
            beat_phase: None,
            source: TempoSource::MidiClock,
        }),
        TempoSource::Link => t.link.map(|l| link_command(&l, now)),
    }
}

/// The tracker command for a Link report, its phase carried forward to `now`.
fn link_command(l: &LinkReport, now: Duration) -> TempoCmd {
    let beat = l.beat + (now.as_secs_f64() - l.at.as_secs_f64()) * l.bpm / 60.0;
    TempoCmd::External {
        bpm: l.bpm,
        beat_phase: Some(beat.rem_euclid(1.0)),
        source: TempoSource::Link,
    }
}

/// Re-chooses the leading source; on a change the tracker is handed over and a `tempo` event
/// says so. Also emits the event when the tempo or confidence moved (at most once a second).
pub fn arbitrate(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    let t = &mut state.tempo;
    let want = t.choose(now);
    let changed = want != t.active;
    if changed {
        t.active = want;
        t.since = now;
        if let Some(cmd) = command_for(t, want, now) {
            fx.push(Effect::Tempo(cmd));
        }
        state.audio.tempo_source = want;
    }
    t.confidence = match t.active {
        TempoSource::Detected => state.audio.frame.confidence.clamp(0.0, 1.0),
        // An external clock or a held tap is taken as given.
        _ => 1.0,
    };
    // The leading source's own tempo (the grid catches up with the next frame or beat).
    let bpm = match t.active {
        TempoSource::Tap => t.tap.bpm,
        TempoSource::MidiClock => t.midi.map(|m| m.0),
        TempoSource::Link => t.link.map(|l| l.bpm),
        TempoSource::Detected => None,
    }
    .unwrap_or(t.grid.bpm);
    let key = (
        t.active,
        (bpm * 10.0).round() as i64,
        (t.confidence * 10.0).round() as i32,
    );
    let due = match t.last_event {
        None => true,
        Some((s, b, c, at)) => {
            s != key.0 || ((b, c) != (key.1, key.2) && now.saturating_sub(at) >= EVENT_EVERY)
        }
    };
    if due {
        t.last_event = Some((key.0, key.1, key.2, now));
        fx.push(Effect::Emit(Event::Tempo {
            source: t.active,
            pinned: t.pinned,
            confidence: t.confidence,
            bpm: key.1 as f64 / 10.0,
            latency_ms: t.latency().as_millis() as u64,
            latency_measured: t.measured_latency().is_some(),
            link_peers: t.link.map(|l| l.peers),
        }));
    }
}

/// A report from a tempo source outside the audio (MIDI clock in): recorded, and handed to the
/// tracker only while that source leads.
pub fn on_external(state: &mut AppState, cmd: TempoCmd, now: Duration, fx: &mut Vec<Effect>) {
    match cmd {
        // Only MIDI clock reports this way (Link has its own message).
        TempoCmd::External { bpm, .. } => {
            state.tempo.midi = Some((bpm, now));
            arbitrate(state, now, fx);
            if state.tempo.active == TempoSource::MidiClock {
                fx.push(Effect::Tempo(cmd));
            }
        }
        TempoCmd::ExternalStopped => {
            state.tempo.midi = None;
            arbitrate(state, now, fx);
        }
        // Performer commands arrive as actions; pass anything else straight through.
        other => fx.push(Effect::Tempo(other)),
    }
}

/// A Link report: recorded; while Link leads it anchors the grid and steers the tracker.
pub fn on_link(state: &mut AppState, r: LinkReport, now: Duration, fx: &mut Vec<Effect>) {
    let was_playing = state.tempo.link.is_some_and(|l| l.playing);
    state.tempo.link = Some(r);
    state.tempo.link_transport_seen |= r.playing;
    let was = state.tempo.active;
    arbitrate(state, now, fx);
    if state.tempo.active != TempoSource::Link {
        state.tempo.link_forwarded = None;
        return;
    }
    // The tracker is re-anchored once a beat and on a tempo change, not on every report (each
    // anchor lands a little late on the analysis thread; once a beat keeps that from jittering).
    let key = (r.beat.floor() as i64, r.bpm.to_bits());
    if was == TempoSource::Link && state.tempo.link_forwarded != Some(key) {
        fx.push(Effect::Tempo(link_command(&r, now)));
    }
    state.tempo.link_forwarded = Some(key);
    let bpb = state.settings.beats_per_bar.max(1);
    if let Some(p) = (r.bpm > 0.0).then(|| 60.0 / r.bpm) {
        let whole = r.beat.floor();
        let at = r.at.as_secs_f64() - (r.beat - whole) * p;
        if at >= 0.0 && whole >= 0.0 {
            state.tempo.grid = Grid {
                at: Duration::from_secs_f64(at),
                count: whole as u64,
                in_bar: (whole as u64 % u64::from(bpb)) as u32,
                bpm: r.bpm,
                playing: r.playing || !state.tempo.link_transport_seen,
            };
        }
    }
    if was_playing != r.playing && state.tempo.link_transport_seen {
        notice(
            state,
            fx,
            Level::Info,
            format!(
                "Link transport {}",
                if r.playing { "started" } else { "stopped" }
            ),
            now,
        );
    }
}

/// A new audio frame (already in `state.audio.frame`): learns the stream → engine clock offset;
/// unless Link leads the grid's tempo follows the tracker, and while Link leads the frame's beat
/// values are the session's, so everything downstream (Scope's beat forwarding, the dashboard)
/// reads the arbitrated grid.
pub fn on_frame(state: &mut AppState, now: Duration) {
    let f = state.audio.frame;
    let off = now.as_secs_f64() - f.time;
    let bpb = state.settings.beats_per_bar.max(1);
    let t = &mut state.tempo;
    // The smallest offset is the least delayed delivery; let it creep up 1 ms a minute so a
    // drifting device clock is followed.
    t.stream_offset = Some(match t.stream_offset {
        Some(o) if o + 0.001 / 60.0 < off => o + 0.001 / 60.0,
        _ => off,
    });
    if t.active == TempoSource::Link {
        if let Some(b) = t.grid.beat_at(now).filter(|b| *b >= 0.0) {
            let whole = b.floor();
            let fr = &mut state.audio.frame;
            fr.bpm = t.grid.bpm as f32;
            fr.beat_phase = (b - whole) as f32;
            fr.bar_position = (whole as u64 % u64::from(bpb)) as f32 + fr.beat_phase;
            fr.confidence = 1.0;
        }
    } else {
        t.grid.bpm = f64::from(f.bpm).max(0.0);
        t.grid.playing = f.bpm >= 20.0;
    }
    state.audio.frame.tempo_source = t.active;
    state.audio.frame.playing = t.grid.playing;
}

/// A beat from the tracker: re-anchors the grid (unless Link leads).
pub fn on_beat(state: &mut AppState, ev: &AudioEvent, now: Duration) {
    let AudioEvent::Beat {
        time,
        count,
        in_bar,
        bpm,
    } = *ev
    else {
        return;
    };
    let t = &mut state.tempo;
    if t.active == TempoSource::Link {
        return;
    }
    let at = t
        .stream_offset
        .map_or(now.as_secs_f64(), |o| time + o)
        .max(0.0);
    t.grid = Grid {
        at: Duration::from_secs_f64(at),
        count,
        in_bar,
        bpm: f64::from(bpm).max(0.0),
        playing: bpm >= 20.0,
    };
}

/// Whether the grid predicts beats at `now`.
pub fn grid_running(state: &AppState, now: Duration) -> bool {
    let g = &state.tempo.grid;
    g.bpm > 0.0 && now.saturating_sub(g.at) <= GRID_STALE
}

/// Beats for beat-locked changes (triggers, quantised switches, cue launches), each `latency`
/// before the grid says it falls (`time` is the stream time it falls at). Without latency the
/// tracker's own beats serve and this returns nothing.
pub fn lead_beats(state: &mut AppState, now: Duration) -> Vec<AudioEvent> {
    let lat = state.tempo.latency();
    let bpb = state.settings.beats_per_bar;
    let mut out = Vec::new();
    if lat.is_zero() || !grid_running(state, now) {
        state.tempo.lead_next = None;
        return out;
    }
    let t = &mut state.tempo;
    let g = t.grid;
    let Some(ahead) = g.beat_at(now + lat) else {
        return out;
    };
    if ahead < 0.0 {
        return out;
    }
    let due_last = ahead.floor() as u64;
    let next = match t.lead_next {
        // Never twice, and never a burst: more than a beat behind (the grid jumped) skips ahead.
        Some(n) if n + 1 >= due_last => n,
        _ => due_last,
    };
    let off = t.stream_offset.unwrap_or(0.0);
    let mut k = next;
    while k <= due_last && out.len() < 4 {
        let at = g.time_of(k as f64).map_or(0.0, |d| d.as_secs_f64());
        out.push(AudioEvent::Beat {
            time: at - off,
            count: k,
            in_bar: g.in_bar_of(k, bpb),
            bpm: g.bpm as f32,
        });
        k += 1;
    }
    t.lead_next = Some(k);
    out
}

/// Whether beat events from the tracker drive beat-locked changes directly (no latency).
pub fn beats_are_direct(state: &AppState) -> bool {
    state.tempo.latency().is_zero()
}

/// A visible change of the received video at engine time `at` (the video edge's step
/// detector): a latency sample when it pairs with a change sent before it. When the latency in
/// use moves, a `tempo` event says so; when it first becomes non-zero, beat-locked changes move
/// from the tracker's beats to lead beats without announcing a beat twice.
pub fn on_video_change(state: &mut AppState, at: Duration, now: Duration, fx: &mut Vec<Effect>) {
    let before = state.tempo.latency();
    let Some(sample) = state.tempo.meter.on_seen(at) else {
        return;
    };
    let after = state.tempo.latency();
    if after == before {
        return;
    }
    latency_changed(state, before, now);
    // Said once when the measurement takes over, then only when it moves by more than 50 ms.
    if before == state.tempo.settings.latency || after.abs_diff(before) > Duration::from_millis(50)
    {
        announce_latency(state, None, after, sample, now, fx);
    }
}

/// A latency sample moved the latency in use (it was `before`): the next arbitration reports
/// it, and when it was zero and is not any more, beats up to now went out directly and the next
/// one goes out as a lead beat (at once when it falls within the latency), never twice.
pub fn latency_changed(state: &mut AppState, before: Duration, now: Duration) {
    let t = &mut state.tempo;
    t.last_event = None;
    if before.is_zero() && !t.latency().is_zero() {
        t.lead_next = t
            .grid
            .beat_at(now)
            .filter(|b| *b >= 0.0)
            .map(|b| b.floor() as u64 + 1);
    }
}

/// The notice that a measured latency took over or moved (`output`: whose, with several).
pub fn announce_latency(
    state: &mut AppState,
    output: Option<&str>,
    latency: Duration,
    sample: Duration,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let whose = output.map_or(String::new(), |o| format!(" on {o}"));
    crate::ctx::notice(
        state,
        fx,
        crate::state::Level::Info,
        format!(
            "pipeline latency measured{whose}: {} ms (last sample {} ms); beat-locked changes go out that early",
            latency.as_millis(),
            sample.as_millis()
        ),
        now,
    );
}

/// The tempo actions: tap, nudge, pin/cycle/clear. Returns false for other actions.
pub fn on_action(
    state: &mut AppState,
    action: &Action,
    _source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> bool {
    match action {
        Action::TapTempo => {
            let bpm = state.tempo.tap.tap(now.as_secs_f64());
            match state.tempo.active {
                TempoSource::Link => {
                    if let Some(bpm) = bpm {
                        fx.push(Effect::Link(LinkCmd::SetTempo { bpm }));
                    }
                }
                // The clock leads: the tap is kept (it leads when the clock stops).
                TempoSource::MidiClock => {}
                TempoSource::Tap | TempoSource::Detected => {
                    // The tap is a beat: the tracker anchors its phase on it.
                    fx.push(Effect::Tempo(TempoCmd::Tap {
                        at_secs: now.as_secs_f64(),
                    }));
                    arbitrate(state, now, fx);
                    if let (TempoSource::Tap, Some(bpm)) = (state.tempo.active, bpm) {
                        fx.push(Effect::Tempo(TempoCmd::External {
                            bpm,
                            beat_phase: None,
                            source: TempoSource::Tap,
                        }));
                    }
                }
            }
        }
        Action::NudgeTempo { bpm: d } => match state.tempo.active {
            TempoSource::Link => {
                if let Some(l) = state.tempo.link {
                    let bpm = (l.bpm + d).clamp(20.0, 400.0);
                    fx.push(Effect::Link(LinkCmd::SetTempo { bpm }));
                }
            }
            TempoSource::MidiClock => notice(
                state,
                fx,
                Level::Info,
                "MIDI clock sets the tempo: nudge it at the sender".into(),
                now,
            ),
            TempoSource::Tap | TempoSource::Detected => {
                // A nudged tempo is a held manual tempo, like a tap.
                let cur = state
                    .tempo
                    .tap
                    .bpm
                    .filter(|_| state.tempo.active == TempoSource::Tap)
                    .unwrap_or(f64::from(state.audio.frame.bpm));
                let base = if cur > 0.0 { cur } else { 120.0 };
                let bpm = (base + d).clamp(20.0, 400.0);
                state.tempo.tap.bpm = Some(bpm);
                arbitrate(state, now, fx);
                if state.tempo.active == TempoSource::Tap {
                    fx.push(Effect::Tempo(TempoCmd::External {
                        bpm,
                        beat_phase: None,
                        source: TempoSource::Tap,
                    }));
                }
            }
        },
        Action::ClearTap => {
            state.tempo.tap = Tap::default();
            notice(state, fx, Level::Info, "tap tempo cleared".into(), now);
            arbitrate(state, now, fx);
        }
        Action::TempoSource { source } => {
            state.tempo.pinned = source.pinned();
            pinned_notice(state, now, fx);
            arbitrate(state, now, fx);
        }
        Action::CycleTempoSource => {
            let order = state.tempo.order();
            state.tempo.pinned = match state.tempo.pinned {
                None => order.first().copied(),
                Some(p) => order
                    .iter()
                    .position(|s| *s == p)
                    .and_then(|i| order.get(i + 1).copied()),
            };
            pinned_notice(state, now, fx);
            arbitrate(state, now, fx);
        }
        Action::LinkPlay { playing } => {
            if state.tempo.link.is_some() {
                fx.push(Effect::Link(LinkCmd::SetPlaying { playing: *playing }));
            } else {
                notice(
                    state,
                    fx,
                    Level::Info,
                    "Link is off (build with --features link, [tempo] link = true)".into(),
                    now,
                );
            }
        }
        _ => return false,
    }
    true
}

fn pinned_notice(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    let text = match state.tempo.pinned {
        None => "tempo source: automatic".to_string(),
        Some(s) if state.tempo.alive(s, now) => format!("tempo source: {} (pinned)", label(s)),
        Some(s) => format!(
            "tempo source: {} pinned, but it is not alive: falling back by priority",
            label(s)
        ),
    };
    notice(state, fx, Level::Info, text, now);
}

/// The dashboard's name for a source.
pub fn label(s: TempoSource) -> &'static str {
    match s {
        TempoSource::Detected => "detected",
        TempoSource::Tap => "tap",
        TempoSource::MidiClock => "midi clock",
        TempoSource::Link => "link",
    }
}

/// `[tempo] sources` names, as written in config.
pub fn parse_source(name: &str) -> Option<TempoSource> {
    match name {
        "detected" | "audio" => Some(TempoSource::Detected),
        "tap" => Some(TempoSource::Tap),
        "midi_clock" | "midi" => Some(TempoSource::MidiClock),
        "link" => Some(TempoSource::Link),
        _ => None,
    }
}

/// Pinning choice as written in a script (`"auto"` unpins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceChoice {
    /// Unpinned: by priority.
    Auto,
    /// Detected audio.
    Detected,
    /// Tap.
    Tap,
    /// MIDI clock.
    MidiClock,
    /// Link.
    Link,
}

impl SourceChoice {
    /// The source pinned by this choice (`None` for automatic).
    pub fn pinned(self) -> Option<TempoSource> {
        match self {
            SourceChoice::Auto => None,
            SourceChoice::Detected => Some(TempoSource::Detected),
            SourceChoice::Tap => Some(TempoSource::Tap),
            SourceChoice::MidiClock => Some(TempoSource::MidiClock),
            SourceChoice::Link => Some(TempoSource::Link),
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

    fn state(sources: &[TempoSource], latency_ms: u64) -> AppState {
        let mut s = AppState::new(CoreSettings::default());
        s.tempo = TempoSlice::new(TempoSettings {
            sources: sources.to_vec(),
            latency: ms(latency_ms),
            ..TempoSettings::default()
        });
        s
    }

    fn midi(bpm: f64) -> Msg {
        Msg::Tempo(TempoCmd::External {
            bpm,
            beat_phase: Some(0.0),
            source: TempoSource::MidiClock,
        })
    }

    fn key(a: Action) -> Msg {
        Msg::key(a)
    }

    fn tempo_events(fx: &[Effect]) -> Vec<TempoSource> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Emit(Event::Tempo { source, .. }) => Some(*source),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn midi_clock_leads_while_alive_and_hands_back_when_it_goes_quiet() {
        let mut s = state(&TempoSettings::default().sources, 0);
        let fx = update(&mut s, midi(128.0), ms(1000));
        assert_eq!(s.tempo.active, TempoSource::MidiClock);
        assert_eq!(tempo_events(&fx), vec![TempoSource::MidiClock]);
        // The report itself reaches the tracker (it leads).
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Tempo(TempoCmd::External { source: TempoSource::MidiClock, bpm, .. }) if *bpm == 128.0
        )));
        // Still alive 2 s later (reports come once a beat).
        update(&mut s, Msg::Tick, ms(3000));
        assert_eq!(s.tempo.active, TempoSource::MidiClock);
        // Quiet for longer than MIDI_STALE: detection again, the tracker released.
        let fx = update(&mut s, Msg::Tick, ms(3600));
        assert_eq!(s.tempo.active, TempoSource::Detected);
        assert!(fx.contains(&Effect::Tempo(TempoCmd::ExternalStopped)));
        assert_eq!(tempo_events(&fx), vec![TempoSource::Detected]);
        assert_eq!(s.audio.tempo_source, TempoSource::Detected);
    }

    #[test]
    fn a_lower_priority_source_is_recorded_but_not_forwarded() {
        // Tap outranks MIDI clock here.
        let mut s = state(
            &[
                TempoSource::Tap,
                TempoSource::MidiClock,
                TempoSource::Detected,
            ],
            0,
        );
        update(&mut s, key(Action::TapTempo), ms(1000));
        update(&mut s, key(Action::TapTempo), ms(1500));
        assert_eq!(s.tempo.active, TempoSource::Tap);
        assert_eq!(s.tempo.tap.bpm, Some(120.0));
        let fx = update(&mut s, midi(140.0), ms(1600));
        assert_eq!(s.tempo.active, TempoSource::Tap);
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::Tempo(_))),
            "MIDI clock must not steer the tracker while tap leads: {fx:?}"
        );
        // Clearing the tap hands over to the clock, which reaches the tracker at once.
        let fx = update(&mut s, key(Action::ClearTap), ms(1700));
        assert_eq!(s.tempo.active, TempoSource::MidiClock);
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Tempo(TempoCmd::External { source: TempoSource::MidiClock, bpm, .. }) if *bpm == 140.0
        )));
    }

    #[test]
    fn tap_holds_until_cleared() {
        let mut s = state(&TempoSettings::default().sources, 0);
        update(&mut s, key(Action::TapTempo), ms(1000));
        let fx = update(&mut s, key(Action::TapTempo), ms(1500));
        assert_eq!(s.tempo.active, TempoSource::Tap);
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Emit(Event::Tempo { source: TempoSource::Tap, bpm, confidence, .. })
                if *bpm == 120.0 && *confidence == 1.0
        )));
        // The tap anchors the phase and holds the tempo (External never gives way to the music).
        assert!(fx.contains(&Effect::Tempo(TempoCmd::Tap { at_secs: 1.5 })));
        assert!(fx.contains(&Effect::Tempo(TempoCmd::External {
            bpm: 120.0,
            beat_phase: None,
            source: TempoSource::Tap
        })));
        for t in (2000..600_000).step_by(10_000) {
            update(&mut s, Msg::Tick, ms(t));
        }
        assert_eq!(s.tempo.active, TempoSource::Tap);
        let fx = update(&mut s, key(Action::ClearTap), ms(600_000));
        assert_eq!(s.tempo.active, TempoSource::Detected);
        assert!(fx.contains(&Effect::Tempo(TempoCmd::ExternalStopped)));
    }

    #[test]
    fn a_nudge_on_detected_tempo_becomes_a_held_manual_tempo() {
        let mut s = state(&TempoSettings::default().sources, 0);
        s.audio.frame.bpm = 124.0;
        let fx = update(&mut s, key(Action::NudgeTempo { bpm: 0.5 }), ms(100));
        assert_eq!(s.tempo.active, TempoSource::Tap);
        assert!(fx.contains(&Effect::Tempo(TempoCmd::External {
            bpm: 124.5,
            beat_phase: None,
            source: TempoSource::Tap
        })));
        // MIDI clock leading: a nudge is refused with a reason, nothing changes.
        let mut s = state(&TempoSettings::default().sources, 0);
        update(&mut s, midi(120.0), ms(0));
        let fx = update(&mut s, key(Action::NudgeTempo { bpm: 1.0 }), ms(100));
        assert!(!fx.iter().any(|e| matches!(e, Effect::Tempo(_))));
        assert!(s.ui.notices.back().unwrap().message.contains("MIDI clock"));
    }

    fn link(bpm: f64, beat: f64, peers: u32, at: u64) -> Msg {
        Msg::Link(LinkReport {
            at: ms(at),
            beat,
            bpm,
            peers,
            playing: true,
        })
    }

    #[test]
    fn link_leads_only_with_peers_and_tap_or_nudge_change_the_session_tempo() {
        let mut s = state(&TempoSettings::default().sources, 0);
        update(&mut s, midi(120.0), ms(0));
        // Alone in the session: Link does not lead.
        update(&mut s, link(128.0, 0.0, 0, 10), ms(10));
        assert_eq!(s.tempo.active, TempoSource::MidiClock);
        let fx = update(&mut s, link(128.0, 1.0, 1, 20), ms(20));
        assert_eq!(s.tempo.active, TempoSource::Link);
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Tempo(TempoCmd::External { source: TempoSource::Link, bpm, .. }) if *bpm == 128.0
        )));
        // The grid is the session's: beat 1 at 20 ms, 128 BPM.
        assert_eq!(s.tempo.grid.count, 1);
        assert_eq!(s.tempo.grid.at, ms(20));
        let fx = update(&mut s, key(Action::NudgeTempo { bpm: -1.0 }), ms(30));
        assert!(fx.contains(&Effect::Link(LinkCmd::SetTempo { bpm: 127.0 })));
        update(&mut s, key(Action::TapTempo), ms(1000));
        let fx = update(&mut s, key(Action::TapTempo), ms(1400));
        assert!(
            fx.contains(&Effect::Link(LinkCmd::SetTempo { bpm: 150.0 })),
            "{fx:?} {:?}",
            s.tempo
        );
        // Link's reports stop: after LINK_STALE the MIDI clock (still reporting) leads again.
        update(&mut s, midi(120.0), ms(1500));
        update(&mut s, Msg::Tick, ms(2100));
        assert_eq!(s.tempo.active, TempoSource::MidiClock);
    }

    #[test]
    fn link_steers_the_tracker_once_a_beat_and_plays_without_start_stop_sync() {
        let mut s = state(&TempoSettings::default().sources, 0);
        let mut forwarded = 0;
        // 50 reports a second for 2 s at 120 BPM: beats 0..4.
        for i in 0..100u64 {
            let at = 20 * i;
            let fx = update(&mut s, link(120.0, at as f64 / 500.0, 1, at), ms(at));
            forwarded += fx
                .iter()
                .filter(|e| matches!(e, Effect::Tempo(TempoCmd::External { .. })))
                .count();
        }
        // Once on taking the lead, then at beats 1, 2 and 3.
        assert_eq!(forwarded, 4);
        // Nobody ever started the transport: the grid plays (MIDI clock out runs).
        assert!(s.tempo.grid.playing);
        let stopped = |at: u64, playing| {
            Msg::Link(LinkReport {
                at: ms(at),
                beat: at as f64 / 500.0,
                bpm: 120.0,
                peers: 1,
                playing,
            })
        };
        update(&mut s, stopped(2000, true), ms(2000));
        assert!(s.tempo.grid.playing);
        // Once started, the session's transport says when the grid plays.
        update(&mut s, stopped(2020, false), ms(2020));
        assert!(!s.tempo.grid.playing);
        assert!(s.ui.notices.back().unwrap().message.contains("stopped"));
    }

    #[test]
    fn pinning_overrides_priority_and_cycling_walks_the_list() {
        let mut s = state(&TempoSettings::default().sources, 0);
        update(&mut s, midi(120.0), ms(0));
        update(
            &mut s,
            key(Action::TempoSource {
                source: SourceChoice::Detected,
            }),
            ms(10),
        );
        assert_eq!(s.tempo.active, TempoSource::Detected);
        let fx = update(&mut s, midi(121.0), ms(20));
        assert!(!fx.iter().any(|e| matches!(e, Effect::Tempo(_))));
        // auto → link → midi_clock → tap → detected → auto
        update(
            &mut s,
            key(Action::TempoSource {
                source: SourceChoice::Auto,
            }),
            ms(30),
        );
        let mut seen = Vec::new();
        for i in 0..5 {
            update(&mut s, key(Action::CycleTempoSource), ms(40 + i));
            seen.push(s.tempo.pinned);
        }
        assert_eq!(
            seen,
            vec![
                Some(TempoSource::Link),
                Some(TempoSource::MidiClock),
                Some(TempoSource::Tap),
                Some(TempoSource::Detected),
                None
            ]
        );
        // Pinned to Link while Link is dead: falls back by priority (MIDI clock is alive).
        update(
            &mut s,
            key(Action::TempoSource {
                source: SourceChoice::Link,
            }),
            ms(50),
        );
        assert_eq!(s.tempo.active, TempoSource::MidiClock);
    }

    #[test]
    fn the_grid_predicts_beats_and_bar_positions() {
        let g = Grid {
            at: ms(1000),
            count: 10,
            in_bar: 2,
            bpm: 120.0,
            playing: true,
        };
        assert_eq!(g.time_of(12.0), Some(ms(2000)));
        assert_eq!(g.beat_at(ms(1250)), Some(10.5));
        assert_eq!(g.in_bar_of(12, 4), 0);
        assert_eq!(g.in_bar_of(9, 4), 1);
        assert_eq!(g.time_of(0.0), None, "before engine time zero");
        assert_eq!(Grid::default().beat_at(ms(5)), None);
    }

    #[test]
    fn tracker_beats_anchor_the_grid_in_engine_time() {
        let mut s = state(&TempoSettings::default().sources, 0);
        // Stream time runs 3 s behind engine time; frames are folded up to 10 ms late.
        for i in 0..50u64 {
            s.audio.frame.time = i as f64 * 0.01;
            s.audio.frame.bpm = 120.0;
            let late = if i % 2 == 0 { 0 } else { 7 };
            let f = s.audio.frame;
            update(&mut s, Msg::AudioFrame(f), ms(3000 + i * 10 + late));
        }
        // A beat predicted for stream time 0.6 s arrives one hop early.
        update(
            &mut s,
            Msg::AudioEvent(AudioEvent::Beat {
                time: 0.6,
                count: 7,
                in_bar: 3,
                bpm: 120.0,
            }),
            ms(3595),
        );
        let g = s.tempo.grid;
        assert_eq!((g.count, g.in_bar), (7, 3));
        assert!(
            (g.at.as_secs_f64() - 3.6).abs() < 0.001,
            "anchored at {:?}",
            g.at
        );
    }

    #[test]
    fn lead_beats_come_early_by_the_latency_exactly_once_each() {
        let mut s = state(&TempoSettings::default().sources, 400);
        s.tempo.grid = Grid {
            at: ms(1000),
            count: 0,
            in_bar: 0,
            bpm: 120.0,
            playing: true,
        };
        let mut got = Vec::new();
        for t in (1000..3000).step_by(10) {
            for ev in lead_beats(&mut s, ms(t)) {
                if let AudioEvent::Beat { count, in_bar, .. } = ev {
                    got.push((count, in_bar, t));
                }
            }
        }
        // Beat k falls at 1000 + 500 k ms; its lead beat at 400 ms before (the first ones at
        // once: they were already due).
        assert_eq!(got.first().map(|g| g.0), Some(0));
        for (k, in_bar, t) in &got[1..] {
            assert_eq!(*t, 1000 + 500 * k - 400, "beat {k}");
            assert_eq!(*in_bar, (*k % 4) as u32);
        }
        assert_eq!(got.len(), 5, "{got:?}"); // beats 0..=4 (beat 4 at 3000 is due at 2600)
        // No latency: nothing, the tracker's own beats serve.
        let mut s = state(&TempoSettings::default().sources, 0);
        s.tempo.grid.bpm = 120.0;
        assert!(lead_beats(&mut s, ms(1000)).is_empty());
    }

    #[test]
    fn a_measured_latency_takes_over_and_no_beat_goes_out_twice() {
        let mut s = state(&[TempoSource::Detected], 0);
        s.tempo.settings.measure_latency = true;
        let mut fx = Vec::new();
        // Two samples: still the configured (zero) latency, beats direct.
        for t in [1000, 4000] {
            s.tempo.meter.on_sent(ms(t));
            on_video_change(&mut s, ms(t + 400), ms(t + 400), &mut fx);
        }
        assert!(beats_are_direct(&s));
        // 120 BPM, beat 14 fell at 8000 ms (sent directly, like every beat so far).
        s.tempo.grid = Grid {
            at: ms(8000),
            count: 14,
            in_bar: 2,
            bpm: 120.0,
            playing: true,
        };
        s.tempo.meter.on_sent(ms(8000));
        on_video_change(&mut s, ms(8400), ms(8400), &mut fx);
        assert_eq!(s.tempo.latency(), ms(400));
        assert_eq!(s.tempo.measured_latency(), Some(ms(400)));
        assert!(!beats_are_direct(&s));
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Emit(Event::Notice { message, .. }) if message.contains("400 ms"))),
            "{fx:?}"
        );
        let counts = |v: Vec<AudioEvent>| -> Vec<u64> {
            v.into_iter()
                .filter_map(|e| match e {
                    AudioEvent::Beat { count, .. } => Some(count),
                    _ => None,
                })
                .collect()
        };
        // Beat 15 (at 8500) is within the latency: it goes out at once, beat 14 not again.
        assert_eq!(counts(lead_beats(&mut s, ms(8400))), vec![15]);
        assert_eq!(counts(lead_beats(&mut s, ms(8450))), Vec::<u64>::new());
        // Beat 16 (at 9000) goes out 400 ms early.
        assert_eq!(counts(lead_beats(&mut s, ms(8590))), Vec::<u64>::new());
        assert_eq!(counts(lead_beats(&mut s, ms(8600))), vec![16]);
    }

    #[test]
    fn without_measure_latency_the_configured_latency_stays() {
        let mut s = state(&[TempoSource::Detected], 250);
        let mut fx = Vec::new();
        for t in [1000, 4000, 7000] {
            s.tempo.meter.on_sent(ms(t));
            on_video_change(&mut s, ms(t + 400), ms(t + 400), &mut fx);
        }
        assert_eq!(s.tempo.latency(), ms(250));
        assert_eq!(s.tempo.measured_latency(), None);
    }
}
