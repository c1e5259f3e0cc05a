//! Starts the aiortc test peer (tests/peer/scope_peer.py) on a free loopback port and talks to
//! its control API. Reusable by every helper's integration tests; documented in
//! tests/peer/README.md.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How the peer is started.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Pipeline load delay, seconds.
    pub warmup: f64,
    /// Generated video frames per second.
    pub fps: f64,
    /// Generated frame size.
    pub size: (u32, u32),
    /// Pipelines whose models are "not downloaded".
    pub missing_models: Vec<String>,
    /// Model download duration, seconds.
    pub download: f64,
    /// Answer with only this video codec (`vp8`, `h264`) instead of the offer's order.
    pub codec: Option<&'static str>,
    /// Server-side outputs `/api/v1/hardware/info` reports as available (`ndi`, `spout`,
    /// `syphon`).
    pub hardware: Vec<&'static str>,
    /// Generate no video before the client's first input frame is decoded (Scope in video
    /// mode: output is made from input), so the first returned frame measures the input path.
    pub output_follows_input: bool,
    /// Listen on this port instead of a free one (a "restarted server" on the same address).
    pub port: Option<u16>,
    /// Further command-line options for `scope_peer.py` (e.g. `--osc`, `--load-fail`).
    pub extra_args: Vec<String>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            warmup: 0.3,
            fps: 15.0,
            // Small frames keep the VP8 encoder cheap on a loaded 2-core CI box.
            size: (128, 64),
            missing_models: Vec::new(),
            download: 0.5,
            codec: None,
            hardware: Vec::new(),
            output_follows_input: false,
            port: None,
            extra_args: Vec::new(),
        }
    }
}

/// A running peer; killed on drop.
pub struct Peer {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// Data-channel message log (JSON lines).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// The peer's Python: the venv from `scripts/setup.sh test`, else `python3` on PATH.
pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// A loopback TCP port (also free for UDP in practice) that was free a moment ago and was not
/// given to another test of this process. Tests of one binary run in parallel: a stand-in that
/// lost its port to another test's would have seemed up (the other one answered) until that one
/// stopped.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Peer {
    /// Starts the peer and waits (polling `/health`, 30 s deadline) until it answers.
    pub async fn start(opts: PeerOptions) -> Peer {
        // Tests use reqwest: the same single rustls provider as the app.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("messages.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/scope_peer.py");
        let port = opts.port.unwrap_or_else(free_port);
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .args(["--port", &port.to_string()])
            .args(["--warmup", &opts.warmup.to_string()])
            .args(["--fps", &opts.fps.to_string()])
            .args(["--size", &format!("{}x{}", opts.size.0, opts.size.1)])
            .args(["--download", &opts.download.to_string()])
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("peer.stderr")).unwrap(),
            ));
        if let Some(c) = opts.codec {
            cmd.args(["--codec", c]);
        }
        if !opts.hardware.is_empty() {
            cmd.arg("--hardware").args(&opts.hardware);
        }
        if opts.output_follows_input {
            cmd.arg("--output-follows-input");
        }
        cmd.args(&opts.extra_args);
        if !opts.missing_models.is_empty() {
            cmd.arg("--missing-models").args(&opts.missing_models);
        }
        let child = cmd
            .spawn()
            .expect("start the test peer (run scripts/setup.sh test)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut peer = Peer {
            child,
            port,
            log,
            _dir: dir,
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = peer.http.get(format!("{}/health", peer.url())).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = peer.child.try_wait() {
                panic!("test peer exited ({status}): {}", peer.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "test peer did not answer /health within 30 s: {}",
                peer.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peer
    }

    /// A default peer on `port` again (a "restarted server" on the same address).
    pub async fn start_on(port: u16) -> Peer {
        Peer::start(PeerOptions {
            port: Some(port),
            ..PeerOptions::default()
        })
        .await
    }

    /// Base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The peer's stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("peer.stderr")).unwrap_or_default()
    }

    /// POSTs a JSON body to `/_control/<what>` and returns the reply.
    pub async fn control(&self, what: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_control/{what}", self.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "control {what}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Sends a server → client data-channel message, retrying (2 s deadline) until the peer
    /// has an open channel to send it on (the client may see "open" a moment before the peer).
    pub async fn send_to_client(&self, msg: Value) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let r = self.control("send", msg.clone()).await;
            if r["sent"].as_u64().unwrap_or(0) > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no open data channel on the peer"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `GET /_control/stats`: frames sent/received, sessions, deleted session ids, status.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_control/stats", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /_control/requests`: every HTTP request `{ts, method, path}` the peer answered, in
    /// order (`path` without the query).
    pub async fn requests(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_control/requests", self.url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `GET /_control/uploads`: every asset upload `{name, path, size_bytes}` in order.
    pub async fn uploads(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_control/uploads", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every log entry so far: `{ts, session, kind, data}` with kind `initial` (the offer's
    /// initialParameters), `channel_open`, `message`, `deleted`.
    pub fn entries(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Only the data-channel messages' payloads, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| e["kind"] == "message")
            .map(|e| e["data"].clone())
            .collect()
    }

    /// The first session's initial parameters (the offer's), waited for up to `within`.
    pub async fn wait_initial(&self, within: Duration) -> Value {
        self.wait_log(within, |e| {
            e.iter()
                .find(|x| x["kind"] == "initial")
                .map(|x| x["data"].clone())
        })
        .await
    }

    /// The first data-channel message whose payload matches `pred`, waited for up to `within`.
    pub async fn wait_message(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_log(within, |e| {
            e.iter()
                .filter(|x| x["kind"] == "message")
                .find(|x| pred(&x["data"]))
                .map(|x| x["data"].clone())
        })
        .await
    }

    /// Polls `check` on the log entries until it returns `Some`, or panics at the deadline.
    pub async fn wait_log<T>(
        &self,
        within: Duration,
        mut check: impl FnMut(&[Value]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let entries = self.entries();
            if let Some(t) = check(&entries) {
                return t;
            }
            if Instant::now() >= deadline {
                let tail = &entries[entries.len().saturating_sub(12)..];
                panic!("peer log condition not met within {within:?}; last entries: {tail:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
