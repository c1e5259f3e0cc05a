//! `[audio]` section: where the music comes from and how it is analysed.

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};

/// Kind of audio input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The built-in synthesised demo track.
    #[default]
    Demo,
    /// A live input device (cpal).
    Device,
    /// An audio file played in real time.
    File,
    /// Any GStreamer source description (SRT/RTP/UDP from the DJ's laptop).
    Gstreamer,
}

/// `[audio]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    /// Input kind.
    pub source: SourceKind,
    /// Device name substring or index (`source = "device"`); empty = default input.
    pub device: String,
    /// File path (`source = "file"`).
    pub file: String,
    /// GStreamer source description (`source = "gstreamer"`).
    pub pipeline: String,
    /// FFT size in samples (power of two).
    pub fft_size: usize,
    /// Hop size in samples.
    pub hop: usize,
    /// Beats per bar.
    pub beats_per_bar: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            source: SourceKind::Demo,
            device: String::new(),
            file: String::new(),
            pipeline: String::new(),
            fft_size: 1024,
            hop: 256,
            beats_per_bar: 4,
        }
    }
}

impl Validate for AudioConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        let at = |k: &str| format!("{prefix}.{k}");
        if !self.fft_size.is_power_of_two() || !(256..=16384).contains(&self.fft_size) {
            errors.push(doc.error_at(
                &at("fft_size"),
                "must be a power of two from 256 to 16384",
                None,
            ));
        }
        if self.hop == 0 || self.hop > self.fft_size {
            errors.push(doc.error_at(&at("hop"), "must be between 1 and fft_size", None));
        }
        if !(1..=16).contains(&self.beats_per_bar) {
            errors.push(doc.error_at(&at("beats_per_bar"), "must be from 1 to 16", None));
        }
        match self.source {
            SourceKind::File if self.file.trim().is_empty() => {
                errors.push(doc.error_at(&at("source"), "source = \"file\" needs `file = \"path\"` in [audio]", None))
            }
            SourceKind::Gstreamer if self.pipeline.trim().is_empty() => errors.push(doc.error_at(
                &at("source"),
                "source = \"gstreamer\" needs `pipeline = \"<GStreamer source description>\"` in [audio]",
                None,
            )),
            _ => {}
        }
    }
}
