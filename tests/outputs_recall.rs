//! Per-output state survives a crash (issue 20 item 1): with two aiortc peers, the side output
//! selected and given a value of its own, the deck is killed with SIGKILL; `--resume` brings
//! back the side's own value (its first offer carries it, the wall's does not), its config seed,
//! and the selection (the next action still reaches the side only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod outputs_deck;

use std::time::Duration;

use common::deck::Deck;
use common::peer::{Peer, PeerOptions};
use outputs_deck::wall_and_side;
use serde_json::{Value, json};

/// The `initial` offers (initialParameters) the peer got, in order.
fn initials(p: &Peer) -> Vec<Value> {
    p.entries()
        .iter()
        .filter(|e| e["kind"] == "initial")
        .map(|e| e["data"].clone())
        .collect()
}

/// Every value `key` had in data-channel messages after the `n`th offer (0-based session `n`).
fn sent_in_session(p: &Peer, n: usize, key: &str) -> Vec<Value> {
    let mut session = None;
    let mut out = Vec::new();
    for e in p.entries() {
        if e["kind"] == "initial" {
            session = Some(session.map_or(0, |s| s + 1));
        } else if e["kind"] == "message" && session == Some(n) {
            if let Some(v) = e["data"].get(key) {
                out.push(v.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outputs_own_values_and_the_selection_come_back_with_resume() {
    let wall = Peer::start(PeerOptions::default()).await;
    let side = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    let mut deck = wall_and_side(&sb, &wall.url(), &side.url(), "seed = 7\n");
    deck.send(json!({"action": "output_select", "output": "side"}));
    deck.send(json!({"action": "set_param", "key": "noise_scale", "value": 0.33}));
    side.wait_log(Duration::from_secs(20), |_| {
        sent_in_session(&side, 0, "noise_scale")
            .contains(&json!(0.33))
            .then_some(())
    })
    .await;
    let journal = sb.state_home().join("scope-deck/state.json");
    common::wait_for(
        "the journal to hold the side's own value and the selection",
        Duration::from_secs(5),
        || {
            let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).ok()?).ok()?;
            let o = &j["state"]["outputs"];
            (o["own"]["side"]["noise_scale"] == json!(0.33)
                && o["routing"] == json!({"output": "side"}))
            .then_some(())
        },
    );
    drop(deck); // SIGKILL (Deck's drop): no goodbye, no last write

    let mut deck = Deck::start_with(&sb, |c| {
        c.arg("--resume");
    });
    deck.wait_notice(
        "resumed 1 output(s)' own values; actions go to side",
        Duration::from_secs(30),
    );
    for name in ["wall", "side"] {
        deck.wait_output(name, "streaming", Duration::from_secs(60));
    }
    let (w, s) = (initials(&wall), initials(&side));
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(
        s[1]["noise_scale"],
        json!(0.33),
        "side's own value: {}",
        s[1]
    );
    assert_eq!(s[1]["seed"], json!(7), "side's seed: {}", s[1]);
    assert_ne!(w[1].get("noise_scale"), Some(&json!(0.33)), "{}", w[1]);
    assert!(w[1].get("seed").is_none(), "{}", w[1]);

    // The selection came back: this reaches the side only; then all again, and a marker for
    // both shows the wall had its chance to get it.
    deck.send(json!({"action": "set_param", "key": "noise_scale", "value": 0.55}));
    deck.send(json!({"action": "output_select"}));
    deck.send(json!({"action": "set_param", "key": "noise_controller", "value": false}));
    for p in [&wall, &side] {
        p.wait_log(Duration::from_secs(20), |_| {
            sent_in_session(p, 1, "noise_controller")
                .contains(&json!(false))
                .then_some(())
        })
        .await;
    }
    assert!(sent_in_session(&side, 1, "noise_scale").contains(&json!(0.55)));
    assert!(
        !sent_in_session(&wall, 1, "noise_scale").contains(&json!(0.55)),
        "{:?}",
        sent_in_session(&wall, 1, "noise_scale")
    );
    deck.quit();
}
