//! `scope-deck analyze FILE... --json`: the live analysis, run faster than real time over files.
//! Event times *and* the stream time at which each was emitted are reported, so accuracy and
//! detection latency can be scored offline. Files are decoded and analysed block by block, so
//! memory does not grow with a file's length (only with the number of events found).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::audio::config::AudioConfig;
use crate::audio::dsp::analyzer::{Analyzer, AnalyzerSettings, tracker_version};
use crate::audio::error::AudioError;
use crate::audio::features::AudioEvent;
use crate::audio::source::file::{FileDecoder, mixdown};

/// The analysis of one file (the JSON contract of `analyze`). Fields are only ever added, so
/// scripts written against older versions keep working.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct FileAnalysis {
    /// Beat times, seconds.
    pub(crate) beats: Vec<f64>,
    /// Onset times, seconds.
    pub(crate) onsets: Vec<f64>,
    /// The tempo readout when the last beat was emitted (0 when none was): the readout itself
    /// drops to 0 once the music stops, so the value at the end of the file would hide it.
    pub(crate) bpm: f64,
    /// Stream time (audio consumed) when each beat was emitted.
    pub(crate) beat_detect_times: Vec<f64>,
    /// Stream time (audio consumed) when each onset was emitted.
    pub(crate) onset_detect_times: Vec<f64>,
    /// The tracker's confidence (0..1) when each beat was emitted.
    pub(crate) beat_confidence: Vec<f64>,
    /// Each beat's index in the bar (0 = downbeat).
    pub(crate) beat_in_bar: Vec<u32>,
    /// The beats with `beat_in_bar` 0, seconds.
    pub(crate) downbeats: Vec<f64>,
    /// Input sample rate, Hz.
    pub(crate) sample_rate: u32,
    /// Audio analysed, seconds.
    pub(crate) duration: f64,
    /// Which beat tracker produced the beats ([`tracker_version`]).
    pub(crate) tracker: &'static str,
    /// The learned tracker's model version (`None` when the hand-written tracker ran).
    pub(crate) model_version: Option<String>,
}

/// One entry of `analyze`'s JSON: the analysis, or why the file could not be analysed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum FileReport {
    /// The file was analysed.
    Ok {
        /// The path as given on the command line.
        path: String,
        /// The analysis (its fields sit next to `path`).
        #[serde(flatten)]
        analysis: Box<FileAnalysis>,
    },
    /// The file could not be opened or decoded.
    Error {
        /// The path as given on the command line.
        path: String,
        /// What went wrong, as printed on stderr.
        error: String,
    },
}

/// Drives an [`Analyzer`] and collects its events with the stream time and confidence at which
/// each was emitted.
struct Collector {
    a: Analyzer,
    out: FileAnalysis,
    events: Vec<AudioEvent>,
    samples: u64,
}

/// Rounds a 0..1 figure to 3 decimals so the JSON does not carry f32 noise.
fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

impl Collector {
    fn new(settings: AnalyzerSettings) -> Self {
        let a = Analyzer::new(settings);
        let model_version = a.beat_model_version().map(str::to_owned);
        Collector {
            a,
            out: FileAnalysis {
                sample_rate: settings.sample_rate.round() as u32,
                tracker: if model_version.is_some() {
                    "learned-1"
                } else {
                    tracker_version()
                },
                model_version,
                ..FileAnalysis::default()
            },
            events: Vec::with_capacity(8),
            samples: 0,
        }
    }

    /// Feeds mono samples. Pushes at most one hop at a time, so every event is stamped with
    /// the stream time and confidence of the hop that emitted it.
    fn push(&mut self, x: &[f32]) {
        self.samples += x.len() as u64;
        let hop = self.a.settings().hop;
        for chunk in x.chunks(hop) {
            let events = &mut self.events;
            self.a.push(chunk, &mut |_| {}, &mut |e| events.push(e));
            if self.events.is_empty() {
                continue;
            }
            let t = self.a.time();
            let conf = round3(self.a.frame().confidence);
            let bpm = f64::from(self.a.frame().bpm);
            let out = &mut self.out;
            for e in self.events.drain(..) {
                match e {
                    AudioEvent::Onset { time, .. } => {
                        out.onsets.push(time);
                        out.onset_detect_times.push(t);
                    }
                    AudioEvent::Beat { time, in_bar, .. } => {
                        out.beats.push(time);
                        out.beat_detect_times.push(t);
                        out.beat_confidence.push(conf);
                        out.beat_in_bar.push(in_bar);
                        if bpm > 0.0 {
                            out.bpm = bpm;
                        }
                        if in_bar == 0 {
                            out.downbeats.push(time);
                        }
                    }
                }
            }
        }
    }

    fn finish(mut self) -> FileAnalysis {
        self.out.duration = self.samples as f64 / f64::from(self.a.settings().sample_rate);
        self.out
    }
}

/// Runs the causal analysis over mono samples, hop by hop, exactly as the live thread does.
pub(crate) fn analyze_samples(x: &[f32], settings: AnalyzerSettings) -> FileAnalysis {
    let mut c = Collector::new(settings);
    c.push(x);
    c.finish()
}

/// Frames decoded per block: memory use is a few blocks whatever the file's length.
const BLOCK_FRAMES: usize = 65_536;
/// A decoder that delivers nothing for this long is reported as stalled instead of hanging.
const STALL: Duration = Duration::from_secs(20);

/// Decodes `path` block by block and analyses it as it goes.
pub(crate) fn analyze_file(path: &Path, cfg: &AudioConfig) -> Result<FileAnalysis, AudioError> {
    let mut d = FileDecoder::open(path, false)?;
    let (ch, rate) = d.format()?;
    let mut c = Collector::new(cfg.analyzer_settings(rate));
    let mut inter = Vec::with_capacity(BLOCK_FRAMES * usize::from(ch.max(1)));
    let mut mono = Vec::with_capacity(BLOCK_FRAMES);
    let mut last_data = Instant::now();
    while let Some(n) = d.read(&mut inter, BLOCK_FRAMES)? {
        if n == 0 {
            if last_data.elapsed() > STALL {
                return Err(AudioError::file(
                    path.display(),
                    format!("the decoder delivered no audio for {}s", STALL.as_secs()),
                ));
            }
            continue;
        }
        last_data = Instant::now();
        mixdown(&inter, usize::from(ch), cfg.channel, &mut mono);
        inter.clear();
        c.push(&mono);
        mono.clear();
    }
    Ok(c.finish())
}

/// The JSON keys for `files`: each file's name, or the path as given when two different paths
/// share a name (`a/set.wav` and `b/set.wav`), so no result hides another.
pub(crate) fn report_keys(files: &[PathBuf]) -> Vec<String> {
    let name = |f: &PathBuf| {
        f.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| f.display().to_string())
    };
    let mut paths_by_name: HashMap<String, Vec<&PathBuf>> = HashMap::new();
    for f in files {
        let v = paths_by_name.entry(name(f)).or_default();
        if !v.contains(&f) {
            v.push(f);
        }
    }
    files
        .iter()
        .map(|f| {
            let n = name(f);
            if paths_by_name.get(&n).is_some_and(|v| v.len() > 1) {
                f.display().to_string()
            } else {
                n
            }
        })
        .collect()
}

/// Analyses each file; a file that fails gets an error entry (and `on_error` is told) while
/// the others are still analysed. Returns the JSON map and how many files failed.
pub(crate) fn analyze_files(
    files: &[PathBuf],
    cfg: &AudioConfig,
    on_error: &mut impl FnMut(&str),
) -> (BTreeMap<String, FileReport>, usize) {
    let mut map = BTreeMap::new();
    let mut failed = 0;
    for (f, key) in files.iter().zip(report_keys(files)) {
        if map.contains_key(&key) {
            continue; // the same path given twice
        }
        let path = f.display().to_string();
        let report = match analyze_file(f, cfg) {
            Ok(analysis) => FileReport::Ok {
                path,
                analysis: Box::new(analysis),
            },
            Err(e) => {
                failed += 1;
                let mut error = e.to_string();
                if !error.contains(&path) {
                    error = format!("{path}: {error}");
                }
                on_error(&error);
                FileReport::Error { path, error }
            }
        };
        map.insert(key, report);
    }
    (map, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_in_different_folders_get_their_paths_as_keys() {
        let files: Vec<PathBuf> = ["a/set.wav", "b/set.wav", "c/other.wav", "a/set.wav"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            report_keys(&files),
            ["a/set.wav", "b/set.wav", "other.wav", "a/set.wav"]
        );
        let files = vec![PathBuf::from("x/one.wav"), PathBuf::from("x/one.wav")];
        assert_eq!(report_keys(&files), ["one.wav", "one.wav"]);
    }

    #[test]
    fn samples_carry_rate_duration_and_tracker() {
        let a = analyze_samples(&vec![0.0; 48_000 * 2], AnalyzerSettings::new(48_000.0));
        assert_eq!(a.sample_rate, 48_000);
        assert!((a.duration - 2.0).abs() < 1e-9);
        // The default is the learned tracker, which names its model.
        assert_eq!(a.tracker, "learned-1");
        assert!(a.model_version.is_some());
        assert!(a.beats.is_empty() && a.beat_confidence.is_empty());
    }
}
