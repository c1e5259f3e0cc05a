//! A real terminal for the real binary: a private tmux server (its own socket) running one pane.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use super::wait_for;

/// The shell command that runs the real binary with the sandbox's config and state folders and
/// `args`, then prints `EXIT:<code>`, runs `after` (more shell), and keeps the pane open so the
/// screen can still be read.
pub fn app_command(sb: &super::Sandbox, args: &str, after: &str) -> String {
    format!(
        "env XDG_STATE_HOME='{}' '{}' --config-dir '{}' {args}; echo EXIT:$?; {after} exec sleep 600",
        sb.state_home().display(),
        super::bin().display(),
        sb.config_dir().display(),
    )
}

/// One tmux session on a private server; killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `shell_cmd` in a detached `width`×`height` session.
    pub fn start(shell_cmd: &str, width: u16, height: u16) -> Tmux {
        let socket = format!("scope-deck-test-{}-{}", std::process::id(), rand_suffix());
        let t = Tmux { socket };
        let ok = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                shell_cmd,
            ])
            .status()
            .expect("tmux is installed (scripts/setup.sh test)");
        assert!(ok.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends tmux key names (`q`, `Escape`, `Enter`, `C-c`) or literal text with `literal`.
    pub fn keys(&self, keys: &[&str]) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t"])
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t", "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Resizes the window (the program gets SIGWINCH, as when a terminal window is resized).
    pub fn resize(&self, width: u16, height: u16) {
        assert!(
            self.cmd()
                .args(["resize-window", "-t", "t", "-x", &width.to_string(), "-y"])
                .arg(height.to_string())
                .status()
                .unwrap()
                .success()
        );
    }

    /// A tmux format value for the pane (`#{alternate_on}`, `#{cursor_flag}`).
    pub fn format(&self, f: &str) -> String {
        let out = self
            .cmd()
            .args(["display-message", "-p", "-t", "t", f])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until the screen contains `needle`; returns the screen.
    pub fn wait_for_text(&self, needle: &str, timeout: Duration) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&format!("`{needle}` on screen"), timeout, || {
                last = self.screen();
                last.contains(needle).then(|| last.clone())
            })
        }));
        match found {
            Ok(s) => s,
            Err(_) => panic!("timed out waiting for `{needle}`; screen was:\n{last}"),
        }
    }
}

impl Tmux {
    /// Kills the pane as an SSH drop would end it: its terminal closes and the processes in it
    /// get SIGHUP.
    pub fn kill_pane(&self) {
        let _ = self.cmd().args(["kill-pane", "-t", "t"]).status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(0)
}
