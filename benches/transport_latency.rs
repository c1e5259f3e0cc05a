//! Benchmark (not a test): action → data-channel-received latency through the real aiortc
//! peer on loopback, p50/p99, for one-shot triggers and for continuous values sent slower
//! than the coalescer's rate (so no coalescing delay is included); then MIDI CC →
//! data-channel-received latency through the MIDI router, the real engine and the Scope
//! transport at `ui.fps` 10 and 60 (router and control clock at the default `[engine]
//! control_hz` = 100, so the two should match).
//!
//! Run: `cargo bench --profile dev --bench transport_latency` (needs `scripts/setup.sh test`).
//! Results go to docs/performance.md under `## Transport`.
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

use scope_deck::app::engine::{Clocks, EngineIo, run};
use scope_deck::controls::keymap::Keymap;
use scope_deck::controls::midi::io::{LearnTarget, MidiOptions, spawn};
use scope_deck::controls::midi::parse::MidiMsg;
use scope_deck::core::Action;
use scope_deck::core::msg::{Msg, StopSignal};
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::{AppState, CoreSettings};
use scope_deck::transport::ConnState;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const MIDI_KEYMAP: &str = r#"
name = "bench"
[normal]
"q" = "quit"

[[midi]]
type = "cc"
cc = 1
param = "noise_scale"
range = [0.0, 0.5]
"#;

/// MIDI CC → received by the peer, through router, engine and Scope transport. `control` is
/// the router's flush period and the engine's control period.
async fn midi_to_wire(peer: &peer::Peer, fps: u32, control: Duration, n: usize) -> Vec<f64> {
    let mut errs = Vec::new();
    let km = Keymap::from_text("bench.toml", "bench", MIDI_KEYMAP, &mut errs)
        .unwrap_or_else(|| panic!("bench keymap: {errs:?}"));
    let clocks = Clocks {
        control,
        frame: Duration::from_secs_f64(1.0 / f64::from(fps)),
    };
    let (inputs_tx, inputs_rx) = mpsc::channel::<Msg>(scope_deck::app::INPUT_CAPACITY);
    let (tev_tx, tev_rx) = mpsc::channel(scope_deck::transport::EVENT_CAPACITY);
    let transport =
        scope_deck::transport::spawn(&rig::fast_config(&peer.url()), false, tev_tx).unwrap();
    let state = AppState::new(CoreSettings {
        backend: "scope".into(),
        confirm_quit: false,
        ..CoreSettings::default()
    });
    let (snap_tx, mut snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
    let cancel = CancellationToken::new();
    let midi = spawn(
        MidiOptions {
            config: km.midi.clone(),
            tick: clocks.control,
            learn: LearnTarget::default(),
            open_ports: false,
            learn_unavailable: None,
        },
        inputs_tx.clone(),
        snap_rx.clone(),
        cancel.clone(),
    );
    let engine = tokio::spawn(run(
        state,
        EngineIo::new(inputs_rx, tev_rx, transport.link.clone(), snap_tx),
        clocks,
    ));
    tokio::time::timeout(
        Duration::from_secs(30),
        snap_rx.wait_for(|s| s.transport.state == ConnState::Streaming),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let skip = peer.entries().len();
    let port: Arc<str> = Arc::from("bench");
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        // Distinct from the previous value, so each one reaches the wire.
        let value = (i % 127) as u8 + 1;
        let t = now_s();
        assert!(midi.inject.send(
            &port,
            MidiMsg::Cc {
                channel: 0,
                cc: 1,
                value
            }
        ));
        // The test peer's schema caps noise_scale at 0.8: stay under it.
        sent.push((t, f64::from(value) / 127.0 * 0.5));
        // Spaced 40 ms plus a third of a frame step, so samples fall across the frame phase.
        tokio::time::sleep(Duration::from_millis(40 + (i as u64 * 7) % 33)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let msgs: Vec<(f64, f64)> = peer.entries()[skip..]
        .iter()
        .filter(|e| e["kind"] == "message")
        .filter_map(|e| Some((e["ts"].as_f64()?, e["data"].get("noise_scale")?.as_f64()?)))
        .collect();
    let mut lat = Vec::new();
    // A value that never shows within a second was merged away by a newer one (values repeat
    // after 127 samples, so later matches would be another sample's).
    for (t, v) in &sent {
        if let Some((r, _)) = msgs
            .iter()
            .find(|(r, x)| *r >= *t && *r < *t + 1.0 && (x - v).abs() < 1e-6)
        {
            lat.push((r - t) * 1000.0);
        }
    }
    let _ = inputs_tx.send(Msg::Signal(StopSignal::Interrupt)).await;
    drop(inputs_tx);
    let _ = engine.await;
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), transport.task).await;
    lat.sort_by(f64::total_cmp);
    lat
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(
    rig: &mut rig::Rig,
    peer: &peer::Peer,
    n: usize,
    key: &str,
    gap: Duration,
) -> Vec<f64> {
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        // Unique values so each send can be found in the peer's log.
        let v = (i as f64 + 1.0) / (n as f64 + 2.0) * 0.5;
        let t = now_s();
        let action = if key == "paused" {
            if i % 2 == 0 {
                Action::Pause
            } else {
                Action::Resume
            }
        } else {
            Action::SetParam {
                key: key.into(),
                value: json!(v),
            }
        };
        rig.action(action).await;
        sent.push((t, v));
        rig.pump(gap).await;
    }
    rig.pump(Duration::from_millis(300)).await;
    let entries = peer.entries();
    let mut lat = Vec::new();
    let msgs: Vec<(f64, serde_json::Value)> = entries
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(|e| (e["ts"].as_f64().unwrap(), e["data"].clone()))
        .collect();
    if key == "paused" {
        let recv: Vec<f64> = msgs
            .iter()
            .filter(|(_, d)| d.get("paused").is_some())
            .map(|(t, _)| *t)
            .collect();
        let recv = &recv[recv.len().saturating_sub(n)..];
        for ((t, _), r) in sent.iter().zip(recv) {
            lat.push((r - t) * 1000.0);
        }
    } else {
        for (t, v) in &sent {
            // serde_json's default float parsing may be 1 ulp off: match approximately.
            let hit = msgs.iter().find(|(_, d)| {
                d.get(key)
                    .and_then(serde_json::Value::as_f64)
                    .is_some_and(|x| (x - v).abs() < 1e-9)
            });
            if let Some((r, _)) = hit {
                lat.push((r - t) * 1000.0);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    lat
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --all-targets` runs bench binaries too; the measurement is for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "transport_latency: run with `cargo bench --profile dev --bench transport_latency`"
        );
        return;
    }
    let peer = peer::Peer::start(peer::PeerOptions::default()).await;
    let mut rig = rig::Rig::start(&rig::fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    rig.pump(Duration::from_millis(500)).await;
    let n = 500;
    let cont = measure(&mut rig, &peer, n, "noise_scale", Duration::from_millis(40)).await;
    let trig = measure(&mut rig, &peer, n, "paused", Duration::from_millis(20)).await;
    println!("## Transport\n");
    println!("| path | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, l) in [
        ("continuous (noise_scale, 25/s, under the 60/s cap)", &cont),
        ("urgent (pause/resume)", &trig),
    ] {
        if l.is_empty() {
            println!("| {name} | 0 | - | - | - |");
            continue;
        }
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.99),
            l[l.len() - 1]
        );
    }
    rig.quit().await;

    // MIDI → wire at two dashboard frame rates, control clock at the default 100 Hz.
    let n = 200;
    let mut rows = Vec::new();
    for fps in [10u32, 60] {
        let lat = midi_to_wire(&peer, fps, Duration::from_millis(10), n).await;
        rows.push((format!("MIDI CC → wire, ui.fps {fps}, control_hz 100"), lat));
    }
    println!("\n## MIDI to wire\n");
    println!("| wiring | on the wire / sent | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, l) in &rows {
        if l.is_empty() {
            println!("| {name} | 0 / {n} | - | - | - |");
            continue;
        }
        println!(
            "| {name} | {} / {n} | {:.2} | {:.2} | {:.2} |",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.99),
            l[l.len() - 1]
        );
    }
}
