//! MIDI 1.0 byte-stream parser: running status, real-time bytes interleaved mid-message, system
//! exclusive skipped.
//!
//! midir usually hands over whole messages, but a DIN interface, a USB-MIDI bridge or a
//! misbehaving driver can deliver a raw stream (running status, a clock byte in the middle of a
//! note-on). Parsing every callback's bytes through one stateful parser per port copes with both.

use serde::Serialize;

/// One parsed MIDI message. Channels are 0-based here (0..=15); keymap files write them 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MidiMsg {
    /// Note on with velocity > 0.
    NoteOn {
        /// 0-based channel.
        channel: u8,
        /// Note number.
        note: u8,
        /// Velocity 1..=127.
        velocity: u8,
    },
    /// Note off (also note on with velocity 0).
    NoteOff {
        /// 0-based channel.
        channel: u8,
        /// Note number.
        note: u8,
        /// Release velocity.
        velocity: u8,
    },
    /// Control change.
    Cc {
        /// 0-based channel.
        channel: u8,
        /// Controller number.
        cc: u8,
        /// Value 0..=127.
        value: u8,
    },
    /// Program change.
    Program {
        /// 0-based channel.
        channel: u8,
        /// Program number.
        program: u8,
    },
    /// Pitch bend, 14-bit (0..=16383, centre 8192).
    PitchBend {
        /// 0-based channel.
        channel: u8,
        /// 14-bit value.
        value: u16,
    },
    /// Polyphonic or channel aftertouch (parsed so running status stays in sync; not bindable).
    Aftertouch {
        /// 0-based channel.
        channel: u8,
    },
    /// Timing clock (24 per quarter note).
    Clock,
    /// Transport start.
    Start,
    /// Transport continue.
    Continue,
    /// Transport stop.
    Stop,
}

impl MidiMsg {
    /// True for messages that must never be coalesced or dropped: notes, program changes and
    /// transport/clock bytes. Continuous controls (CC, pitch bend) may be coalesced.
    pub fn is_discrete(&self) -> bool {
        !matches!(
            self,
            MidiMsg::Cc { .. } | MidiMsg::PitchBend { .. } | MidiMsg::Aftertouch { .. }
        )
    }

    /// Encodes the message as MIDI bytes (for feedback and tests).
    pub fn to_bytes(&self) -> Vec<u8> {
        match *self {
            MidiMsg::NoteOn {
                channel,
                note,
                velocity,
            } => vec![0x90 | (channel & 15), note & 127, velocity & 127],
            MidiMsg::NoteOff {
                channel,
                note,
                velocity,
            } => vec![0x80 | (channel & 15), note & 127, velocity & 127],
            MidiMsg::Cc { channel, cc, value } => {
                vec![0xB0 | (channel & 15), cc & 127, value & 127]
            }
            MidiMsg::Program { channel, program } => vec![0xC0 | (channel & 15), program & 127],
            MidiMsg::PitchBend { channel, value } => vec![
                0xE0 | (channel & 15),
                (value & 127) as u8,
                ((value >> 7) & 127) as u8,
            ],
            MidiMsg::Aftertouch { channel } => vec![0xD0 | (channel & 15), 0],
            MidiMsg::Clock => vec![0xF8],
            MidiMsg::Start => vec![0xFA],
            MidiMsg::Continue => vec![0xFB],
            MidiMsg::Stop => vec![0xFC],
        }
    }
}

/// Stateful parser for one input port.
#[derive(Debug, Clone, Default)]
pub struct MidiParser {
    /// Running status (last channel-voice status byte), cleared by system common messages.
    status: Option<u8>,
    /// Data bytes collected for the current status.
    data: [u8; 2],
    /// How many data bytes collected.
    len: usize,
    /// Inside a system-exclusive message: data bytes are skipped until EOX or a status byte.
    in_sysex: bool,
    /// Data bytes still to skip for a system common message we do not use.
    skip: usize,
}

fn data_len(status: u8) -> usize {
    match status & 0xF0 {
        0xC0 | 0xD0 => 1,
        _ => 2,
    }
}

impl MidiParser {
    /// A parser with no running status.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; calls `out` for every complete message. Never allocates.
    pub fn feed(&mut self, bytes: &[u8], mut out: impl FnMut(MidiMsg)) {
        for &b in bytes {
            if let Some(m) = self.byte(b) {
                out(m);
            }
        }
    }

    /// Parses a whole buffer into a vector (convenience for tests and tools).
    pub fn parse_all(&mut self, bytes: &[u8]) -> Vec<MidiMsg> {
        let mut v = Vec::new();
        self.feed(bytes, |m| v.push(m));
        v
    }

    /// Feeds one byte.
    pub fn byte(&mut self, b: u8) -> Option<MidiMsg> {
        if b >= 0xF8 {
            // Real-time: may appear anywhere, even inside another message; state untouched.
            return match b {
                0xF8 => Some(MidiMsg::Clock),
                0xFA => Some(MidiMsg::Start),
                0xFB => Some(MidiMsg::Continue),
                0xFC => Some(MidiMsg::Stop),
                _ => None, // active sensing, reset, undefined
            };
        }
        if b >= 0x80 {
            self.len = 0;
            self.skip = 0;
            self.in_sysex = false;
            match b {
                0xF0 => {
                    self.in_sysex = true;
                    self.status = None;
                }
                0xF7 => self.status = None,
                0xF1 | 0xF3 => {
                    self.status = None;
                    self.skip = 1;
                }
                0xF2 => {
                    self.status = None;
                    self.skip = 2;
                }
                0xF4..=0xF6 => self.status = None,
                _ => self.status = Some(b),
            }
            return None;
        }
        // Data byte.
        if self.in_sysex {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let status = self.status?;
        if self.len < 2 {
            self.data[self.len] = b;
        }
        self.len += 1;
        if self.len < data_len(status) {
            return None;
        }
        self.len = 0; // running status: the next data byte starts a new message
        let channel = status & 0x0F;
        let (d0, d1) = (self.data[0], self.data[1]);
        Some(match status & 0xF0 {
            0x80 => MidiMsg::NoteOff {
                channel,
                note: d0,
                velocity: d1,
            },
            0x90 if d1 == 0 => MidiMsg::NoteOff {
                channel,
                note: d0,
                velocity: 0,
            },
            0x90 => MidiMsg::NoteOn {
                channel,
                note: d0,
                velocity: d1,
            },
            0xB0 => MidiMsg::Cc {
                channel,
                cc: d0,
                value: d1,
            },
            0xC0 => MidiMsg::Program {
                channel,
                program: d0,
            },
            0xE0 => MidiMsg::PitchBend {
                channel,
                value: u16::from(d0) | (u16::from(d1) << 7),
            },
            _ => MidiMsg::Aftertouch { channel },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &[u8]) -> Vec<MidiMsg> {
        MidiParser::new().parse_all(b)
    }

    #[test]
    fn whole_messages() {
        assert_eq!(
            parse(&[
                0x91, 60, 100, 0x81, 60, 0, 0xB2, 7, 99, 0xC3, 5, 0xE0, 0, 64
            ]),
            vec![
                MidiMsg::NoteOn {
                    channel: 1,
                    note: 60,
                    velocity: 100
                },
                MidiMsg::NoteOff {
                    channel: 1,
                    note: 60,
                    velocity: 0
                },
                MidiMsg::Cc {
                    channel: 2,
                    cc: 7,
                    value: 99
                },
                MidiMsg::Program {
                    channel: 3,
                    program: 5
                },
                MidiMsg::PitchBend {
                    channel: 0,
                    value: 8192
                },
            ]
        );
    }

    #[test]
    fn note_on_velocity_zero_is_note_off() {
        assert_eq!(
            parse(&[0x90, 36, 0]),
            vec![MidiMsg::NoteOff {
                channel: 0,
                note: 36,
                velocity: 0
            }]
        );
    }

    #[test]
    fn running_status_repeats_the_last_status() {
        let got = parse(&[0xB0, 1, 10, 1, 11, 2, 12, 0xC0, 4, 5]);
        assert_eq!(
            got,
            vec![
                MidiMsg::Cc {
                    channel: 0,
                    cc: 1,
                    value: 10
                },
                MidiMsg::Cc {
                    channel: 0,
                    cc: 1,
                    value: 11
                },
                MidiMsg::Cc {
                    channel: 0,
                    cc: 2,
                    value: 12
                },
                MidiMsg::Program {
                    channel: 0,
                    program: 4
                },
                MidiMsg::Program {
                    channel: 0,
                    program: 5
                },
            ]
        );
    }

    #[test]
    fn real_time_bytes_inside_a_message_do_not_break_it() {
        let got = parse(&[0x90, 0xF8, 60, 0xFA, 100, 0xF8, 61, 0xFE, 90, 0xFC]);
        assert_eq!(
            got,
            vec![
                MidiMsg::Clock,
                MidiMsg::Start,
                MidiMsg::NoteOn {
                    channel: 0,
                    note: 60,
                    velocity: 100
                },
                MidiMsg::Clock,
                MidiMsg::NoteOn {
                    channel: 0,
                    note: 61,
                    velocity: 90
                },
                MidiMsg::Stop,
            ]
        );
    }

    #[test]
    fn sysex_is_skipped_and_clears_running_status() {
        let got = parse(&[
            0xB0, 1, 2, 0xF0, 0x7E, 1, 2, 3, 0xF8, 4, 0xF7, 5, 6, 0xB0, 3, 4,
        ]);
        assert_eq!(
            got,
            vec![
                MidiMsg::Cc {
                    channel: 0,
                    cc: 1,
                    value: 2
                },
                MidiMsg::Clock,
                MidiMsg::Cc {
                    channel: 0,
                    cc: 3,
                    value: 4
                },
            ]
        );
    }

    #[test]
    fn unterminated_sysex_ends_at_next_status() {
        assert_eq!(
            parse(&[0xF0, 1, 2, 0x90, 1, 1]),
            vec![MidiMsg::NoteOn {
                channel: 0,
                note: 1,
                velocity: 1
            }]
        );
    }

    #[test]
    fn system_common_data_is_skipped_and_orphan_data_ignored() {
        // Song position (2 data bytes), MTC quarter frame (1), then orphan data, then a note.
        assert_eq!(
            parse(&[5, 6, 0xF2, 1, 2, 0xF1, 3, 7, 0x92, 10, 20]),
            vec![MidiMsg::NoteOn {
                channel: 2,
                note: 10,
                velocity: 20
            }]
        );
    }

    #[test]
    fn split_across_feeds() {
        let mut p = MidiParser::new();
        assert!(p.parse_all(&[0xB5]).is_empty());
        assert!(p.parse_all(&[74]).is_empty());
        assert_eq!(
            p.parse_all(&[127]),
            vec![MidiMsg::Cc {
                channel: 5,
                cc: 74,
                value: 127
            }]
        );
    }

    #[test]
    fn encode_round_trips() {
        for m in [
            MidiMsg::NoteOn {
                channel: 15,
                note: 1,
                velocity: 2,
            },
            MidiMsg::Cc {
                channel: 3,
                cc: 4,
                value: 5,
            },
            MidiMsg::PitchBend {
                channel: 1,
                value: 16383,
            },
            MidiMsg::Program {
                channel: 0,
                program: 9,
            },
            MidiMsg::Clock,
        ] {
            assert_eq!(parse(&m.to_bytes()), vec![m]);
        }
    }
}
