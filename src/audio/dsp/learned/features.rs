//! The beat model's front end (docs/beat-model.md, "Frame clock" and "Features"): 100 frames per
//! second at any sample rate, a causal 46 ms Hann window, a 55-band log filterbank and its positive
//! difference. Streams over any chunk size; allocation-free after construction.

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Bands of the filterbank.
pub const BANDS: usize = 55;
/// Values per frame (log bands, then their positive differences).
pub const FEATURES: usize = 2 * BANDS;
/// Network frames per second.
pub const FPS: f64 = 100.0;

/// Bands whose positive differences make the low-band onset (centres 30-60 Hz): a kick's
/// fundamental lives there, hats and claps do not, and most bass notes sit above it.
const LOW_BANDS: usize = 7;

/// The decoder's kick evidence for a frame: the sum of the positive log differences of the
/// lowest bands (the second half of the raw feature vector).
pub fn low_onset(raw: &[f32; FEATURES]) -> f32 {
    raw[BANDS..BANDS + LOW_BANDS].iter().sum()
}

/// The frame's all-band onset strength: the sum of every band's positive log difference.
pub fn onset(raw: &[f32; FEATURES]) -> f32 {
    raw[BANDS..].iter().sum()
}

/// Input hygiene of the contract: non-finite → 0, denormal-small → 0, clamp to [-1, 1].
#[inline]
pub fn clean(x: f32) -> f32 {
    if !x.is_finite() || x.abs() < 1e-30 {
        0.0
    } else {
        x.clamp(-1.0, 1.0)
    }
}

/// Sparse triangular band: first bin and weights.
struct Band {
    start: usize,
    weights: Vec<f32>,
}

/// Streaming feature extractor.
pub struct Features {
    sr: f64,
    win: usize,
    /// Ring of the last `win` samples.
    ring: Vec<f32>,
    ring_pos: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    output: Vec<Complex32>,
    scratch: Vec<Complex32>,
    scale: f32,
    bands: Vec<Band>,
    /// Magnitude of each bin the bands use.
    mag: Vec<f32>,
    prev: [f32; BANDS],
    /// Samples consumed so far.
    consumed: u64,
    /// Frames produced so far.
    frames: u64,
    next_end: u64,
    /// The latest frame's raw (un-normalised) features.
    out: [f32; FEATURES],
}

fn band_centre(i: i32) -> f64 {
    30.0 * 2f64.powf(f64::from(i) / 6.0)
}

impl Features {
    /// A front end for `sample_rate` Hz (8–192 kHz). Allocates.
    pub fn new(sample_rate: f64) -> Self {
        let sr = sample_rate;
        let win = ((0.04644 * sr).round() as usize).max(2);
        let n = win.next_power_of_two();
        let window: Vec<f32> = (0..win)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / win as f64).cos()) as f32
            })
            .collect();
        let wsum: f64 = window.iter().map(|&w| f64::from(w)).sum();
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(n);
        let nyq = sr / 2.0;
        let mut bands = Vec::with_capacity(BANDS);
        for i in 0..BANDS as i32 {
            let (lo, c, hi) = (band_centre(i - 1), band_centre(i), band_centre(i + 1));
            let mut w = vec![0.0f64; n / 2 + 1];
            for (j, wj) in w.iter_mut().enumerate() {
                let f = j as f64 * sr / n as f64;
                if f >= nyq {
                    break;
                }
                let v = if f > lo && f <= c {
                    (f - lo) / (c - lo)
                } else if f > c && f < hi {
                    (hi - f) / (hi - c)
                } else {
                    0.0
                };
                *wj = v.max(0.0);
            }
            if !w.iter().any(|&v| v > 0.0) {
                let j = (c * n as f64 / sr).round() as usize;
                if (j as f64 * sr / n as f64) < nyq && j < w.len() {
                    w[j] = 1.0;
                }
            }
            let sum: f64 = w.iter().sum();
            let first = w.iter().position(|&v| v > 0.0).unwrap_or(0);
            let last = w.iter().rposition(|&v| v > 0.0).unwrap_or(0);
            let weights = if sum > 0.0 {
                w[first..=last].iter().map(|&v| (v / sum) as f32).collect()
            } else {
                Vec::new()
            };
            bands.push(Band {
                start: first,
                weights,
            });
        }
        let mut f = Features {
            sr,
            win,
            ring: vec![0.0; win],
            ring_pos: 0,
            window,
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            scale: (2.0 / wsum) as f32,
            mag: vec![
                0.0;
                bands
                    .iter()
                    .map(|b| b.start + b.weights.len())
                    .max()
                    .unwrap_or(0)
            ],
            bands,
            prev: [0.0; BANDS],
            consumed: 0,
            frames: 0,
            next_end: 0,
            out: [0.0; FEATURES],
        };
        f.next_end = f.frame_end(0);
        f
    }

    /// Input sample index at which frame `k` ends (exclusive).
    fn frame_end(&self, k: u64) -> u64 {
        ((k + 1) as f64 * self.sr / FPS).round() as u64
    }

    /// Window length in samples.
    pub fn window_len(&self) -> usize {
        self.win
    }

    /// Frames produced so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The latest frame's 110 raw values.
    pub fn frame(&self) -> &[f32; FEATURES] {
        &self.out
    }

    /// Feeds samples (already cleaned or not: hygiene is applied here too); calls `on_frame`
    /// with the frame index and its raw features for every frame completed.
    pub fn push(&mut self, samples: &[f32], on_frame: &mut impl FnMut(u64, &[f32; FEATURES])) {
        for &x in samples {
            self.ring[self.ring_pos] = clean(x);
            self.ring_pos = (self.ring_pos + 1) % self.win;
            self.consumed += 1;
            if self.consumed == self.next_end {
                self.compute();
                let k = self.frames;
                self.frames += 1;
                self.next_end = self.frame_end(self.frames);
                on_frame(k, &self.out);
            }
        }
    }

    fn compute(&mut self) {
        // Oldest sample is at ring_pos.
        let (a, b) = self.ring.split_at(self.ring_pos);
        for ((dst, &s), &w) in self
            .input
            .iter_mut()
            .zip(b.iter().chain(a))
            .zip(&self.window)
        {
            *dst = s * w;
        }
        for v in &mut self.input[self.win..] {
            *v = 0.0;
        }
        // Lengths come from the planner, so this cannot fail; on error the frame is silent.
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_err()
        {
            self.output
                .iter_mut()
                .for_each(|c| *c = Complex32::new(0.0, 0.0));
        }
        // Neighbouring bands share bins: each bin's magnitude is computed once, as
        // sqrt(re² + im²) (`norm()` calls libm's overflow-safe `hypotf`, 2-3 times slower; a
        // windowed frame of samples in [-1, 1] cannot overflow).
        for (m, c) in self.mag.iter_mut().zip(&self.output) {
            *m = (c.re * c.re + c.im * c.im).sqrt();
        }
        let first = self.frames == 0;
        for (i, band) in self.bands.iter().enumerate() {
            // Eight partial sums, so the compiler can vectorise the wide high bands.
            let mags = &self.mag[band.start..band.start + band.weights.len()];
            let mut acc = [0.0f32; 8];
            let mut w8 = band.weights.chunks_exact(8);
            let mut m8 = mags.chunks_exact(8);
            for (w, m) in (&mut w8).zip(&mut m8) {
                for k in 0..8 {
                    acc[k] += w[k] * m[k];
                }
            }
            let mut v: f32 = acc.iter().sum();
            for (w, m) in w8.remainder().iter().zip(m8.remainder()) {
                v += w * m;
            }
            let y = (1.0 + 1000.0 * self.scale * v).log10();
            let d = if first {
                0.0
            } else {
                (y - self.prev[i]).max(0.0)
            };
            self.prev[i] = y;
            self.out[i] = y;
            self.out[BANDS + i] = d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lengths_follow_the_contract() {
        assert_eq!(Features::new(44_100.0).window_len(), 2048);
        assert_eq!(Features::new(48_000.0).window_len(), 2229);
        assert_eq!(Features::new(8_000.0).window_len(), 372);
    }

    #[test]
    fn chunking_does_not_change_frames_and_rate_is_100_fps() {
        for sr in [8_000.0, 44_100.0, 48_000.0, 192_000.0] {
            let n = (sr * 0.5) as usize;
            let x: Vec<f32> = (0..n)
                .map(|i| (i as f32 * 0.05).sin() * if i % 3000 < 200 { 1.0 } else { 0.1 })
                .collect();
            let mut whole = Vec::new();
            let mut f = Features::new(sr);
            f.push(&x, &mut |_, v| whole.push(*v));
            let mut parts = Vec::new();
            let mut f = Features::new(sr);
            for c in x.chunks(37) {
                f.push(c, &mut |_, v| parts.push(*v));
            }
            assert_eq!(whole.len(), 50, "{sr}");
            assert_eq!(whole, parts);
        }
    }

    #[test]
    fn full_scale_sine_lands_in_its_band_and_high_bands_are_empty_at_8k() {
        let sr = 8_000.0;
        let mut f = Features::new(sr);
        let x: Vec<f32> = (0..4000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / sr as f32).sin())
            .collect();
        f.push(&x, &mut |_, _| {});
        let v = f.frame();
        // 1 kHz = 30 * 2^(i/6) → i ≈ 30.3.
        let top = (0..BANDS)
            .max_by(|&a, &b| v[a].total_cmp(&v[b]))
            .unwrap_or(0);
        assert!((29..=31).contains(&top), "{top}");
        assert_eq!(v[BANDS - 1], 0.0);
        // Garbage input never poisons the features.
        f.push(&[f32::NAN, f32::INFINITY, -1e-40, 5.0], &mut |_, _| {});
        f.push(&x[..200], &mut |_, v| {
            assert!(v.iter().all(|x| x.is_finite()))
        });
    }
}
