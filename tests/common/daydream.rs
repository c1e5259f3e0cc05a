//! Starts the Daydream STAND-IN (tests/peer/daydream_standin.py) on a free loopback port. The
//! stand-in is built from docs/daydream-api.md, not the real service (unreachable from here);
//! it logs every request (with headers) as JSON lines for the tests to inspect.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The fake key the stand-in accepts (looks like a real one so a leak would be obvious).
pub const KEY: &str = "daydream_live_TESTKEY_9f8e7d6c5b4a";

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct StandinOptions {
    /// Seconds of not-ready status answers after creation.
    pub warmup: f64,
    /// Seconds of not-ready PATCH answers (None: same as `warmup`).
    pub patch_warmup: Option<f64>,
    /// Status codes cycled while warming.
    pub warmup_codes: Vec<u16>,
    /// First N creates answer 503.
    pub create_fail: u32,
    /// After warm-up, PATCH answers this status (0 = success).
    pub patch_fail: u16,
    /// Put whip_url on this (foreign) https host.
    pub whip_host: Option<String>,
    /// WHEP video size.
    pub size: (u32, u32),
    /// WHEP video frame rate.
    pub fps: f64,
    /// Leave the `livepeer-playback-url` header out of the WHIP answer.
    pub no_playback_header: bool,
    /// WHIP answers whose ICE candidates point at the discard port: media never connects.
    pub unreachable_media: bool,
    /// After `create_fail`, the next N creates answer 409 (a quota/conflict).
    pub create_conflict: u32,
    /// Then N creates create the stream but answer 504 (the client never learns its id).
    pub create_lost: u32,
    /// WHEP answers 404 until this many seconds after WHIP ingest (no output yet).
    pub output_delay: f64,
    /// The first WHIP POST per stream answers 307 to another path.
    pub whip_redirect: bool,
    /// With `whip_redirect`: redirect to `https://<host>/...` instead of the stand-in.
    pub whip_redirect_host: Option<String>,
    /// `gateway_status.error.error_message` in every status answer.
    pub gateway_error: Option<String>,
    /// `DELETE /v1/streams?id=` answers 405 (only `DELETE /v1/streams/{id}` works).
    pub no_query_delete: bool,
}

impl Default for StandinOptions {
    fn default() -> Self {
        StandinOptions {
            warmup: 1.0,
            patch_warmup: None,
            warmup_codes: vec![404, 409, 503, 429],
            create_fail: 0,
            patch_fail: 0,
            whip_host: None,
            size: (128, 64),
            fps: 15.0,
            no_playback_header: false,
            unreachable_media: false,
            create_conflict: 0,
            create_lost: 0,
            output_delay: 0.0,
            whip_redirect: false,
            whip_redirect_host: None,
            gateway_error: None,
            no_query_delete: false,
        }
    }
}

/// A running stand-in; killed on drop.
pub struct Standin {
    child: Child,
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    /// Request log (JSON lines).
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

impl Standin {
    /// Starts it and waits (30 s deadline) until it answers.
    pub fn start(o: StandinOptions) -> Standin {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let port = super::peer::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/daydream_standin.py");
        let codes: Vec<String> = o.warmup_codes.iter().map(u16::to_string).collect();
        let mut cmd = Command::new(super::peer::python());
        cmd.arg(&script)
            .args(["--port", &port.to_string(), "--key", KEY])
            .arg("--log")
            .arg(&log)
            .args(["--warmup", &o.warmup.to_string()])
            .args([
                "--patch-warmup",
                &o.patch_warmup.unwrap_or(-1.0).to_string(),
            ])
            .args(["--warmup-codes", &codes.join(",")])
            .args(["--create-fail", &o.create_fail.to_string()])
            .args(["--patch-fail", &o.patch_fail.to_string()])
            .args(["--size", &format!("{}x{}", o.size.0, o.size.1)])
            .args(["--fps", &o.fps.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr")).unwrap(),
            ));
        if o.no_playback_header {
            cmd.arg("--no-playback-header");
        }
        if o.unreachable_media {
            cmd.arg("--unreachable-media");
        }
        if let Some(h) = &o.whip_host {
            cmd.args(["--whip-host", h]);
        }
        cmd.args(["--create-conflict", &o.create_conflict.to_string()])
            .args(["--create-lost", &o.create_lost.to_string()])
            .args(["--output-delay", &o.output_delay.to_string()]);
        if o.whip_redirect {
            cmd.arg("--whip-redirect");
        }
        if let Some(h) = &o.whip_redirect_host {
            cmd.args(["--whip-redirect-host", h]);
        }
        if let Some(e) = &o.gateway_error {
            cmd.args(["--gateway-error", e]);
        }
        if o.no_query_delete {
            cmd.arg("--no-query-delete");
        }
        let child = cmd
            .spawn()
            .expect("start the stand-in (run scripts/setup.sh test)");
        let mut s = Standin {
            child,
            port,
            log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("stand-in exited ({st}): {}", s.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "stand-in did not start: {}",
                s.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Every request logged so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Requests with this method whose path starts with `prefix`.
    pub fn matching(&self, method: &str, prefix: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r["method"] == method && r["path"].as_str().unwrap_or("").starts_with(prefix)
            })
            .collect()
    }

    /// The stand-in's counters (`/_state`).
    pub fn state(&self) -> Value {
        self.http("GET", "/_state", &[], "")
    }

    /// One raw HTTP/1.0 exchange with the stand-in; the JSON body of the answer (or null).
    fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: x\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("null");
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    /// Creates a stream directly (as the API would for any client): the stream object, whose
    /// `whip_url` carries the stream key in its path.
    pub fn create_stream(&self) -> Value {
        let auth = format!("Bearer {KEY}");
        self.http(
            "POST",
            "/v1/streams",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            r#"{"pipeline":"streamdiffusion","params":{"model_id":"stabilityai/sd-turbo","prompt":"x"}}"#,
        )
    }

    /// Changes how long WHEP answers 404 after ingest (test control, not part of the API).
    pub fn set_output_delay(&self, secs: f64) {
        let v = self.http(
            "POST",
            "/_control",
            &[("Content-Type", "application/json")],
            &format!(r#"{{"output_delay":{secs}}}"#),
        );
        assert_eq!(v["output_delay"].as_f64(), Some(secs), "{v}");
    }

    /// Every stream key the stand-in handed out (the secrets a log must not contain).
    pub fn stream_keys(&self) -> Vec<String> {
        self.state()["streams"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|s| s["key"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `[daydream]` settings pointing at this stand-in (local-development opt-in, no ICE
    /// servers: loopback only).
    pub fn config(&self) -> scope_deck::transport::daydream::DaydreamConfig {
        scope_deck::transport::daydream::DaydreamConfig {
            api_url: self.url(),
            allow_local_dev: true,
            ice_servers: vec![],
            status_poll_secs: 0.5,
            ..Default::default()
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
