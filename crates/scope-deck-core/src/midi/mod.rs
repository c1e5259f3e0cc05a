//! The MIDI vocabulary the engine shares with the midir edge (parsed messages, bindings, learn
//! types, per-device activity) and the learn-mode reducer step.

pub mod activity;
pub mod binding;
pub mod learn;
pub mod parse;

use std::time::Duration;

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::effect::Effect;
use crate::midi::learn::{LearnCmd, LearnMsg, LearnStage};
use crate::state::{AppState, Level};

/// The reducer's learn-mode step: consumes the learn key and cancel and, while a touched control
/// waits for its target, the next performer action (which becomes the target instead of acting,
/// and goes to the MIDI edge to be saved). Returns the action when learn mode does not want it.
pub fn learn_step(
    state: &mut AppState,
    action: Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> Option<Action> {
    let stage = &state.controls.learn;
    match action {
        Action::Learn => {
            state.controls.learn = LearnStage::WaitingControl;
            fx.push(Effect::MidiLearn(LearnCmd::Arm));
            notice(
                state,
                fx,
                Level::Info,
                "learn: touch a MIDI control (cancel to stop)".into(),
                now,
            );
            None
        }
        Action::Cancel if *stage != LearnStage::Off => {
            state.controls.learn = LearnStage::Off;
            fx.push(Effect::MidiLearn(LearnCmd::Disarm));
            notice(state, fx, Level::Info, "learn cancelled".into(), now);
            None
        }
        Action::ForceQuit => Some(Action::ForceQuit),
        a if matches!(source, ActionSource::Keyboard | ActionSource::Script) => {
            let LearnStage::WaitingTarget(control) = stage.clone() else {
                return Some(a);
            };
            // Panic always acts, even when it is being learned.
            let passes = matches!(a, Action::Panic | Action::ReleasePanic).then(|| a.clone());
            let msg = format!("learn: {} → {}; saving", control.label(), a.describe());
            state.controls.learn = LearnStage::Saving {
                control: control.clone(),
                target: a.clone(),
            };
            fx.push(Effect::MidiLearn(LearnCmd::Save { control, target: a }));
            notice(state, fx, Level::Info, msg, now);
            passes
        }
        a => Some(a),
    }
}

/// The MIDI edge's answers in learn mode.
pub fn on_learn(state: &mut AppState, msg: LearnMsg, now: Duration, fx: &mut Vec<Effect>) {
    match msg {
        LearnMsg::Captured { control } => {
            // A capture after a cancel (or a second one) is ignored.
            if state.controls.learn == LearnStage::WaitingControl {
                let msg = format!(
                    "learn: {} touched; now press the key (or move the parameter) it should control",
                    control.label()
                );
                state.controls.learn = LearnStage::WaitingTarget(control);
                notice(state, fx, Level::Info, msg, now);
            }
        }
        LearnMsg::Saved { message } => {
            if matches!(state.controls.learn, LearnStage::Saving { .. }) {
                state.controls.learn = LearnStage::Off;
            }
            notice(state, fx, Level::Info, format!("learn: {message}"), now);
        }
        LearnMsg::Failed { message } => {
            if matches!(
                state.controls.learn,
                LearnStage::Saving { .. } | LearnStage::WaitingControl
            ) {
                state.controls.learn = LearnStage::Off;
            }
            notice(state, fx, Level::Error, format!("learn: {message}"), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::midi::binding::ControlKind;
    use crate::midi::learn::LearnedControl;
    use crate::msg::Msg;
    use crate::update::update;

    fn act(state: &mut AppState, action: Action, source: ActionSource) -> Vec<Effect> {
        update(state, Msg::Action { action, source }, Duration::ZERO)
    }

    fn answer(state: &mut AppState, m: LearnMsg) -> Vec<Effect> {
        update(state, Msg::Learn(m), Duration::ZERO)
    }

    fn learn_cmds(fx: &[Effect]) -> Vec<LearnCmd> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::MidiLearn(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn control() -> LearnedControl {
        LearnedControl {
            device: "pad".into(),
            channel: 1,
            kind: ControlKind::Note,
            number: Some(36),
        }
    }

    #[test]
    fn learn_flow_arms_the_edge_and_saves_the_next_key_action_as_the_target() {
        let mut st = AppState::new(Default::default());
        let fx = act(&mut st, Action::Learn, ActionSource::Keyboard);
        assert_eq!(learn_cmds(&fx), vec![LearnCmd::Arm]);
        assert_eq!(st.controls.learn, LearnStage::WaitingControl);
        // Keys still act while waiting for a control.
        let fx = act(&mut st, Action::ResetCache, ActionSource::Keyboard);
        assert!(fx.iter().any(|e| matches!(e, Effect::Transport(_))));
        assert!(learn_cmds(&fx).is_empty());
        let fx = answer(&mut st, LearnMsg::Captured { control: control() });
        assert!(learn_cmds(&fx).is_empty());
        assert_eq!(st.controls.learn, LearnStage::WaitingTarget(control()));
        // The next key action becomes the target, does not act, and goes to the edge to save.
        let fx = act(&mut st, Action::Quit, ActionSource::Keyboard);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Transport(_))));
        assert_eq!(st.lifecycle, crate::state::Lifecycle::Running);
        let save = LearnCmd::Save {
            control: control(),
            target: Action::Quit,
        };
        assert_eq!(learn_cmds(&fx), vec![save]);
        assert_eq!(
            st.controls.learn,
            LearnStage::Saving {
                control: control(),
                target: Action::Quit,
            }
        );
        answer(
            &mut st,
            LearnMsg::Saved {
                message: "saved in rig.toml".into(),
            },
        );
        assert_eq!(st.controls.learn, LearnStage::Off);
        let last = st.ui.notices.back().unwrap();
        assert!(last.message.contains("saved in rig.toml"));
        assert_eq!(last.level, Level::Info);
    }

    #[test]
    fn a_failed_save_or_an_unavailable_capture_ends_learning_with_an_error() {
        let mut st = AppState::new(Default::default());
        act(&mut st, Action::Learn, ActionSource::Keyboard);
        // The edge cannot capture (no input open): learning stops, the reason is shown.
        answer(
            &mut st,
            LearnMsg::Failed {
                message: "no MIDI input is open".into(),
            },
        );
        assert_eq!(st.controls.learn, LearnStage::Off);
        let last = st.ui.notices.back().unwrap();
        assert!(last.message.contains("no MIDI input"));
        assert_eq!(last.level, Level::Error);
        // A save that fails ends it too.
        act(&mut st, Action::Learn, ActionSource::Keyboard);
        answer(&mut st, LearnMsg::Captured { control: control() });
        act(&mut st, Action::ResetCache, ActionSource::Keyboard);
        answer(
            &mut st,
            LearnMsg::Failed {
                message: "rig.toml: permission denied".into(),
            },
        );
        assert_eq!(st.controls.learn, LearnStage::Off);
        assert_eq!(st.ui.notices.back().unwrap().level, Level::Error);
    }

    #[test]
    fn panic_acts_even_while_being_learned_and_cancel_disarms() {
        let mut st = AppState::new(Default::default());
        act(&mut st, Action::Learn, ActionSource::Keyboard);
        answer(&mut st, LearnMsg::Captured { control: control() });
        let fx = act(&mut st, Action::Panic, ActionSource::Keyboard);
        assert!(st.controls.panic.is_some(), "panic acted");
        assert!(matches!(st.controls.learn, LearnStage::Saving { .. }));
        assert!(matches!(learn_cmds(&fx)[..], [LearnCmd::Save { .. }]));

        act(&mut st, Action::Learn, ActionSource::Keyboard);
        let fx = act(&mut st, Action::Cancel, ActionSource::Keyboard);
        assert_eq!(learn_cmds(&fx), vec![LearnCmd::Disarm]);
        assert_eq!(st.controls.learn, LearnStage::Off);
        // A stray capture after cancelling is ignored.
        answer(&mut st, LearnMsg::Captured { control: control() });
        assert_eq!(st.controls.learn, LearnStage::Off);
        // MIDI actions are never taken as a target.
        act(&mut st, Action::Learn, ActionSource::Keyboard);
        answer(&mut st, LearnMsg::Captured { control: control() });
        let fx = act(&mut st, Action::ResetCache, ActionSource::Midi);
        assert!(learn_cmds(&fx).is_empty());
        assert_eq!(st.controls.learn, LearnStage::WaitingTarget(control()));
    }
}
