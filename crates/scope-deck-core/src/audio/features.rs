//! The analysis results the engine consumes: a small `Copy` frame published latest-wins, and
//! discrete events (onsets, beats) delivered in order.

use serde::Serialize;

/// Number of spectrum bars published for the meters.
pub const SPECTRUM_BARS: usize = 32;

/// One hop's worth of audio features. `Copy` so publishing it never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct AudioFrame {
    /// Stream time of the end of this hop, seconds.
    pub time: f64,
    /// RMS level in dBFS.
    pub rms_db: f32,
    /// Peak level in dBFS.
    pub peak_db: f32,
    /// Loudness after auto-gain, 0..1 ("energy").
    pub energy: f32,
    /// Spectral centroid in Hz ("brightness").
    pub centroid_hz: f32,
    /// Brightness normalised 0..1.
    pub brightness: f32,
    /// Spectral flux (onset strength), normalised 0..1.
    pub flux: f32,
    /// Bass / mid / high band energies, 0..1 after auto-gain.
    pub bands: [f32; 3],
    /// Smoothed spectrum bars 0..1 for the meters.
    pub spectrum: [f32; SPECTRUM_BARS],
    /// Current tempo estimate (0 when unknown).
    pub bpm: f32,
    /// Position within the beat, 0..1.
    pub beat_phase: f32,
    /// Beat index within the bar (0-based), fractional.
    pub bar_position: f32,
    /// Tempo confidence 0..1.
    pub confidence: f32,
    /// Who sets the tempo right now (detection, tap, MIDI clock).
    pub tempo_source: TempoSource,
    /// The arbitrated transport is running (Link's start/stop while Link leads, else "a tempo is
    /// known"). Set by the engine's tempo arbitration, never by the tracker; Scope's
    /// `is_playing` follows it.
    #[serde(default)]
    pub playing: bool,
}

impl Default for AudioFrame {
    fn default() -> Self {
        AudioFrame {
            time: 0.0,
            rms_db: -120.0,
            peak_db: -120.0,
            energy: 0.0,
            centroid_hz: 0.0,
            brightness: 0.0,
            flux: 0.0,
            bands: [0.0; 3],
            spectrum: [0.0; SPECTRUM_BARS],
            bpm: 0.0,
            beat_phase: 0.0,
            bar_position: 0.0,
            confidence: 0.0,
            tempo_source: TempoSource::Detected,
            playing: false,
        }
    }
}

/// Where the tempo comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TempoSource {
    /// The beat tracker.
    #[default]
    Detected,
    /// Tap tempo.
    Tap,
    /// MIDI clock.
    MidiClock,
    /// Ableton Link (the `link` build).
    Link,
}

/// A discrete musical event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AudioEvent {
    /// An onset at stream time `time` with normalised `strength`.
    Onset {
        /// Stream time, seconds.
        time: f64,
        /// 0..1.
        strength: f32,
    },
    /// A (predicted) beat.
    Beat {
        /// Stream time of the beat, seconds.
        time: f64,
        /// Running beat count.
        count: u64,
        /// Beat index in the bar, 0 = downbeat.
        in_bar: u32,
        /// Tempo at this beat.
        bpm: f32,
    },
}
