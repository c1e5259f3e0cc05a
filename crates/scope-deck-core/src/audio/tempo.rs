//! The tempo interface: how performers (tap, nudge, re-downbeat) and other tempo sources (MIDI
//! clock) steer the beat tracker, which lives on the analysis thread.

use serde::Serialize;

use crate::audio::features::TempoSource;

/// A command for the beat tracker. The engine forwards these as `Effect::Tempo`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum TempoCmd {
    /// A tap at engine time `at_secs`; successive taps set the BPM.
    Tap {
        /// Engine time of the tap, seconds.
        at_secs: f64,
    },
    /// Shift the tempo by `bpm`.
    Nudge {
        /// Signed BPM change.
        bpm: f64,
    },
    /// The current beat is beat 1 of the bar.
    Redownbeat,
    /// An external source (MIDI clock) dictates tempo; `beat_phase` when it knows it.
    External {
        /// Tempo.
        bpm: f64,
        /// Position within the beat 0..1, if known.
        beat_phase: Option<f64>,
        /// Which source.
        source: TempoSource,
    },
    /// The external source stopped: fall back to detection.
    ExternalStopped,
}
