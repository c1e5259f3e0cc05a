//! Through the real aiortc peer: parameters arrive in order, coalesced and clamped against the
//! pipeline schema; one-shots are never lost under a burst of 1,000 CC-rate updates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use common::rig::{Rig, fast_config};
use scope_deck::core::Action;
use scope_deck::transport::ConnState;
use serde_json::{Value, json};

fn set(key: &str, value: Value) -> Action {
    Action::SetParam {
        key: key.into(),
        value,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_arrive_in_order_coalesced_and_clamped() {
    let peer = Peer::start(PeerOptions::default()).await;
    let mut cfg = fast_config(&peer.url());
    cfg.send_rate_hz = 20.0;
    let mut rig = Rig::start(&cfg, false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}",
        rig.seen
    );
    // The schema (noise_scale max 0.8 on the peer, 1.0 built in) has reached the core.
    assert!(
        rig.state
            .params
            .store
            .spec("noise_scale")
            .and_then(|s| s.range())
            == Some((0.0, 0.8)),
        "schema merged"
    );
    let burst_start = std::time::Instant::now();
    for i in 1..=50 {
        rig.action(set("noise_scale", json!(f64::from(i) / 100.0)))
            .await;
    }
    rig.action(set("noise_scale", json!(1.5))).await; // above the schema's 0.8
    rig.action(set("denoising_step_list", json!([250, 1200, 750])))
        .await;
    let msgs = peer
        .wait_log(Duration::from_secs(10), |entries| {
            let m: Vec<Value> = entries
                .iter()
                .filter(|e| e["kind"] == "message")
                .map(|e| e["data"].clone())
                .collect();
            m.iter()
                .any(|d| d.get("denoising_step_list").is_some())
                .then_some(m)
        })
        .await;
    let values: Vec<f64> = msgs
        .iter()
        .filter_map(|m| m.get("noise_scale").and_then(Value::as_f64))
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "in order: {values:?}"
    );
    assert!(
        values.len() < 51,
        "coalesced: {} messages for 51 updates",
        values.len()
    );
    assert_eq!(values.last(), Some(&0.8), "clamped to the schema's maximum");
    let steps = msgs
        .iter()
        .find_map(|m| m.get("denoising_step_list"))
        .unwrap();
    assert_eq!(
        steps,
        &json!([1000, 750, 250]),
        "clamped and kept descending"
    );
    // The bounded rate, checked by count so delivery jitter on a loaded machine cannot fake a
    // failure: between the burst's start and the moment everything had arrived, a 20 msg/s
    // limiter can have sent at most elapsed × 20 (+1 for the first slot) continuous messages.
    // (The limiter's exact spacing is unit-tested with injected time in transport::coalescer.)
    let elapsed = burst_start.elapsed().as_secs_f64();
    let bound = (elapsed * cfg.send_rate_hz).floor() as usize + 1;
    assert!(
        values.len() <= bound,
        "rate bound: {} noise_scale messages in {elapsed:.3} s at {} msg/s (at most {bound})",
        values.len(),
        cfg.send_rate_hz
    );
    assert!(rig.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shots_survive_a_burst_of_a_thousand_cc_updates() {
    let peer = Peer::start(PeerOptions::default()).await;
    let cfg = fast_config(&peer.url()); // 60 msg/s default
    let mut rig = Rig::start(&cfg, false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}",
        rig.seen
    );
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut triggers = 0;
    let started = std::time::Instant::now();
    for i in 0..1000u32 {
        tick.tick().await;
        rig.action(set("noise_scale", json!(f64::from(i % 128) / 160.0)))
            .await;
        if i % 50 == 25 {
            rig.action(Action::ResetCache).await;
            triggers += 1;
        }
    }
    let burst = started.elapsed().as_secs_f64();
    rig.action(set("noise_scale", json!(0.123))).await;
    let msgs = peer
        .wait_log(Duration::from_secs(10), |entries| {
            let m: Vec<Value> = entries
                .iter()
                .filter(|e| e["kind"] == "message")
                .map(|e| e["data"].clone())
                .collect();
            (m.last().and_then(|l| l.get("noise_scale")) == Some(&json!(0.123))).then_some(m)
        })
        .await;
    let resets = msgs
        .iter()
        .filter(|m| m.get("reset_cache") == Some(&json!(true)))
        .count();
    assert_eq!(resets, triggers, "every one-shot arrived exactly once");
    let continuous = msgs.len() - resets;
    let bound = (burst + 0.5) * 60.0 + 2.0;
    assert!(
        (continuous as f64) <= bound,
        "{continuous} continuous messages in {burst:.2} s exceeds 60/s"
    );
    assert!(rig.quit().await);
}
