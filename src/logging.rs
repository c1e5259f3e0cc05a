//! Logging to a file through a non-blocking writer: the terminal belongs to the TUI (or to the
//! JSON events in headless mode), so nothing is ever printed there while running.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log file name inside the log directory.
pub(crate) const LOG_FILE: &str = "scope-deck.log";

/// Where logs go by default: `$XDG_STATE_HOME/scope-deck` (falls back to the data dir).
pub(crate) fn default_log_dir() -> PathBuf {
    use etcetera::BaseStrategy;
    etcetera::choose_base_strategy()
        .map(|d| {
            d.state_dir()
                .unwrap_or_else(|| d.data_dir())
                .join("scope-deck")
        })
        .unwrap_or_else(|_| std::env::temp_dir().join("scope-deck"))
}

/// Installs the global subscriber. Keep the guard alive until the very end: dropping it flushes.
/// `pane` additionally copies records to the dashboard's log pane.
pub(crate) fn init(
    dir: &Path,
    filter: &str,
    pane: Option<crate::ui::log_layer::PaneLayer>,
) -> std::io::Result<WorkerGuard> {
    std::fs::create_dir_all(dir)?;
    let appender = tracing_appender::rolling::never(dir, LOG_FILE);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true);
    // try_init: a second init (tests) is not an error worth dying for.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(pane)
        .try_init();
    Ok(guard)
}
