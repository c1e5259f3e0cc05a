//! Learn mode: the performer presses the learn key, touches a MIDI control, then presses the key
//! (or turns the parameter) whose action the control should take over. The binding is appended
//! to the user's keymap file by the MIDI edge (the app crate's `controls::midi::learn`).
//!
//! The reducer and the MIDI edge talk in two small vocabularies, never through the snapshot:
//! the reducer asks with [`LearnCmd`] effects (arm the capture, disarm it, save a pair) and the
//! edge answers with [`LearnMsg`] messages (a control was captured, the pair was saved or not).
//! Neither is an [`Action`]: no keymap, script or socket client can send them.

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::midi::binding::ControlKind;
use crate::midi::parse::MidiMsg;

/// A control touched while learning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedControl {
    /// Input-port name (client/port numbers stripped), written as the binding's device.
    pub device: String,
    /// 1-based channel.
    pub channel: u8,
    /// Control kind.
    pub kind: ControlKind,
    /// CC/note/program number (none for pitch bend).
    pub number: Option<u8>,
}

/// Where learn mode is.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum LearnStage {
    /// Not learning.
    #[default]
    Off,
    /// Waiting for a MIDI control to be touched.
    WaitingControl,
    /// A control was touched; waiting for the target (the next key action).
    WaitingTarget(LearnedControl),
    /// Both known: the MIDI edge is saving the binding (a [`LearnCmd::Save`] went out).
    Saving {
        /// The control.
        control: LearnedControl,
        /// What it will do.
        target: Action,
    },
}

/// What the reducer asks of the MIDI edge in learn mode (`Effect::MidiLearn`).
#[derive(Debug, Clone, PartialEq)]
pub enum LearnCmd {
    /// Capture the next touched control instead of acting on it (answered by
    /// [`LearnMsg::Captured`], or [`LearnMsg::Failed`] when no input can be captured).
    Arm,
    /// Stop capturing (learn cancelled).
    Disarm,
    /// Append this binding to the user's keymap and use it (answered by [`LearnMsg::Saved`] or
    /// [`LearnMsg::Failed`]).
    Save {
        /// The control.
        control: LearnedControl,
        /// What it will do.
        target: Action,
    },
}

/// What the MIDI edge tells the reducer in learn mode (`Msg::Learn`): internal, never a
/// performer action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "learn", rename_all = "snake_case")]
pub enum LearnMsg {
    /// The armed capture saw this control.
    Captured {
        /// The control touched.
        control: LearnedControl,
    },
    /// The binding was written and is in use.
    Saved {
        /// What was bound, and the file.
        message: String,
    },
    /// Learning could not go on (no input to capture, the file could not be written).
    Failed {
        /// Why.
        message: String,
    },
}

/// Strips ALSA-style client:port suffixes (`"nanoKONTROL2 MIDI 1 20:0"` → `"nanoKONTROL2 MIDI 1"`),
/// which change between sessions.
pub fn stable_port_name(name: &str) -> String {
    let t = name.trim();
    if let Some((head, tail)) = t.rsplit_once(' ') {
        let mut parts = tail.split(':');
        let numeric = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        if numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none() {
            return head.trim().to_string();
        }
    }
    t.to_string()
}

impl LearnedControl {
    /// The control a message came from (`None` for clock and release messages).
    pub fn from_msg(port: &str, msg: &MidiMsg) -> Option<Self> {
        let (channel, kind, number) = match *msg {
            MidiMsg::NoteOn { channel, note, .. } => (channel, ControlKind::Note, Some(note)),
            MidiMsg::Cc { channel, cc, .. } => (channel, ControlKind::Cc, Some(cc)),
            MidiMsg::Program { channel, program } => (channel, ControlKind::Program, Some(program)),
            MidiMsg::PitchBend { channel, .. } => (channel, ControlKind::PitchBend, None),
            _ => return None,
        };
        Some(LearnedControl {
            device: stable_port_name(port),
            channel: channel + 1,
            kind,
            number,
        })
    }

    /// Short label for notices (`"cc 7 ch 1 on nanoKONTROL2"`).
    pub fn label(&self) -> String {
        let kind = match self.kind {
            ControlKind::Cc => "cc",
            ControlKind::Cc14 => "cc14",
            ControlKind::Note => "note",
            ControlKind::Program => "program",
            ControlKind::PitchBend => "pitch bend",
        };
        match self.number {
            Some(n) => format!("{kind} {n} ch {} on {}", self.channel, self.device),
            None => format!("{kind} ch {} on {}", self.channel, self.device),
        }
    }
}
