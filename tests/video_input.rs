//! Video input with real GStreamer: a test pattern and a (looped) file become VP8
//! `EncodedSample`s on the channel the transport writes to its WebRTC track.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use scope_deck::transport::types::{EncodedSample, VideoCodec};
use scope_deck::video::config::{InputConfig, InputSource};
use scope_deck::video::input;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// VP8 frame tag: bit 0 of the first byte is 0 on a key frame; a key frame carries the start
/// code 9d 01 2a and its size.
fn vp8_keyframe_size(f: &[u8]) -> Option<(u16, u16)> {
    if f.len() < 10 || f[0] & 1 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some((
        u16::from_le_bytes([f[6], f[7]]) & 0x3fff,
        u16::from_le_bytes([f[8], f[9]]) & 0x3fff,
    ))
}

async fn collect(
    rx: &mut mpsc::Receiver<EncodedSample>,
    n: usize,
    timeout: Duration,
) -> Vec<EncodedSample> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(s)) => out.push(s),
            _ => break,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_pattern_produces_vp8_samples() {
    let cfg = InputConfig {
        source: InputSource::TestPattern,
        width: 320,
        height: 240,
        fps: 30,
        ..InputConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let h = input::start(&cfg, tx, CancellationToken::new()).unwrap();
    let got = collect(&mut rx, 45, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 45, "samples in 10 s");
    assert!(
        got.iter()
            .all(|s| s.codec == VideoCodec::Vp8 && !s.data.is_empty())
    );
    assert_eq!(
        vp8_keyframe_size(&got[0].data),
        Some((320, 240)),
        "first is a key frame"
    );
    let d = got[1].duration.as_secs_f64();
    assert!((d - 1.0 / 30.0).abs() < 0.002, "duration {d}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_loops_and_produces_samples() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mkv");
    // A 10-frame clip made with plain gst-launch.
    let st = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=10",
            "!",
            "video/x-raw,width=160,height=120,framerate=30/1",
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
    let cfg = InputConfig {
        source: InputSource::File,
        file: file.to_string_lossy().into(),
        width: 160,
        height: 120,
        fps: 30,
        ..InputConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let h = input::start(&cfg, tx, CancellationToken::new()).unwrap();
    let got = collect(&mut rx, 25, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 25, "a 10-frame file looped into 25 samples");
    assert!(h.counters.loops.load(Ordering::Relaxed) >= 2, "looped");
    assert_eq!(vp8_keyframe_size(&got[0].data), Some((160, 120)));
    h.shutdown().await;
}

#[test]
fn missing_file_and_webcam_are_explained() {
    let cfg = InputConfig {
        source: InputSource::File,
        file: "/nonexistent/clip.mp4".into(),
        ..InputConfig::default()
    };
    let e = input::build(&cfg).err().unwrap().to_string();
    assert!(
        e.contains("/nonexistent/clip.mp4") && e.contains("does not exist"),
        "{e}"
    );
    let cfg = InputConfig {
        source: InputSource::Webcam,
        device: "/dev/video96".into(),
        ..InputConfig::default()
    };
    let e = input::build(&cfg).err().unwrap().to_string();
    assert!(e.contains("/dev/video96"), "{e}");
}

/// A source that cannot deliver (a file that is not video) becomes the `video in` fault on the
/// engine's input queue, so the dashboard and the `health` event show it within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_source_is_reported_as_a_video_in_fault() {
    use scope_deck::core::health::HealthState;
    use scope_deck::core::msg::Msg;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.mp4");
    std::fs::write(
        &file,
        b"this is not a video file at all, just bytes".repeat(64),
    )
    .unwrap();
    let cfg = InputConfig {
        source: InputSource::File,
        file: file.display().to_string(),
        width: 160,
        height: 120,
        fps: 15,
        ..InputConfig::default()
    };
    let (tx, _rx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let (htx, mut hrx) = mpsc::channel::<Msg>(16);
    let cancel = CancellationToken::new();
    let h = input::start_with_health(&cfg, tx, cancel.clone(), Some(htx)).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), hrx.recv())
        .await
        .expect("a health report within 10 s")
        .expect("the input keeps its sender");
    match msg {
        Msg::InputHealth {
            input,
            problem: Some((state, detail)),
        } => {
            assert_eq!(input, "video in");
            assert_eq!(state, HealthState::Stalled);
            assert!(!detail.is_empty());
        }
        other => panic!("unexpected report: {other:?}"),
    }
    h.shutdown().await;
}
