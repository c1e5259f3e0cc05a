//! Through the real aiortc peer's fault controls: malformed replies and 5xx storms give clear
//! errors (endpoint and status named) and no panic, then recovery; "connected but no frames" is
//! detected and cleared; missing models are named as such and downloaded on request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use common::rig::{Rig, fast_config};
use scope_deck::transport::{ConnState, TransportCmd, TransportEvent};
use serde_json::json;

fn errors(rig: &Rig) -> Vec<String> {
    rig.seen
        .iter()
        .filter_map(|e| match e {
            TransportEvent::Error(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replies_and_error_storms_are_named_and_survived() {
    let peer = Peer::start(PeerOptions::default()).await;
    // Before the client starts: two malformed status replies, then three 503s on load.
    peer.control(
        "faults",
        json!({"malformed": {"prefix": "/api/v1/pipeline/status", "count": 2},
               "storm": {"prefix": "/api/v1/pipeline/load", "status": 503, "count": 3}}),
    )
    .await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}",
        rig.seen
    );
    let errs = errors(&rig);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("GET /api/v1/pipeline/status: malformed reply")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("POST /api/v1/pipeline/load: HTTP 503")),
        "{errs:?}"
    );
    // Mid-stream: a malformed answer to the offer after a forced reconnect.
    peer.control(
        "faults",
        json!({"malformed": {"prefix": "/api/v1/webrtc/offer", "method": "POST", "count": 1}}),
    )
    .await;
    rig.send(TransportCmd::Reconnect).await;
    assert!(
        rig.until(Duration::from_secs(30), |e| matches!(e,
            TransportEvent::Error(m) if m.starts_with("POST /api/v1/webrtc/offer: malformed reply")))
            .await,
        "{:?}",
        errors(&rig)
    );
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    // Slow replies (300 ms each) still get through.
    peer.control("faults", json!({"slow_ms": 300})).await;
    rig.send(TransportCmd::Reconnect).await;
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await
    );
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    peer.control("faults", json!({"slow_ms": 0})).await;
    assert!(rig.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_but_no_frames_is_detected_and_cleared() {
    let peer = Peer::start(PeerOptions::default()).await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    peer.control("stall", json!({"on": true})).await;
    assert!(
        rig.until(Duration::from_secs(10), |e| matches!(e,
            TransportEvent::State { state: ConnState::Degraded, reason: Some(r) }
                if r.starts_with("connected but no video")))
            .await,
        "{:?}",
        rig.seen
            .iter()
            .filter(|e| matches!(e, TransportEvent::State { .. }))
            .collect::<Vec<_>>()
    );
    peer.control("stall", json!({"on": false})).await;
    assert!(
        rig.until(Duration::from_secs(10), |e| matches!(e,
            TransportEvent::State { state: ConnState::Streaming, reason: Some(r) }
                if r == "video flowing again"))
            .await
    );
    assert!(rig.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_models_are_named_and_downloaded_on_request() {
    let peer = Peer::start(PeerOptions {
        missing_models: vec!["longlive".into()],
        download: 0.5,
        ..PeerOptions::default()
    })
    .await;
    let mut rig = Rig::start(&fast_config(&peer.url()), false).await;
    assert!(
        rig.until(Duration::from_secs(15), |e| matches!(e,
            TransportEvent::Error(m) if m.contains("models are not downloaded")))
            .await,
        "{:?}",
        rig.seen
    );
    assert_eq!(
        peer.stats().await["status"],
        "not_loaded",
        "no load attempted"
    );
    rig.send(TransportCmd::DownloadModels).await;
    assert!(
        rig.until(Duration::from_secs(15), |e| matches!(e,
            TransportEvent::State { state: ConnState::Loading, reason: Some(r) }
                if r.starts_with("downloading models")))
            .await
    );
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await
    );
    assert!(rig.quit().await);
}
