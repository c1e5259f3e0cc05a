//! Causal beat tracker. Tempo comes from a running (exponentially weighted) autocorrelation of
//! the onset strength, scored with its second multiple and a preference range so octave errors
//! (87 vs 174 BPM) resolve to the configured range; phase comes from a comb-filter resonator tuned
//! to the period. Beats are *predicted* one hop ahead from phase and tempo, so they are emitted on
//! time rather than after the fact. Tap, nudge, re-downbeat and an external clock (MIDI) steer it.
//! Pure and allocation-free after construction.

use crate::audio::features::{AudioEvent, TempoSource};
use crate::audio::tempo::TempoCmd;

/// Which beat tracker the analyser runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TrackerKind {
    /// The learned network + bar-pointer decoder (`dsp::learned`): the default. Falls back to
    /// the hand-written tracker if the compiled-in model cannot be loaded.
    #[default]
    Learned,
    /// The hand-written tracker (onset autocorrelation + resonator): cheaper, tuned on clicks.
    Dsp,
}

/// Tunables of the beat tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeatParams {
    /// Learned or hand-written tracker; the fields below tune only the hand-written one.
    pub tracker: TrackerKind,
    /// Slowest preferred tempo.
    pub(crate) bpm_min: f32,
    /// Fastest preferred tempo.
    pub(crate) bpm_max: f32,
    /// Beats per bar.
    pub(crate) beats_per_bar: u32,
    /// Time constant of the running autocorrelation, seconds.
    pub(crate) acf_tau: f32,
    /// Resonator feedback per beat (memory of about 1/(1-beta) beats).
    pub(crate) resonator_beta: f32,
    /// Confidence needed to start emitting beats.
    pub(crate) conf_on: f32,
    /// Confidence below which beats stop.
    pub(crate) conf_off: f32,
    /// Delay between an onset and the peak of its onset strength, seconds.
    pub(crate) odf_delay: f32,
    /// Onsets needed in the last 4 s before beats are emitted.
    pub(crate) min_onsets: u32,
}

impl Default for BeatParams {
    fn default() -> Self {
        BeatParams {
            tracker: TrackerKind::Learned,
            bpm_min: 80.0,
            bpm_max: 170.0,
            beats_per_bar: 4,
            acf_tau: 2.5,
            resonator_beta: 0.8,
            conf_on: 0.3,
            conf_off: 0.15,
            odf_delay: 0.003,
            min_onsets: 4,
        }
    }
}

/// The tracker's state after a hop, for the published frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BeatState {
    /// Tempo (0 when unknown).
    pub(crate) bpm: f32,
    /// Position within the beat 0..1.
    pub(crate) phase: f32,
    /// Beat index in the bar plus phase.
    pub(crate) bar_position: f32,
    /// Confidence 0..1.
    pub(crate) confidence: f32,
    /// Who sets the tempo.
    pub(crate) source: TempoSource,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Detected,
    /// Tap or nudge: tempo held, phase follows the music when it is confident.
    Manual {
        bpm: f64,
    },
    /// External clock: tempo dictated; phase too when known.
    External {
        bpm: f64,
        source: TempoSource,
    },
}

const TAPS: usize = 8;
const ONSET_MEMORY: usize = 64;

/// Streaming beat tracker, one call per hop.
pub(crate) struct BeatTracker {
    p: BeatParams,
    hop: f64,
    /// Onset strength history, newest first from `hist_pos`, stored twice so the last
    /// `len` values are always one contiguous slice (the ACF update vectorises).
    hist: Vec<f32>,
    hist_pos: usize,
    /// Tempo prior per lag (precomputed).
    prior: Vec<f32>,
    res: Vec<f32>,
    mask: usize,
    t: usize,
    acf: Vec<f32>,
    lag_min: usize,
    lag_max: usize,
    det_period: f64,
    pending_period: f64,
    pending_count: u32,
    conf: f32,
    emitting: bool,
    mode: Mode,
    anchor: Option<f64>,
    last_beat: Option<f64>,
    count: u64,
    downbeat: u64,
    onsets: [f64; ONSET_MEMORY],
    onset_pos: usize,
    taps: [f64; TAPS],
    ntaps: usize,
    disagree_since: Option<f64>,
    grid: Option<f64>,
    lost_since: Option<f64>,
}

impl BeatTracker {
    /// A tracker fed one onset-strength value every `hop_secs`.
    pub(crate) fn new(hop_secs: f64, p: BeatParams) -> Self {
        let fps = 1.0 / hop_secs;
        let lag_min = ((60.0 / f64::from(p.bpm_max)) * fps).floor().max(2.0) as usize;
        let lag_max = ((60.0 / f64::from(p.bpm_min)) * fps).ceil() as usize + 1;
        let len = (2 * lag_max + 4).next_power_of_two();
        BeatTracker {
            p,
            hop: hop_secs,
            hist: vec![0.0; 2 * len],
            hist_pos: 0,
            prior: (0..=lag_max)
                .map(|l| {
                    if l == 0 {
                        return 0.0;
                    }
                    let bpm = 60.0 * fps / l as f64;
                    let center = (f64::from(p.bpm_min) * f64::from(p.bpm_max)).sqrt();
                    if bpm < f64::from(p.bpm_min) * 0.98 || bpm > f64::from(p.bpm_max) * 1.02 {
                        0.0
                    } else {
                        (-0.5 * (bpm / center).log2().powi(2)).exp() as f32
                    }
                })
                .collect(),
            res: vec![0.0; len],
            mask: len - 1,
            t: 0,
            acf: vec![0.0; 2 * lag_max + 3],
            lag_min,
            lag_max,
            det_period: 0.0,
            pending_period: 0.0,
            pending_count: 0,
            conf: 0.0,
            emitting: false,
            mode: Mode::Detected,
            anchor: None,
            last_beat: None,
            count: 0,
            downbeat: 0,
            onsets: [f64::NEG_INFINITY; ONSET_MEMORY],
            onset_pos: 0,
            taps: [0.0; TAPS],
            ntaps: 0,
            disagree_since: None,
            grid: None,
            lost_since: None,
        }
    }

    /// The detected tempo in BPM (0 when none yet), regardless of tap or external override.
    pub(crate) fn detected_bpm(&self) -> f64 {
        if self.det_period > 0.0 {
            60.0 / (self.det_period * self.hop)
        } else {
            0.0
        }
    }

    fn period_secs(&self) -> Option<f64> {
        match self.mode {
            Mode::Detected => (self.det_period > 0.0).then_some(self.det_period * self.hop),
            Mode::Manual { bpm } | Mode::External { bpm, .. } => Some(60.0 / bpm),
        }
    }

    fn source(&self) -> TempoSource {
        match self.mode {
            Mode::Detected => TempoSource::Detected,
            Mode::Manual { .. } => TempoSource::Tap,
            Mode::External { source, .. } => source,
        }
    }

    /// Obeys a tempo command. `now` is the stream time at which it arrived (taps are anchored
    /// there; their spacing comes from the tap timestamps themselves).
    pub(crate) fn command(&mut self, cmd: TempoCmd, now: f64) {
        match cmd {
            TempoCmd::Tap { at_secs } => {
                if self.ntaps > 0 {
                    let last = self.taps[(self.ntaps - 1) % TAPS];
                    let gap = at_secs - last;
                    if !(0.2..=2.0).contains(&gap) {
                        self.ntaps = 0;
                    }
                }
                self.taps[self.ntaps % TAPS] = at_secs;
                self.ntaps += 1;
                let n = self.ntaps.min(TAPS);
                if n >= 2 {
                    let mut iv = [0.0f64; TAPS];
                    let first = self.ntaps - n;
                    for i in 1..n {
                        iv[i - 1] =
                            self.taps[(first + i) % TAPS] - self.taps[(first + i - 1) % TAPS];
                    }
                    let iv = &mut iv[..n - 1];
                    iv.sort_by(f64::total_cmp);
                    let med = iv[iv.len() / 2];
                    if med > 0.0 {
                        self.mode = Mode::Manual {
                            bpm: (60.0 / med).clamp(20.0, 400.0),
                        };
                        self.disagree_since = None;
                    }
                }
                self.anchor = Some(now);
                // The tap is a beat: the next emitted beat is one period later.
                self.last_beat = Some(now);
            }
            TempoCmd::Nudge { bpm } => {
                let cur = self.period_secs().map(|p| 60.0 / p).unwrap_or(120.0);
                let new = (cur + bpm).clamp(20.0, 400.0);
                match self.mode {
                    Mode::External { source, .. } => {
                        self.mode = Mode::External { bpm: new, source }
                    }
                    _ => self.mode = Mode::Manual { bpm: new },
                }
                self.disagree_since = None;
            }
            TempoCmd::Redownbeat => {
                // The beat nearest to now becomes beat 1.
                let nearest_next = match (self.last_beat, self.period_secs()) {
                    (Some(lb), Some(p)) => now - lb > p / 2.0,
                    _ => false,
                };
                self.downbeat = if nearest_next {
                    self.count + 1
                } else {
                    self.count.max(1)
                };
                // Stored as the count of the beat that is a downbeat.
            }
            TempoCmd::External {
                bpm,
                beat_phase,
                source,
            } => {
                if bpm > 0.0 && bpm.is_finite() {
                    self.mode = Mode::External {
                        bpm: bpm.clamp(20.0, 400.0),
                        source,
                    };
                    if let Some(ph) = beat_phase {
                        let p = 60.0 / bpm;
                        self.anchor = Some(now - ph.rem_euclid(1.0) * p);
                    }
                }
            }
            TempoCmd::ExternalStopped => {
                if matches!(self.mode, Mode::External { .. }) {
                    self.mode = Mode::Detected;
                    self.anchor = None;
                }
            }
        }
    }

    fn recent_onsets(&self, now: f64) -> u32 {
        self.onsets.iter().filter(|&&t| now - t <= 4.0).count() as u32
    }

    fn estimate_tempo(&mut self) {
        let score = |acf: &[f32], l: usize| acf[l] + 0.5 * acf[2 * l];
        let mut best = 0usize;
        let mut best_s = 0.0f32;
        let mut sum = 0.0f32;
        for l in self.lag_min..=self.lag_max {
            sum += self.acf[l];
            let prior = self.prior[l];
            if prior <= 0.0 {
                continue;
            }
            let s = score(&self.acf, l) * prior;
            if s > best_s {
                best_s = s;
                best = l;
            }
        }
        let mean = sum / (self.lag_max - self.lag_min + 1) as f32;
        let a0 = self.acf[0];
        if best == 0 || a0 <= 1e-9 {
            self.conf = 0.0;
            return;
        }
        self.conf = ((self.acf[best] - mean) / (a0 - mean + 1e-9)).clamp(0.0, 1.0);
        // Parabolic refinement of the peak lag.
        let (sm, s0, sp) = (
            score(&self.acf, best - 1),
            score(&self.acf, best),
            score(&self.acf, (best + 1).min(self.lag_max)),
        );
        let den = sm - 2.0 * s0 + sp;
        let off = if den.abs() > 1e-12 {
            (0.5 * (sm - sp) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let cand = best as f64 + f64::from(off);
        if self.det_period <= 0.0 {
            self.det_period = cand;
            return;
        }
        let rel = (cand - self.det_period).abs() / self.det_period;
        if rel < 0.04 {
            self.det_period += 0.25 * (cand - self.det_period);
            self.pending_count = 0;
        } else {
            if (cand - self.pending_period).abs() / cand < 0.04 {
                self.pending_count += 1;
            } else {
                self.pending_period = cand;
                self.pending_count = 1;
            }
            let cur = self.det_period.round() as usize;
            let cur_s = if (self.lag_min..=self.lag_max).contains(&cur) {
                score(&self.acf, cur)
            } else {
                0.0
            };
            if self.pending_count >= 6 && s0 > 1.05 * cur_s {
                self.det_period = cand;
                self.pending_count = 0;
            }
        }
    }

    /// Feeds one hop: `now` is the stream time at the end of the hop, `strength` the onset
    /// strength above its baseline, `onset_at` the time of an onset detected in this hop.
    /// Beats due before the end of the next hop are passed to `emit`.
    pub(crate) fn process(
        &mut self,
        now: f64,
        strength: f32,
        onset_at: Option<f64>,
        emit: &mut impl FnMut(AudioEvent),
    ) -> BeatState {
        if let Some(t) = onset_at {
            self.onsets[self.onset_pos % ONSET_MEMORY] = t;
            self.onset_pos += 1;
        }
        let t = self.t;
        let x = strength;
        let len = self.mask + 1;
        self.hist_pos = (self.hist_pos + len - 1) % len;
        self.hist[self.hist_pos] = x;
        self.hist[self.hist_pos + len] = x;
        let a = (self.hop / f64::from(self.p.acf_tau)).min(1.0) as f32;
        let acf_len = self.acf.len().min(len);
        let recent = &self.hist[self.hist_pos..self.hist_pos + acf_len];
        for (c, h) in self.acf.iter_mut().zip(recent) {
            *c += a * (x * h - *c);
        }
        if t % 4 == 0 {
            self.estimate_tempo();
        }
        let period = self.period_secs();
        // Resonator at the current period.
        let pf = period.map(|p| (p / self.hop).round() as usize).unwrap_or(0);
        if pf >= 2 && pf <= self.mask {
            let beta = self.p.resonator_beta;
            let back = if t >= pf {
                self.res[(t - pf) & self.mask]
            } else {
                0.0
            };
            self.res[t & self.mask] = beta * back + (1.0 - beta) * x;
        } else {
            self.res[t & self.mask] = x;
        }
        self.t += 1;

        let onsets_ok = self.recent_onsets(now) >= self.p.min_onsets;
        if self.conf >= self.p.conf_on && onsets_ok {
            self.emitting = true;
        } else if self.conf < self.p.conf_off || !onsets_ok {
            self.emitting = false;
        }

        // Manual tempo gives way when the music confidently disagrees for 8 s.
        if let Mode::Manual { bpm } = self.mode {
            let det = self.detected_bpm();
            if self.emitting && det > 0.0 && ((det - bpm) / bpm).abs() > 0.06 {
                let since = *self.disagree_since.get_or_insert(now);
                if now - since > 8.0 {
                    self.mode = Mode::Detected;
                    self.disagree_since = None;
                }
            } else {
                self.disagree_since = None;
            }
        }

        let mut state = BeatState {
            confidence: self.conf,
            source: self.source(),
            ..BeatState::default()
        };
        let Some(period) = period else {
            return state;
        };
        state.bpm = (60.0 / period) as f32;

        // Phase: where in the last period the resonator peaks.
        let delay = f64::from(self.p.odf_delay);
        let at_j = |j: f64| now - self.hop * (j + 0.5) - delay;
        let peak = if pf >= 2 && t + 1 >= pf {
            let mut best_j = 0usize;
            let mut best_v = f32::MIN;
            for j in 0..pf.min(self.mask) {
                let v = self.res[(t - j) & self.mask];
                if v > best_v {
                    best_v = v;
                    best_j = j;
                }
            }
            (best_v > 0.0).then_some((best_j, best_v))
        } else {
            None
        };
        // Keep a beat grid with inertia: follow the resonator's local peak near our own phase,
        // and only jump to a different phase when ours has been clearly weaker for 3 beats (a
        // syncopated breakdown must not flip the beat onto the off-beat).
        let resonator_anchor = match (peak, self.grid) {
            (None, _) => None,
            (Some((j, _)), None) => {
                self.grid = Some(at_j(j as f64));
                self.grid
            }
            (Some((pj, pv)), Some(grid)) => {
                let pfl = pf as f64;
                // Frames back to our most recent grid beat, in [0, pf).
                let j_ours = ((now - delay - grid) / self.hop - 0.5).rem_euclid(pfl);
                let w = (pfl / 8.0).max(1.0);
                let lo = (j_ours - w).round() as i64;
                let hi = (j_ours + w).round() as i64;
                let mut lj = j_ours;
                let mut lv = f32::MIN;
                for j in lo..=hi {
                    let jj = if j < 0 { j + pf as i64 } else { j } as usize;
                    if jj > self.mask || jj > t {
                        continue;
                    }
                    let v = self.res[(t - jj) & self.mask];
                    if v > lv {
                        lv = v;
                        lj = j as f64;
                    }
                }
                if lv >= 0.8 * pv {
                    self.lost_since = None;
                    let target = at_j(lj);
                    let ours = at_j(j_ours);
                    self.grid = Some(ours + 0.2 * (target - ours));
                } else {
                    let since = *self.lost_since.get_or_insert(now);
                    if now - since > 2.0 * period {
                        self.grid = Some(at_j(pj as f64));
                        self.lost_since = None;
                    }
                }
                self.grid
            }
        };
        let free_running = !matches!(self.mode, Mode::Detected);
        let use_music = self.emitting && resonator_anchor.is_some();
        let anchor = match self.mode {
            Mode::External { .. } if self.anchor.is_some() => self.anchor,
            _ if use_music => resonator_anchor,
            _ => self.anchor,
        };
        let may_emit = self.emitting || free_running;
        if let (Some(anchor), true) = (anchor, may_emit) {
            if free_running && self.anchor.is_none() {
                self.anchor = Some(anchor);
            }
            let earliest = match self.last_beat {
                Some(lb) => (lb + 0.5 * period).max(now - 0.25 * period),
                None => now - 0.25 * period,
            };
            let k = ((earliest - anchor) / period).ceil();
            let next = anchor + k * period;
            if next < now + self.hop {
                self.count += 1;
                let bpb = u64::from(self.p.beats_per_bar.max(1));
                let in_bar = ((self.count + bpb * 1024 - self.downbeat.max(1)) % bpb) as u32;
                emit(AudioEvent::Beat {
                    time: next,
                    count: self.count,
                    in_bar,
                    bpm: state.bpm,
                });
                self.last_beat = Some(next);
                if free_running {
                    self.anchor = Some(next);
                }
            }
        }
        if let Some(lb) = self.last_beat {
            let ph = ((now - lb) / period).clamp(0.0, 0.999) as f32;
            let bpb = u64::from(self.p.beats_per_bar.max(1));
            let in_bar = (self.count + bpb * 1024 - self.downbeat.max(1)) % bpb;
            state.phase = ph;
            state.bar_position = in_bar as f32 + ph;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: f64 = 256.0 / 48_000.0;

    /// Feeds an impulse train (one frame per beat) and collects beats.
    fn run_clicks(bt: &mut BeatTracker, bpm: f64, secs: f64) -> Vec<(f64, f32)> {
        let mut beats = Vec::new();
        let period = 60.0 / bpm;
        let mut next_click = 0.5;
        let frames = (secs / HOP) as usize;
        for i in 0..frames {
            let now = (i + 1) as f64 * HOP;
            let mut s = 0.0;
            let mut on = None;
            if now >= next_click {
                s = 1.0;
                on = Some(next_click);
                next_click += period;
            }
            bt.process(now, s, on, &mut |e| {
                if let AudioEvent::Beat { time, bpm, .. } = e {
                    beats.push((time, bpm));
                }
            });
        }
        beats
    }

    #[test]
    fn click_track_tempo_is_found() {
        for bpm in [90.0, 120.0, 150.0] {
            let mut bt = BeatTracker::new(HOP, BeatParams::default());
            let beats = run_clicks(&mut bt, bpm, 20.0);
            let det = bt.detected_bpm();
            assert!((det - bpm).abs() / bpm < 0.02, "{bpm}: detected {det}");
            assert!(beats.len() > 20, "{bpm}: {} beats", beats.len());
            // Late beats land on the clicks (within 30 ms).
            let period = 60.0 / bpm;
            for (t, _) in &beats[beats.len() - 10..] {
                let ph = ((t - 0.5) / period).rem_euclid(1.0);
                let err = ph.min(1.0 - ph) * period;
                assert!(err < 0.03, "{bpm}: beat at {t} off by {err}");
            }
        }
    }

    #[test]
    fn octave_preference_folds_fast_tempo_into_range() {
        let mut bt = BeatTracker::new(
            HOP,
            BeatParams {
                bpm_min: 70.0,
                bpm_max: 140.0,
                ..BeatParams::default()
            },
        );
        run_clicks(&mut bt, 174.0, 20.0);
        assert!(
            (bt.detected_bpm() - 87.0).abs() < 2.0,
            "{}",
            bt.detected_bpm()
        );
    }

    #[test]
    fn silence_gives_no_beats() {
        let mut bt = BeatTracker::new(HOP, BeatParams::default());
        let mut n = 0;
        for i in 0..4000 {
            bt.process((i + 1) as f64 * HOP, 0.0, None, &mut |_| n += 1);
        }
        assert_eq!(n, 0);
    }

    #[test]
    fn taps_set_tempo_and_external_clock_overrides() {
        let mut bt = BeatTracker::new(HOP, BeatParams::default());
        for i in 0..4 {
            bt.command(
                TempoCmd::Tap {
                    at_secs: 10.0 + 0.6 * f64::from(i),
                },
                1.0,
            );
        }
        let mut beats = Vec::new();
        let mut st = BeatState::default();
        for i in 0..1000 {
            let now = 1.0 + (i + 1) as f64 * HOP;
            st = bt.process(now, 0.0, None, &mut |e| {
                if let AudioEvent::Beat { time, .. } = e {
                    beats.push(time)
                }
            });
        }
        assert_eq!(st.source, TempoSource::Tap);
        assert!((st.bpm - 100.0).abs() < 0.01, "{}", st.bpm);
        assert!((beats[1] - beats[0] - 0.6).abs() < 1e-9);
        assert!((beats[0] - 1.6).abs() < 1e-9);
        bt.command(TempoCmd::Nudge { bpm: 2.0 }, 7.0);
        let st = bt.process(7.0, 0.0, None, &mut |_| {});
        assert!((st.bpm - 102.0).abs() < 0.01);
        bt.command(
            TempoCmd::External {
                bpm: 128.0,
                beat_phase: Some(0.0),
                source: TempoSource::MidiClock,
            },
            8.0,
        );
        let st = bt.process(8.0, 0.0, None, &mut |_| {});
        assert_eq!(st.source, TempoSource::MidiClock);
        assert!((st.bpm - 128.0).abs() < 0.01);
        bt.command(TempoCmd::ExternalStopped, 9.0);
        let st = bt.process(9.0, 0.0, None, &mut |_| {});
        assert_eq!(st.source, TempoSource::Detected);
    }

    #[test]
    fn redownbeat_makes_the_current_beat_beat_one() {
        let mut bt = BeatTracker::new(HOP, BeatParams::default());
        bt.command(
            TempoCmd::External {
                bpm: 120.0,
                beat_phase: Some(0.0),
                source: TempoSource::MidiClock,
            },
            0.0,
        );
        let mut in_bars = Vec::new();
        let mut i = 0usize;
        fn step(i: &mut usize, bt: &mut BeatTracker, out: &mut Vec<u32>) {
            *i += 1;
            bt.process(*i as f64 * HOP, 0.0, None, &mut |e| {
                if let AudioEvent::Beat { in_bar, .. } = e {
                    out.push(in_bar)
                }
            });
        }
        while in_bars.len() < 3 {
            step(&mut i, &mut bt, &mut in_bars);
        }
        // Just after the third beat: re-downbeat.
        bt.command(TempoCmd::Redownbeat, i as f64 * HOP);
        let mut after = Vec::new();
        while after.len() < 4 {
            step(&mut i, &mut bt, &mut after);
        }
        assert_eq!(after, vec![1, 2, 3, 0]);
    }
}
