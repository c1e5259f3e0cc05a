//! The `daydream` backend with the real video edge, against the LOCAL STAND-IN of Daydream's API
//! (tests/peer/daydream_standin.py, aiohttp + aiortc, built from docs/daydream-api.md, not the
//! real service, which cannot be reached from here): the video input's test pattern goes out over
//! WHIP (the stand-in decodes and counts it), and the stand-in's WHEP video (frame counter in the
//! top rows) goes through scope-deck's output pipeline to an `shm` sink that a second process
//! (`gst-launch-1.0 shmsrc`) reads. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::daydream::{KEY, Standin, StandinOptions};
use common::rtp_gen::ShmReader;
use scope_deck::transport::daydream::{ApiKey, spawn_with_key};
use scope_deck::transport::{ConnState, TransportCmd, TransportEvent, VideoPorts};
use scope_deck::video::config::{InputConfig, InputSource, SinkConfig, VideoConfig};
use scope_deck::video::{self, input};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const W: usize = 256;
const H: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_test_pattern_in_and_whep_frames_reach_the_shm_sink() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        size: (W as u32, H as u32),
        fps: 15.0,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("dd.shm");
    let cfg = VideoConfig {
        sinks: vec![SinkConfig::Shm {
            socket: socket.to_string_lossy().into(),
            format: "I420".into(),
        }],
        ..VideoConfig::default()
    };
    let cancel = CancellationToken::new();
    let (rtp_tx, vh) = video::start(&cfg, cancel.clone()).unwrap();
    let mut stats = vh.stats.clone();
    let (sample_tx, sample_rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let inp = input::start(
        &InputConfig {
            source: InputSource::TestPattern,
            width: 256,
            height: 256,
            fps: 15,
            // What the app picks for this backend: the gateway accepts H.264 only.
            codec: scope_deck::transport::types::VideoCodec::H264,
            ..InputConfig::default()
        },
        sample_tx,
        cancel.clone(),
    )
    .unwrap();

    common::wait_for("shm socket", Duration::from_secs(10), || {
        socket.exists().then_some(())
    });
    let reader = ShmReader::start(&socket, W, H);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats
        .borrow_and_update()
        .sinks
        .first()
        .is_none_or(|s| s.clients == 0)
    {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            tokio::time::timeout(left, stats.changed()).await.is_ok(),
            "shm reader never connected"
        );
    }

    let (etx, mut erx) = mpsc::channel(1024);
    let ports = VideoPorts {
        rtp_out: Some(rtp_tx),
        samples_in: Some(Arc::new(tokio::sync::Mutex::new(sample_rx))),
        keyframe_requests: Some(vh.keyframe_requests.clone()),
        input_keyframes: Some(inp.keyframes.clone()),
    };
    let h = spawn_with_key(&standin.config(), None, ApiKey::new(KEY), etx, ports).unwrap();
    h.link.send_waiting(TransportCmd::Connect).await.unwrap();
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, erx.recv()).await {
            Ok(Some(TransportEvent::State {
                state: ConnState::Streaming,
                reason: Some(r),
            })) if r.contains("playback connected") => break,
            Ok(Some(TransportEvent::Error(e))) => panic!("{e}"),
            Ok(Some(_)) => {}
            other => panic!("no streaming with playback: {other:?}"),
        }
    }
    let drain = tokio::spawn(async move { while erx.recv().await.is_some() {} });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = reader.frames_read();
        let ingest = standin.state()["whip_frames_in"].as_u64().unwrap_or(0);
        if n >= 45 && ingest >= 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shm reader got {n} frames, stand-in decoded {ingest} ingest frames; {:#?}",
            stats.borrow()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = reader.stop();
    h.link.send_waiting(TransportCmd::Shutdown).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
    drain.abort();
    inp.shutdown().await;
    vh.shutdown().await;
    // The counters read from the shm sink go up (a blurred cell may misread a frame: allow 5 %).
    let increasing = got.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        increasing * 100 >= (got.len() - 1) * 95,
        "counters not increasing: {got:?}"
    );
}
