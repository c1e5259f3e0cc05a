//! Smoothing, dead-band and quantisation: the difference between a picture that breathes with
//! the music and one that jitters with every FFT hop.
//!
//! All functions take time explicitly (`dt` or `now`), so step responses are testable.

use std::time::Duration;

use crate::mapping::theme::Quantise;
use crate::params::ParamValue;

/// A one-pole low-pass with separate rise (attack) and fall (release) time constants.
///
/// After a step, the output covers `1 - e^(-t/τ)` of the distance in time `t` (63 % after one
/// time constant), independent of the frame rate. A zero time constant follows at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackRelease {
    /// Rising time constant.
    pub attack: Duration,
    /// Falling time constant.
    pub release: Duration,
    /// Current output; `None` until the first sample.
    pub value: Option<f64>,
}

impl AttackRelease {
    /// A filter with no history.
    pub fn new(attack: Duration, release: Duration) -> Self {
        AttackRelease {
            attack,
            release,
            value: None,
        }
    }

    /// Feeds `target` after `dt`; returns the new output. The first sample is taken as is.
    pub fn step(&mut self, target: f64, dt: Duration) -> f64 {
        let out = match self.value {
            None => target,
            Some(cur) => {
                let tau = if target > cur {
                    self.attack
                } else {
                    self.release
                };
                if tau.is_zero() {
                    target
                } else {
                    let a = 1.0 - (-dt.as_secs_f64() / tau.as_secs_f64()).exp();
                    cur + (target - cur) * a
                }
            }
        };
        self.value = Some(out);
        out
    }
}

/// Whether a new normalised value has moved far enough from the last one sent.
///
/// `dead_band` is a fraction of the output range; nothing sent yet always passes. Values that
/// reach either end of the range pass too, so the extremes are never swallowed.
pub fn outside_dead_band(last_sent: Option<f64>, new: f64, dead_band: f64) -> bool {
    match last_sent {
        None => true,
        Some(last) => {
            let moved = (new - last).abs();
            moved > 0.0 && (moved + 1e-9 >= dead_band || new <= 0.0 || new >= 1.0)
        }
    }
}

/// Turns a normalised 0..1 value into the parameter value, quantised.
///
/// `output` is (value at 0, value at 1) and may be reversed. `Step` rounds to multiples of the
/// step from the low end; `List` splits 0..1 into equal bins, lowest first.
pub fn quantise(norm: f64, output: (f64, f64), q: &Quantise) -> ParamValue {
    let norm = norm.clamp(0.0, 1.0);
    match q {
        Quantise::List(items) => {
            let n = items.len().max(1);
            let ix = ((norm * n as f64).floor() as usize).min(n - 1);
            items.get(ix).cloned().unwrap_or(ParamValue::Null)
        }
        Quantise::None => serde_json::json!(round6(lerp(output, norm))),
        Quantise::Step(step) => {
            let lo = output.0.min(output.1);
            let hi = output.0.max(output.1);
            let v = lerp(output, norm);
            let q = (lo + ((v - lo) / step).round() * step).clamp(lo, hi);
            if step.fract() == 0.0 && lo.fract() == 0.0 {
                serde_json::json!(q.round() as i64)
            } else {
                serde_json::json!(round6(q))
            }
        }
    }
}

/// Linear interpolation across (a, b).
pub fn lerp((a, b): (f64, f64), t: f64) -> f64 {
    a + (b - a) * t
}

/// Where `v` sits in (a, b), clamped to 0..1.
pub fn unlerp((a, b): (f64, f64), v: f64) -> f64 {
    if a == b {
        0.0
    } else {
        ((v - a) / (b - a)).clamp(0.0, 1.0)
    }
}

/// Rounds to 6 decimals so the wire (and snapshots) carry no float noise.
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Step responses: a 0 → 1 step (attack) and a 1 → 0 step (release), sampled at 10 ms,
    /// reach 1 - e^(-t/τ) of the way at time t regardless of frame rate.
    #[test]
    fn attack_release_step_responses() {
        // (attack ms, release ms, from, to, elapsed ms, dt ms, expected)
        let e1 = 1.0 - (-1.0f64).exp(); // 0.632
        let table: &[(u64, u64, f64, f64, u64, u64, f64)] = &[
            (100, 1000, 0.0, 1.0, 100, 10, e1),
            (100, 1000, 0.0, 1.0, 100, 1, e1),
            (100, 1000, 0.0, 1.0, 300, 10, 1.0 - (-3.0f64).exp()),
            (100, 1000, 1.0, 0.0, 1000, 10, 1.0 - e1),
            (100, 1000, 1.0, 0.0, 100, 10, (-0.1f64).exp()),
            (0, 0, 0.0, 1.0, 10, 10, 1.0),
            (0, 500, 1.0, 0.0, 500, 50, 1.0 - e1),
        ];
        for &(a, r, from, to, elapsed, dt, want) in table {
            let mut f = AttackRelease::new(ms(a), ms(r));
            f.step(from, ms(0));
            let mut out = from;
            for _ in 0..(elapsed / dt) {
                out = f.step(to, ms(dt));
            }
            assert!(
                (out - want).abs() < 1e-3,
                "attack {a} release {r} {from}->{to} after {elapsed}: {out} want {want}"
            );
        }
    }

    #[test]
    fn first_sample_is_taken_as_is() {
        let mut f = AttackRelease::new(ms(1000), ms(1000));
        assert_eq!(f.step(0.7, ms(10)), 0.7);
    }

    #[test]
    fn dead_band_table() {
        // (last sent, new, band, passes)
        let table: &[(Option<f64>, f64, f64, bool)] = &[
            (None, 0.5, 0.1, true),
            (Some(0.5), 0.55, 0.1, false),
            (Some(0.5), 0.6, 0.1, true),
            (Some(0.5), 0.4, 0.1, true),
            (Some(0.5), 0.5, 0.0, false),
            (Some(0.5), 0.5001, 0.0, true),
            (Some(0.95), 1.0, 0.1, true), // extremes always land
            (Some(0.05), 0.0, 0.1, true),
            (Some(1.0), 1.0, 0.1, false),
        ];
        for &(last, new, band, want) in table {
            assert_eq!(
                outside_dead_band(last, new, band),
                want,
                "{last:?} -> {new} band {band}"
            );
        }
    }

    #[test]
    fn quantise_table() {
        let lists = Quantise::List(vec![
            json!([1000, 750]),
            json!([1000, 750, 500]),
            json!([1000, 750, 500, 250]),
        ]);
        // (norm, output, quantise, expected)
        let table: Vec<(f64, (f64, f64), Quantise, ParamValue)> = vec![
            (0.5, (0.0, 1.0), Quantise::None, json!(0.5)),
            (0.5, (1.0, 0.0), Quantise::None, json!(0.5)),
            (0.25, (0.2, 0.6), Quantise::None, json!(0.3)),
            (0.33, (0.0, 1.0), Quantise::Step(0.25), json!(0.25)),
            (0.4, (0.0, 1.0), Quantise::Step(0.25), json!(0.5)),
            (0.5, (0.0, 10.0), Quantise::Step(1.0), json!(5)),
            (0.57, (0.0, 10.0), Quantise::Step(3.0), json!(6)),
            (1.0, (0.0, 10.0), Quantise::Step(3.0), json!(9)),
            (0.0, (0.0, 1.0), lists.clone(), json!([1000, 750])),
            (0.34, (0.0, 1.0), lists.clone(), json!([1000, 750, 500])),
            (
                0.99,
                (0.0, 1.0),
                lists.clone(),
                json!([1000, 750, 500, 250]),
            ),
            (1.0, (0.0, 1.0), lists.clone(), json!([1000, 750, 500, 250])),
            (-3.0, (0.0, 1.0), lists, json!([1000, 750])),
        ];
        for (norm, out, q, want) in table {
            assert_eq!(quantise(norm, out, &q), want, "{norm} {out:?} {q:?}");
        }
    }
}
