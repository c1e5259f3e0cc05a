//! Everything the engine reacts to.

use crate::action::{Action, ActionSource};
use crate::audio::features::{AudioEvent, AudioFrame};
use crate::transport::types::TransportEvent;
use std::time::Duration;

/// Why the process is being asked to stop from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopSignal {
    /// Ctrl-C / SIGINT.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP (terminal or SSH session gone).
    Hangup,
    /// Headless stdin closed.
    InputClosed,
    /// Headless stdout's reader went away (EPIPE): nobody hears the events any more.
    OutputClosed,
}

/// One input to the reducer.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The engine started: connect and announce.
    Started,
    /// A performer or script action.
    Action {
        /// What was asked.
        action: Action,
        /// Who asked.
        source: ActionSource,
    },
    /// The frame clock ticked (timers, flashes, confirmations).
    Tick,
    /// New audio features (latest wins).
    AudioFrame(AudioFrame),
    /// An onset or beat.
    AudioEvent(AudioEvent),
    /// The audio source has a problem (or recovered, with `None`).
    AudioProblem(Option<String>),
    /// A tempo source outside the audio (MIDI clock) reports.
    Tempo(crate::audio::tempo::TempoCmd),
    /// The Link session as the Link edge last read it (`link` builds).
    Link(crate::tempo::LinkReport),
    /// Something from the transport (with `[[outputs]]`: from the first output's).
    Transport(TransportEvent),
    /// Something from output `output`'s transport (`[[outputs]]`; the first output's still
    /// come as `Transport`), see `crate::outputs`.
    OutputEvent {
        /// Index in `[[outputs]]`.
        output: crate::outputs::OutputId,
        /// What it reported.
        event: TransportEvent,
    },
    /// The video output's latest statistics (latest wins, folded at the frame rate).
    VideoStats(Box<crate::video::VideoStats>),
    /// The received picture changed for good at engine time `at` (the video edge's step
    /// detector, `crate::video::change`): a glass-to-glass latency sample (`crate::latency`).
    VideoChangeSeen {
        /// Whose video pipeline saw it (0 with a single `[server]`); while that output is
        /// failed over its pipeline shows its standby's video, and the sample is the standby's.
        output: crate::outputs::OutputId,
        /// When the first frame showing the change arrived.
        at: Duration,
    },
    /// A stop request from outside.
    Signal(StopSignal),
    /// A headless input line could not be understood.
    BadInput(String),
    /// The theme watcher re-read the themes: the new list, or every error found (the running
    /// theme stays).
    ThemesReloaded(Result<Vec<crate::mapping::theme::Theme>, String>),
    /// The setlist watcher re-read the setlist: the new list, or every error found (the running
    /// list stays).
    SetlistReloaded(Result<crate::cue::Setlist, String>),
    /// The engine could not hand a command to the transport: its bounded lane was full (the
    /// transport is stalled). Counted and shown, never silent.
    CommandDropped(crate::transport::types::CmdKind),
    /// The MIDI edge's input activity per device (at most ~10 a second, only on change): every
    /// known input port with its counts, last message and whether it is still there.
    MidiActivity(Vec<crate::midi::activity::DeviceActivity>),
    /// Bring back a journaled show (`--resume`, or a yes in the terminal): folded right after
    /// `Started`, see `crate::recall`.
    Resume(Box<crate::recall::Recall>),
    /// The MIDI edge's answer in learn mode (internal: not an action anyone can send).
    Learn(crate::midi::learn::LearnMsg),
    /// An edge with no other report says how its input is (the video input): `None` = fine.
    InputHealth {
        /// `video in`.
        input: String,
        /// What is wrong, for the performer.
        problem: Option<(crate::health::HealthState, String)>,
    },
}

impl Msg {
    /// Shorthand for a keyboard action.
    pub fn key(action: Action) -> Msg {
        Msg::Action {
            action,
            source: crate::action::ActionSource::Keyboard,
        }
    }
}
