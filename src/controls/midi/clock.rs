//! MIDI clock in as a tempo source: 24 pulses per quarter note, start/stop/continue, BPM smoothed
//! over the last beat of pulses. Produces [`TempoCmd`]s for the beat tracker.

use std::collections::VecDeque;

use crate::audio::features::TempoSource;
use crate::audio::tempo::TempoCmd;
use crate::controls::midi::parse::MidiMsg;

/// Pulses per quarter note.
pub(crate) const PPQN: u32 = 24;

/// Without a pulse for this long the clock counts as gone.
pub(crate) const CLOCK_TIMEOUT_SECS: f64 = 1.0;

/// Follows one MIDI clock stream. Pure: times are passed in (seconds on any monotonic base).
#[derive(Debug, Clone, Default)]
pub(crate) struct MidiClock {
    last_pulse: Option<f64>,
    intervals: VecDeque<f64>,
    /// Pulse count since start (phase known) or since the clock appeared (phase unknown).
    pulses: u64,
    /// Start/continue seen: the position in the beat is known.
    phase_known: bool,
    /// Stop seen: pulses are ignored until start/continue.
    stopped: bool,
    /// We have told the beat tracker that we lead.
    active: bool,
}

impl MidiClock {
    /// A clock follower that has seen nothing.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The smoothed tempo, once a few pulses arrived.
    pub(crate) fn bpm(&self) -> Option<f64> {
        if self.intervals.len() < 6 {
            return None;
        }
        let mean = self.intervals.iter().sum::<f64>() / self.intervals.len() as f64;
        (mean > 0.0).then(|| 60.0 / (mean * f64::from(PPQN)))
    }

    /// Feeds a message received at `t` seconds; returns a command for the beat tracker when the
    /// tempo should be (re)announced (once per beat, on start/continue, on stop).
    pub(crate) fn feed(&mut self, msg: &MidiMsg, t: f64) -> Option<TempoCmd> {
        match msg {
            MidiMsg::Start => {
                self.pulses = 0;
                self.phase_known = true;
                self.stopped = false;
                self.last_pulse = None;
                None
            }
            MidiMsg::Continue => {
                self.phase_known = true;
                self.stopped = false;
                self.last_pulse = None;
                None
            }
            MidiMsg::Stop => {
                self.stopped = true;
                self.last_pulse = None;
                self.deactivate()
            }
            MidiMsg::Clock => {
                if self.stopped {
                    return None;
                }
                if let Some(prev) = self.last_pulse {
                    let dt = t - prev;
                    let mean = self.mean();
                    // A gap (paused sender, dropped pulses) would drag the average: skip it.
                    if dt > 0.0 && mean.is_none_or(|m| dt < 4.0 * m) {
                        self.intervals.push_back(dt);
                        if self.intervals.len() > PPQN as usize {
                            self.intervals.pop_front();
                        }
                    }
                }
                self.last_pulse = Some(t);
                let pulse = self.pulses;
                self.pulses += 1;
                let on_beat = pulse % u64::from(PPQN) == 0;
                let bpm = self.bpm()?;
                if on_beat || !self.active {
                    self.active = true;
                    Some(TempoCmd::External {
                        bpm,
                        beat_phase: self
                            .phase_known
                            .then(|| (pulse % u64::from(PPQN)) as f64 / f64::from(PPQN)),
                        source: TempoSource::MidiClock,
                    })
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Called periodically: a clock that went silent hands tempo back to detection.
    pub(crate) fn poll(&mut self, t: f64) -> Option<TempoCmd> {
        if self.last_pulse.is_some_and(|p| t - p > CLOCK_TIMEOUT_SECS) {
            self.last_pulse = None;
            self.intervals.clear();
            self.phase_known = false;
            return self.deactivate();
        }
        None
    }

    fn mean(&self) -> Option<f64> {
        (!self.intervals.is_empty())
            .then(|| self.intervals.iter().sum::<f64>() / self.intervals.len() as f64)
    }

    fn deactivate(&mut self) -> Option<TempoCmd> {
        std::mem::take(&mut self.active).then_some(TempoCmd::ExternalStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(clock: &mut MidiClock, bpm: f64, from: f64, pulses: u32) -> (Vec<TempoCmd>, f64) {
        let dt = 60.0 / bpm / f64::from(PPQN);
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..pulses {
            out.extend(clock.feed(&MidiMsg::Clock, t));
            t += dt;
        }
        (out, t)
    }

    fn bpm_of(c: &TempoCmd) -> f64 {
        match c {
            TempoCmd::External { bpm, .. } => *bpm,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn steady_clock_gives_its_bpm_once_per_beat() {
        let mut c = MidiClock::new();
        c.feed(&MidiMsg::Start, 0.0);
        let (out, _) = run(&mut c, 128.0, 0.0, 24 * 4);
        // First announcement once enough pulses arrived, then once per beat.
        assert!(out.len() >= 4 && out.len() <= 5, "{out:?}");
        for cmd in &out {
            assert!((bpm_of(cmd) - 128.0).abs() < 0.01, "{cmd:?}");
        }
        match out.last().unwrap() {
            TempoCmd::External {
                beat_phase, source, ..
            } => {
                assert_eq!(*beat_phase, Some(0.0));
                assert_eq!(*source, TempoSource::MidiClock);
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn jitter_is_smoothed() {
        let mut c = MidiClock::new();
        let base = 60.0 / 120.0 / 24.0;
        let mut t = 0.0;
        for i in 0..200 {
            c.feed(&MidiMsg::Clock, t);
            t += base + if i % 2 == 0 { 0.002 } else { -0.002 };
        }
        assert!((c.bpm().unwrap() - 120.0).abs() < 0.5, "{:?}", c.bpm());
    }

    #[test]
    fn tempo_change_is_followed_within_a_beat() {
        let mut c = MidiClock::new();
        let (_, t) = run(&mut c, 100.0, 0.0, 48);
        run(&mut c, 140.0, t, 25);
        assert!((c.bpm().unwrap() - 140.0).abs() < 0.5);
    }

    #[test]
    fn stop_hands_back_and_ignores_pulses_until_start() {
        let mut c = MidiClock::new();
        c.feed(&MidiMsg::Start, 0.0);
        let (_, t) = run(&mut c, 120.0, 0.0, 30);
        assert_eq!(c.feed(&MidiMsg::Stop, t), Some(TempoCmd::ExternalStopped));
        let (out, t) = run(&mut c, 120.0, t, 48);
        assert!(out.is_empty());
        assert_eq!(c.feed(&MidiMsg::Stop, t), None, "only once");
        c.feed(&MidiMsg::Continue, t);
        let (out, _) = run(&mut c, 120.0, t, 30);
        assert!(!out.is_empty());
    }

    #[test]
    fn silence_times_out() {
        let mut c = MidiClock::new();
        let (_, t) = run(&mut c, 120.0, 0.0, 30);
        assert_eq!(c.poll(t + 0.1), None);
        assert_eq!(c.poll(t + 2.0), Some(TempoCmd::ExternalStopped));
        assert_eq!(c.poll(t + 3.0), None);
    }

    #[test]
    fn a_gap_does_not_drag_the_average() {
        let mut c = MidiClock::new();
        let (_, t) = run(&mut c, 120.0, 0.0, 30);
        let (_, _) = run(&mut c, 120.0, t + 0.5, 10);
        assert!((c.bpm().unwrap() - 120.0).abs() < 0.1, "{:?}", c.bpm());
    }
}
