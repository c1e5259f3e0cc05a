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
    /// FFT size in samples (power of two); unset = the smallest power of two holding ~21 ms at
    /// the input's rate (1024 at 48 kHz).
    pub fft_size: Option<usize>,
    /// Hop size in samples; unset = ~5.3 ms at the input's rate (256 at 48 kHz).
    pub hop: Option<usize>,
    /// Beats per bar.
    pub beats_per_bar: u32,
    /// Input channel to analyse, 1-based; 0 mixes all channels down to mono.
    pub channel: u32,
    /// Also play a file source audibly on the default output (file source only).
    pub monitor: bool,
    /// Level multiplier after auto-gain (0.1..10): higher makes meters and energy jumpier.
    pub sensitivity: f32,
    /// Map quiet and loud rooms alike by normalising to the recent peak.
    pub auto_gain: bool,
    /// Onsets below this hop level (dBFS) are ignored (evaluated at the onset itself).
    pub gate_db: f32,
    /// Onset threshold in running deviations above the mean: higher = fewer onsets.
    pub onset_threshold: f32,
    /// Preferred tempo range; tempi outside fold by octaves into it (87 vs 174).
    pub bpm_min: f32,
    /// Upper end of the preferred tempo range.
    pub bpm_max: f32,
    /// Bass/mid boundary, Hz.
    pub bass_cutoff_hz: f32,
    /// Mid/high boundary, Hz.
    pub high_cutoff_hz: f32,
    /// Meter fall-off in full scales per second (cava-like gravity).
    pub meter_falloff: f32,
    /// Beat tracker: `dsp` (hand-written, default) or `learned` (network + bar-pointer decoder;
    /// opt-in while its weights are an interim model).
    pub beat_tracker: crate::audio::dsp::beat::TrackerKind,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            source: SourceKind::Demo,
            device: String::new(),
            file: String::new(),
            pipeline: String::new(),
            fft_size: None,
            hop: None,
            beats_per_bar: 4,
            channel: 0,
            monitor: false,
            sensitivity: 1.0,
            auto_gain: true,
            gate_db: -60.0,
            onset_threshold: 5.0,
            bpm_min: 80.0,
            bpm_max: 170.0,
            bass_cutoff_hz: 250.0,
            high_cutoff_hz: 4000.0,
            meter_falloff: 1.5,
            beat_tracker: crate::audio::dsp::beat::TrackerKind::Learned,
        }
    }
}

impl AudioConfig {
    /// A short label of the input for the dashboard (`demo`, `device: USB Audio`, `file: set.flac`).
    pub(crate) fn source_label(&self) -> String {
        match self.source {
            SourceKind::Demo => "demo".to_string(),
            SourceKind::Device if self.device.trim().is_empty() => "device: default".to_string(),
            SourceKind::Device => format!("device: {}", self.device.trim()),
            SourceKind::File => {
                let name = std::path::Path::new(&self.file)
                    .file_name()
                    .map_or_else(|| self.file.clone(), |n| n.to_string_lossy().into_owned());
                format!("file: {name}")
            }
            SourceKind::Gstreamer => "gstreamer".to_string(),
        }
    }
}

impl Validate for AudioConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        let at = |k: &str| format!("{prefix}.{k}");
        if let Some(fft) = self.fft_size {
            if !fft.is_power_of_two() || !(64..=16384).contains(&fft) {
                errors.push(doc.error_at(
                    &at("fft_size"),
                    "must be a power of two from 64 to 16384 (or left out: ~21 ms at the input's rate)",
                    None,
                ));
            }
        }
        if let Some(hop) = self.hop {
            if hop == 0 || hop > self.fft_size.unwrap_or(16384) {
                errors.push(doc.error_at(&at("hop"), "must be between 1 and fft_size", None));
            }
        }
        if !(1..=16).contains(&self.beats_per_bar) {
            errors.push(doc.error_at(&at("beats_per_bar"), "must be from 1 to 16", None));
        }
        if self.channel > 64 {
            errors.push(doc.error_at(
                &at("channel"),
                "must be 0 (mix all) or a channel from 1 to 64",
                None,
            ));
        }
        if !(0.1..=10.0).contains(&self.sensitivity) {
            errors.push(doc.error_at(&at("sensitivity"), "must be from 0.1 to 10", None));
        }
        if !(-100.0..=0.0).contains(&self.gate_db) {
            errors.push(doc.error_at(&at("gate_db"), "must be from -100 to 0 dBFS", None));
        }
        if !(0.5..=20.0).contains(&self.onset_threshold) {
            errors.push(doc.error_at(&at("onset_threshold"), "must be from 0.5 to 20", None));
        }
        if !(30.0..=300.0).contains(&self.bpm_min) {
            errors.push(doc.error_at(&at("bpm_min"), "must be from 30 to 300", None));
        }
        if !(30.0..=300.0).contains(&self.bpm_max) || self.bpm_max < self.bpm_min * 1.9 {
            errors.push(doc.error_at(
                &at("bpm_max"),
                "must be from 30 to 300 and at least 1.9 × bpm_min (the range must hold an octave)",
                None,
            ));
        }
        if !(20.0..=2000.0).contains(&self.bass_cutoff_hz) {
            errors.push(doc.error_at(&at("bass_cutoff_hz"), "must be from 20 to 2000 Hz", None));
        }
        if !(500.0..=20_000.0).contains(&self.high_cutoff_hz)
            || self.high_cutoff_hz <= self.bass_cutoff_hz
        {
            errors.push(doc.error_at(
                &at("high_cutoff_hz"),
                "must be from 500 to 20000 Hz and above bass_cutoff_hz",
                None,
            ));
        }
        if !(0.05..=20.0).contains(&self.meter_falloff) {
            errors.push(doc.error_at(&at("meter_falloff"), "must be from 0.05 to 20", None));
        }
        if self.monitor && self.source != SourceKind::File {
            errors.push(doc.error_at(&at("monitor"), "only applies to source = \"file\"", None));
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

impl AudioConfig {
    /// Analysis settings for a source running at `sample_rate`.
    pub fn analyzer_settings(
        &self,
        sample_rate: u32,
    ) -> crate::audio::dsp::analyzer::AnalyzerSettings {
        use crate::audio::dsp::analyzer::AnalyzerSettings;
        let mut s = AnalyzerSettings::new(sample_rate as f32);
        // Overrides in samples win; a hop set alone keeps the timed window but never outgrows it.
        if let Some(hop) = self.hop {
            s.hop = hop;
            s.fft_size = s.fft_size.max(hop.next_power_of_two());
        }
        if let Some(fft) = self.fft_size {
            s.fft_size = fft;
            s.hop = s.hop.min(fft);
        }
        s.cutoffs = [self.bass_cutoff_hz, self.high_cutoff_hz];
        s.sensitivity = self.sensitivity;
        s.auto_gain = self.auto_gain;
        s.meter_falloff = self.meter_falloff;
        s.onset.gate_db = self.gate_db;
        s.onset.k = self.onset_threshold;
        s.beat.bpm_min = self.bpm_min;
        s.beat.bpm_max = self.bpm_max;
        s.beat.beats_per_bar = self.beats_per_bar;
        s.beat.tracker = self.beat_tracker;
        s
    }
}

#[cfg(test)]
mod tests {
    use crate::config::app::AppConfig;

    fn errors(toml: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let _ = AppConfig::from_text("t/config.toml", toml, &mut errs);
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let e = errors("[audio]\nbpm_min = 100.0\nbpm_max = 150.0\nsensitivity = 50.0\n");
        assert!(
            e.iter()
                .any(|m| m.contains("t/config.toml:3") && m.contains("audio.bpm_max")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains(":4") && m.contains("audio.sensitivity")),
            "{e:?}"
        );
        let e = errors("[audio]\nmonitor = true\n");
        assert!(e.iter().any(|m| m.contains("audio.monitor")), "{e:?}");
        assert!(errors("[audio]\nchannel = 2\nbass_cutoff_hz = 150.0\n").is_empty());
        let e = errors("[audio]\nfft_size = 512\nhop = 1024\n");
        assert!(e.iter().any(|m| m.contains("audio.hop")), "{e:?}");
    }

    #[test]
    fn window_and_hop_follow_the_rate_unless_set() {
        use crate::audio::config::AudioConfig;
        let cfg = AudioConfig::default();
        let s = cfg.analyzer_settings(8_000);
        assert_eq!((s.fft_size, s.hop), (256, 43));
        let s = cfg.analyzer_settings(48_000);
        assert_eq!((s.fft_size, s.hop), (1024, 256));
        let cfg = AudioConfig {
            fft_size: Some(2048),
            hop: Some(128),
            ..AudioConfig::default()
        };
        let s = cfg.analyzer_settings(8_000);
        assert_eq!((s.fft_size, s.hop), (2048, 128));
        // A hop alone keeps the timed window, grown to hold the hop.
        let cfg = AudioConfig {
            hop: Some(512),
            ..AudioConfig::default()
        };
        let s = cfg.analyzer_settings(8_000);
        assert_eq!((s.fft_size, s.hop), (512, 512));
        // An FFT alone keeps the timed hop, capped at the FFT.
        let cfg = AudioConfig {
            fft_size: Some(64),
            ..AudioConfig::default()
        };
        let s = cfg.analyzer_settings(192_000);
        assert_eq!((s.fft_size, s.hop), (64, 64));
    }
}
