//! The output pipeline: RTP packets from the transport → `appsrc` → `rtpjitterbuffer` → depay →
//! decode → `tee` → (fan-out to the sink pipelines) + (leaky low-rate preview branch). When a sink
//! stores the received stream (a recording without re-encoding), a second tee right before the
//! decoder hands it the depayloaded frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use tokio::sync::watch;

use super::elements::{self, VideoError, make};
use super::preview::PreviewFrame;
use super::supervisor::{SinkFeed, SinkPort};
use crate::transport::types::VideoCodec;

/// Counters shared between GStreamer threads and the stats publisher (all monotonic).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// RTP packets handed to the pipeline.
    pub(crate) packets_in: AtomicU64,
    /// RTP packets dropped because the pipeline input was full or down.
    pub(crate) packets_dropped: AtomicU64,
    /// Frames out of the decoder.
    pub(crate) frames_decoded: AtomicU64,
    /// Decoder warnings/errors (corrupt or undecodable frames).
    pub(crate) decode_errors: AtomicU64,
    /// Last added latency (RTP arrival → decoded frame handed to the sinks), microseconds.
    pub(crate) latency_us_last: AtomicU64,
    /// Sum of latencies for the mean, microseconds.
    pub(crate) latency_us_sum: AtomicU64,
    /// Output pipeline rebuilds (codec change or failure).
    pub(crate) rebuilds: AtomicU64,
    /// Key frames asked of the sender (the decoder lost its reference or never had one).
    pub(crate) keyframe_requests: AtomicU64,
}

/// RTP packets that may wait in the pipeline input before new ones are dropped (counted).
pub(crate) const INPUT_DEPTH: u64 = 2000;

/// What identifies a negotiated stream; a change rebuilds the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamKey {
    /// Codec.
    pub(crate) codec: VideoCodec,
    /// Payload type.
    pub(crate) payload_type: u8,
    /// RTP clock rate.
    pub(crate) clock_rate: u32,
}

/// A running output pipeline.
pub(crate) struct OutputPipeline {
    /// The pipeline.
    pub(crate) pipeline: gst::Pipeline,
    /// Where RTP goes in.
    pub(crate) src: gst_app::AppSrc,
    /// For lost/late packet statistics.
    pub(crate) jitterbuffer: gst::Element,
}

/// Preview settings as the pipeline needs them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreviewSpec {
    /// Frames per second.
    pub(crate) fps: u32,
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
}

/// RTP caps for the negotiated stream.
pub(crate) fn rtp_caps(key: &StreamKey) -> gst::Caps {
    let name = match key.codec {
        VideoCodec::Vp8 => "VP8",
        VideoCodec::H264 => "H264",
    };
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("clock-rate", key.clock_rate as i32)
        .field("encoding-name", name)
        .field("payload", i32::from(key.payload_type))
        .build()
}

/// What the output pipeline reports about the decoded frames besides the sinks.
#[derive(Clone)]
pub(crate) struct FrameTaps {
    /// Every `1/fps` a downscaled frame for the terminal preview.
    pub(crate) preview: Option<(PreviewSpec, watch::Sender<Option<Arc<PreviewFrame>>>)>,
    /// When the picture last changed for good (the change probe; latency samples).
    pub(crate) changes: watch::Sender<Option<std::time::Instant>>,
}

/// Builds the output pipeline for `key`; decoded frames go to every sink in `sinks`, to the
/// preview and to the change probe (`taps`).
pub(crate) fn build(
    key: StreamKey,
    jitter_ms: u32,
    sinks: &[SinkPort],
    taps: FrameTaps,
    counters: Arc<Counters>,
    keyframes: watch::Sender<u64>,
) -> Result<OutputPipeline, VideoError> {
    elements::init()?;
    let pipeline = gst::Pipeline::with_name("video-output");
    elements::require(&["appsrc", "appsink", "rtpjitterbuffer", "tee", "queue"])?;
    let src = gst_app::AppSrc::builder()
        .name("rtp")
        .caps(&rtp_caps(&key))
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(true)
        .build();
    let jb = make("rtpjitterbuffer", "jitter")?;
    jb.set_property("latency", jitter_ms);
    jb.set_property("drop-on-latency", true);
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), jb.clone()];
    // The depayloader asks upstream for a key frame after a loss; that request ends at our appsrc
    // and is handed to the transport (which sends RTCP PLI) through `keyframes`.
    let kf_for_sinks = keyframes.clone();
    if let Some(pad) = src.static_pad("src") {
        let c = counters.clone();
        pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data
                && ev
                    .structure()
                    .is_some_and(|s| s.name() == "GstForceKeyUnit")
            {
                c.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                keyframes.send_modify(|n| *n += 1);
            }
            gst::PadProbeReturn::Ok
        });
    }
    // Sinks storing the received stream get it from a tee just before the decoder (only built
    // when one is configured: no cost otherwise).
    let encoded_tee = if sinks.iter().any(|s| s.encoded) {
        Some(make("tee", "encoded-tee")?)
    } else {
        None
    };
    match key.codec {
        VideoCodec::Vp8 => {
            let depay = make("rtpvp8depay", "depay")?;
            depay.set_property("request-keyframe", true);
            chain.push(depay);
            chain.extend(encoded_tee.clone());
            let dec = make("vp8dec", "dec")?;
            dec.set_property("threads", 2u32);
            chain.push(dec);
        }
        VideoCodec::H264 => {
            let depay = make("rtph264depay", "depay")?;
            depay.set_property("request-keyframe", true);
            chain.push(depay);
            let parse = make("h264parse", "parse")?;
            if encoded_tee.is_some() {
                // SPS/PPS before every IDR, so a recording can start at any key frame.
                parse.set_property("config-interval", -1i32);
            }
            chain.push(parse);
            chain.extend(encoded_tee.clone());
            chain.push(make("avdec_h264", "dec")?);
        }
    }
    let tee = make("tee", "tee")?;
    chain.push(tee.clone());
    pipeline
        .add_many(&chain)
        .map_err(|e| VideoError::Pipeline(format!("output pipeline: {e}")))?;
    gst::Element::link_many(&chain)
        .map_err(|e| VideoError::Pipeline(format!("output pipeline: cannot link: {e}")))?;

    // Fan-out branch: straight from the decoder thread (no queue: lowest latency); pushing to the
    // sink pipelines never blocks.
    let fan = gst_app::AppSink::builder()
        .name("fanout")
        .sync(false)
        .max_buffers(2)
        .drop(true)
        .build();
    fan.set_property("enable-last-sample", false);
    // Live path: no preroll (a prerolling branch behind the tee would stall the others).
    fan.set_property("async", false);
    pipeline
        .add(&fan)
        .map_err(|e| VideoError::Pipeline(format!("output pipeline: {e}")))?;
    tee.link(&fan)
        .map_err(|e| VideoError::Pipeline(format!("output pipeline: tee → fan-out: {e}")))?;
    let pipe_weak = pipeline.downgrade();
    let c = counters.clone();
    // Each sink's frame-side state, owned by this branch's streaming thread.
    let mut feeds: Vec<SinkFeed> = sinks
        .iter()
        .filter(|s| !s.encoded)
        .map(SinkPort::feed)
        .collect();
    fan.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                c.frames_decoded.fetch_add(1, Ordering::Relaxed);
                let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned())
                else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                if let (Some(pipe), Some(pts)) = (pipe_weak.upgrade(), buffer.pts())
                    && let Some(now) = pipe.current_running_time()
                {
                    let us = now.saturating_sub(pts).useconds();
                    c.latency_us_last.store(us, Ordering::Relaxed);
                    c.latency_us_sum.fetch_add(us, Ordering::Relaxed);
                }
                for feed in &mut feeds {
                    feed.push(&buffer, &caps);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    if let Some(etee) = &encoded_tee {
        let sink = gst_app::AppSink::builder()
            .name("encoded")
            .sync(false)
            .max_buffers(2)
            .drop(true)
            .build();
        sink.set_property("enable-last-sample", false);
        sink.set_property("async", false);
        pipeline
            .add(&sink)
            .map_err(|e| VideoError::Pipeline(format!("output pipeline: {e}")))?;
        etee.link(&sink).map_err(|e| {
            VideoError::Pipeline(format!("output pipeline: encoded tee → recorders: {e}"))
        })?;
        let mut feeds: Vec<SinkFeed> = sinks
            .iter()
            .filter(|s| s.encoded)
            .map(SinkPort::feed)
            .collect();
        let c = counters.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned())
                    else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let mut want_key = false;
                    for feed in &mut feeds {
                        want_key |= feed.push_encoded(&buffer, &caps);
                    }
                    if want_key {
                        // Handed to the transport, which sends RTCP PLI.
                        c.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        kf_for_sinks.send_modify(|n| *n += 1);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }

    if let Some((spec, tx)) = taps.preview {
        add_preview(&pipeline, &tee, spec, tx)?;
    }
    super::change_probe::add(&pipeline, &tee, taps.changes)?;
    Ok(OutputPipeline {
        pipeline,
        src,
        jitterbuffer: jb,
    })
}

/// tee → leaky 1-frame queue (rate-limited by a pad probe, so skipped frames cost nothing) →
/// videoscale → videoconvert → RGB WxH → appsink → `watch`.
fn add_preview(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    spec: PreviewSpec,
    tx: watch::Sender<Option<Arc<PreviewFrame>>>,
) -> Result<(), VideoError> {
    let q = make("queue", "preview-queue")?;
    q.set_property("max-size-buffers", 1u32);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", 0u64);
    q.set_property_from_str("leaky", "downstream");
    let scale = make("videoscale", "preview-scale")?;
    let conv = make("videoconvert", "preview-convert")?;
    let caps = make("capsfilter", "preview-caps")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", spec.width as i32)
            .field("height", spec.height as i32)
            .build(),
    );
    let sink = gst_app::AppSink::builder()
        .name("preview")
        .sync(false)
        .max_buffers(1)
        .drop(true)
        .build();
    sink.set_property("enable-last-sample", false);
    sink.set_property("async", false);
    let els: Vec<gst::Element> = vec![q.clone(), scale, conv, caps, sink.clone().upcast()];
    pipeline
        .add_many(&els)
        .map_err(|e| VideoError::Pipeline(format!("preview: {e}")))?;
    gst::Element::link_many(&els).map_err(|e| VideoError::Pipeline(format!("preview: {e}")))?;
    tee.link(&q)
        .map_err(|e| VideoError::Pipeline(format!("preview: tee: {e}")))?;
    // Let one frame through per interval; drop the rest before any work is done on them.
    let interval = std::time::Duration::from_secs_f64(1.0 / f64::from(spec.fps.max(1)));
    // When a frame was last let through, in nanoseconds after `base` plus one (0: never).
    let base = std::time::Instant::now();
    let last = AtomicU64::new(0);
    if let Some(pad) = q.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let now = u64::try_from(base.elapsed().as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            let l = last.load(Ordering::Relaxed);
            let since = std::time::Duration::from_nanos(now.saturating_sub(l));
            if l != 0 && since < interval {
                // Handled = consumed here (a Drop return trips a NULL unref in GStreamer 1.22).
                return gst::PadProbeReturn::Handled;
            }
            last.store(now, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    let seq = AtomicU64::new(0);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(f) = to_preview(&sample, seq.fetch_add(1, Ordering::Relaxed) + 1) {
                    tx.send_replace(Some(Arc::new(f)));
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

/// Copies an RGB sample into a packed [`PreviewFrame`] (row padding removed).
fn to_preview(sample: &gst::Sample, seq: u64) -> Option<PreviewFrame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (w, h) = (info.width(), info.height());
    let stride = usize::try_from(*frame.plane_stride().first()?).ok()?;
    let data = frame.plane_data(0).ok()?;
    let row = w as usize * 3;
    let mut rgb = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        rgb.extend_from_slice(data.get(y * stride..y * stride + row)?);
    }
    Some(PreviewFrame {
        width: w,
        height: h,
        rgb,
        seq,
    })
}

/// Lost and late packets counted by the jitter buffer.
pub(crate) fn jitter_losses(jb: &gst::Element) -> u64 {
    let s = jb.property::<gst::Structure>("stats");
    let lost = s.get::<u64>("num-lost").unwrap_or(0);
    let late = s.get::<u64>("num-late").unwrap_or(0);
    lost + late
}
