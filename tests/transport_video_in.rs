//! Video-to-video: encoded VP8 frames from a real GStreamer encoder go out on the WebRTC track
//! and the aiortc peer decodes and counts them; the generated video comes back on the same
//! transceiver at the same time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions};
use common::rig::fast_config;
use gstreamer::prelude::*;
use scope_deck::transport::types::{EncodedSample, VideoCodec};
use scope_deck::transport::{
    ConnState, TransportCmd, TransportEvent, VideoPorts, spawn_with_video,
};
use tokio::sync::{Mutex, mpsc};

/// Encodes `n` test-pattern frames to VP8 with GStreamer (real encoder, no camera needed).
fn vp8_frames(n: u32) -> Vec<bytes::Bytes> {
    gstreamer::init().unwrap();
    let desc = format!(
        "videotestsrc num-buffers={n} ! video/x-raw,width=128,height=64,framerate=15/1 ! \
         vp8enc deadline=1 keyframe-max-dist=15 ! appsink name=sink sync=false"
    );
    let pipeline = gstreamer::parse::launch(&desc)
        .unwrap()
        .downcast::<gstreamer::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gstreamer::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buf = sample.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        out.push(bytes::Bytes::copy_from_slice(map.as_slice()));
    }
    pipeline.set_state(gstreamer::State::Null).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_frames_reach_the_peer_while_generated_video_comes_back() {
    let frames = tokio::task::spawn_blocking(|| vp8_frames(90))
        .await
        .unwrap();
    assert_eq!(frames.len(), 90);
    let peer = Peer::start(PeerOptions::default()).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (sample_tx, sample_rx) = mpsc::channel::<EncodedSample>(8);
    let (rtp_tx, mut rtp_rx) = mpsc::channel(512);
    let (etx, mut erx) = mpsc::channel(4096);
    let video = VideoPorts {
        rtp_out: Some(rtp_tx),
        samples_in: Some(Arc::new(Mutex::new(sample_rx))),
        ..VideoPorts::default()
    };
    let handle = spawn_with_video(&fast_config(&peer.url()), false, etx, video).unwrap();
    let mut initial = serde_json::Map::new();
    initial.insert("paused".into(), serde_json::json!(false));
    handle.link.publish_fixed(initial);
    handle
        .link
        .send_waiting(TransportCmd::Connect)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), erx.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(
            ev,
            TransportEvent::State {
                state: ConnState::Streaming,
                ..
            }
        ) {
            break;
        }
        assert!(Instant::now() < deadline, "never streamed");
    }
    // Feed the frames at 15 fps (paced like a camera; the transport writes them as they come).
    let feeder = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(66));
        for f in frames {
            tick.tick().await;
            let s = EncodedSample {
                data: f,
                duration: Duration::from_millis(66),
                codec: VideoCodec::Vp8,
            };
            if sample_tx.send(s).await.is_err() {
                return;
            }
        }
    });
    let drain = tokio::spawn(async move { while erx.recv().await.is_some() {} });
    let mut back = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        while let Ok(p) = rtp_rx.try_recv() {
            back += u32::from(p.data.len() > 1 && p.data[1] & 0x80 != 0);
        }
        let received = peer.stats().await["frames_received"].as_u64().unwrap_or(0);
        if received >= 30 && back >= 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "peer decoded {received} of our frames, we got {back} back; {}",
            peer.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    feeder.abort();
    handle
        .link
        .send_waiting(TransportCmd::Shutdown)
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), handle.task).await;
    drain.abort();
}
