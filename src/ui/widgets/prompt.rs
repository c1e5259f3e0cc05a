//! The prompt panel's body: the live prompt, or with the crossfader engaged what is actually
//! sent — both slots with the weight each part goes out with — and the editor line.
//!
//! ```text
//! ┌ prompt · crossfade A ━━━●━━━━━━━ B 30% ──────┐
//! │A 70% fog, ink                                 │
//! │B 30% ×0.23 sun, ink + ×0.08 moon, ink         │
//! ```
//! With one row, both slots share it, split by `│`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::core::xfade::{Slot, XfadeView};
use crate::ui::style::UiStyle;

/// The prompt panel body.
pub(crate) struct PromptBody<'a> {
    /// The live prompt label (crossfader off).
    pub(crate) prompt: &'a str,
    /// The crossfader as sent, when engaged.
    pub(crate) xfade: Option<&'a XfadeView>,
    /// The editor's text while editing (None: not editing).
    pub(crate) editing: Option<&'a str>,
    /// The crossfader slot the editor edits (None: the live prompt).
    pub(crate) edit_slot: Option<Slot>,
    /// Colours.
    pub(crate) style: &'a UiStyle,
}

/// `A ━━━●━━━━━━ B 30%` for the panel title: where the fader sits, `width` cells of track.
pub(crate) fn fader_line(position: f64, width: usize) -> String {
    let width = width.max(3);
    let p = if position.is_finite() {
        position.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let at = (p * (width - 1) as f64).round() as usize;
    let track: String = (0..width)
        .map(|i| if i == at { '●' } else { '━' })
        .collect();
    format!("A {track} B {:.0}%", p * 100.0)
}

/// One slot's parts as sent: `fog, ink` (single part) or `×0.38 sun, ink + ×0.13 moon, ink`
/// (each weight before its text, so a cut line still shows it).
fn parts_text(parts: &[(String, f64)]) -> String {
    match parts {
        [(t, _)] => t.clone(),
        parts => parts
            .iter()
            .map(|(t, w)| format!("×{w:.2} {t}"))
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

impl Widget for PromptBody<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let accent = Style::new().fg(self.style.accent);
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let Some(x) = self.xfade else {
            let line = match self.editing {
                Some(t) => Line::from(vec![
                    Span::styled("✎ ", accent),
                    Span::styled(format!("{t}▏"), bold),
                ]),
                None => Line::from(self.prompt.to_string()),
            };
            Paragraph::new(line)
                .wrap(Wrap { trim: false })
                .render(area, buf);
            return;
        };
        let slot_spans = |s: Slot, parts: &[(String, f64)]| -> Vec<Span<'static>> {
            let share = match s {
                Slot::A => 1.0 - x.position,
                Slot::B => x.position,
            };
            let tag = Style::new()
                .fg(self.style.accent)
                .add_modifier(Modifier::BOLD);
            let mut v = vec![Span::styled(
                format!("{} {:>3.0}% ", s.label(), share * 100.0),
                tag,
            )];
            match (self.edit_slot, self.editing) {
                (Some(e), Some(t)) if e == s => {
                    v.push(Span::styled("✎ ", accent));
                    v.push(Span::styled(format!("{t}▏"), bold));
                }
                _ => {
                    let st = if share > 0.0 {
                        Style::new()
                    } else {
                        self.style.dimmed()
                    };
                    v.push(Span::styled(parts_text(parts), st));
                }
            }
            v
        };
        let rows: Vec<Vec<Span<'static>>> = x
            .slots
            .iter()
            .map(|(s, parts)| slot_spans(*s, parts))
            .collect();
        if area.height >= 2 {
            for (i, spans) in rows.into_iter().enumerate().take(area.height as usize) {
                let r = Rect::new(area.x, area.y + i as u16, area.width, 1);
                Line::from(spans).render(r, buf);
            }
        } else {
            // One row: the halves side by side, each cut to fit.
            let half = area.width / 2;
            for (i, spans) in rows.into_iter().enumerate().take(2) {
                let x0 = area.x + half * i as u16;
                let w = if i == 0 {
                    half.saturating_sub(1)
                } else {
                    area.width - half
                };
                Line::from(spans).render(Rect::new(x0, area.y, w, 1), buf);
                if i == 0 && half > 0 {
                    buf[(area.x + half - 1, area.y)].set_symbol("│");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(buf: &Buffer) -> Vec<String> {
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn view() -> XfadeView {
        XfadeView {
            slots: vec![
                (Slot::A, vec![("fog, ink".into(), 0.7)]),
                (
                    Slot::B,
                    vec![("sun, ink".into(), 0.225), ("moon, ink".into(), 0.075)],
                ),
            ],
            position: 0.3,
            edit_texts: vec![],
        }
    }

    #[test]
    fn both_slots_show_their_share_and_each_part_its_weight() {
        let style = UiStyle::default().monochrome();
        let v = view();
        let mut buf = Buffer::empty(Rect::new(0, 0, 50, 2));
        PromptBody {
            prompt: "",
            xfade: Some(&v),
            editing: None,
            edit_slot: None,
            style: &style,
        }
        .render(buf.area, &mut buf);
        assert_eq!(
            rows(&buf),
            vec!["A  70% fog, ink", "B  30% ×0.23 sun, ink + ×0.07 moon, ink"]
        );
        let mut one = Buffer::empty(Rect::new(0, 0, 40, 1));
        PromptBody {
            prompt: "",
            xfade: Some(&v),
            editing: None,
            edit_slot: None,
            style: &style,
        }
        .render(one.area, &mut one);
        assert_eq!(rows(&one), vec!["A  70% fog, ink    │B  30% ×0.23 sun, in"]);
        assert_eq!(fader_line(0.3, 11), "A ━━━●━━━━━━━ B 30%");
    }

    #[test]
    fn the_edited_slot_shows_the_editor() {
        let style = UiStyle::default().monochrome();
        let v = view();
        let mut buf = Buffer::empty(Rect::new(0, 0, 40, 2));
        PromptBody {
            prompt: "",
            xfade: Some(&v),
            editing: Some("sun | stars"),
            edit_slot: Some(Slot::B),
            style: &style,
        }
        .render(buf.area, &mut buf);
        assert_eq!(rows(&buf)[1], "B  30% ✎ sun | stars▏");
    }
}
