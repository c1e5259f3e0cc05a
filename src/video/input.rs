//! Video input for video-to-video pipelines: a GStreamer source (webcam, looped file, test
//! pattern) → VP8 (realtime) → [`EncodedSample`]s on a bounded channel that the transport
//! writes to its WebRTC track.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{InputConfig, InputSource};
use super::elements::{self, VideoError};
use crate::transport::types::{EncodedSample, VideoCodec};

/// Capacity of the encoded-sample channel (a few frames: the track writer is fast or we drop).
pub const SAMPLE_CAPACITY: usize = 8;

/// Counters of the input edge.
#[derive(Debug, Default)]
pub struct InputCounters {
    /// Encoded frames handed to the transport.
    pub sent: AtomicU64,
    /// Encoded frames dropped because the transport was not keeping up.
    pub dropped: AtomicU64,
    /// Times the file source looped back to the start.
    pub loops: AtomicU64,
    /// Pipeline failures (each followed by a rebuild).
    pub failures: AtomicU64,
}

/// A running video input.
pub struct InputHandle {
    /// Counters.
    pub counters: Arc<InputCounters>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl InputHandle {
    /// Stops the source and waits for it.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The GStreamer description of the source part for `cfg` (before conversion and encoding).
fn source_description(cfg: &InputConfig) -> Result<String, VideoError> {
    Ok(match cfg.source {
        InputSource::None => {
            return Err(VideoError::Pipeline(
                "video input: source = \"none\"".into(),
            ));
        }
        InputSource::TestPattern => "videotestsrc name=src is-live=true pattern=ball".into(),
        InputSource::Webcam => {
            if !std::path::Path::new(&cfg.device).exists() {
                return Err(VideoError::Device(format!(
                    "webcam {} does not exist (`v4l2-ctl --list-devices` lists the cameras)",
                    cfg.device
                )));
            }
            "v4l2src name=src".into()
        }
        InputSource::File => {
            if !std::path::Path::new(&cfg.file).is_file() {
                return Err(VideoError::Device(format!(
                    "video input file {} does not exist",
                    cfg.file
                )));
            }
            "filesrc name=src ! decodebin".into()
        }
    })
}

/// Builds the input pipeline; returns it and its appsink.
pub fn build(cfg: &InputConfig) -> Result<(gst::Pipeline, gst_app::AppSink), VideoError> {
    elements::init()?;
    let src = source_description(cfg)?;
    let live = !matches!(cfg.source, InputSource::File);
    let desc = format!(
        "{src} ! videoconvert ! videoscale ! videorate ! \
         video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! \
         vp8enc deadline=1 cpu-used=8 threads=2 end-usage=cbr target-bitrate={br} \
         keyframe-max-dist={kf} lag-in-frames=0 error-resilient=default ! \
         appsink name=out sync={sync} max-buffers=4 drop=true",
        w = cfg.width,
        h = cfg.height,
        fps = cfg.fps,
        br = u64::from(cfg.bitrate_kbps) * 1000,
        kf = cfg.fps * 2,
        sync = !live,
    );
    let mut ctx = gst::ParseContext::new();
    let el = gst::parse::launch_full(&desc, Some(&mut ctx), gst::ParseFlags::FATAL_ERRORS)
        .map_err(|e| match ctx.missing_elements().first() {
            Some(m) => VideoError::MissingElement {
                element: m.to_string(),
                hint: elements::install_hint(m),
            },
            None => VideoError::Pipeline(format!("video input: {e}")),
        })?;
    let pipeline = el
        .downcast::<gst::Pipeline>()
        .map_err(|_| VideoError::Pipeline("video input: not a pipeline".into()))?;
    if let Some(s) = pipeline.by_name("src") {
        match cfg.source {
            InputSource::Webcam => s.set_property("device", &cfg.device),
            InputSource::File => s.set_property("location", &cfg.file),
            _ => {}
        }
    }
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| VideoError::Pipeline("video input: no appsink".into()))?;
    Ok((pipeline, sink))
}

/// Starts the input: encoded frames go to `tx` (dropped and counted when it is full). Failures are
/// logged and the pipeline rebuilt after a second; a file source loops at its end.
pub fn start(
    cfg: &InputConfig,
    tx: mpsc::Sender<EncodedSample>,
    cancel: CancellationToken,
) -> Result<InputHandle, VideoError> {
    start_with_health(cfg, tx, cancel, None)
}

/// [`start`], also reporting a stall (no frame for [`STALL_AFTER`]) or a failure to the engine
/// as `Msg::InputHealth` for the dashboard and the `health` event.
pub fn start_with_health(
    cfg: &InputConfig,
    tx: mpsc::Sender<EncodedSample>,
    cancel: CancellationToken,
    health: Option<mpsc::Sender<crate::core::msg::Msg>>,
) -> Result<InputHandle, VideoError> {
    // Build once up front so configuration problems surface to the caller immediately.
    let first = build(cfg)?;
    let counters = Arc::new(InputCounters::default());
    let cancel = cancel.child_token();
    let task = tokio::spawn(run(
        cfg.clone(),
        first,
        tx,
        counters.clone(),
        cancel.clone(),
        Health {
            tx: health,
            stalled: false,
        },
    ));
    Ok(InputHandle {
        counters,
        cancel,
        task,
    })
}

/// No frame from the video input for this long is a stall.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// Reports the input's state to the engine on change (nothing without a sender).
struct Health {
    tx: Option<mpsc::Sender<crate::core::msg::Msg>>,
    stalled: bool,
}

impl Health {
    fn report(&mut self, problem: Option<String>) {
        if self.stalled == problem.is_some() {
            return;
        }
        self.stalled = problem.is_some();
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(crate::core::msg::Msg::InputHealth {
                input: "video in".into(),
                problem: problem.map(|p| (crate::core::health::HealthState::Stalled, p)),
            });
        }
    }
}

async fn run(
    cfg: InputConfig,
    first: (gst::Pipeline, gst_app::AppSink),
    tx: mpsc::Sender<EncodedSample>,
    counters: Arc<InputCounters>,
    cancel: CancellationToken,
    mut health: Health,
) {
    let frame = Duration::from_secs_f64(1.0 / f64::from(cfg.fps.max(1)));
    let mut next = Some(first);
    loop {
        let (pipeline, sink) = match next.take() {
            Some(p) => p,
            None => match build(&cfg) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("video input: {e}");
                    health.report(Some(format!("{e}; retrying every second")));
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let t = tx.clone();
        let c = counters.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buf) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(map) = buf.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let out = EncodedSample {
                        data: bytes::Bytes::copy_from_slice(map.as_slice()),
                        duration: buf.duration().map_or(frame, |d| d.into()),
                        codec: VideoCodec::Vp8,
                    };
                    match t.try_send(out) {
                        Ok(()) => c.sent.fetch_add(1, Ordering::Relaxed),
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            c.dropped.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            return Err(gst::FlowError::Eos);
                        }
                    };
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let Some(bus) = pipeline.bus() else { return };
        if pipeline.set_state(gst::State::Playing).is_err() {
            tracing::warn!("video input: cannot start the source");
        }
        let failed = watch_bus(&pipeline, &bus, &cfg, &counters, &cancel, &mut health).await;
        let _ = pipeline.set_state(gst::State::Null);
        if !failed {
            return;
        }
        counters.failures.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Follows the bus until an error (true) or cancellation (false); loops a file at its end.
async fn watch_bus(
    pipeline: &gst::Pipeline,
    bus: &gst::Bus,
    cfg: &InputConfig,
    counters: &InputCounters,
    cancel: &CancellationToken,
    health: &mut Health,
) -> bool {
    use futures::StreamExt;
    let mut stream = bus.stream();
    // Frames produced (sent or dropped) at the last check, and when that count last moved.
    let frames =
        || counters.sent.load(Ordering::Relaxed) + counters.dropped.load(Ordering::Relaxed);
    let mut seen = frames();
    let mut moved = tokio::time::Instant::now();
    let mut check = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = check.tick() => {
                let now = frames();
                if now != seen {
                    seen = now;
                    moved = tokio::time::Instant::now();
                    health.report(None);
                } else if moved.elapsed() >= STALL_AFTER {
                    health.report(Some(format!(
                        "no frames from the {} for {:.0} s: check the source",
                        source_name(cfg.source),
                        STALL_AFTER.as_secs_f32()
                    )));
                }
            }
            msg = stream.next() => {
                let Some(msg) = msg else { return true };
                match msg.view() {
                    gst::MessageView::Eos(_) if cfg.source == InputSource::File => {
                        counters.loops.fetch_add(1, Ordering::Relaxed);
                        if pipeline.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, gst::ClockTime::ZERO).is_err() {
                            tracing::warn!("video input: cannot loop {}", cfg.file);
                            return true;
                        }
                    }
                    gst::MessageView::Eos(_) => {
                        tracing::warn!("video input ended");
                        return true;
                    }
                    gst::MessageView::Error(e) => {
                        tracing::warn!("video input failed: {} ({:?})", e.error(), e.debug());
                        health.report(Some(format!("failed: {}; restarting", e.error())));
                        return true;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// How the performer calls the configured source.
fn source_name(s: InputSource) -> &'static str {
    match s {
        InputSource::None => "video input",
        InputSource::TestPattern => "test pattern",
        InputSource::Webcam => "webcam",
        InputSource::File => "video file",
    }
}
