//! GStreamer input: decode any file GStreamer can (FLAC, MP3, OGG, ...) or run any source
//! description (SRT/RTP/UDP from the DJ's laptop), converted to interleaved F32 and pulled from an
//! appsink. Not on the real-time path: called from a source thread or `analyze`.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::audio::error::AudioError;

/// Which Debian package provides a commonly missing element.
fn package_for(element: &str) -> &'static str {
    match element {
        "decodebin" | "audioconvert" | "audioresample" | "appsink" | "uridecodebin" => {
            "gstreamer1.0-plugins-base"
        }
        "autoaudiosink" | "pulsesink" | "udpsrc" | "rtpL16depay" | "flacparse" | "wavparse" => {
            "gstreamer1.0-plugins-good"
        }
        "srtsrc" | "srtserversrc" => "gstreamer1.0-plugins-bad",
        "avdec_aac" | "avdec_mp3" => "gstreamer1.0-libav",
        _ => "gstreamer1.0-plugins-base / -good / -bad / -ugly",
    }
}

fn explain_parse_error(e: &gst::glib::Error) -> String {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("no element \"") {
        let name = rest.trim_end_matches('"');
        return format!(
            "GStreamer element `{name}` is missing (install the Debian package {})",
            package_for(name)
        );
    }
    msg
}

/// A running pipeline ending in an appsink that yields interleaved f32.
pub(crate) struct GstReader {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    what: String,
    channels: u16,
    rate: u32,
    pending: Vec<f32>,
}

impl GstReader {
    /// Decodes a file as fast as possible (`monitor` = also play it on the default output,
    /// paced in real time by GStreamer's clock).
    pub(crate) fn open_file(path: &std::path::Path, monitor: bool) -> Result<Self, AudioError> {
        let p = path.display().to_string();
        if !path.exists() {
            return Err(AudioError::file(&p, "no such file"));
        }
        let tail = "audioconvert ! audio/x-raw,format=F32LE,layout=interleaved ! appsink name=sink";
        let desc = if monitor {
            format!(
                "filesrc name=src ! decodebin ! tee name=t t. ! queue ! audioconvert ! audioresample ! autoaudiosink t. ! queue ! {tail} sync=true"
            )
        } else {
            format!("filesrc name=src ! decodebin ! {tail} sync=false")
        };
        Self::build(&desc, &p, Some(&p)).map_err(|e| match e {
            AudioError::Gstreamer(m) => AudioError::file(&p, m),
            other => other,
        })
    }

    /// Runs a source description live (`<desc> ! audioconvert ! audioresample ! appsink`).
    pub(crate) fn open_description(desc: &str) -> Result<Self, AudioError> {
        let full = format!(
            "{desc} ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,layout=interleaved,rate=48000 ! appsink name=sink sync=false"
        );
        Self::build(&full, desc, None)
    }

    fn build(desc: &str, what: &str, location: Option<&str>) -> Result<Self, AudioError> {
        gst::init().map_err(|e| AudioError::Gstreamer(format!("cannot initialise: {e}")))?;
        let el =
            gst::parse::launch(desc).map_err(|e| AudioError::Gstreamer(explain_parse_error(&e)))?;
        let pipeline = el
            .downcast::<gst::Pipeline>()
            .map_err(|_| AudioError::Gstreamer(format!("`{what}` is not a pipeline")))?;
        if let (Some(loc), Some(src)) = (location, pipeline.by_name("src")) {
            src.set_property("location", loc);
        }
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| AudioError::Gstreamer("appsink missing from the pipeline".into()))?;
        sink.set_property("max-buffers", 64u32);
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            AudioError::Gstreamer(
                Self::bus_error(&pipeline).unwrap_or_else(|| format!("`{what}` failed to start")),
            )
        })?;
        Ok(GstReader {
            pipeline,
            sink,
            what: what.to_string(),
            channels: 0,
            rate: 0,
            pending: Vec::new(),
        })
    }

    fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
        let bus = pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                let mut m = e.error().to_string();
                if let Some(missing) =
                    m.strip_prefix("Your GStreamer installation is missing a plug-in")
                {
                    m = format!(
                        "missing a GStreamer plug-in{missing} (install gstreamer1.0-plugins-good/-bad/-ugly and gstreamer1.0-libav)"
                    );
                }
                return Some(m);
            }
        }
        None
    }

    /// Waits up to `timeout` for the first buffer so the format is known. Returns (channels,
    /// rate).
    pub(crate) fn format(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<(u16, u32), AudioError> {
        if self.rate == 0 {
            let deadline = std::time::Instant::now() + timeout;
            while self.rate == 0 {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(AudioError::Gstreamer(format!(
                        "`{}` produced no audio in {timeout:?}",
                        self.what
                    )));
                }
                let mut tmp = Vec::new();
                match self.pull(&mut tmp, left.min(std::time::Duration::from_millis(100)))? {
                    None => {
                        return Err(AudioError::Gstreamer(format!(
                            "`{}` ended before any audio",
                            self.what
                        )));
                    }
                    Some(_) => self.pending.extend_from_slice(&tmp),
                }
            }
        }
        Ok((self.channels, self.rate))
    }

    /// Appends interleaved samples to `out`. `Ok(Some(n))` samples appended (0 on timeout),
    /// `Ok(None)` at end of stream.
    pub(crate) fn pull(
        &mut self,
        out: &mut Vec<f32>,
        timeout: std::time::Duration,
    ) -> Result<Option<usize>, AudioError> {
        if !self.pending.is_empty() {
            let n = self.pending.len();
            out.append(&mut self.pending);
            return Ok(Some(n));
        }
        match self
            .sink
            .try_pull_sample(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))
        {
            Some(sample) => {
                if let Some(s) = sample.caps().and_then(|c| c.structure(0)) {
                    let ch = s.get::<i32>("channels").unwrap_or(1).max(1);
                    let rate = s.get::<i32>("rate").unwrap_or(48_000).max(1);
                    self.channels = ch as u16;
                    self.rate = rate as u32;
                }
                let Some(buf) = sample.buffer() else {
                    return Ok(Some(0));
                };
                let map = buf
                    .map_readable()
                    .map_err(|_| AudioError::Gstreamer("unreadable buffer".into()))?;
                let b = map.as_slice();
                let before = out.len();
                out.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                Ok(Some(out.len() - before))
            }
            None => {
                if let Some(e) = Self::bus_error(&self.pipeline) {
                    return Err(AudioError::Gstreamer(format!("{}: {e}", self.what)));
                }
                if self.sink.is_eos() {
                    Ok(None)
                } else {
                    Ok(Some(0))
                }
            }
        }
    }
}

impl Drop for GstReader {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
