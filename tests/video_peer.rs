//! Video end to end through the real transport and the aiortc test peer: the peer's generated
//! frames (frame counter in the pixels) come back over WebRTC, go through scope-deck's output
//! pipeline to an shm sink, and a second process (`gst-launch-1.0 shmsrc`) reads them; at the
//! same time scope-deck's video input (test pattern / looped file → VP8) reaches the peer, which
//! counts the frames it decodes.
//!
//! The video edge's key-frame requests reach the peer as RTCP PLI through the transport, so a lost
//! first key frame is recovered inside the same session (no reconnect).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions};
use common::rig::fast_config;
use common::rtp_gen::ShmReader;
use scope_deck::transport::{
    ConnState, TransportCmd, TransportEvent, VideoPorts, spawn_with_video,
};
use scope_deck::video::config::{InputConfig, InputSource, SinkConfig, VideoConfig};
use scope_deck::video::{self, input};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const W: usize = 512;
const H: usize = 512;

/// The longest strictly increasing subsequence (patience sorting).
fn longest_increasing(v: &[u32]) -> Vec<u32> {
    let mut tails: Vec<usize> = Vec::new();
    let mut prev = vec![usize::MAX; v.len()];
    for i in 0..v.len() {
        let pos = tails.partition_point(|&t| v[t] < v[i]);
        if pos > 0 {
            prev[i] = tails[pos - 1];
        }
        if pos == tails.len() {
            tails.push(i);
        } else {
            tails[pos] = i;
        }
    }
    let mut out = Vec::new();
    let mut k = tails.last().copied().unwrap_or(usize::MAX);
    while k != usize::MAX {
        out.push(v[k]);
        k = prev[k];
    }
    out.reverse();
    out
}

struct Session {
    peer: Peer,
    transport: scope_deck::transport::TransportHandle,
    drain: tokio::task::JoinHandle<()>,
}

/// Starts the peer and a transport wired to the video edge's ports, and waits for Streaming.
async fn connect(
    rtp_out: Option<mpsc::Sender<scope_deck::transport::types::RtpPacket>>,
    samples: Option<mpsc::Receiver<scope_deck::transport::types::EncodedSample>>,
    keyframes: Option<tokio::sync::watch::Receiver<u64>>,
    peer_opts: PeerOptions,
) -> Session {
    let peer = Peer::start(peer_opts).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (etx, mut erx) = mpsc::channel(4096);
    let ports = VideoPorts {
        rtp_out,
        samples_in: samples.map(|s| Arc::new(tokio::sync::Mutex::new(s))),
        keyframe_requests: keyframes,
        ..VideoPorts::default()
    };
    let transport = spawn_with_video(&fast_config(&peer.url()), false, etx, ports).unwrap();
    let mut initial = serde_json::Map::new();
    initial.insert("paused".into(), serde_json::json!(false));
    transport.link.publish_fixed(initial);
    transport
        .link
        .send_waiting(TransportCmd::Connect)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, erx.recv())
            .await
            .unwrap_or_else(|_| panic!("never streamed: {}", peer.stderr()))
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
    }
    let drain = tokio::spawn(async move { while erx.recv().await.is_some() {} });
    Session {
        peer,
        transport,
        drain,
    }
}

impl Session {
    async fn close(self) {
        self.transport
            .link
            .send_waiting(TransportCmd::Shutdown)
            .await
            .unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.transport.task).await;
        self.drain.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_counters_reach_the_shm_reader_and_test_pattern_reaches_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("peer.shm");
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
    let keyframes = vh.keyframe_requests.clone();
    let (sample_tx, sample_rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let inp = input::start(
        &InputConfig {
            source: InputSource::TestPattern,
            width: 256,
            height: 256,
            fps: 15,
            ..InputConfig::default()
        },
        sample_tx,
        cancel.clone(),
    )
    .unwrap();

    // Reader first, so that no generated frame is missed once video flows.
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

    let s = connect(
        Some(rtp_tx),
        Some(sample_rx),
        Some(keyframes),
        PeerOptions {
            fps: 30.0,
            size: (W as u32, H as u32),
            ..PeerOptions::default()
        },
    )
    .await;
    // Collect ~150 generated frames, and wait for the peer to decode ≥ 30 of ours.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut peer_received = 0;
    loop {
        peer_received = s.peer.stats().await["frames_received"]
            .as_u64()
            .unwrap_or(peer_received);
        let n = reader.frames_read();
        if n >= 150 && peer_received >= 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "read {n} frames, peer decoded {peer_received} of ours; stats {:#?}; {}",
            stats.borrow(),
            s.peer.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = reader.stop();
    let vstats = stats.borrow().clone();
    s.close().await;
    inp.shutdown().await;
    vh.shutdown().await;

    // VP8 at the peer's (low, ramping) bitrate can blur a cell enough to misread a frame's
    // counter; misreads are bounded separately. In order = the longest strictly increasing run
    // of counters; arrived = its length against the span it covers.
    let lis = longest_increasing(&got);
    let span = (lis.last().unwrap() - lis.first().unwrap() + 1) as usize;
    assert!(
        lis.len() * 100 >= span * 95,
        "{} of {span} generated frames arrived in order: {got:?}; {vstats:#?}",
        lis.len()
    );
    let misread = got.len() - lis.len();
    assert!(
        misread * 100 <= got.len() * 5,
        "{misread} of {} frames out of order or misread: {got:?}",
        got.len()
    );
    assert!(peer_received >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looped_file_input_reaches_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mkv");
    let st = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=15",
            "!",
            "video/x-raw,width=160,height=120,framerate=15/1",
            "!",
            "vp8enc",
            "!",
            "matroskamux",
            "!",
            "filesink",
            &format!("location={}", file.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let cancel = CancellationToken::new();
    let (sample_tx, sample_rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let inp = input::start(
        &InputConfig {
            source: InputSource::File,
            file: file.to_string_lossy().into(),
            width: 160,
            height: 120,
            fps: 15,
            ..InputConfig::default()
        },
        sample_tx,
        cancel.clone(),
    )
    .unwrap();
    let s = connect(None, Some(sample_rx), None, PeerOptions::default()).await;
    // 15-frame file: ≥ 30 decoded frames at the peer means it looped.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = s.peer.stats().await["frames_received"]
            .as_u64()
            .unwrap_or(0);
        if n >= 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "peer decoded {n}; {}",
            s.peer.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        inp.counters
            .loops
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    s.close().await;
    inp.shutdown().await;
}
