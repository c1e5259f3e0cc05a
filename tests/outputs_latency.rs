//! Per-output latency compensation end to end (issue 20 item 3): one deck (headless, demo audio
//! at 120 BPM, one beat grid) drives two aiortc peers standing in for pipelines of different
//! latency — `near` shows a parameter change 100 ms after it arrives, `far` 450 ms
//! (`--video-delay-ms`, `--marker-param noise_scale`) — each configured with its own
//! `latency_ms`. One bar-quantised theme switch (noise_scale 0.2 → 0.7) is asked for; each peer
//! logs the first frame that shows it, and that frame must fall on the bar line on both: each
//! output was sent the switch early by its own latency. With one latency for both, the two
//! frames would land 350 ms apart, so at least one would be 175 ms off the bar.
//!
//! The bar line is taken per peer from the grid of the beats the deck forwards (median slope,
//! median phase: `BeatGrid`, as in tests/latency_compensation.rs), not from one beat message's
//! arrival. Figures are printed for docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod outputs_deck;

use std::time::Duration;

use common::beat_grid::{BeatGrid, THEME_A, THEME_B, wall};
use common::deck::Deck;
use common::peer::{Peer, PeerOptions};
use outputs_deck::SERVER;
use serde_json::{Value, json};

const NEAR_MS: u64 = 100;
const FAR_MS: u64 = 450;

/// How far from the bar line a compensated switch may show: under half the two latencies'
/// difference, so one latency for both outputs fails on one of them.
const ON_THE_BAR_S: f64 = (FAR_MS - NEAR_MS) as f64 / 2e3 - 0.025;

async fn delayed_peer(delay_ms: u64) -> Peer {
    Peer::start(PeerOptions {
        fps: 30.0,
        extra_args: vec![
            "--video-delay-ms".into(),
            delay_ms.to_string(),
            "--marker-param".into(),
            "noise_scale".into(),
        ],
        ..PeerOptions::default()
    })
    .await
}

/// (sent, seen) of the switch to 0.7 after `asked`, relative to that peer's bar line.
fn against_the_bar(entries: &[Value], asked: f64) -> (f64, f64) {
    let ts = |e: &Value| e["ts"].as_f64().unwrap();
    let after = |e: &&Value| e["ts"].as_f64().is_some_and(|t| t > asked);
    let seen = entries
        .iter()
        .filter(after)
        .find(|e| e["kind"] == "marker" && e["data"]["value"].as_f64() == Some(0.7))
        .map(ts)
        .unwrap();
    let sent = entries
        .iter()
        .filter(after)
        .find(|e| e["kind"] == "message" && e["data"]["noise_scale"].as_f64() == Some(0.7))
        .map(ts)
        .expect("the switch reached the peer");
    let grid = BeatGrid::fit(
        entries
            .iter()
            .filter(|e| e["kind"] == "message" && (ts(e) - sent).abs() < 8.0)
            .filter_map(|e| Some((e["data"]["beat_count"].as_u64()?, ts(e)))),
    );
    let bar = grid.next_at_or_after(sent - 0.03);
    (sent - bar, seen - bar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bar_quantised_switch_shows_on_the_bar_on_outputs_of_different_latency() {
    let near = delayed_peer(NEAR_MS).await;
    let far = delayed_peer(FAR_MS).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{SERVER}latency_ms = 0\nmeasure_latency = false\n\
         [audio]\nsource = \"demo\"\n[ui]\ntheme = \"default\"\n\
         [[outputs]]\nname = \"near\"\nurl = \"{}\"\nlatency_ms = {NEAR_MS}\n\
         [[outputs]]\nname = \"far\"\nurl = \"{}\"\nlatency_ms = {FAR_MS}\n",
        near.url(),
        far.url()
    ));
    std::fs::create_dir_all(sb.config_dir().join("themes")).unwrap();
    std::fs::write(sb.config_dir().join("themes/default.toml"), THEME_A).unwrap();
    std::fs::write(sb.config_dir().join("themes/cosmic-voyage.toml"), THEME_B).unwrap();
    let mut deck = Deck::start(&sb);
    // The tracker locks in and both show theme A: sixteen forwarded beats each.
    for p in [&near, &far] {
        p.wait_log(Duration::from_secs(90), |entries| {
            let beats = entries
                .iter()
                .filter(|e| e["kind"] == "message" && e["data"]["beat_count"].is_u64())
                .count();
            let a = entries
                .iter()
                .any(|e| e["kind"] == "marker" && e["data"]["value"].as_f64() == Some(0.2));
            (beats >= 16 && a).then_some(())
        })
        .await;
    }
    let asked = wall();
    deck.send(json!({"action": "theme_next"}));
    let mut runs = Vec::new();
    for p in [&near, &far] {
        let entries = p
            .wait_log(Duration::from_secs(20), |entries| {
                let shown = entries
                    .iter()
                    .find(|e| {
                        e["ts"].as_f64().is_some_and(|t| t > asked)
                            && e["kind"] == "marker"
                            && e["data"]["value"].as_f64() == Some(0.7)
                    })?
                    .get("ts")?
                    .as_f64()?;
                entries
                    .iter()
                    .any(|e| {
                        e["kind"] == "message"
                            && e["data"]["beat_count"].is_u64()
                            && e["ts"].as_f64().is_some_and(|t| t > shown + 0.6)
                    })
                    .then(|| entries.to_vec())
            })
            .await;
        runs.push(against_the_bar(&entries, asked));
    }
    deck.quit();
    let [(near_sent, near_seen), (far_sent, far_seen)] = [runs[0], runs[1]];
    println!(
        "per-output latency compensation (one grid, 30 fps): near ({NEAR_MS} ms) switch sent \
         {:+.0} ms, shown {:+.0} ms from the bar line; far ({FAR_MS} ms) sent {:+.0} ms, shown \
         {:+.0} ms",
        near_sent * 1e3,
        near_seen * 1e3,
        far_sent * 1e3,
        far_seen * 1e3
    );
    for (name, seen) in [("near", near_seen), ("far", far_seen)] {
        assert!(
            seen.abs() < ON_THE_BAR_S,
            "{name}: the switch should show on the bar line (within {:.0} ms), showed {:+.0} ms \
             from it",
            ON_THE_BAR_S * 1e3,
            seen * 1e3
        );
    }
    assert!(
        far_sent < near_sent,
        "the far output is sent the switch earlier: far {:+.0} ms, near {:+.0} ms",
        far_sent * 1e3,
        near_sent * 1e3
    );
}
