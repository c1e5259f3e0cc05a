//! Glass-to-glass latency measured on the running show: a visible change sent to the server (a
//! prompt, a cache reset, a theme: an urgent update) → the first received frame that shows it
//! (`Msg::VideoChangeSeen`, from the video edge's step detector, `crate::video::change`).
//!
//! A seen change is a sample only when exactly one change was sent within [`WINDOW`] before it
//! (and at least [`MIN_LATENCY`] before it): with several in flight (beat-fired resets every
//! beat) nobody can tell which one shows, and a change seen with nothing sent (the model's own
//! drift, a cut in the input video) says nothing. The latency in use is the median of the last
//! [`KEEP`] samples once there are [`MIN_SAMPLES`], so one wrong pairing does not move it; until
//! then the configured `[server] latency_ms` serves.

use std::collections::VecDeque;
use std::time::Duration;

use crate::effect::Effect;
use crate::transport::types::TransportCmd;

/// A frame later than this after a send is not taken as showing it.
pub const WINDOW: Duration = Duration::from_secs(3);
/// Nothing shows sooner than this (a frame already on its way when the change left).
pub const MIN_LATENCY: Duration = Duration::from_millis(30);
/// Samples the median is taken over.
pub const KEEP: usize = 5;
/// Samples needed before the measurement replaces the configured latency.
pub const MIN_SAMPLES: usize = 3;
/// Sends remembered while waiting for their frame.
const PENDING: usize = 8;

/// The measurement (part of the tempo slice: it decides how early beat-locked changes go).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyMeter {
    /// Send times of visible changes not yet seen, oldest first.
    sent: VecDeque<Duration>,
    /// The last samples, oldest first.
    samples: VecDeque<Duration>,
    /// Changes seen in the received video (paired or not).
    pub changes_seen: u64,
}

impl LatencyMeter {
    /// A visible change left at `at`.
    pub fn on_sent(&mut self, at: Duration) {
        self.expire(at);
        if self.sent.len() == PENDING {
            self.sent.pop_front();
        }
        self.sent.push_back(at);
    }

    /// The received video changed at `at`; returns the new sample when it pairs with a send.
    pub fn on_seen(&mut self, at: Duration) -> Option<Duration> {
        self.changes_seen += 1;
        self.expire(at);
        // Sends that could be on screen now; later ones are still on their way.
        let shown = self
            .sent
            .iter()
            .take_while(|s| at.checked_sub(**s).is_some_and(|d| d >= MIN_LATENCY))
            .count();
        let first = self.sent.front().copied();
        // Whichever of them this frame shows, they are accounted for.
        self.sent.drain(..shown);
        if shown != 1 {
            return None;
        }
        let sample = at.saturating_sub(first?);
        if self.samples.len() == KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        Some(sample)
    }

    /// The measured latency: the median of the kept samples, once there are enough.
    pub fn measured(&self) -> Option<Duration> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut v: Vec<Duration> = self.samples.iter().copied().collect();
        v.sort_unstable();
        Some(v[v.len() / 2])
    }

    /// Samples kept.
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    fn expire(&mut self, now: Duration) {
        while self
            .sent
            .front()
            .is_some_and(|s| now.saturating_sub(*s) > WINDOW)
        {
            self.sent.pop_front();
        }
    }
}

/// Whether `fx` sends a change the picture shows at once: an urgent update the server applies
/// on arrival (not one it schedules itself with `_quantized`).
pub fn sends_visible_change(fx: &[Effect]) -> bool {
    fx.iter().any(|e| match e {
        Effect::Transport(cmd) => is_visible_change(cmd),
        _ => false,
    })
}

/// Whether `cmd` is such a change (for one output's meter, `crate::outputs`).
pub fn is_visible_change(cmd: &TransportCmd) -> bool {
    match cmd {
        TransportCmd::Update(u) => {
            u.urgent && !u.values.is_empty() && !u.values.contains_key("_quantized")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_seen_change_pairs_with_the_one_send_before_it() {
        let mut m = LatencyMeter::default();
        m.on_sent(ms(1000));
        // Sent 10 ms before the frame: still on its way, not a candidate.
        m.on_sent(ms(1410));
        assert_eq!(m.on_seen(ms(1420)), Some(ms(420)));
        // The later send shows next.
        assert_eq!(m.on_seen(ms(1830)), Some(ms(420)));
    }

    #[test]
    fn several_sends_in_flight_give_no_sample() {
        let mut m = LatencyMeter::default();
        m.on_sent(ms(1000));
        m.on_sent(ms(1500));
        assert_eq!(m.on_seen(ms(1900)), None);
        // Both are accounted for: the next isolated send measures again.
        m.on_sent(ms(2000));
        assert_eq!(m.on_seen(ms(2400)), Some(ms(400)));
    }

    #[test]
    fn changes_with_nothing_sent_or_too_late_are_ignored() {
        let mut m = LatencyMeter::default();
        assert_eq!(m.on_seen(ms(500)), None);
        m.on_sent(ms(1000));
        assert_eq!(m.on_seen(ms(1010)), None, "sooner than any pipeline");
        assert_eq!(m.on_seen(ms(5000)), None, "outside the window");
        assert_eq!(m.changes_seen, 3);
    }

    #[test]
    fn the_median_needs_enough_samples_and_ignores_an_outlier() {
        let mut m = LatencyMeter::default();
        let mut t = 0;
        for lat in [400, 410, 90, 405, 395] {
            t += 10_000;
            m.on_sent(ms(t));
            assert!(m.on_seen(ms(t + lat)).is_some());
            if m.samples() < MIN_SAMPLES {
                assert_eq!(m.measured(), None);
            }
        }
        assert_eq!(m.measured(), Some(ms(400)));
    }

    #[test]
    fn quantised_and_continuous_updates_are_not_visible_changes() {
        use crate::transport::types::ParamUpdate;
        let mut urgent = ParamUpdate::one("reset_cache", serde_json::json!(true));
        urgent.urgent = true;
        assert!(sends_visible_change(&[Effect::Transport(
            TransportCmd::Update(urgent.clone())
        )]));
        let mut q = urgent.clone();
        q.values
            .insert("_quantized".into(), serde_json::json!(true));
        assert!(!sends_visible_change(&[Effect::Transport(
            TransportCmd::Update(q)
        )]));
        let mut cont = urgent;
        cont.urgent = false;
        assert!(!sends_visible_change(&[Effect::Transport(
            TransportCmd::Update(cont)
        )]));
    }
}
