//! Every output at a glance (`[[outputs]]`): a one-row strip on small terminals, a panel with a
//! row per output when wide (≥ 160 columns and tall enough).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::core::outputs::OutputView;
use crate::transport::types::ConnState;
use crate::ui::style::UiStyle;

/// Terminal width from which the full panel replaces the strip.
pub const PANEL_MIN_WIDTH: u16 = 160;

/// Rows the outputs take on a screen of `width`×`height` (0 without outputs).
pub fn height(outputs: &[OutputView], width: u16, height: u16) -> u16 {
    if outputs.is_empty() {
        0
    } else if width >= PANEL_MIN_WIDTH && height >= 40 {
        outputs.len() as u16 + 2
    } else {
        1
    }
}

fn glyph(s: ConnState) -> &'static str {
    match s {
        ConnState::Streaming => "●",
        ConnState::Degraded => "◐",
        ConnState::Loading | ConnState::Warming | ConnState::Connecting => "◌",
        ConnState::Reconnecting => "○",
        ConnState::Idle | ConnState::Stopped => "·",
    }
}

fn color(s: ConnState, style: &UiStyle) -> Style {
    let c = match s {
        ConnState::Streaming => style.good,
        ConnState::Idle => style.dim,
        ConnState::Stopped => style.bad,
        _ => style.warn,
    };
    Style::new().fg(c)
}

/// The strip: `outputs→all  F1 ●wall  F2 ○left  F3 ●right←wall`.
pub struct OutputsStrip<'a> {
    /// Every output.
    pub outputs: &'a [OutputView],
    /// `all`, a name, `group x`.
    pub routing: &'a str,
    /// Colours.
    pub style: &'a UiStyle,
}

impl Widget for OutputsStrip<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let st = self.style;
        let mut spans = vec![
            Span::styled("outputs→", st.dimmed()),
            Span::styled(
                self.routing.to_string(),
                Style::new().fg(st.accent).add_modifier(Modifier::BOLD),
            ),
        ];
        // Names shrink to fit the row (each keeps at least 4 characters).
        let n = self.outputs.len().max(1);
        let fixed = 9 + self.routing.chars().count() + n * 6;
        let room = usize::from(area.width).saturating_sub(fixed) / n;
        for (i, o) in self.outputs.iter().enumerate() {
            spans.push(Span::styled(format!("  F{} ", i + 1), st.dimmed()));
            spans.push(Span::styled(glyph(o.state), color(o.state, st)));
            let mut name: String = o.name.chars().take(room.max(4)).collect();
            if let Some(f) = &o.failover {
                name.push_str(&f.replace(' ', ""));
            }
            let s = if o.selected {
                Style::new().fg(st.accent).add_modifier(Modifier::REVERSED)
            } else {
                Style::new().fg(st.text)
            };
            spans.push(Span::styled(name, s));
        }
        Line::from(spans).render(area, buf);
    }
}

/// The panel: one row per output with its backend, target, state, why, rates and overrides.
pub struct OutputsPanel<'a> {
    /// Every output.
    pub outputs: &'a [OutputView],
    /// `all`, a name, `group x`.
    pub routing: &'a str,
    /// Colours.
    pub style: &'a UiStyle,
}

impl Widget for OutputsPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let st = self.style;
        let b = Block::bordered()
            .title(format!(
                " outputs → {} (F1-F8 select, F9 all) ",
                self.routing
            ))
            .border_style(st.dimmed())
            .title_style(Style::new().fg(st.accent));
        let inner = b.inner(area);
        b.render(area, buf);
        let w = usize::from(inner.width);
        let lines: Vec<Line> = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let state = match o.warmup {
                    Some(p) => format!("{} {:>3.0}%", o.state.label(), p * 100.0),
                    None => o.state.label().to_string(),
                };
                let sel = if o.selected { "▶" } else { " " };
                let head = format!(
                    "{sel}F{} {:<12} {:<9} {:<28} ",
                    i + 1,
                    crate::ui::render::keep_ends(&o.name, 12),
                    o.backend,
                    crate::ui::render::keep_ends(&o.target, 28),
                );
                // The latency its beat-locked changes go out early by: measured on its own
                // video (`meas`) or configured (`cfg`).
                let figures = format!(
                    " rx {:>4.1} fps  sent {:>6}  own {:>2}  lat {:>4} ms {}  {:<14}",
                    o.rx_fps,
                    o.sent,
                    o.own,
                    o.latency_ms,
                    if o.latency_measured { "meas" } else { "cfg " },
                    crate::ui::render::keep_ends(o.failover.as_deref().unwrap_or(""), 14)
                );
                // glyph (2) + state (12) + the space before the reason (1).
                let used = head.chars().count() + 2 + 12 + 1 + figures.chars().count();
                let reason = o.reason.as_deref().unwrap_or("");
                let reason = crate::ui::render::keep_ends(reason, w.saturating_sub(used));
                let name_style = if o.selected {
                    Style::new().fg(st.accent).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().fg(st.text)
                };
                Line::from(vec![
                    Span::styled(head, name_style),
                    Span::styled(format!("{} ", glyph(o.state)), color(o.state, st)),
                    Span::styled(
                        format!("{state:<12}"),
                        color(o.state, st).add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(
                        format!(" {reason:<width$}", width = w.saturating_sub(used)),
                        st.dimmed(),
                    ),
                    Span::raw(figures),
                ])
            })
            .collect();
        Paragraph::new(lines).render(inner, buf);
    }
}
