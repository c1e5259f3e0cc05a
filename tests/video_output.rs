//! Video output end to end with real GStreamer: counter frames → vp8enc → rtpvp8pay → the
//! `RtpPacket` channel (as the transport feeds it) → scope-deck's output pipeline → sinks, read
//! back by a second process (`gst-launch-1.0 shmsrc`) and by GStreamer discovery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common {
    pub mod rtp_gen;
}

use std::time::{Duration, Instant};

use common::rtp_gen::{
    ShmReader, encode_frames, encode_frames_h264, send_paced, send_paced_as, wait_stats,
};
use gstreamer as gst;
use gstreamer::prelude::*;
use scope_deck::transport::types::VideoCodec;
use scope_deck::video::config::{SinkConfig, VideoConfig};
use scope_deck::video::{self, VideoStats};
use tokio_util::sync::CancellationToken;

const W: usize = 512;
const H: usize = 512;

/// shm sink read by a second process, with a mid-show failing sink and a sink whose device is
/// missing running alongside: ≥ 95 % of counters arrive, in order, and the other sinks' failures
/// are reported and restarted without disturbing it. Also checks the preview branch publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shm_sink_delivers_counters_in_order_while_other_sinks_fail() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("out.shm");
    let frames = encode_frames(150, W, H, 1000);
    let cfg = VideoConfig {
        sinks: vec![
            SinkConfig::Shm {
                socket: socket.to_string_lossy().into(),
                format: "I420".into(),
            },
            // Fails mid-show after 20 frames, every time it is rebuilt.
            SinkConfig::Custom {
                pipeline: "identity error-after=20 ! fakesink sync=false".into(),
            },
            SinkConfig::V4l2loopback {
                device: "/dev/video97".into(),
                format: "I420".into(),
            },
        ],
        restart_backoff_ms: 100,
        ..VideoConfig::default()
    };
    let cancel = CancellationToken::new();
    let (tx, handle) = video::start(&cfg, cancel.clone()).unwrap();
    let mut stats = handle.stats.clone();
    let mut preview = handle.preview.clone();

    // The shm sink creates its socket when it starts; then the reader connects.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "shm socket never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = ShmReader::start(&socket, W, H);
    wait_stats(
        &mut stats,
        "the shm reader to connect",
        Duration::from_secs(10),
        |s| s.sinks.first().is_some_and(|k| k.clients >= 1),
    )
    .await;

    send_paced(&tx, &frames, 30).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while reader.frames_read() < frames.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = stats.borrow().clone();
    let got = reader.stop();

    let wanted: Vec<u32> = (1000..1150).collect();
    let valid: Vec<u32> = got.iter().copied().filter(|c| wanted.contains(c)).collect();
    assert!(
        valid.len() * 100 >= wanted.len() * 95,
        "only {} of {} counters arrived (read {:?}); stats {s:#?}",
        valid.len(),
        wanted.len(),
        got
    );
    assert!(
        valid.windows(2).all(|w| w[0] < w[1]),
        "counters out of order: {valid:?}"
    );
    assert_eq!(valid.len(), got.len(), "garbled frames: {got:?}");

    // The failing sinks were reported and restarted, the shm sink never was.
    let s = wait_stats(&mut stats, "restarts", Duration::from_secs(5), |s| {
        s.sinks[1].restarts >= 1 && s.sinks[2].restarts >= 1
    })
    .await;
    assert_eq!(s.sinks[0].restarts, 0, "{s:#?}");
    assert!(
        s.sinks[1]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("custom"),
        "{s:#?}"
    );
    assert!(
        s.sinks[2]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("modprobe v4l2loopback"),
        "{s:#?}"
    );
    assert!(s.frames_in >= 142, "{s:#?}");
    assert_eq!(s.decode_errors, 0, "{s:#?}");

    // Preview: small RGB frames at a low rate.
    let p = preview
        .borrow_and_update()
        .clone()
        .expect("a preview frame");
    assert_eq!((p.width, p.height, p.rgb.len()), (64, 64, 64 * 64 * 3));
    assert!(
        p.seq <= 150 / 3,
        "preview not rate-limited: {} frames",
        p.seq
    );

    handle.shutdown().await;
}

/// Records `frames` through a file sink and returns (file, sink stats, video stats).
async fn record(
    frames: &[Vec<bytes::Bytes>],
    container: &str,
    reencode: bool,
    codec: VideoCodec,
    pt: u8,
    dir: &std::path::Path,
) -> (std::path::PathBuf, VideoStats) {
    let cfg = VideoConfig {
        sinks: vec![SinkConfig::File {
            dir: dir.to_string_lossy().into(),
            container: container.into(),
            prefix: "show".into(),
            reencode,
            on_key: false,
        }],
        ..VideoConfig::default()
    };
    let (tx, handle) = video::start(&cfg, CancellationToken::new()).unwrap();
    let mut stats = handle.stats.clone();
    if reencode {
        // Built at once; a stored stream waits for the first frame to know its codec.
        wait_stats(&mut stats, "the file sink", Duration::from_secs(10), |s| {
            s.sinks.first().is_some_and(|k| k.running)
        })
        .await;
    }
    send_paced_as(&tx, frames, 30, codec, pt).await;
    let packets: u64 = frames.iter().map(|f| f.len() as u64).sum();
    wait_stats(
        &mut stats,
        "every packet in the pipeline",
        Duration::from_secs(10),
        |s| s.packets_in + s.packets_dropped >= packets,
    )
    .await;
    // Then until the recorder's count holds still over two stats periods (250 ms each): the
    // jitter buffer and the sink queue have drained.
    let mut last = u64::MAX;
    let mut still = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        tokio::time::timeout(Duration::from_secs(2), stats.changed())
            .await
            .unwrap()
            .unwrap();
        let s = stats.borrow_and_update().clone();
        let k = &s.sinks[0];
        let n = k.frames_out + k.dropped;
        still = if n == last && k.running { still + 1 } else { 0 };
        last = n;
        if still >= 2 {
            break s;
        }
        assert!(Instant::now() < deadline, "recorder never settled: {s:#?}");
    };
    let path = s.sinks[0].file.clone().unwrap();
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("show-"),
        "{path:?}"
    );
    // Shutdown sends end-of-stream: the file is finalised (index written).
    handle.shutdown().await;
    let s = stats.borrow().clone();
    (path, s)
}

/// Resolution and duration of a recording by GStreamer discovery.
fn discover(path: &std::path::Path) -> ((u32, u32), u64) {
    let uri = url::Url::from_file_path(path).unwrap().to_string();
    let disc = gstreamer_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).unwrap();
    let info = disc.discover_uri(&uri).unwrap();
    let v = info.video_streams();
    assert_eq!(v.len(), 1);
    (
        (v[0].width(), v[0].height()),
        info.duration().unwrap().mseconds(),
    )
}

/// File sink, both modes: the recording's resolution and duration come from GStreamer
/// discovery, and its frames are counted by demuxing it. The default stores the received VP8 as
/// is (no encoder in the sink); `reencode = true` decodes and re-encodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sink_records_every_frame_stored_or_reencoded() {
    let frames = encode_frames(90, W, H, 1);
    for reencode in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (path, s) = record(&frames, "mkv", reencode, VideoCodec::Vp8, 96, dir.path()).await;
        assert_eq!(path.extension().unwrap(), "mkv");
        let ((w, h), dur) = discover(&path);
        assert_eq!((w, h), (W as u32, H as u32), "reencode={reencode}");
        assert!(
            (2700..=3300).contains(&dur),
            "reencode={reencode}: duration {dur} ms for 90 frames at 30 fps"
        );
        // Every frame the recorder took is in the file; it may only drop when more than 2 s
        // behind (CPU starvation), and then at most 5 %.
        let count = count_frames(&path, "matroskademux");
        assert_eq!(
            count as u64, s.sinks[0].frames_out,
            "reencode={reencode}: frames in the recording: {s:#?}"
        );
        assert!(
            count >= 86,
            "reencode={reencode}: only {count} of 90 frames recorded: {s:#?}"
        );
    }
}

/// A stored recording starts on a key frame: joining mid-GOP drops the delta frames before the
/// next key frame and asks the sender for one (RTCP PLI through the key-frame hook).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_recording_starts_on_a_key_frame() {
    // Key frames at 0, 30 and 60: starting at frame 5 leaves 25 frames to skip.
    let frames = encode_frames(90, W, H, 1);
    let dir = tempfile::tempdir().unwrap();
    let (path, s) = record(&frames[5..], "mkv", false, VideoCodec::Vp8, 96, dir.path()).await;
    let count = count_frames(&path, "matroskademux");
    assert_eq!(count as u64, s.sinks[0].frames_out, "{s:#?}");
    assert!(
        (55..=60).contains(&count),
        "{count} frames from the key frame on: {s:#?}"
    );
    assert!(s.keyframe_requests >= 1, "{s:#?}");
    // Decodable from its first frame: discovery reads the resolution.
    assert_eq!(discover(&path).0, (W as u32, H as u32));
}

/// H.264 as a Scope server sends it, stored in MP4 without decoding or encoding
/// (h264parse → mp4mux).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_is_stored_in_mp4_without_reencoding() {
    let frames = encode_frames_h264(90, W, H, 1);
    let dir = tempfile::tempdir().unwrap();
    let (path, s) = record(&frames, "mp4", false, VideoCodec::H264, 102, dir.path()).await;
    assert_eq!(path.extension().unwrap(), "mp4");
    let ((w, h), dur) = discover(&path);
    assert_eq!((w, h), (W as u32, H as u32));
    assert!((2700..=3300).contains(&dur), "duration {dur} ms");
    let count = count_frames(&path, "qtdemux");
    assert_eq!(count as u64, s.sinks[0].frames_out, "{s:#?}");
    assert!(count >= 86, "only {count} of 90 frames recorded: {s:#?}");
}

fn count_frames(path: &std::path::Path, demux: &str) -> usize {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! {demux} ! appsink name=s sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut n = 0;
    while sink.pull_sample().is_ok() {
        n += 1;
    }
    p.set_state(gst::State::Null).unwrap();
    n
}

/// v4l2loopback: the pipeline is built and validated up to the sink (elements, device, caps the
/// sink accepts); starting it without the kernel module gives the modprobe explanation.
#[test]
fn v4l2loopback_pipeline_is_validated_up_to_the_sink() {
    let cfg = SinkConfig::V4l2loopback {
        device: "/dev/video98".into(),
        format: "I420".into(),
    };
    let e = video::sinks::build_sink(&cfg, true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("sudo modprobe v4l2loopback") && e.contains("video_nr=98"),
        "{e}"
    );

    let built = video::sinks::build_sink(&cfg, false).unwrap();
    let names: Vec<String> = built
        .pipeline
        .iterate_sorted()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            // An appsrc made by its builder before any factory loaded the plugin has none.
            match e.factory() {
                Some(f) => f.name().to_string(),
                None if e.is::<gstreamer_app::AppSrc>() => "appsrc".to_string(),
                None => format!("no factory: {}", e.name()),
            }
        })
        .collect();
    // iterate_sorted goes sink → source; the videobalance is blackout / master fade.
    assert_eq!(
        names,
        [
            "v4l2sink",
            "capsfilter",
            "videoconvert",
            "videobalance",
            "appsrc"
        ]
    );
    assert_eq!(built.sink.property::<String>("device"), "/dev/video98");
    let caps = built
        .pipeline
        .by_name("caps")
        .unwrap()
        .property::<gst::Caps>("caps");
    let accepted = built.sink.static_pad("sink").unwrap().pad_template_caps();
    assert!(caps.can_intersect(&accepted), "v4l2sink refuses {caps}");
    // Starting it fails cleanly (no kernel module here) and is explained.
    assert!(built.pipeline.set_state(gst::State::Ready).is_err());
    let bus = built.pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(2), &[gst::MessageType::Error])
        .unwrap();
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    let explained = video::elements::explain_runtime_error(
        "v4l2loopback:/dev/video98",
        Some("v4l2sink"),
        &err.error().to_string(),
        "",
    )
    .to_string();
    assert!(explained.contains("modprobe v4l2loopback"), "{explained}");
    built.pipeline.set_state(gst::State::Null).unwrap();
}

/// NDI without the plugin built in (default features): the error names the cargo feature.
#[cfg(not(feature = "ndi"))]
#[test]
fn ndi_sink_without_plugin_names_the_feature() {
    let e = video::sinks::build_sink(&SinkConfig::Ndi { name: "x".into() }, true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ndisink") && e.contains("--features ndi"), "{e}");
}

/// A window sink where no display exists says so instead of failing obscurely.
#[test]
fn window_sink_without_display_is_explained() {
    if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        return; // a display exists here: nothing to check
    }
    let e = video::sinks::build_sink(&SinkConfig::Window {}, true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no display"), "{e}");
}

/// The record key: an `on_key = true` file sink stays idle (armed, no file) until the control
/// says record, writes while it does, and closes a playable file when it stops; the next press
/// starts a new file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_key_starts_and_stops_a_playable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = VideoConfig {
        sinks: vec![SinkConfig::File {
            dir: dir.path().to_string_lossy().into(),
            container: "mkv".into(),
            prefix: "key".into(),
            reencode: false,
            on_key: true,
        }],
        ..VideoConfig::default()
    };
    let (tx, handle) = video::start(&cfg, CancellationToken::new()).unwrap();
    let mut stats = handle.stats.clone();
    let frames = encode_frames(210, W, H, 1);
    send_paced(&tx, &frames[..30], 30).await;
    let s = wait_stats(&mut stats, "frames decoded", Duration::from_secs(10), |s| {
        s.frames_in >= 20
    })
    .await;
    assert!(s.sinks[0].armed && !s.sinks[0].running, "{s:#?}");
    assert!(s.sinks[0].file.is_none(), "no file before the key: {s:#?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let mut files = Vec::new();
    for take in 0..2 {
        let from = 30 + take * 90;
        handle.control.send_modify(|c| c.record = true);
        wait_stats(
            &mut stats,
            "the recorder running",
            Duration::from_secs(10),
            |s| s.sinks[0].running,
        )
        .await;
        send_paced(&tx, &frames[from..from + 60], 30).await;
        handle.control.send_modify(|c| c.record = false);
        let s = wait_stats(
            &mut stats,
            "the recorder stopped",
            Duration::from_secs(10),
            |s| !s.sinks[0].running && s.sinks[0].armed,
        )
        .await;
        files.push(s.sinks[0].file.clone().unwrap());
        // Between takes the stream goes on unrecorded.
        send_paced(&tx, &frames[from + 60..from + 90], 30).await;
    }
    handle.shutdown().await;
    assert_ne!(files[0], files[1], "each take is its own file");
    for f in &files {
        let ((w, h), dur) = discover(f);
        assert_eq!((w, h), (W as u32, H as u32), "{f:?}");
        let n = count_frames(f, "matroskademux");
        // 60 frames sent while recording, plus the held group of pictures it starts from.
        assert!((50..=100).contains(&n), "{f:?}: {n} frames");
        assert!(dur >= 1500, "{f:?}: {dur} ms");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "nothing recorded between takes"
    );
}

/// The thread (of this process) sleeping in a FIFO open that waits for the other end
/// (`wait_for_partner` in the kernel), if any.
fn thread_waiting_on_fifo() -> Option<String> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|t| {
        let dir = t.ok()?.path();
        let wchan = std::fs::read_to_string(dir.join("wchan")).ok()?;
        (wchan.trim() == "wait_for_partner")
            .then(|| std::fs::read_to_string(dir.join("comm")).unwrap_or_default())
    })
}

/// A sink whose start blocks inside its state change (a `filesink` opening a FIFO nobody reads:
/// `open()` waits for a reader) does not stall the async runtime. On a single-threaded runtime,
/// where one blocking call on the worker stops everything, the sink's thread is seen blocked in
/// that open while a heartbeat keeps ticking and the video edge keeps publishing its stats; once
/// a reader opens the FIFO, the sink runs.
#[test]
fn a_sink_blocked_in_its_state_change_does_not_stall_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let fifo_for_runtime = fifo.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let fifo = fifo_for_runtime;
            let cfg = VideoConfig {
                sinks: vec![SinkConfig::Custom {
                    pipeline: format!("filesink location={}", fifo.display()),
                }],
                ..VideoConfig::default()
            };
            let (_tx, handle) = video::start(&cfg, CancellationToken::new()).unwrap();
            let mut stats = handle.stats.clone();
            // No event says "blocked in open": look for the thread in the kernel's wait.
            let deadline = Instant::now() + Duration::from_secs(10);
            let blocked = loop {
                if let Some(name) = thread_waiting_on_fifo() {
                    break name;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sink never reached its FIFO open"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            assert!(blocked.starts_with("video-sink"), "blocked: {blocked}");
            // Meanwhile the runtime runs: a heartbeat ticks and the stats go on (every 250 ms).
            let mut beat = tokio::time::interval(Duration::from_millis(10));
            for _ in 0..20 {
                beat.tick().await;
            }
            for _ in 0..2 {
                stats.changed().await.unwrap();
            }
            let s = stats.borrow_and_update().clone();
            assert!(!s.sinks[0].running, "{s:#?}");
            assert!(
                thread_waiting_on_fifo().is_some(),
                "the sink stopped waiting before the heartbeat finished"
            );
            // A reader releases the open; the sink starts.
            let reader = std::thread::spawn(move || {
                use std::io::Read;
                let mut f = std::fs::File::open(&fifo).unwrap();
                let mut sink = Vec::new();
                let _ = f.read_to_end(&mut sink);
            });
            wait_stats(
                &mut stats,
                "the sink to run",
                Duration::from_secs(10),
                |s| s.sinks[0].running,
            )
            .await;
            handle.shutdown().await;
            reader.join().unwrap();
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the async runtime stalled behind the sink's blocking state change");
}
