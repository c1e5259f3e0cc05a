//! Timing policy for the hosted API, pure and driven by injected time (`now` = time since the
//! transport started):
//! - the warm-up grace window: while a stream warms up (create 2–5 s, pipeline 10–20 s, WHIP
//!   2–5 s), 404/409/429/5xx and network errors mean "not ready yet" and are retried with
//!   exponential backoff instead of being shown;
//! - the PATCH health counter: after N consecutive real failures outside the window, live
//!   updates are switched off ("live updates unavailable — changes apply on restart");
//! - the PATCH throttle: at most a few per second.

use std::time::Duration;

pub(crate) use crate::transport::backoff::BackoffPolicy;

/// The message shown when live updates are switched off.
pub(crate) const UNAVAILABLE: &str = "live updates unavailable — changes apply on restart";

/// What an HTTP exchange came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx.
    Ok,
    /// 404/409/429/5xx or a network error: plausibly "not ready yet".
    NotReady,
    /// Any other status (400, 401, 403, 422, ...): retrying will not help.
    Fatal,
}

impl Outcome {
    /// Classifies an HTTP status (`None` = no response: network error or timeout).
    pub(crate) fn of(status: Option<u16>) -> Outcome {
        match status {
            Some(s) if (200..300).contains(&s) => Outcome::Ok,
            Some(404 | 409 | 429) | None => Outcome::NotReady,
            Some(s) if s >= 500 => Outcome::NotReady,
            Some(_) => Outcome::Fatal,
        }
    }
}

/// The retry pacing during warm-up: the transport's one backoff, without jitter (one controller
/// per stream: nothing to spread), 0.25 s doubling to 4 s.
pub const WARMUP_RETRY: BackoffPolicy =
    BackoffPolicy::without_jitter(Duration::from_millis(250), Duration::from_secs(4));

/// What to do after a failed step (create, status poll, WHIP/WHEP offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try again after this delay (not shown to the performer).
    RetryAfter(Duration),
    /// Give up and report.
    GiveUp,
}

/// The warm-up grace window of one stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup {
    /// When the stream was created.
    pub created_at: Duration,
    /// Window length.
    pub grace: Duration,
    /// Retry pacing.
    pub backoff: BackoffPolicy,
}

impl Warmup {
    /// Whether `now` is still inside the window.
    pub(crate) fn inside(&self, now: Duration) -> bool {
        now.saturating_sub(self.created_at) < self.grace
    }

    /// Retry or give up after the `attempt`-th consecutive failure with `outcome` at `now`.
    pub(crate) fn after_failure(&self, outcome: Outcome, attempt: u32, now: Duration) -> Decision {
        match outcome {
            Outcome::NotReady if self.inside(now) => {
                Decision::RetryAfter(self.backoff.delay(attempt))
            }
            _ => Decision::GiveUp,
        }
    }
}

/// Create is not idempotent: a retry after the server created the stream leaves a billed stream
/// running. So it is retried at most once, and only when no answer came or the server failed
/// (5xx); never on 409 (a conflict, possibly the account's stream quota) or any other 4xx.
pub(crate) fn create_retry(status: Option<u16>, attempt: u32) -> Option<Duration> {
    match status {
        _ if attempt >= 1 => None,
        None => Some(Duration::from_secs(1)),
        Some(s) if s >= 500 => Some(Duration::from_secs(1)),
        Some(_) => None,
    }
}

/// Whether a failed create may have created the stream anyway (no answer, or a server error):
/// such a stream is looked for and deleted on quit.
pub(crate) fn may_have_created(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

/// The playback retry schedule: `(time of each attempt)` from 0 while it stays inside `wait`
/// (pure, for the docs and tests: the default must keep trying well past 90 s).
#[cfg(test)]
pub(crate) fn playback_attempts(wait: Duration, backoff: BackoffPolicy) -> Vec<Duration> {
    let mut t = Duration::ZERO;
    let mut out = vec![t];
    let mut attempt = 0;
    loop {
        t += backoff.delay(attempt);
        if t >= wait {
            return out;
        }
        out.push(t);
        attempt += 1;
    }
}

/// What the PATCH health counter says about one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchVerdict {
    /// Applied.
    Applied,
    /// Not ready (inside the window): retry after the delay; not counted.
    Retry(Duration),
    /// Counted failure; retry after the delay.
    Failed {
        /// Consecutive failures so far.
        consecutive: u32,
        /// Retry delay.
        retry: Duration,
    },
    /// The limit was reached just now: live updates are off.
    Unavailable,
}

/// Consecutive PATCH failure counter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatchHealth {
    max: u32,
    consecutive: u32,
    not_ready: u32,
    unavailable: bool,
}

impl PatchHealth {
    /// Switches off after `max` consecutive failures.
    pub(crate) fn new(max: u32) -> Self {
        PatchHealth {
            max: max.max(1),
            consecutive: 0,
            not_ready: 0,
            unavailable: false,
        }
    }

    /// Live updates were switched off.
    pub(crate) fn unavailable(&self) -> bool {
        self.unavailable
    }

    /// Consecutive counted failures.
    #[cfg(test)]
    pub(crate) fn consecutive(&self) -> u32 {
        self.consecutive
    }

    /// Records one PATCH result.
    pub(crate) fn record(
        &mut self,
        outcome: Outcome,
        warmup: &Warmup,
        now: Duration,
    ) -> PatchVerdict {
        if self.unavailable {
            return PatchVerdict::Unavailable;
        }
        match outcome {
            Outcome::Ok => {
                self.consecutive = 0;
                self.not_ready = 0;
                PatchVerdict::Applied
            }
            Outcome::NotReady if warmup.inside(now) => {
                let d = warmup.backoff.delay(self.not_ready);
                self.not_ready += 1;
                PatchVerdict::Retry(d)
            }
            _ => {
                self.consecutive += 1;
                if self.consecutive >= self.max {
                    self.unavailable = true;
                    PatchVerdict::Unavailable
                } else {
                    PatchVerdict::Failed {
                        consecutive: self.consecutive,
                        retry: warmup.backoff.delay(self.consecutive - 1),
                    }
                }
            }
        }
    }

    /// A restart (new stream): counting starts again.
    pub(crate) fn reset(&mut self) {
        *self = PatchHealth::new(self.max);
    }
}

/// At most one PATCH per interval, and none before a retry delay has passed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Throttle {
    min_interval: Duration,
    not_before: Duration,
}

impl Throttle {
    /// `rate_hz` PATCHes per second at most.
    pub(crate) fn new(rate_hz: f64) -> Self {
        let rate = if rate_hz.is_finite() && rate_hz > 0.0 {
            rate_hz
        } else {
            1.0
        };
        Throttle {
            min_interval: Duration::from_secs_f64(1.0 / rate),
            not_before: Duration::ZERO,
        }
    }

    /// When the next PATCH may go.
    pub(crate) fn next_at(&self) -> Duration {
        self.not_before
    }

    /// Whether a PATCH may go at `now`.
    pub(crate) fn ready(&self, now: Duration) -> bool {
        now >= self.not_before
    }

    /// A PATCH went out at `now`.
    pub(crate) fn sent(&mut self, now: Duration) {
        self.not_before = now + self.min_interval;
    }

    /// Hold off until at least `now + delay` (retry backoff).
    pub(crate) fn delay(&mut self, now: Duration, delay: Duration) {
        self.not_before = self.not_before.max(now + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn warm() -> Warmup {
        Warmup {
            created_at: S(10),
            grace: S(60),
            backoff: WARMUP_RETRY,
        }
    }

    #[test]
    fn statuses_are_classified_like_the_seeds() {
        for s in [404, 409, 429, 500, 502, 503] {
            assert_eq!(Outcome::of(Some(s)), Outcome::NotReady, "{s}");
        }
        for s in [400, 401, 403, 405, 422] {
            assert_eq!(Outcome::of(Some(s)), Outcome::Fatal, "{s}");
        }
        assert_eq!(Outcome::of(None), Outcome::NotReady);
        assert_eq!(Outcome::of(Some(201)), Outcome::Ok);
    }

    #[test]
    fn not_ready_is_retried_with_growing_delays_only_inside_the_window() {
        let w = warm();
        let d: Vec<Decision> = (0..6)
            .map(|a| w.after_failure(Outcome::NotReady, a, S(20)))
            .collect();
        assert_eq!(d[0], Decision::RetryAfter(Duration::from_millis(250)));
        assert_eq!(d[1], Decision::RetryAfter(Duration::from_millis(500)));
        assert_eq!(d[5], Decision::RetryAfter(S(4)), "capped");
        assert_eq!(
            w.after_failure(Outcome::NotReady, 0, S(70)),
            Decision::GiveUp
        );
        assert_eq!(w.after_failure(Outcome::Fatal, 0, S(20)), Decision::GiveUp);
    }

    #[test]
    fn five_consecutive_failures_outside_the_window_switch_live_updates_off() {
        let w = warm();
        let mut h = PatchHealth::new(5);
        // Inside the window, not-ready answers are not counted however many.
        for _ in 0..20 {
            assert!(matches!(
                h.record(Outcome::NotReady, &w, S(30)),
                PatchVerdict::Retry(_)
            ));
        }
        assert_eq!(h.consecutive(), 0);
        // A success in between resets the count.
        for _ in 0..4 {
            assert!(matches!(
                h.record(Outcome::NotReady, &w, S(80)),
                PatchVerdict::Failed { .. }
            ));
        }
        assert_eq!(h.record(Outcome::Ok, &w, S(81)), PatchVerdict::Applied);
        for i in 1..5 {
            assert_eq!(
                h.record(Outcome::Fatal, &w, S(82)),
                PatchVerdict::Failed {
                    consecutive: i,
                    retry: w.backoff.delay(i - 1)
                }
            );
        }
        assert_eq!(
            h.record(Outcome::Fatal, &w, S(83)),
            PatchVerdict::Unavailable
        );
        assert!(h.unavailable());
        assert_eq!(
            h.record(Outcome::Ok, &w, S(84)),
            PatchVerdict::Unavailable,
            "stays off"
        );
        h.reset();
        assert!(!h.unavailable());
    }

    #[test]
    fn create_is_retried_at_most_once_and_never_on_409() {
        assert_eq!(create_retry(None, 0), Some(S(1)));
        assert_eq!(create_retry(Some(503), 0), Some(S(1)));
        assert_eq!(create_retry(Some(503), 1), None, "only once");
        assert_eq!(create_retry(Some(409), 0), None, "409 may be the quota");
        assert_eq!(create_retry(Some(429), 0), None);
        assert_eq!(create_retry(Some(400), 0), None);
        assert!(may_have_created(None) && may_have_created(Some(502)));
        assert!(!may_have_created(Some(409)));
    }

    /// The default playback schedule keeps trying for minutes: attempts well past 90 s (a cold
    /// worker), never more than 10 s apart, and not hammering (a few dozen attempts).
    #[test]
    fn default_playback_schedule_covers_a_cold_worker() {
        let cfg = crate::transport::daydream::config::DaydreamConfig::default();
        let at = playback_attempts(cfg.playback_wait(), cfg.playback_backoff());
        let last = *at.last().unwrap();
        assert!(last >= S(290), "last attempt at {last:?}");
        assert!(at.iter().any(|&t| t >= S(90) && t <= S(100)), "{at:?}");
        assert!(at.windows(2).all(|w| w[1] - w[0] <= S(10)), "{at:?}");
        assert!(at.len() < 40, "{} attempts", at.len());
        // The warm-up window alone (the old limit) would have stopped at 60 s.
        assert!(last > cfg.grace());
    }

    #[test]
    fn throttle_spaces_patches_and_honours_retry_delays() {
        let mut t = Throttle::new(4.0);
        assert!(t.ready(S(0)));
        t.sent(S(0));
        assert!(!t.ready(Duration::from_millis(249)));
        assert!(t.ready(Duration::from_millis(250)));
        t.delay(Duration::from_millis(250), S(2));
        assert_eq!(t.next_at(), Duration::from_millis(2250));
    }
}
