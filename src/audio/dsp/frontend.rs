//! Per-hop spectral front end: window, FFT (pre-allocated scratch), level, centroid, band
//! energies, meter bars and the log-frequency filterbank the onset detector reads. Pure: no I/O,
//! no allocation after construction.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};

use crate::audio::features::SPECTRUM_BARS;

/// Smallest level reported, dBFS (digital silence).
pub(crate) const FLOOR_DB: f32 = -120.0;

/// Converts a linear amplitude to dBFS, floored at [`FLOOR_DB`].
pub(crate) fn amp_to_db(a: f32) -> f32 {
    if a <= 1e-6 {
        FLOOR_DB
    } else {
        (20.0 * a.log10()).max(FLOOR_DB)
    }
}

/// Root mean square of a block (0 for an empty block).
pub(crate) fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    let s: f32 = x.iter().map(|v| v * v).sum();
    (s / x.len() as f32).sqrt()
}

/// Largest absolute sample of a block.
pub(crate) fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Low-latency analysis window: a long rising half-Hann and a short falling half-Hann of
/// `fall` samples, so the newest hop weighs most and onsets show up in the hop they occur in.
pub(crate) fn asymmetric_window(n: usize, fall: usize) -> Vec<f32> {
    let fall = fall.clamp(1, n.saturating_sub(1).max(1));
    let rise = n - fall;
    (0..n)
        .map(|i| {
            if i < rise {
                let x = std::f32::consts::PI * (i as f32 + 0.5) / (2.0 * rise as f32);
                x.sin().powi(2)
            } else {
                let x = std::f32::consts::PI * ((i - rise) as f32 + 0.5) / (2.0 * fall as f32);
                x.cos().powi(2)
            }
        })
        .collect()
}

/// Spectral centroid in Hz of a magnitude spectrum whose bin `k` is at `k * bin_hz`; 0 when
/// the spectrum is empty.
pub(crate) fn centroid(mags: &[f32], bin_hz: f32) -> f32 {
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for (k, m) in mags.iter().enumerate() {
        num += k as f64 * f64::from(*m);
        den += f64::from(*m);
    }
    if den <= 1e-12 {
        0.0
    } else {
        (num / den) as f32 * bin_hz
    }
}

/// Sum of power (magnitude squared) of bins in `[lo_hz, hi_hz)`.
pub(crate) fn band_power(mags: &[f32], bin_hz: f32, lo_hz: f32, hi_hz: f32) -> f32 {
    let lo = (lo_hz / bin_hz).ceil().max(0.0) as usize;
    let hi = ((hi_hz / bin_hz).ceil() as usize).min(mags.len());
    if lo >= hi {
        return 0.0;
    }
    mags[lo..hi].iter().map(|m| m * m).sum()
}

/// Contiguous bin ranges `[start, end)` of log-spaced bands from `f_lo` to `f_hi` with
/// `per_octave` bands per octave; bands that would hold no bin are merged so each is unique.
pub(crate) fn log_bands(
    bins: usize,
    bin_hz: f32,
    f_lo: f32,
    f_hi: f32,
    per_octave: f32,
) -> Vec<(usize, usize)> {
    let mut edges: Vec<usize> = Vec::new();
    let mut f = f_lo;
    while f <= f_hi {
        let b = ((f / bin_hz).round() as usize).min(bins);
        if edges.last().is_none_or(|&last| b > last) {
            edges.push(b);
        }
        f *= 2f32.powf(1.0 / per_octave);
    }
    edges
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(a, b)| b > a && *a > 0)
        .collect()
}

/// What the front end computed for one hop (magnitudes are borrowed from the front end).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HopLevels {
    /// RMS of the newest hop, linear.
    pub(crate) rms: f32,
    /// Peak of the newest hop, linear.
    pub(crate) peak: f32,
    /// Spectral centroid, Hz.
    pub(crate) centroid_hz: f32,
    /// Bass / mid / high band amplitudes (square root of band power), linear.
    pub(crate) bands: [f32; 3],
}

/// The spectral front end. Owns every buffer it uses; [`FrontEnd::process`] never allocates.
pub(crate) struct FrontEnd {
    sample_rate: f32,
    n: usize,
    hop: usize,
    history: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    output: Vec<Complex32>,
    scratch: Vec<Complex32>,
    mags: Vec<f32>,
    norm: f32,
    /// Makes summed bin power of a sine of amplitude `a` equal `a²` (Parseval with the window).
    power_norm: f32,
    cutoffs: [f32; 2],
    bar_ranges: Vec<(usize, usize)>,
    filter_ranges: Vec<(usize, usize)>,
    filter_out: Vec<f32>,
}

impl FrontEnd {
    /// A front end for `fft_size`-sample windows advanced by `hop` samples. `cutoffs` are the
    /// bass/mid and mid/high boundaries in Hz.
    pub(crate) fn new(sample_rate: f32, fft_size: usize, hop: usize, cutoffs: [f32; 2]) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(fft_size);
        let input = fft.make_input_vec();
        let output = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        let window = asymmetric_window(fft_size, hop);
        let wsum = window.iter().sum::<f32>();
        let norm = 2.0 / wsum;
        let power_norm =
            wsum * wsum / (fft_size as f32 * window.iter().map(|w| w * w).sum::<f32>());
        let bins = fft_size / 2 + 1;
        let bin_hz = sample_rate / fft_size as f32;
        let nyq = sample_rate / 2.0;
        // Meter bars: log-spaced from 40 Hz to min(16 kHz, Nyquist), at least one bin each.
        let top = (16_000.0f32).min(nyq * 0.95);
        let mut bar_ranges = Vec::with_capacity(SPECTRUM_BARS);
        let mut prev_end = ((40.0 / bin_hz).floor() as usize).max(1);
        for i in 0..SPECTRUM_BARS {
            let f_hi = 40.0 * (top / 40.0).powf((i + 1) as f32 / SPECTRUM_BARS as f32);
            let end = ((f_hi / bin_hz).round() as usize).clamp(prev_end + 1, bins);
            bar_ranges.push((prev_end.min(bins - 1), end));
            prev_end = end.min(bins - 1);
        }
        let filter_ranges = log_bands(bins, bin_hz, 30.0, top, 12.0);
        let filter_out = vec![0.0; filter_ranges.len()];
        FrontEnd {
            sample_rate,
            n: fft_size,
            hop,
            history: vec![0.0; fft_size],
            window,
            fft,
            input,
            output,
            scratch,
            mags: vec![0.0; bins],
            norm,
            power_norm,
            cutoffs,
            bar_ranges,
            filter_ranges,
            filter_out,
        }
    }

    /// Samples per hop.
    #[cfg(test)]
    pub(crate) fn hop(&self) -> usize {
        self.hop
    }

    /// Hz per FFT bin.
    pub(crate) fn bin_hz(&self) -> f32 {
        self.sample_rate / self.n as f32
    }

    /// The newest `len` input samples (for onset time refinement).
    pub(crate) fn recent(&self, len: usize) -> &[f32] {
        &self.history[self.n - len.min(self.n)..]
    }

    /// Normalised magnitude spectrum of the last hop (a full-scale sine peaks near 1).
    #[cfg(test)]
    pub(crate) fn mags(&self) -> &[f32] {
        &self.mags
    }

    /// Log-frequency filterbank magnitudes of the last hop (12 bands per octave).
    pub(crate) fn filterbank(&self) -> &[f32] {
        &self.filter_out
    }

    /// Raw (unsmoothed) meter bar amplitudes into `out`.
    pub(crate) fn bars(&self, out: &mut [f32; SPECTRUM_BARS]) {
        for (o, &(a, b)) in out.iter_mut().zip(&self.bar_ranges) {
            let p: f32 = self.mags[a..b].iter().map(|m| m * m).sum();
            *o = (p * self.power_norm).sqrt();
        }
    }

    /// Takes the next `hop` samples (shorter slices are zero-padded), runs the FFT and returns
    /// the hop's levels.
    pub(crate) fn process(&mut self, hop: &[f32]) -> HopLevels {
        let h = self.hop;
        self.history.copy_within(h.., 0);
        let tail = &mut self.history[self.n - h..];
        let take = hop.len().min(h);
        tail[..take].copy_from_slice(&hop[..take]);
        tail[take..].fill(0.0);
        for ((i, x), w) in self.input.iter_mut().zip(&self.history).zip(&self.window) {
            *i = x * w;
        }
        // Lengths come from the planner, so this cannot fail; on error keep the last spectrum.
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_ok()
        {
            // |c| as sqrt(re² + im²): `norm()` calls libm's overflow-safe `hypotf`, which does
            // not vectorise and was a quarter of the analysis time; audio magnitudes are far
            // from overflowing.
            for (m, c) in self.mags.iter_mut().zip(&self.output) {
                *m = (c.re * c.re + c.im * c.im).sqrt() * self.norm;
            }
        }
        for (o, &(a, b)) in self.filter_out.iter_mut().zip(&self.filter_ranges) {
            *o = self.mags[a..b].iter().sum();
        }
        let newest = &self.history[self.n - h..];
        let bin_hz = self.bin_hz();
        let nyq = self.sample_rate / 2.0 + bin_hz;
        HopLevels {
            rms: rms(newest),
            peak: peak(newest),
            centroid_hz: centroid(&self.mags, bin_hz),
            bands: [
                (self.power_norm * band_power(&self.mags, bin_hz, 0.0, self.cutoffs[0])).sqrt(),
                (self.power_norm
                    * band_power(&self.mags, bin_hz, self.cutoffs[0], self.cutoffs[1]))
                .sqrt(),
                (self.power_norm * band_power(&self.mags, bin_hz, self.cutoffs[1], nyq)).sqrt(),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, sr: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / sr).sin())
            .collect()
    }

    fn run(fe: &mut FrontEnd, x: &[f32]) -> HopLevels {
        let mut last = HopLevels::default();
        for c in x.chunks(fe.hop()) {
            last = fe.process(c);
        }
        last
    }

    #[test]
    fn rms_and_peak_of_known_signals() {
        let s = sine(1000.0, 0.5, 48_000.0, 48_000);
        assert!((rms(&s) - 0.5 / 2f32.sqrt()).abs() < 1e-4);
        assert!((peak(&s) - 0.5).abs() < 1e-3);
        assert!((amp_to_db(rms(&s)) - (-9.03)).abs() < 0.02);
        let square: Vec<f32> = (0..1000)
            .map(|i| if i % 2 == 0 { 0.25 } else { -0.25 })
            .collect();
        assert!((rms(&square) - 0.25).abs() < 1e-6);
        assert_eq!(amp_to_db(0.0), FLOOR_DB);
        assert!((amp_to_db(1.0)).abs() < 1e-6);
        assert_eq!(rms(&[]), 0.0);
    }

    #[test]
    fn centroid_of_1khz_sine_is_1khz() {
        let mut fe = FrontEnd::new(48_000.0, 1024, 256, [250.0, 4000.0]);
        let lv = run(&mut fe, &sine(1000.0, 0.5, 48_000.0, 8192));
        assert!(
            (lv.centroid_hz - 1000.0).abs() < 30.0,
            "centroid {}",
            lv.centroid_hz
        );
        // The hop's RMS is the sine's.
        assert!((lv.rms - 0.5 / 2f32.sqrt()).abs() < 0.01);
    }

    #[test]
    fn centroid_of_two_equal_tones_is_their_mean() {
        let sr = 48_000.0;
        let a = sine(1000.0, 0.3, sr, 8192);
        let b = sine(3000.0, 0.3, sr, 8192);
        let x: Vec<f32> = a.iter().zip(&b).map(|(p, q)| p + q).collect();
        let mut fe = FrontEnd::new(sr, 1024, 256, [250.0, 4000.0]);
        let lv = run(&mut fe, &x);
        assert!(
            (lv.centroid_hz - 2000.0).abs() < 60.0,
            "centroid {}",
            lv.centroid_hz
        );
    }

    #[test]
    fn full_scale_sine_magnitude_is_about_one() {
        let mut fe = FrontEnd::new(48_000.0, 1024, 256, [250.0, 4000.0]);
        // 1500 Hz is exactly bin 32: no scalloping loss.
        run(&mut fe, &sine(1500.0, 1.0, 48_000.0, 4096));
        let m = fe.mags()[32];
        assert!((m - 1.0).abs() < 0.05, "peak magnitude {m}");
    }

    #[test]
    fn band_energy_lands_in_the_right_band() {
        let sr = 48_000.0;
        let mut fe = FrontEnd::new(sr, 1024, 256, [250.0, 4000.0]);
        let lv = run(&mut fe, &sine(93.75, 1.0, sr, 8192));
        // A 93.75 Hz (bin 2) full-scale sine: bass holds ~all energy (amplitude ~1).
        assert!((lv.bands[0] - 1.0).abs() < 0.1, "bass {}", lv.bands[0]);
        assert!(lv.bands[1] < 0.05 && lv.bands[2] < 0.01, "{:?}", lv.bands);
        let lv = run(&mut fe, &sine(8000.0, 0.5, sr, 8192));
        assert!((lv.bands[2] - 0.5).abs() < 0.05, "high {:?}", lv.bands);
        assert!(lv.bands[0] < 0.01, "{:?}", lv.bands);
        // Band power of a sine of amplitude a is a² (after the window's Parseval factor).
        let p = fe.power_norm * band_power(fe.mags(), fe.bin_hz(), 7000.0, 9000.0);
        assert!((p - 0.25).abs() < 0.01, "power {p}");
    }

    #[test]
    fn log_bands_are_unique_and_increasing() {
        let b = log_bands(513, 46.875, 30.0, 16_000.0, 12.0);
        assert!(b.len() > 40, "{}", b.len());
        for w in b.windows(2) {
            assert_eq!(w[0].1, w[1].0);
            assert!(w[0].0 < w[0].1);
        }
    }

    #[test]
    fn window_weights_the_newest_hop() {
        let w = asymmetric_window(1024, 256);
        assert!(w[767] > 0.99);
        assert!(w[1023] < 0.01);
        assert!(w[0] < 0.01);
    }

    #[test]
    fn short_hop_is_zero_padded() {
        let mut fe = FrontEnd::new(48_000.0, 1024, 256, [250.0, 4000.0]);
        let lv = fe.process(&[1.0; 10]);
        assert!((lv.peak - 1.0).abs() < 1e-6);
        assert!((lv.rms - (10.0f32 / 256.0).sqrt()).abs() < 1e-4);
    }
}
