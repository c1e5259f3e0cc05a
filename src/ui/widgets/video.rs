//! The video output at a glance: a live preview (what the audience sees) beside the numbers an
//! operator checks when the picture stalls — decoded fps, added latency, losses, and each sink.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::core::state::VideoOutputSlice;
use crate::ui::style::UiStyle;
use crate::video::PreviewFrame;
use crate::video::preview::{PreviewColors, PreviewWidget, fit};

/// Width of the statistics column next to the preview.
pub const STATS_WIDTH: u16 = 26;

/// One-line summary for the connection panel: `video 24.8 fps · +1.7 ms · 2/2 sinks`.
pub fn summary_line<'a>(video: &VideoOutputSlice, style: &UiStyle) -> Line<'a> {
    let s = &video.stats;
    let running = s.sinks.iter().filter(|k| k.running).count();
    let trouble = running < s.sinks.len() || s.last_error.is_some();
    let sinks = Span::styled(
        format!("{running}/{} sinks", s.sinks.len()),
        if trouble {
            Style::new().fg(style.bad).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        },
    );
    Line::from(vec![
        Span::raw(format!(
            "video {:.1} fps · +{:.1} ms · ",
            video.fps_in, s.latency_ms
        )),
        sinks,
    ])
}

/// The statistics lines (without the preview), most important first.
pub fn stats_lines<'a>(video: &VideoOutputSlice, style: &UiStyle) -> Vec<Line<'a>> {
    let s = &video.stats;
    let mut lines = vec![
        Line::from(format!("in {:.1} fps  #{}", video.fps_in, s.frames_in)),
        Line::from(format!(
            "+{:.1} ms (mean {:.1})",
            s.latency_ms, s.latency_ms_mean
        )),
        Line::from(format!(
            "lost {}  drop {}  err {}",
            s.packets_lost + s.packets_dropped,
            s.frames_dropped,
            s.decode_errors
        )),
    ];
    for k in &s.sinks {
        let (mark, st) = if k.running {
            ("●", Style::new().fg(style.good))
        } else {
            ("✖", Style::new().fg(style.bad).add_modifier(Modifier::BOLD))
        };
        let mut spans = vec![
            Span::styled(format!("{mark} "), st),
            Span::raw(k.label.clone()),
        ];
        if k.restarts > 0 {
            spans.push(Span::styled(format!(" ↻{}", k.restarts), style.dimmed()));
        }
        lines.push(Line::from(spans));
        if let (false, Some(e)) = (k.running, &k.last_error) {
            lines.push(Line::styled(format!("  {e}"), Style::new().fg(style.bad)));
        }
    }
    if let Some(e) = &s.last_error {
        lines.push(Line::styled(format!("✖ {e}"), Style::new().fg(style.bad)));
    }
    lines
}

/// Preview on the left (aspect kept), statistics on the right when there is room.
pub struct VideoPanel<'a> {
    /// Statistics (`None`: no video output runs).
    pub video: Option<&'a VideoOutputSlice>,
    /// The latest preview frame, if any arrived.
    pub preview: Option<&'a PreviewFrame>,
    /// Colour mode of the preview.
    pub colors: PreviewColors,
    /// Colours.
    pub style: &'a UiStyle,
}

impl Widget for VideoPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let Some(video) = self.video else {
            Line::styled(
                "no video output configured ([video] sinks)",
                self.style.dimmed(),
            )
            .render(area, buf);
            return;
        };
        let stats_w = if area.width >= STATS_WIDTH + 12 {
            STATS_WIDTH
        } else {
            0
        };
        let pic = Rect::new(area.x, area.y, area.width - stats_w, area.height);
        match self.preview {
            Some(f) => PreviewWidget::new(f)
                .colors(self.colors)
                .render(fit(pic, f.width, f.height), buf),
            None => {
                let msg = if video.stats.frames_in == 0 {
                    "waiting for video"
                } else {
                    "preview off"
                };
                let r = Rect::new(pic.x, pic.y + pic.height / 2, pic.width, 1);
                Line::styled(msg, self.style.dimmed())
                    .centered()
                    .render(r, buf);
            }
        }
        if stats_w > 0 {
            let r = Rect::new(area.x + area.width - stats_w, area.y, stats_w, area.height);
            for (i, line) in stats_lines(video, self.style).into_iter().enumerate() {
                let Ok(dy) = u16::try_from(i) else { break };
                if dy >= r.height {
                    break;
                }
                line.render(Rect::new(r.x + 1, r.y + dy, r.width - 1, 1), buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{SinkStatus, VideoStats};

    fn video() -> VideoOutputSlice {
        VideoOutputSlice {
            stats: VideoStats {
                frames_in: 1200,
                packets_lost: 2,
                latency_ms: 1.7,
                latency_ms_mean: 1.5,
                sinks: vec![
                    SinkStatus {
                        label: "shm:/tmp/v".into(),
                        running: true,
                        ..Default::default()
                    },
                    SinkStatus {
                        label: "ndi:stage".into(),
                        running: false,
                        restarts: 2,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            fps_in: 24.8,
            at: std::time::Duration::from_secs(50),
        }
    }

    fn rows(buf: &Buffer) -> Vec<String> {
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn preview_beside_the_numbers() {
        let style = UiStyle::default();
        let v = video();
        let frame = PreviewFrame {
            width: 4,
            height: 4,
            rgb: vec![200; 48],
            seq: 1,
        };
        let area = Rect::new(0, 0, 46, 6);
        let mut buf = Buffer::empty(area);
        VideoPanel {
            video: Some(&v),
            preview: Some(&frame),
            colors: PreviewColors::Mono,
            style: &style,
        }
        .render(area, &mut buf);
        assert_eq!(
            rows(&buf),
            [
                "    ############     in 24.8 fps  #1200       ",
                "    ############     +1.7 ms (mean 1.5)       ",
                "    ############     lost 2  drop 0  err 0    ",
                "    ############     ● shm:/tmp/v             ",
                "    ############     ✖ ndi:stage ↻2           ",
                "    ############                              ",
            ]
        );
    }

    #[test]
    fn says_what_it_waits_for_and_summarises_trouble() {
        let style = UiStyle::default();
        let mut v = video();
        v.stats.frames_in = 0;
        let area = Rect::new(0, 0, 20, 3);
        let mut buf = Buffer::empty(area);
        VideoPanel {
            video: Some(&v),
            preview: None,
            colors: PreviewColors::TrueColor,
            style: &style,
        }
        .render(area, &mut buf);
        assert_eq!(rows(&buf)[1], " waiting for video  ");
        let line = summary_line(&video(), &style);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "video 24.8 fps · +1.7 ms · 1/2 sinks");
        assert_eq!(line.spans[1].style.fg, Some(style.bad));
    }
}
