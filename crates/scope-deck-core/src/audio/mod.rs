//! What the audio edge tells the engine: per-block features, onsets/beats, tempo commands.

pub mod features;
pub mod tempo;
