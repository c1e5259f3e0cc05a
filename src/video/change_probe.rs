//! The output pipeline's change probe: every decoded frame, shrunk to 32×32 RGB by GStreamer and
//! averaged to the 8×8 cells of the core's step detector (`crate::core::video::change`), which
//! says when the picture changed for good. The arrival instant of the first frame showing a
//! change goes to the engine (latest wins) as a glass-to-glass latency sample.
//!
//! Cheap by construction: a 32×32 frame per decoded frame, no allocation per frame, a leaky
//! queue so a slow probe drops frames instead of holding the tee.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use tokio::sync::watch;

use super::elements::{VideoError, make};
use scope_deck_core::video::change::{ChangeDetector, GRID, Thumb, VALUES};

/// Side of the frame GStreamer scales to (each detector cell averages `SIDE / GRID` squared).
const SIDE: usize = 32;

/// tee → leaky queue → videoscale → videoconvert → RGB 32×32 → appsink → detector → `changes`.
pub(crate) fn add(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    changes: watch::Sender<Option<Instant>>,
) -> Result<(), VideoError> {
    let err = |e: &dyn std::fmt::Display| VideoError::Pipeline(format!("change probe: {e}"));
    let q = make("queue", "change-queue")?;
    q.set_property("max-size-buffers", 2u32);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", 0u64);
    q.set_property_from_str("leaky", "downstream");
    let scale = make("videoscale", "change-scale")?;
    let conv = make("videoconvert", "change-convert")?;
    let caps = make("capsfilter", "change-caps")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", SIDE as i32)
            .field("height", SIDE as i32)
            .build(),
    );
    let sink = gst_app::AppSink::builder()
        .name("change-probe")
        .sync(false)
        .max_buffers(1)
        .drop(true)
        .build();
    sink.set_property("enable-last-sample", false);
    sink.set_property("async", false);
    let els: Vec<gst::Element> = vec![q.clone(), scale, conv, caps, sink.clone().upcast()];
    pipeline.add_many(&els).map_err(|e| err(&e))?;
    gst::Element::link_many(&els).map_err(|e| err(&e))?;
    tee.link(&q).map_err(|e| err(&e))?;
    let base = Instant::now();
    let mut detector = ChangeDetector::default();
    let mut thumb: Thumb = [0; VALUES];
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let at = base.elapsed().as_micros() as u64;
                if shrink(&sample, &mut thumb).is_some()
                    && let Some(seen) = detector.push(at, &thumb)
                {
                    changes.send_replace(Some(base + Duration::from_micros(seen)));
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

/// Averages a 32×32 RGB sample into the detector's 8×8 cells.
fn shrink(sample: &gst::Sample, out: &mut Thumb) -> Option<()> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    if info.width() as usize != SIDE || info.height() as usize != SIDE {
        return None;
    }
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer()?, &info).ok()?;
    let stride = usize::try_from(*frame.plane_stride().first()?).ok()?;
    let data = frame.plane_data(0).ok()?;
    let per = SIDE / GRID;
    let mut sums = [0u32; VALUES];
    for y in 0..SIDE {
        let row = data.get(y * stride..y * stride + SIDE * 3)?;
        for x in 0..SIDE {
            let cell = (y / per) * GRID + x / per;
            for ch in 0..3 {
                sums[cell * 3 + ch] += u32::from(row[x * 3 + ch]);
            }
        }
    }
    let n = (per * per) as u32;
    for (o, s) in out.iter_mut().zip(sums) {
        *o = (s / n) as u8;
    }
    Some(())
}
