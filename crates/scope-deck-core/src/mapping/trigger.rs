//! Trigger evaluation: beat, bar, onset and rising-level conditions, each rate-limited by a
//! cooldown so a busy track cannot thrash the model.

use std::time::Duration;

use crate::mapping::theme::{Trigger, TriggerOn};

/// What happened, as a trigger sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stimulus {
    /// A beat: the tracker's running count, and the bar index when this beat is a downbeat.
    Beat {
        /// Running beat count.
        count: u64,
        /// Bar index if this is beat 1 of a bar.
        downbeat_of_bar: Option<u64>,
    },
    /// An onset of this strength.
    Onset {
        /// 0..1.
        strength: f32,
    },
    /// A new frame: the value of the trigger's source (rise triggers only).
    Level(f64),
}

/// Per-trigger memory.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TriggerState {
    /// When it last fired.
    pub last_fired: Option<Duration>,
    /// Rise triggers: below the re-arm level since the last firing.
    pub armed: bool,
    /// Rise triggers: a level has been seen (the first frame only arms).
    pub primed: bool,
}

/// True when `cooldown` has passed since `last` (or it never fired).
pub fn cooldown_over(last: Option<Duration>, cooldown: Duration, now: Duration) -> bool {
    last.is_none_or(|t| now.saturating_sub(t) >= cooldown)
}

/// Every `every`-th beat or bar, counting from the first: with `every = 4` that is 4, 8, 12, ...
/// (a change *after* four bars, not on the very first downbeat); `every = 1` is every one.
fn nth(index: u64, every: u32) -> bool {
    let every = u64::from(every.max(1));
    index % every == 0 && (every == 1 || index > 0)
}

/// Decides whether `trig` fires for `stim` at `now` with the current `energy`, updating its
/// state. A condition met during the cooldown is dropped, not deferred: a late cache reset
/// would land off the beat.
pub fn evaluate(
    trig: &Trigger,
    st: &mut TriggerState,
    stim: Stimulus,
    energy: f32,
    now: Duration,
) -> bool {
    let condition = match (&trig.on, stim) {
        (TriggerOn::Beat { every }, Stimulus::Beat { count, .. }) => nth(count, *every),
        (
            TriggerOn::Bar { every },
            Stimulus::Beat {
                downbeat_of_bar: Some(bar),
                ..
            },
        ) => nth(bar, *every),
        (TriggerOn::Onset { threshold }, Stimulus::Onset { strength }) => strength >= *threshold,
        (
            TriggerOn::Rise {
                threshold,
                hysteresis,
                ..
            },
            Stimulus::Level(v),
        ) => {
            let rearm = threshold - hysteresis;
            if !st.primed {
                st.primed = true;
                st.armed = v < *threshold;
                false
            } else if v < rearm || (*hysteresis == 0.0 && v < *threshold) {
                st.armed = true;
                false
            } else if st.armed && v >= *threshold {
                st.armed = false;
                true
            } else {
                false
            }
        }
        _ => false,
    };
    if !condition {
        return false;
    }
    if trig.min_energy.is_some_and(|m| energy < m) {
        return false;
    }
    if !cooldown_over(st.last_fired, trig.cooldown, now) {
        return false;
    }
    st.last_fired = Some(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::theme::{Source, TriggerAction};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn trig(on: TriggerOn, cooldown: u64, min_energy: Option<f32>) -> Trigger {
        Trigger {
            name: "t".into(),
            on,
            min_energy,
            cooldown: ms(cooldown),
            action: TriggerAction::ResetCache,
            enabled: true,
        }
    }

    fn beat(count: u64, bpb: u64) -> Stimulus {
        Stimulus::Beat {
            count,
            downbeat_of_bar: (count % bpb == 0).then_some(count / bpb),
        }
    }

    /// Beats at 120 BPM (every 500 ms); which ones fire for each trigger and cooldown.
    #[test]
    fn beat_and_bar_triggers_with_cooldowns() {
        // (trigger, min energy, energy, fired beat counts among 0..16)
        let table: Vec<(Trigger, f32, Vec<u64>)> = vec![
            (
                trig(TriggerOn::Beat { every: 1 }, 0, None),
                1.0,
                (0..16).collect(),
            ),
            // Cooldown longer than a beat: every other beat survives.
            (
                trig(TriggerOn::Beat { every: 1 }, 600, None),
                1.0,
                (0..16).step_by(2).collect(),
            ),
            // Exactly one beat: 500 ms cooldown lets every beat through.
            (
                trig(TriggerOn::Beat { every: 1 }, 500, None),
                1.0,
                (0..16).collect(),
            ),
            (
                trig(TriggerOn::Beat { every: 4 }, 0, None),
                1.0,
                vec![4, 8, 12],
            ),
            (
                trig(TriggerOn::Bar { every: 1 }, 0, None),
                1.0,
                vec![0, 4, 8, 12],
            ),
            (trig(TriggerOn::Bar { every: 2 }, 0, None), 1.0, vec![8]),
            // Bars with a 3 s cooldown: bar 0 (0 s), bar 2 (4 s) ... not bar 1 (2 s).
            (
                trig(TriggerOn::Bar { every: 1 }, 3000, None),
                1.0,
                vec![0, 8],
            ),
            // Energy gate.
            (
                trig(TriggerOn::Beat { every: 1 }, 0, Some(0.5)),
                0.4,
                vec![],
            ),
        ];
        for (t, energy, want) in table {
            let mut st = TriggerState::default();
            let fired: Vec<u64> = (0..16)
                .filter(|&c| evaluate(&t, &mut st, beat(c, 4), energy, ms(c * 500)))
                .collect();
            assert_eq!(fired, want, "{:?} cooldown {:?}", t.on, t.cooldown);
        }
    }

    #[test]
    fn onset_threshold_and_cooldown() {
        let t = trig(TriggerOn::Onset { threshold: 0.6 }, 200, None);
        let mut st = TriggerState::default();
        // (time ms, strength, fires)
        let table = [
            (0, 0.5, false),
            (10, 0.7, true),
            (100, 0.9, false), // cooldown
            (209, 0.9, false),
            (210, 0.9, true),
            (500, 0.59, false),
        ];
        for (at, strength, want) in table {
            assert_eq!(
                evaluate(&t, &mut st, Stimulus::Onset { strength }, 1.0, ms(at)),
                want,
                "at {at}"
            );
        }
        // A beat never fires an onset trigger.
        assert!(!evaluate(&t, &mut st, beat(0, 4), 1.0, ms(2000)));
    }

    #[test]
    fn rise_fires_once_per_crossing_with_hysteresis() {
        let t = trig(
            TriggerOn::Rise {
                source: Source::Energy,
                threshold: 0.7,
                hysteresis: 0.1,
            },
            100,
            None,
        );
        let mut st = TriggerState::default();
        // Starts loud: the first frame only arms (no firing on start-up when already above).
        let levels = [
            (0, 0.9, false),
            (10, 0.5, false), // re-armed
            (20, 0.72, true),
            (30, 0.65, false), // within hysteresis: not re-armed
            (40, 0.75, false),
            (50, 0.55, false), // re-armed
            (60, 0.8, false),  // cooldown (last at 20 → ok at 120): dropped, stays disarmed
            (130, 0.9, false),
            (140, 0.5, false),
            (150, 0.71, true),
        ];
        for (at, v, want) in levels {
            assert_eq!(
                evaluate(&t, &mut st, Stimulus::Level(v), 1.0, ms(at)),
                want,
                "at {at} level {v}"
            );
        }
    }
}
