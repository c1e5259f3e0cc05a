//! Setlist hot reload: watches the setlist file's folder and, after each burst of saves to that
//! file, re-reads it and sends `Msg::SetlistReloaded`. The reducer keeps the running list when
//! the new text is invalid and shows the file:line of each problem.

use std::path::PathBuf;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::msg::Msg;
use crate::mapping::theme::Theme;

/// Starts watching `path` (validated against the themes and the looks saved at start). `None` (logged) when its folder cannot be watched; the show goes on.
pub(crate) fn spawn(
    path: PathBuf,
    themes: Vec<Theme>,
    looks: Vec<crate::core::look::Look>,
    tx: mpsc::Sender<Msg>,
    cancel: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name()?.to_os_string();
    let (ntx, mut nrx) = mpsc::channel::<()>(8);
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let ours = !matches!(ev.kind, EventKind::Access(_))
                && ev
                    .paths
                    .iter()
                    .any(|p| p.file_name() == Some(name.as_os_str()));
            if ours {
                // Full means a reload is already queued.
                let _ = ntx.try_send(());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch the setlist: {e}; hot reload off");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), "cannot watch the setlist: {e}; hot reload off");
        return None;
    }
    Some(tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                n = nrx.recv() => if n.is_none() { break },
            }
            // Editors write in several steps: fold the burst into one reload.
            tokio::time::sleep(crate::mapping::reload::DEBOUNCE).await;
            while nrx.try_recv().is_ok() {}
            let (p, th, lk) = (path.clone(), themes.clone(), looks.clone());
            let result = match tokio::task::spawn_blocking(move || {
                crate::config::setlist::load_setlist(&p, &th, &lk)
                    .map_err(|e| crate::config::ConfigErrors(e).to_string())
            })
            .await
            {
                Ok(r) => r,
                Err(e) => Err(format!("setlist reload task failed: {e}")),
            };
            if tx.send(Msg::SetlistReloaded(result)).await.is_err() {
                break;
            }
        }
    }))
}
