//! `scope-deck attach`: the dashboard (or, with `--headless`, a JSON-lines pipe) on a running
//! `serve`. The dashboard is the same TUI as in one-process mode: it draws the snapshots the deck
//! streams and sends its keys as actions; leaving it (q, Ctrl-C, a closed terminal) leaves the
//! show running.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::protocol::{self, Hello, Line, LineReader, ServiceLine};
use crate::cli::{EXIT_OK, EXIT_RUNTIME};
use crate::config::LoadedConfig;
use crate::core::action::Action;
use crate::core::msg::Msg;
use crate::ui::log_layer::LogLine;
use crate::ui::tui;
use crate::video::PreviewFrame;

/// How long the deck gets to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes to stderr without panicking when the terminal is gone (an SSH drop).
pub(crate) fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "scope-deck: {msg}");
}

/// Runs `attach` to completion and returns the exit code.
pub(crate) fn run(socket: Option<PathBuf>, headless: bool, loaded: &LoadedConfig) -> u8 {
    let path = socket.unwrap_or_else(super::socket::default_path);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("cannot start the async runtime: {e}"));
            return EXIT_RUNTIME;
        }
    };
    let code = rt.block_on(async {
        let (hello, lines, write) = match connect(&path).await {
            Ok(c) => c,
            Err(e) => {
                say(&e);
                return EXIT_RUNTIME;
            }
        };
        if headless {
            pipe(hello, lines, write).await
        } else {
            let preview = hello
                .capabilities
                .iter()
                .any(|c| c == protocol::CAP_PREVIEW);
            dashboard(&path, lines, write, loaded, preview).await
        }
    });
    // Stdin is read on a blocking thread; do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// Connects and reads the hello; refuses another protocol version.
pub(crate) async fn connect(
    path: &Path,
) -> Result<(Hello, LineReader<BufReader<OwnedReadHalf>>, OwnedWriteHalf), String> {
    let stream = UnixStream::connect(path).await.map_err(|e| {
        format!(
            "no deck is serving on {} ({e}); start one with `scope-deck serve`",
            path.display()
        )
    })?;
    let (read, write) = stream.into_split();
    let mut lines = LineReader::new(BufReader::new(read), usize::MAX / 2);
    let first = tokio::time::timeout(HELLO_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| format!("{}: no hello within {HELLO_TIMEOUT:?}", path.display()))?;
    let hello: Hello = match first {
        Ok(Some(Line::Text(t))) => serde_json::from_str(&t)
            .map_err(|e| format!("{}: not a deck socket ({e})", path.display()))?,
        Ok(_) => return Err(format!("{}: closed before its hello", path.display())),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if hello.protocol != protocol::PROTOCOL_VERSION {
        return Err(format!(
            "{}: the deck speaks protocol {}, this attach speaks {} (use the same scope-deck version)",
            path.display(),
            hello.protocol,
            protocol::PROTOCOL_VERSION
        ));
    }
    Ok((hello, lines, write))
}

/// `attach --headless`: stdin lines go to the deck, the deck's lines (hello first) to stdout.
/// Ends when the deck closes, stdin ends (after the deck answered what was asked), stdout's
/// reader goes away, or a stop signal arrives; always exit 0 for those.
async fn pipe(
    hello: Hello,
    mut lines: LineReader<BufReader<OwnedReadHalf>>,
    mut write: OwnedWriteHalf,
) -> u8 {
    let mut out = tokio::io::stdout();
    if out.write_all(&protocol::line(&hello)).await.is_err() {
        return EXIT_OK;
    }
    let _ = out.flush().await;
    let up = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let _ = tokio::io::copy(&mut stdin, &mut write).await;
        // Half-close: the deck answers what it was asked, then closes.
        let _ = write.shutdown().await;
    });
    let down = async move {
        loop {
            match lines.next_line().await {
                Ok(Some(Line::Text(t))) => {
                    let mut l = t.into_bytes();
                    l.push(b'\n');
                    if out.write_all(&l).await.is_err() || out.flush().await.is_err() {
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    };
    tokio::select! {
        _ = down => {}
        _ = stop_signal() => {}
    }
    up.abort();
    EXIT_OK
}

/// Resolves on SIGINT, SIGTERM or SIGHUP (never, if they cannot be watched).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// What the reader saw last.
fn decode(line: &str) -> Option<ServiceLine> {
    // Only the service's own kinds matter to the dashboard; engine events fail to parse here
    // and are ignored (the snapshots carry what they changed).
    if !(line.starts_with(r#"{"event":"snapshot""#)
        || line.starts_with(r#"{"event":"log""#)
        || line.starts_with(r#"{"event":"preview""#))
    {
        return None;
    }
    serde_json::from_str(line).ok()
}

/// The attached dashboard. With `preview` (the deck offers it) it asks for preview frames
/// while its screen draws them.
async fn dashboard(
    path: &Path,
    mut lines: LineReader<BufReader<OwnedReadHalf>>,
    mut write: OwnedWriteHalf,
    loaded: &LoadedConfig,
    preview: bool,
) -> u8 {
    if write.write_all(b"{\"cmd\":\"attach\"}\n").await.is_err() {
        say(&format!(
            "{}: the deck closed the connection",
            path.display()
        ));
        return EXIT_RUNTIME;
    }
    // The first snapshot comes at once.
    let first = loop {
        match tokio::time::timeout(HELLO_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(Line::Text(t)))) => {
                if let Some(ServiceLine::Snapshot { snapshot, .. }) = decode(&t) {
                    break snapshot;
                }
            }
            Ok(Ok(Some(_))) => {}
            _ => {
                say(&format!("{}: no snapshot from the deck", path.display()));
                return EXIT_RUNTIME;
            }
        }
    };
    let (snap_tx, snap_rx) = watch::channel(Arc::new(*first));
    let (log_tx, log_rx) = mpsc::channel::<LogLine>(256);
    let (frame_tx, frame_rx) = watch::channel::<Option<Arc<PreviewFrame>>>(None);
    let (wanted_tx, mut wanted_rx) = watch::channel(false);
    let cancel = CancellationToken::new();
    let deck_gone = CancellationToken::new();
    // Deck → dashboard.
    let reader = {
        let deck_gone = deck_gone.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return,
                    l = lines.next_line() => l,
                };
                match next {
                    Ok(Some(Line::Text(t))) => match decode(&t) {
                        Some(ServiceLine::Snapshot { snapshot, .. }) => {
                            snap_tx.send_replace(Arc::new(*snapshot));
                        }
                        Some(ServiceLine::Log {
                            level,
                            target,
                            text,
                            ..
                        }) => {
                            let level = level.parse().unwrap_or(tracing::Level::INFO);
                            let _ = log_tx.try_send(LogLine {
                                level,
                                target,
                                text,
                            });
                        }
                        Some(ServiceLine::Preview {
                            seq,
                            width,
                            height,
                            rgb,
                            ..
                        }) => match protocol::preview_frame(seq, width, height, &rgb) {
                            Some(f) => {
                                frame_tx.send_replace(Some(Arc::new(f)));
                            }
                            None => tracing::debug!("a preview line that does not fit its size"),
                        },
                        _ => {}
                    },
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        deck_gone.cancel();
                        cancel.cancel();
                        return;
                    }
                }
            }
        })
    };
    // Dashboard keys → deck. Quit keys leave this dashboard only: the show goes on.
    let (inputs_tx, mut inputs_rx) = mpsc::channel::<Msg>(crate::app::INPUT_CAPACITY);
    let writer = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut asked = false;
            loop {
                let msg = tokio::select! {
                    m = inputs_rx.recv() => match m {
                        Some(m) => m,
                        None => return,
                    },
                    changed = wanted_rx.changed(), if preview => {
                        if changed.is_err() {
                            return;
                        }
                        let on = *wanted_rx.borrow_and_update();
                        if on != asked {
                            asked = on;
                            let req = protocol::line(&protocol::Request::Preview { on });
                            if write.write_all(&req).await.is_err() {
                                cancel.cancel();
                                return;
                            }
                        }
                        continue;
                    }
                };
                let Msg::Action { action, .. } = msg else {
                    continue;
                };
                if matches!(action, Action::Quit | Action::ForceQuit) {
                    cancel.cancel();
                    return;
                }
                if write.write_all(&protocol::line(&action)).await.is_err() {
                    cancel.cancel();
                    return;
                }
            }
        })
    };
    let signals = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            stop_signal().await;
            cancel.cancel();
        })
    };
    let guard = match tui::TerminalGuard::enter() {
        Ok(g) => g,
        Err(e) => {
            say(&format!(
                "cannot use this terminal ({e}); try `attach --headless`"
            ));
            return EXIT_RUNTIME;
        }
    };
    tui::install_panic_hook();
    let style = loaded.style.clone().for_terminal();
    let result = tui::run(
        guard,
        tui::TuiSetup {
            keymap: loaded.keymap.clone(),
            style,
            logs: Some(log_rx),
            preview: preview.then_some(frame_rx),
            preview_wanted: preview.then_some(wanted_tx),
        },
        inputs_tx,
        snap_rx,
        loaded.app.ui.fps,
        cancel.clone(),
        false,
    )
    .await;
    cancel.cancel();
    signals.abort();
    writer.abort();
    let _ = reader.await;
    if deck_gone.is_cancelled() {
        say(&format!("the deck at {} stopped", path.display()));
    }
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            say(&format!("terminal failed: {e}"));
            EXIT_RUNTIME
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deck_with_another_protocol_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deck.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s
                .write_all(b"{\"event\":\"hello\",\"protocol\":1,\"version\":\"0.0.9\",\"backend\":\"x\",\"pid\":1,\"t\":0.0}\n")
                .await;
            // Keep the connection open until the client is done.
            let mut buf = [0u8; 1];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
        });
        let Err(e) = connect(&path).await else {
            panic!("protocol 1 accepted");
        };
        assert!(e.contains("protocol 1") && e.contains("speaks 2"), "{e}");
        let missing = dir.path().join("none.sock");
        let Err(e) = connect(&missing).await else {
            panic!("connected to nothing");
        };
        assert!(
            e.contains("no deck is serving on") && e.contains("none.sock"),
            "{e}"
        );
    }
}
