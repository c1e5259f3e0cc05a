//! Decode-and-sink benchmark: scope-deck's output pipeline against the same pipeline launched by
//! plain `gst-launch-1.0`, in one run, at 512² and 720p.
//!
//! Both sides run as child processes fed identically: pre-encoded RTP VP8 counter frames sent
//! over loopback UDP at 30 fps → (jitter buffer → depay → vp8dec → convert → shmsink). A third
//! process reads each shm sink (`shmsrc ! fdsink`) and this bench decodes the counter of every
//! frame it receives, so latency is measured the same way for both: last RTP packet of a frame
//! sent → that frame read from shared memory. CPU is each child's utime+stime over the measured
//! window (from /proc). Run: `cargo bench --bench video_pipeline`.
//!
//! Diagnostics: `VIDEO_BENCH_THREADS=1` also prints each child's CPU per thread (from
//! /proc/<pid>/task, grouped by thread name), `VIDEO_BENCH_REPS=n` and `VIDEO_BENCH_SIZES=720`
//! (or `512`) shorten a run while investigating.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/rtp_gen.rs"]
mod rtp_gen;

use std::collections::HashMap;
use std::io::Read;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// At most this many frames to get the reader going (continuous sequence numbers with the rest).
const WARMUP: usize = 90;
const MEASURED: usize = 300;
/// Interleaved repetitions per side and size.
const REPS: usize = 3;

fn reps() -> usize {
    std::env::var("VIDEO_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REPS)
}
const CHILD_ENV: &str = "VIDEO_BENCH_CHILD";

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_scope_deck(&spec);
        return;
    }
    // `cargo test --all-targets` runs bench binaries without `--bench`: skip the 4-minute run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("video_pipeline: run with `cargo bench --bench video_pipeline`");
        return;
    }
    let only = std::env::var("VIDEO_BENCH_SIZES").unwrap_or_default();
    let sizes: Vec<(usize, usize)> = [(512usize, 512usize), (1280, 720)]
        .into_iter()
        .filter(|(_, h)| only.is_empty() || only.contains(&h.to_string()))
        .collect();
    let mut report = String::new();
    for (w, h) in sizes {
        eprintln!("encoding {} frames at {w}x{h}...", WARMUP + MEASURED);
        let frames = rtp_gen::encode_frames((WARMUP + MEASURED) as u32, w, h, 0);
        // Interleaved repetitions, medians reported: the machine is shared and noisy.
        let sides = [
            Side::GstLaunch,
            Side::ScopeDeck { preview: false },
            Side::ScopeDeck { preview: true },
        ];
        let mut runs: Vec<Vec<Result_>> = vec![Vec::new(), Vec::new(), Vec::new()];
        for rep in 0..reps() {
            for (k, side) in sides.iter().enumerate() {
                eprintln!("{w}x{h} run {rep}: {side:?}");
                runs[k].push(run_side(*side, &frames, w, h));
            }
        }
        let med: Vec<Result_> = runs.iter().map(|r| median(r)).collect();
        let (gst, deck) = (&med[0], &med[1]);
        for (name, r) in [
            ("gst-launch-1.0", &med[0]),
            ("scope-deck", &med[1]),
            ("scope-deck + preview", &med[2]),
        ] {
            let line = format!(
                "| {w}x{h} | {name} | {:.1} % | {:.1} ms | {:.1} ms | {}/{} |",
                r.cpu_pct, r.lat_mean_ms, r.lat_p95_ms, r.received, MEASURED
            );
            println!("{line}");
            report.push_str(&line);
            report.push('\n');
        }
        let ratio = deck.cpu_pct / gst.cpu_pct.max(0.01);
        let added = deck.lat_mean_ms - gst.lat_mean_ms;
        let line = format!(
            "{w}x{h}: CPU ratio scope-deck/gst-launch = {ratio:.2}; added latency = {added:+.1} ms ({:+.2} frames at 30 fps)",
            added / 33.33
        );
        println!("{line}");
        report.push_str(&line);
        report.push('\n');
    }
    println!("\n{report}");
}

#[derive(Clone, Copy, Debug)]
enum Side {
    GstLaunch,
    ScopeDeck { preview: bool },
}

/// Median of each figure separately over repetitions.
fn median(rs: &[Result_]) -> Result_ {
    let m = |f: &dyn Fn(&Result_) -> f64| {
        let mut v: Vec<f64> = rs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    Result_ {
        cpu_pct: m(&|r| r.cpu_pct),
        lat_mean_ms: m(&|r| r.lat_mean_ms),
        lat_p95_ms: m(&|r| r.lat_p95_ms),
        received: rs.iter().map(|r| r.received).min().unwrap_or(0),
    }
}

struct Result_ {
    cpu_pct: f64,
    lat_mean_ms: f64,
    lat_p95_ms: f64,
    received: usize,
}

/// Kills and reaps a child process when dropped (also when a run panics).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" of the command name: utime is 14th, stime 15th overall.
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ut + st
}

/// CPU ticks per thread name (`/proc/<pid>/task/*/stat`), for the per-thread breakdown.
fn thread_ticks(pid: u32) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in rd.flatten() {
        let s = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let name = s
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map(|(n, _)| n.to_string())
            .unwrap_or_default();
        // Group numbered threads (`tokio-runtime-w`, `queue0:src`...) by their name.
        let name: String = name.trim_end_matches(|c: char| c.is_ascii_digit()).into();
        let rest = s.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        *out.entry(name).or_insert(0) += ut + st;
    }
    out
}

/// Voluntary + involuntary context switches summed over the process's threads
/// (`/proc/<pid>/task/*/status`; the process's own status only counts its main thread).
fn ctx_switches(pid: u32) -> u64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    rd.flatten()
        .map(|t| {
            let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            s.lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Minor page faults of the process (`/proc/<pid>/stat`, 10th field): fresh memory being
/// touched, e.g. frame buffers allocated instead of recycled.
fn minor_faults(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    rest.split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn run_side(side: Side, frames: &[Vec<Bytes>], w: usize, h: usize) -> Result_ {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bench.shm");
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let child: Child = match side {
        Side::GstLaunch => Command::new("gst-launch-1.0")
            .args([
                "-q",
                "udpsrc",
                &format!("port={port}"),
                "address=127.0.0.1",
                "buffer-size=4194304",
                "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96",
                "!",
                "rtpjitterbuffer",
                "latency=50",
                "drop-on-latency=true",
                "!",
                "rtpvp8depay",
                "!",
                "vp8dec",
                "threads=2",
                "!",
                "queue",
                "max-size-buffers=2",
                "max-size-bytes=0",
                "max-size-time=0",
                "leaky=downstream",
                "!",
                "videoconvert",
                "!",
                "video/x-raw,format=I420",
                "!",
                "shmsink",
                &format!("socket-path={}", socket.display()),
                "wait-for-connection=false",
                "sync=false",
                "shm-size=67108864",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        Side::ScopeDeck { preview } => Command::new(std::env::current_exe().unwrap())
            .env(
                CHILD_ENV,
                format!("{port},{},{}", socket.display(), u8::from(preview)),
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "{side:?}: shm socket never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reader = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "shmsrc",
            &format!("socket-path={}", socket.display()),
            "is-live=true",
            "!",
            &format!("video/x-raw,format=I420,width={w},height={h},framerate=30/1"),
            "!",
            "fdsink",
            "fd=1",
            "sync=false",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = KillOnDrop(reader);
    let mut out = reader.0.stdout.take().unwrap();
    let recv: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let r2 = recv.clone();
    let read_thread = std::thread::spawn(move || {
        let mut frame = vec![0u8; w * h * 3 / 2];
        while out.read_exact(&mut frame).is_ok() {
            let now = Instant::now();
            let n = rtp_gen::read_counter_luma(&frame[..w * h], w);
            r2.lock().unwrap().entry(n).or_insert(now);
        }
    });
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = format!("127.0.0.1:{port}");
    let send = |i: usize, sent: &mut HashMap<u32, Instant>| {
        for p in &frames[i] {
            sock.send_to(p, &dest).unwrap();
        }
        sent.insert(i as u32, Instant::now());
    };
    // Warm up until the reader sees frames (the decoder needs a key frame; the reader connects).
    let mut sent = HashMap::new();
    let start = Instant::now();
    let mut i = 0;
    loop {
        let due = start + Duration::from_secs_f64(i as f64 / 30.0);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        send(i, &mut sent);
        i += 1;
        if !recv.lock().unwrap().is_empty() && i >= 30 {
            break;
        }
        assert!(i < WARMUP, "{side:?}: no frame reached the shm reader");
    }
    // Measured: the next MEASURED frames of the same stream.
    let first = i;
    let threads = std::env::var_os("VIDEO_BENCH_THREADS").is_some();
    let th0 = if threads {
        thread_ticks(child.0.id())
    } else {
        HashMap::new()
    };
    let cs0 = ctx_switches(child.0.id());
    let mf0 = minor_faults(child.0.id());
    let t_cpu0 = cpu_ticks(child.0.id());
    let t0 = Instant::now();
    for (k, idx) in (first..first + MEASURED).enumerate() {
        let due = t0 + Duration::from_secs_f64(k as f64 / 30.0);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        send(idx, &mut sent);
    }
    let wait_end = Instant::now() + Duration::from_millis(500);
    std::thread::sleep(wait_end.saturating_duration_since(Instant::now()));
    let elapsed = t0.elapsed().as_secs_f64();
    let t_cpu1 = cpu_ticks(child.0.id());
    if threads {
        // Threads of the whole window (ended threads drop out; none end while measuring).
        let th1 = thread_ticks(child.0.id());
        let cs = ctx_switches(child.0.id()) - cs0;
        let mf = minor_faults(child.0.id()) - mf0;
        let mut rows: Vec<(String, f64)> = th1
            .iter()
            .map(|(n, t)| {
                let d = t - th0.get(n).copied().unwrap_or(0);
                (n.clone(), d as f64 / clk_tck() / elapsed * 100.0)
            })
            .filter(|(_, p)| *p > 0.0)
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let rows: Vec<String> = rows.iter().map(|(n, p)| format!("{n} {p:.1}%")).collect();
        eprintln!(
            "  {side:?} threads: {} | ctx switches/s {:.0} | minor faults/s {:.0}",
            rows.join(", "),
            cs as f64 / elapsed,
            mf as f64 / elapsed
        );
    }
    drop(child);
    drop(reader);
    read_thread.join().unwrap();
    let recv = recv.lock().unwrap();
    let mut lat: Vec<f64> = (first..first + MEASURED)
        .filter_map(|i| {
            let (s, r) = (sent.get(&(i as u32))?, recv.get(&(i as u32))?);
            Some(r.saturating_duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    let p95 = lat
        .get((lat.len() as f64 * 0.95) as usize)
        .copied()
        .unwrap_or(f64::NAN);
    Result_ {
        cpu_pct: (t_cpu1 - t_cpu0) as f64 / clk_tck() / elapsed * 100.0,
        lat_mean_ms: mean,
        lat_p95_ms: p95,
        received: lat.len(),
    }
}

/// Child: UDP → `RtpPacket` channel → scope-deck's output pipeline → shm sink.
fn child_scope_deck(spec: &str) {
    use scope_deck::transport::types::{RtpPacket, VideoCodec};
    use scope_deck::video::config::{SinkConfig, VideoConfig};
    let mut parts = spec.split(',');
    let port: u16 = parts.next().unwrap().parse().unwrap();
    let socket = parts.next().unwrap().to_string();
    let preview = parts.next() == Some("1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut cfg = VideoConfig {
            sinks: vec![SinkConfig::Shm {
                socket,
                format: "I420".into(),
            }],
            ..VideoConfig::default()
        };
        cfg.preview.enabled = preview;
        let (tx, handle) =
            scope_deck::video::start(&cfg, tokio_util::sync::CancellationToken::new()).unwrap();
        let sock = tokio::net::UdpSocket::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok(n) = sock.recv(&mut buf).await else {
                break;
            };
            let pkt = RtpPacket {
                data: Bytes::copy_from_slice(&buf[..n]),
                codec: VideoCodec::Vp8,
                payload_type: 96,
                clock_rate: 90_000,
                arrival: Instant::now(),
            };
            if tx.try_send(pkt).is_err() {
                eprintln!("bench child: channel full");
            }
        }
        handle.shutdown().await;
    });
}
