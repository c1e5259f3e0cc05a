//! Benchmark (not a test): action → data-channel-received latency through the real aiortc
//! peer on loopback, p50/p99, for one-shot triggers and for continuous values sent slower
//! than the coalescer's rate (so no coalescing delay is included).
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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scope_deck::core::Action;
use scope_deck::transport::ConnState;
use serde_json::json;

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
}
