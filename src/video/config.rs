//! `[video]` section: where the received video goes (sinks), the terminal preview, and the
//! optional video input for video-to-video pipelines.

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};

/// `[video]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// Output sinks fed at once through a tee (`[[video.sinks]]`); empty = no output pipeline.
    pub sinks: Vec<SinkConfig>,
    /// Jitter-buffer latency in milliseconds (the packet reordering window).
    pub jitter_ms: u32,
    /// First restart delay after a sink fails, in milliseconds (doubles up to 30 s).
    pub restart_backoff_ms: u64,
    /// Terminal preview settings (`[video.preview]`).
    pub preview: PreviewConfig,
    /// Video sent to the server for video-to-video pipelines (`[video.input]`).
    pub input: InputConfig,
    /// The Scope server's own NDI/Spout/Syphon outputs (`[video.scope_outputs]`).
    pub scope_outputs: ScopeOutputsConfig,
    /// Reference images for VACE identity consistency (`[video.vace]`).
    pub vace: VaceConfig,
}

/// `[video.scope_outputs]`: outputs the *server* publishes (toggled with `toggle_scope_output`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeOutputsConfig {
    /// Sender name the server publishes under.
    pub(crate) name: String,
    /// Outputs to turn on once connected (`"ndi"`, `"spout"`, `"syphon"`).
    pub(crate) enable: Vec<crate::video::scope_api::ScopeOutput>,
}

impl Default for ScopeOutputsConfig {
    fn default() -> Self {
        ScopeOutputsConfig {
            name: "scope-deck".into(),
            enable: Vec::new(),
        }
    }
}

/// `[video.vace]`: reference images uploaded to the server on connect.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaceConfig {
    /// Local image files (relative paths are relative to the config folder).
    pub(crate) ref_images: Vec<String>,
    /// `vace_context_scale`, 0–2 (how strongly the images steer the picture).
    pub(crate) context_scale: f64,
}

impl Default for VaceConfig {
    fn default() -> Self {
        VaceConfig {
            ref_images: Vec::new(),
            context_scale: 1.0,
        }
    }
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            sinks: Vec::new(),
            jitter_ms: 50,
            restart_backoff_ms: 500,
            preview: PreviewConfig::default(),
            input: InputConfig::default(),
            scope_outputs: ScopeOutputsConfig::default(),
            vace: VaceConfig::default(),
        }
    }
}

/// One output sink (`kind` selects which).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// A v4l2loopback virtual camera (OBS, browsers, Zoom).
    V4l2loopback {
        /// Device node, e.g. `/dev/video10`.
        device: String,
        /// Raw pixel format written (I420 is accepted by OBS and Chromium; YUY2 by nearly all).
        #[serde(default = "default_v4l2_format")]
        format: String,
    },
    /// An NDI sender (Resolume, TouchDesigner, vMix); needs the NDI runtime installed.
    Ndi {
        /// NDI source name shown to receivers.
        #[serde(default = "default_ndi_name")]
        name: String,
    },
    /// Shared memory (`shmsink`) for local consumers (`shmsrc socket-path=...`).
    Shm {
        /// Control socket path.
        socket: String,
        /// Raw pixel format written.
        #[serde(default = "default_shm_format")]
        format: String,
    },
    /// A recording with a timestamped file name. By default the received stream is stored as it
    /// came (no re-encoding: no extra CPU, no quality loss), starting on a key frame.
    File {
        /// Folder for the recordings (created if missing).
        dir: String,
        /// `mkv` (any codec) or `mp4` (H.264 as received; a VP8 stream, which MP4 cannot hold,
        /// is written to `.mkv` instead unless `reencode` is on).
        #[serde(default = "default_container")]
        container: String,
        /// File name prefix.
        #[serde(default = "default_prefix")]
        prefix: String,
        /// Decode and re-encode to a fixed format instead (VP8 in `mkv`, H.264 in `mp4`).
        #[serde(default)]
        reencode: bool,
        /// Record only while the `record` key (action) is on, a new file each time; otherwise
        /// the whole session is recorded.
        #[serde(default)]
        on_key: bool,
    },
    /// A local window, only where a display exists.
    Window {},
    /// Any GStreamer sink description, e.g. `"videoconvert ! x264enc ! flvmux ! rtmpsink ..."`.
    Custom {
        /// The description (its first element receives raw video).
        pipeline: String,
    },
}

fn default_v4l2_format() -> String {
    "I420".into()
}
fn default_shm_format() -> String {
    "I420".into()
}
fn default_ndi_name() -> String {
    "scope-deck".into()
}
fn default_container() -> String {
    "mkv".into()
}
fn default_prefix() -> String {
    "scope-deck".into()
}

impl SinkConfig {
    /// A recorder that runs only while the `record` key is on.
    pub(crate) fn on_key(&self) -> bool {
        matches!(self, SinkConfig::File { on_key: true, .. })
    }

    /// A live output that blackout and the master fade darken (every sink but recordings,
    /// which keep the picture as generated).
    pub(crate) fn blanks(&self) -> bool {
        !matches!(self, SinkConfig::File { .. })
    }

    /// Frames that may wait in this sink's input before new ones are dropped: a recording
    /// keeps 2 s so it does not lose frames to a moment of CPU contention; live outputs keep 2
    /// frames so they never lag.
    pub(crate) fn queue_depth(&self) -> u64 {
        match self {
            SinkConfig::File { .. } => 60,
            SinkConfig::V4l2loopback { .. }
            | SinkConfig::Ndi { .. }
            | SinkConfig::Shm { .. }
            | SinkConfig::Window {}
            | SinkConfig::Custom { .. } => 2,
        }
    }

    /// Whether this sink takes the received (pre-decoder) stream rather than decoded frames.
    pub(crate) fn wants_encoded(&self) -> bool {
        matches!(
            self,
            SinkConfig::File {
                reencode: false,
                ..
            }
        )
    }

    /// Short label for logs and the dashboard (`shm:/tmp/x`, `ndi:scope-deck`).
    pub(crate) fn label(&self) -> String {
        match self {
            SinkConfig::V4l2loopback { device, .. } => format!("v4l2loopback:{device}"),
            SinkConfig::Ndi { name } => format!("ndi:{name}"),
            SinkConfig::Shm { socket, .. } => format!("shm:{socket}"),
            SinkConfig::File { dir, .. } => format!("file:{dir}"),
            SinkConfig::Window {} => "window".into(),
            SinkConfig::Custom { pipeline } => format!("custom:{pipeline}"),
        }
    }
}

/// `[video.preview]`: the downscaled terminal preview branch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreviewConfig {
    /// Build the preview branch at all.
    pub enabled: bool,
    /// Frames per second (kept low so the main sinks never wait for it).
    pub(crate) fps: u32,
    /// Width in pixels (= terminal columns).
    pub(crate) width: u32,
    /// Height in pixels (two per terminal row with half-block cells).
    pub(crate) height: u32,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        PreviewConfig {
            enabled: true,
            fps: 6,
            width: 64,
            height: 64,
        }
    }
}

/// Kind of video input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InputSource {
    /// No video input (text-to-video).
    #[default]
    None,
    /// A generated test pattern.
    TestPattern,
    /// A webcam (`v4l2src`).
    Webcam,
    /// A video file, looped.
    File,
}

/// `[video.input]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Which source.
    pub source: InputSource,
    /// Webcam device (`source = "webcam"`).
    pub device: String,
    /// Video file (`source = "file"`).
    pub file: String,
    /// Encoded width.
    pub width: u32,
    /// Encoded height.
    pub height: u32,
    /// Encoded frames per second.
    pub fps: u32,
    /// Encoder target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Longest gap between two key frames, in milliseconds. The server's decoder cannot start
    /// (or recover after loss) without one; key frames are also forced on connect and on every
    /// RTCP PLI/FIR, so this only bounds the worst case.
    pub keyframe_interval_ms: u32,
    /// Codec sent: chosen by the app per backend (VP8 for Scope, H.264 for the hosted gateway,
    /// which accepts nothing else), not by the user.
    #[serde(skip, default = "default_input_codec")]
    pub codec: crate::transport::types::VideoCodec,
}

fn default_input_codec() -> crate::transport::types::VideoCodec {
    crate::transport::types::VideoCodec::Vp8
}

/// Fewest / most milliseconds `keyframe_interval_ms` may be.
pub(crate) const KEYFRAME_INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 100..=10_000;

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            source: InputSource::None,
            device: "/dev/video0".into(),
            file: String::new(),
            width: 512,
            height: 512,
            fps: 30,
            bitrate_kbps: 2000,
            keyframe_interval_ms: 1000,
            codec: default_input_codec(),
        }
    }
}

const RAW_FORMATS: &[&str] = &[
    "I420", "YUY2", "UYVY", "NV12", "RGB", "BGR", "RGBA", "BGRA", "BGRx",
];

impl Validate for VideoConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        let at = |k: &str| format!("{prefix}.{k}");
        if !(0..=2000).contains(&self.jitter_ms) {
            errors.push(doc.error_at(&at("jitter_ms"), "must be from 0 to 2000", None));
        }
        if !(10..=60_000).contains(&self.restart_backoff_ms) {
            errors.push(doc.error_at(&at("restart_backoff_ms"), "must be from 10 to 60000", None));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            let p = |k: &str| format!("{prefix}.sinks[{i}].{k}");
            let fmt_ok = |f: &str| RAW_FORMATS.contains(&f);
            match sink {
                SinkConfig::V4l2loopback { device, format } => {
                    if !device.starts_with("/dev/") {
                        errors.push(doc.error_at(
                            &p("device"),
                            "must be a device node such as \"/dev/video10\"",
                            None,
                        ));
                    }
                    if !fmt_ok(format) {
                        errors.push(doc.error_at(
                            &p("format"),
                            format!("unknown raw format; use one of {}", RAW_FORMATS.join(", ")),
                            None,
                        ));
                    }
                }
                SinkConfig::Shm { socket, format } => {
                    if socket.trim().is_empty() {
                        errors.push(doc.error_at(&p("socket"), "must be a socket path", None));
                    }
                    if !fmt_ok(format) {
                        errors.push(doc.error_at(
                            &p("format"),
                            format!("unknown raw format; use one of {}", RAW_FORMATS.join(", ")),
                            None,
                        ));
                    }
                }
                SinkConfig::Ndi { name } => {
                    if name.trim().is_empty() {
                        errors.push(doc.error_at(&p("name"), "must not be empty", None));
                    }
                }
                SinkConfig::File { dir, container, .. } => {
                    if dir.trim().is_empty() {
                        errors.push(doc.error_at(&p("dir"), "must be a folder path", None));
                    }
                    if !matches!(container.as_str(), "mkv" | "mp4") {
                        errors.push(doc.error_at(
                            &p("container"),
                            "must be \"mkv\" or \"mp4\"",
                            None,
                        ));
                    }
                }
                SinkConfig::Window {} => {}
                SinkConfig::Custom { pipeline } => {
                    if pipeline.trim().is_empty() {
                        errors.push(doc.error_at(
                            &p("pipeline"),
                            "must be a GStreamer sink description",
                            None,
                        ));
                    }
                }
            }
        }
        let pv = &self.preview;
        if !(1..=30).contains(&pv.fps) {
            errors.push(doc.error_at(&at("preview.fps"), "must be from 1 to 30", None));
        }
        if !(8..=512).contains(&pv.width) || !(8..=512).contains(&pv.height) {
            errors.push(doc.error_at(
                &at("preview"),
                "width and height must be from 8 to 512",
                None,
            ));
        }
        let inp = &self.input;
        match inp.source {
            InputSource::File if inp.file.trim().is_empty() => errors.push(doc.error_at(
                &at("input.source"),
                "source = \"file\" needs `file = \"path\"` in [video.input]",
                None,
            )),
            InputSource::Webcam if inp.device.trim().is_empty() => errors.push(doc.error_at(
                &at("input.device"),
                "source = \"webcam\" needs a device such as \"/dev/video0\"",
                None,
            )),
            _ => {}
        }
        if !(16..=3840).contains(&inp.width) || !(16..=2160).contains(&inp.height) {
            errors.push(doc.error_at(
                &at("input"),
                "width must be 16..3840 and height 16..2160",
                None,
            ));
        }
        if !(1..=60).contains(&inp.fps) {
            errors.push(doc.error_at(&at("input.fps"), "must be from 1 to 60", None));
        }
        if !(50..=50_000).contains(&inp.bitrate_kbps) {
            errors.push(doc.error_at(&at("input.bitrate_kbps"), "must be from 50 to 50000", None));
        }
        if !KEYFRAME_INTERVAL_RANGE.contains(&inp.keyframe_interval_ms) {
            errors.push(doc.error_at(
                &at("input.keyframe_interval_ms"),
                format!(
                    "must be from {} to {} (a key frame at least every 10 s; 1000 is a good choice)",
                    KEYFRAME_INTERVAL_RANGE.start(),
                    KEYFRAME_INTERVAL_RANGE.end()
                ),
                None,
            ));
        }
        if !(self.vace.context_scale.is_finite() && (0.0..=2.0).contains(&self.vace.context_scale))
        {
            errors.push(doc.error_at(&at("vace.context_scale"), "must be from 0 to 2", None));
        }
        for (i, f) in self.vace.ref_images.iter().enumerate() {
            if f.trim().is_empty() {
                errors.push(doc.error_at(
                    &format!("{prefix}.vace.ref_images[{i}]"),
                    "must be an image file path",
                    None,
                ));
            }
        }
    }
}

impl VideoConfig {
    /// The reducer's start-up video settings; relative reference-image paths are resolved
    /// against `dir` (the config folder) so a config works from any working directory.
    pub(crate) fn settings(
        &self,
        dir: Option<&std::path::Path>,
    ) -> crate::video::reduce::VideoSettings {
        use std::path::PathBuf;
        let resolve = |p: &String| {
            let p = PathBuf::from(p);
            match dir {
                Some(d) if p.is_relative() => d.join(p),
                _ => p,
            }
        };
        crate::video::reduce::VideoSettings {
            output_name: self.scope_outputs.name.clone(),
            start_outputs: self.scope_outputs.enable.clone(),
            ref_images: self.vace.ref_images.iter().map(resolve).collect(),
            context_scale: self.vace.context_scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VideoConfig, Vec<ConfigError>> {
        let doc = SourceDoc::parse("c.toml", text).map_err(|e| vec![e])?;
        #[derive(Deserialize)]
        struct W {
            #[serde(default)]
            video: VideoConfig,
        }
        let w: W = doc.deserialize().map_err(|e| vec![e])?;
        let mut errs = Vec::new();
        w.video.validate(&doc, "video", &mut errs);
        if errs.is_empty() {
            Ok(w.video)
        } else {
            Err(errs)
        }
    }

    #[test]
    fn several_sinks_parse() {
        let c = parse(
            "[video]\n[[video.sinks]]\nkind = \"shm\"\nsocket = \"/tmp/s\"\n\
             [[video.sinks]]\nkind = \"v4l2loopback\"\ndevice = \"/dev/video10\"\n\
             [[video.sinks]]\nkind = \"window\"\n",
        )
        .unwrap();
        assert_eq!(c.sinks.len(), 3);
        assert_eq!(
            c.sinks[1],
            SinkConfig::V4l2loopback {
                device: "/dev/video10".into(),
                format: "I420".into()
            }
        );
    }

    #[test]
    fn bad_sink_field_is_located() {
        let errs =
            parse("[video]\n[[video.sinks]]\nkind = \"v4l2loopback\"\ndevice = \"video10\"\n")
                .unwrap_err();
        assert_eq!(errs[0].key, "video.sinks[0].device");
        assert_eq!(errs[0].line, 4);
    }

    #[test]
    fn unknown_kind_and_field_are_refused() {
        assert!(parse("[[video.sinks]]\nkind = \"hdmi\"\n").is_err());
        assert!(parse("[[video.sinks]]\nkind = \"shm\"\nsocket = \"/x\"\nsize = 3\n").is_err());
    }

    #[test]
    fn scope_outputs_and_vace_parse_and_validate() {
        let c = parse(
            "[video.scope_outputs]\nname = \"stage\"\nenable = [\"ndi\"]\n\
             [video.vace]\nref_images = [\"a.png\"]\ncontext_scale = 1.5\n",
        )
        .unwrap();
        assert_eq!(c.scope_outputs.name, "stage");
        assert_eq!(
            c.scope_outputs.enable,
            vec![crate::video::scope_api::ScopeOutput::Ndi]
        );
        assert_eq!(c.vace.ref_images, vec!["a.png"]);
        assert!(parse("[video.scope_outputs]\nenable = [\"hdmi\"]\n").is_err());
        let errs = parse("[video.vace]\ncontext_scale = 3.0\n").unwrap_err();
        assert_eq!(errs[0].key, "video.vace.context_scale");
    }

    #[test]
    fn recordings_store_the_stream_unless_reencode() {
        let c = parse(
            "[[video.sinks]]\nkind = \"file\"\ndir = \"/tmp\"\n\
             [[video.sinks]]\nkind = \"file\"\ndir = \"/tmp\"\nreencode = true\n",
        )
        .unwrap();
        assert!(c.sinks[0].wants_encoded());
        assert!(!c.sinks[1].wants_encoded());
    }

    #[test]
    fn keyframe_interval_defaults_to_a_second_and_is_validated() {
        let c = parse("[video.input]\nsource = \"test_pattern\"\n").unwrap();
        assert_eq!(c.input.keyframe_interval_ms, 1000);
        assert_eq!(c.input.codec, crate::transport::types::VideoCodec::Vp8);
        let c = parse("[video.input]\nkeyframe_interval_ms = 500\n").unwrap();
        assert_eq!(c.input.keyframe_interval_ms, 500);
        let errs = parse("[video.input]\nkeyframe_interval_ms = 0\n").unwrap_err();
        assert_eq!(errs[0].key, "video.input.keyframe_interval_ms");
        assert!(parse("[video.input]\nkeyframe_interval_ms = 60000\n").is_err());
        // The codec follows the backend; it is not a user setting.
        assert!(parse("[video.input]\ncodec = \"h264\"\n").is_err());
    }

    #[test]
    fn file_input_needs_a_path() {
        let errs = parse("[video.input]\nsource = \"file\"\n").unwrap_err();
        assert_eq!(errs[0].key, "video.input.source");
    }
}
