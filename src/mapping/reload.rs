//! Theme hot reload: an edge task that watches the user's `themes/` folder and, after each
//! burst of saves, re-parses every theme and sends `Msg::ThemesReloaded`. The reducer keeps the
//! running theme when the result is an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::msg::Msg;

/// Saves closer together than this are one reload (editors write a file in several steps).
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(150);

/// Parses the built-in themes layered with `config_dir/themes/*.toml`, as at start-up.
pub(crate) fn reload_now(config_dir: &Path) -> Result<Vec<crate::mapping::theme::Theme>, String> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    let themes = crate::config::load_themes(Some(config_dir), &mut errors, &mut files);
    if errors.is_empty() {
        Ok(themes)
    } else {
        Err(crate::config::ConfigErrors(errors).to_string())
    }
}

/// Starts watching `config_dir/themes`. Returns `None` (and logs why) when the folder does not
/// exist or cannot be watched; the show goes on without hot reload.
pub fn spawn(
    config_dir: PathBuf,
    tx: mpsc::Sender<Msg>,
    cancel: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let themes_dir = config_dir.join("themes");
    if !themes_dir.is_dir() {
        tracing::info!(dir = %themes_dir.display(), "no user themes folder; hot reload off");
        return None;
    }
    let (ntx, mut nrx) = mpsc::channel::<()>(8);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let relevant = !matches!(ev.kind, EventKind::Access(_))
                && ev
                    .paths
                    .iter()
                    .any(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"));
            if relevant {
                // Full means a reload is already queued: dropping is fine.
                let _ = ntx.try_send(());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch themes: {e}; hot reload off");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&themes_dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %themes_dir.display(), "cannot watch themes: {e}; hot reload off");
        return None;
    }
    Some(tokio::spawn(async move {
        let _watcher = watcher; // dropped (and unwatched) when the task ends
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                n = nrx.recv() => if n.is_none() { break },
            }
            // Let the burst of writes finish, then fold it into one reload.
            tokio::time::sleep(DEBOUNCE).await;
            while nrx.try_recv().is_ok() {}
            let dir = config_dir.clone();
            let result = match tokio::task::spawn_blocking(move || reload_now(&dir)).await {
                Ok(r) => r,
                Err(e) => Err(format!("theme reload task failed: {e}")),
            };
            if tx.send(Msg::ThemesReloaded(result)).await.is_err() {
                break;
            }
        }
    }))
}
