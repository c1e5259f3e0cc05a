//! Audio input and analysis. The real-time callback only copies into a ring; analysis runs on
//! its own thread and publishes [`features::AudioFrame`]s latest-wins.

pub mod config;
pub mod dsp;
pub mod error;
pub mod features;
pub mod source;
pub mod synth;
pub mod tempo;
