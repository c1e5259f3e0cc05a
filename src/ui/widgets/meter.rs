//! Spectrum bars with peak hold, and the dBFS level meter.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;

use super::{VERTICAL_EIGHTHS, horizontal_bar};
use crate::ui::style::UiStyle;

/// Vertical spectrum bars (0..1 each) with a peak-hold mark above each bar.
pub(crate) struct SpectrumBars<'a> {
    /// Bar heights 0..1 (already smoothed by the analysis).
    pub(crate) values: &'a [f32],
    /// Peak-hold heights 0..1 (same length as `values`).
    pub(crate) peaks: &'a [f32],
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

impl SpectrumBars<'_> {
    fn colour_for(&self, row_fraction: f32) -> Style {
        let c = if row_fraction > 0.8 {
            self.style.meter_high
        } else if row_fraction > 0.5 {
            self.style.meter_mid
        } else {
            self.style.meter_low
        };
        Style::new().fg(c)
    }
}

impl Widget for SpectrumBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() || self.values.is_empty() {
            return;
        }
        let n = self.values.len();
        let w = area.width as usize;
        let h = area.height as usize;
        // Bars spread over the whole width: column `c` shows bar `c·n/w` (each bar gets one or
        // more columns), with the last column of a bar left as a gap when bars are at least
        // two wide. Narrower than the bar count: each column shows the loudest of its bars.
        let gaps = w >= 2 * n;
        for c in 0..w {
            let (lo, hi) = if w >= n {
                let b = c * n / w;
                if gaps && (c + 1) * n / w != b {
                    continue;
                }
                (b, b + 1)
            } else {
                let lo = c * n / w;
                (lo, ((c + 1) * n / w).max(lo + 1))
            };
            let v = self.values[lo..hi].iter().copied().fold(0.0f32, f32::max);
            let p = self
                .peaks
                .get(lo..hi)
                .map_or(0.0, |s| s.iter().copied().fold(0.0f32, f32::max));
            let x = area.x + c as u16;
            let eighths = (v.clamp(0.0, 1.0) * h as f32 * 8.0).round() as usize;
            for row in 0..h {
                let y = area.y + (h - 1 - row) as u16;
                let cell_eighths = eighths.saturating_sub(row * 8).min(8);
                if cell_eighths > 0 {
                    let frac = (row as f32 + 0.5) / h as f32;
                    buf[(x, y)]
                        .set_char(VERTICAL_EIGHTHS[cell_eighths])
                        .set_style(self.colour_for(frac));
                }
            }
            // Peak hold: a thin mark in the cell holding the peak, when above the bar.
            let peak_row = ((p.clamp(0.0, 1.0) * h as f32).ceil() as usize).min(h);
            if peak_row > 0 && peak_row * 8 > eighths + 8 {
                let y = area.y + (h - peak_row) as u16;
                buf[(x, y)]
                    .set_char('▔')
                    .set_style(Style::new().fg(self.style.peak));
            }
        }
    }
}

/// Horizontal level meter over −60..0 dBFS with the numeric value.
pub(crate) struct LevelMeter<'a> {
    /// RMS level, dBFS.
    pub(crate) rms_db: f32,
    /// Peak level, dBFS.
    pub(crate) peak_db: f32,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

/// Lowest level the meter shows.
pub(crate) const METER_FLOOR_DB: f32 = -60.0;

impl Widget for LevelMeter<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let label = if self.rms_db <= METER_FLOOR_DB || !self.rms_db.is_finite() {
            " -inf dB".to_string()
        } else {
            format!("{:>5.1} dB", self.rms_db)
        };
        let label_w = label.chars().count() as u16;
        let bar_w = area.width.saturating_sub(label_w + 4);
        let frac = ((self.rms_db - METER_FLOOR_DB) / -METER_FLOOR_DB).clamp(0.0, 1.0);
        let colour = if self.peak_db > -1.0 {
            self.style.meter_high
        } else if self.rms_db > -12.0 {
            self.style.meter_mid
        } else {
            self.style.meter_low
        };
        buf.set_string(area.x, area.y, "lvl ", self.style.dimmed());
        buf.set_string(
            area.x + 4,
            area.y,
            horizontal_bar(frac, bar_w),
            Style::new().fg(colour),
        );
        buf.set_string(area.x + 4 + bar_w, area.y, &label, Style::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mono() -> UiStyle {
        UiStyle::default().monochrome()
    }

    #[test]
    fn spectrum_bars_draw_exact_heights_and_peaks() {
        let style = mono();
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 4));
        SpectrumBars {
            values: &[1.0, 0.5, 0.125, 0.0],
            peaks: &[1.0, 0.5, 0.75, 0.0],
            style: &style,
        }
        .render(buf.area, &mut buf);
        // Rows top to bottom; each bar two columns wide, its second column a gap.
        let expected = Buffer::with_lines(["█       ", "█   ▔   ", "█ █     ", "█ █ ▄   "]);
        for y in 0..4 {
            for x in 0..8 {
                assert_eq!(
                    buf[(x, y)].symbol(),
                    expected[(x, y)].symbol(),
                    "cell ({x},{y})"
                );
            }
        }
    }

    #[test]
    fn spectrum_bars_fill_the_width() {
        let style = mono();
        // 3 bars over 7 columns: bars get 2 or 3 columns, the last of each a gap.
        let mut buf = Buffer::empty(Rect::new(0, 0, 7, 1));
        SpectrumBars {
            values: &[1.0, 1.0, 1.0],
            peaks: &[0.0; 3],
            style: &style,
        }
        .render(buf.area, &mut buf);
        let row: String = (0..7).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(row, "██ █ █ ");
        // Between n and 2n columns: no gaps, every column drawn.
        let mut buf = Buffer::empty(Rect::new(0, 0, 5, 1));
        SpectrumBars {
            values: &[1.0, 0.0, 1.0],
            peaks: &[0.0; 3],
            style: &style,
        }
        .render(buf.area, &mut buf);
        let row: String = (0..5).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(row, "██  █");
    }

    #[test]
    fn spectrum_resamples_when_narrow() {
        let style = mono();
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        SpectrumBars {
            values: &[0.0, 1.0, 0.0, 0.0],
            peaks: &[0.0; 4],
            style: &style,
        }
        .render(buf.area, &mut buf);
        assert_eq!(buf[(0, 0)].symbol(), "█");
        assert_eq!(buf[(1, 0)].symbol(), " ");
    }

    #[test]
    fn level_meter_exact_line() {
        let style = mono();
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 1));
        LevelMeter {
            rms_db: -30.0,
            peak_db: -20.0,
            style: &style,
        }
        .render(buf.area, &mut buf);
        // bar width = 20 - (8 + 4) = 8 cells; -30 dB is half of the -60..0 range.
        let line: String = (0..20).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(line, "lvl ████    -30.0 dB");
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 1));
        LevelMeter {
            rms_db: -120.0,
            peak_db: -120.0,
            style: &style,
        }
        .render(buf.area, &mut buf);
        let line: String = (0..20).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert_eq!(line, "lvl          -inf dB");
    }
}
