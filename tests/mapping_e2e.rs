//! End to end: demo audio → analysis → mapping → data channel of the aiortc test peer.
//!
//! The real binary runs headless with the `scope` backend against the peer, the built-in demo
//! track (120 BPM) as audio source and a theme whose only trigger resets the cache on every
//! beat with a 1 s cooldown. The peer logs every data-channel message with its receive time:
//! the resets must arrive no closer than the cooldown and on the beat grid: with beat
//! forwarding on, each reset travels with (or right after) the `beat_count` of the beat that
//! fired it. (Wall-clock intervals are not whole beats: the tracker's predicted beats move
//! while it corrects its phase on the demo song's syncopated parts.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::deck::Deck;
use common::peer::{Peer, PeerOptions};
use serde_json::json;

const THEME: &str = common::fixtures::BEAT_RESET_THEME;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beat_resets_reach_the_peer_on_the_grid_within_the_cooldown() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{}[audio]\nsource = \"demo\"\n[ui]\ntheme = \"beat-reset\"\n",
        common::deck::scope_server(&peer.url())
    ));
    sb.write_theme("beat-reset", THEME);
    let mut deck = Deck::start(&sb);

    // Wait for twelve resets (the first ones fall in the beat tracker's lock-in).
    let entries: Vec<serde_json::Value> = peer
        .wait_log(Duration::from_secs(60), |entries| {
            let n = entries
                .iter()
                .filter(|e| e["kind"] == "message" && e["data"]["reset_cache"] == json!(true))
                .count();
            (n >= 12).then(|| entries.to_vec())
        })
        .await;
    let msgs: Vec<&serde_json::Value> = entries.iter().filter(|e| e["kind"] == "message").collect();
    let mut resets = Vec::new(); // (ts, beat_count of the beat that fired it)
    for (i, m) in msgs.iter().enumerate() {
        if m["data"]["reset_cache"] != json!(true) {
            continue;
        }
        let ts = m["ts"].as_f64().unwrap();
        // On the beat grid: the beat that fired it was forwarded in the same message or the
        // one just before (the beat's `beat_count` and the urgent reset leave the reducer
        // together; the coalescer may merge them).
        let beat = msgs[..=i].iter().rev().take(2).find_map(|b| {
            b["data"]["beat_count"]
                .as_u64()
                .map(|c| (c, b["ts"].as_f64().unwrap()))
        });
        let (count, beat_ts) = beat.unwrap_or_else(|| panic!("reset at {ts} not next to a beat"));
        assert!(
            ts - beat_ts <= 0.2,
            "reset {ts} is {} s after its beat",
            ts - beat_ts
        );
        resets.push((ts, count));
    }
    // Mapped values arrive too, inside the theme's output range.
    let noise: Vec<f64> = peer
        .messages()
        .iter()
        .filter_map(|m| m["noise_scale"].as_f64())
        .collect();
    assert!(!noise.is_empty());
    assert!(
        noise.iter().all(|v| (0.3 - 1e-9..=0.7 + 1e-9).contains(v)),
        "{noise:?}"
    );

    deck.quit();

    // The cooldown, checked on the beat grid (no wall-clock jitter involved): at 120–128 BPM
    // a 1 s cooldown leaves at least two beats between resets. The receive times are only a
    // sanity bound, loose enough for a loaded machine. The first resets fall in the tracker's
    // lock-in (its first beats may come at a slower metrical level), so the grid rule starts
    // with the third.
    for (i, w) in resets.windows(2).enumerate() {
        assert!(
            i < 2 || w[1].1 >= w[0].1 + 2,
            "resets on beats {} and {}: inside the 1 s cooldown: {resets:?}",
            w[0].1,
            w[1].1
        );
        let gap = w[1].0 - w[0].0;
        assert!(
            gap >= 0.75,
            "resets {gap:.3} s apart: inside the 1 s cooldown: {resets:?}"
        );
    }
}
