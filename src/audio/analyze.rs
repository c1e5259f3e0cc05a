//! `scope-deck analyze FILE... --json`: the live analysis, run faster than real time over files.
//! Event times *and* the stream time at which each was emitted are reported, so accuracy and
//! detection latency can be scored offline.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::audio::config::AudioConfig;
use crate::audio::dsp::analyzer::{Analyzer, AnalyzerSettings};
use crate::audio::error::AudioError;
use crate::audio::features::AudioEvent;
use crate::audio::source::file::decode_mono;

/// The analysis of one file (the JSON contract of `analyze`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileAnalysis {
    /// Beat times, seconds.
    pub beats: Vec<f64>,
    /// Onset times, seconds.
    pub onsets: Vec<f64>,
    /// Final tempo estimate (0 when none).
    pub bpm: f64,
    /// Stream time (audio consumed) when each beat was emitted.
    pub beat_detect_times: Vec<f64>,
    /// Stream time (audio consumed) when each onset was emitted.
    pub onset_detect_times: Vec<f64>,
}

/// Runs the causal analysis over mono samples, hop by hop, exactly as the live thread does.
pub fn analyze_samples(x: &[f32], settings: AnalyzerSettings) -> FileAnalysis {
    let mut a = Analyzer::new(settings);
    let hop = settings.hop;
    let mut out = FileAnalysis::default();
    let mut events: Vec<AudioEvent> = Vec::with_capacity(8);
    for chunk in x.chunks(hop) {
        a.push(chunk, &mut |_| {}, &mut |e| events.push(e));
        let t = a.time();
        for e in events.drain(..) {
            match e {
                AudioEvent::Onset { time, .. } => {
                    out.onsets.push(time);
                    out.onset_detect_times.push(t);
                }
                AudioEvent::Beat { time, .. } => {
                    out.beats.push(time);
                    out.beat_detect_times.push(t);
                }
            }
        }
    }
    out.bpm = f64::from(a.frame().bpm);
    out
}

/// Decodes and analyses each file; returns the JSON map keyed by basename, or the first error.
pub fn analyze_files(
    files: &[PathBuf],
    cfg: &AudioConfig,
) -> Result<BTreeMap<String, FileAnalysis>, AudioError> {
    let mut map = BTreeMap::new();
    for f in files {
        let (x, rate) = decode_mono(f, cfg.channel)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| f.display().to_string());
        map.insert(name, analyze_samples(&x, cfg.analyzer_settings(rate)));
    }
    Ok(map)
}
