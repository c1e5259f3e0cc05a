//! Blackout and the master fade on the real video edge, end to end: the aiortc Scope test peer
//! and the LOCAL Daydream stand-in (tests/peer/daydream_standin.py, not the real service) send
//! frames (a grey picture under a counter band); scope-deck's output pipeline writes them to an
//! `shm` sink that a second process reads. The level comes from the core's reducer
//! (`stage::OutputControl`) over the video handle's control watch, as the engine sends it.
//!
//! Checked: black frames start within 2 frames of the blackout, the picture returns within 2
//! frames of its release, and a beat-timed master fade darkens frame after frame without ever
//! brightening. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::daydream::{KEY, Standin, StandinOptions};
use common::peer::{Peer, PeerOptions};
use common::rig::fast_config;
use common::rtp_gen::ShmReader;
use scope_deck::core::{Action, ActionSource, AppState, Msg, update};
use scope_deck::transport::daydream::{ApiKey, spawn_with_key};
use scope_deck::transport::{ConnState, TransportCmd, TransportEvent, VideoPorts};
use scope_deck::video::config::{InputConfig, InputSource, SinkConfig, VideoConfig};
use scope_deck::video::{self, VideoHandle, input};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const W: usize = 256;
const H: usize = 256;
/// Mean luma at or under this is black (video-range black is 16; the picture is ~98).
const BLACK: f32 = 20.0;
/// Mean luma at or over this is the picture.
const PICTURE: f32 = 60.0;

/// The shm sink and its reader, connected before any video flows.
async fn output(
    dir: &std::path::Path,
) -> (
    mpsc::Sender<scope_deck::transport::types::RtpPacket>,
    VideoHandle,
    ShmReader,
) {
    let socket = dir.join("out.shm");
    let cfg = VideoConfig {
        sinks: vec![SinkConfig::Shm {
            socket: socket.to_string_lossy().into(),
            format: "I420".into(),
        }],
        ..VideoConfig::default()
    };
    let (rtp_tx, vh) = video::start(&cfg, CancellationToken::new()).unwrap();
    common::wait_for("shm socket", Duration::from_secs(10), || {
        socket.exists().then_some(())
    });
    let reader = ShmReader::start(&socket, W, H);
    let mut stats = vh.stats.clone();
    common::rtp_gen::wait_stats(&mut stats, "the shm reader", Duration::from_secs(10), |s| {
        s.sinks.first().is_some_and(|k| k.clients > 0)
    })
    .await;
    (rtp_tx, vh, reader)
}

/// Polls until `n` frames were read (a 10 ms poll of a counter, not a synchronisation).
async fn until_frames(reader: &ShmReader, n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.frames_read() < n {
        assert!(
            Instant::now() < deadline,
            "{what}: read {} of {n} frames; lumas {:?}",
            reader.frames_read(),
            reader.lumas()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Applies one action through the real reducer and hands its output control to the video edge,
/// as the engine does after every batch.
fn act(state: &mut AppState, vh: &VideoHandle, action: Action, at: Duration) {
    update(
        state,
        Msg::Action {
            action,
            source: ActionSource::Keyboard,
        },
        at,
    );
    vh.control.send_replace(state.stage.control());
}

/// Blackout → black within 2 frames; release → picture within 2 frames; then a 2-beat fade
/// (1 s at 120 BPM) darkens monotonically to black.
async fn blackout_and_fade(vh: &VideoHandle, reader: &ShmReader, label: &str) {
    let t0 = Instant::now();
    let mut state = AppState::new(Default::default());
    state.audio.frame.bpm = 120.0;
    until_frames(reader, 15, "picture before the blackout").await;
    let before = reader.lumas();
    assert!(
        before.iter().skip(5).all(|&l| l >= PICTURE),
        "{label}: the picture before the blackout is not a picture: {before:?}"
    );

    let n0 = reader.frames_read();
    act(&mut state, vh, Action::Blackout { on: None }, t0.elapsed());
    until_frames(reader, n0 + 12, "frames after the blackout").await;
    let l = reader.lumas();
    let first_black = l[n0..]
        .iter()
        .position(|&x| x <= BLACK)
        .unwrap_or_else(|| panic!("{label}: no black frame after the blackout: {:?}", &l[n0..]));
    assert!(
        first_black <= 2,
        "{label}: black only {first_black} frames after the action: {:?}",
        &l[n0..]
    );
    assert!(
        l[n0 + first_black..].iter().all(|&x| x <= BLACK),
        "{label}: the blackout let a picture through: {:?}",
        &l[n0..]
    );

    let n1 = reader.frames_read();
    act(&mut state, vh, Action::Blackout { on: None }, t0.elapsed());
    until_frames(reader, n1 + 12, "frames after the release").await;
    let l = reader.lumas();
    let first_picture = l[n1..]
        .iter()
        .position(|&x| x >= PICTURE)
        .unwrap_or_else(|| panic!("{label}: no picture after the release: {:?}", &l[n1..]));
    assert!(
        first_picture <= 2,
        "{label}: the picture came back only {first_picture} frames after the release: {:?}",
        &l[n1..]
    );
    assert!(l[n1 + first_picture..].iter().all(|&x| x >= PICTURE));
    // For docs/performance.md (`-- --nocapture`).
    eprintln!("{label}: first black frame +{first_black}, picture back +{first_picture}");

    // The fade: the reducer's control tick drives the level, as the engine's does.
    let n2 = reader.frames_read();
    act(
        &mut state,
        vh,
        Action::MasterFade { beats: Some(2.0) },
        t0.elapsed(),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while state.stage.fade.is_some() {
        tick.tick().await;
        update(&mut state, Msg::Tick, t0.elapsed());
        vh.control.send_replace(state.stage.control());
    }
    let n3 = reader.frames_read();
    until_frames(reader, n3 + 6, "frames after the fade").await;
    let l = reader.lumas();
    let fade = &l[n2..];
    assert!(
        fade.len() >= 8,
        "{label}: only {} frames during a 1 s fade",
        fade.len()
    );
    // Never brighter than the frame before (1 luma step of slack for the moving bar).
    for w in fade.windows(2) {
        assert!(
            w[1] <= w[0] + 1.0,
            "{label}: the fade brightened from {} to {}: {fade:?}",
            w[0],
            w[1]
        );
    }
    let mid: Vec<f32> = fade
        .iter()
        .copied()
        .filter(|&x| x > BLACK && x < PICTURE - 5.0)
        .collect();
    assert!(mid.len() >= 3, "{label}: a fade, not a cut: {fade:?}");
    assert!(
        fade.iter().rev().take(4).all(|&x| x <= BLACK),
        "{label}: the fade did not end black: {fade:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackout_and_fade_on_the_scope_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (rtp_tx, vh, reader) = output(dir.path()).await;
    let peer = Peer::start(PeerOptions {
        fps: 30.0,
        size: (W as u32, H as u32),
        ..PeerOptions::default()
    })
    .await;
    let (etx, mut erx) = mpsc::channel(4096);
    let ports = VideoPorts {
        rtp_out: Some(rtp_tx),
        keyframe_requests: Some(vh.keyframe_requests.clone()),
        ..VideoPorts::default()
    };
    let transport =
        scope_deck::transport::spawn_with_video(&fast_config(&peer.url()), false, etx, ports)
            .unwrap();
    let mut initial = serde_json::Map::new();
    initial.insert("paused".into(), serde_json::json!(false));
    transport.link.publish_fixed(initial);
    transport
        .link
        .send_waiting(TransportCmd::Connect)
        .await
        .unwrap();
    let drain = tokio::spawn(async move { while erx.recv().await.is_some() {} });

    blackout_and_fade(&vh, &reader, "scope peer").await;

    drop(reader);
    transport
        .link
        .send_waiting(TransportCmd::Shutdown)
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), transport.task).await;
    drain.abort();
    vh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackout_and_fade_on_the_daydream_standin() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        size: (W as u32, H as u32),
        fps: 30.0,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (rtp_tx, vh, reader) = output(dir.path()).await;
    // The gateway closes a session that sends no video: a test pattern goes in over WHIP.
    let (sample_tx, sample_rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let inp = input::start(
        &InputConfig {
            source: InputSource::TestPattern,
            width: 256,
            height: 256,
            fps: 15,
            codec: scope_deck::transport::types::VideoCodec::H264,
            ..InputConfig::default()
        },
        sample_tx,
        CancellationToken::new(),
    )
    .unwrap();
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

    blackout_and_fade(&vh, &reader, "daydream stand-in").await;

    drop(reader);
    h.link.send_waiting(TransportCmd::Shutdown).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
    drain.abort();
    inp.shutdown().await;
    vh.shutdown().await;
}
