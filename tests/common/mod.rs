//! Helpers shared by the integration tests: an isolated environment for the real binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod beat_grid;
pub mod deck;
pub mod fixtures;
pub mod jack;
pub mod peer;
pub mod rig;
pub mod rtp_gen;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Temporary config and state directories so a test never reads the developer's files.
pub struct Sandbox {
    /// Root temp dir (dropped at the end of the test).
    pub root: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh sandbox with empty config and state dirs.
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("config")).unwrap();
        std::fs::create_dir_all(root.path().join("state")).unwrap();
        Sandbox { root }
    }

    /// The `--config-dir` to pass.
    pub fn config_dir(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// `XDG_STATE_HOME` for the child.
    pub fn state_home(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// Where the child's log file ends up.
    pub fn log_file(&self) -> PathBuf {
        self.state_home().join("scope-deck").join("scope-deck.log")
    }

    /// Writes `config.toml`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_dir().join("config.toml"), text).unwrap();
    }

    /// Writes `themes/<stem>.toml` (replacing a built-in theme of that name).
    pub fn write_theme(&self, stem: &str, text: &str) {
        let dir = self.config_dir().join("themes");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{stem}.toml")), text).unwrap();
    }

    /// The log text (empty if none yet).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }
}

/// Path of the built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scope-deck"))
}

/// Polls `f` until it returns `Some` or the deadline passes (for external processes that offer
/// no event to wait on).
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// True when `p` exists.
pub fn exists(p: &Path) -> bool {
    p.exists()
}
pub mod daydream;
