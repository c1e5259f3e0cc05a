//! Creating GStreamer elements with errors a show operator can act on: a missing element names
//! the Debian package that provides it, a missing device explains how to create it, a missing
//! NDI runtime says where to get it.

use std::path::Path;

/// Everything that can go wrong building or running a video pipeline, worded for the operator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VideoError {
    /// GStreamer itself could not start.
    #[error("cannot initialise GStreamer: {0}")]
    Init(String),
    /// An element factory is not installed.
    #[error("GStreamer element `{element}` is not installed: {hint}")]
    MissingElement {
        /// Factory name (`vp8dec`).
        element: String,
        /// What to install (`sudo apt install gstreamer1.0-plugins-good`).
        hint: String,
    },
    /// A device node is missing or unusable (v4l2loopback, webcam).
    #[error("{0}")]
    Device(String),
    /// A window sink was asked for where no display exists.
    #[error("{0}")]
    NoDisplay(String),
    /// The NDI runtime library could not be loaded.
    #[error("{0}")]
    NdiRuntime(String),
    /// Anything else (linking, state change, a sink's runtime error), already explained.
    #[error("{0}")]
    Pipeline(String),
}

/// The Debian package (or other install step) that provides element `factory`.
pub(crate) fn install_hint(factory: &str) -> String {
    let pkg = match factory {
        "appsrc" | "appsink" | "videoconvert" | "videoscale" | "videorate" | "videotestsrc"
        | "uridecodebin" | "decodebin" | "playbin" => "gstreamer1.0-plugins-base",
        "rtpjitterbuffer" | "rtpvp8depay" | "rtph264depay" | "rtpvp8pay" | "vp8dec" | "vp8enc"
        | "v4l2sink" | "v4l2src" | "matroskamux" | "matroskademux" | "mp4mux" | "qtdemux"
        | "autovideosink" => "gstreamer1.0-plugins-good",
        "shmsink" | "shmsrc" | "h264parse" => "gstreamer1.0-plugins-bad",
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "openh264enc" | "openh264dec" => "gstreamer1.0-plugins-bad",
        "avdec_h264" => "gstreamer1.0-libav",
        "tee" | "queue" | "capsfilter" | "fakesink" | "filesink" | "filesrc" | "identity" => {
            return "it is part of GStreamer core: reinstall libgstreamer1.0-0".into();
        }
        "ndisink" | "ndisrc" => {
            return "this scope-deck was built without NDI support: rebuild it with \
                    `cargo build --release --features ndi` (the NDI runtime libndi.so.6 is also \
                    needed at run time)"
                .into();
        }
        _ => {
            return "install the GStreamer plugin package that provides it (search with \
                    `apt-file search` or ask `gst-inspect-1.0`)"
                .into();
        }
    };
    format!("sudo apt install {pkg}")
}

/// Makes element `factory` named `name`, or explains which package is missing.
pub(crate) fn make(factory: &str, name: &str) -> Result<gstreamer::Element, VideoError> {
    if gstreamer::ElementFactory::find(factory).is_none() {
        return Err(VideoError::MissingElement {
            element: factory.into(),
            hint: install_hint(factory),
        });
    }
    gstreamer::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| VideoError::Pipeline(format!("cannot create `{factory}`: {e}")))
}

/// Fails with the first element of `factories` that is not installed.
pub(crate) fn require(factories: &[&str]) -> Result<(), VideoError> {
    for f in factories {
        if gstreamer::ElementFactory::find(f).is_none() {
            return Err(VideoError::MissingElement {
                element: (*f).into(),
                hint: install_hint(f),
            });
        }
    }
    Ok(())
}

/// Initialises GStreamer once (and registers the statically linked NDI plugin when built in).
pub(crate) fn init() -> Result<(), VideoError> {
    static ONCE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        #[cfg(feature = "ndi")]
        gstndi::plugin_register_static().map_err(|e| format!("registering the NDI plugin: {e}"))?;
        Ok(())
    })
    .clone()
    .map_err(VideoError::Init)
}

/// Loads the plugins the output pipeline needs now, at start-up, rather than when the first
/// packet arrives: a slow first build lets packets pile up, and the jitter buffer then drops the
/// oldest ones (the first key frame). Missing plugins are reported later, where they are used.
pub(crate) fn preload(recording: bool) {
    let mut names = vec![
        "rtpjitterbuffer",
        "rtpvp8depay",
        "vp8dec",
        "rtph264depay",
        "h264parse",
        "avdec_h264",
    ];
    if recording {
        names.extend(["matroskamux", "mp4mux"]);
    }
    for name in names {
        if let Some(f) = gstreamer::ElementFactory::find(name) {
            let _ = gstreamer::prelude::PluginFeatureExtManual::load(&f);
        }
    }
}

/// Checks a v4l2loopback device node exists, explaining how to create it if not.
pub(crate) fn check_v4l2loopback(device: &str) -> Result<(), VideoError> {
    if Path::new(device).exists() {
        return Ok(());
    }
    let nr = device
        .trim_start_matches("/dev/video")
        .parse::<u32>()
        .unwrap_or(10);
    Err(VideoError::Device(format!(
        "{device} does not exist: the v4l2loopback virtual camera is not loaded. Install it with \
         `sudo apt install v4l2loopback-dkms` and load it with `sudo modprobe v4l2loopback \
         devices=1 video_nr={nr} card_label=\"scope-deck\" exclusive_caps=1`, then restart the \
         sink (it is retried automatically)"
    )))
}

/// Turns a sink's runtime error into an operator-facing explanation.
pub fn explain_runtime_error(
    sink_label: &str,
    factory: Option<&str>,
    err: &str,
    debug: &str,
) -> VideoError {
    let text = format!("{err} {debug}");
    if text.contains("NDI SDK") || text.contains("libndi") {
        return VideoError::NdiRuntime(ndi_runtime_hint(&text));
    }
    if factory == Some("v4l2sink") || text.contains("Cannot identify device") {
        let dev = sink_label.trim_start_matches("v4l2loopback:");
        if !Path::new(dev).exists() {
            return match check_v4l2loopback(dev) {
                Err(e) => e,
                Ok(()) => VideoError::Device(format!("{sink_label}: {err}")),
            };
        }
        return VideoError::Device(format!(
            "{sink_label}: {err} (is it a v4l2loopback device? `v4l2-ctl --list-devices` shows it; \
             another writer may hold it)"
        ));
    }
    VideoError::Pipeline(format!(
        "{sink_label}: {err}{}",
        if debug.is_empty() {
            String::new()
        } else {
            format!(" ({debug})")
        }
    ))
}

/// Explains how to provide the NDI runtime.
pub(crate) fn ndi_runtime_hint(detail: &str) -> String {
    format!(
        "the NDI runtime (libndi.so.6) could not be loaded ({}). Install the NDI SDK or NDI Tools \
         for Linux from https://ndi.video/tools/ and put libndi.so.6 on the library path, or point \
         NDI_RUNTIME_DIR_V6 at the folder that holds it",
        detail.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_debian_packages() {
        assert_eq!(
            install_hint("vp8dec"),
            "sudo apt install gstreamer1.0-plugins-good"
        );
        assert_eq!(
            install_hint("avdec_h264"),
            "sudo apt install gstreamer1.0-libav"
        );
        // The hosted backend's H.264 input encoders.
        assert_eq!(
            install_hint("x264enc"),
            "sudo apt install gstreamer1.0-plugins-ugly"
        );
        assert_eq!(
            install_hint("openh264enc"),
            "sudo apt install gstreamer1.0-plugins-bad"
        );
        assert!(install_hint("ndisink").contains("--features ndi"));
    }

    #[test]
    fn missing_element_is_explained() {
        init().unwrap();
        let e = make("no_such_elementzz", "x").unwrap_err();
        assert!(matches!(e, VideoError::MissingElement { .. }), "{e}");
    }

    #[test]
    fn missing_loopback_device_explains_modprobe() {
        let e = check_v4l2loopback("/dev/video87").unwrap_err().to_string();
        assert!(e.contains("modprobe v4l2loopback"), "{e}");
        assert!(e.contains("video_nr=87"), "{e}");
    }
}
