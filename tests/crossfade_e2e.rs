//! The prompt crossfader end to end: the real binary (headless, `scope` backend) against the
//! aiortc test peer. Fader moves sent as script lines (as a MIDI fader's `set_param crossfade`)
//! arrive on the data channel as weighted `prompts` blends with the interpolation method, and a
//! burst of moves is coalesced (latest wins) instead of flooding the channel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::deck::{Deck, scope_server};
use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

const THEME: &str = r#"
name = "Fader"
template = "{prompt}"
prompts = ["alpha", "beta"]
"#;

/// The peer's received messages that carry `prompts`.
fn prompt_msgs(entries: &[Value]) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e["kind"] == "message" && e["data"]["prompts"].is_array())
        .map(|e| e["data"].clone())
        .collect()
}

fn blend(pairs: &[(&str, f64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(t, w)| json!({ "text": t, "weight": w }))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fader_moves_arrive_as_weighted_prompt_blends() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{}[audio]\nsource = \"demo\"\n[ui]\ntheme = \"fader\"\n",
        scope_server(&peer.url())
    ));
    sb.write_theme("fader", THEME);
    let mut deck = Deck::start(&sb);
    deck.wait_streaming(Duration::from_secs(60));

    let fader = |v: f64| json!({"action": "set_param", "key": "crossfade", "value": v});
    // Each position, waited for on the data channel before the next.
    for (v, want) in [
        (0.25, blend(&[("alpha", 0.75), ("beta", 0.25)])),
        (0.5, blend(&[("alpha", 0.5), ("beta", 0.5)])),
        (1.0, blend(&[("beta", 1.0)])),
    ] {
        deck.send(fader(v));
        let got: Value = peer
            .wait_log(Duration::from_secs(20), |entries| {
                prompt_msgs(entries)
                    .into_iter()
                    .find(|m| m["prompts"] == want)
            })
            .await;
        assert_eq!(
            got["prompt_interpolation_method"],
            json!("linear"),
            "the configured interpolation travels with the blend: {got}"
        );
    }
    let before = prompt_msgs(&peer.entries()).len();
    // A fader swept in one burst (40 positions from B back to A): coalesced, the last wins.
    let burst: Vec<Value> = (0..=40).map(|i| fader(1.0 - f64::from(i) / 40.0)).collect();
    deck.send_lines(&burst);
    let entries: Vec<Value> = peer
        .wait_log(Duration::from_secs(20), |entries| {
            prompt_msgs(entries)
                .last()
                .is_some_and(|m| m["prompts"] == blend(&[("alpha", 1.0)]))
                .then(|| entries.to_vec())
        })
        .await;
    let during = prompt_msgs(&entries).len() - before;
    assert!(
        during < 20,
        "{during} prompt messages for a 41-step burst: not rate-limited"
    );
    deck.quit();
}
