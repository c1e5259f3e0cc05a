//! The terminal front end: owns the terminal, turns keys into actions through the keymap, and
//! draws the latest snapshot at a fixed frame rate (so MIDI bursts never drive redraws).

use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::controls::keymap::Keymap;
use crate::controls::keys::KeyChord;
use crate::core::action::{Action, ActionSource};
use crate::core::msg::Msg;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::Mode;
use crate::ui::render::{ViewState, draw};

/// Puts the terminal back (raw mode off, main screen, cursor shown). Safe to call twice.
pub(crate) fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

/// Restores the terminal when dropped, whatever the path out (return, `?`, panic unwinding).
pub(crate) struct TerminalGuard {
    /// The ratatui terminal.
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen.
    pub(crate) fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, cursor::Hide) {
            restore_terminal();
            return Err(e);
        }
        // A fixed viewport sized here and on every resize event: the default (fullscreen)
        // viewport asks the terminal for its size before every frame, which opens `/dev/tty`
        // 30 times a second.
        let (w, h) = crossterm::terminal::size().unwrap_or((80, 24));
        let options = TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
        };
        match Terminal::with_options(CrosstermBackend::new(out), options) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore_terminal();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // ratatui's own drop shows a hidden cursor and, when that fails, `eprintln!`s, which
        // panics when stderr is the same dead terminal (an SSH drop: exit 101 instead of 0).
        // Show it here; if the terminal is gone, forget that terminal instead of dropping it.
        if self.terminal.show_cursor().is_err() {
            let options = TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 1, 1)),
            };
            if let Ok(inert) = Terminal::with_options(CrosstermBackend::new(io::stdout()), options)
            {
                std::mem::forget(std::mem::replace(&mut self.terminal, inert));
            }
        }
    }
}

/// Whether a terminal error means the terminal is gone (hangup, SSH drop, closed pty) rather
/// than a fault: then the dashboard leaves cleanly.
pub(crate) fn terminal_gone(e: &io::Error) -> bool {
    use rustix::io::Errno;
    e.kind() == io::ErrorKind::BrokenPipe
        || matches!(
            Errno::from_io_error(e),
            Some(Errno::IO | Errno::NXIO | Errno::PIPE | Errno::BADF | Errno::NOTTY)
        )
}

/// `Ok` for a terminal that went away (logged), the error otherwise.
fn gone_or(e: io::Error) -> io::Result<bool> {
    if terminal_gone(&e) {
        tracing::info!("terminal gone ({e}); leaving the dashboard");
        Ok(true)
    } else {
        Err(e)
    }
}

/// Installs a panic hook that restores the terminal and writes the report to the log before
/// the default hook prints it (now on a normal screen).
pub(crate) fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        let bt = std::backtrace::Backtrace::force_capture();
        tracing::error!("panic: {info}\n{bt}");
        default(info);
    }));
}

/// Maps one key press: view actions (help, log, editor, preview, their paging, the draft) change
/// this dashboard's `view`; a show action comes back as the message for the engine. `snap` is
/// what the dashboard shows (the editor starts from it, a draft goes to its slot).
pub(crate) fn key_to_msg(
    chord: KeyChord,
    code: KeyCode,
    snap: &UiSnapshot,
    keymap: &Keymap,
    view: &mut ViewState,
) -> Option<Msg> {
    let mode = view.mode;
    let act = |a: Action, view: &mut ViewState| route(a, snap, view);
    // Ctrl-C always works, whatever the keymap says.
    if chord.ctrl && code == KeyCode::Char('c') {
        return act(Action::ForceQuit, view);
    }
    if mode == Mode::Log {
        // Fixed scroll keys (a keymap without a log section still works); esc closes; every
        // other key does what it does in the normal mode, so the show goes on while reading.
        const PAGE: usize = 10;
        let plain = !chord.ctrl && !chord.alt;
        match code {
            KeyCode::Up if plain => view.log_scroll = view.log_scroll.saturating_add(1),
            KeyCode::Down if plain => view.log_scroll = view.log_scroll.saturating_sub(1),
            KeyCode::PageUp => view.log_scroll = view.log_scroll.saturating_add(PAGE),
            KeyCode::PageDown => view.log_scroll = view.log_scroll.saturating_sub(PAGE),
            KeyCode::Home => view.log_scroll = usize::MAX / 2,
            KeyCode::End => view.log_scroll = 0,
            KeyCode::Esc => return act(Action::Cancel, view),
            _ => {
                return keymap
                    .lookup(Mode::Normal, &chord)
                    .cloned()
                    .and_then(|a| act(a, view));
            }
        }
        return None;
    }
    if mode == Mode::Help {
        // Pages of the help overlay (when the bindings do not fit): fixed keys, as in the log.
        match code {
            KeyCode::PageDown | KeyCode::Down | KeyCode::Right => {
                view.help_page = view.help_page.wrapping_add(1);
                return None;
            }
            KeyCode::PageUp | KeyCode::Up | KeyCode::Left => {
                view.help_page = view.help_page.wrapping_sub(1);
                return None;
            }
            _ => {}
        }
    }
    if mode == Mode::PromptEdit {
        if let Some(a) = keymap.lookup(mode, &chord) {
            return act(a.clone(), view);
        }
        match code {
            KeyCode::Enter => {
                let a = view.send_draft(snap);
                return act(a, view);
            }
            KeyCode::Esc => return act(Action::Cancel, view),
            KeyCode::Backspace => {
                view.edit_buffer.pop();
            }
            // With the crossfader engaged: edit the other slot.
            KeyCode::Tab => return act(Action::EditPrompt { slot: None }, view),
            KeyCode::Char(c) if !chord.ctrl && !chord.alt => view.edit_buffer.push(c),
            _ => {}
        }
        return None;
    }
    keymap
        .lookup(mode, &chord)
        .cloned()
        .and_then(|a| act(a, view))
}

/// A resolved action: a view action stays in `view`; a show action becomes the engine's
/// message (`cancel` does both: it closes this dashboard's overlay and stops MIDI learn).
fn route(a: Action, snap: &UiSnapshot, view: &mut ViewState) -> Option<Msg> {
    if a.is_view() || a == Action::Cancel {
        view.apply(&a, snap);
    }
    (!a.is_view()).then_some(Msg::Action {
        action: a,
        source: ActionSource::Keyboard,
    })
}

/// What the terminal front end draws with.
pub(crate) struct TuiSetup {
    /// Active keymap.
    pub(crate) keymap: Keymap,
    /// Colours.
    pub(crate) style: crate::ui::style::UiStyle,
    /// Log records for the log pane.
    pub(crate) logs: Option<mpsc::Receiver<crate::ui::log_layer::LogLine>>,
    /// Downscaled frames of the video output for the preview (when a video output runs).
    pub(crate) preview: Option<watch::Receiver<Option<Arc<crate::video::PreviewFrame>>>>,
    /// Told whether the screen draws preview frames now (an attached dashboard asks the deck
    /// for them only then).
    pub(crate) preview_wanted: Option<watch::Sender<bool>>,
}

/// Runs the TUI until cancelled. Keys go to `inputs`; frames are drawn from `snapshots`.
///
/// A frame is drawn only when something changed (a new snapshot, a log line, a key, a resize)
/// and at most `fps` times a second, so input bursts never drive redraws and the TUI wakes once
/// per engine tick rather than on a clock of its own.
pub(crate) async fn run(
    mut guard: TerminalGuard,
    setup: TuiSetup,
    inputs: mpsc::Sender<Msg>,
    mut snapshots: watch::Receiver<Arc<UiSnapshot>>,
    fps: u32,
    cancel: CancellationToken,
    crash_test: bool,
) -> io::Result<()> {
    let mut events = EventStream::new();
    let frame = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let TuiSetup {
        keymap,
        style,
        mut logs,
        mut preview,
        preview_wanted,
    } = setup;
    let mut snap = snapshots.borrow_and_update().clone();
    let mut view = ViewState {
        preview_colors: crate::video::preview::PreviewColors::detect(
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
            style.monochrome,
        ),
        ..ViewState::starting_at(&snap)
    };
    let mut next_frame = tokio::time::Instant::now();
    let mut dirty = true;
    let mut engine_gone = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            ev = events.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    // The key reads the view as the deck has it now (an editor opened by a MIDI
                    // binding, a crossfader let go).
                    snap = snapshots.borrow().clone();
                    view.follow(&snap);
                    if let Some(chord) = KeyChord::from_event(&k) {
                        if let Some(msg) = key_to_msg(chord, k.code, &snap, &keymap, &mut view) {
                            let _ = inputs.send(msg).await;
                        }
                    } else if k.modifiers.contains(KeyModifiers::CONTROL) {
                        tracing::debug!("unmapped key {:?}", k.code);
                    }
                    // A view key changes the screen without a new snapshot.
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    if let Err(e) = guard.terminal.resize(Rect::new(0, 0, w, h)) {
                        if gone_or(e)? {
                            break;
                        }
                    }
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::error!("terminal input failed: {e}");
                    break;
                }
                None => break,
            },
            changed = snapshots.changed(), if !dirty && !engine_gone => {
                // The engine publishes its last snapshot before it leaves; the cancellation
                // token ends this loop after that.
                engine_gone = changed.is_err();
                dirty = !engine_gone;
            }
            changed = async {
                match preview.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            }, if !dirty => match changed {
                Ok(()) => dirty = true,
                Err(_) => preview = None,
            },
            line = async {
                match logs.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            }, if !dirty => match line {
                Some(line) => {
                    view.push_log(line);
                    dirty = true;
                }
                None => logs = None,
            },
            _ = tokio::time::sleep_until(next_frame), if dirty => {
                snap = snapshots.borrow_and_update().clone();
                view.follow(&snap);
                if let Some(rx) = preview.as_mut() {
                    view.preview = rx.borrow_and_update().clone();
                }
                // Drain what is pending before drawing once.
                if let Some(rx) = logs.as_mut() {
                    while let Ok(line) = rx.try_recv() {
                        view.push_log(line);
                    }
                }
                let mut shows_preview = false;
                let drawn = guard.terminal.draw(|f| {
                    draw(f, &snap, &view, &keymap, &style);
                    shows_preview = crate::ui::render::shows_preview(f.area(), &snap, &view);
                });
                if let Err(e) = drawn {
                    if gone_or(e)? {
                        break;
                    }
                }
                if let Some(w) = &preview_wanted {
                    w.send_if_modified(|on| std::mem::replace(on, shows_preview) != shows_preview);
                }
                dirty = false;
                // The next frame slot: a fixed rate, not drifting with the draw time, and not
                // bunching up after a quiet spell.
                let now = tokio::time::Instant::now();
                next_frame = (next_frame + frame).max(now);
                if crash_test {
                    #[allow(clippy::panic)]
                    {
                        panic!("crash test requested with --crash-test");
                    }
                }
            }
        }
    }
    drop(guard);
    Ok(())
}
