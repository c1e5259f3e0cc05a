//! Fault soak (issue 16, item 5) — a benchmark, not a pass/fail test: the real binary
//! (headless) while the things it depends on die and come back, over and over.
//!
//! - `peer`: the aiortc test peer is killed with SIGKILL at a random point of the session
//!   (streaming, right after an edit was sent, and in 40 % of the cycles again while the new
//!   session loads or warms up) and restarted on the same port; an edit is made while it is
//!   down. Reported: detect time (kill → a connection event that is
//!   not `streaming`; goal < 2 s), recover time (restart → `streaming`), edits lost (made while
//!   down and never seen by the new session; goal 0).
//! - `pulse`: a private PulseAudio (shared memory on) is killed under the device capture and
//!   restarted. Reported: detect time (kill → `health` `audio` `lost`), recover time (restart →
//!   frames again, `silent` on the null sink).
//!
//! - `midi` (with `--features jack`): a MIDI device (`jack_midiseq` playing a note loop on a
//!   private jackd, dummy driver) is killed by PID and started again. Reported: detect time
//!   (kill → `midi_activity` says the device is gone), recover time (restart → its messages
//!   counted again).
//!
//! All report the deck's open file descriptors, threads and RSS after every cycle (leaks), and
//! how long `quit` took at the end.
//!
//! Run: `cargo bench --profile dev --bench fault_soak` (needs `scripts/setup.sh test`);
//! `SOAK_CYCLES` (default 20; the issue's figure is 100), `SOAK_PART` = `peer` | `pulse` | `midi`
//! | `all` (`midi` needs `cargo bench --profile dev --features jack --bench fault_soak`).
//! Results go to docs/performance.md under `## Fault handling`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Deck {
    stdin: ChildStdin,
    events: Receiver<Value>,
    exited: Receiver<Option<i32>>,
    pid: u32,
}

impl Deck {
    fn start(config_dir: &Path, state: &Path, env: &[(&str, String)]) -> Deck {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scope-deck"));
        cmd.args(["--headless", "--config-dir"])
            .arg(config_dir)
            .env("XDG_STATE_HOME", state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let (etx, exited) = channel();
        std::thread::spawn(move || {
            let _ = etx.send(child.wait().ok().and_then(|s| s.code()));
        });
        Deck {
            stdin,
            events,
            exited,
            pid,
        }
    }

    fn send(&mut self, line: &str) {
        let _ = writeln!(self.stdin, "{line}");
        let _ = self.stdin.flush();
    }

    /// The first event matching `f` within `timeout` (others go to `seen`).
    fn wait(
        &self,
        timeout: Duration,
        seen: &mut impl FnMut(&Value),
        f: impl Fn(&Value) -> bool,
    ) -> Option<Duration> {
        let t0 = Instant::now();
        let end = t0 + timeout;
        loop {
            match self
                .events
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(v) => {
                    seen(&v);
                    if f(&v) {
                        return Some(t0.elapsed());
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// (open fds, threads, RSS KiB) from /proc.
    fn resources(&self) -> (usize, usize, usize) {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0);
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (fds, field("Threads:"), field("VmRSS:"))
    }

    fn quit(mut self) -> (Duration, Option<i32>) {
        let t0 = Instant::now();
        self.send(r#"{"action":"quit"}"#);
        match self.exited.recv_timeout(Duration::from_secs(30)) {
            Ok(code) => (t0.elapsed(), code),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-9", &self.pid.to_string()])
                    .status();
                (t0.elapsed(), None)
            }
        }
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, detect: &[f64], recover: &[f64], res: &[(usize, usize, usize)]) {
    println!(
        "{name}: {} cycles; detect p50 {:.2} s p95 {:.2} s max {:.2} s; recover p50 {:.2} s p95 {:.2} s max {:.2} s",
        detect.len(),
        pct(detect, 0.5),
        pct(detect, 0.95),
        pct(detect, 1.0),
        pct(recover, 0.5),
        pct(recover, 0.95),
        pct(recover, 1.0)
    );
    if let (Some(a), Some(b)) = (res.first(), res.last()) {
        let max_rss = res.iter().map(|r| r.2).max().unwrap_or(0);
        println!(
            "{name}: fds {} → {}, threads {} → {}, RSS {} → {} KiB (max {max_rss})",
            a.0, b.0, a.1, b.1, a.2, b.2
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_peer(port: u16, log: &Path) -> Proc {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("tests/peer/.venv/bin/python");
    let python = if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let child = Command::new(python)
        .arg(root.join("tests/peer/scope_peer.py"))
        .args([
            "--port",
            &port.to_string(),
            "--warmup",
            "0.3",
            "--fps",
            "15",
        ])
        .args(["--size", "128x64", "--log"])
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test peer (scripts/setup.sh test)");
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "peer did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

/// Whether any logged message of the peer carries `noise_scale` = `v`.
fn peer_saw(log: &Path, v: f64) -> bool {
    fn walk(x: &Value, v: f64) -> bool {
        match x {
            Value::Object(m) => m.iter().any(|(k, y)| {
                (k == "noise_scale" && y.as_f64().is_some_and(|y| (y - v).abs() < 1e-9))
                    || walk(y, v)
            }),
            Value::Array(a) => a.iter().any(|y| walk(y, v)),
            _ => false,
        }
    }
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| walk(&e, v))
}

fn soak_peer(cycles: usize, rng: &mut Rng) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    let port = free_port();
    let log = dir.path().join("peer.jsonl");
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "[server]\nurl = \"http://127.0.0.1:{port}\"\npipeline_ids = [\"longlive\"]\n\
             status_poll_ms = 50\nhealth_poll_ms = 100\nreconnect_initial_ms = 50\n\
             reconnect_max_ms = 500\nno_frames_timeout_s = 1.5\nwarmup_expected_s = 1.0\n\
             request_timeout_s = 5.0\n"
        ),
    )
    .unwrap();
    let mut peer = Some(start_peer(port, &log));
    let mut deck = Deck::start(&cfg, &dir.path().join("state"), &[]);
    // The last connection state (read between waits while the closure keeps updating it).
    let state = std::cell::RefCell::new(String::new());
    let mut track = |v: &Value| {
        if v["event"] == "connection" {
            *state.borrow_mut() = v["state"].as_str().unwrap_or("").to_string();
        }
    };
    let streaming = |v: &Value| v["event"] == "connection" && v["state"] == "streaming";
    deck.wait(Duration::from_secs(60), &mut track, streaming)
        .expect("first session streaming");
    let (mut detect, mut recover, mut res) = (Vec::new(), Vec::new(), Vec::new());
    let mut lost = 0;
    let mut at_kill: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 0..cycles {
        // A random point of the session: right after the restart (loading, warm-up) or later.
        let d = Duration::from_secs_f64(rng.next_f64() * 2.5);
        let _ = deck.wait(d, &mut track, |_| false);
        if rng.next_f64() < 0.3 {
            // Mid-send: an edit goes out just before the kill.
            deck.send(&format!(
                r#"{{"action":"set_param","key":"noise_scale","value":{}}}"#,
                0.2 + i as f64 * 1e-4
            ));
        }
        let label = state.borrow().clone();
        let was_streaming = label == "streaming";
        *at_kill.entry(label).or_default() += 1;
        drop(peer.take()); // SIGKILL
        let t = deck.wait(Duration::from_secs(10), &mut track, |v| {
            v["event"] == "connection" && v["state"] != "streaming"
        });
        if was_streaming {
            match t {
                Some(t) => detect.push(t.as_secs_f64()),
                None => println!("cycle {i}: loss not reported within 10 s"),
            }
        }
        // The performer keeps playing while the server is down.
        let edit = 0.5 + i as f64 * 1e-4;
        deck.send(&format!(
            r#"{{"action":"set_param","key":"noise_scale","value":{edit}}}"#
        ));
        peer = Some(start_peer(port, &log));
        if rng.next_f64() < 0.4 {
            // A flapping server: killed again while the new session loads or warms up.
            let d = Duration::from_secs_f64(rng.next_f64() * 0.8);
            let _ = deck.wait(d, &mut track, |_| false);
            let label = format!("{} (restarting)", state.borrow());
            *at_kill.entry(label).or_default() += 1;
            drop(peer.take());
            let _ = deck.wait(Duration::from_millis(300), &mut track, |_| false);
            peer = Some(start_peer(port, &log));
        }
        let back = Instant::now();
        match deck.wait(Duration::from_secs(30), &mut track, streaming) {
            Some(_) => recover.push(back.elapsed().as_secs_f64()),
            None => println!("cycle {i}: not streaming again within 30 s"),
        }
        let seen_by = Instant::now() + Duration::from_secs(3);
        while !peer_saw(&log, edit) && Instant::now() < seen_by {
            let _ = deck.wait(Duration::from_millis(100), &mut track, |_| false);
        }
        if !peer_saw(&log, edit) {
            lost += 1;
            println!("cycle {i}: edit {edit} made while down never reached the server");
        }
        res.push(deck.resources());
    }
    println!("peer: state at kill {at_kill:?}; edits lost {lost} of {cycles}");
    report("peer", &detect, &recover, &res);
    let (t, code) = deck.quit();
    println!("peer: quit took {t:?}, exit code {code:?}");
}

fn pulse_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", dir.display().to_string()),
        ("XDG_RUNTIME_DIR", dir.display().to_string()),
        ("XDG_CONFIG_HOME", dir.join("config").display().to_string()),
        (
            "PULSE_SERVER",
            format!("unix:{}", dir.join("pulse.sock").display()),
        ),
        ("PULSE_LATENCY_MSEC", "20".into()),
    ]
}

fn start_pulse(dir: &Path) -> Proc {
    let _ = std::fs::remove_file(dir.join("pulse.sock"));
    let mut cmd = Command::new("pulseaudio");
    cmd.args([
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--use-pid-file=no",
    ])
    .arg(format!(
        "--load=module-native-protocol-unix socket={} auth-anonymous=1",
        dir.join("pulse.sock").display()
    ))
    .arg("--load=module-null-sink sink_name=scope rate=48000 channels=2")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in pulse_env(dir) {
        cmd.env(k, v);
    }
    let p = Proc(cmd.spawn().expect("pulseaudio"));
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = Command::new("pactl");
        c.args(["set-default-source", "scope.monitor"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in pulse_env(dir) {
            c.env(k, v);
        }
        if c.status().is_ok_and(|s| s.success()) {
            return p;
        }
        assert!(Instant::now() < end, "pulseaudio did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn soak_pulse(cycles: usize, rng: &mut Rng) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("deck");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        "[audio]\nsource = \"device\"\n[server]\nbackend = \"dry-run\"\n",
    )
    .unwrap();
    let mut pulse = Some(start_pulse(dir.path()));
    let deck = Deck::start(&cfg, &dir.path().join("state"), &pulse_env(dir.path()));
    let health = |s: &'static str| {
        move |v: &Value| v["event"] == "health" && v["input"] == "audio" && v["state"] == s
    };
    let mut ignore = |_: &Value| {};
    deck.wait(Duration::from_secs(30), &mut ignore, health("silent"))
        .expect("capture running");
    let (mut detect, mut recover, mut res) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..cycles {
        let d = Duration::from_secs_f64(0.2 + rng.next_f64() * 2.0);
        let _ = deck.wait(d, &mut ignore, |_| false);
        drop(pulse.take());
        match deck.wait(Duration::from_secs(10), &mut ignore, health("lost")) {
            Some(t) => detect.push(t.as_secs_f64()),
            None => println!("cycle {i}: loss not reported"),
        }
        pulse = Some(start_pulse(dir.path()));
        let back = Instant::now();
        match deck.wait(Duration::from_secs(30), &mut ignore, health("silent")) {
            Some(_) => recover.push(back.elapsed().as_secs_f64()),
            None => println!("cycle {i}: capture did not come back within 30 s"),
        }
        res.push(deck.resources());
    }
    report("pulse", &detect, &recover, &res);
    let (t, code) = deck.quit();
    println!("pulse: quit took {t:?}, exit code {code:?}");
}

/// The tests' private jackd (dummy driver; SIGTERM on drop so it leaves JACK's registry).
#[cfg(feature = "jack")]
#[allow(dead_code)]
#[path = "../tests/common/jack.rs"]
mod jack;

/// The MIDI device: a note loop every 0.25 s on JACK port `soakseq:out`.
#[cfg(feature = "jack")]
fn start_midiseq(server: &str) -> Proc {
    Proc(
        Command::new("jack_midiseq")
            .args(["soakseq", "12000", "0", "60", "6000"])
            .env("JACK_DEFAULT_SERVER", server)
            .env("JACK_NO_START_SERVER", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jack_midiseq (Debian package jackd2)"),
    )
}

#[cfg(feature = "jack")]
fn soak_midi(cycles: usize, rng: &mut Rng) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("deck");
    std::fs::create_dir_all(cfg.join("keymaps")).unwrap();
    std::fs::write(
        cfg.join("keymaps/rig.toml"),
        "name = \"rig\"\n[normal]\n\"q\" = \"quit\"\n[midi_in]\ndevices = [\"soakseq*\"]\n\
         [[midi]]\ntype = \"note\"\nnote = 60\naction = \"tap_tempo\"\n",
    )
    .unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        "[ui]\nkeymap = \"rig\"\n[server]\nbackend = \"dry-run\"\n",
    )
    .unwrap();
    let jackd = jack::Jackd::start("scope-deck-soak", 256);
    let server = jackd.name.clone();
    let env = [
        ("JACK_DEFAULT_SERVER", server.clone()),
        ("JACK_NO_START_SERVER", "1".to_string()),
    ];
    let mut seq = Some(start_midiseq(&server));
    let deck = Deck::start(&cfg, &dir.path().join("state"), &env);
    // The device as `midi_activity` reports it: (connected, messages counted).
    let device = |v: &Value| -> Option<(bool, u64)> {
        if v["event"] != "midi_activity" {
            return None;
        }
        v["devices"].as_array()?.iter().find_map(|d| {
            d["name"].as_str()?.contains("soakseq").then(|| {
                (
                    d["connected"] == true,
                    d["count"].as_u64().unwrap_or_default(),
                )
            })
        })
    };
    let mut ignore = |_: &Value| {};
    deck.wait(Duration::from_secs(30), &mut ignore, |v| {
        device(v).is_some_and(|(c, n)| c && n > 0)
    })
    .expect("device connected and playing");
    let (mut detect, mut recover, mut res) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..cycles {
        let d = Duration::from_secs_f64(0.2 + rng.next_f64() * 2.0);
        let _ = deck.wait(d, &mut ignore, |_| false);
        drop(seq.take());
        // The count when it went: coming back means counted again, not only reconnected.
        let mut count_at_loss = 0;
        match deck.wait(
            Duration::from_secs(10),
            &mut |v: &Value| {
                if let Some((_, n)) = device(v) {
                    count_at_loss = n;
                }
            },
            |v| device(v).is_some_and(|(c, _)| !c),
        ) {
            Some(t) => detect.push(t.as_secs_f64()),
            None => println!("cycle {i}: device loss not reported"),
        }
        seq = Some(start_midiseq(&server));
        let back = Instant::now();
        match deck.wait(Duration::from_secs(30), &mut ignore, |v| {
            device(v).is_some_and(|(c, n)| c && n > count_at_loss)
        }) {
            Some(_) => recover.push(back.elapsed().as_secs_f64()),
            None => println!("cycle {i}: device did not come back within 30 s"),
        }
        res.push(deck.resources());
    }
    report("midi", &detect, &recover, &res);
    let (t, code) = deck.quit();
    println!("midi: quit took {t:?}, exit code {code:?}");
    drop(seq);
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too; the soak is for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("fault_soak: run with `cargo bench --profile dev --bench fault_soak`");
        return;
    }
    let cycles = std::env::var("SOAK_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let part = std::env::var("SOAK_PART").unwrap_or_else(|_| "all".into());
    let mut rng = Rng(0x50a4_u64 ^ 0x9e37_79b9);
    if part == "all" || part == "peer" {
        soak_peer(cycles, &mut rng);
    }
    if part == "all" || part == "pulse" {
        soak_pulse(cycles, &mut rng);
    }
    #[cfg(feature = "jack")]
    if part == "all" || part == "midi" {
        soak_midi(cycles, &mut rng);
    }
    #[cfg(not(feature = "jack"))]
    if part == "midi" {
        println!("fault_soak: the MIDI part needs `--features jack`");
    }
}
