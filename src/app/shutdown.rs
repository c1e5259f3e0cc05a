//! The shutdown contract: every edge stops within its own deadline; one that does not is named
//! in the log and on stderr, abandoned, and the process exits with [`EXIT_STUCK`] instead of
//! hanging (a sound server that died under a stream can deadlock libpulse forever).

use std::future::Future;
use std::time::Duration;

pub(crate) use crate::cli::EXIT_STUCK;

/// Deadline for one edge (MIDI, video input, transport task, terminal) to stop.
pub(crate) const EDGE_DEADLINE: Duration = Duration::from_secs(2);
/// Deadline for the video output: sinks get end-of-stream so recordings are finalised.
pub(crate) const VIDEO_DEADLINE: Duration = Duration::from_secs(4);
/// Last resort: from the start of shutdown to process exit, whatever is stuck where.
pub(crate) const HARD_LIMIT: Duration = Duration::from_secs(20);

/// The edges that did not stop in time, in the order they were waited for.
#[derive(Debug, Default)]
pub(crate) struct Stuck(pub(crate) Vec<&'static str>);

impl Stuck {
    /// Waits for `edge` to stop, at most `deadline`; names it if it does not.
    pub(crate) async fn wait<F: Future>(&mut self, edge: &'static str, deadline: Duration, fut: F) {
        if tokio::time::timeout(deadline, fut).await.is_err() {
            tracing::error!("{edge} did not stop within {deadline:?}; abandoned");
            self.0.push(edge);
        }
    }

    /// Adds edges reported stuck by a stop that has its own deadline.
    pub(crate) fn add(&mut self, edges: impl IntoIterator<Item = &'static str>) {
        self.0.extend(edges);
    }

    /// Says which edges are stuck (log and stderr) and returns the exit code to use: `code`
    /// when something already failed (a panic's 101 says more), else [`EXIT_STUCK`].
    #[allow(clippy::print_stderr)]
    pub(crate) fn finish(&self, code: u8) -> u8 {
        if self.0.is_empty() {
            return code;
        }
        let list = self.0.join(", ");
        let code = if code == crate::cli::EXIT_OK {
            EXIT_STUCK
        } else {
            code
        };
        tracing::error!(stuck = %list, "exiting with edges that did not stop");
        // Not `eprintln!`: it panics when stderr is a terminal that hung up.
        crate::service::client::say(&format!(
            "did not stop in time: {list}; exiting anyway (code {code})"
        ));
        code
    }
}

/// Arms the last-resort watchdog: unless the returned guard is dropped within [`HARD_LIMIT`],
/// the process exits with [`EXIT_STUCK`] from a plain thread (no runtime needed). A second
/// SIGINT/SIGTERM during shutdown exits the same way at once: the performer asked twice.
/// `tui`: the terminal is restored first (never in headless mode, where stdout is JSON).
pub(crate) fn watchdog(tui: bool) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HARD_LIMIT) {
                fire(tui, &format!("shutdown took longer than {HARD_LIMIT:?}"));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no shutdown watchdog: {e}");
    }
    let signals = tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        fire(tui, "a second stop signal during shutdown");
    });
    Watchdog(Some(tx), signals)
}

#[allow(clippy::print_stderr)]
fn fire(tui: bool, why: &str) {
    if tui {
        crate::ui::tui::restore_terminal();
    }
    tracing::error!("{why}; exiting");
    crate::service::client::say(&format!("{why}; exiting now (code {EXIT_STUCK})"));
    std::process::exit(i32::from(EXIT_STUCK));
}

/// Disarms the watchdog (timer and second-signal listener) when dropped.
pub(crate) struct Watchdog(
    Option<std::sync::mpsc::Sender<()>>,
    tokio::task::JoinHandle<()>,
);

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
        self.1.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_edge_past_its_deadline_is_named_and_changes_the_exit_code() {
        let mut stuck = Stuck::default();
        stuck.wait("fast", Duration::from_secs(1), async {}).await;
        stuck
            .wait(
                "hung",
                Duration::from_millis(20),
                std::future::pending::<()>(),
            )
            .await;
        stuck.add(["audio-source"]);
        assert_eq!(stuck.0, vec!["hung", "audio-source"]);
        assert_eq!(stuck.finish(0), EXIT_STUCK);
        assert_eq!(stuck.finish(101), 101, "a panic's code wins");
        assert_eq!(Stuck::default().finish(0), 0);
    }
}
