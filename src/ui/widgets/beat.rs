//! Beat indicator: tempo, confidence, position in the bar, tempo source, and a flash on the beat.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;

use crate::audio::features::TempoSource;
use crate::ui::style::UiStyle;

/// `♩ 128.0 BPM  87%  ●○○○  detected`
pub(crate) struct BeatIndicator<'a> {
    /// Tempo (0 = unknown).
    pub(crate) bpm: f32,
    /// Confidence 0..1.
    pub(crate) confidence: f32,
    /// Beat index in the bar, fractional.
    pub(crate) bar_position: f32,
    /// Beats per bar.
    pub(crate) beats_per_bar: u32,
    /// Where the tempo comes from.
    pub(crate) source: TempoSource,
    /// After the source: pinned, Link peers and transport, the latency in use.
    pub(crate) detail: &'a str,
    /// A beat happened within the flash window.
    pub(crate) flash: bool,
    /// The tracker has no beat (input lost or silent, or no beat for a while): say so instead
    /// of showing the last BPM as if it were live.
    pub(crate) no_beat: bool,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

/// Label for a tempo source.
pub(crate) fn source_label(s: TempoSource) -> &'static str {
    crate::core::tempo::label(s)
}

impl Widget for BeatIndicator<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let mut x = area.x;
        let right = area.x + area.width;
        let mut put = |s: &str, st: Style, x: &mut u16| {
            if *x < right {
                let (nx, _) = buf.set_stringn(*x, area.y, s, (right - *x) as usize, st);
                *x = nx;
            }
        };
        let note_style = if self.flash {
            Style::new()
                .fg(self.style.beat)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().fg(self.style.beat)
        };
        put("♩", note_style, &mut x);
        if self.no_beat {
            put(
                " no beat ",
                Style::new()
                    .fg(self.style.warn)
                    .add_modifier(Modifier::BOLD),
                &mut x,
            );
            put(
                &format!("(last {:.1} BPM)", self.bpm),
                self.style.dimmed(),
                &mut x,
            );
            return;
        }
        let tempo = if self.bpm > 0.0 {
            format!(" {:5.1} BPM ", self.bpm)
        } else {
            "  --.- BPM ".to_string()
        };
        put(&tempo, Style::new().add_modifier(Modifier::BOLD), &mut x);
        put(
            &format!("{:>3.0}% ", (self.confidence.clamp(0.0, 1.0) * 100.0)),
            self.style.dimmed(),
            &mut x,
        );
        let beats = self.beats_per_bar.clamp(1, 16);
        let current = if self.bpm > 0.0 {
            (self.bar_position.max(0.0) as u32) % beats
        } else {
            u32::MAX
        };
        for i in 0..beats {
            let (c, st) = if i == current {
                (
                    "●",
                    Style::new()
                        .fg(self.style.beat)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                ("○", self.style.dimmed())
            };
            put(c, st, &mut x);
        }
        put(
            &format!(" {}", source_label(self.source)),
            self.style.dimmed(),
            &mut x,
        );
        if !self.detail.is_empty() {
            put(&format!(" ({})", self.detail), self.style.dimmed(), &mut x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_with_position_and_source() {
        let style = UiStyle::default().monochrome();
        let mut buf = Buffer::empty(Rect::new(0, 0, 30, 1));
        BeatIndicator {
            bpm: 128.0,
            confidence: 0.87,
            bar_position: 2.4,
            beats_per_bar: 4,
            source: TempoSource::Tap,
            detail: "",
            flash: true,
            no_beat: false,
            style: &style,
        }
        .render(buf.area, &mut buf);
        let line: String = (0..30).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(line, "♩ 128.0 BPM  87% ○○●○ tap     ");
        assert!(
            buf[(0, 0)].modifier.contains(Modifier::REVERSED),
            "beat flash"
        );
    }

    #[test]
    fn unknown_tempo_lights_no_beat() {
        let style = UiStyle::default().monochrome();
        let mut buf = Buffer::empty(Rect::new(0, 0, 26, 1));
        BeatIndicator {
            bpm: 0.0,
            confidence: 0.0,
            bar_position: 0.0,
            beats_per_bar: 3,
            source: TempoSource::Detected,
            detail: "",
            flash: false,
            no_beat: false,
            style: &style,
        }
        .render(buf.area, &mut buf);
        let line: String = (0..26).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(line, "♩  --.- BPM   0% ○○○ detec");
    }

    #[test]
    fn no_beat_replaces_a_stale_tempo() {
        let style = UiStyle::default().monochrome();
        let mut buf = Buffer::empty(Rect::new(0, 0, 30, 1));
        BeatIndicator {
            bpm: 127.9,
            confidence: 0.97,
            bar_position: 1.0,
            beats_per_bar: 4,
            source: TempoSource::Detected,
            detail: "",
            flash: false,
            no_beat: true,
            style: &style,
        }
        .render(buf.area, &mut buf);
        let line: String = (0..30).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(line, "♩ no beat (last 127.9 BPM)    ");
    }
}
