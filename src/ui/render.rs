//! The dashboard: a pure function of the snapshot (and the terminal's own view state). No locks,
//! no I/O, no clock. Layout adapts from 80×24 up; colours come from the UI style.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::controls::keymap::{Keymap, ModeKey};
use crate::core::action::Action;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{Level, Mode};
use crate::transport::types::ConnState;
use crate::ui::log_layer::LogLine;
use crate::ui::style::UiStyle;
use crate::ui::widgets::beat::BeatIndicator;
use crate::ui::widgets::gauge::WarmupGauge;
use crate::ui::widgets::meter::{LevelMeter, SpectrumBars};
use crate::ui::widgets::params::{ParamList, source_tag};
use crate::ui::widgets::video::VideoPanel;

/// How many log lines the pane keeps.
pub(crate) const LOG_KEEP: usize = 200;

/// State that belongs to one dashboard only (not the engine): every front end, the
/// in-process one and each attached one, has its own, so help or the editor opened on one does
/// not open on another (src/ui/view.rs changes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewState {
    /// What this dashboard shows over the panels, and which keys the keymap reads.
    pub(crate) mode: Mode,
    /// The large video preview is open (not a mode: keys keep playing while it shows).
    pub preview_open: bool,
    /// The crossfader slot the editor edits (None: the live prompt).
    pub(crate) edit_slot: Option<crate::core::xfade::Slot>,
    /// The newest deck-wide view action applied (from MIDI or a script, `ui.view_actions`).
    pub(crate) view_seen: u64,
    /// The prompt text being edited (mode `PromptEdit`): this dashboard's draft.
    pub(crate) edit_buffer: String,
    /// Recent log lines for the log pane, newest last.
    pub(crate) log: VecDeque<LogLine>,
    /// Log lines the pane could not keep up with.
    pub(crate) log_dropped: u64,
    /// The latest downscaled frame of the video output (for the preview).
    pub preview: Option<std::sync::Arc<crate::video::PreviewFrame>>,
    /// What colours the terminal can show the preview in.
    pub(crate) preview_colors: crate::video::preview::PreviewColors,
    /// Log view: how many rows it is scrolled up from the newest line.
    pub(crate) log_scroll: usize,
    /// Help overlay: the page shown when the bindings do not fit one screen.
    pub(crate) help_page: usize,
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
    let panic = snap.controls.panic.is_some();
    let [status, outputs, faults, banner, main, prompt, bottom, hint] = rows(area, snap);
    draw_status(frame, status, snap, style);
    if outputs.height == 1 {
        let strip = crate::ui::widgets::outputs::OutputsStrip {
            outputs: &snap.outputs,
            routing: &snap.routing,
            style,
        };
        frame.render_widget(strip, outputs);
    } else if outputs.height > 1 {
        let panel = crate::ui::widgets::outputs::OutputsPanel {
            outputs: &snap.outputs,
            routing: &snap.routing,
            style,
        };
        frame.render_widget(panel, outputs);
    }
    draw_faults(frame, faults, snap, keymap, style);
    if panic {
        draw_panic(frame, banner, snap, style);
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(52), Constraint::Percentage(48)]).areas(main);
    // Tall screens keep the video panel (preview and numbers) under the meters; smaller ones
    // show a summary line in the connection panel and the preview on demand (overlay).
    if video_panel(main, snap) {
        let [audio, video] =
            Layout::vertical([Constraint::Min(10), Constraint::Length(main.height / 2 - 2)])
                .areas(left);
        draw_audio(frame, audio, snap, style);
        draw_video(frame, video, " video ", snap, view, style);
    } else {
        draw_audio(frame, left, snap, style);
    }
    // Room for a wrapped error under the stats when there is one, and for the optional rows.
    let rows = ConnectionRows::of(snap);
    let conn_h = if snap.transport.last_error.is_some() {
        8
    } else {
        6
    } + u16::from(rows.ingest)
        + u16::from(rows.video)
        + u16::from(rows.outputs);
    let [conn, params] =
        Layout::vertical([Constraint::Length(conn_h), Constraint::Min(3)]).areas(right);
    draw_connection(frame, conn, snap, keymap, style);
    draw_params(frame, params, snap, style);
    // Narrow terminals have no room for the theme list panel: a strip in the prompt panel's
    // border shows the active theme between its neighbours instead.
    let wide_themes = area.width >= 100 && bottom.height > 0;
    draw_prompt(
        frame,
        prompt,
        snap,
        view,
        !wide_themes || snap.cues.is_some() || !snap.looks.0.is_empty(),
        style,
    );
    if bottom.height > 0 {
        if snap.cues.is_some() || !snap.looks.0.is_empty() {
            // A setlist (or saved looks) gets the bottom row's middle: current, next, countdown,
            // GO, the looks.
            let [act, cue_area, log] = Layout::horizontal([
                Constraint::Percentage(if wide_themes { 25 } else { 0 }),
                Constraint::Percentage(if wide_themes { 40 } else { 55 }),
                Constraint::Min(20),
            ])
            .areas(bottom);
            if act.width > 0 {
                draw_activity(frame, act, snap, style);
            }
            let panel = crate::ui::widgets::cues::CuePanel {
                view: snap.cues.as_ref(),
                looks: &snap.looks.0,
                last_look: snap.looks.1,
                style,
            };
            frame.render_widget(panel, cue_area);
            draw_log(frame, log, view, keymap, style);
        } else if wide_themes && !snap.mapping.themes.is_empty() {
            // Wide terminals get the theme list next to activity and log.
            let [act, themes, log] = Layout::horizontal([
                Constraint::Percentage(30),
                Constraint::Length(26),
                Constraint::Min(20),
            ])
            .areas(bottom);
            draw_activity(frame, act, snap, style);
            draw_themes(frame, themes, snap, style);
            draw_log(frame, log, view, keymap, style);
        } else {
            let [act, log] =
                Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .areas(bottom);
            draw_activity(frame, act, snap, style);
            draw_log(frame, log, view, keymap, style);
        }
    }
    draw_hint(frame, hint, snap, view.mode, keymap, style);
    if view.preview_open {
        frame.render_widget(Clear, main);
        draw_video(frame, main, " video preview ", snap, view, style);
    }
    if view.mode == Mode::Help {
        draw_help(frame, area, keymap, view.help_page, style);
    }
    if view.mode == Mode::Log {
        let [_, body, _] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);
        draw_log_view(frame, body, view, keymap, style);
    }
}

/// The screen's rows: status, outputs (`[[outputs]]` only), faults, panic banner, main panels,
/// prompt, bottom panes, hint.
fn rows(area: Rect, snap: &UiSnapshot) -> [Rect; 8] {
    let big = area.height >= 40 && area.width >= 120;
    let panic = snap.controls.panic.is_some();
    // One row per fault (at most 2, the rest counted), so a lost input is never only a log line.
    let faults_h = snap.health.faults.len().min(2) as u16;
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(crate::ui::widgets::outputs::height(
            &snap.outputs,
            area.width,
            area.height,
        )),
        Constraint::Length(faults_h),
        Constraint::Length(if panic { 3 } else { 0 }),
        Constraint::Min(8),
        // A row more for the crossfader's second slot.
        Constraint::Length(if big { 4 } else { 3 } + u16::from(snap.xfade.is_some() && !big)),
        Constraint::Length(if big {
            12
        } else if area.height >= 24 {
            6
        } else {
            0
        }),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// Whether the main area is tall enough for the video panel under the meters.
fn video_panel(main: Rect, snap: &UiSnapshot) -> bool {
    snap.video_output.is_some() && main.height >= 26
}

/// Whether a screen of `area` draws preview frames (the overlay, or the video panel): an
/// attached dashboard asks the deck for them only then.
pub(crate) fn shows_preview(area: Rect, snap: &UiSnapshot, view: &ViewState) -> bool {
    view.preview_open || video_panel(rows(area, snap)[4], snap)
}

/// Rows of `width` characters holding `text`; when it needs more than `rows`, its middle is cut
/// so what failed (the start) and what to do (the end) both stay.
pub(crate) fn wrap_keep_ends(text: &str, width: usize, rows: usize) -> Vec<String> {
    if width == 0 || rows == 0 {
        return Vec::new();
    }
    // Whole words when that fits; otherwise every cell counts.
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let (n, w) = (cur.chars().count(), word.chars().count());
        if n > 0 && n + 1 + w <= width {
            cur.push(' ');
            cur.push_str(word);
        } else if n == 0 && w <= width {
            cur.push_str(word);
        } else {
            if n > 0 {
                lines.push(std::mem::take(&mut cur));
            }
            let chars: Vec<char> = word.chars().collect();
            let mut parts = chars.chunks(width).map(|c| c.iter().collect::<String>());
            let last = parts.next_back().unwrap_or_default();
            lines.extend(parts);
            cur = last;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() <= rows {
        return lines;
    }
    let fitted = keep_ends(text, width * rows);
    let chars: Vec<char> = fitted.chars().collect();
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

/// Appends the key bound to each action a message names (`` `download_models` `` →
/// `` `download_models` [D] ``), so the screen says which key does what it asks for.
pub(crate) fn with_keys(text: &str, keymap: &Keymap) -> String {
    // Every name worth a key hint has an underscore: most lines are done here, every frame.
    let Some(normal) = keymap
        .modes
        .get(&ModeKey::Normal)
        .filter(|_| text.contains('_'))
    else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for b in normal {
        let name = b.action.name();
        // Only names that cannot be ordinary words, and only field-less actions.
        if !name.contains('_') || !b.action.is_plain() || !out.contains(name) {
            continue;
        }
        let key = format!("[{}]", b.chord);
        if out.contains(&key) {
            continue;
        }
        let quoted = format!("`{name}`");
        let at = out.find(&quoted).map(|i| i + quoted.len()).or_else(|| {
            out.match_indices(name)
                .find(|(i, _)| {
                    let before = out[..*i].chars().next_back();
                    let after = out[i + name.len()..].chars().next();
                    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !word(before) && !word(after)
                })
                .map(|(i, _)| i + name.len())
        });
        if let Some(at) = at {
            out.insert_str(at, &format!(" {key}"));
        }
    }
    out
}

/// The log and notice history over the main panels: wrapped, newest at the bottom, scrolled
/// with the arrows and page keys.
fn draw_log_view(
    frame: &mut Frame,
    area: Rect,
    view: &ViewState,
    keymap: &Keymap,
    style: &UiStyle,
) {
    let b = block(
        format!(
            " log — {} lines · ↑↓ PgUp PgDn Home End scroll · esc closes ",
            view.log.len()
        ),
        style,
    );
    let inner = b.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(b, area);
    let width = usize::from(inner.width).max(1);
    let mut rows: Vec<Line> = Vec::new();
    for l in &view.log {
        let (tag, st) = log_tag(l.level, style);
        let text = format!("{tag} {}", with_keys(&l.text, keymap));
        // Everything is kept here (up to a screenful per record): this is where to read it all.
        for (i, chunk) in wrap_keep_ends(&text, width, usize::from(inner.height).max(1))
            .into_iter()
            .enumerate()
        {
            rows.push(Line::styled(chunk, if i == 0 { st } else { Style::new() }));
        }
    }
    let h = usize::from(inner.height);
    let max_scroll = rows.len().saturating_sub(h);
    let scroll = view.log_scroll.min(max_scroll);
    let end = rows.len() - scroll;
    let start = end.saturating_sub(h);
    let shown: Vec<Line> = rows.drain(start..end).collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

fn log_tag(level: tracing::Level, style: &UiStyle) -> (&'static str, Style) {
    match level {
        tracing::Level::ERROR => (
            "ERR ",
            Style::new().fg(style.bad).add_modifier(Modifier::BOLD),
        ),
        tracing::Level::WARN => ("WARN", Style::new().fg(style.warn)),
        _ => ("info", style.dimmed()),
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
    ];
    // Markers come before the backend label so a narrow terminal never cuts them.
    if snap.controls.panic.is_some() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" PANIC ", style.panic()));
    }
    let paused = snap
        .params
        .iter()
        .find(|r| r.key == "paused")
        .and_then(|r| r.value.as_bool())
        == Some(true);
    if paused {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            " PAUSED ",
            Style::new()
                .fg(style.warn)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    // What the audience sees locally: BLACKOUT / FADE n% (red, reversed) and the recording.
    if let Some(text) = crate::core::stage::status_text(&snap.stage) {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {text} "), style.panic()));
        // The server's own NDI/Spout/Syphon outputs do not pass through the deck.
        let server: Vec<&str> = snap
            .scope_outputs
            .outputs
            .iter()
            .filter(|o| o.enabled)
            .map(|o| o.output.label())
            .collect();
        if !server.is_empty() {
            spans.push(Span::styled(
                format!(" server {} not blanked ", server.join("/")),
                Style::new().fg(style.warn).add_modifier(Modifier::BOLD),
            ));
        }
    }
    if let Some(rec) = snap.recording() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!(" {rec} "),
            Style::new()
                .fg(style.bad)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    if snap.controls.show_mode {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            " SHOW ",
            Style::new()
                .fg(style.accent)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    spans.push(Span::styled(format!("  {} ", snap.backend), style.dimmed()));
    if let Some((a, _)) = &snap.controls.confirm {
        spans.push(Span::styled(
            format!(" press again: {} ", a.describe()),
            Style::new()
                .fg(style.warn)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
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

/// Shortens `text` to `width` characters by cutting its middle, so both what failed (the start)
/// and what to do (the end) stay readable.
pub(crate) fn keep_ends(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    if width < 8 {
        return text.chars().take(width).collect();
    }
    // Two fifths for the start, the rest (after the ellipsis) for the actionable end.
    let head = (width - 1) * 2 / 5;
    let tail = width - 1 - head;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(n - tail));
    out
}

fn draw_faults(frame: &mut Frame, area: Rect, snap: &UiSnapshot, keymap: &Keymap, style: &UiStyle) {
    let faults = &snap.health.faults;
    if area.height == 0 || faults.is_empty() {
        return;
    }
    let rows = usize::from(area.height);
    let width = usize::from(area.width);
    let st = Style::new().fg(style.warn).add_modifier(Modifier::BOLD);
    for (i, f) in faults.iter().take(rows).enumerate() {
        let more = if i + 1 == rows && faults.len() > rows {
            format!(" (+{} more)", faults.len() - rows)
        } else {
            String::new()
        };
        let text = with_keys(
            &format!("⚠ {} {}: {}", f.input, f.state.label(), f.detail),
            keymap,
        );
        let fit = keep_ends(&text, width.saturating_sub(more.chars().count()));
        let row = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        frame.render_widget(
            Line::from(vec![
                Span::styled(fit, st),
                Span::styled(more, style.dimmed()),
            ]),
            row,
        );
    }
}

fn draw_panic(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let what = match snap
        .params
        .iter()
        .find(|r| r.key == "paused")
        .and_then(|r| r.value.as_bool())
    {
        _ if snap.stage.panic_blank && snap.backend == "daydream" => {
            "safe prompt, local outputs black"
        }
        _ if snap.stage.panic_blank => "local outputs black",
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
    let fault = snap.health.of("audio");
    let problem_h = u16::from(fault.is_some() || snap.audio.problem.is_some());
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
    // The state in words here (the fault row above the panels has the details).
    let words = fault
        .map(|f| f.state.label().to_uppercase())
        .or_else(|| snap.audio.problem.clone());
    if let Some(p) = words {
        frame.render_widget(
            Line::styled(
                keep_ends(&format!("⚠ {p}"), usize::from(problem.width)),
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
    let detail = snap.tempo.detail();
    frame.render_widget(
        BeatIndicator {
            bpm: snap.audio.frame.bpm,
            confidence: snap.tempo.confidence,
            detail: &detail,
            bar_position: snap.audio.frame.bar_position,
            beats_per_bar: snap.beats_per_bar,
            source: snap.audio.tempo_source,
            flash: snap.beat_flash(),
            no_beat: snap.no_beat(),
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

/// The connection panel's optional rows, decided once for both its height and its layout.
struct ConnectionRows {
    /// What the server receives from us (hosted backend).
    ingest: bool,
    /// The video output's summary.
    video: bool,
    /// The Scope server's own outputs that are on.
    outputs: bool,
}

impl ConnectionRows {
    fn of(snap: &UiSnapshot) -> Self {
        let s = &snap.transport.stats;
        ConnectionRows {
            ingest: s.input_fps.is_some() || s.jitter_ms.is_some(),
            video: snap.video_output.is_some(),
            outputs: snap.scope_outputs.any_on(),
        }
    }
}

fn draw_connection(
    frame: &mut Frame,
    area: Rect,
    snap: &UiSnapshot,
    keymap: &Keymap,
    style: &UiStyle,
) {
    let rows = ConnectionRows::of(snap);
    let b = block(" connection ", style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let t = &snap.transport;
    let warming = t.warmup.is_some() && matches!(t.state, ConnState::Loading | ConnState::Warming);
    // Fixed rows, no wrapping: state, server, then the gauge (2 rows) or the stats (2 rows),
    // then the last error.
    let [
        state_row,
        server_row,
        mid,
        ingest_row,
        video_row,
        outputs_row,
        err_row,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(u16::from(rows.ingest)),
        Constraint::Length(u16::from(rows.video)),
        Constraint::Length(u16::from(rows.outputs)),
        Constraint::Min(0),
    ])
    .areas(inner);
    if let Some(v) = &snap.video_output {
        frame.render_widget(
            crate::ui::widgets::video::summary_line(v, snap.now, style),
            video_row,
        );
    }
    if ingest_row.height > 0 {
        // What the server receives from us (hosted backend): input rate and jitter.
        frame.render_widget(
            Line::from(format!(
                "in {}  jitter {}",
                fmt_opt(t.stats.input_fps, " fps", 1.0, 1),
                fmt_opt(t.stats.jitter_ms, " ms", 1.0, 0)
            )),
            ingest_row,
        );
    }
    let label = t.state.label().to_uppercase();
    let room = usize::from(state_row.width).saturating_sub(label.chars().count() + 2);
    frame.render_widget(
        Line::from(vec![
            Span::styled(label, state_style(t.state, style)),
            Span::styled(
                t.reason
                    .as_ref()
                    .map(|r| format!("  {}", keep_ends(&with_keys(r, keymap), room)))
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
            let link = format!(
                "rx {:.1} fps  rtt {}  loss {}",
                s.rx_fps,
                fmt_opt(s.rtt_ms, " ms", 1.0, 0),
                fmt_opt(s.loss, "%", 100.0, 1)
            );
            // Stats stop during an outage: the last ones are greyed with their age, never live.
            let live = matches!(t.state, ConnState::Streaming | ConnState::Degraded);
            let link = match t.stats_at {
                Some(at) if !live => Line::styled(
                    format!(
                        "{}: {link}",
                        crate::ui::widgets::video::age_text(snap.now.saturating_sub(at))
                    ),
                    style.dimmed(),
                ),
                _ => Line::from(link),
            };
            let lines = vec![
                link,
                Line::from(format!(
                    "srv {}  reconn {}  sent {}{}",
                    fmt_opt(s.server_fps, " fps", 1.0, 1),
                    s.reconnects,
                    t.sent_count,
                    // Commands the stalled transport could not take (never silent).
                    match t.commands_dropped {
                        0 => String::new(),
                        n => format!("  dropped {n}"),
                    }
                )),
            ];
            frame.render_widget(Paragraph::new(lines), mid);
        }
    }
    if let Some(e) = &t.last_error {
        // The server URL is on the row above; keep only the endpoint so the error fits.
        let e = with_keys(&e.replace(snap.server.trim_end_matches('/'), ""), keymap);
        let rows: Vec<Line> = wrap_keep_ends(
            &format!("✖ {e}"),
            usize::from(err_row.width),
            usize::from(err_row.height),
        )
        .into_iter()
        .map(|r| Line::styled(r, Style::new().fg(style.bad)))
        .collect();
        frame.render_widget(Paragraph::new(rows), err_row);
    }
    if outputs_row.height > 0 {
        // The Scope server's own outputs that are on.
        frame.render_widget(
            Line::styled(snap.scope_outputs.summary(), style.dimmed()),
            outputs_row,
        );
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
    theme_strip: bool,
    style: &UiStyle,
) {
    let editing = view.mode == Mode::PromptEdit;
    let slot = view.edit_slot.filter(|_| snap.xfade.is_some());
    let title = match (editing, slot, &snap.xfade) {
        (true, Some(s), _) => format!(
            " prompt — editing slot {} (tab other slot, enter sends, esc cancels) ",
            s.label()
        ),
        (true, None, _) => " prompt — editing (enter sends, esc cancels) ".to_string(),
        (false, _, Some(x)) => format!(
            " prompt · crossfade {} ",
            crate::ui::widgets::prompt::fader_line(x.position, 11)
        ),
        (false, _, None) => crate::mapping::view::prompt_title(&snap.mapping, snap.now),
    };
    let mut b = block(title, style);
    if theme_strip && snap.mapping.themes.len() > 1 {
        let width = usize::from(area.width.saturating_sub(4));
        b = b.title_bottom(themes_strip(snap, width, style));
    }
    let inner = b.inner(area);
    frame.render_widget(b, area);
    frame.render_widget(
        crate::ui::widgets::prompt::PromptBody {
            prompt: &snap.prompt,
            xfade: snap.xfade.as_ref(),
            editing: editing.then_some(view.edit_buffer.as_str()),
            edit_slot: slot,
            style,
        },
        inner,
    );
}

/// `◂ Default │ ▶ Cosmic Voyage │ Neon Foundry ▸`: the active theme with as many neighbours as
/// fit `width`, the pending one (a quantised switch) marked, arrows where more are hidden.
fn themes_strip<'a>(snap: &UiSnapshot, width: usize, style: &UiStyle) -> Line<'a> {
    let m = &snap.mapping;
    let n = m.themes.len();
    let active = m.active.unwrap_or(0).min(n.saturating_sub(1));
    let pending = m.pending.as_ref().map(|p| p.theme.as_str());
    let label = |i: usize| -> String {
        let name = &m.themes[i];
        if i == active {
            format!("▶ {name}")
        } else if pending == Some(name.as_str()) {
            format!("⏱ {name}")
        } else {
            name.clone()
        }
    };
    // Grow a window around the active theme, alternating right and left, while it fits.
    let (mut lo, mut hi) = (active, active);
    let cost = |lo: usize, hi: usize| -> usize {
        (lo..=hi)
            .map(|i| label(i).chars().count() + 3)
            .sum::<usize>()
            + 4
    };
    loop {
        let mut grew = false;
        if hi + 1 < n && cost(lo, hi + 1) <= width {
            hi += 1;
            grew = true;
        }
        if lo > 0 && cost(lo - 1, hi) <= width {
            lo -= 1;
            grew = true;
        }
        if !grew {
            break;
        }
    }
    let mut spans = vec![Span::styled(
        if lo > 0 { " ◂ " } else { " " },
        style.dimmed(),
    )];
    for i in lo..=hi {
        if i > lo {
            spans.push(Span::styled(" │ ", style.dimmed()));
        }
        let st = if i == active {
            Style::new().fg(style.accent).add_modifier(Modifier::BOLD)
        } else if pending == Some(m.themes[i].as_str()) {
            Style::new().fg(style.warn)
        } else {
            style.dimmed()
        };
        spans.push(Span::styled(label(i), st));
    }
    spans.push(Span::styled(
        if hi + 1 < n { " ▸ " } else { " " },
        style.dimmed(),
    ));
    Line::from(spans)
}

fn draw_activity(frame: &mut Frame, area: Rect, snap: &UiSnapshot, style: &UiStyle) {
    let b = block(" activity ", style);
    let mut inner = b.inner(area);
    frame.render_widget(b, area);
    // MIDI devices on top, at most half the rows (at least one) so the last actions stay
    // visible; nothing extra when MIDI is not in use.
    let devices = crate::ui::widgets::midi::MidiDevices {
        inputs: &snap.controls.midi,
        now: snap.now,
        flash: snap.flash,
        style,
    };
    let dev_h = devices.rows().min((inner.height / 2).max(1));
    if dev_h > 0 && inner.height > 0 {
        let [dev_area, rest] =
            Layout::vertical([Constraint::Length(dev_h), Constraint::Min(0)]).areas(inner);
        frame.render_widget(devices, dev_area);
        inner = rest;
    }
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

fn draw_log(frame: &mut Frame, area: Rect, view: &ViewState, keymap: &Keymap, style: &UiStyle) {
    let open = keymap
        .modes
        .get(&ModeKey::Normal)
        .and_then(|l| l.iter().find(|b| b.action == Action::ToggleLog))
        .map_or(String::new(), |b| format!(" · {} all", b.chord));
    let title = if view.log_dropped > 0 {
        format!(" log ({} not shown){open} ", view.log_dropped)
    } else {
        format!(" log{open} ")
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
            let (tag, st) = log_tag(l.level, style);
            // One row per record, its middle cut so the actionable end shows; the log view
            // (its key is in the title) has every line in full.
            let room = usize::from(inner.width).saturating_sub(5);
            Line::from(vec![
                Span::styled(format!("{tag} "), st),
                Span::styled(
                    keep_ends(&with_keys(&l.text, keymap), room),
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

/// The video panel (preview beside the numbers) in a bordered block.
fn draw_video(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    snap: &UiSnapshot,
    view: &ViewState,
    style: &UiStyle,
) {
    let b = block(title.to_string(), style);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    frame.render_widget(
        VideoPanel {
            video: snap.video_output.as_ref(),
            preview: view.preview.as_deref(),
            colors: view.preview_colors,
            style,
            now: snap.now,
        },
        inner,
    );
}

/// The normal mode's hint line, from the active keymap (first key bound to each action), so a
/// remapped key is never advertised under its default name. Entries that do not fit `width`
/// are left out, least important first (help and quit stay).
fn normal_hint(keymap: &Keymap, video: bool, width: u16) -> String {
    // (action, label, importance: lower stays longer)
    let wanted = [
        (Action::ToggleHelp, "help", 0),
        (Action::TogglePause, "pause", 3),
        (Action::ResetCache, "reset cache", 4),
        (Action::Panic, "panic", 2),
        (Action::EditPrompt { slot: None }, "edit prompt", 6),
        (Action::TogglePreview, "preview", 5),
        (Action::ToggleLog, "log", 7),
        (Action::ToggleShowMode, "show mode", 8),
        (Action::Quit, "quit", 1),
    ];
    let normal = keymap.modes.get(&ModeKey::Normal);
    let mut items: Vec<(String, u8)> = wanted
        .iter()
        .filter(|(a, _, _)| video || *a != Action::TogglePreview)
        .filter_map(|(a, label, rank)| {
            let b = normal?.iter().find(|b| &b.action == a)?;
            Some((format!("{} {label}", b.chord), *rank))
        })
        .collect();
    let len = |items: &[(String, u8)]| {
        items
            .iter()
            .map(|(s, _)| s.chars().count() + 3)
            .sum::<usize>()
    };
    while len(&items) > usize::from(width) + 3 && items.len() > 2 {
        let Some(worst) = items
            .iter()
            .enumerate()
            .max_by_key(|(_, (_, rank))| *rank)
            .map(|(i, _)| i)
        else {
            break;
        };
        items.remove(worst);
    }
    items
        .into_iter()
        .map(|(s, _)| s)
        .collect::<Vec<_>>()
        .join(" · ")
}

fn draw_hint(
    frame: &mut Frame,
    area: Rect,
    snap: &UiSnapshot,
    mode: Mode,
    keymap: &Keymap,
    style: &UiStyle,
) {
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
            Line::styled(
                keep_ends(&with_keys(&n.message, keymap), usize::from(area.width)),
                st,
            )
        }
        None => Line::styled(
            match mode {
                Mode::Normal => normal_hint(keymap, snap.video_output.is_some(), area.width),
                Mode::Help => "esc / ? close help".to_string(),
                Mode::PromptEdit => "enter send · esc cancel".to_string(),
                Mode::Log => {
                    "↑↓ PgUp PgDn Home End scroll · esc closes · other keys play".to_string()
                }
            },
            style.dimmed(),
        ),
    };
    frame.render_widget(line, area);
}

fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap, page: usize, style: &UiStyle) {
    // Generated from the active keymap: keyboard bindings of the normal mode, then MIDI.
    let rows: Vec<_> = crate::controls::help::help_rows(keymap)
        .into_iter()
        .filter(|r| r.mode == "normal" || r.mode == "midi")
        .collect();
    // Two columns on wide terminals, and on narrower ones when one column would not fit the
    // height; whatever still does not fit is counted on the last row, never silently cut.
    let max_rows = usize::from(area.height.saturating_sub(4)).max(1);
    let two_cols = area.width >= 100 || (rows.len() > max_rows && area.width >= 60);
    let per_col = if two_cols {
        rows.len().div_ceil(2)
    } else {
        rows.len()
    }
    .min(max_rows);
    let shown = if two_cols { per_col * 2 } else { per_col };
    // More bindings than fit: pages (PgDn/PgUp), the last cell saying where the reader is.
    let per_page = if rows.len() > shown {
        shown.saturating_sub(1).max(1)
    } else {
        shown
    };
    let pages = rows.len().div_ceil(per_page).max(1);
    // Cycles: PgDn on the last page shows the first again.
    let page = page % pages;
    let rows: Vec<_> = rows
        .into_iter()
        .skip(page * per_page)
        .take(per_page)
        .collect();
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
    let longest = rows
        .iter()
        .map(|r| r.control.chars().count())
        .max()
        .unwrap_or(0);
    let key_w = longest.clamp(3, 14).min(col_w / 2);
    let cell = |i: usize| -> Vec<Span<'static>> {
        if pages > 1 && i + 1 == shown {
            return vec![Span::styled(
                format!("page {}/{pages} · pgdn/pgup for more", page + 1),
                style.dimmed(),
            )];
        }
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
