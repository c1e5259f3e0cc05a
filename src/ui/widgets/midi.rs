//! MIDI input activity: one line per device, so the performer sees at a glance which
//! controllers are plugged in, which one is sending, and what it sent last.
//!
//! `● nanoKONTROL2   12/s CC 1/74=64` — a lit dot while the device sent within the flash
//! window (`○` when quiet, `✕` when it vanished), the name, messages in the last second, the last
//! message.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;

use crate::controls::midi::activity::{MidiDevice, MidiInputs};
use crate::controls::midi::parse::MidiMsg;
use crate::ui::style::UiStyle;

const NOTE_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// Note name with octave, middle C (60) = `C3` as most controllers and DAWs print it.
pub(crate) fn note_name(note: u8) -> String {
    let octave = i32::from(note / 12) - 2;
    format!("{}{octave}", NOTE_NAMES[usize::from(note % 12)])
}

/// Short label of a message, channels 1-based as keymaps write them: `CC 1/74=64`,
/// `Note C3 on`, `PC 2/5`, `PB 1=+512`.
pub(crate) fn message_label(msg: &MidiMsg) -> String {
    match *msg {
        MidiMsg::NoteOn { note, .. } => format!("Note {} on", note_name(note)),
        MidiMsg::NoteOff { note, .. } => format!("Note {} off", note_name(note)),
        MidiMsg::Cc { channel, cc, value } => format!("CC {}/{cc}={value}", channel + 1),
        MidiMsg::Program { channel, program } => format!("PC {}/{program}", channel + 1),
        MidiMsg::PitchBend { channel, value } => {
            format!("PB {}={:+}", channel + 1, i32::from(value) - 8192)
        }
        MidiMsg::Aftertouch { channel } => format!("AT {}", channel + 1),
        MidiMsg::Clock => "Clock".into(),
        MidiMsg::Start => "Start".into(),
        MidiMsg::Continue => "Continue".into(),
        MidiMsg::Stop => "Stop".into(),
    }
}

fn rate_label(rate: u32) -> String {
    if rate >= 1000 {
        format!("{}k/s", rate / 1000)
    } else {
        format!("{rate}/s")
    }
}

/// Cuts `s` to `w` characters, marking a cut with `…`.
fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(w - 1).collect();
    t.truncate(t.trim_end().len());
    t.push('…');
    t
}

/// The device lines of the activity pane.
pub(crate) struct MidiDevices<'a> {
    /// Devices as the engine keeps them.
    pub(crate) inputs: &'a MidiInputs,
    /// Snapshot time.
    pub(crate) now: Duration,
    /// How long a device's dot stays lit after a message.
    pub(crate) flash: Duration,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

impl MidiDevices<'_> {
    /// Lines this widget would like: one per device, one for "no MIDI input" when MIDI inputs are
    /// configured but none is there, none when MIDI is not in use.
    pub(crate) fn rows(&self) -> u16 {
        let n = self.inputs.devices.len();
        if n == 0 {
            u16::from(self.inputs.configured)
        } else {
            u16::try_from(n).unwrap_or(u16::MAX)
        }
    }

    fn line(&self, d: &MidiDevice, area: Rect, y: u16, buf: &mut Buffer) {
        let w = usize::from(area.width);
        let a = &d.activity;
        let lit = a.connected
            && d.last_at
                .is_some_and(|at| self.now.saturating_sub(at) < self.flash);
        let (dot, dot_style) = if !a.connected {
            ("✕", Style::new().fg(self.style.bad))
        } else if lit {
            (
                "●",
                Style::new()
                    .fg(self.style.accent)
                    .add_modifier(Modifier::BOLD),
            )
        } else {
            ("○", self.style.dimmed())
        };
        // dot + space, name, space, 5-wide rate, space, last message (about 11 wide).
        let name_w = w.saturating_sub(2 + 1 + 5 + 1 + 11).clamp(4, 20);
        let name = format!("{:<name_w$}", truncate(&d.label(), name_w));
        let rate = if a.connected {
            format!("{:>5}", rate_label(a.rate))
        } else {
            " ".repeat(5)
        };
        let last = if !a.connected {
            "gone".to_string()
        } else {
            let m = a.last.as_ref().map_or("–".to_string(), message_label);
            if a.clock { format!("clk {m}") } else { m }
        };
        let name_style = if a.connected {
            Style::new()
        } else {
            self.style.dimmed()
        };
        let spans: [(&str, Style); 6] = [
            (dot, dot_style),
            (" ", Style::new()),
            (&name, name_style),
            (" ", Style::new()),
            (&rate, self.style.dimmed()),
            (&format!(" {last}"), name_style),
        ];
        let right = area.x + area.width;
        let mut x = area.x;
        for (s, st) in spans {
            if x >= right {
                break;
            }
            let (nx, _) = buf.set_stringn(x, y, s, usize::from(right - x), st);
            x = nx;
        }
    }
}

impl Widget for MidiDevices<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let devices = &self.inputs.devices;
        if devices.is_empty() {
            if self.inputs.configured {
                buf.set_stringn(
                    area.x,
                    area.y,
                    "○ no MIDI input",
                    usize::from(area.width),
                    self.style.dimmed(),
                );
            }
            return;
        }
        // Devices that are there first (a short pane keeps them in view), in arrival order.
        let ordered = devices
            .iter()
            .filter(|d| d.activity.connected)
            .chain(devices.iter().filter(|d| !d.activity.connected));
        for (row, d) in ordered.take(usize::from(area.height)).enumerate() {
            let y = area.y + u16::try_from(row).unwrap_or(0);
            self.line(d, area, y, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::midi::activity::DeviceActivity;

    fn dev(name: &str, connected: bool, rate: u32, last: Option<MidiMsg>) -> MidiDevice {
        MidiDevice {
            activity: DeviceActivity {
                name: name.into(),
                connected,
                count: 10,
                rate,
                last,
                clock: false,
            },
            last_at: Some(Duration::from_millis(1000)),
        }
    }

    fn draw(inputs: &MidiInputs, now_ms: u64, w: u16, h: u16) -> (Vec<String>, Buffer) {
        let style = UiStyle::default().monochrome();
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        MidiDevices {
            inputs,
            now: Duration::from_millis(now_ms),
            flash: Duration::from_millis(250),
            style: &style,
        }
        .render(buf.area, &mut buf);
        let lines = (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect();
        (lines, buf)
    }

    #[test]
    fn exact_lines_for_active_quiet_and_vanished_devices() {
        let inputs = MidiInputs {
            configured: true,
            devices: vec![
                dev(
                    "nanoKONTROL2 MIDI 1 24:0",
                    false,
                    0,
                    Some(MidiMsg::Cc {
                        channel: 0,
                        cc: 1,
                        value: 2,
                    }),
                ),
                dev(
                    "Launchpad X",
                    true,
                    12,
                    Some(MidiMsg::Cc {
                        channel: 0,
                        cc: 74,
                        value: 64,
                    }),
                ),
                dev(
                    "pads",
                    true,
                    1500,
                    Some(MidiMsg::NoteOn {
                        channel: 9,
                        note: 60,
                        velocity: 100,
                    }),
                ),
            ],
        };
        let (lines, buf) = draw(&inputs, 1100, 30, 3);
        assert_eq!(
            lines,
            vec![
                "● Launchpad…  12/s CC 1/74=64 ",
                "● pads        1k/s Note C3 on ",
                "✕ nanoKONTR…       gone       ",
            ]
        );
        assert!(buf[(0, 0)].modifier.contains(Modifier::BOLD), "flash");
        // After the flash window the dots go quiet; the vanished one stays crossed.
        let (lines, buf) = draw(&inputs, 1300, 30, 2);
        assert_eq!(lines[0], "○ Launchpad…  12/s CC 1/74=64 ");
        assert!(!buf[(0, 0)].modifier.contains(Modifier::BOLD));
        assert_eq!(lines[1], "○ pads        1k/s Note C3 on ");
    }

    #[test]
    fn wide_panes_show_long_names_and_clock() {
        let mut d = dev("Arturia KeyStep 37 MIDI 1 28:0", true, 0, None);
        d.activity.clock = true;
        d.activity.last = Some(MidiMsg::Start);
        let inputs = MidiInputs {
            configured: true,
            devices: vec![d],
        };
        let (lines, _) = draw(&inputs, 5000, 46, 1);
        assert_eq!(lines[0], "○ Arturia KeyStep 37…    0/s clk Start        ");
    }

    #[test]
    fn configured_without_devices_says_so_and_unconfigured_shows_nothing() {
        let mut inputs = MidiInputs::default();
        let w = MidiDevices {
            inputs: &inputs,
            now: Duration::ZERO,
            flash: Duration::ZERO,
            style: &UiStyle::default(),
        };
        assert_eq!(w.rows(), 0);
        assert_eq!(draw(&inputs, 0, 20, 1).0, vec![" ".repeat(20)]);
        inputs.configured = true;
        assert_eq!(draw(&inputs, 0, 20, 1).0, vec!["○ no MIDI input     "]);
    }

    #[test]
    fn message_labels() {
        let l = |m| message_label(&m);
        assert_eq!(
            l(MidiMsg::NoteOff {
                channel: 0,
                note: 61,
                velocity: 0
            }),
            "Note C#3 off"
        );
        assert_eq!(
            l(MidiMsg::NoteOn {
                channel: 0,
                note: 0,
                velocity: 1
            }),
            "Note C-2 on"
        );
        assert_eq!(
            l(MidiMsg::Program {
                channel: 1,
                program: 5
            }),
            "PC 2/5"
        );
        assert_eq!(
            l(MidiMsg::PitchBend {
                channel: 0,
                value: 8192 + 512
            }),
            "PB 1=+512"
        );
        assert_eq!(
            l(MidiMsg::PitchBend {
                channel: 15,
                value: 0
            }),
            "PB 16=-8192"
        );
        assert_eq!(l(MidiMsg::Aftertouch { channel: 2 }), "AT 3");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
    }
}
