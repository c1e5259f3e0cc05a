//! The one backoff: exponential with jitter, reset once a session has been healthy. The
//! transport skeleton paces reconnects with [`Backoff`]; the hosted backend's warm-up and
//! playback retries use the same [`BackoffPolicy::delay`] without jitter.
//!
//! Jitter spreads reconnects of several controllers after a server restart; the cap keeps a
//! performer from waiting long once the server is back. The RNG is injected so tests are exact.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Backoff parameters (from `[server]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// First delay.
    pub(crate) initial: Duration,
    /// Upper bound of the (pre-jitter) delay.
    pub(crate) max: Duration,
    /// Growth per attempt (≥ 1).
    pub(crate) factor: f64,
    /// Fraction of the delay randomised (0 = none, 0.5 = delay × [0.5, 1.5)).
    pub(crate) jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.3,
        }
    }
}

impl BackoffPolicy {
    /// A policy doubling from `initial` to `max` without jitter (one client per resource:
    /// nothing to spread), for the hosted backend's warm-up and playback retries.
    pub(crate) const fn without_jitter(initial: Duration, max: Duration) -> Self {
        BackoffPolicy {
            initial,
            max,
            factor: 2.0,
            jitter: 0.0,
        }
    }

    /// The delay before retry number `attempt` (0-based), before jitter: `initial × factor^n`,
    /// capped at `max`.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let exp = factor.powi(attempt.min(64) as i32);
        let base = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        Duration::from_secs_f64(base.max(0.0))
    }
}

/// The running backoff: attempt counter plus RNG.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// Backoff seeded from the OS (production).
    pub(crate) fn new(policy: BackoffPolicy) -> Self {
        Self::seeded(policy, rand::rng().random())
    }

    /// Backoff with a fixed seed (tests, reproducible runs).
    pub(crate) fn seeded(policy: BackoffPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The delay before the next attempt (jittered); advances the attempt counter.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let p = self.policy;
        let base = p.delay(self.attempt).as_secs_f64();
        self.attempt = self.attempt.saturating_add(1);
        let j = p.jitter.clamp(0.0, 1.0);
        let scale = if j > 0.0 {
            self.rng.random_range((1.0 - j)..(1.0 + j))
        } else {
            1.0
        };
        Duration::from_secs_f64((base * scale).max(0.0))
    }

    /// Attempts since the last reset.
    #[cfg(test)]
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A session worked: start again from the initial delay.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            factor: 2.0,
            jitter,
        }
    }

    #[test]
    fn grows_exponentially_to_the_cap_without_jitter() {
        let mut b = Backoff::seeded(policy(0.0), 1);
        let d: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.attempt(), 7);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn the_policy_alone_gives_the_unjittered_schedule() {
        let p = BackoffPolicy::without_jitter(Duration::from_millis(250), Duration::from_secs(4));
        let d: Vec<u128> = (0..7).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(d, vec![250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_reproducible_with_a_seed() {
        let mut a = Backoff::seeded(policy(0.5), 42);
        let mut b = Backoff::seeded(policy(0.5), 42);
        for i in 0..20 {
            let da = a.next_delay();
            assert_eq!(da, b.next_delay());
            let base = (100.0 * 2f64.powi(i)).min(2000.0);
            let ms = da.as_secs_f64() * 1000.0;
            assert!(ms >= base * 0.5 - 1e-6 && ms < base * 1.5, "{ms} vs {base}");
        }
        let mut c = Backoff::seeded(policy(0.5), 43);
        let mut a = Backoff::seeded(policy(0.5), 42);
        let differs = (0..5).any(|_| a.next_delay() != c.next_delay());
        assert!(differs, "different seeds give different jitter");
    }

    #[test]
    fn silly_factors_do_not_shrink_or_explode() {
        let mut b = Backoff::seeded(
            BackoffPolicy {
                factor: f64::NAN,
                ..policy(0.0)
            },
            0,
        );
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        let mut b = Backoff::seeded(policy(0.0), 0);
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
    }
}
