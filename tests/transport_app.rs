//! The real binary, headless, with the `scope` backend against the aiortc peer: it warms up,
//! streams, sends a clamped parameter over the real data channel, and on quit DELETEs its
//! session before exiting 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::deck::{Deck, scope_server};
use common::peer::{Peer, PeerOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_binary_streams_to_the_peer_and_deletes_on_quit() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&scope_server(&peer.url()));
    let mut deck = Deck::start(&sb);
    deck.wait_streaming(Duration::from_secs(30));
    assert!(
        deck.seen
            .iter()
            .any(|v| v["event"] == "connection" && v["state"] == "warming"),
        "{:#?}",
        deck.seen
    );
    deck.send(json!({"action": "set_param", "key": "noise_scale", "value": 0.95}));
    // The schema on the peer caps noise_scale at 0.8.
    deck.wait("a sent noise_scale", Duration::from_secs(30), |v| {
        v["event"] == "sent" && v["payload"]["noise_scale"] == json!(0.8)
    });
    peer.wait_log(Duration::from_secs(5), |e| {
        e.iter()
            .any(|x| x["kind"] == "message" && x["data"]["noise_scale"] == json!(0.8))
            .then_some(())
    })
    .await;
    deck.quit();
    let stats = peer.stats().await;
    assert_eq!(stats["deleted"].as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["sessions"], json!([]), "no zombie session");
}
