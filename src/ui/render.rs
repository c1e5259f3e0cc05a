//! The dashboard: a pure function of the snapshot (and the terminal's own view state). No locks,
//! no I/O, no clock. Layout adapts from 80×24 up; colours come from the UI style.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::controls::keymap::Keymap;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{Level, Mode};
use crate::transport::types::ConnState;
use crate::ui::log_layer::LogLine;
use crate::ui::style::UiStyle;
use crate::ui::widgets::beat::BeatIndicator;
use crate::ui::widgets::gauge::WarmupGauge;
use crate::ui::widgets::meter::{LevelMeter, SpectrumBars};
use crate::ui::widgets::params::{ParamList, source_tag};

/// How many log lines the pane keeps.
pub const LOG_KEEP: usize = 200;

/// State that belongs to the terminal front end only (not the engine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewState {
    /// The prompt text being edited (mode `PromptEdit`).
    pub edit_buffer: String,
    /// Recent log lines for the log pane, newest last.
    pub log: VecDeque<LogLine>,
    /// Log lines the pane could not keep up with.
    pub log_dropped: u64,
}

impl ViewState {
    /// Adds a log line, keeping at most [`LOG_KEEP`].
    pub fn push_log(&mut self, line: LogLine) {
        if self.log.len() >= LOG_KEEP {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }
}

/// Draws the whole screen.
pub fn draw(
    frame: &mut Frame,
    snap: &UiSnapshot,
    view: &ViewState,
    keymap: &Keymap,
    style: &UiStyle,
) {
    let area = frame.area();
    let big = area.height >= 40 && area.width >= 120;
    let panic = snap.controls.panic.is_some();
    let [status, banner, main, prompt, bottom, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(if panic { 3 } else { 0 }),
        Constraint::Min(8),
        Constraint::Length(if big { 4 } else { 3 }),
        Constraint::Length(if big {
            12
        } else if area.height >= 24 {
            6
        } else {
            0
        }),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_status(frame, status, snap, style);
    if panic {
        draw_panic(frame, banner, snap, style);
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(52), Constraint::Percentage(48)]).areas(main);
    draw_audio(frame, left, snap, style);
    // Room for a wrapped error under the stats when there is one.
    let conn_h = if snap.transport.last_error.is_some() {
        8
    } else {
        6
    };
    let [conn, params] =
        Layout::vertical([Constraint::Length(conn_h), Constraint::Min(3)]).areas(right);
    draw_connection(frame, conn, snap, style);
    draw_params(frame, params, snap, style);
    draw_prompt(frame, prompt, snap, view, style);
    if bottom.height > 0 {
        if area.width >= 100 && !snap.mapping.themes.is_empty() {
            // Wide terminals get the theme list next to activity and log.
            let [act, themes, log] = Layout::horizontal([
                Constraint::Percentage(30),
                Constraint::Length(26),
                Constraint::Min(20),
            ])
            .areas(bottom);
            draw_activity(frame, act, snap, style);
            draw_themes(frame, themes, snap, style);
            draw_log(frame, log, view, style);
        } else {
            let [act, log] =
                Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .areas(bottom);
            draw_activity(frame, act, snap, style);
            draw_log(frame, log, view, style);
        }
    }
    draw_hint(frame, hint, snap, style);
    if snap.mode() == Mode::Help {
        draw_help(frame, area, keymap, style);
    }
}

fn block<'a>(title: impl Into<Line<'a>>, style: &UiStyle) -> Block<'a> {
    Block::bordered()
        .title(title)
        .border_style(style.dimmed())
        .title_style(Style::new().fg(style.accent))
}

fn state_style(s: ConnState, style: &UiStyle) -> Style {
    let c = match s {
        ConnState::Streaming => style.good,
        ConnState::Degraded
        | ConnState::Reconnecting
        | ConnState::Warming
        | ConnState::Loading
        | ConnState::Connecting => style.warn,
        ConnState::Stopped => style.bad,
        ConnState::Idle => style.dim,
    };
    Style::new().fg(c).add_modifier(Modifier::BOLD)
}

fn draw_status(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let mut spans = vec![
        Span::styled(
            " scope-deck ",
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled(
            format!("● {}", snap.transport.state.label().to_uppercase()),
            state_style(snap.transport.state, style),
        ),
        Span::styled(format!("  {} ", snap.backend), style.dimmed()),
    ];
    if snap.controls.panic.is_some() {
        spans.push(Span::styled(" PANIC ", style.panic()));
    }
    if snap.controls.quit_pending.is_some() {
        spans.push(Span::styled(
            " press q again to quit ",
            Style::new()
                .fg(style.warn)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_panic(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let what = match snap
        .params
        .iter()
        .find(|r| r.key == "paused")
        .and_then(|r| r.value.as_bool())
    {
        Some(true) => "generation paused, cache reset",
        _ => "safe prompt, cache reset",
    };
    let text = vec![
        Line::from(""),
        Line::from(format!("██ PANIC ██  {what}  —  esc releases")).centered(),
        Line::from(""),
    ];
    frame.render_widget(Paragraph::new(text).style(style.panic()), area);
}

fn draw_audio(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let src = if snap.audio.source.is_empty() {
        "no input".to_string()
    } else {
        snap.audio.source.clone()
    };
    let b = block(format!(" audio · {src} "), style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    if inner.height < 3 {
        return;
    }
    let problem_h = u16::from(snap.audio.problem.is_some());
    let [spec, problem, level, beat] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(problem_h),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(
        SpectrumBars {
            values: &snap.audio.frame.spectrum,
            peaks: &snap.audio.spectrum_peaks,
            style,
        },
        spec,
    );
    if let Some(p) = &snap.audio.problem {
        frame.render_widget(
            Line::styled(
                format!("⚠ {p}"),
                Style::new().fg(style.warn).add_modifier(Modifier::BOLD),
            ),
            problem,
        );
    }
    frame.render_widget(
        LevelMeter {
            rms_db: snap.audio.frame.rms_db,
            peak_db: snap.audio.frame.peak_db,
            style,
        },
        level,
    );
    frame.render_widget(
        BeatIndicator {
            bpm: snap.audio.frame.bpm,
            confidence: snap.audio.frame.confidence,
            bar_position: snap.audio.frame.bar_position,
            beats_per_bar: snap.beats_per_bar,
            source: snap.audio.tempo_source,
            flash: snap.beat_flash(),
            style,
        },
        beat,
    );
}

fn fmt_opt(v: Option<f32>, unit: &str, scale: f32, prec: usize) -> String {
    v.map_or_else(
        || "–".to_string(),
        |x| format!("{:.prec$}{unit}", x * scale),
    )
}

fn draw_connection(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let b = block(" connection ", style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let t = &snap.transport;
    let warming = t.warmup.is_some() && matches!(t.state, ConnState::Loading | ConnState::Warming);
    // Fixed rows, no wrapping: state, server, then the gauge (2 rows) or the stats (2 rows),
    // then the last error.
    let [state_row, server_row, mid, err_row] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(
        Line::from(vec![
            Span::styled(t.state.label().to_uppercase(), state_style(t.state, style)),
            Span::styled(
                t.reason
                    .as_ref()
                    .map(|r| format!("  {r}"))
                    .unwrap_or_default(),
                style.dimmed(),
            ),
        ]),
        state_row,
    );
    frame.render_widget(
        Line::styled(snap.server.clone(), style.dimmed()),
        server_row,
    );
    match (&t.warmup, warming) {
        (Some(w), true) => frame.render_widget(WarmupGauge { warmup: w, style }, mid),
        _ => {
            let s = &t.stats;
            let lines = vec![
                Line::from(format!(
                    "rx {:.1} fps  rtt {}  loss {}",
                    s.rx_fps,
                    fmt_opt(s.rtt_ms, " ms", 1.0, 0),
                    fmt_opt(s.loss, "%", 100.0, 1)
                )),
                Line::from(format!(
                    "srv {}  reconn {}  sent {}",
                    fmt_opt(s.server_fps, " fps", 1.0, 1),
                    s.reconnects,
                    t.sent_count
                )),
            ];
            frame.render_widget(Paragraph::new(lines), mid);
        }
    }
    if let Some(e) = &t.last_error {
        // The server URL is on the row above; keep only the endpoint so the error fits.
        let e = e.replace(snap.server.trim_end_matches('/'), "");
        frame.render_widget(
            Paragraph::new(Line::styled(format!("✖ {e}"), Style::new().fg(style.bad)))
                .wrap(Wrap { trim: true }),
            err_row,
        );
    } else {
        // The Scope server's own outputs that are on (empty when none).
        let outs = snap.scope_outputs.summary();
        frame.render_widget(Line::styled(outs, style.dimmed()), err_row);
    }
}

fn draw_params(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let b = block(" parameters ", style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    // What the performer steers first; the beat state forwarded to Scope last.
    const BEAT_STATE: [&str; 5] = [
        "bpm",
        "beat_phase",
        "bar_position",
        "beat_count",
        "is_playing",
    ];
    let (beat, mut rows): (Vec<_>, Vec<_>) = snap
        .params
        .iter()
        .filter(|r| r.key != "prompts")
        .cloned()
        .partition(|r| BEAT_STATE.contains(&r.key.as_str()));
    rows.extend(beat);
    frame.render_widget(
        ParamList {
            rows: &rows,
            flash: snap.trigger_flash(),
            style,
        },
        inner,
    );
}

fn draw_prompt(
    frame: &mut Frame,
    area: Rect,
    snap: &UiSnapshot,
    view: &ViewState,
    style: &UiStyle,
) {
    let editing = snap.mode() == Mode::PromptEdit;
    let title = if editing {
        " prompt — editing (enter sends, esc cancels) ".to_string()
    } else {
        crate::mapping::view::prompt_title(&snap.mapping, snap.now)
    };
    let b = block(title, style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let line = if editing {
        Line::from(vec![
            Span::styled("✎ ", Style::new().fg(style.accent)),
            Span::styled(
                format!("{}▏", view.edit_buffer),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ])
    } else {
        Line::from(snap.prompt.clone())
    };
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), inner);
}

fn draw_activity(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let b = block(" activity ", style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let lines: Vec<Line> = snap
        .controls
        .recent
        .iter()
        .rev()
        .take(inner.height as usize)
        .map(|a| {
            Line::from(vec![
                Span::styled(format!("{:<5} ", source_tag(a.source)), style.dimmed()),
                Span::raw(a.label.clone()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The theme list: the active one marked, a pending quantised switch shown with its ETA.
fn draw_themes(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let b = block(" themes ", style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let m = &snap.mapping;
    let pending = m.pending.as_ref().map(|p| p.theme.as_str());
    let rows = inner.height as usize;
    // Keep the active theme in view on short panels.
    let first = m
        .active
        .map_or(0, |a| a.saturating_sub(rows.saturating_sub(1)));
    let lines: Vec<Line> = m
        .themes
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, name)| {
            if m.active == Some(i) {
                Line::styled(
                    format!("▶ {name}"),
                    Style::new().fg(style.accent).add_modifier(Modifier::BOLD),
                )
            } else if pending == Some(name.as_str()) {
                let eta = m
                    .pending
                    .as_ref()
                    .and_then(|p| p.eta)
                    .map_or(String::new(), |e| format!(" {:.1}s", e.as_secs_f32()));
                Line::styled(format!("⏱ {name}{eta}"), Style::new().fg(style.warn))
            } else {
                Line::styled(format!("  {name}"), style.dimmed())
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_log(frame: &mut Frame, area: Rect, view: &ViewState, style: &UiStyle) {
    let title = if view.log_dropped > 0 {
        format!(" log ({} not shown) ", view.log_dropped)
    } else {
        " log ".to_string()
    };
    let b = block(title, style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let lines: Vec<Line> = view
        .log
        .iter()
        .rev()
        .take(inner.height as usize)
        .rev()
        .map(|l| {
            let (tag, st) = match l.level {
                tracing::Level::ERROR => (
                    "ERR ",
                    Style::new().fg(style.bad).add_modifier(Modifier::BOLD),
                ),
                tracing::Level::WARN => ("WARN", Style::new().fg(style.warn)),
                _ => ("info", style.dimmed()),
            };
            Line::from(vec![
                Span::styled(format!("{tag} "), st),
                Span::styled(
                    l.text.clone(),
                    if l.level == tracing::Level::ERROR {
                        st
                    } else {
                        Style::new()
                    },
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_hint(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let last_notice = snap
        .ui
        .notices
        .back()
        .filter(|n| snap.now.saturating_sub(n.at).as_secs() < 5);
    let line = match last_notice {
        Some(n) => {
            let st = match n.level {
                Level::Error => Style::new().fg(style.bad).add_modifier(Modifier::BOLD),
                Level::Warn => Style::new().fg(style.warn),
                Level::Info => Style::new(),
            };
            Line::styled(n.message.clone(), st)
        }
        None => Line::styled(
            match snap.mode() {
                Mode::Normal => {
                    "? help · space pause · r reset cache · ! panic · e edit prompt · q quit"
                }
                Mode::Help => "esc / ? close help",
                Mode::PromptEdit => "enter send · esc cancel",
            },
            style.dimmed(),
        ),
    };
    frame.render_widget(line, area);
}

fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap, style: &UiStyle) {
    // Generated from the active keymap: keyboard bindings of the normal mode, then MIDI.
    let rows: Vec<_> = crate::controls::help::help_rows(keymap)
        .into_iter()
        .filter(|r| r.mode == "normal" || r.mode == "midi")
        .collect();
    let two_cols = area.width >= 100;
    let per_col = if two_cols {
        rows.len().div_ceil(2)
    } else {
        rows.len()
    };
    let w = if two_cols {
        100.min(area.width - 4)
    } else {
        area.width.saturating_sub(4).min(64)
    };
    let h = (per_col as u16 + 2).min(area.height.saturating_sub(2));
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let col_w = if two_cols { (w - 2) / 2 } else { w - 2 } as usize;
    let key_w = 14usize.min(col_w / 2);
    let cell = |i: usize| -> Vec<Span<'static>> {
        rows.get(i).map_or_else(Vec::new, |r| {
            let control: String = r.control.chars().take(key_w).collect();
            let desc_w = col_w.saturating_sub(key_w + 2);
            let desc: String = r.description.chars().take(desc_w).collect();
            let key_style = if r.mode == "midi" {
                Style::new().fg(style.beat).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(style.accent).add_modifier(Modifier::BOLD)
            };
            vec![
                Span::styled(format!("{control:>key_w$}  "), key_style),
                Span::raw(format!("{desc:<desc_w$}")),
            ]
        })
    };
    let lines: Vec<Line> = (0..per_col)
        .map(|r| {
            let mut spans = cell(r);
            if two_cols {
                spans.extend(cell(r + per_col));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(block(
            format!(" help — keymap {} (esc closes) ", keymap.name),
            style,
        )),
        popup,
    );
}
