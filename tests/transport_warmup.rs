//! Through the real aiortc peer: load → warm-up countdown → connecting → streaming, video
//! frames arrive as RTP, and quitting sends DELETE before `Stopped`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use common::rig::{Rig, fast_config};
use scope_deck::transport::{ConnState, TransportEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_countdown_then_streaming_then_delete_on_quit() {
    let peer = Peer::start(PeerOptions {
        warmup: 1.0,
        ..PeerOptions::default()
    })
    .await;
    let cfg = fast_config(&peer.url());
    let mut rig = Rig::start(&cfg, true).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "never streamed: {:?}\npeer: {}",
        rig.seen,
        peer.stderr()
    );
    let states = rig.states();
    let pos = |s| states.iter().position(|x| *x == s).unwrap();
    assert!(pos(ConnState::Loading) < pos(ConnState::Warming));
    assert!(pos(ConnState::Warming) < pos(ConnState::Connecting));
    assert!(pos(ConnState::Connecting) < pos(ConnState::Streaming));
    // The countdown: elapsed grows, expected is the configured scale, the stage is reported.
    let warm: Vec<_> = rig
        .seen
        .iter()
        .filter_map(|e| match e {
            TransportEvent::WarmUp(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert!(warm.len() >= 3, "{warm:?}");
    assert!(warm.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
    assert!(warm.iter().all(|w| w.expected == Duration::from_secs(1)));
    assert!(
        warm.iter()
            .any(|w| w.stage.as_deref() == Some("initializing"))
    );
    assert!(
        warm.iter()
            .any(|w| w.stage.is_some() && w.stage.as_deref() != Some("initializing"))
    );
    // The schema arrived and the core merged it.
    assert!(
        rig.seen
            .iter()
            .any(|e| matches!(e, TransportEvent::Schema(s) if !s.is_empty()))
    );

    // Video comes back as RTP packets; fps is reported.
    let mut rtp = rig.rtp.take().unwrap();
    let mut markers = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while markers < 10 {
        let p = tokio::time::timeout_at(deadline, rtp.recv())
            .await
            .expect("10 frames within 15 s")
            .unwrap();
        assert_eq!(p.clock_rate, 90_000);
        assert_eq!(p.codec, scope_deck::transport::types::VideoCodec::Vp8);
        if p.data.len() > 1 && p.data[1] & 0x80 != 0 {
            markers += 1;
        }
    }
    assert!(
        rig.until(
            Duration::from_secs(5),
            |e| matches!(e, TransportEvent::Stats(s) if s.rx_fps > 0.0)
        )
        .await,
        "stats with fps > 0"
    );
    let initial = peer
        .entries()
        .into_iter()
        .find(|e| e["kind"] == "initial")
        .unwrap();
    assert_eq!(
        initial["data"]["pipeline_ids"],
        serde_json::json!(["longlive"])
    );
    assert_eq!(initial["data"]["paused"], serde_json::json!(false));
    let session = initial["session"].as_str().unwrap().to_string();

    // Quit: DELETE reaches the server before the transport reports Stopped.
    drop(rtp);
    assert!(rig.quit().await, "Stopped after quit");
    let stats = peer.stats().await;
    assert_eq!(stats["deleted"], serde_json::json!([session]));
    assert_eq!(stats["sessions"], serde_json::json!([]));
}

/// Trickle ICE (PATCH with candidates after the answer) also connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_ice_connects_through_patch() {
    let peer = Peer::start(PeerOptions::default()).await;
    let mut cfg = fast_config(&peer.url());
    cfg.trickle = true;
    let mut rig = Rig::start(&cfg, false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}\n{}",
        rig.seen,
        peer.stderr()
    );
    let reqs: serde_json::Value = reqwest::get(format!("{}/_control/requests", peer.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        reqs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "PATCH"),
        "candidates were trickled with PATCH"
    );
    assert!(rig.quit().await);
}

/// Scope may answer H264: the transport accepts it and labels the RTP packets accordingly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_answer_is_accepted() {
    let peer = Peer::start(PeerOptions {
        codec: Some("h264"),
        ..PeerOptions::default()
    })
    .await;
    let mut rig = Rig::start(&fast_config(&peer.url()), true).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}\n{}",
        rig.seen,
        peer.stderr()
    );
    let mut rtp = rig.rtp.take().unwrap();
    let p = tokio::time::timeout(Duration::from_secs(15), rtp.recv())
        .await
        .expect("H264 video within 15 s")
        .unwrap();
    assert_eq!(p.codec, scope_deck::transport::types::VideoCodec::H264);
    assert_eq!(p.payload_type, 102);
    drop(rtp);
    assert!(rig.quit().await);
}
