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
pub(crate) const STATS_WIDTH: u16 = 26;

/// Figures older than this are not live: greyed, with their age.
pub(crate) const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// How long ago the decoded frame counter last moved, when that is longer than
/// [`STALE_AFTER`] (None: the figures are live, or there never was a frame).
pub(crate) fn stale_for(
    video: &VideoOutputSlice,
    now: std::time::Duration,
) -> Option<std::time::Duration> {
    let age = now.saturating_sub(video.last_frame_at?);
    (age > STALE_AFTER).then_some(age)
}

/// "3 s ago" / "2 min ago".
pub(crate) fn age_text(age: std::time::Duration) -> String {
    let s = age.as_secs();
    if s < 120 {
        format!("{s} s ago")
    } else {
        format!("{} min ago", s / 60)
    }
}

/// Sinks: how many run, how many wait for their first video (not a failure), and whether any
/// failed.
fn sink_counts(video: &VideoOutputSlice) -> (usize, usize, bool) {
    let s = &video.stats;
    let running = s.sinks.iter().filter(|k| k.running).count();
    let waiting = s.sinks.iter().filter(|k| !k.running && k.waiting).count();
    let failed = running + waiting < s.sinks.len() || s.last_error.is_some();
    (running, waiting, failed)
}

/// One-line summary for the connection panel: `video 24.8 fps · rx→dec 1.7 ms · 2/2 sinks`.
/// The latency figure is the deck's own share (RTP arrival → decoded frame), labelled so it is
/// not read as glass-to-glass. During an outage the figures are greyed with their age.
pub(crate) fn summary_line<'a>(
    video: &VideoOutputSlice,
    now: std::time::Duration,
    style: &UiStyle,
) -> Line<'a> {
    let s = &video.stats;
    let (running, waiting, failed) = sink_counts(video);
    let sinks = Span::styled(
        match waiting {
            0 => format!("{running}/{} sinks", s.sinks.len()),
            w => format!("{running}/{} sinks ({w} waiting)", s.sinks.len()),
        },
        if failed {
            Style::new().fg(style.bad).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        },
    );
    let figures = if s.frames_in == 0 {
        Span::styled("video waiting for frames · ", style.dimmed())
    } else {
        match stale_for(video, now) {
            // No live figure to show: how long the picture has been frozen, first.
            Some(age) => Span::styled(
                format!(
                    "video: no frame for {} · ",
                    age_text(age).trim_end_matches(" ago")
                ),
                style.dimmed(),
            ),
            None => Span::raw(format!(
                "video {:.1} fps · rx→dec {:.1} ms · ",
                video.fps_in, s.latency_ms
            )),
        }
    };
    Line::from(vec![figures, sinks])
}

/// The statistics lines (without the preview), most important first.
pub(crate) fn stats_lines<'a>(
    video: &VideoOutputSlice,
    now: std::time::Duration,
    style: &UiStyle,
) -> Vec<Line<'a>> {
    let s = &video.stats;
    let stale = stale_for(video, now);
    let live = |text: String| match stale {
        Some(_) => Line::styled(text, style.dimmed()),
        None => Line::from(text),
    };
    let mut lines = vec![
        live(format!("in {:.1} fps  #{}", video.fps_in, s.frames_in)),
        live(format!(
            "rx→dec {:.1} ms (mean {:.1})",
            s.latency_ms, s.latency_ms_mean
        )),
    ];
    if let Some(age) = stale {
        lines.push(Line::styled(
            format!("no frame for {}", age_text(age).trim_end_matches(" ago")),
            Style::new().fg(style.warn),
        ));
    }
    lines.push(Line::from(format!(
        "lost {}  drop {}  err {}",
        s.packets_lost + s.packets_dropped,
        s.frames_dropped,
        s.decode_errors
    )));
    for k in &s.sinks {
        let (mark, st) = if k.running {
            ("●", Style::new().fg(style.good))
        } else if k.waiting {
            ("◌", style.dimmed())
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
        if !k.running && k.armed {
            lines.push(Line::styled("  waiting for the record key", style.dimmed()));
        } else if !k.running && k.waiting {
            lines.push(Line::styled("  waiting for video", style.dimmed()));
        } else if let (false, Some(e)) = (k.running, &k.last_error) {
            lines.push(Line::styled(format!("  {e}"), Style::new().fg(style.bad)));
        }
    }
    if let Some(e) = &s.last_error {
        lines.push(Line::styled(format!("✖ {e}"), Style::new().fg(style.bad)));
    }
    lines
}

/// Preview on the left (aspect kept), statistics on the right when there is room.
pub(crate) struct VideoPanel<'a> {
    /// Statistics (`None`: no video output runs).
    pub(crate) video: Option<&'a VideoOutputSlice>,
    /// The latest preview frame, if any arrived.
    pub(crate) preview: Option<&'a PreviewFrame>,
    /// Colour mode of the preview.
    pub(crate) colors: PreviewColors,
    /// Colours.
    pub(crate) style: &'a UiStyle,
    /// Engine time (how old the figures are).
    pub(crate) now: std::time::Duration,
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
            for (i, line) in stats_lines(video, self.now, self.style)
                .into_iter()
                .enumerate()
            {
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
            last_frame_at: Some(std::time::Duration::from_secs(50)),
            event_at: None,
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
            now: std::time::Duration::from_secs(50),
        }
        .render(area, &mut buf);
        assert_eq!(
            rows(&buf),
            [
                "    ############     in 24.8 fps  #1200       ",
                "    ############     rx→dec 1.7 ms (mean 1.5) ",
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
            now: std::time::Duration::from_secs(50),
        }
        .render(area, &mut buf);
        assert_eq!(rows(&buf)[1], " waiting for video  ");
        let now = std::time::Duration::from_secs(50);
        let line = summary_line(&video(), now, &style);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "video 24.8 fps · rx→dec 1.7 ms · 1/2 sinks");
        assert_eq!(line.spans[1].style.fg, Some(style.bad));
    }

    #[test]
    fn a_sink_waiting_for_video_is_not_trouble_and_old_figures_say_their_age() {
        let style = UiStyle::default();
        let mut v = video();
        v.stats.sinks[1].waiting = true;
        let later = std::time::Duration::from_secs(62);
        let line = summary_line(&v, later, &style);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "video: no frame for 12 s · 1/2 sinks (1 waiting)");
        assert_eq!(line.spans[1].style.fg, None, "waiting is not a failure");
        assert_eq!(line.spans[0].style, style.dimmed(), "stale figures greyed");
        let lines = stats_lines(&v, later, &style);
        let text: Vec<String> = lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert!(text.contains(&"no frame for 12 s".to_string()), "{text:?}");
        assert!(text.contains(&"◌ ndi:stage ↻2".to_string()), "{text:?}");
        assert!(
            text.contains(&"  waiting for video".to_string()),
            "{text:?}"
        );
        // Live again: plain.
        let line = summary_line(&v, std::time::Duration::from_secs(50), &style);
        assert_eq!(line.spans[0].style, Style::new());
    }
}
