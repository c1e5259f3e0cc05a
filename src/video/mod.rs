//! Received video → GStreamer → sinks (v4l2loopback, NDI, shm, file, window, custom), a terminal
//! preview, and video input for video-to-video pipelines.
//!
//! Hook for the transport: [`start`] returns the bounded `Sender<RtpPacket>` the transport feeds
//! with every RTP packet of the generated video, plus a [`VideoHandle`] (stats, preview, stop).
//! The output pipeline is built when the first packet arrives (its codec/payload type/clock rate
//! give the caps) and rebuilt if they change or the decoder fails. Each sink is its own small
//! pipeline under a supervisor, so one failing sink never stops the others (see [`sinks`]).

pub mod change_probe;
pub mod config;
pub mod elements;
pub mod input;
pub mod output;
pub mod preview;
pub use scope_deck_core::video::reduce;
pub mod scope_api;
pub use scope_deck_core::video::{SinkStatus, VideoStats};
pub mod sinks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::transport::types::RtpPacket;
pub use elements::VideoError;
use output::{Counters, FrameTaps, OutputPipeline, PreviewSpec, StreamKey};
pub use preview::{PreviewFrame, PreviewWidget};
use sinks::SinkSlot;

/// Capacity of the RTP packet channel (≈ 1 s of 720p video at 2–3 Mbit/s in 1200-byte packets).
pub const RTP_CAPACITY: usize = 512;

/// A running video edge.
pub struct VideoHandle {
    /// Latest statistics.
    pub stats: watch::Receiver<VideoStats>,
    /// Latest preview frame (None until the first one).
    pub preview: watch::Receiver<Option<Arc<PreviewFrame>>>,
    /// When the received picture last changed for good (the change probe): the engine turns it
    /// into a glass-to-glass latency sample.
    pub changes: watch::Receiver<Option<std::time::Instant>>,
    /// Counts key-frame requests: the decoder has no valid reference (start of stream, loss).
    /// HOOK for the transport: on every change, send RTCP PLI for the video track.
    pub keyframe_requests: watch::Receiver<u64>,
    /// What the engine decides for the local outputs (blackout/fade level, the record key);
    /// the engine writes it, the sinks follow.
    pub control: watch::Sender<scope_deck_core::stage::OutputControl>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    sinks: Vec<JoinHandle<()>>,
}

impl VideoHandle {
    /// Stops everything in order: sinks get end-of-stream (files are finalised), then the output
    /// pipeline is torn down. Returns when all of it is done.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for s in self.sinks {
            let _ = s.await;
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
    let slots: Arc<Vec<Arc<SinkSlot>>> = Arc::new(
        cfg.sinks
            .iter()
            .map(|s| {
                Arc::new(SinkSlot {
                    label: s.label(),
                    encoded: s.wants_encoded(),
                    // From the start: it cannot run before the first received frame.
                    waiting: std::sync::atomic::AtomicBool::new(s.wants_encoded() || s.on_key()),
                    armed: std::sync::atomic::AtomicBool::new(s.on_key()),
                    dark: dark.clone(),
                    ..SinkSlot::default()
                })
            })
            .collect(),
    );
    let backoff = Duration::from_millis(cfg.restart_backoff_ms);
    let sinks = cfg
        .sinks
        .iter()
        .zip(slots.iter())
        .map(|(c, s)| {
            tokio::spawn(sinks::supervise(
                c.clone(),
                s.clone(),
                backoff,
                cancel.clone(),
                control_rx.clone(),
            ))
        })
        .collect();
    tokio::spawn(follow_control(control_rx, dark, cancel.clone()));
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
    let task = tokio::spawn(run(
        rx,
        cfg.jitter_ms,
        slots,
        FrameTaps {
            preview,
            changes: changes_tx,
        },
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
            sinks,
        },
    ))
}

/// Mirrors the engine's output level into the atomic every live sink reads per frame.
async fn follow_control(
    mut rx: watch::Receiver<scope_deck_core::stage::OutputControl>,
    dark: Arc<sinks::Darkness>,
    cancel: CancellationToken,
) {
    loop {
        let level = rx.borrow_and_update().level;
        dark.set(1.0 - level);
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

struct Running {
    out: OutputPipeline,
    failed: Arc<AtomicBool>,
    bus_task: JoinHandle<()>,
}

impl Running {
    fn stop(self) {
        self.bus_task.abort();
        let _ = self.out.pipeline.set_state(gst::State::Null);
    }
}

async fn run(
    mut rx: mpsc::Receiver<RtpPacket>,
    jitter_ms: u32,
    slots: Arc<Vec<Arc<SinkSlot>>>,
    taps: FrameTaps,
    (stats_tx, kf_tx): (watch::Sender<VideoStats>, watch::Sender<u64>),
    cancel: CancellationToken,
) {
    // Packets flowing but nothing decoded for this long: ask for a key frame (again).
    const STARVED: Duration = Duration::from_secs(1);
    let mut decoded_seen = (0u64, tokio::time::Instant::now());
    let counters = Arc::new(Counters::default());
    let last_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let mut current: Option<Running> = None;
    let mut lost_before = 0u64; // losses counted by pipelines already torn down
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut retry_after: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                let lost = lost_before + current.as_ref().map_or(0, |r| output::jitter_losses(&r.out.jitterbuffer));
                let decoded = counters.frames_decoded.load(Ordering::Relaxed);
                if decoded != decoded_seen.0 {
                    decoded_seen = (decoded, tokio::time::Instant::now());
                } else if current.is_some() && decoded_seen.1.elapsed() > STARVED {
                    counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    kf_tx.send_modify(|n| *n += 1);
                    decoded_seen.1 = tokio::time::Instant::now();
                }
                stats_tx.send_replace(collect(&counters, &slots, lost, &last_error));
            }
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
                    let stale = current.as_ref().is_some_and(|r| r.out.key != key || r.failed.load(Ordering::Relaxed));
                    if stale && let Some(r) = current.take() {
                        push_list(&r, std::mem::replace(&mut list, gst::BufferList::new()), &counters);
                        lost_before += output::jitter_losses(&r.out.jitterbuffer);
                        r.stop();
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
                        match start_output(key, jitter_ms, &slots, &taps, &counters, &last_error, &kf_tx) {
                            Ok(r) => current = Some(r),
                            Err(e) => {
                                tracing::error!("video output: {e}");
                                if let Ok(mut g) = last_error.lock() { *g = Some(e.to_string()); }
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
                                .out
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
    if let Some(r) = current.take() {
        r.stop();
    }
    let lost = lost_before;
    stats_tx.send_replace(collect(&counters, &slots, lost, &last_error));
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
    let full = r.out.src.property::<u64>("current-level-buffers") >= output::INPUT_DEPTH;
    if full || r.out.src.push_buffer_list(list).is_err() {
        counters.packets_dropped.fetch_add(n, Ordering::Relaxed);
    }
}

fn start_output(
    key: StreamKey,
    jitter_ms: u32,
    slots: &Arc<Vec<Arc<SinkSlot>>>,
    taps: &FrameTaps,
    counters: &Arc<Counters>,
    last_error: &Arc<std::sync::Mutex<Option<String>>>,
    keyframes: &watch::Sender<u64>,
) -> Result<Running, VideoError> {
    let out = output::build(
        key,
        jitter_ms,
        slots.clone(),
        taps.clone(),
        counters.clone(),
        keyframes.clone(),
    )?;
    let bus = out
        .pipeline
        .bus()
        .ok_or_else(|| VideoError::Pipeline("output pipeline has no bus".into()))?;
    out.pipeline.set_state(gst::State::Playing).map_err(|_| {
        VideoError::Pipeline(format!("output pipeline for {key:?} could not start"))
    })?;
    tracing::info!(?key, "video output pipeline running");
    let failed = Arc::new(AtomicBool::new(false));
    let f = failed.clone();
    let c = counters.clone();
    let le = last_error.clone();
    let bus_task = tokio::spawn(async move {
        use futures::StreamExt;
        let mut stream = bus.stream();
        while let Some(msg) = stream.next().await {
            let from_decoder = msg
                .src()
                .is_some_and(|s| s.name().as_str() == "dec" || s.name().as_str() == "depay");
            match msg.view() {
                gst::MessageView::Warning(w) if from_decoder => {
                    c.decode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("video decode: {}", w.error());
                }
                gst::MessageView::Error(e) => {
                    if from_decoder {
                        c.decode_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let text = format!(
                        "video output pipeline failed ({}), rebuilding: {}",
                        msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                        e.error()
                    );
                    tracing::warn!("{text}");
                    if let Ok(mut g) = le.lock() {
                        *g = Some(text);
                    }
                    f.store(true, Ordering::Relaxed);
                    return;
                }
                _ => {}
            }
        }
    });
    Ok(Running {
        out,
        failed,
        bus_task,
    })
}

fn collect(
    c: &Counters,
    slots: &[Arc<SinkSlot>],
    lost: u64,
    last_error: &std::sync::Mutex<Option<String>>,
) -> VideoStats {
    let sinks: Vec<SinkStatus> = slots
        .iter()
        .map(|s| SinkStatus {
            label: s.label.clone(),
            running: s.running.load(Ordering::Relaxed),
            waiting: s.waiting.load(Ordering::Relaxed),
            frames_in: s.pushed.load(Ordering::Relaxed),
            frames_out: s.rendered.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            clients: s.clients.load(Ordering::Relaxed),
            last_error: s.last_error.lock().ok().and_then(|g| g.clone()),
            file: s.current_file.lock().ok().and_then(|g| g.clone()),
            armed: s.armed.load(Ordering::Relaxed),
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
        last_error: last_error.lock().ok().and_then(|g| g.clone()),
    }
}
