//! What the reducer asks the edges to do. The engine executes effects; the reducer never does
//! I/O itself, which is why it can be tested by folding messages.

use serde::Serialize;

use crate::action::{Action, ActionSource};
use crate::msg::StopSignal;
use crate::params::ParamValue;
use crate::state::Level;
use crate::transport::types::{ConnState, TransportCmd};

/// A side effect for the engine to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell the transport something (every output's, when there are several).
    Transport(TransportCmd),
    /// Tell one output's transport something (`crate::outputs`: shaped for that output).
    Output {
        /// Index in `[[outputs]]`.
        output: crate::outputs::OutputId,
        /// The command.
        cmd: TransportCmd,
    },
    /// Steer the beat tracker (tap, nudge, re-downbeat, external clock).
    Tempo(crate::audio::tempo::TempoCmd),
    /// Steer the Link session (tap/nudge while on Link, start/stop).
    Link(crate::tempo::LinkCmd),
    /// Publish an event (headless stdout, logs).
    Emit(Event),
    /// Ask the MIDI edge to arm/disarm learn capture or save a learned binding; its answers
    /// come back as `Msg::Learn`.
    MidiLearn(crate::midi::learn::LearnCmd),
    /// Write a saved look to the config folder's `looks/` (the edge writes atomically).
    SaveLook(Box<crate::look::Look>),
    /// Everything is said and done: leave the engine loop.
    Exit,
}

/// An observable event, one JSON line each in headless mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The engine is up.
    Ready {
        /// scope-deck version.
        version: String,
        /// Backend label.
        backend: String,
    },
    /// An action was taken.
    Action {
        /// The action.
        action: Action,
        /// Its source.
        source: ActionSource,
    },
    /// A parameter changed (after validation).
    Param {
        /// Key.
        key: String,
        /// Value that will be sent.
        value: ParamValue,
        /// The requested value was out of range.
        clamped: bool,
    },
    /// The transport put a message on the wire.
    Sent {
        /// Exactly what was sent.
        payload: serde_json::Value,
    },
    /// The connection state changed.
    Connection {
        /// New state.
        state: ConnState,
        /// Why.
        reason: Option<String>,
    },
    /// One output's connection state changed (`[[outputs]]`).
    OutputConnection {
        /// Its name.
        output: String,
        /// New state.
        state: ConnState,
        /// Why.
        reason: Option<String>,
    },
    /// An output other than the first put a message on the wire (the first one's are `sent`).
    OutputSent {
        /// Its name.
        output: String,
        /// Exactly what was sent.
        payload: serde_json::Value,
    },
    /// A message for the performer.
    Notice {
        /// Severity.
        level: Level,
        /// Text.
        message: String,
    },
    /// Shutdown started.
    Stopping {
        /// Why (`quit`, a signal name, `input_closed`).
        reason: String,
    },
    /// A stop signal arrived.
    Signal {
        /// Which.
        signal: StopSignal,
    },
    /// A theme trigger fired on an audio event. `audio_time` is the stream time (seconds from
    /// the start of the audio source) of the beat or onset that fired it, so a script can line
    /// triggers up with the music: a bar trigger should sit on a downbeat, not between kicks.
    Trigger {
        /// Trigger name from the theme.
        name: String,
        /// Stream time of the firing beat or onset, seconds.
        audio_time: f64,
        /// Running beat count of the firing beat (None for an onset).
        beat_count: Option<u64>,
    },
    /// MIDI input activity per device changed (at most ~10 a second), so scripts can see which
    /// controllers are plugged in and alive.
    MidiActivity {
        /// Every known input port.
        devices: Vec<crate::midi::activity::DeviceActivity>,
    },
    /// Video output figures, once a second while a video output runs (headless scripts see
    /// what the dashboard shows, including how old the figures are during an outage).
    Video {
        /// Decoded frames per second over the last report.
        fps_in: f32,
        /// Decoded frames so far.
        frames_in: u64,
        /// RTP arrival → decoded frame of the last frame, ms (the deck's own share of the
        /// latency, not glass-to-glass).
        decode_ms: f32,
        /// Frames dropped because a sink was behind.
        frames_dropped: u64,
        /// RTP packets lost or dropped before decoding.
        packets_lost: u64,
        /// Decoder errors.
        decode_errors: u64,
        /// Sinks running.
        sinks_running: usize,
        /// Sinks waiting for their first video (not failures).
        sinks_waiting: usize,
        /// Sinks failed (restarting with backoff).
        sinks_failed: usize,
        /// Seconds since the decoded frame counter last moved (None: no frame yet).
        last_frame_age_s: Option<f64>,
    },
    /// The leading tempo source changed, or its tempo/confidence moved (at most once a second).
    Tempo {
        /// Who sets the beat grid now.
        source: crate::audio::features::TempoSource,
        /// Pinned by the performer (None: by priority).
        pinned: Option<crate::audio::features::TempoSource>,
        /// Confidence of that source, 0..1 (external clocks and a held tap count as 1).
        confidence: f32,
        /// Grid tempo.
        bpm: f64,
        /// Beat-locked changes are sent this much early (`[server] latency_ms`, or measured).
        latency_ms: u64,
        /// `latency_ms` was measured on the running show (false: configured).
        latency_measured: bool,
        /// Link peers (None: Link not running).
        link_peers: Option<u32>,
    },
    /// An input or output changed health (`ok` when a fault cleared): within a second of the
    /// change, see `crate::health`.
    Health {
        /// `audio`, `midi <port>`, `video in`, `sink <label>`.
        input: String,
        /// The new state.
        state: crate::health::HealthState,
        /// What to do or why (empty when ok).
        detail: String,
    },
}
