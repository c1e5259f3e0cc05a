//! The connection state machine and the "connected but no frames" watch (pure; time passed in).
//!
//! Every backend reports through [`ConnMachine`], so illegal jumps (say streaming straight from
//! idle) are caught in one place and every state change carries a reason for the dashboard.
//! See docs/transport.md for the diagram.

use std::time::Duration;

use crate::transport::types::{ConnState, TransportEvent};

/// Is `from → to` a legal move? Staying in the same state (with a new reason) always is.
pub(crate) fn allowed(from: ConnState, to: ConnState) -> bool {
    use ConnState::*;
    if from == to {
        return from != Stopped;
    }
    match from {
        // Reconnecting from idle: the very first attempt found no server (it waits for one).
        Idle => matches!(to, Loading | Connecting | Reconnecting | Stopped),
        Loading => matches!(to, Warming | Connecting | Reconnecting | Stopped),
        Warming => matches!(to, Loading | Connecting | Reconnecting | Stopped),
        Connecting => matches!(to, Streaming | Degraded | Reconnecting | Stopped),
        Streaming => matches!(to, Degraded | Reconnecting | Stopped),
        Degraded => matches!(to, Streaming | Reconnecting | Stopped),
        Reconnecting => matches!(to, Loading | Warming | Connecting | Stopped),
        Stopped => false,
    }
}

/// A move the table forbids (a bug in a backend, reported rather than panicking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal connection state change {from:?} → {to:?}")]
pub(crate) struct IllegalTransition {
    /// Where it was.
    pub(crate) from: ConnState,
    /// Where it was asked to go.
    pub(crate) to: ConnState,
}

/// Current state plus the reason and when it was entered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnMachine {
    state: ConnState,
    reason: Option<String>,
    since: Duration,
}

impl Default for ConnMachine {
    fn default() -> Self {
        ConnMachine {
            state: ConnState::Idle,
            reason: None,
            since: Duration::ZERO,
        }
    }
}

impl ConnMachine {
    /// The current state.
    pub(crate) fn state(&self) -> ConnState {
        self.state
    }

    /// When the current state was entered.
    #[cfg(test)]
    pub(crate) fn since(&self) -> Duration {
        self.since
    }

    /// Moves to `to`; returns the event to report when state or reason changed.
    pub(crate) fn go(
        &mut self,
        to: ConnState,
        reason: impl Into<String>,
        now: Duration,
    ) -> Result<Option<TransportEvent>, IllegalTransition> {
        if !allowed(self.state, to) {
            return Err(IllegalTransition {
                from: self.state,
                to,
            });
        }
        let reason = Some(reason.into());
        if self.state == to && self.reason == reason {
            return Ok(None);
        }
        if self.state != to {
            self.since = now;
        }
        self.state = to;
        self.reason = reason.clone();
        Ok(Some(TransportEvent::State { state: to, reason }))
    }
}

/// What the frame watch concludes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FrameVerdict {
    /// Frames arrive (or the grace period has not run out).
    Flowing,
    /// Connected, but no frame for this long.
    Starved(Duration),
}

/// Watches received frames to detect "connected but no video for N s".
#[derive(Debug, Clone)]
pub(crate) struct FrameWatch {
    timeout: Duration,
    connected_at: Duration,
    last_frame: Option<Duration>,
    frames: u64,
}

impl FrameWatch {
    /// Starts watching at `now` (the moment the session connected).
    pub(crate) fn new(timeout: Duration, now: Duration) -> Self {
        FrameWatch {
            timeout,
            connected_at: now,
            last_frame: None,
            frames: 0,
        }
    }

    /// A frame arrived.
    pub(crate) fn frame(&mut self, now: Duration) {
        self.frames += 1;
        self.last_frame = Some(now);
    }

    /// The verdict at `now`.
    pub(crate) fn verdict(&self, now: Duration) -> FrameVerdict {
        let from = self.last_frame.unwrap_or(self.connected_at);
        let gap = now.saturating_sub(from);
        if gap >= self.timeout {
            FrameVerdict::Starved(gap)
        } else {
            FrameVerdict::Flowing
        }
    }

    /// The likely cause, for the reason text.
    pub(crate) fn likely_cause(&self, sent_pipeline_ids: bool) -> &'static str {
        if !sent_pipeline_ids {
            "initialParameters lacked pipeline_ids (Scope then never sends frames)"
        } else if self.frames == 0 {
            "the pipeline produced nothing: a video-to-video pipeline (e.g. passthrough) needs \
             input video, or the pipeline is paused or still compiling"
        } else {
            "the server stopped producing frames (paused, overloaded or stalled)"
        }
    }
}

/// Frames per second over a sliding window of arrival times.
#[derive(Debug, Clone, Default)]
pub(crate) struct FpsMeter {
    window: std::collections::VecDeque<Duration>,
}

impl FpsMeter {
    /// Window length.
    const SPAN: Duration = Duration::from_secs(2);

    /// A frame arrived at `now`.
    pub(crate) fn frame(&mut self, now: Duration) {
        self.window.push_back(now);
        self.trim(now);
    }

    fn trim(&mut self, now: Duration) {
        while let Some(&t) = self.window.front() {
            if now.saturating_sub(t) > Self::SPAN {
                self.window.pop_front();
            } else {
                break;
            }
        }
    }

    /// Frames per second at `now`.
    pub(crate) fn fps(&mut self, now: Duration) -> f32 {
        self.trim(now);
        self.window.len() as f32 / Self::SPAN.as_secs_f32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnState::*;

    const T: Duration = Duration::ZERO;

    #[test]
    fn the_happy_path_and_a_reconnect_are_legal() {
        let mut m = ConnMachine::default();
        for s in [
            Loading,
            Warming,
            Connecting,
            Streaming,
            Degraded,
            Streaming,
            Reconnecting,
            Loading,
            Warming,
            Connecting,
            Streaming,
            Stopped,
        ] {
            assert!(m.go(s, "x", T).is_ok(), "→ {s:?}");
        }
    }

    #[test]
    fn a_first_attempt_that_finds_no_server_may_wait_in_reconnecting() {
        let mut m = ConnMachine::default();
        assert!(m.go(Reconnecting, "server unreachable", T).is_ok());
        assert_eq!(m.state(), Reconnecting);
        assert!(m.go(Loading, "server back", T).is_ok());
        assert!(
            !allowed(Idle, Streaming),
            "idle still cannot jump to streaming"
        );
    }

    #[test]
    fn illegal_moves_are_reported_and_stopped_is_final() {
        let mut m = ConnMachine::default();
        assert_eq!(
            m.go(Streaming, "no", T),
            Err(IllegalTransition {
                from: Idle,
                to: Streaming
            })
        );
        m.go(Stopped, "quit", T).unwrap();
        for s in [
            Idle,
            Loading,
            Warming,
            Connecting,
            Streaming,
            Degraded,
            Reconnecting,
            Stopped,
        ] {
            assert!(m.go(s, "again", T).is_err());
        }
    }

    #[test]
    fn events_only_when_something_changed() {
        let mut m = ConnMachine::default();
        assert!(m.go(Loading, "a", T).unwrap().is_some());
        assert!(m.go(Loading, "a", T).unwrap().is_none());
        assert_eq!(
            m.go(Loading, "b", Duration::from_secs(1)).unwrap(),
            Some(TransportEvent::State {
                state: Loading,
                reason: Some("b".into())
            })
        );
        assert_eq!(m.since(), T, "a new reason is not a new state");
    }

    #[test]
    fn frame_watch_detects_starvation_and_recovery() {
        let s = Duration::from_secs;
        let mut w = FrameWatch::new(s(3), s(10));
        assert_eq!(w.verdict(s(12)), FrameVerdict::Flowing);
        assert_eq!(w.verdict(s(13)), FrameVerdict::Starved(s(3)));
        assert!(w.likely_cause(true).contains("input video"));
        assert!(w.likely_cause(false).contains("pipeline_ids"));
        w.frame(s(14));
        assert_eq!(w.verdict(s(15)), FrameVerdict::Flowing);
        assert_eq!(w.verdict(s(18)), FrameVerdict::Starved(s(4)));
        assert!(w.likely_cause(true).contains("stopped producing"));
    }

    #[test]
    fn fps_meter_counts_a_sliding_window() {
        let mut f = FpsMeter::default();
        for i in 0..60u64 {
            f.frame(Duration::from_millis(i * 33));
        }
        let fps = f.fps(Duration::from_millis(60 * 33));
        assert!((29.0..=31.0).contains(&fps), "{fps}");
        assert_eq!(f.fps(Duration::from_secs(10)), 0.0);
    }
}
