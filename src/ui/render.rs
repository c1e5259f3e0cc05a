//! Drawing: a pure function of the snapshot (and the TUI's own view state). No locks, no I/O.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::controls::keymap::Keymap;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{Level, Mode};

/// State that belongs to the terminal front end only (not the engine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewState {
    /// The prompt text being edited (mode `PromptEdit`).
    pub edit_buffer: String,
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, snap: &UiSnapshot, view: &ViewState, keymap: &Keymap) {
    let area = frame.area();
    let [status, body, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_status(frame, status, snap);
    draw_body(frame, body, snap, view);
    let hint_text = match snap.mode() {
        Mode::Normal => "? help · q quit · space pause · r reset cache · ! panic",
        Mode::Help => "esc / ? close help",
        Mode::PromptEdit => "enter send · esc cancel",
    };
    frame.render_widget(Paragraph::new(hint_text).dim(), hint);
    if snap.mode() == Mode::Help {
        draw_help(frame, area, keymap);
    }
}

fn draw_status(frame: &mut Frame, area: Rect, snap: &UiSnapshot) {
    let mut spans = vec![
        Span::styled(
            " scope-deck ",
            Style::new().add_modifier(Modifier::REVERSED),
        ),
        Span::raw(format!(" {} ", snap.backend)),
        Span::raw(format!("{} ", snap.server)),
        Span::styled(
            snap.transport.state.label().to_uppercase(),
            Style::new().bold(),
        ),
    ];
    if let Some(r) = &snap.transport.reason {
        spans.push(Span::raw(format!(" ({r})")));
    }
    if snap.controls.panic.is_some() {
        spans.insert(0, Span::styled(" PANIC ", Style::new().bold().reversed()));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_body(frame: &mut Frame, area: Rect, snap: &UiSnapshot, view: &ViewState) {
    let mut lines = Vec::new();
    let mode = match snap.mode() {
        Mode::Normal => "normal",
        Mode::Help => "help",
        Mode::PromptEdit => "edit prompt",
    };
    lines.push(Line::from(vec![
        Span::raw("mode: "),
        Span::styled(mode, Style::new().bold()),
    ]));
    if snap.mode() == Mode::PromptEdit {
        lines.push(Line::from(vec![
            Span::raw("prompt> "),
            Span::styled(format!("{}▏", view.edit_buffer), Style::new().bold()),
        ]));
    } else {
        lines.push(Line::from(format!("prompt: {}", snap.prompt)));
    }
    let last = snap.controls.recent.back().map_or("—".to_string(), |a| {
        format!("{} ({:?})", a.label, a.source)
    });
    lines.push(Line::from(format!("last action: {last}")));
    if let Some(t) = snap.trigger_flash() {
        lines.push(Line::from(Span::styled(
            format!("» {t}"),
            Style::new().bold().reversed(),
        )));
    } else {
        lines.push(Line::from(""));
    }
    lines.push(Line::from(format!(
        "messages sent: {}",
        snap.transport.sent_count
    )));
    if let Some((_, p)) = snap.transport.sent.back() {
        lines.push(Line::from(format!("last sent: {p}")).dim());
    }
    for n in snap.ui.notices.iter().rev().take(4) {
        let style = match n.level {
            Level::Error => Style::new().bold(),
            Level::Warn => Style::new(),
            Level::Info => Style::new().dim(),
        };
        lines.push(Line::from(Span::styled(n.message.clone(), style)));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::TOP)),
        area,
    );
}

fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap) {
    let w = area.width.saturating_sub(4).min(60);
    let h = area.height.saturating_sub(2);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + 1,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = keymap
        .bindings(Mode::Normal)
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(
                    format!("{:>10}  ", b.chord.to_string()),
                    Style::new().bold(),
                ),
                Span::raw(b.action.describe()),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(" help — keymap {} ", keymap.name))),
        popup,
    );
}
