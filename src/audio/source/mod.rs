//! Where samples come from: a live device (cpal), a file, a GStreamer description or the demo
//! synth. Every source ends in the same lock-free ring read by the analysis thread.

pub(crate) mod device;
pub mod file;
pub(crate) mod gst;
pub mod wav;
