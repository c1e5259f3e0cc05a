//! The engine-side MIDI step: evaluates parsed messages against the bindings, sends discrete
//! actions (notes, programs, panic) at once, and coalesces continuous ones (faders, encoders,
//! pitch bend) into one action per binding per engine tick: latest wins for positions, deltas
//! add up for relative encoders.
//!
//! Pure: the async task in [`super::io`] feeds it and forwards what it returns.

use crate::controls::midi::binding::{
    BindingState, Coalesce, Current, MidiBinding, device_matches,
};
use crate::controls::midi::clock::MidiClock;
use crate::controls::midi::config::MidiConfig;
use crate::controls::midi::learn::{LearnMsg, LearnedControl};
use crate::controls::midi::parse::MidiMsg;
use crate::core::action::{Action, ActionSource};
use crate::core::msg::Msg;

/// A coalesced value waiting for the next tick.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    /// Latest position.
    Latest(Action),
    /// Summed delta (`adjust_param`).
    Sum { key: String, delta: f64 },
}

/// Counters shown in the log and checked by the flood test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouterStats {
    /// Messages evaluated.
    pub(crate) messages: u64,
    /// Actions sent at once (discrete).
    pub(crate) immediate: u64,
    /// Continuous outputs merged into a later one.
    pub(crate) coalesced: u64,
    /// Actions sent at ticks.
    pub(crate) flushed: u64,
}

/// Bindings, their state, the clock follower and the coalescing buffer.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    bindings: Vec<MidiBinding>,
    states: Vec<BindingState>,
    pending: Vec<Option<Pending>>,
    /// Bindings with something pending, in arrival order.
    order: Vec<usize>,
    clock_pattern: Option<String>,
    clock: MidiClock,
    /// Learn mode is waiting for a control.
    learning: bool,
    /// Counters.
    pub(crate) stats: RouterStats,
}

fn action_msg(action: Action) -> Msg {
    Msg::Action {
        action,
        source: ActionSource::Midi,
    }
}

impl Router {
    /// A router for a validated MIDI configuration.
    pub(crate) fn new(cfg: &MidiConfig) -> Self {
        let n = cfg.bindings.len();
        Router {
            bindings: cfg.bindings.clone(),
            states: vec![BindingState::default(); n],
            pending: vec![None; n],
            order: Vec::new(),
            clock_pattern: cfg.clock.clone(),
            clock: MidiClock::new(),
            learning: false,
            stats: RouterStats::default(),
        }
    }

    /// Replaces the bindings (keymap reloaded after learn); state is kept for unchanged ones.
    pub(crate) fn reload(&mut self, cfg: &MidiConfig) {
        let mut states = Vec::with_capacity(cfg.bindings.len());
        for b in &cfg.bindings {
            let old = self.bindings.iter().position(|o| o == b);
            states.push(old.map(|i| self.states[i].clone()).unwrap_or_default());
        }
        self.bindings = cfg.bindings.clone();
        self.states = states;
        self.pending = vec![None; self.bindings.len()];
        self.order.clear();
        self.clock_pattern = cfg.clock.clone();
    }

    /// Arms or disarms learn capture (the engine's `LearnCmd::Arm` / `Disarm`).
    pub(crate) fn set_learning(&mut self, on: bool) {
        self.learning = on;
    }

    /// Evaluates one message from port `port` received at `t` seconds. Returns what must go to
    /// the engine now; continuous outputs wait for [`flush`](Self::flush).
    pub(crate) fn on_message(
        &mut self,
        port: &str,
        msg: &MidiMsg,
        t: f64,
        current: impl Fn(&str) -> Option<Current>,
    ) -> Vec<Msg> {
        self.stats.messages += 1;
        let mut out = Vec::new();
        if matches!(
            msg,
            MidiMsg::Clock | MidiMsg::Start | MidiMsg::Stop | MidiMsg::Continue
        ) {
            if self
                .clock_pattern
                .as_deref()
                .is_some_and(|p| device_matches(p, port))
            {
                if let Some(cmd) = self.clock.feed(msg, t) {
                    out.push(Msg::Tempo(cmd));
                }
            }
            return out;
        }
        if self.learning {
            if let Some(control) = LearnedControl::from_msg(port, msg) {
                self.learning = false;
                out.push(Msg::Learn(LearnMsg::Captured { control }));
            }
            return out;
        }
        for (i, b) in self.bindings.iter().enumerate() {
            if !b.matches(msg) || !b.device.as_deref().is_none_or(|p| device_matches(p, port)) {
                continue;
            }
            let cur = match &b.target {
                crate::controls::midi::binding::Target::Param(k) => current(k),
                _ => None,
            };
            let Some(o) = b.eval(&mut self.states[i], msg, cur) else {
                continue;
            };
            match o.coalesce {
                Coalesce::Never => {
                    self.stats.immediate += 1;
                    out.push(action_msg(o.action));
                }
                Coalesce::Latest => park(
                    &mut self.pending,
                    &mut self.order,
                    &mut self.stats,
                    i,
                    Pending::Latest(o.action),
                ),
                Coalesce::Sum => {
                    if let Action::AdjustParam { key, delta } = o.action {
                        let merged = match &self.pending[i] {
                            Some(Pending::Sum { delta: d, .. }) => d + delta,
                            _ => delta,
                        };
                        park(
                            &mut self.pending,
                            &mut self.order,
                            &mut self.stats,
                            i,
                            Pending::Sum { key, delta: merged },
                        );
                    }
                }
            }
        }
        out
    }

    /// True when something waits for the next tick.
    pub(crate) fn has_pending(&self) -> bool {
        !self.order.is_empty()
    }

    /// Takes the coalesced actions (one per binding that moved since the last tick).
    pub(crate) fn flush(&mut self) -> Vec<Msg> {
        let mut out = Vec::with_capacity(self.order.len());
        for i in self.order.drain(..) {
            match self.pending[i].take() {
                Some(Pending::Latest(a)) => out.push(action_msg(a)),
                Some(Pending::Sum { key, delta }) if delta != 0.0 => {
                    out.push(action_msg(Action::AdjustParam { key, delta }))
                }
                _ => {}
            }
        }
        self.stats.flushed += out.len() as u64;
        out
    }

    /// Periodic housekeeping at `t` seconds (clock timeout).
    pub(crate) fn poll(&mut self, t: f64) -> Option<Msg> {
        self.clock.poll(t).map(Msg::Tempo)
    }
}

fn park(
    pending: &mut [Option<Pending>],
    order: &mut Vec<usize>,
    stats: &mut RouterStats,
    i: usize,
    p: Pending,
) {
    if pending[i].is_some() {
        stats.coalesced += 1;
    } else {
        order.push(i);
    }
    pending[i] = Some(p);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tempo::TempoCmd;
    use crate::controls::midi::binding::{ButtonMode, ControlKind, Curve, Encoder, Target};

    fn binding(kind: ControlKind, number: u8, target: Target) -> MidiBinding {
        MidiBinding {
            device: None,
            channel: None,
            kind,
            number: Some(number),
            lsb: number + 32,
            encoder: Encoder::Absolute,
            mode: ButtonMode::Trigger,
            target,
            range: None,
            curve: Curve::Linear,
            invert: false,
            soft_takeover: false,
            step: None,
        }
    }

    fn cfg(bindings: Vec<MidiBinding>) -> MidiConfig {
        MidiConfig {
            inputs: vec!["*".into()],
            clock: Some("clock*".into()),
            bindings,
            feedback: vec![],
        }
    }

    fn actions(v: &[Msg]) -> Vec<Action> {
        v.iter()
            .filter_map(|m| match m {
                Msg::Action { action, source } => {
                    assert_eq!(*source, ActionSource::Midi);
                    Some(action.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn burst_coalesces_to_latest_while_notes_pass_at_once() {
        let mut fader = binding(ControlKind::Cc, 1, Target::Param("noise_scale".into()));
        fader.range = Some((0.0, 127.0));
        let mut enc = binding(ControlKind::Cc, 2, Target::Param("kv_cache".into()));
        enc.encoder = Encoder::TwosComplement;
        enc.step = Some(0.5);
        let panic = binding(
            ControlKind::Note,
            36,
            Target::Action {
                on: Action::Panic,
                off: None,
            },
        );
        let mut r = Router::new(&cfg(vec![fader, enc, panic]));
        let none = |_: &str| None;
        for v in 0..100u8 {
            let out = r.on_message(
                "pad",
                &MidiMsg::Cc {
                    channel: 0,
                    cc: 1,
                    value: v,
                },
                0.0,
                none,
            );
            assert!(out.is_empty());
            r.on_message(
                "pad",
                &MidiMsg::Cc {
                    channel: 0,
                    cc: 2,
                    value: 1,
                },
                0.0,
                none,
            );
        }
        let out = r.on_message(
            "pad",
            &MidiMsg::NoteOn {
                channel: 0,
                note: 36,
                velocity: 127,
            },
            0.0,
            none,
        );
        assert_eq!(actions(&out), vec![Action::Panic], "panic is not held back");
        let flushed = actions(&r.flush());
        assert_eq!(
            flushed,
            vec![
                Action::SetParam {
                    key: "noise_scale".into(),
                    value: serde_json::json!(99.0)
                },
                Action::AdjustParam {
                    key: "kv_cache".into(),
                    delta: 50.0
                },
            ]
        );
        assert!(r.flush().is_empty(), "nothing new");
        assert_eq!(r.stats.coalesced, 198);
    }

    #[test]
    fn device_pattern_filters_ports() {
        let mut b = binding(
            ControlKind::Note,
            1,
            Target::Action {
                on: Action::ThemeNext,
                off: None,
            },
        );
        b.device = Some("launch*".into());
        let mut r = Router::new(&cfg(vec![b]));
        let on = MidiMsg::NoteOn {
            channel: 0,
            note: 1,
            velocity: 1,
        };
        assert!(r.on_message("nanoKONTROL", &on, 0.0, |_| None).is_empty());
        assert_eq!(r.on_message("Launchpad X", &on, 0.0, |_| None).len(), 1);
    }

    #[test]
    fn clock_only_from_the_clock_port() {
        let mut r = Router::new(&cfg(vec![]));
        let mut tempo = Vec::new();
        for i in 0..48 {
            let t = f64::from(i) * 60.0 / 120.0 / 24.0;
            tempo.extend(r.on_message("other", &MidiMsg::Clock, t, |_| None));
        }
        assert!(tempo.is_empty());
        for i in 0..48 {
            let t = f64::from(i) * 60.0 / 120.0 / 24.0;
            tempo.extend(r.on_message("clock port", &MidiMsg::Clock, t, |_| None));
        }
        assert!(tempo.iter().any(
            |m| matches!(m, Msg::Tempo(TempoCmd::External { bpm, .. }) if (bpm - 120.0).abs() < 0.1)
        ));
        assert_eq!(r.poll(10.0), Some(Msg::Tempo(TempoCmd::ExternalStopped)));
    }

    #[test]
    fn learning_captures_the_next_control_instead_of_acting() {
        let b = binding(
            ControlKind::Note,
            36,
            Target::Action {
                on: Action::Panic,
                off: None,
            },
        );
        let mut r = Router::new(&cfg(vec![b]));
        r.set_learning(true);
        let out = r.on_message(
            "pad",
            &MidiMsg::NoteOn {
                channel: 2,
                note: 36,
                velocity: 9,
            },
            0.0,
            |_| None,
        );
        match &out[..] {
            [Msg::Learn(LearnMsg::Captured { control })] => {
                assert_eq!(control.device, "pad");
                assert_eq!(control.channel, 3);
                assert_eq!(control.number, Some(36));
            }
            other => panic!("{other:?}"),
        }
        // Disarmed after one capture.
        let out = r.on_message(
            "pad",
            &MidiMsg::NoteOn {
                channel: 2,
                note: 36,
                velocity: 9,
            },
            0.0,
            |_| None,
        );
        assert_eq!(actions(&out), vec![Action::Panic]);
    }
}
