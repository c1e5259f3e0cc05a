//! Benchmark (not a test): the first frame after the offer with video input (issue 15 item 1),
//! against the aiortc peer whose decoder, like Scope's, drops everything before a key frame and
//! which (`--output-follows-input`, Scope in video mode) generates nothing before it decoded an
//! input frame. The input encoder runs from launch, so each session starts mid-GOP (the lead
//! time before connecting varies from run to run).
//!
//! Rows: scope-deck **before** (main's wiring reproduced in this build: no key-frame requester,
//! so no key frame on connect and PLI/FIR unanswered, and main's 2 s GOP), scope-deck **after**
//! (requester wired, 1 s GOP: the shipped default), and the peer's own kind of client (plain
//! aiortc, tests/peer/aiortc_client.py). Figures: offer arrived at the peer → its first decoded
//! input frame (peer log), and offer → first returned frame complete at the client (scope-deck:
//! last RTP packet of the first frame received; aiortc: first frame decoded).
//!
//! Run: `cargo bench --profile dev --bench first_frame` (needs `scripts/setup.sh test`).
//! `FIRST_FRAME_RUNS` (default 8) sets the runs per row. Results go to docs/performance.md
//! under `## First frame with video input`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

#[path = "../tests/common/peer.rs"]
mod peer;
#[path = "../tests/common/rig.rs"]
mod rig;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scope_deck::transport::types::{EncodedSample, VideoCodec};
use scope_deck::transport::{TransportCmd, VideoPorts, spawn_with_video};
use scope_deck::video::config::{InputConfig, InputSource};
use scope_deck::video::input;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

const W: u32 = 256;
const H: u32 = 256;

/// One session's figures, in ms.
struct Run {
    /// Offer → the client saw its side connected (scope-deck: data channel open).
    connected: Option<f64>,
    input: f64,
    back: f64,
    waits: u64,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The peer's log entries of `kind` for `session`.
fn of<'a>(entries: &'a [Value], session: &str, kind: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|e| e["session"] == session && e["kind"] == kind)
}

async fn next(rx: &mut mpsc::Receiver<EncodedSample>) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("input frame")
        .expect("input running");
}

/// One scope-deck session: the input runs `lead` frames before connecting.
async fn scope_deck(peer: &peer::Peer, wired: bool, gop_ms: u32, lead: usize) -> Option<Run> {
    let cfg = InputConfig {
        source: InputSource::TestPattern,
        width: W,
        height: H,
        fps: 30,
        keyframe_interval_ms: gop_ms,
        codec: VideoCodec::Vp8,
        ..InputConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let inp = input::start(&cfg, tx, CancellationToken::new()).unwrap();
    for _ in 0..lead {
        next(&mut rx).await;
    }
    let sessions_before = peer
        .entries()
        .iter()
        .filter(|e| e["kind"] == "initial")
        .count();
    let (rtp_tx, mut rtp_rx) = mpsc::channel(1024);
    let (etx, mut erx) = mpsc::channel(4096);
    let drain = tokio::spawn(async move {
        let mut streaming = None;
        while let Some(ev) = erx.recv().await {
            if streaming.is_none()
                && matches!(
                    ev,
                    scope_deck::transport::TransportEvent::State {
                        state: scope_deck::transport::ConnState::Streaming,
                        ..
                    }
                )
            {
                streaming = Some(now_unix());
            }
            if matches!(ev, scope_deck::transport::TransportEvent::Stopped) {
                break;
            }
        }
        streaming
    });
    let ports = VideoPorts {
        rtp_out: Some(rtp_tx),
        samples_in: Some(Arc::new(Mutex::new(rx))),
        input_keyframes: wired.then(|| inp.keyframes.clone()),
        ..VideoPorts::default()
    };
    let h = spawn_with_video(&rig::fast_config(&peer.url()), false, etx, ports).unwrap();
    h.link.send_waiting(TransportCmd::Connect).await.unwrap();
    // The first returned frame is complete with its marker bit.
    let back_at = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(p) = rtp_rx.recv().await {
            if p.data.len() > 1 && p.data[1] & 0x80 != 0 {
                return Some(now_unix());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let entries = peer.entries();
    let initial = entries
        .iter()
        .filter(|e| e["kind"] == "initial")
        .nth(sessions_before)
        .cloned();
    let _ = h.link.send_waiting(TransportCmd::Shutdown).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), h.task).await;
    let streaming = tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    inp.shutdown().await;
    let initial = initial?;
    let sid = initial["session"].as_str()?;
    let first = of(&entries, sid, "first_frame_in")?;
    let offer = initial["ts"].as_f64()?;
    Some(Run {
        connected: streaming.map(|t| (t - offer) * 1000.0),
        input: (first["ts"].as_f64()? - offer) * 1000.0,
        back: (back_at? - offer) * 1000.0,
        waits: first["data"]["decode_waits"].as_u64().unwrap_or(0),
    })
}

/// One session of the plain aiortc client.
async fn aiortc(peer: &peer::Peer) -> Option<Run> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/aiortc_client.py");
    let out = tokio::process::Command::new(peer::python())
        .arg(script)
        .args(["--url", &peer.url(), "--size", &format!("{W}x{H}")])
        .output()
        .await
        .ok()?;
    let line: Value = serde_json::from_slice(&out.stdout).ok()?;
    let sid = line["session"].as_str()?;
    let entries = peer.entries();
    let offer = of(&entries, sid, "initial")?["ts"].as_f64()?;
    let first = of(&entries, sid, "first_frame_in")?;
    Some(Run {
        connected: None,
        input: (first["ts"].as_f64()? - offer) * 1000.0,
        back: (line["first_frame_at"].as_f64()? - offer) * 1000.0,
        waits: first["data"]["decode_waits"].as_u64().unwrap_or(0),
    })
}

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[0], v[n / 2], v[n - 1])
}

fn row(name: &str, runs: &[Option<Run>]) {
    let ok: Vec<&Run> = runs.iter().flatten().collect();
    if ok.is_empty() {
        println!("| {name} | 0/{} | - | - | - | - |", runs.len());
        return;
    }
    let (i0, i50, i100) = stats(&mut ok.iter().map(|r| r.input).collect::<Vec<_>>());
    let (b0, b50, b100) = stats(&mut ok.iter().map(|r| r.back).collect::<Vec<_>>());
    let waits: u64 = ok.iter().map(|r| r.waits).sum();
    let mut conn: Vec<f64> = ok.iter().filter_map(|r| r.connected).collect();
    let conn = if conn.is_empty() {
        "-".to_string()
    } else {
        let (c0, c50, c100) = stats(&mut conn);
        format!("{c50:.0} ({c0:.0}–{c100:.0})")
    };
    println!(
        "| {name} | {}/{} | {conn} | {i50:.0} ({i0:.0}–{i100:.0}) | {b50:.0} ({b0:.0}–{b100:.0}) | {:.1} |",
        ok.len(),
        runs.len(),
        waits as f64 / ok.len() as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --all-targets` runs bench binaries too; the measurement is for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("first_frame: run with `cargo bench --profile dev --bench first_frame`");
        return;
    }
    let runs: usize = std::env::var("FIRST_FRAME_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let peer = peer::Peer::start(peer::PeerOptions {
        size: (W, H),
        fps: 30.0,
        output_follows_input: true,
        ..peer::PeerOptions::default()
    })
    .await;
    let (mut before, mut after, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        // 0.3 s to 2.1 s of input before the session: a different point of the GOP each run.
        let lead = 9 + (i * 17) % 55;
        before.push(scope_deck(&peer, false, 2000, lead).await);
        after.push(scope_deck(&peer, true, 1000, lead).await);
        reference.push(aiortc(&peer).await);
    }
    println!("## First frame with video input\n");
    println!(
        "| client | sessions | offer → data channel open (Streaming), ms | offer → first input frame decoded at the peer, ms: median (min–max) | offer → first returned frame, ms: median (min–max) | decode waits per session |"
    );
    println!("|---|---|---|---|---|---|");
    row(
        "scope-deck before (main: no key frame on connect, PLI ignored, 2 s GOP)",
        &before,
    );
    row(
        "scope-deck after (key frame on connect and PLI/FIR, 1 s GOP)",
        &after,
    );
    row("plain aiortc client (the peer's own stack)", &reference);
}
