//! The whole per-hop analysis: front end → features with auto-gain and meter smoothing → onset
//! detector → beat tracker. Feed it samples in any chunk size; it produces one [`AudioFrame`]
//! per hop and passes onsets and beats to a callback. Pure, allocation-free after construction,
//! so the live analysis thread and `scope-deck analyze` run exactly the same code.

use crate::audio::dsp::beat::{BeatParams, BeatTracker, TrackerKind};
use crate::audio::dsp::frontend::{FrontEnd, amp_to_db};
use crate::audio::dsp::learned::LearnedTracker;
use crate::audio::dsp::onset::{OnsetDetector, OnsetHop, OnsetParams, PulseCheck, refine_onset};
use crate::audio::features::{AudioEvent, AudioFrame, SPECTRUM_BARS};
use crate::audio::tempo::TempoCmd;

/// Everything the analysis needs to know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyzerSettings {
    /// Input sample rate, Hz.
    pub(crate) sample_rate: f32,
    /// FFT size (power of two).
    pub fft_size: usize,
    /// Hop size, samples.
    pub hop: usize,
    /// Bass/mid and mid/high boundaries, Hz.
    pub(crate) cutoffs: [f32; 2],
    /// Sensitivity multiplier after auto-gain (1 = the recent peak maps to full scale).
    pub(crate) sensitivity: f32,
    /// Auto-gain on (levels relative to the recent peak) or off (absolute).
    pub(crate) auto_gain: bool,
    /// Meter fall-off per second (cava-like gravity), in full scales.
    pub(crate) meter_falloff: f32,
    /// Onset detector tunables.
    pub(crate) onset: OnsetParams,
    /// Beat tracker tunables.
    pub beat: BeatParams,
}

impl AnalyzerSettings {
    /// Defaults for a sample rate. Window and hop are set in time (see [`fft_and_hop_for`]), so
    /// 8 kHz and 192 kHz input see the same ~21 ms window and ~5.3 ms hop as 48 kHz does.
    pub fn new(sample_rate: f32) -> Self {
        let (fft_size, hop) = fft_and_hop_for(sample_rate);
        AnalyzerSettings {
            sample_rate,
            fft_size,
            hop,
            cutoffs: [250.0, 4000.0],
            sensitivity: 1.0,
            auto_gain: true,
            meter_falloff: 1.5,
            onset: OnsetParams::default(),
            beat: BeatParams::default(),
        }
    }
}

/// Which beat tracker the analysis runs, as reported by `analyze` (bump it when the beats it
/// emits change, so stored results can be told apart).
pub(crate) fn tracker_version() -> &'static str {
    "dsp-1"
}

/// Default analysis window, seconds (1024 samples at 48 kHz).
pub(crate) const WINDOW_SECS: f64 = 1024.0 / 48_000.0;
/// Default hop, seconds (256 samples at 48 kHz).
pub(crate) const HOP_SECS: f64 = 256.0 / 48_000.0;

/// FFT size and hop in samples for a sample rate: the hop is [`HOP_SECS`] rounded to whole
/// samples, the FFT the smallest power of two holding [`WINDOW_SECS`] (at least 64, so the
/// window never gets shorter — lower rates keep their bass resolution). 48 kHz → 1024/256,
/// 44.1 kHz → 1024/235, 8 kHz → 256/43, 192 kHz → 4096/1024.
pub(crate) fn fft_and_hop_for(sample_rate: f32) -> (usize, usize) {
    let sr = f64::from(sample_rate).max(1.0);
    let hop = ((sr * HOP_SECS).round() as usize).max(1);
    let fft = ((sr * WINDOW_SECS).round() as usize)
        .max(64)
        .next_power_of_two()
        .max(hop.next_power_of_two());
    (fft, hop)
}

/// Slow-decaying peak follower (auto-gain reference).
#[derive(Debug, Clone, Copy)]
struct PeakFollower {
    value: f32,
    decay: f32,
    floor: f32,
}

impl PeakFollower {
    fn new(hop_secs: f32, half_life_secs: f32, floor: f32) -> Self {
        PeakFollower {
            value: floor,
            decay: 0.5f32.powf(hop_secs / half_life_secs),
            floor,
        }
    }
    fn update(&mut self, x: f32) -> f32 {
        self.value = (self.value * self.decay).max(x).max(self.floor);
        self.value
    }
}

/// Makes one input sample safe for every running statistic downstream: NaN and ±Inf (a broken
/// driver, a corrupt float file) become silence, denormals and sub-1e-30 dust become exact zero
/// (denormal arithmetic is up to 100× slower), and everything else is clamped to full scale so
/// one wild sample cannot blow up the auto-gain reference for the next half minute.
#[inline]
pub(crate) fn sanitize(x: f32) -> f32 {
    if !x.is_finite() || x.abs() < 1e-30 {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

/// The beat path: the learned tracker, or the hand-written one (config `beat_tracker = "dsp"`,
/// or when the compiled-in model cannot be loaded).
enum BeatPath {
    Learned(Box<LearnedTracker>),
    Dsp(Box<BeatTracker>),
}

/// The analysis pipeline.
pub struct Analyzer {
    s: AnalyzerSettings,
    fe: FrontEnd,
    onset: OnsetDetector,
    beat: BeatPath,
    pending: Vec<f32>,
    filled: usize,
    hops: u64,
    hop_secs: f64,
    level_ref: PeakFollower,
    band_ref: [PeakFollower; 3],
    bar_ref: PeakFollower,
    flux_ref: PeakFollower,
    bars_raw: [f32; SPECTRUM_BARS],
    bars: [f32; SPECTRUM_BARS],
    frame: AudioFrame,
    /// Last onset detection function value (diagnostics).
    pub(crate) last_odf: f32,
    pulse: PulseCheck,
}

impl Analyzer {
    /// Builds the pipeline (allocates; do it off the real-time path).
    pub fn new(s: AnalyzerSettings) -> Self {
        let fe = FrontEnd::new(s.sample_rate, s.fft_size, s.hop, s.cutoffs);
        let hop_secs = s.hop as f64 / f64::from(s.sample_rate);
        let hs = hop_secs as f32;
        let onset = OnsetDetector::new(fe.filterbank().len(), hs, s.onset)
            .with_warmup((s.fft_size / s.hop.max(1)) as u64);
        let dsp = || BeatPath::Dsp(Box::new(BeatTracker::new(hop_secs, s.beat)));
        let beat = match s.beat.tracker {
            TrackerKind::Dsp => dsp(),
            TrackerKind::Learned => match LearnedTracker::new(f64::from(s.sample_rate), hop_secs) {
                // An untrained placeholder model (before training has committed weights) would
                // be worse than the hand-written tracker.
                Ok(t) if t.model_version().starts_with("placeholder") => dsp(),
                Ok(t) => BeatPath::Learned(Box::new(t)),
                Err(e) => {
                    tracing::warn!("{e}; using the hand-written beat tracker");
                    dsp()
                }
            },
        };
        Analyzer {
            beat,
            onset,
            fe,
            pending: vec![0.0; s.hop],
            filled: 0,
            hops: 0,
            hop_secs,
            level_ref: PeakFollower::new(hs, 10.0, 1e-3),
            band_ref: [PeakFollower::new(hs, 10.0, 1e-3); 3],
            bar_ref: PeakFollower::new(hs, 10.0, 1e-3),
            flux_ref: PeakFollower::new(hs, 10.0, 0.05),
            bars_raw: [0.0; SPECTRUM_BARS],
            bars: [0.0; SPECTRUM_BARS],
            frame: AudioFrame::default(),
            last_odf: 0.0,
            pulse: PulseCheck::default(),
            s,
        }
    }

    /// The settings in use.
    pub(crate) fn settings(&self) -> &AnalyzerSettings {
        &self.s
    }

    /// Stream time consumed so far (end of the last complete hop), seconds.
    pub fn time(&self) -> f64 {
        self.hops as f64 * self.hop_secs
    }

    /// The latest frame.
    pub(crate) fn frame(&self) -> &AudioFrame {
        &self.frame
    }

    /// Obeys a tempo command at the current stream time.
    pub(crate) fn command(&mut self, cmd: TempoCmd) {
        let now = self.time();
        match &mut self.beat {
            BeatPath::Learned(b) => b.command(cmd, now),
            BeatPath::Dsp(b) => b.command(cmd, now),
        }
    }

    /// The beat model's version, or `None` when the hand-written tracker runs.
    pub fn beat_model_version(&self) -> Option<&str> {
        match &self.beat {
            BeatPath::Learned(b) => Some(b.model_version()),
            BeatPath::Dsp(_) => None,
        }
    }

    /// The detected tempo (ignores tap/external overrides).
    #[cfg(test)]
    pub(crate) fn detected_bpm(&self) -> f64 {
        match &self.beat {
            BeatPath::Learned(b) => b.detected_bpm(),
            BeatPath::Dsp(b) => b.detected_bpm(),
        }
    }

    /// Feeds mono samples. Calls `on_frame` after every completed hop and `on_event` for each
    /// onset and beat, in order. Samples are sanitised on the way in ([`sanitize`]), so a broken
    /// driver or file cannot stop or poison the analysis.
    pub fn push(
        &mut self,
        mut samples: &[f32],
        on_frame: &mut impl FnMut(&AudioFrame),
        on_event: &mut impl FnMut(AudioEvent),
    ) {
        let hop = self.s.hop;
        while !samples.is_empty() {
            let take = (hop - self.filled).min(samples.len());
            let dst = &mut self.pending[self.filled..self.filled + take];
            for (d, x) in dst.iter_mut().zip(&samples[..take]) {
                *d = sanitize(*x);
            }
            self.filled += take;
            samples = &samples[take..];
            if self.filled == hop {
                self.filled = 0;
                self.run_hop(on_event);
                on_frame(&self.frame);
            }
        }
    }

    fn run_hop(&mut self, on_event: &mut impl FnMut(AudioEvent)) {
        let lv = self.fe.process(&self.pending);
        self.hops += 1;
        let now = self.time();
        let rms_db = amp_to_db(lv.rms);
        let level_ref = self.level_ref.update(lv.rms);
        let gain = if self.s.auto_gain {
            0.5 / level_ref
        } else {
            1.0
        } * self.s.sensitivity;
        let oh: OnsetHop = self.onset.process(self.fe.filterbank(), gain, rms_db);
        self.last_odf = oh.odf;
        let mut onset_at = None;
        let pulse = oh.onset && self.pulse.push(now);
        if oh.onset {
            if let BeatPath::Learned(b) = &mut self.beat {
                b.note_onset(now);
            }
        }
        let music = match &self.beat {
            BeatPath::Learned(b) => pulse || b.music(now),
            BeatPath::Dsp(_) => true,
        };
        if oh.onset && music {
            let hop = self.s.hop;
            let look = 2 * hop;
            let recent = self.fe.recent(look);
            let off = refine_onset(recent, 32);
            let t = now - (look - off) as f64 / f64::from(self.s.sample_rate);
            onset_at = Some(t);
            on_event(AudioEvent::Onset {
                time: t,
                strength: oh.strength,
            });
        }
        let bs = match &mut self.beat {
            BeatPath::Learned(b) => b.process(now, &self.pending, on_event),
            BeatPath::Dsp(b) => b.process(now, oh.excess, onset_at, on_event),
        };

        // Features for the meters.
        let f = &mut self.frame;
        f.time = now;
        f.rms_db = rms_db;
        f.peak_db = amp_to_db(lv.peak);
        let sens = self.s.sensitivity;
        let norm = |x: f32, r: f32, auto: bool| {
            if auto {
                (x / r * sens).clamp(0.0, 1.0)
            } else {
                (x * sens).clamp(0.0, 1.0)
            }
        };
        f.energy = norm(lv.rms, level_ref, self.s.auto_gain);
        f.centroid_hz = lv.centroid_hz;
        f.brightness = if lv.centroid_hz > 0.0 {
            ((lv.centroid_hz / 200.0).log2() / (8000.0f32 / 200.0).log2()).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let fr = self.flux_ref.update(oh.odf);
        f.flux = (oh.odf / fr).clamp(0.0, 1.0);
        for i in 0..3 {
            let r = self.band_ref[i].update(lv.bands[i]);
            f.bands[i] = norm(lv.bands[i], r, self.s.auto_gain);
        }
        self.fe.bars(&mut self.bars_raw);
        let max_bar = self.bars_raw.iter().fold(0.0f32, |m, v| m.max(*v));
        let br = self.bar_ref.update(max_bar);
        let fall = self.s.meter_falloff * self.hop_secs as f32;
        for (out, raw) in self.bars.iter_mut().zip(&self.bars_raw) {
            let v = norm(*raw, br, self.s.auto_gain);
            // Rise at once, fall with gravity (cava-like).
            *out = if v >= *out { v } else { (*out - fall).max(v) };
        }
        f.spectrum = self.bars;
        f.bpm = bs.bpm;
        f.beat_phase = bs.phase;
        f.bar_position = bs.bar_position;
        f.confidence = bs.confidence;
        f.tempo_source = bs.source;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clicks(bpm: f64, secs: f64, sr: f32) -> (Vec<f32>, Vec<f64>) {
        let n = (secs * f64::from(sr)) as usize;
        let mut x = vec![0.0f32; n];
        let mut truth = Vec::new();
        let mut t = 0.25;
        while t < secs - 0.1 {
            let i0 = (t * f64::from(sr)).round() as usize;
            for (k, v) in x[i0..(i0 + 480).min(n)].iter_mut().enumerate() {
                let e = (-(k as f32) / 60.0).exp();
                *v = 0.8 * e * (2.0 * std::f32::consts::PI * 2000.0 * k as f32 / sr).sin();
            }
            truth.push(i0 as f64 / f64::from(sr));
            t += 60.0 / bpm;
        }
        (x, truth)
    }

    fn analyse(x: &[f32], sr: f32) -> (Vec<f64>, Vec<f64>, Analyzer) {
        let mut s = AnalyzerSettings::new(sr);
        s.beat.tracker = TrackerKind::Dsp;
        analyse_with(x, s)
    }

    fn analyse_with(x: &[f32], s: AnalyzerSettings) -> (Vec<f64>, Vec<f64>, Analyzer) {
        let mut a = Analyzer::new(s);
        let mut onsets = Vec::new();
        let mut beats = Vec::new();
        a.push(x, &mut |_| {}, &mut |e| match e {
            AudioEvent::Onset { time, .. } => onsets.push(time),
            AudioEvent::Beat { time, .. } => beats.push(time),
        });
        (onsets, beats, a)
    }

    #[test]
    fn onset_times_of_clicks() {
        let (x, truth) = clicks(120.0, 10.0, 48_000.0);
        let (onsets, _, _) = analyse(&x, 48_000.0);
        assert_eq!(onsets.len(), truth.len(), "{onsets:?}");
        for (o, t) in onsets.iter().zip(&truth) {
            assert!((o - t).abs() < 0.005, "onset {o} vs {t}");
        }
    }

    #[test]
    fn bpm_of_a_click_track() {
        for bpm in [96.0, 120.0, 140.0] {
            let (x, _) = clicks(bpm, 15.0, 44_100.0);
            let (_, beats, a) = analyse(&x, 44_100.0);
            assert!(
                (a.detected_bpm() - bpm).abs() / bpm < 0.02,
                "{bpm} → {}",
                a.detected_bpm()
            );
            assert!((a.frame().bpm as f64 - bpm).abs() / bpm < 0.02);
            assert!(
                beats.len() as f64 > 15.0 * bpm / 60.0 * 0.6,
                "{} beats",
                beats.len()
            );
        }
    }

    #[test]
    fn silence_is_silent() {
        let x = vec![0.0f32; 48_000 * 5];
        let (onsets, beats, a) = analyse(&x, 48_000.0);
        assert!(onsets.is_empty() && beats.is_empty());
        assert_eq!(a.frame().rms_db, crate::audio::dsp::frontend::FLOOR_DB);
        assert_eq!(a.frame().energy, 0.0);
    }

    #[test]
    fn frames_carry_levels_and_centroid() {
        let sr = 48_000.0;
        let x: Vec<f32> = (0..48_000)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / sr).sin())
            .collect();
        let (_, _, a) = analyse(&x, sr);
        let f = a.frame();
        assert!((f.rms_db - (-9.03)).abs() < 0.1, "{}", f.rms_db);
        assert!((f.peak_db - (-6.02)).abs() < 0.1, "{}", f.peak_db);
        assert!((f.centroid_hz - 1000.0).abs() < 30.0);
        assert!(
            f.bands[1] > 0.9 && f.bands[0] < 0.1 && f.bands[2] < 0.1,
            "{:?}",
            f.bands
        );
        assert!((f.time - 1.0).abs() < 0.01);
        // The meter bar holding 1 kHz is the tallest.
        let top = f.spectrum.iter().cloned().fold(0.0f32, f32::max);
        assert!(top > 0.9);
    }

    #[test]
    fn auto_gain_maps_quiet_and_loud_alike() {
        let sr = 48_000.0;
        let mk = |amp: f32| -> Vec<f32> {
            (0..96_000)
                .map(|i| amp * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / sr).sin())
                .collect()
        };
        let (_, _, loud) = analyse(&mk(0.5), sr);
        let (_, _, quiet) = analyse(&mk(0.02), sr);
        assert!((loud.frame().energy - quiet.frame().energy).abs() < 0.02);
        assert!(loud.frame().rms_db - quiet.frame().rms_db > 27.0);
    }
}
