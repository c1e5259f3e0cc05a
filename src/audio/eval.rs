//! The evaluation set (generated, with exactly known ground truth) and the scorer behind
//! `scope-deck bench audio`: onset F (±50 ms), beat F (±70 ms, mir_eval convention of ignoring
//! the first 5 s), tempo within 4 %, median/p90 detection latency, false events on negatives,
//! and analysis speed. Accuracy goals live here, never in pass/fail tests.

use std::fmt::Write as _;
use std::time::Instant;

use crate::audio::analyze::{FileAnalysis, analyze_samples};
use crate::audio::dsp::analyzer::AnalyzerSettings;
use crate::audio::synth::{Pattern, Sequencer, TempoMap};

/// Sample rate of the evaluation set.
pub(crate) const EVAL_RATE: u32 = 48_000;

/// One generated case.
#[derive(Debug, Clone)]
pub(crate) struct EvalCase {
    /// Name (also the WAV file name when written out).
    pub(crate) name: String,
    /// Mono samples at [`EVAL_RATE`].
    pub(crate) samples: Vec<f32>,
    /// True onset times.
    pub(crate) onsets: Vec<f64>,
    /// True beat times.
    pub(crate) beats: Vec<f64>,
    /// True tempo at the end (None for negatives).
    pub(crate) bpm: Option<f64>,
}

fn seq_case(name: &str, tempo: TempoMap, pattern: Pattern, noise: f32, secs: f64) -> EvalCase {
    let mut s = Sequencer::new(EVAL_RATE, tempo, pattern, noise, true);
    let body = s.render(secs);
    let end_bpm = s.bpm_now();
    lead_in(EvalCase {
        name: name.to_string(),
        samples: body,
        onsets: s.onsets,
        beats: s.beats,
        bpm: Some(end_bpm),
    })
}

/// Every file starts with 0.25 s of (noise-only, if the case has noise) lead-in so the first
/// event does not coincide with the very first sample of the stream.
fn lead_in(mut c: EvalCase) -> EvalCase {
    const LEAD: f64 = 0.25;
    let n = (LEAD * f64::from(EVAL_RATE)) as usize;
    let mut v = vec![0.0f32; n];
    v.extend_from_slice(&c.samples);
    c.samples = v;
    c.onsets
        .iter_mut()
        .chain(c.beats.iter_mut())
        .for_each(|t| *t += LEAD);
    c
}

fn negative(name: &str, samples: Vec<f32>) -> EvalCase {
    EvalCase {
        name: name.to_string(),
        samples,
        onsets: Vec::new(),
        beats: Vec::new(),
        bpm: None,
    }
}

/// Deterministic white noise of RMS `rms`.
pub(crate) fn white_noise(n: usize, rms: f32, seed: u64) -> Vec<f32> {
    let mut r = seed | 1;
    (0..n)
        .map(|_| {
            r ^= r >> 12;
            r ^= r << 25;
            r ^= r >> 27;
            let v = r.wrapping_mul(0x2545_F491_4F6C_DD1D);
            (((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * rms * 3f32.sqrt()
        })
        .collect()
}

/// A logarithmic sine sweep from `f0` to `f1` Hz.
pub(crate) fn sine_sweep(n: usize, f0: f64, f1: f64, amp: f32) -> Vec<f32> {
    let sr = f64::from(EVAL_RATE);
    let dur = n as f64 / sr;
    let k = (f1 / f0).ln();
    (0..n)
        .map(|i| {
            let t = i as f64 / sr;
            let ph = 2.0 * std::f64::consts::PI * f0 * dur / k * ((t / dur * k).exp() - 1.0);
            amp * ph.sin() as f32
        })
        .collect()
}

/// The whole evaluation set.
pub(crate) fn eval_set() -> Vec<EvalCase> {
    let secs = 24.0;
    let n = (secs * f64::from(EVAL_RATE)) as usize;
    let mut v = Vec::new();
    for bpm in [85.0, 100.0, 120.0, 140.0, 165.0] {
        v.push(seq_case(
            &format!("click_{bpm:.0}"),
            TempoMap::Const(bpm),
            Pattern::Clicks,
            0.0,
            secs,
        ));
    }
    v.push(seq_case(
        "click_step_100_130",
        TempoMap::Steps(vec![(0.0, 100.0), (24.0, 130.0)]),
        Pattern::Clicks,
        0.0,
        30.0,
    ));
    v.push(seq_case(
        "click_ramp_100_130",
        TempoMap::Ramp {
            from: 100.0,
            to: 130.0,
            start: 8.0,
            end: 48.0,
        },
        Pattern::Clicks,
        0.0,
        30.0,
    ));
    v.push(seq_case(
        "drums_110",
        TempoMap::Const(110.0),
        Pattern::Drums,
        0.0,
        secs,
    ));
    v.push(seq_case(
        "drums_128",
        TempoMap::Const(128.0),
        Pattern::Drums,
        0.0,
        secs,
    ));
    v.push(seq_case(
        "drums_noise_124",
        TempoMap::Const(124.0),
        Pattern::Drums,
        0.03,
        secs,
    ));
    v.push(seq_case(
        "drums_heavy_noise_96",
        TempoMap::Const(96.0),
        Pattern::Drums,
        0.1,
        secs,
    ));
    v.push(seq_case(
        "clicks_heavy_noise_120",
        TempoMap::Const(120.0),
        Pattern::Clicks,
        0.1,
        secs,
    ));
    v.push(seq_case(
        "song_122",
        TempoMap::Steps(vec![(0.0, 122.0)]),
        Pattern::Song,
        0.0,
        48.0,
    ));
    let mut demo = Sequencer::new(
        EVAL_RATE,
        TempoMap::Steps(vec![(0.0, 120.0), (64.0, 128.0)]),
        Pattern::Song,
        0.0,
        true,
    )
    .with_gain(0.5);
    let samples = demo.render(48.0);
    v.push(lead_in(EvalCase {
        name: "demo_120_to_128".into(),
        samples,
        onsets: demo.onsets.clone(),
        beats: demo.beats.clone(),
        bpm: Some(demo.bpm_now()),
    }));
    v.push(negative("neg_silence", vec![0.0; n]));
    v.push(negative("neg_noise_floor", white_noise(n, 0.01, 7)));
    v.push(negative("neg_loud_noise", white_noise(n, 0.2, 11)));
    v.push(negative(
        "neg_sine_sweep",
        sine_sweep(n, 40.0, 12_000.0, 0.5),
    ));
    v
}

/// True/false positives after one-to-one matching within `tol`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Match {
    /// Matched detections.
    pub(crate) tp: usize,
    /// Unmatched detections.
    pub(crate) fp: usize,
    /// Unmatched truths.
    pub(crate) fn_: usize,
}

impl Match {
    /// F-measure (1 when both lists are empty).
    pub(crate) fn f(&self) -> f64 {
        let d = 2 * self.tp + self.fp + self.fn_;
        if d == 0 {
            1.0
        } else {
            2.0 * self.tp as f64 / d as f64
        }
    }
    fn add(&mut self, o: Match) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

/// Matches sorted detections to sorted truths one-to-one (nearest unmatched within `tol`).
/// Returns the counts and, per matched detection, (detection index, truth index).
pub(crate) fn match_events(det: &[f64], truth: &[f64], tol: f64) -> (Match, Vec<(usize, usize)>) {
    let mut used = vec![false; truth.len()];
    let mut pairs = Vec::new();
    let mut j0 = 0usize;
    for (i, &d) in det.iter().enumerate() {
        while j0 < truth.len() && truth[j0] < d - tol {
            j0 += 1;
        }
        let mut best: Option<usize> = None;
        let mut j = j0;
        while j < truth.len() && truth[j] <= d + tol {
            if !used[j] && best.is_none_or(|b| (truth[j] - d).abs() < (truth[b] - d).abs()) {
                best = Some(j);
            }
            j += 1;
        }
        if let Some(b) = best {
            used[b] = true;
            pairs.push((i, b));
        }
    }
    let tp = pairs.len();
    (
        Match {
            tp,
            fp: det.len() - tp,
            fn_: truth.len() - tp,
        },
        pairs,
    )
}

/// Percentile (0..=100) of a list (NaN when empty).
pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let idx = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[idx.min(s.len() - 1)]
}

/// Scores of one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileScore {
    /// Case name.
    pub(crate) name: String,
    /// Onset matching.
    pub(crate) onset: Match,
    /// Beat matching (after 5 s).
    pub(crate) beat: Match,
    /// True tempo (None for negatives).
    pub(crate) bpm_true: Option<f64>,
    /// Reported tempo.
    pub(crate) bpm: f64,
    /// Onset detection latencies (emission stream time − true onset), seconds.
    pub(crate) onset_latency: Vec<f64>,
    /// Beat emission times relative to the true beat (negative = announced ahead).
    pub(crate) beat_latency: Vec<f64>,
    /// Events on a negative file.
    pub(crate) false_events: usize,
}

impl FileScore {
    /// Tempo within 4 %.
    pub(crate) fn tempo_ok(&self) -> bool {
        self.bpm_true
            .is_some_and(|t| (self.bpm - t).abs() / t <= 0.04)
    }
}

/// Scores one analysis against its case.
pub(crate) fn score(case: &EvalCase, a: &FileAnalysis) -> FileScore {
    let mut s = FileScore {
        name: case.name.clone(),
        bpm_true: case.bpm,
        bpm: a.bpm,
        ..Default::default()
    };
    if case.bpm.is_none() {
        s.false_events = a.onsets.len() + a.beats.len();
        return s;
    }
    let (m, pairs) = match_events(&a.onsets, &case.onsets, 0.05);
    s.onset = m;
    s.onset_latency = pairs
        .iter()
        .map(|&(i, j)| a.onset_detect_times[i] - case.onsets[j])
        .collect();
    let trim = |v: &[f64]| -> Vec<(usize, f64)> {
        v.iter()
            .copied()
            .enumerate()
            .filter(|(_, t)| *t >= 5.0)
            .collect()
    };
    let det: Vec<(usize, f64)> = trim(&a.beats);
    let tru: Vec<f64> = case.beats.iter().copied().filter(|t| *t >= 5.0).collect();
    let det_t: Vec<f64> = det.iter().map(|x| x.1).collect();
    let (m, pairs) = match_events(&det_t, &tru, 0.07);
    s.beat = m;
    s.beat_latency = pairs
        .iter()
        .map(|&(i, j)| a.beat_detect_times[det[i].0] - tru[j])
        .collect();
    s
}

/// Runs the whole evaluation; returns the markdown report.
pub(crate) fn run_bench() -> String {
    let gen_start = Instant::now();
    let cases = eval_set();
    let gen_secs = gen_start.elapsed().as_secs_f64();
    let settings = AnalyzerSettings::new(EVAL_RATE as f32);
    let mut scores = Vec::new();
    let mut audio_secs = 0.0;
    let mut cpu = 0.0;
    for c in &cases {
        let t0 = Instant::now();
        let a = analyze_samples(&c.samples, settings);
        cpu += t0.elapsed().as_secs_f64();
        audio_secs += c.samples.len() as f64 / f64::from(EVAL_RATE);
        scores.push(score(c, &a));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| file | onset F | onset P/R | onset lat. median / p90 (ms) | beat F | beat emit − true median (ms) | BPM true → found | false events |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let mut on_all = Match::default();
    let mut beat_all = Match::default();
    let mut lat_all = Vec::new();
    let mut beat_lat_all = Vec::new();
    let mut tempo_ok = 0;
    let mut positives = 0;
    let mut false_total = 0;
    for s in &scores {
        if s.bpm_true.is_none() {
            false_total += s.false_events;
            let _ = writeln!(
                out,
                "| {} | – | – | – | – | – | – | {} |",
                s.name, s.false_events
            );
            continue;
        }
        positives += 1;
        tempo_ok += usize::from(s.tempo_ok());
        on_all.add(s.onset);
        beat_all.add(s.beat);
        lat_all.extend_from_slice(&s.onset_latency);
        beat_lat_all.extend_from_slice(&s.beat_latency);
        let p = s.onset.tp as f64 / (s.onset.tp + s.onset.fp).max(1) as f64;
        let r = s.onset.tp as f64 / (s.onset.tp + s.onset.fn_).max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.2}/{:.2} | {:.1} / {:.1} | {:.3} | {:+.1} | {:.1} → {:.1}{} | – |",
            s.name,
            s.onset.f(),
            p,
            r,
            1000.0 * percentile(&s.onset_latency, 50.0),
            1000.0 * percentile(&s.onset_latency, 90.0),
            s.beat.f(),
            1000.0 * percentile(&s.beat_latency, 50.0),
            s.bpm_true.unwrap_or(0.0),
            s.bpm,
            if s.tempo_ok() { "" } else { " ✗" },
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "**Totals** (all positive files pooled): onset F **{:.3}** (median latency **{:.1} ms**, p90 {:.1} ms); beat F **{:.3}** (beats emitted median {:+.1} ms from the true beat); tempo within 4 % on **{}/{}** files; **{}** false events on the 4 negatives.",
        on_all.f(),
        1000.0 * percentile(&lat_all, 50.0),
        1000.0 * percentile(&lat_all, 90.0),
        beat_all.f(),
        1000.0 * percentile(&beat_lat_all, 50.0),
        tempo_ok,
        positives,
        false_total,
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "**Speed**: {:.0} s of audio analysed in {:.3} s on one core = **{:.0}× real time** (FFT 1024, hop 256, 48 kHz; generation of the set took {:.1} s, not counted).",
        audio_secs,
        cpu,
        audio_secs / cpu.max(1e-9),
        gen_secs
    );
    out
}

/// Writes the evaluation set as WAV files plus `truth.json` into `dir` (for `analyze`).
pub(crate) fn write_set(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut truth = serde_json::Map::new();
    for c in eval_set() {
        crate::audio::source::wav::write_wav(
            &dir.join(format!("{}.wav", c.name)),
            EVAL_RATE,
            &c.samples,
        )?;
        truth.insert(
            format!("{}.wav", c.name),
            serde_json::json!({"onsets": c.onsets, "beats": c.beats, "bpm": c.bpm}),
        );
    }
    std::fs::write(
        dir.join("truth.json"),
        serde_json::Value::Object(truth).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_one_to_one() {
        let (m, pairs) = match_events(&[0.99, 1.01, 2.2], &[1.0, 2.0], 0.05);
        assert_eq!(
            m,
            Match {
                tp: 1,
                fp: 2,
                fn_: 1
            }
        );
        assert_eq!(pairs, vec![(0, 0)]);
        assert!((m.f() - 0.4).abs() < 1e-9);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
    }
}
