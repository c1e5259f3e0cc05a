//! The state journal: one small JSON document (`state.json` in the state dir, `--state-file`
//! overrides) holding the live show's [`Recall`], rewritten atomically (temp file, fsync,
//! rename, fsync of the folder) when it changed, at most every 100 ms. The engine only captures
//! (on its control tick) and hands the value over (latest wins); a writer task does the file
//! work, so a slow disk never holds the engine. See docs/recall.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::core::recall::{self, Recall};
use crate::core::state::AppState;

/// The least time between two handovers to the writer: a lone change goes out on the next
/// control tick, a stream of changes (a knob turning) at most this often, so a crash loses at
/// most this much plus one tick and the write in flight.
pub(crate) const MIN_GAP: Duration = Duration::from_millis(100);

/// The `format` field of a journal.
const FORMAT: &str = "scope-deck-state";

/// The journal file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Journal {
    /// Always `scope-deck-state` (anything else is a foreign file).
    pub(crate) format: String,
    /// [`recall::VERSION`] of the deck that wrote it.
    pub(crate) version: u32,
    /// Wall-clock time of the write, ms since the Unix epoch.
    pub(crate) saved_at_unix_ms: u64,
    /// The setlist file the show ran (`--setlist` / `[show] setlist`): loaded again on resume
    /// when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) setlist_file: Option<PathBuf>,
    /// The show.
    pub(crate) state: Recall,
}

/// Why a journal could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    /// Unreadable file.
    #[error("{path}: cannot read the state journal: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a journal, or a damaged one.
    #[error("{path}: not a scope-deck state journal ({why})")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// `$XDG_STATE_HOME/scope-deck/state.json` (next to the log).
pub(crate) fn default_path() -> PathBuf {
    crate::logging::default_log_dir().join("state.json")
}

/// Reads the journal; `Ok(None)` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Journal>, JournalError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let invalid = |why: String| JournalError::Invalid {
        path: path.display().to_string(),
        why,
    };
    let j: Journal = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    if j.format != FORMAT {
        return Err(invalid(format!("format is `{}`", j.format)));
    }
    if j.version > recall::VERSION {
        return Err(invalid(format!(
            "version {} is newer than this deck's {}",
            j.version,
            recall::VERSION
        )));
    }
    Ok(Some(j))
}

/// Moves a bad journal out of the way (`state.json.bad-<unix ms>`), so the next session starts
/// clean and the file can still be looked at. Returns the new name.
pub(crate) fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".bad-{}", unix_ms()));
    let to = PathBuf::from(name);
    std::fs::rename(path, &to)?;
    Ok(to)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `HH:MM UTC` of a journal's write time.
pub(crate) fn clock_label(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let day = secs % 86_400;
    format!("{:02}:{:02} UTC", day / 3600, (day % 3600) / 60)
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file: a temporary
/// file in the same folder, fsync, rename over, fsync of the folder (the rename itself).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp_name = path.as_os_str().to_owned();
    // Per process: two decks sharing a state dir never write the same temporary file.
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// The engine's side: captures on the control tick (not within [`MIN_GAP`] of the last
/// handover), hands a changed state to the writer (latest wins), never waits.
pub(crate) struct JournalTap {
    tx: watch::Sender<Option<Recall>>,
    last: Option<Recall>,
    sent_at: Option<Duration>,
}

impl JournalTap {
    /// Called on the engine's control tick.
    pub(crate) fn on_tick(&mut self, state: &AppState, now: Duration) {
        if self
            .sent_at
            .is_some_and(|t| now.saturating_sub(t) < MIN_GAP)
        {
            return;
        }
        self.capture(state, now);
    }

    /// Captures now (also at the end of the engine loop, so a clean exit keeps the last change).
    pub(crate) fn capture(&mut self, state: &AppState, now: Duration) {
        let r = recall::capture(state);
        if self.last.as_ref() != Some(&r) {
            self.sent_at = Some(now);
            self.last = Some(r.clone());
            self.tx.send_replace(Some(r));
        }
    }
}

/// The writer task; [`JournalWriter::finish`] waits for the last write.
pub(crate) struct JournalWriter {
    task: tokio::task::JoinHandle<()>,
}

impl JournalWriter {
    /// Waits (at most `within`) until the last captured state is on disk.
    pub(crate) async fn finish(self, within: Duration) {
        if tokio::time::timeout(within, self.task).await.is_err() {
            tracing::warn!("state journal: the last write did not finish within {within:?}");
        }
    }
}

/// Starts the writer for `path` (naming `setlist_file` in every write): the engine's tap and the
/// task's handle.
pub(crate) fn spawn(path: PathBuf, setlist_file: Option<PathBuf>) -> (JournalTap, JournalWriter) {
    let (tx, mut rx) = watch::channel::<Option<Recall>>(None);
    let task = tokio::spawn(async move {
        let mut warned = false;
        // Ends when the tap is dropped (the engine finished), after writing the latest value.
        loop {
            let changed = rx.changed().await;
            let value = rx.borrow_and_update().clone();
            if let Some(state) = value {
                let doc = Journal {
                    format: FORMAT.into(),
                    version: recall::VERSION,
                    saved_at_unix_ms: unix_ms(),
                    setlist_file: setlist_file.clone(),
                    state,
                };
                let p = path.clone();
                let res = tokio::task::spawn_blocking(move || {
                    let bytes = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
                    write_atomic(&p, &bytes)
                })
                .await;
                match res {
                    Ok(Ok(())) => warned = false,
                    Ok(Err(e)) if !warned => {
                        warned = true;
                        tracing::error!("state journal {} not written: {e}", path.display());
                    }
                    _ => {}
                }
            }
            if changed.is_err() {
                break;
            }
        }
    });
    (
        JournalTap {
            tx,
            last: None,
            sent_at: None,
        },
        JournalWriter { task },
    )
}

/// What to do with an existing journal at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// `--resume`: take it.
    Take,
    /// The terminal front end: ask (one key).
    Ask,
    /// Headless without `--resume`: leave it, say so in the log.
    Ignore,
}

/// Reads the journal at start-up and decides: the journal to resume, if any. A bad journal is
/// named on stderr and in the log and set aside; it never stops the show.
#[allow(clippy::print_stderr)]
pub(crate) fn startup(path: &Path, offer: Offer) -> Option<Journal> {
    let j = match read(path) {
        Ok(Some(j)) => j,
        Ok(None) => {
            if offer == Offer::Take {
                tracing::warn!(path = %path.display(), "--resume: no state journal; starting fresh");
                eprintln!(
                    "scope-deck: --resume: no state journal at {}; starting fresh",
                    path.display()
                );
            }
            return None;
        }
        Err(e) => {
            let moved = match set_aside(path) {
                Ok(to) => format!("set aside as {}", to.display()),
                Err(m) => format!("could not be set aside: {m}"),
            };
            tracing::error!("{e}; {moved}; starting fresh");
            eprintln!("scope-deck: {e}; {moved}; starting fresh");
            return None;
        }
    };
    let when = clock_label(j.saved_at_unix_ms);
    match offer {
        Offer::Take => {
            tracing::info!(path = %path.display(), saved = %when, "resuming the last show");
            Some(j)
        }
        Offer::Ignore => {
            let kept = keep_previous(path);
            tracing::info!(
                path = %path.display(),
                saved = %when,
                kept = %kept,
                "a journal of the last show exists; not resumed (pass --resume to take it back)"
            );
            None
        }
        Offer::Ask => match ask(&format!("resume last show from {when}? (y/n) ")) {
            Some(true) => {
                tracing::info!(path = %path.display(), saved = %when, "resuming the last show");
                Some(j)
            }
            _ => {
                let kept = keep_previous(path);
                tracing::info!(saved = %when, kept = %kept, "last show not resumed");
                None
            }
        },
    }
}

/// A journal not taken back is renamed `<file>.prev` before this session's first write
/// replaces it, so a wrong answer can still be undone by hand. Returns where it went.
fn keep_previous(path: &Path) -> String {
    let mut name = path.as_os_str().to_owned();
    name.push(".prev");
    let to = PathBuf::from(name);
    match std::fs::rename(path, &to) {
        Ok(()) => to.display().to_string(),
        Err(e) => format!("not kept ({e})"),
    }
}

/// How long the question waits for a key before starting fresh.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// One key in raw mode: `y` yes, anything else no; `None` when there is no terminal or no
/// answer within [`ASK_TIMEOUT`].
#[allow(clippy::print_stderr)]
fn ask(question: &str) -> Option<bool> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, poll, read};
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("scope-deck: {question}");
    let _ = std::io::stderr().flush();
    crossterm::terminal::enable_raw_mode().ok()?;
    let deadline = std::time::Instant::now() + ASK_TIMEOUT;
    let answer = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break None;
        }
        match poll(left) {
            Ok(true) => match read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => {
                    break Some(matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')));
                }
                Ok(_) => {}
                Err(_) => break None,
            },
            Ok(false) => break None,
            Err(_) => break None,
        }
    };
    let _ = crossterm::terminal::disable_raw_mode();
    eprintln!(
        "{}\r",
        match answer {
            Some(true) => "yes",
            Some(false) => "no",
            None => "no answer: starting fresh",
        }
    );
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_a_foreign_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        assert!(read(&p).unwrap().is_none());
        let j = Journal {
            format: FORMAT.into(),
            version: recall::VERSION,
            saved_at_unix_ms: 3_600_000 * 22 + 60_000 * 14,
            setlist_file: None,
            state: Recall {
                theme: Some("x".into()),
                ..Recall::default()
            },
        };
        write_atomic(&p, &serde_json::to_vec(&j).unwrap()).unwrap();
        let back = read(&p).unwrap().unwrap();
        assert_eq!(back.state.theme.as_deref(), Some("x"));
        assert_eq!(clock_label(back.saved_at_unix_ms), "22:14 UTC");
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );

        std::fs::write(&p, b"{\"format\":\"other\",\"version\":1}").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
        std::fs::write(&p, b"\x00garbage").unwrap();
        assert!(startup(&p, Offer::Take).is_none());
        assert!(!p.exists(), "the bad journal is moved away");
        let moved: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".bad-"))
            .collect();
        assert_eq!(moved.len(), 1);
    }

    #[test]
    fn a_newer_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(
            &p,
            format!(
                "{{\"format\":\"{FORMAT}\",\"version\":{},\"saved_at_unix_ms\":0,\"state\":{{}}}}",
                recall::VERSION + 1
            ),
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
    }
}
