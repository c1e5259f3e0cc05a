//! Through the real aiortc peer: restarts, dropped data channels and server-ended streams →
//! reconnected with backoff and the full state replayed (asserted from the peer's log);
//! edits made while disconnected are delivered; unknown server messages are not fatal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use common::rig::{Rig, fast_config};
use scope_deck::core::Action;
use scope_deck::transport::{ConnState, ServerMessage, TransportEvent};
use serde_json::{Value, json};

fn set(key: &str, value: Value) -> Action {
    Action::SetParam {
        key: key.into(),
        value,
    }
}

/// Sessions in log order with their entries.
fn sessions(entries: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for e in entries {
        let id = e["session"].as_str().unwrap_or("").to_string();
        match out.iter_mut().find(|(s, _)| *s == id) {
            Some((_, v)) => v.push(e.clone()),
            None => out.push((id, vec![e.clone()])),
        }
    }
    out
}

/// The value of `key` as the server sees it at the end of a session's log.
fn final_value(session: &[Value], key: &str) -> Option<Value> {
    session
        .iter()
        .filter(|e| e["kind"] == "initial" || e["kind"] == "message")
        .filter_map(|e| e["data"].get(key).cloned())
        .next_back()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_restarts_each_reconnect_and_replay_the_full_state() {
    let peer = Peer::start(PeerOptions {
        warmup: 0.2,
        ..PeerOptions::default()
    })
    .await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}",
        rig.seen
    );
    for round in 1..=10u32 {
        // State set before the restart must be replayed in the new session's initialParameters.
        rig.action(set("noise_scale", json!(f64::from(round) / 20.0)))
            .await;
        rig.action(Action::SetPrompt {
            text: format!("round {round}"),
            raw: true,
        })
        .await;
        rig.pump(Duration::from_millis(60)).await;
        let before = peer.stats().await["server_start_time"].clone();
        peer.control("restart", json!({})).await;
        // An edit made while the link is down must still arrive.
        rig.action(set("vace_context_scale", json!(f64::from(round) / 10.0)))
            .await;
        let want = round as usize;
        assert!(
            rig.until_seen(Duration::from_secs(10), |_| true).await
                && rig
                    .until_seen(Duration::from_secs(10), |seen| {
                        seen.iter()
                            .filter(|e| {
                                matches!(
                                    e,
                                    TransportEvent::State {
                                        state: ConnState::Reconnecting,
                                        ..
                                    }
                                )
                            })
                            .count()
                            >= want
                    })
                    .await,
            "round {round}: restart noticed; states {:?}; peer {}",
            rig.seen
                .iter()
                .filter(|e| matches!(e, TransportEvent::State { .. } | TransportEvent::Error(_)))
                .collect::<Vec<_>>(),
            peer.stderr()
        );
        assert!(
            rig.until_seen(Duration::from_secs(30), |seen| {
                let states: Vec<ConnState> = seen
                    .iter()
                    .filter_map(|e| match e {
                        TransportEvent::State { state, .. } => Some(*state),
                        _ => None,
                    })
                    .collect();
                states
                    .iter()
                    .filter(|s| **s == ConnState::Reconnecting)
                    .count()
                    >= want
                    && states.last() == Some(&ConnState::Streaming)
            })
            .await,
            "round {round}: streaming again; peer: {}",
            peer.stderr()
        );
        assert_ne!(peer.stats().await["server_start_time"], before);
        let last = peer
            .wait_log(Duration::from_secs(5), |entries| {
                let s = sessions(entries);
                let last = s.last()?.1.clone();
                // The session created after this round's restart (its initialParameters carry
                // this round's pre-restart state) has received the edit made while down.
                let initial = last.iter().find(|e| e["kind"] == "initial")?;
                (initial["data"]["noise_scale"] == json!(f64::from(round) / 20.0)
                    && final_value(&last, "vace_context_scale")
                        == Some(json!(f64::from(round) / 10.0)))
                .then_some(last)
            })
            .await;
        let initial = last.iter().find(|e| e["kind"] == "initial").unwrap();
        let d = &initial["data"];
        assert_eq!(d["pipeline_ids"], json!(["longlive"]), "round {round}");
        assert_eq!(
            d["noise_scale"],
            json!(f64::from(round) / 20.0),
            "round {round}"
        );
        assert_eq!(
            d["prompts"][0]["text"],
            json!(format!("round {round}")),
            "round {round}"
        );
        assert_eq!(d["paused"], json!(false), "round {round}");
    }
    // One session per round plus the first.
    let n = sessions(&peer.entries())
        .iter()
        .filter(|(_, e)| e.iter().any(|x| x["kind"] == "initial"))
        .count();
    assert_eq!(n, 11);
    let reconnects = rig
        .seen
        .iter()
        .filter_map(|e| match e {
            TransportEvent::Stats(s) => Some(s.reconnects),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    assert!(
        reconnects >= 10
            || rig
                .states()
                .iter()
                .filter(|s| **s == ConnState::Reconnecting)
                .count()
                >= 10
    );
    assert!(rig.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_channel_and_server_stop_reconnect_and_unknown_messages_are_kept() {
    let peer = Peer::start(PeerOptions::default()).await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    rig.action(set("noise_scale", json!(0.42))).await;
    // Unknown and known server messages: reported, never fatal.
    peer.send_to_client(json!({"type": "brand_new_type", "x": 1}))
        .await;
    peer.send_to_client(json!({"type": "change_scheduled", "delay_ms": 120}))
        .await;
    assert!(
        rig.until(Duration::from_secs(5), |e| matches!(e,
            TransportEvent::ServerMessage(ServerMessage::ChangeScheduled { delay_ms: Some(d) }) if *d == 120.0))
            .await
    );
    assert!(
        rig.seen.iter().any(|e| matches!(e,
        TransportEvent::ServerMessage(ServerMessage::Unknown(v)) if v["type"] == "brand_new_type"))
    );
    assert!(
        !rig.states().contains(&ConnState::Reconnecting),
        "{:?}",
        rig.states()
    );

    // The server drops the data channel.
    peer.control("drop_channel", json!({})).await;
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await
    );
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    // The server ends the stream itself.
    peer.send_to_client(json!({"type": "stream_stopped", "error_message": "GPU on fire"}))
        .await;
    assert!(
        rig.until(Duration::from_secs(10), |e| matches!(e,
            TransportEvent::State { state: ConnState::Reconnecting, reason: Some(r) } if r.contains("GPU on fire")))
            .await
    );
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    let entries = peer.entries();
    let initials: Vec<_> = entries.iter().filter(|e| e["kind"] == "initial").collect();
    assert_eq!(initials.len(), 3);
    for i in &initials[1..] {
        assert_eq!(i["data"]["noise_scale"], json!(0.42), "replayed");
    }
    // Sessions the client left were DELETEd (no zombies).
    let stats = peer.stats().await;
    assert_eq!(stats["sessions"].as_array().unwrap().len(), 1, "{stats}");
    assert!(rig.quit().await);
}

/// The server comes back with a pipeline whose schema narrowed a range: the held value is
/// re-clamped by the engine's store before the new session's `initialParameters` carry it,
/// and a value the old schema allowed never reaches the new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_schema_reclamps_held_values_before_they_reach_the_wire() {
    let peer = Peer::start(PeerOptions {
        warmup: 0.2,
        ..PeerOptions::default()
    })
    .await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    // Allowed by the first schema (noise_scale 0..0.8).
    rig.action(set("noise_scale", json!(0.75))).await;
    peer.wait_log(Duration::from_secs(5), |entries| {
        entries
            .iter()
            .any(|e| e["kind"] == "message" && e["data"]["noise_scale"] == json!(0.75))
            .then_some(())
    })
    .await;
    // The restarted server loads a pipeline that takes at most 0.5.
    peer.control(
        "schema",
        json!({"noise_scale": {"type": "number", "minimum": 0.0, "maximum": 0.5}}),
    )
    .await;
    peer.control("restart", json!({})).await;
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await
    );
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    let entries = peer.entries();
    let all = sessions(&entries);
    let (_, second) = all.last().unwrap();
    let initial = second.iter().find(|e| e["kind"] == "initial").unwrap();
    assert_eq!(
        initial["data"]["noise_scale"],
        json!(0.5),
        "re-clamped before the offer: {initial}"
    );
    assert!(
        second
            .iter()
            .filter_map(|e| e["data"].get("noise_scale"))
            .all(|v| v.as_f64().is_some_and(|x| x <= 0.5)),
        "no out-of-range value in the new session: {second:?}"
    );
    assert_eq!(rig.state.params.store.get("noise_scale"), Some(&json!(0.5)));
    assert!(
        rig.state
            .ui
            .notices
            .iter()
            .any(|n| n.message.contains("noise_scale") && n.message.contains("0.5")),
        "the performer is told"
    );
    assert!(rig.quit().await);
}
