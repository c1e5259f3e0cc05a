//! The real binary, headless, in a [`Sandbox`]: actions go in as JSON lines on its stdin, its
//! JSON events come back on a channel fed by a reader thread (the deck must never block on its
//! stdout, and a test waits on the events themselves instead of sleeping).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Sandbox;

/// How long [`Deck::quit`] and [`Deck::exit_after`] give the deck to exit.
pub const EXIT_WITHIN: Duration = Duration::from_secs(20);

/// The `[server]` section for the `scope` backend at `url` with the fast polls the end-to-end
/// tests share (a config can go on adding `[server]` keys right after it).
pub fn scope_server(url: &str) -> String {
    format!(
        "[server]\nbackend = \"scope\"\nurl = \"{url}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n"
    )
}

/// A running `scope-deck --headless --config-dir <sandbox>`; killed on drop (a failed test
/// leaves no deck behind).
pub struct Deck {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line received so far, in order (JSON or not: secrets checks read it all).
    pub stdout: Vec<String>,
    /// The JSON events among them, in order.
    pub seen: Vec<Value>,
}

impl Deck {
    /// Starts the deck on `sb` (stderr discarded).
    pub fn start(sb: &Sandbox) -> Deck {
        Deck::start_with(sb, |_| {})
    }

    /// Starts the deck on `sb` after `configure` adds to the command (environment, arguments,
    /// `stderr(Stdio::piped())` for [`Deck::stderr`]).
    pub fn start_with(sb: &Sandbox, configure: impl FnOnce(&mut Command)) -> Deck {
        let mut cmd = Command::new(super::bin());
        cmd.args(["--headless", "--config-dir"])
            .arg(sb.config_dir())
            .env("XDG_STATE_HOME", sb.state_home())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("start the scope-deck binary");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Deck {
            child,
            stdin,
            lines,
            stdout: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Sends one action (a JSON line).
    pub fn send(&mut self, action: Value) {
        self.send_lines(&[action]);
    }

    /// Sends several actions in one write, so the deck reads them as one burst.
    pub fn send_lines(&mut self, actions: &[Value]) {
        let text: String = actions.iter().map(|a| format!("{a}\n")).collect();
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Takes the next stdout line into `stdout`/`seen`; `None` at the deadline or at the end of
    /// the stream.
    fn next_event(&mut self, deadline: Instant) -> Result<Option<Value>, RecvTimeoutError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(left)?;
        let event = serde_json::from_str::<Value>(&line).ok();
        self.stdout.push(line);
        if let Some(v) = &event {
            self.seen.push(v.clone());
        }
        Ok(event)
    }

    /// The first new event matching `pred` within `within`, or `None` (for a test that acts on
    /// its absence, e.g. "not measured yet, switch again").
    pub fn wait_until(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            match self.next_event(deadline) {
                Ok(Some(v)) if pred(&v) => return Some(v),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// The first new event matching `pred`; panics after `within` with the recent events.
    pub fn wait(&mut self, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        match self.wait_until(within, pred) {
            Some(v) => v,
            None => panic!(
                "no {what} within {within:?}; last events: {:#?}",
                self.recent()
            ),
        }
    }

    /// Every event read so far, in order.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// The last 30 events other than the periodic ones (tempo, stats, sends), for failure
    /// messages.
    pub fn recent(&self) -> Vec<&Value> {
        let mut tail: Vec<&Value> = self
            .seen
            .iter()
            .filter(|v| {
                !matches!(
                    v["event"].as_str(),
                    Some("tempo" | "stats" | "output_sent" | "sent")
                )
            })
            .rev()
            .take(30)
            .collect();
        tail.reverse();
        tail
    }

    /// Waits until the (single) connection is streaming.
    pub fn wait_streaming(&mut self, within: Duration) {
        self.wait("streaming", within, |v| {
            v["event"] == "connection" && v["state"] == "streaming"
        });
    }

    /// Waits for a `notice` event whose message contains `text`.
    pub fn wait_notice(&mut self, text: &str, within: Duration) -> Value {
        self.wait(&format!("a notice with {text:?}"), within, |v| {
            v["event"] == "notice" && v["message"].as_str().is_some_and(|m| m.contains(text))
        })
    }

    /// Waits until output `name`'s latest connection state is `state` (it may already be).
    pub fn wait_output(&mut self, name: &str, state: &str, within: Duration) {
        let latest = self
            .seen
            .iter()
            .rev()
            .find(|v| v["event"] == "output_connection" && v["output"] == name);
        if latest.is_some_and(|v| v["state"] == state) {
            return;
        }
        self.wait(&format!("{name} {state}"), within, |v| {
            v["event"] == "output_connection" && v["output"] == name && v["state"] == state
        });
    }

    /// Sends `action`, closes stdin and waits (within [`EXIT_WITHIN`]) for the deck to exit,
    /// keeping the rest of its output in `stdout`/`seen`.
    pub fn exit_after(&mut self, action: Value) -> ExitStatus {
        self.send(action.clone());
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_WITHIN;
        // The stream ends when the deck exits: that is the event to wait on.
        loop {
            match self.next_event(deadline) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // Exited while something it started still holds its stdout open.
                    if let Some(status) = self.child.try_wait().unwrap() {
                        return status;
                    }
                    panic!(
                        "deck did not exit within {EXIT_WITHIN:?} after {action}; last events: \
                         {:#?}",
                        self.recent()
                    )
                }
            }
        }
        // Its stdout is closed; the process itself follows at once (no event for that).
        super::wait_for("the deck's exit", EXIT_WITHIN, || {
            self.child.try_wait().unwrap()
        })
    }

    /// `force_quit`, then asserts the deck exits with 0.
    pub fn quit(&mut self) {
        let status = self.exit_after(json!({"action": "force_quit"}));
        assert_eq!(status.code(), Some(0), "deck exit status after force_quit");
    }

    /// Everything the deck wrote on stderr (with `stderr(Stdio::piped())`; read after exit).
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut text).unwrap();
        }
        text
    }
}

impl Drop for Deck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
