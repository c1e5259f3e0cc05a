//! Received video → GStreamer → sinks (v4l2loopback, NDI, shm, file, window, custom), a terminal
//! preview, and video input for video-to-video pipelines.
//!
//! Hook for the transport: [`start`] returns the bounded `Sender<RtpPacket>` the transport feeds
//! with every RTP packet of the generated video, plus a [`VideoHandle`] (stats, preview, stop).
//! The output pipeline is built when the first packet arrives (its codec/payload type/clock rate
//! give the caps) and rebuilt if they change or the decoder fails. Each sink is its own small
//! pipeline under a supervisor, so one failing sink never stops the others (see [`sinks`]).
//!
//! Threads: RTP intake is an async task (it only pushes buffers into the pipeline's `appsrc`,
//! never blocking); every blocking GStreamer call runs on a plain thread that owns what it
//! touches — the output pipeline on `video-control` ([`control`]), each sink on its supervisor's
//! thread ([`supervisor`]), the input pipeline on `video-input` ([`input`]). Their buses are
//! watched there too (a sync handler forwards errors into the owning thread's channel).

pub(crate) mod change_probe;
pub mod config;
pub(crate) mod control;
pub mod elements;
pub mod input;
pub(crate) mod output;
pub(crate) mod preview;
pub use scope_deck_core::video::reduce;
pub mod scope_api;
pub use scope_deck_core::video::{SinkStatus, VideoStats};
pub mod sinks;
pub(crate) mod supervisor;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::transport::types::RtpPacket;
use control::{OutputControl, OutputEvent, OutputInput, OutputParts};
pub use elements::VideoError;
use output::{Counters, FrameTaps, PreviewSpec, StreamKey};
pub use preview::{PreviewFrame, PreviewWidget};
use supervisor::{SinkHandle, SinkInput};

/// Capacity of the RTP packet channel (≈ 1 s of 720p video at 2–3 Mbit/s in 1200-byte packets).
pub(crate) const RTP_CAPACITY: usize = 512;

/// A running video edge.
pub struct VideoHandle {
    /// Latest statistics.
    pub stats: watch::Receiver<VideoStats>,
    /// Latest preview frame (None until the first one).
    pub preview: watch::Receiver<Option<Arc<PreviewFrame>>>,
    /// When the received picture last changed for good (the change probe): the engine turns it
    /// into a glass-to-glass latency sample.
    pub(crate) changes: watch::Receiver<Option<std::time::Instant>>,
    /// Counts key-frame requests: the decoder has no valid reference (start of stream, loss).
    /// HOOK for the transport: on every change, send RTCP PLI for the video track.
    pub keyframe_requests: watch::Receiver<u64>,
    /// What the engine decides for the local outputs (blackout/fade level, the record key);
    /// the engine writes it, the sinks follow.
    pub control: watch::Sender<scope_deck_core::stage::OutputControl>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    sinks_done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl VideoHandle {
    /// Stops everything in order: sinks get end-of-stream (files are finalised), then the output
    /// pipeline is torn down. Returns when all of it is done.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for done in self.sinks_done {
            let _ = done.await;
        }
        let _ = self.task.await;
    }
}

/// Starts the video edge for `cfg`. Returns the sender the transport feeds with received RTP
/// packets (bounded: on `Full` the transport should drop the packet, it is counted as lost by
/// the jitter buffer) and the handle.
pub fn start(
    cfg: &config::VideoConfig,
    cancel: CancellationToken,
) -> Result<(mpsc::Sender<RtpPacket>, VideoHandle), VideoError> {
    elements::init()?;
    elements::preload(cfg.sinks.iter().any(|s| s.wants_encoded()));
    let cancel = cancel.child_token();
    let (tx, rx) = mpsc::channel(RTP_CAPACITY);
    let dark = Arc::new(sinks::Darkness::default());
    let (control_tx, control_rx) = watch::channel(scope_deck_core::stage::OutputControl::default());
    let backoff = Duration::from_millis(cfg.restart_backoff_ms);
    let mut ports = Vec::with_capacity(cfg.sinks.len());
    let mut sinks = Vec::with_capacity(cfg.sinks.len());
    // On a failure part way, the sinks already started are stopped again.
    let stop_all = |sinks: &[SinkHandle]| {
        for s in sinks {
            let _ = s.input.send(SinkInput::Stop);
        }
    };
    for c in &cfg.sinks {
        match supervisor::spawn(c.clone(), dark.clone(), backoff) {
            Ok((port, handle)) => {
                ports.push(port);
                sinks.push(handle);
            }
            Err(e) => {
                stop_all(&sinks);
                return Err(e);
            }
        }
    }
    let (stats_tx, stats_rx) = watch::channel(VideoStats::default());
    let (preview_tx, preview_rx) = watch::channel(None);
    let (kf_tx, kf_rx) = watch::channel(0u64);
    let preview = cfg.preview.enabled.then_some((
        PreviewSpec {
            fps: cfg.preview.fps,
            width: cfg.preview.width,
            height: cfg.preview.height,
        },
        preview_tx,
    ));
    let (changes_tx, changes_rx) = watch::channel(None);
    let counters = Arc::new(Counters::default());
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let output = OutputControl::spawn(
        OutputParts {
            jitter_ms: cfg.jitter_ms,
            sinks: ports,
            taps: FrameTaps {
                preview,
                changes: changes_tx,
            },
            counters: counters.clone(),
            keyframes: kf_tx.clone(),
        },
        events_tx,
    )
    .inspect_err(|_| stop_all(&sinks))?;
    let inputs: Vec<_> = sinks.iter().map(|s| s.input.clone()).collect();
    tokio::spawn(follow_control(control_rx, dark, inputs, cancel.clone()));
    let sinks_done = sinks.iter_mut().map(take_done).collect();
    let task = tokio::spawn(run(
        rx,
        output,
        events_rx,
        sinks,
        counters,
        (stats_tx, kf_tx),
        cancel.clone(),
    ));
    Ok((
        tx,
        VideoHandle {
            stats: stats_rx,
            preview: preview_rx,
            changes: changes_rx,
            keyframe_requests: kf_rx,
            control: control_tx,
            cancel,
            task,
            sinks_done,
        },
    ))
}

/// Moves the end signal out of a sink handle (the stats keep the rest).
fn take_done(s: &mut SinkHandle) -> tokio::sync::oneshot::Receiver<()> {
    let (_, never) = tokio::sync::oneshot::channel();
    std::mem::replace(&mut s.done, never)
}

/// Mirrors the engine's output level into the atomic every live sink reads per frame, hands the
/// record key to each sink's supervisor, and asks them to stop on cancellation.
async fn follow_control(
    mut rx: watch::Receiver<scope_deck_core::stage::OutputControl>,
    dark: Arc<sinks::Darkness>,
    sinks: Vec<crossbeam_channel::Sender<SinkInput>>,
    cancel: CancellationToken,
) {
    let mut record = None;
    loop {
        let now = *rx.borrow_and_update();
        dark.set(1.0 - now.level);
        if record != Some(now.record) {
            record = Some(now.record);
            for s in &sinks {
                let _ = s.send(SinkInput::Record(now.record));
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = rx.changed() => if r.is_err() { break },
        }
    }
    // Cancelled, or the engine is gone: the sinks finish (EOS to files) and end.
    for s in &sinks {
        let _ = s.send(SinkInput::Stop);
    }
}

/// The running output pipeline as the intake sees it.
struct Running {
    input: OutputInput,
    failed: bool,
}

async fn run(
    mut rx: mpsc::Receiver<RtpPacket>,
    output: OutputControl,
    mut events: mpsc::UnboundedReceiver<OutputEvent>,
    sinks: Vec<SinkHandle>,
    counters: Arc<Counters>,
    (stats_tx, kf_tx): (watch::Sender<VideoStats>, watch::Sender<u64>),
    cancel: CancellationToken,
) {
    // Packets flowing but nothing decoded for this long: ask for a key frame (again).
    const STARVED: Duration = Duration::from_secs(1);
    let mut decoded_seen = (0u64, tokio::time::Instant::now());
    let mut last_error: Option<String> = None;
    let mut current: Option<Running> = None;
    let mut lost_before = 0u64; // losses counted by pipelines already torn down
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut retry_after: Option<tokio::time::Instant> = None;
    'intake: loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                let lost = lost_before + current.as_ref().map_or(0, |r| output::jitter_losses(&r.input.jitterbuffer));
                let decoded = counters.frames_decoded.load(Ordering::Relaxed);
                if decoded != decoded_seen.0 {
                    decoded_seen = (decoded, tokio::time::Instant::now());
                } else if current.is_some() && decoded_seen.1.elapsed() > STARVED {
                    counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    kf_tx.send_modify(|n| *n += 1);
                    decoded_seen.1 = tokio::time::Instant::now();
                }
                stats_tx.send_replace(collect(&counters, &sinks, lost, last_error.as_deref()));
            }
            Some(ev) = events.recv() => match ev {
                OutputEvent::Failed { run, text } => {
                    last_error = Some(text);
                    if let Some(r) = current.as_mut().filter(|r| r.input.run == run) {
                        r.failed = true;
                    }
                }
            },
            pkt = rx.recv() => {
                let Some(first) = pkt else { break };
                // What else is already queued (the rest of a frame's packets) goes in with it, as
                // one buffer list: one wake-up of the pipeline's input thread per burst instead of
                // one per packet.
                let mut batch = Vec::with_capacity(8);
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let mut list = gst::BufferList::new_sized(batch.len());
                // One clock reading per burst (the pipeline clock and the wall clock); each
                // packet's stamp is that minus its own age.
                let mut clock_now: Option<(gst::ClockTime, std::time::Instant)> = None;
                for pkt in batch {
                    counters.packets_in.fetch_add(1, Ordering::Relaxed);
                    let key = StreamKey { codec: pkt.codec, payload_type: pkt.payload_type, clock_rate: pkt.clock_rate };
                    let stale = current.as_ref().is_some_and(|r| r.input.key != key || r.failed);
                    if stale && let Some(r) = current.take() {
                        push_list(&r, std::mem::replace(&mut list, gst::BufferList::new()), &counters);
                        lost_before += output::jitter_losses(&r.input.jitterbuffer);
                        output.stop();
                        counters.rebuilds.fetch_add(1, Ordering::Relaxed);
                        retry_after = Some(tokio::time::Instant::now() + Duration::from_millis(500));
                    }
                    if current.is_none() {
                        // A new pipeline has its own running time.
                        clock_now = None;
                        if retry_after.is_some_and(|t| tokio::time::Instant::now() < t) {
                            counters.packets_dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        decoded_seen.1 = tokio::time::Instant::now();
                        // Built on the control thread; packets wait in the channel meanwhile.
                        let built = tokio::select! {
                            _ = cancel.cancelled() => break 'intake,
                            b = output.build(key) => b,
                        };
                        match built {
                            Ok(input) => current = Some(Running { input, failed: false }),
                            Err(e) => {
                                tracing::error!("video output: {e}");
                                last_error = Some(e.to_string());
                                retry_after = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                                counters.packets_dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        }
                    }
                    let mut buf = gst::Buffer::from_slice(pkt.data);
                    // Arrival time in the pipeline's clock (what `do-timestamp` would stamp for a
                    // single push; in a list only the first buffer would get it).
                    if let (Some(r), Some(b)) = (&current, buf.get_mut()) {
                        if clock_now.is_none() {
                            clock_now = r
                                .input
                                .src
                                .current_running_time()
                                .map(|t| (t, std::time::Instant::now()));
                        }
                        if let Some((now, wall)) = clock_now {
                            let age = gst::ClockTime::from_nseconds(
                                u64::try_from(wall.saturating_duration_since(pkt.arrival).as_nanos())
                                    .unwrap_or(0),
                            );
                            b.set_dts(now.saturating_sub(age));
                        }
                    }
                    match list.get_mut() {
                        Some(l) => l.add(buf),
                        None => {
                            counters.packets_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if let Some(r) = &current {
                    push_list(r, list, &counters);
                }
            }
        }
    }
    // Drain: sinks finish on the same cancel token (EOS to files); stop the decoder side.
    drop(current.take());
    output.shutdown().await;
    while let Ok(ev) = events.try_recv() {
        let OutputEvent::Failed { text, .. } = ev;
        last_error = Some(text);
    }
    let lost = lost_before;
    stats_tx.send_replace(collect(&counters, &sinks, lost, last_error.as_deref()));
}

/// At most this many queued packets are pushed together.
const MAX_BATCH: usize = 64;

/// Pushes a burst of RTP packets into the running pipeline, or drops (and counts) all of them
/// when its input is full or down.
fn push_list(r: &Running, list: gst::BufferList, counters: &Counters) {
    let n = list.len() as u64;
    if n == 0 {
        return;
    }
    let full = r.input.src.property::<u64>("current-level-buffers") >= output::INPUT_DEPTH;
    if full || r.input.src.push_buffer_list(list).is_err() {
        counters.packets_dropped.fetch_add(n, Ordering::Relaxed);
    }
}

fn collect(c: &Counters, sinks: &[SinkHandle], lost: u64, last_error: Option<&str>) -> VideoStats {
    let sinks: Vec<SinkStatus> = sinks
        .iter()
        .map(|s| {
            let report = s.report.borrow();
            SinkStatus {
                label: s.label.clone(),
                running: report.running,
                waiting: report.waiting,
                frames_in: s.counters.pushed.load(Ordering::Relaxed),
                frames_out: s.counters.rendered.load(Ordering::Relaxed),
                dropped: s.counters.dropped.load(Ordering::Relaxed),
                restarts: s.counters.restarts.load(Ordering::Relaxed),
                clients: s.counters.clients.load(Ordering::Relaxed),
                last_error: report.last_error.clone(),
                file: report.file.clone(),
                armed: report.armed,
            }
        })
        .collect();
    let frames_in = c.frames_decoded.load(Ordering::Relaxed);
    let frames_out = sinks.iter().map(|s| s.frames_out).sum();
    let frames_dropped = sinks.iter().map(|s| s.dropped).sum();
    let sum = c.latency_us_sum.load(Ordering::Relaxed);
    VideoStats {
        packets_in: c.packets_in.load(Ordering::Relaxed),
        packets_dropped: c.packets_dropped.load(Ordering::Relaxed),
        packets_lost: lost,
        frames_in,
        frames_out,
        frames_dropped,
        decode_errors: c.decode_errors.load(Ordering::Relaxed),
        latency_ms: c.latency_us_last.load(Ordering::Relaxed) as f32 / 1000.0,
        latency_ms_mean: if frames_in > 0 {
            sum as f32 / frames_in as f32 / 1000.0
        } else {
            0.0
        },
        rebuilds: c.rebuilds.load(Ordering::Relaxed),
        keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
        sinks,
        last_error: last_error.map(str::to_owned),
    }
}
