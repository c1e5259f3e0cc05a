//! The cue panel: what is playing, what is about to land and when, and what GO will do, so a
//! performer reads the next move at a glance. Tall panels list the cues around standby.
//!
//! ```text
//! ┌ cues · Example set · bar 12 ───────────┐
//! │▶ 2 build  blend 2 · noise_scale        │
//! │⏱ 3 drop in 3 beats                      │
//! │GO 3 drop · next 4-bar · theme neon-fou…│
//! ```

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::core::cue::{Countdown, CueView};
use crate::ui::style::UiStyle;

/// The cue panel, drawn from the snapshot's cue view; the saved looks on its last line.
pub(crate) struct CuePanel<'a> {
    /// The view (`None`: no setlist, only looks).
    pub(crate) view: Option<&'a CueView>,
    /// Saved look names.
    pub(crate) looks: &'a [String],
    /// The look recalled last.
    pub(crate) last_look: Option<usize>,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

/// `in 3 beats`, `in 1.5 s`, `on the first beat`.
pub(crate) fn countdown_label(c: Countdown) -> String {
    match c {
        Countdown::Beats(1) => "on the next beat".into(),
        Countdown::Beats(n) => format!("in {n} beats"),
        Countdown::Time(d) if d < Duration::from_millis(50) => "now".into(),
        Countdown::Time(d) => format!("in {:.1} s", d.as_secs_f64()),
        Countdown::WaitingForBeat => "waiting for the first beat".into(),
    }
}

fn name_of(v: &CueView, i: usize) -> String {
    v.row(i)
        .map(|r| format!("{} {}", r.number, r.name))
        .unwrap_or_else(|| format!("{}", i + 1))
}

impl Widget for CuePanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let s = self.style;
        let looks = self.looks_line();
        let Some(v) = self.view else {
            let block = Block::bordered()
                .title(" looks ")
                .border_style(s.dimmed())
                .title_style(Style::new().fg(s.accent));
            let inner = block.inner(area);
            block.render(area, buf);
            Paragraph::new(vec![
                looks,
                Line::from(Span::styled("no setlist (--setlist FILE)", s.dimmed())),
            ])
            .render(inner, buf);
            return;
        };
        let title = format!(
            " cues · {} · {}/{} · bar {} ",
            v.title,
            v.current.map_or(0, |c| c + 1),
            v.total,
            v.bar
        );
        let block = Block::bordered()
            .title(title)
            .border_style(s.dimmed())
            .title_style(Style::new().fg(s.accent));
        let inner = block.inner(area);
        block.render(area, buf);
        let bold = Style::new().fg(s.text).add_modifier(Modifier::BOLD);
        let dim = s.dimmed();
        let mut lines = Vec::new();
        lines.push(match v.current.and_then(|c| v.row(c)) {
            Some(r) => Line::from(vec![
                Span::styled(format!("▶ {} {}  ", r.number, r.name), bold),
                Span::styled(r.what.clone(), Style::new().fg(s.text)),
            ]),
            None => Line::from(Span::styled("▶ nothing fired yet", dim)),
        });
        lines.push(match v.pending {
            Some((i, cd, follow)) => Line::from(vec![
                Span::styled(
                    format!("⏱ {} {}", name_of(v, i), countdown_label(cd)),
                    Style::new().fg(s.warn).add_modifier(Modifier::BOLD),
                ),
                Span::styled(if follow { " (follow)" } else { "" }, dim),
            ]),
            None => Line::from(Span::styled("⏱ nothing waiting", dim)),
        });
        let at_end = v.current == Some(v.total.saturating_sub(1)) && v.pending.is_none();
        lines.push(match v.row(v.standby) {
            _ if at_end => Line::from(Span::styled("GO  end of the setlist", dim)),
            Some(r) => Line::from(vec![
                Span::styled("GO ", Style::new().fg(s.good).add_modifier(Modifier::BOLD)),
                Span::styled(format!("{} {}", r.number, r.name), bold),
                Span::styled(
                    format!(" · {} · {}", r.when, r.what),
                    Style::new().fg(s.text),
                ),
            ]),
            None => Line::from(""),
        });
        // Tall panels: the cues around standby, one a line.
        let reserve = usize::from(!self.looks.is_empty());
        let room = usize::from(inner.height).saturating_sub(lines.len() + reserve);
        if room > 1 {
            let name_w = v
                .rows
                .iter()
                .map(|r| r.name.chars().count())
                .max()
                .unwrap_or(0);
            for r in v.rows.iter().take(room) {
                let i = r.number - 1;
                let mark = if v.current == Some(i) {
                    "▶"
                } else if v.standby == i {
                    "»"
                } else {
                    " "
                };
                let st = if v.current == Some(i) { bold } else { dim };
                lines.push(Line::from(Span::styled(
                    format!(
                        "{mark}{:>3} {:<name_w$}  {:<12} {}",
                        r.number, r.name, r.when, r.what
                    ),
                    st,
                )));
            }
        }
        if reserve == 1 && usize::from(inner.height) > lines.len() {
            lines.push(looks);
        }
        Paragraph::new(lines).render(inner, buf);
    }
}

impl CuePanel<'_> {
    /// `looks  warm · ▶cold · look-3` (the last recalled marked).
    fn looks_line(&self) -> Line<'static> {
        let s = self.style;
        if self.looks.is_empty() {
            return Line::from(Span::styled("looks  none saved", s.dimmed()));
        }
        let mut spans = vec![Span::styled("looks  ", s.dimmed())];
        for (i, n) in self.looks.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", s.dimmed()));
            }
            if self.last_look == Some(i) {
                spans.push(Span::styled(
                    format!("▶{n}"),
                    Style::new().fg(s.text).add_modifier(Modifier::BOLD),
                ));
            } else {
                spans.push(Span::styled(n.clone(), Style::new().fg(s.text)));
            }
        }
        Line::from(spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cue::CueRow;

    fn view() -> CueView {
        CueView {
            title: "t".into(),
            total: 3,
            current: Some(0),
            standby: 1,
            pending: Some((1, Countdown::Beats(3), false)),
            bar: 4,
            rows: ["intro", "drop", "end"]
                .iter()
                .enumerate()
                .map(|(i, n)| CueRow {
                    number: i + 1,
                    name: (*n).into(),
                    what: format!("what {i}"),
                    when: "next bar".into(),
                })
                .collect(),
            first: 0,
        }
    }

    fn text(buf: &Buffer) -> String {
        let a = buf.area;
        (0..a.height)
            .map(|y| {
                (0..a.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn shows_current_countdown_and_what_go_does() {
        let style = UiStyle::default();
        let v = view();
        let mut buf = Buffer::empty(Rect::new(0, 0, 60, 8));
        let looks = ["warm".to_string(), "cold".to_string()];
        CuePanel {
            view: Some(&v),
            looks: &looks,
            last_look: Some(1),
            style: &style,
        }
        .render(buf.area, &mut buf);
        let t = text(&buf);
        assert!(t.contains("▶ 1 intro"), "{t}");
        assert!(t.contains("⏱ 2 drop in 3 beats"), "{t}");
        assert!(t.contains("GO 2 drop · next bar"), "{t}");
        assert!(t.contains("»  2 drop"), "list marks standby:\n{t}");
        assert!(t.contains("bar 4"), "{t}");
        assert!(t.contains("looks  warm · ▶cold"), "{t}");
        assert!(t.contains("looks  warm · ▶cold"), "{t}");
    }

    #[test]
    fn countdown_labels() {
        assert_eq!(countdown_label(Countdown::Beats(1)), "on the next beat");
        assert_eq!(
            countdown_label(Countdown::Time(Duration::from_millis(1500))),
            "in 1.5 s"
        );
        assert!(countdown_label(Countdown::WaitingForBeat).contains("first beat"));
    }
}
