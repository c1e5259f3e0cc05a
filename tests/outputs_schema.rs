//! Each output validates against its own pipeline's schema (issue 20 item 2): two aiortc peers
//! whose pipelines differ — the side box's `noise_scale` stops at 0.4 and only it has
//! `kaleido` — get each value cut to their own schema: the wall gets 0.7 and never `kaleido`,
//! the side gets 0.4 and `kaleido`, on the wire and in what its reconnect replays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod outputs_deck;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use outputs_deck::wall_and_side;
use serde_json::{Value, json};

/// Every value `key` had in the peer's data-channel messages and offers, in order.
fn values_of(p: &Peer, key: &str) -> Vec<Value> {
    p.entries()
        .iter()
        .filter(|e| e["kind"] == "message" || e["kind"] == "initial")
        .filter_map(|e| e["data"].get(key).cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_output_gets_values_cut_to_its_own_pipelines_schema() {
    let wall = Peer::start(PeerOptions::default()).await;
    let side = Peer::start(PeerOptions::default()).await;
    side.control(
        "schema",
        json!({
            "noise_scale": {"type": "number", "minimum": 0.0, "maximum": 0.4, "default": 0.3},
            "kaleido": {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 0.0},
        }),
    )
    .await;
    let sb = common::Sandbox::new();
    let mut deck = wall_and_side(&sb, &wall.url(), &side.url(), "");
    deck.send(json!({"action": "set_param", "key": "noise_scale", "value": 0.7}));
    deck.send(json!({"action": "set_param", "key": "kaleido", "value": 0.5}));
    // A marker sent after both: once each peer has it, both values have been handled.
    deck.send(json!({"action": "set_param", "key": "noise_controller", "value": false}));
    for p in [&wall, &side] {
        p.wait_log(Duration::from_secs(20), |_| {
            values_of(p, "noise_controller")
                .contains(&json!(false))
                .then_some(())
        })
        .await;
    }
    assert!(
        values_of(&wall, "noise_scale").contains(&json!(0.7)),
        "the wall's pipeline takes 0.7: {:?}",
        values_of(&wall, "noise_scale")
    );
    assert_eq!(
        values_of(&wall, "kaleido"),
        Vec::<Value>::new(),
        "the wall's pipeline has no kaleido"
    );
    let side_noise = values_of(&side, "noise_scale");
    assert!(side_noise.contains(&json!(0.4)), "{side_noise:?}");
    assert!(
        side_noise.iter().all(|v| v.as_f64().unwrap() <= 0.4),
        "nothing above the side's 0.4 ever reached it: {side_noise:?}"
    );
    assert_eq!(values_of(&side, "kaleido"), vec![json!(0.5)]);

    // The side's reconnect replays its desired state, cut the same way.
    let sessions_before = side
        .entries()
        .iter()
        .filter(|e| e["kind"] == "initial")
        .count();
    deck.send(json!({"action": "output_select", "output": "side"}));
    deck.send(json!({"action": "reconnect"}));
    side.wait_log(Duration::from_secs(30), |entries| {
        let initials: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "initial").collect();
        (initials.len() > sessions_before).then(|| initials.last().map(|e| e["data"].clone()))
    })
    .await
    .map(|initial| {
        assert_eq!(initial["noise_scale"], json!(0.4), "{initial}");
        assert_eq!(initial["kaleido"], json!(0.5), "{initial}");
    })
    .unwrap();
    assert_eq!(values_of(&wall, "kaleido"), Vec::<Value>::new());
    deck.quit();
}
