//! One small pipeline per configured sink (`appsrc ! convert ! <sink>`), fed with the
//! decoded frames of the output pipeline's tee — or, for recordings that store the stream as
//! received (`reencode = false`), with the depayloaded frames before the decoder
//! (`appsrc ! [h264parse] ! matroskamux|mp4mux ! filesink`, built once the codec is known and
//! started on a key frame).
//!
//! Why separate pipelines rather than tee branches ending in the sinks: a sink that errors inside
//! a shared pipeline returns a flow error through the tee and stops the decoder thread with it.
//! Here a failing sink only stops its own pipeline; the supervisor reports it and rebuilds it
//! with backoff while the session and the other sinks keep running. Frames are handed over by
//! reference (no copy) into the appsrc's own 2-frame queue, so a slow sink drops frames instead of
//! slowing the others.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio_util::sync::CancellationToken;

use super::config::SinkConfig;
use super::elements::{self, VideoError, make};

/// Live state of one sink, shared between its supervisor, the frame fan-out and the stats.
#[derive(Debug, Default)]
pub struct SinkSlot {
    /// Label for logs and the dashboard.
    pub label: String,
    /// The running pipeline's entry point (None while down or restarting).
    pub(crate) src: Mutex<Option<gst_app::AppSrc>>,
    /// Frames handed to this sink.
    pub pushed: AtomicU64,
    /// Frames that reached the sink element.
    pub rendered: AtomicU64,
    /// Frames dropped because this sink was behind (its queue was full).
    pub dropped: AtomicU64,
    /// Times the sink was rebuilt after failing.
    pub restarts: AtomicU64,
    /// Readers connected (shm only).
    pub clients: AtomicU64,
    /// The last failure, explained.
    pub last_error: Mutex<Option<String>>,
    /// Whether the pipeline is currently running.
    pub running: std::sync::atomic::AtomicBool,
    /// Waiting for the first received frame before it can be built (not a failure).
    pub waiting: std::sync::atomic::AtomicBool,
    /// Path of the file being written (file sink).
    pub current_file: Mutex<Option<PathBuf>>,
    /// Takes the received (pre-decoder) stream instead of decoded frames.
    pub encoded: bool,
    /// Caps of the received stream (`encoded` sinks are built for them).
    pub(crate) stream_caps: Mutex<Option<gst::Caps>>,
    /// Signalled when `stream_caps` changes codec.
    pub(crate) stream_changed: tokio::sync::Notify,
    /// An `encoded` sink drops delta frames until a key frame (start, or after a drop).
    pub(crate) waiting_key: std::sync::atomic::AtomicBool,
    /// When a key frame was last asked for on this sink's behalf (rate limit).
    pub(crate) last_key_request: Mutex<Option<std::time::Instant>>,
    /// Received frames held (from the last key frame on) while the pipeline is being built, so
    /// a recording does not lose its first group of pictures to the start-up time.
    pub(crate) pending: Mutex<Vec<(gst::Buffer, std::time::Instant)>>,
    /// Arrival of the first frame of the current recording: timestamps are arrival times
    /// relative to it.
    pub(crate) rec_base: Mutex<Option<std::time::Instant>>,
    /// Last decoded frame's timestamp pushed into the current sink pipeline (None: the pad
    /// offset mapping it onto this pipeline's clock is still to be taken).
    pub(crate) ts_offset: Mutex<Option<gst::ClockTime>>,
    /// The amount of black (f32 bits, 0 = picture, 1 = black) shared by every sink of the
    /// output: blackout and the master fade (see [`Darkness`]).
    pub(crate) dark: Arc<Darkness>,
    /// A recorder idle until the record key (`on_key = true`).
    pub armed: std::sync::atomic::AtomicBool,
}

/// The amount of black every live sink applies, written by the video edge when the engine's
/// [`scope_deck_core::stage::OutputControl`] changes and read once per frame (one atomic load).
#[derive(Debug, Default)]
pub struct Darkness(std::sync::atomic::AtomicU32);

impl Darkness {
    /// 0 = picture, 1 = black.
    pub fn set(&self, amount: f32) {
        let a = if amount.is_finite() {
            amount.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.0.store(a.to_bits(), Ordering::Relaxed);
    }

    /// The current amount of black.
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Name of the `videobalance` that darkens a live sink.
const MASTER: &str = "master";

/// Makes the sink's `videobalance` follow `dark`: checked on every frame before it is
/// processed (so a change shows on the next frame), the element's properties touched only when
/// the amount changed. At the defaults `videobalance` is in passthrough: no work per frame.
fn follow_darkness(built: &BuiltSink, dark: Arc<Darkness>) {
    let Some(balance) = built.pipeline.by_name(MASTER) else {
        return;
    };
    let Some(pad) = balance.static_pad("sink") else {
        return;
    };
    // NaN: nothing applied yet.
    let applied = std::sync::atomic::AtomicU32::new(f32::NAN.to_bits());
    let weak = balance.downgrade();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let want = dark.get();
        if f32::from_bits(applied.load(Ordering::Relaxed)) != want
            && let Some(b) = weak.upgrade()
        {
            // Luma towards 16 and chroma towards 128: video-range black.
            let keep = f64::from(1.0 - want);
            b.set_property("contrast", keep);
            b.set_property("saturation", keep);
            applied.store(want.to_bits(), Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
}

/// At most this many frames are held while an `encoded` sink starts (≈ 4 s at 30 fps).
const PENDING_MAX: usize = 120;

/// How often an `encoded` sink waiting for a key frame may ask the sender for one.
const KEY_REQUEST_EVERY: Duration = Duration::from_millis(500);

impl SinkSlot {
    /// Hands a decoded frame to this sink if it is up (never blocks; drops when full).
    pub(crate) fn push(&self, buffer: &gst::Buffer, caps: &gst::Caps) {
        let src = match self.src.lock() {
            Ok(g) => g.clone(),
            Err(_) => None,
        };
        let Some(src) = src else { return };
        self.pushed.fetch_add(1, Ordering::Relaxed);
        // Full: this sink is behind; drop the frame here rather than wait.
        if src.property::<u64>("current-level-buffers") >= self.depth() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
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
        if let Some(pts) = buffer.pts()
            && let Ok(mut g) = self.ts_offset.lock()
        {
            let jumped = g.is_none_or(|last| pts < last);
            if jumped
                && let (Some(now), Some(pad)) = (src.current_running_time(), src.static_pad("src"))
            {
                let off = i64::try_from(now.nseconds()).unwrap_or(i64::MAX)
                    - i64::try_from(pts.nseconds()).unwrap_or(i64::MAX);
                pad.set_offset(off);
            }
            *g = Some(pts);
        }
        let _ = src.push_buffer(buffer.clone());
    }

    /// Hands a received (encoded) frame to this sink if it is up, never blocking. Returns true
    /// when a key frame should be asked of the sender (waiting for one, rate-limited).
    pub(crate) fn push_encoded(&self, buffer: &gst::Buffer, caps: &gst::Caps) -> bool {
        let arrival = std::time::Instant::now();
        let codec = |c: &gst::Caps| c.structure(0).map(|s| s.name().to_string());
        if let Ok(mut g) = self.stream_caps.lock() {
            let changed = g.as_ref().map(codec) != Some(codec(caps));
            if g.as_ref() != Some(caps) {
                *g = Some(caps.clone());
            }
            if changed {
                if let Ok(mut p) = self.pending.lock() {
                    p.clear();
                }
                self.stream_changed.notify_one();
            }
        }
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let src = match self.src.lock() {
            Ok(g) => g.clone(),
            Err(_) => None,
        };
        let Some(src) = src else {
            // Starting (or restarting): hold the frames from the last key frame on.
            if let Ok(mut p) = self.pending.lock() {
                if key {
                    p.clear();
                }
                if (key || !p.is_empty()) && p.len() < PENDING_MAX {
                    p.push((buffer.clone(), arrival));
                } else {
                    p.clear();
                }
            }
            return false;
        };
        if src.caps().as_ref() != Some(caps) {
            src.set_caps(Some(caps));
        }
        let held = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let mut want_key = false;
        for (b, at) in held
            .iter()
            .chain(std::iter::once(&(buffer.clone(), arrival)))
        {
            want_key |= self.write_encoded(&src, b, *at);
        }
        want_key
    }

    /// One frame into a running `encoded` sink: starts on a key frame, resumes on one after a
    /// drop, stamps the arrival time.
    fn write_encoded(
        &self,
        src: &gst_app::AppSrc,
        buffer: &gst::Buffer,
        arrival: std::time::Instant,
    ) -> bool {
        if self.waiting_key.load(Ordering::Relaxed) {
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return self.key_request_due();
            }
            self.waiting_key.store(false, Ordering::Relaxed);
        }
        self.pushed.fetch_add(1, Ordering::Relaxed);
        if src.property::<u64>("current-level-buffers") >= self.depth() {
            // A gap would leave undecodable delta frames in the file: resume on a key frame.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.waiting_key.store(true, Ordering::Relaxed);
            return self.key_request_due();
        }
        let base = match self.rec_base.lock() {
            Ok(mut g) => *g.get_or_insert(arrival),
            Err(_) => arrival,
        };
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
        let _ = src.push_buffer(buf);
        false
    }

    fn key_request_due(&self) -> bool {
        let Ok(mut last) = self.last_key_request.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < KEY_REQUEST_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Frames that may wait for this sink: a recording keeps 2 s so it does not lose frames to a
    /// moment of CPU contention; live outputs keep 2 frames so they never lag.
    fn depth(&self) -> u64 {
        if self.label.starts_with("file:") {
            60
        } else {
            2
        }
    }
}

/// A built (not yet started) sink pipeline.
pub struct BuiltSink {
    /// The pipeline.
    pub pipeline: gst::Pipeline,
    /// Where frames go in.
    pub src: gst_app::AppSrc,
    /// The sink element (or the custom bin).
    pub sink: gst::Element,
    /// Where frames are counted as delivered (the encoder's input for recordings, whose sink
    /// receives muxed chunks rather than frames).
    pub count_pad: Option<gst::Pad>,
    /// Output file for a file sink.
    pub file: Option<PathBuf>,
}

/// Builds the pipeline for `cfg`. `check_device` = false skips the device-node check so that the
/// pipeline can be validated where the device cannot exist (tests, CI).
pub fn build_sink(cfg: &SinkConfig, check_device: bool) -> Result<BuiltSink, VideoError> {
    build_sink_for(cfg, check_device, None)
}

/// Like [`build_sink`]; a sink that stores the received stream (see
/// [`SinkConfig::wants_encoded`]) is built for `stream`, the received caps.
pub fn build_sink_for(
    cfg: &SinkConfig,
    check_device: bool,
    stream: Option<&gst::Caps>,
) -> Result<BuiltSink, VideoError> {
    elements::init()?;
    let pipeline = gst::Pipeline::with_name(&format!("sink-{}", cfg.label()));
    let src = gst_app::AppSrc::builder()
        .name("src")
        .is_live(true)
        .format(gst::Format::Time)
        // Frames come stamped (see `SinkSlot::push`); stamping here would write into a buffer
        // the other sinks share.
        .do_timestamp(false)
        .build();
    // appsrc is the sink's queue (its own streaming thread); `SinkSlot::push` bounds it.
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast()];
    let mut file = None;
    let mut count_pad = None;
    let raw_caps = |format: &str| {
        gst::Caps::builder("video/x-raw")
            .field("format", format)
            .build()
    };
    let sink = match cfg {
        SinkConfig::V4l2loopback { device, format } => {
            if check_device {
                elements::check_v4l2loopback(device)?;
            }
            let conv = make("videoconvert", "conv")?;
            let caps = make("capsfilter", "caps")?;
            caps.set_property("caps", raw_caps(format));
            let sink = make("v4l2sink", "sink")?;
            sink.set_property("device", device);
            sink.set_property("sync", false);
            chain.extend([conv, caps, sink.clone()]);
            sink
        }
        SinkConfig::Shm { socket, format } => {
            let conv = make("videoconvert", "conv")?;
            let caps = make("capsfilter", "caps")?;
            caps.set_property("caps", raw_caps(format));
            let sink = make("shmsink", "sink")?;
            sink.set_property("socket-path", socket);
            sink.set_property("wait-for-connection", false);
            sink.set_property("sync", false);
            // Room for several 1080p frames so a slow reader does not stall the writer.
            sink.set_property("shm-size", 64u32 * 1024 * 1024);
            if let Some(parent) = std::path::Path::new(socket).parent()
                && !parent.as_os_str().is_empty()
                && !parent.exists()
            {
                return Err(VideoError::Device(format!(
                    "shm socket {socket}: folder {} does not exist",
                    parent.display()
                )));
            }
            chain.extend([conv, caps, sink.clone()]);
            sink
        }
        SinkConfig::Ndi { name } => {
            let conv = make("videoconvert", "conv")?;
            let caps = make("capsfilter", "caps")?;
            caps.set_property("caps", raw_caps("UYVY"));
            let sink = make("ndisink", "sink")?;
            sink.set_property("ndi-name", name);
            chain.extend([conv, caps, sink.clone()]);
            sink
        }
        SinkConfig::File {
            dir,
            container,
            prefix,
            reencode: false,
            ..
        } => {
            let caps = stream.ok_or_else(|| {
                VideoError::Pipeline(format!(
                    "{}: the received stream's format is not known yet",
                    cfg.label()
                ))
            })?;
            let codec = caps
                .structure(0)
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            let dir = expand_home(dir);
            std::fs::create_dir_all(&dir).map_err(|e| {
                VideoError::Device(format!("recording folder {}: {e}", dir.display()))
            })?;
            let mut ext = container.as_str();
            let mut els = Vec::new();
            match codec.as_str() {
                "video/x-vp8" => {
                    if ext == "mp4" {
                        tracing::warn!(
                            sink = %cfg.label(),
                            "MP4 cannot hold the received VP8 stream: recording to .mkv (set \
                             reencode = true for an H.264 MP4)"
                        );
                        ext = "mkv";
                    }
                    els.push(make("matroskamux", "mux")?);
                }
                "video/x-h264" => {
                    // Re-packs (byte-stream ↔ avc) as the muxer needs; no decoding.
                    els.push(make("h264parse", "parse")?);
                    if ext == "mp4" {
                        let mux = make("mp4mux", "mux")?;
                        // Fragmented: a crash or a restart still leaves a playable file.
                        mux.set_property("fragment-duration", 1000u32);
                        els.push(mux);
                    } else {
                        els.push(make("matroskamux", "mux")?);
                    }
                }
                other => {
                    return Err(VideoError::Pipeline(format!(
                        "{}: cannot store a `{other}` stream without re-encoding; set \
                         reencode = true",
                        cfg.label()
                    )));
                }
            }
            src.set_caps(Some(caps));
            // Frames carry their arrival time (see `SinkSlot::push_encoded`).
            src.set_property("do-timestamp", false);
            count_pad = src.static_pad("src");
            let path = unique_file(&dir, prefix, ext);
            let sink = make("filesink", "sink")?;
            sink.set_property("location", path.to_string_lossy().as_ref());
            sink.set_property("sync", false);
            file = Some(path);
            chain.extend(els);
            chain.push(sink.clone());
            sink
        }
        SinkConfig::File {
            dir,
            container,
            prefix,
            reencode: true,
            ..
        } => {
            let dir = expand_home(dir);
            std::fs::create_dir_all(&dir).map_err(|e| {
                VideoError::Device(format!("recording folder {}: {e}", dir.display()))
            })?;
            let path = unique_file(&dir, prefix, container);
            let conv = make("videoconvert", "conv")?;
            let (enc, mux) = if container == "mp4" {
                let enc = make("x264enc", "enc")?;
                enc.set_property_from_str("tune", "zerolatency");
                enc.set_property_from_str("speed-preset", "ultrafast");
                let mux = make("mp4mux", "mux")?;
                // Fragmented: a crash or a restart still leaves a playable file.
                mux.set_property("fragment-duration", 1000u32);
                (enc, mux)
            } else {
                let enc = make("vp8enc", "enc")?;
                enc.set_property("deadline", 1i64);
                enc.set_property("cpu-used", 8i32);
                enc.set_property("threads", 2i32);
                enc.set_property("target-bitrate", 4_000_000i32);
                (enc, make("matroskamux", "mux")?)
            };
            count_pad = enc.static_pad("sink");
            let sink = make("filesink", "sink")?;
            sink.set_property("location", path.to_string_lossy().as_ref());
            sink.set_property("sync", false);
            file = Some(path);
            chain.extend([conv, enc, mux, sink.clone()]);
            sink
        }
        SinkConfig::Window {} => {
            if std::env::var_os("DISPLAY").is_none()
                && std::env::var_os("WAYLAND_DISPLAY").is_none()
            {
                return Err(VideoError::NoDisplay(
                    "window sink: no display here ($DISPLAY and $WAYLAND_DISPLAY are unset); over \
                     SSH use the terminal preview, or an shm/v4l2loopback/ndi sink"
                        .into(),
                ));
            }
            let conv = make("videoconvert", "conv")?;
            let sink = make("autovideosink", "sink")?;
            sink.set_property("sync", false);
            chain.extend([conv, sink.clone()]);
            sink
        }
        SinkConfig::Custom { pipeline: desc } => {
            let mut ctx = gst::ParseContext::new();
            let bin = gst::parse::bin_from_description_full(
                desc,
                true,
                Some(&mut ctx),
                gst::ParseFlags::FATAL_ERRORS,
            )
            .map_err(|e| {
                let missing = ctx.missing_elements();
                match missing.first() {
                    Some(m) => VideoError::MissingElement {
                        element: m.to_string(),
                        hint: elements::install_hint(m),
                    },
                    None => VideoError::Pipeline(format!("custom sink \"{desc}\": {e}")),
                }
            })?;
            let bin: gst::Element = bin.upcast();
            chain.push(bin.clone());
            bin
        }
    };
    if cfg.blanks() {
        // Blackout and the master fade act here, after this sink's own queue (the appsrc), so
        // frames already waiting for the sink are darkened too.
        chain.insert(1, make("videobalance", MASTER)?);
    }
    pipeline
        .add_many(&chain)
        .map_err(|e| VideoError::Pipeline(format!("{}: {e}", cfg.label())))?;
    gst::Element::link_many(&chain).map_err(|e| {
        VideoError::Pipeline(format!("{}: cannot link the sink chain: {e}", cfg.label()))
    })?;
    let count_pad = count_pad.or_else(|| sink.static_pad("sink"));
    Ok(BuiltSink {
        pipeline,
        src,
        sink,
        count_pad,
        file,
    })
}

/// Keeps one sink running: builds it, watches its bus, and on failure reports the explained error
/// and rebuilds it after a backoff (doubling up to 30 s, reset after a minute of health).
pub async fn supervise(
    cfg: SinkConfig,
    slot: Arc<SinkSlot>,
    first_backoff: Duration,
    cancel: CancellationToken,
    mut control: tokio::sync::watch::Receiver<scope_deck_core::stage::OutputControl>,
) {
    let mut backoff = first_backoff;
    let mut failed_before = false;
    loop {
        if cfg.on_key() {
            // Idle (a state, not a failure) until the record key is on.
            slot.armed.store(true, Ordering::Relaxed);
            slot.waiting.store(true, Ordering::Relaxed);
            let on = wait_record(&mut control, true, &cancel).await;
            slot.armed.store(false, Ordering::Relaxed);
            slot.waiting.store(false, Ordering::Relaxed);
            if !on {
                return;
            }
        }
        if failed_before {
            slot.restarts.fetch_add(1, Ordering::Relaxed);
        }
        let stream = if cfg.wants_encoded() {
            // Built for the received codec: wait until the first frame tells it.
            slot.waiting.store(true, Ordering::Relaxed);
            let caps = stream_caps(&slot, &cancel).await;
            slot.waiting.store(false, Ordering::Relaxed);
            let Some(caps) = caps else {
                return;
            };
            Some(caps)
        } else {
            None
        };
        let shm_before = match &cfg {
            SinkConfig::Shm { socket, .. } => {
                Some(prepare_shm_socket(std::path::Path::new(socket)))
            }
            _ => None,
        };
        let started = std::time::Instant::now();
        let record = cfg.on_key().then_some(&mut control);
        match build_sink_for(&cfg, true, stream.as_ref()) {
            Ok(built) => {
                follow_darkness(&built, slot.dark.clone());
                let outcome = run_one(&built, &slot, &cancel, shm_before, record).await;
                if let Ok(mut g) = slot.src.lock() {
                    *g = None;
                }
                slot.running.store(false, Ordering::Relaxed);
                let _ = built.pipeline.set_state(gst::State::Null);
                match outcome {
                    // Cancelled: finished in order.
                    None if cancel.is_cancelled() => return,
                    // The record key stopped it (file finalised): wait for the next press.
                    None => {
                        failed_before = false;
                        continue;
                    }
                    Some(err) => report(&slot, &err),
                }
            }
            Err(err) => report(&slot, &err),
        }
        failed_before = true;
        if started.elapsed() > Duration::from_secs(60) {
            backoff = first_backoff;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Waits until the record key is `on` (true), or false when cancelled or the engine is gone.
async fn wait_record(
    control: &mut tokio::sync::watch::Receiver<scope_deck_core::stage::OutputControl>,
    on: bool,
    cancel: &CancellationToken,
) -> bool {
    loop {
        if control.borrow_and_update().record == on {
            return true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            r = control.changed() => if r.is_err() { return false },
        }
    }
}

/// The received stream's caps, waiting for the first frame (None when cancelled first).
async fn stream_caps(slot: &SinkSlot, cancel: &CancellationToken) -> Option<gst::Caps> {
    loop {
        let changed = slot.stream_changed.notified();
        if let Some(c) = slot.stream_caps.lock().ok().and_then(|g| g.clone()) {
            return Some(c);
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = changed => {}
        }
    }
}

fn report(slot: &SinkSlot, err: &VideoError) {
    tracing::warn!(sink = %slot.label, "video sink failed, restarting with backoff: {err}");
    if let Ok(mut g) = slot.last_error.lock() {
        *g = Some(err.to_string());
    }
}

/// Runs a built sink until it fails (Some(error)) or `cancel` fires (None, after EOS so files are
/// finalised).
async fn run_one(
    built: &BuiltSink,
    slot: &Arc<SinkSlot>,
    cancel: &CancellationToken,
    shm_before: Option<ShmPath>,
    mut record: Option<&mut tokio::sync::watch::Receiver<scope_deck_core::stage::OutputControl>>,
) -> Option<VideoError> {
    let Some(bus) = built.pipeline.bus() else {
        return Some(VideoError::Pipeline("sink pipeline has no bus".into()));
    };
    // Count what reaches the sink element.
    if let Some(pad) = &built.count_pad {
        let s = slot.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            s.rendered.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    if built.sink.find_property("socket-path").is_some() {
        let s = slot.clone();
        built.sink.connect("client-connected", false, move |_| {
            s.clients.fetch_add(1, Ordering::Relaxed);
            None
        });
        let s = slot.clone();
        built.sink.connect("client-disconnected", false, move |_| {
            let _ = s
                .clients
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
            None
        });
    }
    if let Ok(mut g) = slot.current_file.lock() {
        *g = built.file.clone();
    }
    let factory = built.sink.factory().map(|f| f.name().to_string());
    if built.pipeline.set_state(gst::State::Playing).is_err() {
        return Some(
            first_error(&bus, &slot.label, factory.as_deref()).unwrap_or_else(|| {
                VideoError::Pipeline(format!("{}: could not start", slot.label))
            }),
        );
    }
    // A stored stream starts on a key frame, its timestamps from its first frame.
    slot.waiting_key.store(true, Ordering::Relaxed);
    if let Ok(mut g) = slot.rec_base.lock() {
        *g = None;
    }
    if let Ok(mut g) = slot.ts_offset.lock() {
        *g = None;
    }
    let built_codec = built
        .src
        .caps()
        .and_then(|c| c.structure(0).map(|s| s.name().to_string()));
    if let Ok(mut g) = slot.src.lock() {
        *g = Some(built.src.clone());
    }
    // Before `running`: a stats snapshot that shows it running also shows where it listens.
    if let Some(before) = shm_before {
        let configured: String = built.sink.property("socket-path");
        let actual = actual_shm_path(std::path::Path::new(&configured), before);
        if let Some(actual) = actual {
            // shmsink moves aside silently; a reader on the configured path would get nothing.
            let msg = format!(
                "{}: {configured} is in use by another process ({before:?}); this sink listens \
                 on {} instead — point the reader there or stop the other writer",
                slot.label,
                actual.display()
            );
            tracing::error!(sink = %slot.label, "{msg}");
            if let Ok(mut g) = slot.last_error.lock() {
                *g = Some(msg);
            }
        }
    }
    slot.running.store(true, Ordering::Relaxed);
    tracing::info!(sink = %slot.label, "video sink running");
    let mut stream = bus.stream();
    use futures::StreamExt;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                finish(built, &bus).await;
                return None;
            }
            stop = async {
                match record.as_deref_mut() {
                    Some(rx) => wait_record(rx, false, cancel).await,
                    None => std::future::pending().await,
                }
            } => {
                if stop {
                    // The record key is off: close the file properly (muxer index written).
                    if let Ok(mut g) = slot.src.lock() {
                        *g = None;
                    }
                    finish(built, &bus).await;
                    tracing::info!(sink = %slot.label, "recording stopped by the record key");
                }
                return None;
            }
            _ = slot.stream_changed.notified(), if slot.encoded => {
                let now = slot
                    .stream_caps
                    .lock()
                    .ok()
                    .and_then(|g| g.as_ref().and_then(|c| c.structure(0).map(|s| s.name().to_string())));
                if now != built_codec {
                    // Close this file properly and start a new one for the new codec.
                    if let Ok(mut g) = slot.src.lock() {
                        *g = None;
                    }
                    finish(built, &bus).await;
                    return Some(VideoError::Pipeline(format!(
                        "{}: the received codec changed; starting a new recording",
                        slot.label
                    )));
                }
            }
            msg = stream.next() => {
                let Some(msg) = msg else { return Some(VideoError::Pipeline(format!("{}: bus closed", slot.label))) };
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let src_factory = msg.src().and_then(|s| s.downcast_ref::<gst::Element>()).and_then(|e| e.factory()).map(|f| f.name().to_string());
                        return Some(elements::explain_runtime_error(
                            &slot.label,
                            src_factory.as_deref().or(factory.as_deref()),
                            &e.error().to_string(),
                            &e.debug().map(|d| d.to_string()).unwrap_or_default(),
                        ));
                    }
                    gst::MessageView::Eos(_) => {
                        return Some(VideoError::Pipeline(format!("{}: ended unexpectedly", slot.label)));
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::debug!(sink = %slot.label, "warning: {}", w.error());
                    }
                    _ => {}
                }
            }
        }
    }
}

/// What was at an shm socket path before its sink started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShmPath {
    /// Nothing there.
    Free,
    /// A socket nobody listens on (a deck that was SIGKILLed): removed, so shmsink takes the
    /// configured path instead of moving to `<path>.0` without a word.
    RemovedStale,
    /// A socket someone listens on (another writer): left alone.
    InUse,
    /// Something that is not a socket: left alone.
    NotASocket,
}

/// Clears a stale socket at `path` (only when a connect is refused: nothing listens on it).
pub fn prepare_shm_socket(path: &std::path::Path) -> ShmPath {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return ShmPath::Free;
    };
    if !meta.file_type().is_socket() {
        return ShmPath::NotASocket;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            match std::fs::remove_file(path) {
                Ok(()) => {
                    tracing::info!(
                        "removed the stale shm socket {} (nothing listened on it)",
                        path.display()
                    );
                    ShmPath::RemovedStale
                }
                Err(e) => {
                    tracing::warn!("stale shm socket {}: cannot remove it: {e}", path.display());
                    ShmPath::InUse
                }
            }
        }
        _ => ShmPath::InUse,
    }
}

/// Where shmsink really listens when the configured path was taken (`<path>.N`, the newest
/// socket of that form); None when it has the configured path.
fn actual_shm_path(configured: &std::path::Path, before: ShmPath) -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    if matches!(before, ShmPath::Free | ShmPath::RemovedStale) {
        return None;
    }
    let newest = (0..100)
        .map(|n| PathBuf::from(format!("{}.{n}", configured.display())))
        .filter_map(|p| {
            let m = std::fs::symlink_metadata(&p).ok()?;
            m.file_type().is_socket().then_some((m.modified().ok()?, p))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p);
    Some(newest.unwrap_or_else(|| PathBuf::from(format!("{}.<n>", configured.display()))))
}

/// Ends the stream so muxers write their indexes, waiting at most 3 s.
async fn finish(built: &BuiltSink, bus: &gst::Bus) {
    let _ = built.src.end_of_stream();
    let bus = bus.clone();
    let _ = tokio::task::spawn_blocking(move || {
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(3),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
    })
    .await;
    let _ = built.pipeline.set_state(gst::State::Null);
}

/// The first error on `bus` (after a failed state change), explained.
fn first_error(bus: &gst::Bus, label: &str, factory: Option<&str>) -> Option<VideoError> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(500),
        &[gst::MessageType::Error],
    )?;
    if let gst::MessageView::Error(e) = msg.view() {
        let src_factory = msg
            .src()
            .and_then(|s| s.downcast_ref::<gst::Element>())
            .and_then(|e| e.factory())
            .map(|f| f.name().to_string());
        return Some(elements::explain_runtime_error(
            label,
            src_factory.as_deref().or(factory),
            &e.error().to_string(),
            &e.debug().map(|d| d.to_string()).unwrap_or_default(),
        ));
    }
    None
}

/// `~/x` → `$HOME/x`.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// `<dir>/<prefix>-YYYYMMDD-HHMMSS.<ext>` in UTC, with `-N` added when it already exists.
fn unique_file(dir: &std::path::Path, prefix: &str, ext: &str) -> PathBuf {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let mut path = dir.join(format!("{prefix}-{stamp}.{ext}"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{prefix}-{stamp}-{n}.{ext}"));
        n += 1;
    }
    path
}

/// `YYYYMMDD-HHMMSS` (UTC) without a date crate.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_shm_socket_is_removed_a_live_one_and_other_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("stale.shm");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(stale.exists(), "binding leaves the socket file behind");
        assert_eq!(prepare_shm_socket(&stale), ShmPath::RemovedStale);
        assert!(!stale.exists());
        assert_eq!(prepare_shm_socket(&stale), ShmPath::Free);

        let live = dir.path().join("live.shm");
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        assert_eq!(prepare_shm_socket(&live), ShmPath::InUse);
        assert!(
            live.exists(),
            "a socket someone listens on is never removed"
        );

        let file = dir.path().join("file.shm");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(prepare_shm_socket(&file), ShmPath::NotASocket);
        assert!(file.exists());
        assert_eq!(actual_shm_path(&file, ShmPath::RemovedStale), None);
    }

    #[test]
    fn utc_stamp_formats_known_instants() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(utc_stamp(t), "20261118-110640");
        // 2000-02-29 (leap day) 01:01:01
        let t = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
        assert_eq!(utc_stamp(t), "20000229-010101");
    }
}
