//! One small pipeline per configured sink (`appsrc ! convert ! <sink>`), fed with the
//! decoded frames of the output pipeline's tee — or, for recordings that store the stream as
//! received (`reencode = false`), with the depayloaded frames before the decoder
//! (`appsrc ! [h264parse] ! matroskamux|mp4mux ! filesink`, built once the codec is known and
//! started on a key frame).
//!
//! Why separate pipelines rather than tee branches ending in the sinks: a sink that errors inside
//! a shared pipeline returns a flow error through the tee and stops the decoder thread with it.
//! Here a failing sink only stops its own pipeline; the supervisor reports it and rebuilds it
//! with backoff while the session and the other sinks keep running (on its own thread, see
//! [`super::supervisor`]). Frames are handed over by reference (no copy) into the appsrc's own
//! queue ([`SinkConfig::queue_depth`]), so a slow sink drops frames instead of slowing the others.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::config::SinkConfig;
use super::elements::{self, VideoError, make};

/// The amount of black every live sink applies, written by the video edge when the engine's
/// [`scope_deck_core::stage::OutputControl`] changes and read once per frame (one atomic load).
#[derive(Debug, Default)]
pub(crate) struct Darkness(std::sync::atomic::AtomicU32);

impl Darkness {
    /// 0 = picture, 1 = black.
    pub(crate) fn set(&self, amount: f32) {
        let a = if amount.is_finite() {
            amount.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.0.store(a.to_bits(), Ordering::Relaxed);
    }

    /// The current amount of black.
    pub(crate) fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Name of the `videobalance` that darkens a live sink.
const MASTER: &str = "master";

/// Makes the sink's `videobalance` follow `dark`: checked on every frame before it is
/// processed (so a change shows on the next frame), the element's properties touched only when
/// the amount changed. At the defaults `videobalance` is in passthrough: no work per frame.
pub(crate) fn follow_darkness(built: &BuiltSink, dark: Arc<Darkness>) {
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

/// A built (not yet started) sink pipeline.
pub struct BuiltSink {
    /// The pipeline.
    pub pipeline: gst::Pipeline,
    /// Where frames go in.
    pub(crate) src: gst_app::AppSrc,
    /// The sink element (or the custom bin).
    pub sink: gst::Element,
    /// Where frames are counted as delivered (the encoder's input for recordings, whose sink
    /// receives muxed chunks rather than frames).
    pub(crate) count_pad: Option<gst::Pad>,
    /// Output file for a file sink.
    pub(crate) file: Option<PathBuf>,
}

/// Builds the pipeline for `cfg`. `check_device` = false skips the device-node check so that the
/// pipeline can be validated where the device cannot exist (tests, CI).
pub fn build_sink(cfg: &SinkConfig, check_device: bool) -> Result<BuiltSink, VideoError> {
    build_sink_for(cfg, check_device, None)
}

/// Like [`build_sink`]; a sink that stores the received stream (see
/// [`SinkConfig::wants_encoded`]) is built for `stream`, the received caps.
pub(crate) fn build_sink_for(
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
        // Frames come stamped (see `SinkFeed::push`); stamping here would write into a buffer
        // the other sinks share.
        .do_timestamp(false)
        .build();
    // appsrc is the sink's queue (its own streaming thread); `SinkFeed::push` bounds it.
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
            // Frames carry their arrival time (see `SinkFeed::push_encoded`).
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

/// What was at an shm socket path before its sink started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShmPath {
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
pub(crate) fn prepare_shm_socket(path: &std::path::Path) -> ShmPath {
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
pub(crate) fn actual_shm_path(configured: &std::path::Path, before: ShmPath) -> Option<PathBuf> {
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
pub(crate) fn utc_stamp(t: std::time::SystemTime) -> String {
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
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        assert_eq!(utc_stamp(t), "20261118-110640");
        // 2000-02-29 (leap day) 01:01:01
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400 + 3661);
        assert_eq!(utc_stamp(t), "20000229-010101");
    }
}
