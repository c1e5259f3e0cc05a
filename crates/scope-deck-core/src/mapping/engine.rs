//! The mapping engine: one theme's mappings and triggers run over audio frames and events.
//!
//! Pure: features, macros, the parameter store (for ranges and current values) and `now` go in;
//! parameter values to send and fired triggers come out. The reducer glue (`reduce.rs`) turns
//! them into validated store writes and transport commands.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::audio::features::{AudioEvent, AudioFrame};
use crate::mapping::smoothing::{AttackRelease, lerp, outside_dead_band, quantise, round6, unlerp};
use crate::mapping::theme::{Mapping, Quantise, Source, Theme, TriggerAction, TriggerOn};
use crate::mapping::trigger::{Stimulus, TriggerState, evaluate};
use crate::params::{ParamStore, ParamValue};

/// A nudge in progress: `amount` decaying linearly to 0 over `decay`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveNudge {
    /// Push in parameter units.
    pub amount: f64,
    /// When it fired.
    pub start: Duration,
    /// How long it takes to decay.
    pub decay: Duration,
    /// For targets no mapping drives: the value to return to.
    pub base: f64,
    /// Output range to stay in.
    pub range: (f64, f64),
    /// Last value sent for an unmapped target.
    pub last_sent: Option<f64>,
}

impl ActiveNudge {
    /// The remaining offset at `now` (0 once decayed).
    pub fn offset(&self, now: Duration) -> f64 {
        let el = now.saturating_sub(self.start).as_secs_f64();
        let d = self.decay.as_secs_f64();
        if d <= 0.0 || el >= d {
            0.0
        } else {
            self.amount * (1.0 - el / d)
        }
    }
}

/// Per-mapping memory.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingRuntime {
    /// The attack/release filter (normalised output domain).
    pub filter: AttackRelease,
    /// Normalised value at the last send (dead-band reference).
    pub last_sent_norm: Option<f64>,
    /// The value last sent.
    pub last_sent: Option<ParamValue>,
}

/// What a trigger asks the reducer to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// Send a one-shot cache reset.
    ResetCache,
    /// Move in the prompt list.
    Prompt {
        /// Where to.
        to: PromptMove,
        /// Crossfade override.
        steps: Option<u32>,
    },
    /// A nudge started (applied by the engine itself; reported for the activity log).
    Nudge {
        /// Parameter.
        target: String,
    },
}

/// A move in the prompt list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptMove {
    /// Next, wrapping.
    Next,
    /// Previous, wrapping.
    Prev,
    /// A given index.
    To(usize),
}

/// A fired trigger: its name and what it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    /// Trigger name.
    pub trigger: String,
    /// What to do.
    pub what: Fired,
}

/// What one input produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// Continuous values to send (non-urgent; the transport coalesces).
    pub values: Vec<(String, ParamValue)>,
    /// Triggers that fired.
    pub fired: Vec<Fire>,
}

/// The engine state for the active theme; rebuilt on every theme switch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineState {
    /// Aligned with `theme.mappings`.
    pub mappings: Vec<MappingRuntime>,
    /// Aligned with `theme.triggers`.
    pub triggers: Vec<TriggerState>,
    /// Nudges in progress by target.
    pub nudges: BTreeMap<String, ActiveNudge>,
    /// Mapping / trigger names whose enabled state the performer flipped.
    pub toggled: BTreeSet<String>,
    /// Engine time of the previous frame (smoothing `dt`).
    pub last_frame_at: Option<Duration>,
    /// Last continuous beat-forwarding send.
    pub last_forward_at: Option<Duration>,
    /// Last forwarded tempo and playing state (sent again only when they change).
    pub last_forward_tempo: Option<(f64, bool)>,
    /// Mapping targets the performer set by hand, paused until the given time.
    pub holds: BTreeMap<String, Duration>,
}

/// The value of `source` in this frame.
pub fn read_source(source: &Source, frame: &AudioFrame, macros: &BTreeMap<String, f32>) -> f64 {
    let v = match source {
        Source::Energy => frame.energy,
        Source::Brightness => frame.brightness,
        Source::Flux => frame.flux,
        Source::Bass => frame.bands[0],
        Source::Mid => frame.bands[1],
        Source::High => frame.bands[2],
        Source::Bpm => frame.bpm,
        Source::BeatPhase => frame.beat_phase,
        Source::BarPosition => frame.bar_position,
        Source::Confidence => frame.confidence,
        Source::RmsDb => frame.rms_db,
        Source::Macro(m) => macros.get(m).copied().unwrap_or(0.0),
    };
    let v = f64::from(v);
    if v.is_finite() { v } else { 0.0 }
}

/// The normalised position of a parameter value within a mapping's output (lists: bin centre).
fn norm_of(m: &Mapping, v: &ParamValue) -> Option<f64> {
    match &m.quantise {
        Quantise::List(items) => {
            let ix = items.iter().position(|i| i == v)?;
            Some((ix as f64 + 0.5) / items.len() as f64)
        }
        _ => v.as_f64().map(|x| unlerp(m.output, x)),
    }
}

impl EngineState {
    /// Fresh state for `theme`: filters start at the theme's defaults (or the store's current
    /// value) so the first frames glide from there instead of jumping.
    pub fn for_theme(theme: &Theme, store: &ParamStore) -> Self {
        let mappings = theme
            .mappings
            .iter()
            .map(|m| {
                let start = theme.params.get(&m.target).or_else(|| store.get(&m.target));
                let norm = start.and_then(|v| norm_of(m, v));
                let mut filter = AttackRelease::new(m.attack, m.release);
                filter.value = norm;
                MappingRuntime {
                    filter,
                    last_sent_norm: norm,
                    last_sent: norm.and(start.cloned()),
                }
            })
            .collect();
        EngineState {
            mappings,
            triggers: vec![TriggerState::default(); theme.triggers.len()],
            ..EngineState::default()
        }
    }

    /// Whether the mapping or trigger called `name` with declared state `declared` runs.
    pub fn is_enabled(&self, name: &str, declared: bool) -> bool {
        declared != self.toggled.contains(name)
    }

    /// Flips a mapping or trigger by name; false when the theme has none of that name.
    pub fn toggle(&mut self, theme: &Theme, name: &str) -> Option<bool> {
        let declared = theme
            .mappings
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.enabled)
            .or_else(|| {
                theme
                    .triggers
                    .iter()
                    .find(|t| t.name == name)
                    .map(|t| t.enabled)
            })?;
        if !self.toggled.remove(name) {
            self.toggled.insert(name.to_string());
        }
        Some(self.is_enabled(name, declared))
    }

    /// The performer set `target` to `value` by hand: its mapping pauses until `until`, then
    /// glides from `value` with its own attack/release (no jump back).
    pub fn hold(&mut self, theme: &Theme, target: &str, value: &ParamValue, until: Duration) {
        let Some(i) = theme.mappings.iter().position(|m| m.target == target) else {
            return;
        };
        let (Some(m), Some(rt)) = (theme.mappings.get(i), self.mappings.get_mut(i)) else {
            return;
        };
        let norm = norm_of(m, value);
        if norm.is_some() {
            rt.filter.value = norm;
            rt.last_sent_norm = norm;
            rt.last_sent = Some(value.clone());
        }
        self.holds.insert(target.to_string(), until);
    }

    /// Runs mappings, rise triggers, nudges and beat forwarding for one frame.
    pub fn on_frame(
        &mut self,
        theme: &Theme,
        frame: &AudioFrame,
        macros: &BTreeMap<String, f32>,
        now: Duration,
    ) -> Output {
        let mut out = Output::default();
        let dt = self
            .last_frame_at
            .map_or(Duration::ZERO, |t| now.saturating_sub(t));
        self.last_frame_at = Some(now);

        for (i, m) in theme.mappings.iter().enumerate() {
            if !self.is_enabled(&m.name, m.enabled) {
                continue;
            }
            if let Some(until) = self.holds.get(&m.target) {
                if now < *until {
                    continue;
                }
                self.holds.remove(&m.target);
            }
            let Some(rt) = self.mappings.get_mut(i) else {
                continue;
            };
            let x = unlerp(m.input, read_source(&m.source, frame, macros));
            let mut y = m.curve.apply(x);
            if m.invert {
                y = 1.0 - y;
            }
            let s = rt.filter.step(y, dt);
            let norm = match (self.nudges.get(&m.target), &m.quantise) {
                (Some(n), Quantise::None | Quantise::Step(_)) => {
                    unlerp(m.output, lerp(m.output, s) + n.offset(now))
                }
                _ => s,
            };
            if outside_dead_band(rt.last_sent_norm, norm, m.dead_band) {
                let v = quantise(norm, m.output, &m.quantise);
                if rt.last_sent.as_ref() != Some(&v) {
                    rt.last_sent_norm = Some(norm);
                    rt.last_sent = Some(v.clone());
                    out.values.push((m.target.clone(), v));
                }
            }
        }

        // Nudges on parameters no mapping drives: base + decaying offset.
        if !self.nudges.is_empty() {
            self.run_nudges(theme, now, &mut out);
        }

        self.rise_and_forward(theme, frame, macros, now, &mut out);
        self.start_nudges(theme, &out.fired, now);
        out
    }

    /// Nudge values for targets no running mapping drives.
    fn run_nudges(&mut self, theme: &Theme, now: Duration, out: &mut Output) {
        let mapped: BTreeSet<&str> = theme
            .mappings
            .iter()
            .filter(|m| self.is_enabled(&m.name, m.enabled))
            .map(|m| m.target.as_str())
            .collect();
        let mut done = Vec::new();
        for (k, n) in self.nudges.iter_mut() {
            let off = n.offset(now);
            if off == 0.0 {
                done.push(k.clone());
            }
            if mapped.contains(k.as_str()) {
                continue;
            }
            let (lo, hi) = n.range;
            let v = round6((n.base + off).clamp(lo.min(hi), lo.max(hi)));
            let width = (hi - lo).abs().max(f64::EPSILON);
            let moved = n.last_sent.is_none_or(|l| (v - l).abs() / width >= 0.01);
            if moved || (off == 0.0 && n.last_sent != Some(v)) {
                n.last_sent = Some(v);
                out.values.push((k.clone(), serde_json::json!(v)));
            }
        }
        for k in done {
            self.nudges.remove(&k);
        }
    }

    /// Rise triggers and the continuous part of beat forwarding.
    fn rise_and_forward(
        &mut self,
        theme: &Theme,
        frame: &AudioFrame,
        macros: &BTreeMap<String, f32>,
        now: Duration,
        out: &mut Output,
    ) {
        // Rise triggers.
        for (i, t) in theme.triggers.iter().enumerate() {
            let TriggerOn::Rise { source, .. } = &t.on else {
                continue;
            };
            if !self.is_enabled(&t.name, t.enabled) {
                continue;
            }
            let v = read_source(source, frame, macros);
            if let Some(st) = self.triggers.get_mut(i) {
                if evaluate(t, st, Stimulus::Level(v), frame.energy, now) {
                    out.fired.push(Fire {
                        trigger: t.name.clone(),
                        what: fired_of(&t.action),
                    });
                }
            }
        }

        // Beat forwarding (continuous part, rate-limited).
        if theme.beat.enabled
            && self
                .last_forward_at
                .is_none_or(|t| now.saturating_sub(t) >= theme.beat.interval)
        {
            self.last_forward_at = Some(now);
            let playing = frame.playing;
            let bpm = (f64::from(frame.bpm) * 10.0).round() / 10.0;
            let (last_bpm, last_playing) = self.last_forward_tempo.unwrap_or((-1.0, !playing));
            if playing && bpm != last_bpm {
                out.values.push(("bpm".into(), serde_json::json!(bpm)));
            }
            if playing != last_playing {
                out.values
                    .push(("is_playing".into(), serde_json::json!(playing)));
            }
            self.last_forward_tempo = Some((if playing { bpm } else { last_bpm }, playing));
            out.values.push((
                "beat_phase".into(),
                serde_json::json!(round6(f64::from(frame.beat_phase.clamp(0.0, 1.0)))),
            ));
            out.values.push((
                "bar_position".into(),
                serde_json::json!(round6(f64::from(frame.bar_position.clamp(0.0, 64.0)))),
            ));
        }
    }

    /// Runs beat, bar and onset triggers (and beat forwarding of the count) for one event.
    /// `downbeat_of_bar` is the bar index when the event is a downbeat.
    pub fn on_event(
        &mut self,
        theme: &Theme,
        ev: &AudioEvent,
        downbeat_of_bar: Option<u64>,
        energy: f32,
        now: Duration,
    ) -> Output {
        let mut out = Output::default();
        let stim = match *ev {
            AudioEvent::Beat { count, in_bar, .. } => {
                if theme.beat.enabled {
                    out.values
                        .push(("beat_count".into(), serde_json::json!(count)));
                    out.values
                        .push(("beat_phase".into(), serde_json::json!(0.0)));
                    // The exact bar position at the beat (the continuous one is rate-limited).
                    out.values
                        .push(("bar_position".into(), serde_json::json!(f64::from(in_bar))));
                }
                Stimulus::Beat {
                    count,
                    downbeat_of_bar,
                }
            }
            AudioEvent::Onset { strength, .. } => Stimulus::Onset { strength },
        };
        for (i, t) in theme.triggers.iter().enumerate() {
            if matches!(t.on, TriggerOn::Rise { .. }) || !self.is_enabled(&t.name, t.enabled) {
                continue;
            }
            if let Some(st) = self.triggers.get_mut(i) {
                if evaluate(t, st, stim, energy, now) {
                    out.fired.push(Fire {
                        trigger: t.name.clone(),
                        what: fired_of(&t.action),
                    });
                }
            }
        }
        self.start_nudges(theme, &out.fired, now);
        out
    }

    /// Registers nudges for fired nudge triggers. The base for targets no mapping drives is the
    /// theme default, else the middle of the range.
    fn start_nudges(&mut self, theme: &Theme, fired: &[Fire], now: Duration) {
        for f in fired {
            let Some(t) = theme.triggers.iter().find(|t| t.name == f.trigger) else {
                continue;
            };
            let TriggerAction::Nudge {
                target,
                amount,
                decay,
            } = &t.action
            else {
                continue;
            };
            let range = theme
                .ranges
                .get(target)
                .copied()
                .or_else(|| {
                    crate::params::builtin_specs()
                        .get(target)
                        .and_then(|s| s.range())
                })
                .unwrap_or((0.0, 1.0));
            let base = match self.nudges.get(target) {
                Some(n) => n.base,
                None => theme
                    .params
                    .get(target)
                    .and_then(|v| v.as_f64())
                    .unwrap_or((range.0 + range.1) / 2.0),
            };
            let last_sent = self.nudges.get(target).and_then(|n| n.last_sent);
            self.nudges.insert(
                target.clone(),
                ActiveNudge {
                    amount: *amount,
                    start: now,
                    decay: *decay,
                    base,
                    range,
                    last_sent,
                },
            );
        }
    }
}

fn fired_of(a: &TriggerAction) -> Fired {
    match a {
        TriggerAction::ResetCache => Fired::ResetCache,
        TriggerAction::NextPrompt { steps } => Fired::Prompt {
            to: PromptMove::Next,
            steps: *steps,
        },
        TriggerAction::PrevPrompt { steps } => Fired::Prompt {
            to: PromptMove::Prev,
            steps: *steps,
        },
        TriggerAction::Prompt { index, steps } => Fired::Prompt {
            to: PromptMove::To(*index),
            steps: *steps,
        },
        TriggerAction::Nudge { target, .. } => Fired::Nudge {
            target: target.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn theme(text: &str) -> Theme {
        let mut errs = Vec::new();
        Theme::from_text("t.toml", "t", text, &mut errs).unwrap_or_else(|| panic!("{errs:?}"))
    }

    fn frame(energy: f32) -> AudioFrame {
        AudioFrame {
            energy,
            ..AudioFrame::default()
        }
    }

    #[test]
    fn mapping_follows_energy_through_range_with_dead_band() {
        let t = theme(
            "name = \"t\"\nprompts = [\"a\"]\n[[mappings]]\nsource = \"energy\"\ntarget = \"noise_scale\"\noutput = [0.2, 0.8]\ndead_band = 0.1\n",
        );
        let mut e = EngineState::for_theme(&t, &ParamStore::new());
        let m = BTreeMap::new();
        // (time, energy, values sent)
        let table: &[(u64, f32, Vec<ParamValue>)] = &[
            (0, 0.5, vec![json!(0.5)]),
            (10, 0.55, vec![]), // inside the dead-band
            (20, 0.61, vec![json!(0.566)]),
            (30, 1.0, vec![json!(0.8)]),
            (40, 1.0, vec![]),
            (50, 0.0, vec![json!(0.2)]),
        ];
        for (at, en, want) in table {
            let out = e.on_frame(&t, &frame(*en), &m, ms(*at));
            let got: Vec<ParamValue> = out.values.into_iter().map(|(_, v)| v).collect();
            assert_eq!(&got, want, "at {at}");
        }
    }

    #[test]
    fn inverted_mapping_glides_from_the_default() {
        let t = theme(
            "name = \"t\"\nprompts = [\"a\"]\n[params]\nnoise_scale = 0.5\n[[mappings]]\nsource = \"bass\"\ntarget = \"noise_scale\"\ninvert = true\nattack_ms = 100\nrelease_ms = 100\n",
        );
        let mut e = EngineState::for_theme(&t, &ParamStore::new());
        let m = BTreeMap::new();
        let mut f = AudioFrame::default();
        f.bands[0] = 1.0; // target 0 after invert
        let out = e.on_frame(&t, &f, &m, ms(0));
        // First frame: filter starts at the default 0.5 and dt = 0, so nothing moves yet.
        assert!(out.values.is_empty(), "{out:?}");
        let out = e.on_frame(&t, &f, &m, ms(100));
        // One time constant: 0.5 → 0.5 * e^-1.
        let v = out.values[0].1.as_f64().unwrap();
        assert!((v - 0.5 * (-1.0f64).exp()).abs() < 1e-4, "{v}");
    }

    #[test]
    fn step_list_mapping_keeps_lists_descending_and_uses_hysteresis() {
        let t = theme(
            "name = \"t\"\nprompts = [\"a\"]\n[[mappings]]\nsource = \"energy\"\ntarget = \"denoising_step_list\"\ndead_band = 0.1\nsteps = [[1000, 750], [1000, 750, 500], [1000, 750, 500, 250]]\n",
        );
        let mut e = EngineState::for_theme(&t, &ParamStore::new());
        let m = BTreeMap::new();
        let table: &[(u64, f32, Option<ParamValue>)] = &[
            (0, 0.1, Some(json!([1000, 750]))),
            (10, 0.34, Some(json!([1000, 750, 500]))),
            (20, 0.32, None), // back across the bin edge, but within the dead-band: held
            (30, 0.9, Some(json!([1000, 750, 500, 250]))),
            (40, 0.62, Some(json!([1000, 750, 500]))),
        ];
        let mut sent = Vec::new();
        for (at, en, want) in table {
            let out = e.on_frame(&t, &frame(*en), &m, ms(*at));
            assert_eq!(out.values.first().map(|v| v.1.clone()), *want, "at {at}");
            sent.extend(out.values);
        }
        for (_, v) in sent {
            let l: Vec<i64> = serde_json::from_value(v).unwrap();
            assert!(l.windows(2).all(|w| w[0] > w[1]));
        }
    }

    #[test]
    fn nudge_decays_back_to_base_on_unmapped_target() {
        let t = theme(
            "name = \"t\"\nprompts = [\"a\"]\n[params]\nvace_context_scale = 1.0\n[[triggers]]\non = \"onset\"\nthreshold = 0.5\ncooldown_ms = 0\naction = \"nudge\"\ntarget = \"vace_context_scale\"\namount = 0.5\ndecay_ms = 100\n",
        );
        let mut e = EngineState::for_theme(&t, &ParamStore::new());
        let m = BTreeMap::new();
        let out = e.on_event(
            &t,
            &AudioEvent::Onset {
                time: 0.0,
                strength: 0.9,
            },
            None,
            1.0,
            ms(0),
        );
        assert_eq!(out.fired.len(), 1);
        let v = |o: Output| o.values.first().and_then(|(_, v)| v.as_f64());
        assert_eq!(v(e.on_frame(&t, &frame(0.0), &m, ms(0))), Some(1.5));
        assert_eq!(v(e.on_frame(&t, &frame(0.0), &m, ms(50))), Some(1.25));
        assert_eq!(v(e.on_frame(&t, &frame(0.0), &m, ms(100))), Some(1.0));
        assert!(e.nudges.is_empty());
        assert_eq!(v(e.on_frame(&t, &frame(0.0), &m, ms(150))), None);
    }

    #[test]
    fn toggles_flip_by_name() {
        let t = theme(
            "name = \"t\"\nprompts = [\"a\"]\n[[mappings]]\nname = \"n\"\nsource = \"energy\"\ntarget = \"noise_scale\"\n",
        );
        let mut e = EngineState::for_theme(&t, &ParamStore::new());
        assert_eq!(e.toggle(&t, "n"), Some(false));
        assert!(
            e.on_frame(&t, &frame(1.0), &BTreeMap::new(), ms(0))
                .values
                .is_empty()
        );
        assert_eq!(e.toggle(&t, "n"), Some(true));
        assert_eq!(e.toggle(&t, "nope"), None);
    }
}
