//! The real binary, headless, driving several outputs: shared by the outputs_* tests added for
//! issue 20's remainder (schema, recall, latency). Same shape as outputs_e2e's own `Deck`
//! (whose setup another change is deduplicating), plus extra arguments (`--resume`,
//! `--record`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `[server]` with quick polls and reconnects, for loopback peers.
pub const SERVER: &str = "[server]\nbackend = \"scope\"\npipeline_ids = [\"longlive\"]\n\
    status_poll_ms = 50\nhealth_poll_ms = 200\nhealth_probe_ms = 100\n\
    reconnect_initial_ms = 100\nreconnect_max_ms = 500\nwarmup_expected_s = 1.0\n";

/// A theme with prompts and no mappings: nothing but the test moves a value.
pub const PLAIN_THEME: &str = "name = \"Plain\"\nprompts = [\"plain one\", \"plain two\"]\n";

/// Writes [`PLAIN_THEME`] as `themes/plain.toml`.
pub fn write_plain_theme(sb: &crate::common::Sandbox) {
    std::fs::create_dir_all(sb.config_dir().join("themes")).unwrap();
    std::fs::write(sb.config_dir().join("themes/plain.toml"), PLAIN_THEME).unwrap();
}

/// The binary, headless, with its events on a channel.
pub struct Deck {
    child: Child,
    stdin: ChildStdin,
    rx: std::sync::mpsc::Receiver<Value>,
    /// Every event seen so far.
    pub seen: Vec<Value>,
}

impl Deck {
    /// Starts `scope-deck --headless --config-dir <sandbox> <extra>`.
    pub fn start(sb: &crate::common::Sandbox, extra: &[&str]) -> Deck {
        let mut child = Command::new(crate::common::bin())
            .args(["--headless", "--config-dir"])
            .arg(sb.config_dir())
            .args(extra)
            .env("XDG_STATE_HOME", sb.state_home())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { return };
                if let Ok(v) = serde_json::from_str(&l) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        Deck {
            child,
            stdin,
            rx,
            seen: Vec::new(),
        }
    }

    /// One action line on stdin.
    pub fn send(&mut self, action: Value) {
        writeln!(self.stdin, "{action}").unwrap();
    }

    /// Waits for an event matching `pred` (events are the deck's own; no polling).
    pub fn wait(&mut self, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(v) = self.rx.recv_timeout(left) else {
                let tail: Vec<&Value> = self
                    .seen
                    .iter()
                    .filter(|v| {
                        v["event"] != "tempo" && v["event"] != "output_sent" && v["event"] != "sent"
                    })
                    .rev()
                    .take(30)
                    .collect();
                panic!("no {what} within {within:?}; last events: {tail:#?}");
            };
            self.seen.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
    }

    /// Takes every event that arrives within `d` (for failure messages).
    pub fn drain(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(v) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v);
        }
    }

    /// Waits until `name`'s latest connection state is `state` (it may already be).
    pub fn wait_output(&mut self, name: &str, state: &str, within: Duration) {
        let latest = self
            .seen
            .iter()
            .rev()
            .find(|v| v["event"] == "output_connection" && v["output"] == name);
        if latest.is_some_and(|v| v["state"] == state) {
            return;
        }
        let (n, s) = (name.to_string(), state.to_string());
        self.wait(&format!("{name} {state}"), within, move |v| {
            v["event"] == "output_connection"
                && v["output"] == n.as_str()
                && v["state"] == s.as_str()
        });
    }

    /// Waits for a notice containing `text`.
    pub fn wait_notice(&mut self, text: &str, within: Duration) -> Value {
        let t = text.to_string();
        self.wait(&format!("notice `{text}`"), within, move |v| {
            v["event"] == "notice" && v["message"].as_str().is_some_and(|m| m.contains(&t))
        })
    }

    /// `quit` (the goodbye: every output's session deleted) and the exit code.
    pub fn quit(mut self) -> i32 {
        self.send(json!({"action": "force_quit"}));
        self.wait_exit()
    }

    /// Waits up to 15 s for the process to end.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "deck did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (a crash: no goodbye, no last journal write).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Deck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
