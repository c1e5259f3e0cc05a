//! Scope-side video features through the real aiortc peer: the server's own NDI/Spout/Syphon
//! outputs (`output_sinks`, gated by `/api/v1/hardware/info`, replayed on reconnect) and VACE
//! reference images (uploaded to `/api/v1/assets` byte-identical, sent as `vace_ref_images`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use common::rig::{Rig, fast_config};
use scope_deck::core::Action;
use scope_deck::core::state::Level;
use scope_deck::transport::{ConnState, TransportEvent};
use scope_deck::video::scope_api::ScopeOutput;
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(20);

/// Entries of the newest session that has an `initial` entry.
fn last_session(entries: &[Value]) -> Vec<Value> {
    let Some(id) = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "initial")
        .map(|e| e["session"].clone())
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| e["session"] == id)
        .cloned()
        .collect()
}

/// The value of `key` as the server sees it at the end of `session`.
fn final_value(session: &[Value], key: &str) -> Option<Value> {
    session
        .iter()
        .filter(|e| e["kind"] == "initial" || e["kind"] == "message")
        .filter_map(|e| e["data"].get(key).cloned())
        .next_back()
}

fn sessions_started(entries: &[Value]) -> usize {
    entries.iter().filter(|e| e["kind"] == "initial").count()
}

fn notices(rig: &Rig, level: Level) -> Vec<String> {
    rig.state
        .ui
        .notices
        .iter()
        .filter(|n| n.level == level)
        .map(|n| n.message.clone())
        .collect()
}

fn toggle(output: ScopeOutput) -> Action {
    Action::ToggleScopeOutput { output }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_outputs_toggle_refuse_unavailable_and_replay_on_reconnect() {
    let peer = Peer::start(PeerOptions {
        hardware: vec!["ndi"],
        ..PeerOptions::default()
    })
    .await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, WITHIN).await,
        "{:?}",
        rig.seen
    );
    // The availability report arrived before the offer.
    assert!(rig.seen.iter().any(|e| matches!(
        e,
        TransportEvent::Hardware(h) if h.ndi == Some(true) && h.spout == Some(false)
    )));

    // Toggle → the `output_sinks` payload arrives on the data channel.
    rig.action(toggle(ScopeOutput::Ndi)).await;
    peer.wait_log(WITHIN, |entries| {
        let s = last_session(entries);
        (final_value(&s, "output_sinks")?["ndi"] == json!({"enabled": true, "name": "scope-deck"}))
            .then_some(())
    })
    .await;

    // Unavailable → a notice naming why, and nothing sent.
    rig.action(toggle(ScopeOutput::Spout)).await;
    let warns = notices(&rig, Level::Warn);
    assert!(
        warns
            .iter()
            .any(|w| w.contains("Spout") && w.contains("Windows")),
        "{warns:?}"
    );
    // A later value acts as a barrier: once it has arrived, a Spout message would have too.
    rig.action(Action::SetParam {
        key: "noise_scale".into(),
        value: json!(0.42),
    })
    .await;
    peer.wait_log(WITHIN, |entries| {
        (final_value(&last_session(entries), "noise_scale") == Some(json!(0.42))).then_some(())
    })
    .await;
    assert!(
        !peer.messages().iter().any(|m| m
            .get("output_sinks")
            .is_some_and(|o| o.get("spout").is_some())),
        "nothing about Spout was sent: {:?}",
        peer.messages()
    );
    let view = scope_deck::core::snapshot::UiSnapshot::of(&rig.state, Duration::ZERO).scope_outputs;
    assert!(view.outputs[0].enabled && view.outputs[0].available == Some(true));
    assert_eq!(view.outputs[1].available, Some(false));

    // The server gains Spout and restarts: the reconnect replays NDI in `initialParameters` and
    // re-reads the availability, so Spout can now be turned on.
    peer.control("hardware", json!({"spout_available": true}))
        .await;
    let before = sessions_started(&peer.entries());
    peer.control("restart", json!({})).await;
    let replayed = peer
        .wait_log(WITHIN, |entries| {
            if sessions_started(entries) <= before {
                return None;
            }
            let s = last_session(entries);
            let init = s.iter().find(|e| e["kind"] == "initial")?;
            Some(init["data"]["output_sinks"].clone())
        })
        .await;
    assert_eq!(
        replayed["ndi"],
        json!({"enabled": true, "name": "scope-deck"}),
        "replayed: {replayed}"
    );
    assert!(
        rig.until_seen(WITHIN, |seen| {
            seen.iter()
                .filter(|e| matches!(e, TransportEvent::Hardware(h) if h.spout == Some(true)))
                .count()
                == 1
                && seen.iter().rev().find_map(|e| match e {
                    TransportEvent::State { state, .. } => Some(*state),
                    _ => None,
                }) == Some(ConnState::Streaming)
        })
        .await
    );
    rig.action(Action::SetScopeOutput {
        output: ScopeOutput::Spout,
        enabled: true,
    })
    .await;
    peer.wait_log(WITHIN, |entries| {
        let sinks = final_value(&last_session(entries), "output_sinks")?;
        (sinks["spout"]["enabled"] == json!(true) && sinks["ndi"]["enabled"] == json!(true))
            .then_some(())
    })
    .await;
    assert!(rig.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_images_upload_byte_identical_and_reach_the_server() {
    let peer = Peer::start(PeerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let image: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let good = dir.path().join("face.png");
    std::fs::write(&good, &image).unwrap();
    let missing = dir.path().join("missing.png");
    let mut rig = Rig::start_with(&fast_config(&peer.url()), false, |s| {
        s.video.ref_images = vec![good.clone(), missing.clone()];
        s.video.context_scale = 1.3;
    })
    .await;
    assert!(
        rig.until_state(ConnState::Streaming, WITHIN).await,
        "{:?}",
        rig.seen
    );
    // The readable file arrived byte-identical; the missing one is named.
    let uploads = peer.uploads().await;
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let server_path = uploads[0]["path"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read(&server_path).unwrap(), image);
    assert!(
        rig.seen.iter().any(|e| matches!(
            e,
            TransportEvent::Error(m) if m.contains(&missing.display().to_string())
        )),
        "{:?}",
        rig.seen
    );
    // Uploaded before the offer: the first session starts with the images and the scale.
    let session = last_session(&peer.entries());
    assert_eq!(
        final_value(&session, "vace_ref_images"),
        Some(json!([server_path]))
    );
    assert_eq!(
        final_value(&session, "vace_context_scale"),
        Some(json!(1.3))
    );
    assert_eq!(
        rig.state.params.store.get("vace_ref_images"),
        Some(&json!([server_path]))
    );

    // An HTTP error names the endpoint and the status.
    peer.control(
        "faults",
        json!({"storm": {"status": 500, "count": 1, "prefix": "/api/v1/assets"}}),
    )
    .await;
    rig.action(Action::UploadRefImages).await;
    let missing_name = missing.display().to_string();
    assert!(
        rig.until_seen(WITHIN, |seen| {
            let http = seen.iter().any(|e| matches!(
                e,
                TransportEvent::Error(m) if m.contains("POST /api/v1/assets") && m.contains("500")
            ));
            // The round is over once the missing file was reported a second time.
            let missing_reports = seen
                .iter()
                .filter(|e| matches!(e, TransportEvent::Error(m) if m.contains(&missing_name)))
                .count();
            http && missing_reports == 2
        })
        .await,
        "{:?}",
        rig.seen
    );

    // Upload again (the action) → a second upload, sent on the open data channel.
    std::fs::write(&missing, b"second image").unwrap();
    rig.action(Action::UploadRefImages).await;
    let paths = rig
        .wait_peer(&peer, WITHIN, |entries| {
            let s = last_session(entries);
            let v = s
                .iter()
                .filter(|e| e["kind"] == "message")
                .filter_map(|e| e["data"].get("vace_ref_images").cloned())
                .next_back()?;
            (v.as_array()?.len() == 2).then_some(v)
        })
        .await;
    let uploads = peer.uploads().await;
    assert_eq!(uploads.len(), 3, "{uploads:?}");
    assert_eq!(
        std::fs::read(paths[1].as_str().unwrap()).unwrap(),
        b"second image"
    );

    // A restarted server may have lost them: uploaded again and in the new initialParameters.
    let before = sessions_started(&peer.entries());
    peer.control("restart", json!({})).await;
    rig.wait_peer(&peer, WITHIN, |entries| {
        if sessions_started(entries) <= before {
            return None;
        }
        let s = last_session(entries);
        let init = s.iter().find(|e| e["kind"] == "initial")?;
        (init["data"]["vace_ref_images"].as_array()?.len() == 2).then_some(())
    })
    .await;
    assert_eq!(peer.uploads().await.len(), 5);
    assert!(rig.quit().await);
}
