//! Causal onset detector: SuperFlux-style spectral flux (positive differences of log-compressed
//! log-frequency bands against a max filter over neighbouring bands of the previous frame, which
//! keeps sweeps and vibrato quiet), an adaptive threshold (running mean + k·deviation), a level
//! gate evaluated at the onset frame itself, and a refractory period. Pure and allocation-free
//! after construction.

/// Tunables of the onset detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OnsetParams {
    /// Threshold above the running mean, in running deviations.
    pub(crate) k: f32,
    /// Absolute minimum flux (mean log rise per band) for an onset.
    pub(crate) delta: f32,
    /// Level gate: the onset hop's RMS must exceed this, dBFS.
    pub(crate) gate_db: f32,
    /// Minimum time between onsets, seconds.
    pub(crate) refractory: f32,
    /// Time constant of the running statistics, seconds.
    pub(crate) stats_tau: f32,
    /// Log compression factor λ in log10(1 + λ·x) on auto-gained magnitudes.
    pub(crate) lambda: f32,
    /// Per-band whitening: a band's rise counts only above this multiple of its own running
    /// mean rise, so stationary noise stops adding up across bands (0 disables).
    pub(crate) whiten: f32,
    /// Time constant of the per-band running rise, seconds.
    pub(crate) whiten_tau: f32,
    /// Floor of a band's scale in the whitening division (log10 units).
    pub(crate) whiten_floor: f32,
    /// How many previous frames the max filter covers.
    pub(crate) max_frames: usize,
}

impl Default for OnsetParams {
    fn default() -> Self {
        OnsetParams {
            k: 5.0,
            delta: 0.15,
            gate_db: -60.0,
            refractory: 0.03,
            stats_tau: 0.5,
            lambda: 100.0,
            whiten: 2.0,
            whiten_tau: 1.0,
            whiten_floor: 0.05,
            max_frames: 8,
        }
    }
}

/// The result for one hop.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct OnsetHop {
    /// Onset detection function value (flux).
    pub(crate) odf: f32,
    /// The ODF above its running mean (what the beat tracker listens to), ≥ 0.
    pub(crate) excess: f32,
    /// Whether an onset fires at this hop.
    pub(crate) onset: bool,
    /// How far above threshold, 0..1 (meaningful when `onset`).
    pub(crate) strength: f32,
}

/// Streaming onset detector over filterbank frames.
pub(crate) struct OnsetDetector {
    p: OnsetParams,
    hop_secs: f32,
    /// The last `max_frames` frames, ring-ordered, `bands` values each.
    prev: Vec<f32>,
    prev_pos: usize,
    prev_max: Vec<f32>,
    cur: Vec<f32>,
    band_mean: Vec<f32>,
    mean: f32,
    dev: f32,
    since_onset: f32,
    frames: u64,
    warmup: u64,
    decay_pow: f32,
    /// Last threshold (for diagnostics).
    pub(crate) last_threshold: f32,
}

impl OnsetDetector {
    /// No onsets during the first `frames` hops (the first analysis window is incomplete, so
    /// the start of the stream would look like an onset).
    pub(crate) fn with_warmup(mut self, frames: u64) -> Self {
        self.warmup = frames;
        self
    }

    /// A detector for `bands` filterbank bands at one frame per `hop_secs`.
    pub(crate) fn new(bands: usize, hop_secs: f32, p: OnsetParams) -> Self {
        OnsetDetector {
            p,
            hop_secs,
            prev: vec![0.0; bands * p.max_frames.max(1)],
            prev_pos: 0,
            prev_max: vec![0.0; bands],
            cur: vec![0.0; bands],
            band_mean: vec![0.0; bands],
            mean: 0.0,
            dev: 0.0,
            since_onset: f32::INFINITY,
            frames: 0,
            warmup: 4,
            decay_pow: 1.0,
            last_threshold: 0.0,
        }
    }

    /// Feeds one frame of filterbank magnitudes (`gain` is the auto-gain factor) and the hop's
    /// RMS in dBFS.
    pub(crate) fn process(&mut self, bands: &[f32], gain: f32, rms_db: f32) -> OnsetHop {
        let n = self.cur.len().min(bands.len());
        let lam = self.p.lambda * gain;
        for (c, b) in self.cur.iter_mut().zip(bands) {
            *c = (1.0 + lam * b).log10();
        }
        // Max filter over neighbouring bands of the last few frames: a real onset rises above
        // all of them; noise, vibrato and beating partials rarely do. Frames are stored already
        // max-filtered across bands, so this is an element-wise max (vectorises).
        let bands_n = self.cur.len();
        self.prev_max.fill(0.0);
        for frame in self.prev.chunks_exact(bands_n) {
            for (m, v) in self.prev_max.iter_mut().zip(frame) {
                *m = m.max(*v);
            }
        }
        let mut flux = 0.0;
        let wa = (self.hop_secs / self.p.whiten_tau).min(1.0);
        let w = self.p.whiten;
        for ((c, m), bm) in self
            .cur
            .iter()
            .zip(&self.prev_max)
            .zip(self.band_mean.iter_mut())
        {
            let d = (c - m).max(0.0);
            let excess = d - w * *bm;
            if excess > 0.0 {
                // Divide by the band's own scale: reliable (quiet) bands weigh more.
                flux += excess / (*bm + self.p.whiten_floor);
            }
            // Clip the update so one big hit does not raise the band's floor much.
            *bm += wa * (d.min(4.0 * *bm + 0.02) - *bm);
        }
        let odf = if n > 0 { flux / n as f32 } else { 0.0 };
        let frames_kept = self.prev.len() / bands_n.max(1);
        if frames_kept > 0 && n > 0 {
            let at = (self.prev_pos % frames_kept) * bands_n;
            let dst = &mut self.prev[at..at + bands_n];
            for (i, d) in dst.iter_mut().enumerate().take(n) {
                let lo = i.saturating_sub(1);
                let hi = (i + 1).min(n - 1);
                *d = self.cur[lo].max(self.cur[i]).max(self.cur[hi]);
            }
            self.prev_pos += 1;
        }
        self.frames += 1;
        self.since_onset += self.hop_secs;

        // Bias-corrected running statistics (they start at zero): right from the first frames.
        let a = (self.hop_secs / self.p.stats_tau).min(1.0);
        self.decay_pow *= 1.0 - a;
        let corr = 1.0 / (1.0 - self.decay_pow).max(1e-6);
        let (mean, dev) = if self.frames > 1 {
            (self.mean * corr, self.dev * corr)
        } else {
            (0.0, 0.0)
        };
        let threshold = mean + self.p.k * dev + self.p.delta;
        // Skip the first frames: the filterbank starts from silence.
        self.last_threshold = threshold;
        let warm = self.frames > self.warmup;
        let onset = warm
            && odf > threshold
            && rms_db > self.p.gate_db
            && self.since_onset >= self.p.refractory;
        let excess = (odf - mean).max(0.0);
        let strength = if onset {
            ((odf - threshold) / (threshold + 1e-6)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        if onset {
            self.since_onset = 0.0;
        }
        // Running statistics; big onsets are clipped so one hit does not deafen the detector.
        let clipped = odf.min(threshold);
        self.mean += a * (clipped - self.mean);
        self.dev += a * ((clipped - self.mean).abs() - self.dev);
        OnsetHop {
            odf,
            excess,
            onset,
            strength,
        }
    }
}

/// Tells a pulse from scattered onsets: the last [`PulseCheck::N`] onsets (the newest included)
/// are evenly spaced (every gap within [`PulseCheck::TOL`] of their median, 0.2-1.5 s). Clicks or
/// a kick in heavy noise make a pulse even where the learned tracker hears no beat; speech
/// syllables and noise bursts rarely line up four in a row.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PulseCheck {
    times: [f64; PulseCheck::N],
    seen: usize,
}

impl PulseCheck {
    const N: usize = 4;
    const TOL: f64 = 0.08;

    /// Records an onset at `t`; returns whether the last onsets make a pulse.
    pub(crate) fn push(&mut self, t: f64) -> bool {
        self.times.rotate_left(1);
        self.times[Self::N - 1] = t;
        self.seen += 1;
        if self.seen < Self::N {
            return false;
        }
        let mut gaps = [0.0f64; Self::N - 1];
        for (i, g) in gaps.iter_mut().enumerate() {
            *g = self.times[i + 1] - self.times[i];
        }
        let mut sorted = gaps;
        sorted.sort_by(f64::total_cmp);
        let med = sorted[(Self::N - 1) / 2];
        (0.2..=1.5).contains(&med) && gaps.iter().all(|g| (g / med - 1.0).abs() <= Self::TOL)
    }
}

/// Finds where, inside `recent` (the newest samples, oldest first), the energy jumps most:
/// returns the offset in samples from the start of `recent` of the block that starts the
/// attack. Blocks are `block` samples.
pub(crate) fn refine_onset(recent: &[f32], block: usize) -> usize {
    let block = block.max(1);
    let mut best = 0usize;
    let mut best_ratio = 0.0f32;
    let mut prev_e = f32::NAN;
    for (i, c) in recent.chunks(block).enumerate() {
        let e: f32 = c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32;
        if prev_e.is_finite() {
            let r = e / (prev_e + 1e-9);
            if r > best_ratio {
                best_ratio = r;
                best = i * block;
            }
        }
        prev_e = e;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulse_is_four_evenly_spaced_onsets() {
        let mut p = PulseCheck::default();
        let even: Vec<bool> = [1.0, 1.5, 2.0, 2.52, 3.0]
            .iter()
            .map(|&t| p.push(t))
            .collect();
        assert_eq!(even, [false, false, false, true, true]);
        let mut p = PulseCheck::default();
        // Syllable-like: gaps 0.21, 0.35, 0.18, 0.3.
        let scattered = [1.0, 1.21, 1.56, 1.74, 2.04].map(|t| p.push(t));
        assert!(!scattered.contains(&true), "{scattered:?}");
        // Too fast to be a beat (a roll at 20 Hz).
        let mut p = PulseCheck::default();
        assert!(
            ![0.0, 0.05, 0.1, 0.15, 0.2]
                .map(|t| p.push(t))
                .contains(&true)
        );
    }

    #[test]
    fn refine_finds_the_attack_block() {
        let mut x = vec![0.001f32; 512];
        for v in &mut x[300..] {
            *v = 0.5;
        }
        let at = refine_onset(&x, 32);
        assert_eq!(at, 288);
    }

    #[test]
    fn steady_input_gives_no_onsets_and_a_jump_gives_one() {
        let mut d = OnsetDetector::new(4, 0.005, OnsetParams::default());
        let quiet = [0.01f32; 4];
        let loud = [1.0f32; 4];
        let mut n = 0;
        for _ in 0..200 {
            n += usize::from(d.process(&quiet, 1.0, -40.0).onset);
        }
        assert_eq!(n, 0);
        assert!(d.process(&loud, 1.0, -10.0).onset);
        // Refractory: an immediate second jump is ignored.
        d.process(&quiet, 1.0, -40.0);
        assert!(!d.process(&loud, 1.0, -10.0).onset);
    }

    #[test]
    fn gate_is_evaluated_at_the_onset_frame() {
        let mut d = OnsetDetector::new(4, 0.005, OnsetParams::default());
        for _ in 0..100 {
            d.process(&[0.0; 4], 1.0, -120.0);
        }
        // Same spectral jump, but the hop is below the gate.
        assert!(!d.process(&[1.0; 4], 1.0, -80.0).onset);
    }

    #[test]
    fn a_sweep_across_bands_is_masked_by_the_max_filter() {
        let mut d = OnsetDetector::new(32, 0.005, OnsetParams::default());
        let mut n = 0;
        for t in 0..320 {
            let mut f = [0.001f32; 32];
            f[(t / 10) % 32] = 1.0;
            n += usize::from(d.process(&f, 1.0, -20.0).onset);
        }
        // Only the very first appearance of the tone may count.
        assert!(n <= 1, "{n} onsets on a sweep");
    }
}
