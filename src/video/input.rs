//! Video input for video-to-video pipelines: a GStreamer source (webcam, looped file, test
//! pattern) → VP8 (Scope) or H.264 (the hosted gateway accepts nothing else), realtime →
//! [`EncodedSample`]s on a bounded channel that the transport writes to its WebRTC track.
//!
//! Key frames: the server's decoder cannot start without one, so one is forced whenever the
//! transport asks through [`KeyframeRequests`] (a session connected, an RTCP PLI/FIR arrived),
//! at most every [`FORCE_MIN_INTERVAL`], plus one at least every `keyframe_interval_ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel as cb;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{InputConfig, InputSource};
use super::elements::{self, VideoError};
use crate::transport::types::{EncodedSample, VideoCodec};
pub(crate) use crate::transport::webrtc_session::KeyframeRequests;

/// Fewest milliseconds between two forced key frames: a server asking on every broken frame
/// must not turn the stream into key frames only (requests in between are merged, not lost).
pub(crate) const FORCE_MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Capacity of the encoded-sample channel (a few frames: the track writer is fast or we drop).
pub const SAMPLE_CAPACITY: usize = 8;

/// Counters of the input edge.
#[derive(Debug, Default)]
pub struct InputCounters {
    /// Encoded frames handed to the transport.
    pub(crate) sent: AtomicU64,
    /// Encoded frames dropped because the transport was not keeping up.
    pub(crate) dropped: AtomicU64,
    /// Times the file source looped back to the start.
    pub loops: AtomicU64,
    /// Pipeline failures (each followed by a rebuild).
    pub(crate) failures: AtomicU64,
    /// Key frames forced on request (connect, PLI/FIR), after rate limiting.
    pub keyframes_forced: AtomicU64,
}

/// A running video input.
pub struct InputHandle {
    /// Counters.
    pub counters: Arc<InputCounters>,
    /// Asks the encoder for a key frame (the transports hold a clone).
    pub keyframes: KeyframeRequests,
    cancel: CancellationToken,
    /// Fires when the `video-input` thread has ended.
    done: oneshot::Receiver<()>,
    /// Hands cancellation and key-frame requests to the thread.
    bridge: JoinHandle<()>,
}

impl InputHandle {
    /// Stops the source and waits for it.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.done.await;
        let _ = self.bridge.await;
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

/// Frames between two periodic key frames for `cfg` (at least 1).
pub(crate) fn keyframe_distance(cfg: &InputConfig) -> u32 {
    (u64::from(cfg.fps) * u64::from(cfg.keyframe_interval_ms) / 1000).clamp(1, 10_000) as u32
}

/// The encoder part of the pipeline for `cfg.codec`, named `enc`. H.264 is what the hosted
/// gateway accepts (docs/daydream-api.md): constrained baseline (profile-level-id 42001f), no
/// B-frames, byte-stream with SPS/PPS before every IDR so a receiver can start at any key frame.
/// `x264enc` when installed, else `openh264enc` (BSD-licensed, in plugins-bad).
pub fn encoder_description(cfg: &InputConfig) -> Result<String, VideoError> {
    elements::init()?;
    let kf = keyframe_distance(cfg);
    let kbps = cfg.bitrate_kbps;
    Ok(match cfg.codec {
        VideoCodec::Vp8 => format!(
            "vp8enc name=enc deadline=1 cpu-used=8 threads=2 end-usage=cbr \
             target-bitrate={bps} keyframe-max-dist={kf} lag-in-frames=0 error-resilient=default",
            bps = u64::from(kbps) * 1000,
        ),
        VideoCodec::H264 => {
            let caps = "video/x-h264,stream-format=byte-stream,alignment=au,\
                        profile=constrained-baseline";
            if gst::ElementFactory::find("x264enc").is_some() {
                format!(
                    "x264enc name=enc tune=zerolatency speed-preset=ultrafast bframes=0 \
                     key-int-max={kf} bitrate={kbps} threads=2 byte-stream=true aud=false ! \
                     {caps}"
                )
            } else if gst::ElementFactory::find("openh264enc").is_some() {
                format!(
                    "openh264enc name=enc complexity=low rate-control=bitrate \
                     bitrate={bps} gop-size={kf} multi-thread=2 ! {caps}",
                    bps = u64::from(kbps) * 1000,
                )
            } else {
                return Err(VideoError::MissingElement {
                    element: "x264enc".into(),
                    hint: elements::install_hint("x264enc"),
                });
            }
        }
    })
}

/// Builds the input pipeline; returns it and its appsink.
pub fn build(cfg: &InputConfig) -> Result<(gst::Pipeline, gst_app::AppSink), VideoError> {
    elements::init()?;
    let src = source_description(cfg)?;
    let enc = encoder_description(cfg)?;
    let live = !matches!(cfg.source, InputSource::File);
    let desc = format!(
        "{src} ! videoconvert ! videoscale ! videorate ! \
         video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! {enc} ! \
         appsink name=out sync={sync} max-buffers=4 drop=true",
        w = cfg.width,
        h = cfg.height,
        fps = cfg.fps,
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
///
/// The pipeline runs on its own `video-input` thread (builds, state changes, seeks and the bus
/// all block there, never on the async workers); a small async task hands it cancellation and
/// the transport's key-frame requests.
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
    let (keyframes, requests) = KeyframeRequests::new();
    let (inbox_tx, inbox) = cb::unbounded();
    let (done_tx, done) = oneshot::channel();
    let input = Input {
        cfg: cfg.clone(),
        tx,
        counters: counters.clone(),
        health: Health {
            tx: health,
            stalled: false,
        },
        inbox,
        me: inbox_tx.clone(),
        run: 0,
    };
    std::thread::Builder::new()
        .name("video-input".into())
        .spawn(move || {
            input.run(first);
            let _ = done_tx.send(());
        })
        .map_err(|e| VideoError::Pipeline(format!("video input thread: {e}")))?;
    let bridge = tokio::spawn(bridge(inbox_tx, requests, cancel.clone()));
    Ok(InputHandle {
        counters,
        keyframes,
        cancel,
        done,
        bridge,
    })
}

/// No frame from the video input for this long is a stall.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(1);

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

/// What reaches the input thread.
enum InputMsg {
    /// An error, warning or end-of-stream from the bus of the pipeline started as `run`.
    Bus { run: u64, msg: gst::Message },
    /// The transport asked for a key frame.
    Keyframe,
    /// Stop and end the thread.
    Stop,
}

/// Hands cancellation and key-frame requests to the input thread (never blocking: the inbox is
/// unbounded and sees at most a request per change of the requests counter).
async fn bridge(
    to: cb::Sender<InputMsg>,
    mut requests: tokio::sync::watch::Receiver<u64>,
    cancel: CancellationToken,
) {
    let mut asking = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = requests.changed(), if asking => match r {
                Ok(()) => {
                    if to.send(InputMsg::Keyframe).is_err() {
                        return;
                    }
                }
                // Every requester is gone: nothing more will ask.
                Err(_) => asking = false,
            },
        }
    }
    let _ = to.send(InputMsg::Stop);
}

/// The input thread: owns the pipeline and everything about it that changes.
struct Input {
    cfg: InputConfig,
    tx: mpsc::Sender<EncodedSample>,
    counters: Arc<InputCounters>,
    health: Health,
    inbox: cb::Receiver<InputMsg>,
    /// Its own inbox, for the bus handlers of the pipelines it starts.
    me: cb::Sender<InputMsg>,
    /// Pipelines started so far (bus messages carry it).
    run: u64,
}

impl Input {
    /// Runs pipelines until stopped; a failed one is rebuilt after a second.
    fn run(mut self, first: (gst::Pipeline, gst_app::AppSink)) {
        let frame = Duration::from_secs_f64(1.0 / f64::from(self.cfg.fps.max(1)));
        let codec = self.cfg.codec;
        let mut next = Some(first);
        loop {
            let (pipeline, sink) = match next.take() {
                Some(p) => p,
                None => match build(&self.cfg) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!("video input: {e}");
                        self.health
                            .report(Some(format!("{e}; retrying every second")));
                        self.counters.failures.fetch_add(1, Ordering::Relaxed);
                        if !self.wait(Duration::from_secs(1)) {
                            return;
                        }
                        continue;
                    }
                },
            };
            let t = self.tx.clone();
            let c = self.counters.clone();
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
                            codec,
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
            self.run += 1;
            let run = self.run;
            let me = self.me.clone();
            super::supervisor::forward_bus(&bus, move |msg| {
                let _ = me.send(InputMsg::Bus { run, msg });
            });
            // A fresh pipeline starts with a key frame: requests from before it are served.
            let mut stop = false;
            while let Ok(m) = self.inbox.try_recv() {
                stop |= matches!(m, InputMsg::Stop);
            }
            if stop {
                let _ = pipeline.set_state(gst::State::Null);
                return;
            }
            if pipeline.set_state(gst::State::Playing).is_err() {
                tracing::warn!("video input: cannot start the source");
            }
            let failed = self.watch(&pipeline);
            let _ = pipeline.set_state(gst::State::Null);
            if !failed {
                return;
            }
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            if !self.wait(Duration::from_secs(1)) {
                return;
            }
        }
    }

    /// Waits `d` before a rebuild; false when a stop came meanwhile.
    fn wait(&mut self, d: Duration) -> bool {
        let until = std::time::Instant::now() + d;
        loop {
            match self.inbox.recv_deadline(until) {
                Ok(InputMsg::Stop) | Err(cb::RecvTimeoutError::Disconnected) => return false,
                Ok(_) => {}
                Err(cb::RecvTimeoutError::Timeout) => return true,
            }
        }
    }

    /// Follows the bus until an error (true) or a stop (false); loops a file at its end;
    /// forces key frames on request, at most one per [`FORCE_MIN_INTERVAL`] (a request inside the
    /// interval is kept and served when it ends).
    fn watch(&mut self, pipeline: &gst::Pipeline) -> bool {
        use std::time::Instant;
        const CHECK_EVERY: Duration = Duration::from_millis(250);
        // Frames produced (sent or dropped) at the last check, and when that count last moved.
        let counters = self.counters.clone();
        let frames =
            || counters.sent.load(Ordering::Relaxed) + counters.dropped.load(Ordering::Relaxed);
        let mut seen = frames();
        let mut moved = Instant::now();
        let mut next_check = Instant::now() + CHECK_EVERY;
        let mut pending = false;
        let mut next_force = Instant::now();
        loop {
            let wake = if pending {
                next_check.min(next_force)
            } else {
                next_check
            };
            match self.inbox.recv_deadline(wake) {
                Ok(InputMsg::Stop) | Err(cb::RecvTimeoutError::Disconnected) => return false,
                Ok(InputMsg::Keyframe) => pending = true,
                Ok(InputMsg::Bus { run, msg }) if run == self.run => match msg.view() {
                    gst::MessageView::Eos(_) if self.cfg.source == InputSource::File => {
                        self.counters.loops.fetch_add(1, Ordering::Relaxed);
                        if pipeline
                            .seek_simple(
                                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                                gst::ClockTime::ZERO,
                            )
                            .is_err()
                        {
                            tracing::warn!("video input: cannot loop {}", self.cfg.file);
                            return true;
                        }
                    }
                    gst::MessageView::Eos(_) => {
                        tracing::warn!("video input ended");
                        return true;
                    }
                    gst::MessageView::Error(e) => {
                        tracing::warn!("video input failed: {} ({:?})", e.error(), e.debug());
                        self.health
                            .report(Some(format!("failed: {}; restarting", e.error())));
                        return true;
                    }
                    _ => {}
                },
                Ok(InputMsg::Bus { .. }) | Err(cb::RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if pending && now >= next_force {
                pending = false;
                next_force = now + FORCE_MIN_INTERVAL;
                if force_key_frame(pipeline) {
                    self.counters
                        .keyframes_forced
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("video input: key frame forced");
                }
            }
            if now >= next_check {
                next_check = now + CHECK_EVERY;
                let n = frames();
                if n != seen {
                    seen = n;
                    moved = now;
                    self.health.report(None);
                } else if moved.elapsed() >= STALL_AFTER {
                    self.health.report(Some(format!(
                        "no frames from the {} for {:.0} s: check the source",
                        source_name(self.cfg.source),
                        STALL_AFTER.as_secs_f32()
                    )));
                }
            }
        }
    }
}

/// Asks the encoder of `pipeline` for a key frame now (an upstream force-key-unit event on its
/// source pad, with SPS/PPS for H.264). False when the encoder is not there to ask.
fn force_key_frame(pipeline: &gst::Pipeline) -> bool {
    let Some(pad) = pipeline.by_name("enc").and_then(|e| e.static_pad("src")) else {
        return false;
    };
    let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    pad.send_event(ev)
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
