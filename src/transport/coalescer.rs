//! The parameter coalescer: what goes on the wire, and when.
//!
//! Continuous values (knobs, audio-driven mappings) can change hundreds of times a second; the
//! server only needs the latest of each at a bounded rate. One-shot triggers (cache reset,
//! prompt switch, panic) must never be merged away or delayed. Pure: time is passed in, so the
//! dry run, the Scope backend and the tests share exactly the same policy.

use std::collections::VecDeque;
use std::time::Duration;

use crate::core::params::ParamValue;
use crate::transport::types::ParamUpdate;

/// One message for the data channel (a partial parameter update).
pub(crate) type Message = serde_json::Map<String, ParamValue>;

/// Latest-wins merging for continuous values, a bounded send rate, and one-shots that go out at
/// once in their own message.
#[derive(Debug, Clone)]
pub(crate) struct Coalescer {
    min_interval: Duration,
    pending: Message,
    /// Urgent messages waiting for the link (kept in order, never merged).
    urgent: VecDeque<Message>,
    last_sent: Option<Duration>,
    merged: u64,
}

impl Coalescer {
    /// A coalescer sending continuous values at most `rate_hz` times a second (clamped to ≥ 1).
    pub(crate) fn new(rate_hz: f64) -> Self {
        let rate = if rate_hz.is_finite() && rate_hz >= 1.0 {
            rate_hz
        } else {
            1.0
        };
        Coalescer {
            min_interval: Duration::from_secs_f64(1.0 / rate),
            pending: Message::new(),
            urgent: VecDeque::new(),
            last_sent: None,
            merged: 0,
        }
    }

    /// The minimum gap between two continuous messages.
    pub(crate) fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// Takes an update. Continuous values replace any pending value of the same key; an urgent
    /// update becomes its own message, preceded by (merged with) whatever continuous values were
    /// pending so the server sees changes in the order they were made.
    pub(crate) fn push(&mut self, update: ParamUpdate) {
        if update.urgent {
            let mut msg = std::mem::take(&mut self.pending);
            for (k, v) in update.values {
                msg.insert(k, v);
            }
            self.urgent.push_back(msg);
        } else {
            for (k, v) in update.values {
                if self.pending.insert(k, v).is_some() {
                    self.merged += 1;
                }
            }
        }
    }

    /// Messages due at `now`, in wire order: every urgent message, then the merged continuous
    /// values if the rate allows. Marks them as sent.
    pub(crate) fn poll(&mut self, now: Duration) -> Vec<Message> {
        let mut out: Vec<Message> = self.urgent.drain(..).collect();
        if !out.is_empty() {
            self.last_sent = Some(now);
        }
        if !self.pending.is_empty() && self.rate_allows(now) {
            out.push(std::mem::take(&mut self.pending));
            self.last_sent = Some(now);
        }
        out
    }

    fn rate_allows(&self, now: Duration) -> bool {
        match self.last_sent {
            None => true,
            Some(t) => now.saturating_sub(t) >= self.min_interval,
        }
    }

    /// When `poll` will next have something to send (`None`: nothing pending).
    pub(crate) fn next_due(&self) -> Option<Duration> {
        if !self.urgent.is_empty() {
            return Some(Duration::ZERO);
        }
        if self.pending.is_empty() {
            return None;
        }
        Some(match self.last_sent {
            None => Duration::ZERO,
            Some(t) => t + self.min_interval,
        })
    }

    /// Forgets pending continuous values (they are carried by a full-state replay instead);
    /// urgent messages are kept, they must still be delivered.
    pub(crate) fn clear_continuous(&mut self) {
        self.pending.clear();
    }

    /// True when nothing waits.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.urgent.is_empty()
    }

    /// How many values were replaced by a newer one before being sent (for the stats panel).
    #[cfg(test)]
    pub(crate) fn merged_count(&self) -> u64 {
        self.merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn continuous_values_merge_latest_wins_and_respect_the_rate() {
        let mut c = Coalescer::new(50.0); // 20 ms
        c.push(ParamUpdate::one("noise_scale", json!(0.1)));
        assert_eq!(c.poll(ms(0)), vec![obj(json!({"noise_scale": 0.1}))]);
        for i in 0..10 {
            c.push(ParamUpdate::one(
                "noise_scale",
                json!(f64::from(20 + i) / 100.0),
            ));
        }
        c.push(ParamUpdate::one("vace_context_scale", json!(1.0)));
        assert!(c.poll(ms(5)).is_empty(), "rate limit holds until 20 ms");
        assert_eq!(c.next_due(), Some(ms(20)));
        let sent = c.poll(ms(20));
        assert_eq!(
            sent,
            vec![obj(json!({"noise_scale": 0.29, "vace_context_scale": 1.0}))]
        );
        assert_eq!(c.merged_count(), 9);
        assert!(c.is_idle());
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn one_shots_go_out_at_once_and_are_never_merged() {
        let mut c = Coalescer::new(10.0);
        c.push(ParamUpdate::one("noise_scale", json!(0.1)));
        c.poll(ms(0));
        c.push(ParamUpdate::one("noise_scale", json!(0.5)));
        c.push(ParamUpdate::trigger("reset_cache", json!(true)));
        c.push(ParamUpdate::trigger("reset_cache", json!(true)));
        c.push(ParamUpdate::one("noise_scale", json!(0.6)));
        assert_eq!(c.next_due(), Some(Duration::ZERO));
        let sent = c.poll(ms(1));
        assert_eq!(
            sent,
            vec![
                obj(json!({"noise_scale": 0.5, "reset_cache": true})),
                obj(json!({"reset_cache": true})),
            ],
            "pending continuous values ride along in order; the later 0.6 waits for the rate"
        );
        assert!(c.poll(ms(50)).is_empty());
        assert_eq!(c.poll(ms(101)), vec![obj(json!({"noise_scale": 0.6}))]);
    }

    #[test]
    fn a_burst_of_a_thousand_updates_keeps_every_trigger_and_bounds_the_rate() {
        let mut c = Coalescer::new(60.0);
        let mut sent = Vec::new();
        let mut triggers_in = 0;
        // 1,000 CC-rate updates over one second (1 ms apart), a trigger every 97th.
        for i in 0..1000u64 {
            if i % 97 == 0 {
                c.push(ParamUpdate::trigger("reset_cache", json!(true)));
                triggers_in += 1;
            }
            c.push(ParamUpdate::one("noise_scale", json!(i as f64 / 1000.0)));
            sent.extend(c.poll(ms(i)));
        }
        sent.extend(c.poll(ms(2000)));
        let triggers_out = sent
            .iter()
            .filter(|m| m.contains_key("reset_cache"))
            .count();
        assert_eq!(triggers_out, triggers_in);
        let continuous = sent
            .iter()
            .filter(|m| !m.contains_key("reset_cache"))
            .count();
        assert!(
            continuous <= 61,
            "{continuous} continuous messages in 1 s at 60 Hz"
        );
        assert_eq!(sent.last().unwrap()["noise_scale"], json!(0.999));
    }

    #[test]
    fn clearing_keeps_urgent_messages() {
        let mut c = Coalescer::new(60.0);
        c.push(ParamUpdate::one("noise_scale", json!(0.1)));
        c.poll(ms(0));
        c.push(ParamUpdate::one("noise_scale", json!(0.2)));
        c.push(ParamUpdate::trigger("reset_cache", json!(true)));
        c.push(ParamUpdate::one("paused", json!(true)));
        c.clear_continuous();
        assert_eq!(
            c.poll(ms(1)),
            vec![obj(json!({"noise_scale": 0.2, "reset_cache": true}))]
        );
        assert!(c.is_idle());
    }

    #[test]
    fn silly_rates_are_clamped() {
        assert_eq!(Coalescer::new(0.0).min_interval(), Duration::from_secs(1));
        assert_eq!(
            Coalescer::new(f64::NAN).min_interval(),
            Duration::from_secs(1)
        );
    }

    fn obj(v: serde_json::Value) -> Message {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Message::new(),
        }
    }
}
