//! Audio input and analysis. The real-time callback only copies into a ring; analysis runs on
//! its own thread and publishes [`features::AudioFrame`]s latest-wins.

pub(crate) mod analyze;
pub(crate) mod cli;
pub mod config;
pub mod dsp;
pub(crate) mod error;
pub(crate) mod eval;
pub use scope_deck_core::audio::{features, tempo};
pub mod ring;
pub mod runtime;
pub mod source;
pub mod synth;
