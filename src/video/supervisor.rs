//! One thread per configured sink: the sink's supervisor owns its pipeline and everything about
//! it that changes (the built pipeline, its backoff, the last error, the file being written,
//! whether it runs), and is reached only through its [`SinkInput`] channel. Blocking GStreamer
//! calls (building, state changes, waiting for end-of-stream) happen on this thread, never on
//! the async workers that carry RTP, the engine and WebRTC.
//!
//! The frame fan-out (a GStreamer streaming thread of the output pipeline) holds one [`SinkFeed`]
//! per sink: the frame-side state (timestamps offset, the key frame wait of a stored stream, the
//! frames held while a recorder starts) lives there, owned by that thread. The supervisor hands
//! the feed its running pipeline's entry point through a `watch` ([`Attachment`]); the feed
//! tells the supervisor about the received stream's caps through the supervisor's channel. What
//! the stats read is atomics ([`SinkCounters`]) and the supervisor's [`SinkReport`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{oneshot, watch};

use super::config::SinkConfig;
use super::elements::{self, VideoError};
use super::sinks::{
    BuiltSink, Darkness, ShmPath, actual_shm_path, build_sink_for, follow_darkness,
    prepare_shm_socket,
};

/// Frame counts of one sink, written by the fan-out and GStreamer's threads, read by the stats.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    /// Frames handed to this sink.
    pub(crate) pushed: AtomicU64,
    /// Frames that reached the sink element.
    pub(crate) rendered: AtomicU64,
    /// Frames dropped because this sink was behind (its queue was full).
    pub(crate) dropped: AtomicU64,
    /// Times the sink was rebuilt after failing.
    pub(crate) restarts: AtomicU64,
    /// Readers connected (shm only).
    pub(crate) clients: AtomicU64,
}

/// What a sink's supervisor says about its sink; the supervisor is its only writer.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkReport {
    /// The pipeline is running.
    pub(crate) running: bool,
    /// Waiting for the first received frame or the record key (not a failure).
    pub(crate) waiting: bool,
    /// A recorder idle until the record key (`on_key = true`).
    pub(crate) armed: bool,
    /// The last failure, explained.
    pub(crate) last_error: Option<String>,
    /// Path of the file being written (file sink).
    pub(crate) file: Option<PathBuf>,
}

/// A running sink pipeline's entry point, handed to the frame fan-out.
#[derive(Clone)]
pub(crate) struct Attachment {
    src: gst_app::AppSrc,
    /// Arrival of the first frame stored by this run (a recording's timestamps count from it);
    /// set once by whichever feed stores the first frame, so an output rebuild mid-recording
    /// keeps the timeline.
    rec_base: Arc<OnceLock<Instant>>,
}

/// What reaches a sink's supervisor.
pub(crate) enum SinkInput {
    /// A message from the bus of the pipeline built as `run` (older runs' are ignored).
    Bus { run: u64, msg: gst::Message },
    /// The received stream's caps changed (stored-stream sinks are built for them).
    StreamCaps(gst::Caps),
    /// The engine's record key.
    Record(bool),
    /// Finish (end-of-stream to files) and end the thread.
    Stop,
}

/// The fan-out's handle to one sink: cloned into every output pipeline build.
#[derive(Clone)]
pub(crate) struct SinkPort {
    /// Takes the received (pre-decoder) stream instead of decoded frames.
    pub(crate) encoded: bool,
    /// Frames that may wait in the sink's input (see [`SinkConfig::queue_depth`]).
    depth: u64,
    counters: Arc<SinkCounters>,
    attached: watch::Receiver<Option<Attachment>>,
    supervisor: cb::Sender<SinkInput>,
}

impl SinkPort {
    /// A fresh frame-side state for one output pipeline.
    pub(crate) fn feed(&self) -> SinkFeed {
        SinkFeed {
            port: self.clone(),
            src: None,
            ts_offset: None,
            waiting_key: true,
            last_key_request: None,
            pending: Vec::new(),
            stream_caps: None,
        }
    }
}

/// A running sink supervisor, as the video edge keeps it.
pub(crate) struct SinkHandle {
    /// Where the sink is reached.
    pub(crate) input: cb::Sender<SinkInput>,
    /// Its counters.
    pub(crate) counters: Arc<SinkCounters>,
    /// Its report.
    pub(crate) report: watch::Receiver<SinkReport>,
    /// Its label.
    pub(crate) label: String,
    /// Fires when the thread has ended (however it ends).
    pub(crate) done: oneshot::Receiver<()>,
}

/// Sends `()` on drop: the supervisor's end, on return or panic.
struct DoneOnDrop(Option<oneshot::Sender<()>>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the supervisor thread of the sink `cfg`.
pub(crate) fn spawn(
    cfg: SinkConfig,
    dark: Arc<Darkness>,
    first_backoff: Duration,
) -> Result<(SinkPort, SinkHandle), VideoError> {
    let label = cfg.label();
    let (input, inbox) = cb::unbounded();
    let (attach_tx, attached) = watch::channel(None);
    let (report_tx, report) = watch::channel(SinkReport {
        // From the start: it cannot run before the first received frame.
        waiting: cfg.wants_encoded() || cfg.on_key(),
        armed: cfg.on_key(),
        ..SinkReport::default()
    });
    let counters = Arc::new(SinkCounters::default());
    let (done_tx, done) = oneshot::channel();
    let port = SinkPort {
        encoded: cfg.wants_encoded(),
        depth: cfg.queue_depth(),
        counters: counters.clone(),
        attached,
        supervisor: input.clone(),
    };
    let sup = Supervisor {
        label: label.clone(),
        cfg,
        dark,
        inbox,
        me: input.clone(),
        attach: attach_tx,
        report: report_tx,
        counters: counters.clone(),
        run: 0,
        record: false,
        stream: None,
        stopping: false,
    };
    std::thread::Builder::new()
        .name(format!("video-sink-{}", thread_tag(&label)))
        .spawn(move || {
            let _done = DoneOnDrop(Some(done_tx));
            sup.supervise(first_backoff);
        })
        .map_err(|e| VideoError::Pipeline(format!("{label}: cannot start its thread: {e}")))?;
    Ok((
        port,
        SinkHandle {
            input,
            counters,
            report,
            label,
            done,
        },
    ))
}

/// Thread names are at most 15 bytes on Linux: the sink kind is enough.
fn thread_tag(label: &str) -> &str {
    label.split(':').next().unwrap_or("sink")
}

/// The supervisor: owns the sink's pipeline and state (see the module docs).
struct Supervisor {
    label: String,
    cfg: SinkConfig,
    dark: Arc<Darkness>,
    inbox: cb::Receiver<SinkInput>,
    /// Its own inbox, for the bus handlers of the pipelines it builds.
    me: cb::Sender<SinkInput>,
    attach: watch::Sender<Option<Attachment>>,
    report: watch::Sender<SinkReport>,
    counters: Arc<SinkCounters>,
    /// Pipelines built so far (bus messages carry it).
    run: u64,
    /// The record key as last heard.
    record: bool,
    /// The received stream's caps as last heard.
    stream: Option<gst::Caps>,
    /// A stop was asked for.
    stopping: bool,
}

/// Why a running sink ended.
enum Ended {
    /// Stop asked (finished in order).
    Stopped,
    /// The record key went off (the file finalised).
    RecordOff,
    /// Failed, or a codec change needs a new file.
    Failed(VideoError),
}

impl Supervisor {
    /// Keeps the sink running: builds it, watches its bus, and on failure reports the explained
    /// error and rebuilds it after a backoff (doubling up to 30 s, reset after a minute of
    /// health).
    fn supervise(mut self, first_backoff: Duration) {
        let mut backoff = first_backoff;
        let mut failed_before = false;
        loop {
            if self.cfg.on_key() {
                // Idle (a state, not a failure) until the record key is on.
                self.report.send_modify(|r| {
                    r.armed = true;
                    r.waiting = true;
                });
                if !self.wait_until(|s| s.record) {
                    return;
                }
                self.report.send_modify(|r| {
                    r.armed = false;
                    r.waiting = false;
                });
            }
            if failed_before {
                self.counters.restarts.fetch_add(1, Ordering::Relaxed);
            }
            let stream = if self.cfg.wants_encoded() {
                // Built for the received codec: wait until the first frame tells it.
                self.report.send_modify(|r| r.waiting = true);
                if !self.wait_until(|s| s.stream.is_some()) {
                    return;
                }
                self.report.send_modify(|r| r.waiting = false);
                self.stream.clone()
            } else {
                None
            };
            let shm_before = match &self.cfg {
                SinkConfig::Shm { socket, .. } => {
                    Some(prepare_shm_socket(std::path::Path::new(socket)))
                }
                _ => None,
            };
            let started = Instant::now();
            let failure = match build_sink_for(&self.cfg, true, stream.as_ref()) {
                Ok(built) => {
                    follow_darkness(&built, self.dark.clone());
                    let ended = self.run_one(&built, shm_before);
                    self.attach.send_replace(None);
                    self.report.send_modify(|r| r.running = false);
                    let _ = built.pipeline.set_state(gst::State::Null);
                    match ended {
                        Ended::Stopped => return,
                        Ended::RecordOff => {
                            failed_before = false;
                            continue;
                        }
                        Ended::Failed(err) => err,
                    }
                }
                Err(err) => err,
            };
            self.fail(&failure);
            failed_before = true;
            if started.elapsed() > Duration::from_secs(60) {
                backoff = first_backoff;
            }
            if !self.wait_for(backoff) {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Notes what an input says; true when it is a bus message of the current run, which it
    /// hands back.
    fn note(&mut self, input: SinkInput) -> Option<gst::Message> {
        match input {
            SinkInput::Bus { run, msg } if run == self.run => return Some(msg),
            SinkInput::Bus { .. } => {}
            SinkInput::StreamCaps(c) => self.stream = Some(c),
            SinkInput::Record(on) => self.record = on,
            SinkInput::Stop => self.stopping = true,
        }
        None
    }

    /// Waits until `cond` holds (true) or a stop is asked for (false).
    fn wait_until(&mut self, cond: impl Fn(&Self) -> bool) -> bool {
        while !cond(self) {
            if self.stopping {
                return false;
            }
            match self.inbox.recv() {
                Ok(i) => {
                    self.note(i);
                }
                Err(_) => return false,
            }
        }
        !self.stopping
    }

    /// Waits `d` (the backoff); false when a stop came meanwhile.
    fn wait_for(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while !self.stopping {
            match self.inbox.recv_deadline(until) {
                Ok(i) => {
                    self.note(i);
                }
                Err(cb::RecvTimeoutError::Timeout) => return true,
                Err(cb::RecvTimeoutError::Disconnected) => return false,
            }
        }
        false
    }

    fn fail(&self, err: &VideoError) {
        tracing::warn!(sink = %self.label, "video sink failed, restarting with backoff: {err}");
        self.report
            .send_modify(|r| r.last_error = Some(err.to_string()));
    }

    /// Runs a built sink until it fails, the record key goes off, or a stop (after EOS so files
    /// are finalised).
    fn run_one(&mut self, built: &BuiltSink, shm_before: Option<ShmPath>) -> Ended {
        self.run += 1;
        let Some(bus) = built.pipeline.bus() else {
            return Ended::Failed(VideoError::Pipeline("sink pipeline has no bus".into()));
        };
        let run = self.run;
        let me = self.me.clone();
        forward_bus(&bus, move |msg| {
            let _ = me.send(SinkInput::Bus { run, msg });
        });
        // Count what reaches the sink element.
        if let Some(pad) = &built.count_pad {
            let c = self.counters.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                c.rendered.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        if built.sink.find_property("socket-path").is_some() {
            let c = self.counters.clone();
            built.sink.connect("client-connected", false, move |_| {
                c.clients.fetch_add(1, Ordering::Relaxed);
                None
            });
            let c = self.counters.clone();
            built.sink.connect("client-disconnected", false, move |_| {
                let _ = c
                    .clients
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                None
            });
        }
        self.report.send_modify(|r| r.file = built.file.clone());
        let factory = built.sink.factory().map(|f| f.name().to_string());
        if built.pipeline.set_state(gst::State::Playing).is_err() {
            return Ended::Failed(self.first_error(factory.as_deref()).unwrap_or_else(|| {
                VideoError::Pipeline(format!("{}: could not start", self.label))
            }));
        }
        let built_codec = built.src.caps().as_ref().and_then(codec_of);
        // A stored stream starts on a key frame, its timestamps from its first frame (the feed
        // sees a new attachment and starts over).
        self.attach.send_replace(Some(Attachment {
            src: built.src.clone(),
            rec_base: Arc::default(),
        }));
        // Before `running`: a stats snapshot that shows it running also shows where it listens.
        if let Some(before) = shm_before {
            let configured: String = built.sink.property("socket-path");
            if let Some(actual) = actual_shm_path(std::path::Path::new(&configured), before) {
                // shmsink moves aside silently; a reader on the configured path would get nothing.
                let msg = format!(
                    "{}: {configured} is in use by another process ({before:?}); this sink \
                     listens on {} instead — point the reader there or stop the other writer",
                    self.label,
                    actual.display()
                );
                tracing::error!(sink = %self.label, "{msg}");
                self.report.send_modify(|r| r.last_error = Some(msg));
            }
        }
        self.report.send_modify(|r| r.running = true);
        tracing::info!(sink = %self.label, "video sink running");
        loop {
            let Ok(input) = self.inbox.recv() else {
                self.finish(built);
                return Ended::Stopped;
            };
            let stream_before = self.stream.as_ref().and_then(codec_of);
            if let Some(msg) = self.note(input) {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let src_factory = element_factory(&msg);
                        return Ended::Failed(elements::explain_runtime_error(
                            &self.label,
                            src_factory.as_deref().or(factory.as_deref()),
                            &e.error().to_string(),
                            &e.debug().map(|d| d.to_string()).unwrap_or_default(),
                        ));
                    }
                    gst::MessageView::Eos(_) => {
                        return Ended::Failed(VideoError::Pipeline(format!(
                            "{}: ended unexpectedly",
                            self.label
                        )));
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::debug!(sink = %self.label, "warning: {}", w.error());
                    }
                    _ => {}
                }
                continue;
            }
            if self.stopping {
                self.finish(built);
                return Ended::Stopped;
            }
            if self.cfg.on_key() && !self.record {
                // The record key is off: close the file properly (muxer index written).
                self.finish(built);
                tracing::info!(sink = %self.label, "recording stopped by the record key");
                return Ended::RecordOff;
            }
            let stream_now = self.stream.as_ref().and_then(codec_of);
            if self.cfg.wants_encoded() && stream_now != stream_before && stream_now != built_codec
            {
                // Close this file properly and start a new one for the new codec.
                self.finish(built);
                return Ended::Failed(VideoError::Pipeline(format!(
                    "{}: the received codec changed; starting a new recording",
                    self.label
                )));
            }
        }
    }

    /// Ends the stream so muxers write their indexes, waiting at most 3 s, then stops the
    /// pipeline.
    fn finish(&mut self, built: &BuiltSink) {
        self.attach.send_replace(None);
        let _ = built.src.end_of_stream();
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(input) = self.inbox.recv_deadline(until) {
            if let Some(msg) = self.note(input)
                && matches!(
                    msg.view(),
                    gst::MessageView::Eos(_) | gst::MessageView::Error(_)
                )
            {
                break;
            }
        }
        let _ = built.pipeline.set_state(gst::State::Null);
    }

    /// The first error of the current run (after a failed state change), explained; waits at
    /// most 500 ms for it.
    fn first_error(&mut self, factory: Option<&str>) -> Option<VideoError> {
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(input) = self.inbox.recv_deadline(until) {
            if let Some(msg) = self.note(input)
                && let gst::MessageView::Error(e) = msg.view()
            {
                let src_factory = element_factory(&msg);
                return Some(elements::explain_runtime_error(
                    &self.label,
                    src_factory.as_deref().or(factory),
                    &e.error().to_string(),
                    &e.debug().map(|d| d.to_string()).unwrap_or_default(),
                ));
            }
        }
        None
    }
}

/// The factory name of the element that posted `msg`.
fn element_factory(msg: &gst::Message) -> Option<String> {
    msg.src()
        .and_then(|s| s.downcast_ref::<gst::Element>())
        .and_then(|e| e.factory())
        .map(|f| f.name().to_string())
}

/// The media type of `caps` (`video/x-vp8`, ...).
fn codec_of(caps: &gst::Caps) -> Option<String> {
    caps.structure(0).map(|s| s.name().to_string())
}

/// Hands every error, warning and end-of-stream posted on `bus` to `to` (on the posting thread,
/// so `to` must not block), and drops every message (nothing accumulates on an unread bus).
pub(crate) fn forward_bus(bus: &gst::Bus, to: impl Fn(gst::Message) + Send + Sync + 'static) {
    bus.set_sync_handler(move |_, msg| {
        if matches!(
            msg.type_(),
            gst::MessageType::Error | gst::MessageType::Warning | gst::MessageType::Eos
        ) {
            to(msg.clone());
        }
        gst::BusSyncReply::Drop
    });
}

/// At most this many frames are held while an `encoded` sink starts (≈ 4 s at 30 fps).
const PENDING_MAX: usize = 120;

/// How often an `encoded` sink waiting for a key frame may ask the sender for one.
const KEY_REQUEST_EVERY: Duration = Duration::from_millis(500);

/// One sink as the frame fan-out sees it, owned by the output pipeline's streaming thread.
pub(crate) struct SinkFeed {
    port: SinkPort,
    /// The running pipeline's entry point (None while down or restarting).
    src: Option<Attachment>,
    /// Last decoded frame's timestamp pushed into the current sink pipeline (None: the pad
    /// offset mapping it onto this pipeline's clock is still to be taken).
    ts_offset: Option<gst::ClockTime>,
    /// An `encoded` sink drops delta frames until a key frame (start, or after a drop).
    waiting_key: bool,
    /// When a key frame was last asked for on this sink's behalf (rate limit).
    last_key_request: Option<Instant>,
    /// Received frames held (from the last key frame on) while the pipeline is being built, so
    /// a recording does not lose its first group of pictures to the start-up time.
    pending: Vec<(gst::Buffer, Instant)>,
    /// Caps of the received stream as last told to the supervisor.
    stream_caps: Option<gst::Caps>,
}

impl SinkFeed {
    /// Picks up a new (or no) running pipeline from the supervisor; a new one starts over
    /// (timestamp offset re-taken, a stored stream waits for a key frame).
    fn refresh(&mut self) {
        if self.port.attached.has_changed().unwrap_or(false) {
            self.src = self.port.attached.borrow_and_update().clone();
            self.ts_offset = None;
            self.waiting_key = true;
        }
    }

    /// Hands a decoded frame to this sink if it is up (never blocks; drops when full).
    pub(crate) fn push(&mut self, buffer: &gst::Buffer, caps: &gst::Caps) {
        self.refresh();
        let Some(att) = &self.src else { return };
        let src = &att.src;
        let c = &self.port.counters;
        c.pushed.fetch_add(1, Ordering::Relaxed);
        // Full: this sink is behind; drop the frame here rather than wait.
        if src.property::<u64>("current-level-buffers") >= self.port.depth {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if src.caps().as_ref() != Some(caps) {
            src.set_caps(Some(caps));
        }
        // The frame itself (a reference, never a copy sharing its memory: the decoder's buffer
        // pool would then find the memory shared on release, free it and allocate a fresh frame
        // — page faults on every frame). Its timestamps are the output pipeline's running time;
        // a pad offset maps them onto this pipeline's clock, re-taken when they jump back (the
        // output pipeline was rebuilt).
        if let Some(pts) = buffer.pts() {
            let jumped = self.ts_offset.is_none_or(|last| pts < last);
            if jumped
                && let (Some(now), Some(pad)) = (src.current_running_time(), src.static_pad("src"))
            {
                let off = i64::try_from(now.nseconds()).unwrap_or(i64::MAX)
                    - i64::try_from(pts.nseconds()).unwrap_or(i64::MAX);
                pad.set_offset(off);
            }
            self.ts_offset = Some(pts);
        }
        let _ = src.push_buffer(buffer.clone());
    }

    /// Hands a received (encoded) frame to this sink if it is up, never blocking. Returns true
    /// when a key frame should be asked of the sender (waiting for one, rate-limited).
    pub(crate) fn push_encoded(&mut self, buffer: &gst::Buffer, caps: &gst::Caps) -> bool {
        let arrival = Instant::now();
        if self.stream_caps.as_ref() != Some(caps) {
            if self.stream_caps.as_ref().and_then(codec_of) != codec_of(caps) {
                self.pending.clear();
            }
            self.stream_caps = Some(caps.clone());
            let _ = self
                .port
                .supervisor
                .send(SinkInput::StreamCaps(caps.clone()));
        }
        self.refresh();
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let Some(att) = self.src.clone() else {
            // Starting (or restarting): hold the frames from the last key frame on.
            if key {
                self.pending.clear();
            }
            if (key || !self.pending.is_empty()) && self.pending.len() < PENDING_MAX {
                self.pending.push((buffer.clone(), arrival));
            } else {
                self.pending.clear();
            }
            return false;
        };
        if att.src.caps().as_ref() != Some(caps) {
            att.src.set_caps(Some(caps));
        }
        let held = std::mem::take(&mut self.pending);
        let mut want_key = false;
        for (b, at) in held
            .iter()
            .chain(std::iter::once(&(buffer.clone(), arrival)))
        {
            want_key |= self.write_encoded(&att, b, *at);
        }
        want_key
    }

    /// One frame into a running `encoded` sink: starts on a key frame, resumes on one after a
    /// drop, stamps the arrival time.
    fn write_encoded(&mut self, att: &Attachment, buffer: &gst::Buffer, arrival: Instant) -> bool {
        if self.waiting_key {
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return self.key_request_due();
            }
            self.waiting_key = false;
        }
        let c = &self.port.counters;
        c.pushed.fetch_add(1, Ordering::Relaxed);
        if att.src.property::<u64>("current-level-buffers") >= self.port.depth {
            // A gap would leave undecodable delta frames in the file: resume on a key frame.
            c.dropped.fetch_add(1, Ordering::Relaxed);
            self.waiting_key = true;
            return self.key_request_due();
        }
        let base = *att.rec_base.get_or_init(|| arrival);
        let pts = gst::ClockTime::from_nseconds(
            u64::try_from(arrival.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX),
        );
        let mut buf = buffer.copy();
        {
            // Muxers need PTS and DTS on every frame (no B-frames in a live stream).
            let b = buf.make_mut();
            b.set_pts(pts);
            b.set_dts(pts);
            b.set_duration(gst::ClockTime::NONE);
        }
        let _ = att.src.push_buffer(buf);
        false
    }

    fn key_request_due(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_key_request
            .is_some_and(|t| now.duration_since(t) < KEY_REQUEST_EVERY)
        {
            return false;
        }
        self.last_key_request = Some(now);
        true
    }
}
