//! The warm-up countdown: a first model load takes minutes, and the performer must see how long.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;

use super::horizontal_bar;
use crate::transport::types::WarmUp;
use crate::ui::style::UiStyle;

/// `warm ███████░░░  42s/90s ~48s left` plus the loading stage on a second line when there is room.
pub(crate) struct WarmupGauge<'a> {
    /// Progress.
    pub(crate) warmup: &'a WarmUp,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

impl Widget for WarmupGauge<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let el = self.warmup.elapsed.as_secs();
        let ex = self.warmup.expected.as_secs().max(1);
        let left = if el >= ex {
            "any moment".to_string()
        } else {
            format!("~{}s left", ex - el)
        };
        let label = format!(" {el}s/{ex}s {left}");
        let label_w = label.chars().count() as u16;
        let bar_w = area.width.saturating_sub(5 + label_w);
        let frac = el as f32 / ex as f32;
        buf.set_string(
            area.x,
            area.y,
            "warm ",
            Style::new()
                .fg(self.style.warn)
                .add_modifier(Modifier::BOLD),
        );
        let bar: String = horizontal_bar(frac, bar_w)
            .chars()
            .map(|c| if c == ' ' { '░' } else { c })
            .collect();
        buf.set_string(area.x + 5, area.y, bar, Style::new().fg(self.style.warn));
        buf.set_string(area.x + 5 + bar_w, area.y, &label, Style::new());
        if area.height > 1 {
            if let Some(stage) = &self.warmup.stage {
                buf.set_stringn(
                    area.x,
                    area.y + 1,
                    format!("stage: {stage}"),
                    area.width as usize,
                    self.style.dimmed(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line(buf: &Buffer, y: u16) -> String {
        (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect()
    }

    #[test]
    fn gauge_exact_lines() {
        let style = UiStyle::default().monochrome();
        let w = WarmUp {
            elapsed: Duration::from_secs(30),
            expected: Duration::from_secs(120),
            stage: Some("loading weights".into()),
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 32, 2));
        WarmupGauge {
            warmup: &w,
            style: &style,
        }
        .render(buf.area, &mut buf);
        // bar width = 32 - 5 - len(" 30s/120s ~90s left") = 8; a quarter filled.
        assert_eq!(line(&buf, 0), "warm ██░░░░░░ 30s/120s ~90s left");
        assert_eq!(line(&buf, 1), "stage: loading weights          ");
    }

    #[test]
    fn gauge_past_expectation_says_any_moment() {
        let style = UiStyle::default().monochrome();
        let w = WarmUp {
            elapsed: Duration::from_secs(100),
            expected: Duration::from_secs(90),
            stage: None,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 30, 1));
        WarmupGauge {
            warmup: &w,
            style: &style,
        }
        .render(buf.area, &mut buf);
        assert_eq!(line(&buf, 0), "warm █████ 100s/90s any moment");
    }
}
