//! The recording's lines (JSON, one per line) and the mapping between engine messages and what
//! is written. Version rule: `VERSION` changes when a line changes meaning; new optional fields
//! and new line kinds do not change it (readers skip kinds they do not know, counted).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audio::features::{AudioEvent, AudioFrame};
use crate::audio::tempo::TempoCmd;
use crate::core::action::{Action, ActionSource};
use crate::core::msg::{Msg, StopSignal};
use crate::core::params::{ParamSpec, ParamValue};
use crate::core::recall::Recall;
use crate::transport::types::{ConnState, TransportCmd, TransportEvent};

/// The first line's `format`.
pub(crate) const FORMAT: &str = "scope-deck-record";

/// Recording format version.
pub(crate) const VERSION: u32 = 1;

/// The first line: what was recorded, with which deck and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub(crate) format: String,
    /// [`VERSION`] of the writer.
    pub(crate) version: u32,
    /// scope-deck version that recorded.
    pub(crate) deck_version: String,
    /// Wall-clock start, ms since the Unix epoch.
    pub(crate) started_unix_ms: u64,
    /// Backend label (`dry-run`, `scope`, ...): replay rebuilds the same settings.
    pub(crate) backend: String,
    /// `[engine] control_hz`.
    pub(crate) control_hz: f64,
    /// The configuration files loaded (for the reader; replay loads its own `--config-dir`).
    #[serde(default)]
    pub(crate) config_files: Vec<String>,
    /// Theme ids loaded, in order.
    #[serde(default)]
    pub(crate) themes: Vec<String>,
    /// Several outputs (`[[outputs]]` or repeated `--server`): their names in order (the
    /// `output` index of a line); empty with a single `[server]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) outputs: Vec<String>,
}

/// One line after the header. `t` is engine time in nanoseconds since the engine started.
// Lines live one at a time (read, folded, dropped): boxing the frame would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    /// A message the engine folded.
    In {
        /// Engine time, ns.
        t: u64,
        /// The message.
        #[serde(rename = "in")]
        input: Input,
    },
    /// A parameter update the engine handed to the transport (a data-channel message before
    /// the transport's rate limit merges continuous values).
    Out {
        /// Engine time, ns.
        t: u64,
        /// The update.
        out: Out,
        /// For output `output` of several (absent: the first output, or the single server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<usize>,
    },
    /// Another transport command (`connect`, `reconnect`, `shutdown`, ...).
    Cmd {
        /// Engine time, ns.
        t: u64,
        /// Its kind.
        cmd: String,
        /// For output `output` of several (absent: the first output, or the single server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<usize>,
    },
    /// Lines the writer could not keep up with (total so far): the recording has a gap here.
    Overflow {
        /// Lines dropped since the start.
        overflow: u64,
    },
}

impl Line {
    /// An overflow marker.
    pub(crate) fn overflow(n: u64) -> Line {
        Line::Overflow { overflow: n }
    }
}

/// A data-channel update as the engine asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Out {
    /// Sent at once in its own message.
    pub(crate) urgent: bool,
    /// Keys and values.
    pub(crate) values: serde_json::Map<String, ParamValue>,
}

/// A folded message. Kinds marked "not replayed" are kept for reading the show afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Input {
    /// The engine started.
    Started,
    /// A performer or script action.
    Action {
        /// What.
        action: Action,
        /// Who.
        source: ActionSource,
    },
    /// The control clock.
    Tick,
    /// Analysis features as folded at the control tick.
    AudioFrame {
        /// The frame.
        frame: AudioFrame,
    },
    /// An onset or beat (stream time inside).
    AudioEvent {
        /// The event.
        event: AudioEvent,
    },
    /// The audio source's problem (or `None`: recovered).
    AudioProblem {
        /// What.
        problem: Option<String>,
    },
    /// An outside tempo source (MIDI clock).
    Tempo {
        /// The command.
        cmd: TempoCmd,
    },
    /// The MIDI edge's learn-mode answer (a control captured, a binding saved or not).
    Learn {
        /// The answer.
        learn: scope_deck_core::midi::learn::LearnMsg,
    },
    /// A stop request.
    Signal {
        /// Which.
        signal: StopSignal,
    },
    /// A resumed show.
    Resume {
        /// What came back.
        state: Recall,
    },
    /// A headless line that could not be read.
    // `bad_input` in recorded files, as `Msg::BadInput`; renaming it would change the format.
    #[allow(clippy::enum_variant_names)]
    BadInput {
        /// Why.
        why: String,
    },
    /// The connection changed state.
    Connection {
        /// New state.
        state: ConnState,
        /// Why.
        reason: Option<String>,
    },
    /// The pipeline's parameter schema.
    Schema {
        /// Specs.
        specs: Vec<ParamSpec>,
    },
    /// The server refused a key.
    Refused {
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A transport error.
    TransportError {
        /// Text.
        message: String,
    },
    /// The transport stopped.
    Stopped,
    /// A payload the transport put on the wire (not replayed: the replay's transport sends
    /// its own).
    Sent {
        /// Exactly what was sent.
        payload: serde_json::Value,
    },
    /// A report of output `output`'s transport (several outputs; the first output's come as
    /// the plain kinds above): `event` is one of `connection`, `schema`, `refused`,
    /// `transport_error`, `stopped`, `sent`.
    Output {
        /// Index in the header's `outputs`.
        output: usize,
        /// What it reported.
        event: Box<Input>,
    },
    /// Anything else the engine folded (not replayed), by name.
    Other {
        /// `video_stats`, `midi_activity`, `themes_reloaded`, ...
        name: String,
    },
}

impl Input {
    /// What is written for a folded message.
    pub(crate) fn of(msg: Msg) -> Input {
        match msg {
            Msg::Started => Input::Started,
            Msg::Action { action, source } => Input::Action { action, source },
            Msg::Tick => Input::Tick,
            Msg::AudioFrame(frame) => Input::AudioFrame { frame },
            Msg::AudioEvent(event) => Input::AudioEvent { event },
            Msg::AudioProblem(problem) => Input::AudioProblem { problem },
            Msg::Tempo(cmd) => Input::Tempo { cmd },
            Msg::Signal(signal) => Input::Signal { signal },
            Msg::Learn(learn) => Input::Learn { learn },
            Msg::Resume(r) => Input::Resume { state: *r },
            Msg::BadInput(why) => Input::BadInput { why },
            Msg::OutputEvent { output, event } => Input::Output {
                output,
                event: Box::new(Input::of(Msg::Transport(event))),
            },
            Msg::Transport(ev) => match ev {
                TransportEvent::State { state, reason } => Input::Connection { state, reason },
                TransportEvent::Schema(specs) => Input::Schema { specs },
                TransportEvent::Refused { key, reason } => Input::Refused { key, reason },
                TransportEvent::Error(message) => Input::TransportError { message },
                TransportEvent::Stopped => Input::Stopped,
                TransportEvent::Sent { payload } => Input::Sent { payload },
                other => Input::Other {
                    name: format!("transport {}", variant_name(&format!("{other:?}"))),
                },
            },
            other => Input::Other {
                name: variant_name(&format!("{other:?}")),
            },
        }
    }

    /// The message to fold again, or `None` for kinds that are not replayed.
    pub(crate) fn to_msg(&self) -> Option<Msg> {
        Some(match self.clone() {
            Input::Started => Msg::Started,
            Input::Action { action, source } => Msg::Action { action, source },
            Input::Tick => Msg::Tick,
            Input::AudioFrame { frame } => Msg::AudioFrame(frame),
            Input::AudioEvent { event } => Msg::AudioEvent(event),
            Input::AudioProblem { problem } => Msg::AudioProblem(problem),
            Input::Tempo { cmd } => Msg::Tempo(cmd),
            Input::Signal { signal } => Msg::Signal(signal),
            Input::Learn { learn } => Msg::Learn(learn),
            Input::Resume { state } => Msg::Resume(Box::new(state)),
            Input::BadInput { why } => Msg::BadInput(why),
            Input::Connection { state, reason } => {
                Msg::Transport(TransportEvent::State { state, reason })
            }
            Input::Schema { specs } => Msg::Transport(TransportEvent::Schema(specs)),
            Input::Refused { key, reason } => {
                Msg::Transport(TransportEvent::Refused { key, reason })
            }
            Input::TransportError { message } => Msg::Transport(TransportEvent::Error(message)),
            Input::Stopped => Msg::Transport(TransportEvent::Stopped),
            Input::Output { output, event } => match event.to_msg()? {
                Msg::Transport(event) => Msg::OutputEvent { output, event },
                _ => return None,
            },
            Input::Sent { .. } | Input::Other { .. } => return None,
        })
    }
}

/// `VideoStats(..)` → `video_stats`.
fn variant_name(debug: &str) -> String {
    let head: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut out = String::new();
    for (i, c) in head.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What the engine handed the recorder.
pub(crate) enum Folded {
    /// A message folded at engine time.
    In(Duration, Msg),
    /// A transport command produced at engine time (for output `n` of several; `None`: the
    /// first output or the single server).
    Out(Duration, Option<usize>, TransportCmd),
}

/// Nanoseconds of engine time (saturating: a show is far shorter than 584 years).
pub(crate) fn ns(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

/// The lines for one folded item.
pub(crate) fn lines_of(f: Folded) -> Vec<Line> {
    match f {
        Folded::In(t, msg) => vec![Line::In {
            t: ns(t),
            input: Input::of(msg),
        }],
        Folded::Out(t, output, TransportCmd::Update(u)) => vec![Line::Out {
            t: ns(t),
            out: Out {
                urgent: u.urgent,
                values: u.values,
            },
            output,
        }],
        Folded::Out(t, output, cmd) => vec![Line::Cmd {
            t: ns(t),
            cmd: variant_name(&format!("{cmd:?}")),
            output,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_json() {
        let frame = AudioFrame {
            time: 1.234_567_890_123,
            energy: 0.1,
            bpm: 123.4,
            ..AudioFrame::default()
        };
        let msgs = vec![
            Msg::Started,
            Msg::Tick,
            Msg::AudioFrame(frame),
            Msg::AudioEvent(AudioEvent::Beat {
                time: 2.5,
                count: 7,
                in_bar: 3,
                bpm: 120.0,
            }),
            Msg::Action {
                action: Action::SetParam {
                    key: "noise_scale".into(),
                    value: serde_json::json!(0.3),
                },
                source: ActionSource::Midi,
            },
            Msg::Transport(TransportEvent::State {
                state: ConnState::Streaming,
                reason: None,
            }),
            Msg::Signal(StopSignal::Hangup),
        ];
        for m in msgs {
            let line = lines_of(Folded::In(Duration::from_nanos(1_000_000_007), m.clone()));
            let text = serde_json::to_string(&line[0]).unwrap();
            let back: Line = serde_json::from_str(&text).unwrap();
            match back {
                Line::In { t, input } => {
                    assert_eq!(t, 1_000_000_007);
                    assert_eq!(input.to_msg(), Some(m), "{text}");
                }
                other => panic!("{other:?} from {text}"),
            }
        }
        let other = Input::of(Msg::CommandDropped(
            crate::transport::types::CmdKind::Continuous,
        ));
        assert_eq!(
            other,
            Input::Other {
                name: "command_dropped".into()
            }
        );
        assert_eq!(other.to_msg(), None);
        let text = serde_json::to_string(&Line::overflow(3)).unwrap();
        assert_eq!(
            serde_json::from_str::<Line>(&text).unwrap(),
            Line::overflow(3)
        );
        let cmd = lines_of(Folded::Out(Duration::ZERO, None, TransportCmd::Connect));
        assert_eq!(
            serde_json::to_string(&cmd[0]).unwrap(),
            r#"{"t":0,"cmd":"connect"}"#
        );
        // Several outputs: commands and reports name their output; reports replay as its own.
        let cmd = lines_of(Folded::Out(Duration::ZERO, Some(2), TransportCmd::Connect));
        assert_eq!(
            serde_json::to_string(&cmd[0]).unwrap(),
            r#"{"t":0,"cmd":"connect","output":2}"#
        );
        let ev = Msg::OutputEvent {
            output: 1,
            event: TransportEvent::Sent {
                payload: serde_json::json!({"seed": 7}),
            },
        };
        let line = &lines_of(Folded::In(Duration::ZERO, ev))[0];
        let text = serde_json::to_string(line).unwrap();
        assert_eq!(
            text,
            r#"{"t":0,"in":{"msg":"output","output":1,"event":{"msg":"sent","payload":{"seed":7}}}}"#
        );
        let state = Msg::OutputEvent {
            output: 1,
            event: TransportEvent::State {
                state: ConnState::Reconnecting,
                reason: None,
            },
        };
        match lines_of(Folded::In(Duration::ZERO, state.clone())).remove(0) {
            Line::In { input, .. } => assert_eq!(input.to_msg(), Some(state)),
            other => panic!("{other:?}"),
        }
    }
}
