//! End to end: a three-cue setlist through the real binary (headless, `scope` backend, demo
//! audio at 120 BPM) against the aiortc test peer. Checks what arrives on the data channel and on
//! which beat: cue 1 lands at GO, cue 2 waits for the next downbeat and arrives with (or right
//! after) that beat's forwarded `beat_count`, cue 3 follows cue 2 by itself two bars later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::deck::Deck;
use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

const THEME: &str = r#"
name = "Cue grid"
prompts = ["test pattern"]
[beat]
forward = true
interval_ms = 100
"#;

const SETLIST: &str = r#"
name = "e2e"
[[cue]]
name = "one"
prompt = "cue one"
launch = "now"

[[cue]]
name = "two"
prompt = "cue two"
launch = "bar"
follow_bars = 2

[[cue]]
name = "three"
blend = [{ text = "cue three", weight = 0.75 }, { text = "cue three b", weight = 0.25 }]
params = { noise_scale = 0.7 }
"#;

fn prompt_of(m: &Value) -> Option<&str> {
    m["data"]["prompts"][0]["text"].as_str()
}

/// The receive index of the first message whose first prompt is `text`.
fn first_with(msgs: &[&Value], text: &str) -> Option<usize> {
    msgs.iter().position(|m| prompt_of(m) == Some(text))
}

/// The `beat_count` in message `i` or the one just before it (the beat and the cue leave the
/// reducer together; the coalescer may merge or split them).
fn beat_at(msgs: &[&Value], i: usize) -> Option<u64> {
    msgs[..=i]
        .iter()
        .rev()
        .take(2)
        .find_map(|b| b["data"]["beat_count"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cues_land_at_go_on_the_downbeat_and_by_auto_follow() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{}[audio]\nsource = \"demo\"\n[ui]\ntheme = \"cue-grid\"\n\
         [show]\nsetlist = \"show.toml\"\n",
        common::deck::scope_server(&peer.url())
    ));
    sb.write_theme("cue-grid", THEME);
    std::fs::write(sb.config_dir().join("show.toml"), SETLIST).unwrap();
    let mut deck = Deck::start(&sb);

    // Let the beat tracker lock in (beats and bar labels): sixteen forwarded beats.
    peer.wait_log(Duration::from_secs(60), |entries| {
        let beats = entries
            .iter()
            .filter(|e| e["kind"] == "message" && e["data"]["beat_count"].is_u64())
            .count();
        (beats >= 16).then_some(())
    })
    .await;
    deck.send(json!({"action": "cue_go"}));
    peer.wait_log(Duration::from_secs(20), |entries| {
        entries
            .iter()
            .any(|e| e["kind"] == "message" && prompt_of(e) == Some("cue one"))
            .then_some(())
    })
    .await;
    deck.send(json!({"action": "cue_go"}));
    let entries: Vec<Value> = peer
        .wait_log(Duration::from_secs(30), |entries| {
            entries
                .iter()
                .any(|e| e["kind"] == "message" && prompt_of(e) == Some("cue three"))
                .then(|| entries.to_vec())
        })
        .await;
    deck.quit();

    let msgs: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "message").collect();
    let one = first_with(&msgs, "cue one").unwrap();
    let two = first_with(&msgs, "cue two").unwrap();
    let three = first_with(&msgs, "cue three").unwrap();
    assert!(one < two && two < three, "order: {one} {two} {three}");
    // Cue two waited for a beat and travelled with it; cue three followed two bars on.
    let b2 =
        beat_at(&msgs, two).unwrap_or_else(|| panic!("cue two not on a beat: {:?}", msgs[two]));
    let b3 = beat_at(&msgs, three)
        .unwrap_or_else(|| panic!("cue three not on a beat: {:?}", msgs[three]));
    assert_eq!(
        b3 - b2,
        8,
        "two bars of 4/4 between cue two (beat {b2}) and three (beat {b3})"
    );
    // Cue three's blend and parameter arrive as written.
    let m3 = &msgs[three]["data"];
    assert_eq!(m3["prompts"][1]["text"], json!("cue three b"));
    assert_eq!(m3["prompts"][0]["weight"], json!(0.75));
    let noise: Vec<f64> = msgs[three..]
        .iter()
        .filter_map(|m| m["data"]["noise_scale"].as_f64())
        .collect();
    let noise_anywhere = peer
        .messages()
        .iter()
        .any(|m| m["noise_scale"] == json!(0.7));
    assert!(noise_anywhere, "noise_scale 0.7 never arrived: {noise:?}");
}
