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
use crate::midi::learn::LearnStage;
use crate::state::{AppState, Level};

/// The reducer's learn-mode step: consumes learn actions and, while a touched control waits for
/// its target, the next performer action (which becomes the target instead of acting). Returns
/// the action when learn mode does not want it.
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
            notice(
                state,
                fx,
                Level::Info,
                "learn: touch a MIDI control (cancel to stop)".into(),
                now,
            );
            None
        }
        Action::LearnDone { ok, message } => {
            state.controls.learn = LearnStage::Off;
            let level = if ok { Level::Info } else { Level::Error };
            notice(state, fx, level, format!("learn: {message}"), now);
            None
        }
        Action::LearnControl { control } => {
            if *stage == LearnStage::WaitingControl {
                let msg = format!(
                    "learn: {} touched; now press the key (or move the parameter) it should control",
                    control.label()
                );
                state.controls.learn = LearnStage::WaitingTarget(control);
                notice(state, fx, Level::Info, msg, now);
            }
            None
        }
        Action::Cancel if *stage != LearnStage::Off => {
            state.controls.learn = LearnStage::Off;
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
            state.controls.learn_serial += 1;
            let msg = format!("learn: {} → {}; saving", control.label(), a.describe());
            state.controls.learn = LearnStage::Ready {
                control,
                target: a,
                serial: state.controls.learn_serial,
            };
            notice(state, fx, Level::Info, msg, now);
            passes
        }
        a => Some(a),
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

    fn control() -> LearnedControl {
        LearnedControl {
            device: "pad".into(),
            channel: 1,
            kind: ControlKind::Note,
            number: Some(36),
        }
    }

    #[test]
    fn learn_flow_turns_the_next_key_action_into_the_target() {
        let mut st = AppState::new(Default::default());
        act(&mut st, Action::Learn, ActionSource::Keyboard);
        assert_eq!(st.controls.learn, LearnStage::WaitingControl);
        // Keys still act while waiting for a control.
        let fx = act(&mut st, Action::ResetCache, ActionSource::Keyboard);
        assert!(fx.iter().any(|e| matches!(e, Effect::Transport(_))));
        act(
            &mut st,
            Action::LearnControl { control: control() },
            ActionSource::Midi,
        );
        assert_eq!(st.controls.learn, LearnStage::WaitingTarget(control()));
        // The next key action becomes the target and does not act.
        let fx = act(&mut st, Action::Quit, ActionSource::Keyboard);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Transport(_))));
        assert_eq!(st.lifecycle, crate::state::Lifecycle::Running);
        assert_eq!(
            st.controls.learn,
            LearnStage::Ready {
                control: control(),
                target: Action::Quit,
                serial: 1
            }
        );
        act(
            &mut st,
            Action::LearnDone {
                ok: true,
                message: "saved".into(),
            },
            ActionSource::Midi,
        );
        assert_eq!(st.controls.learn, LearnStage::Off);
        assert!(st.ui.notices.back().unwrap().message.contains("saved"));
    }

    #[test]
    fn panic_acts_even_while_being_learned_and_cancel_stops_learning() {
        let mut st = AppState::new(Default::default());
        act(&mut st, Action::Learn, ActionSource::Keyboard);
        act(
            &mut st,
            Action::LearnControl { control: control() },
            ActionSource::Midi,
        );
        act(&mut st, Action::Panic, ActionSource::Keyboard);
        assert!(st.controls.panic.is_some(), "panic acted");
        assert!(matches!(st.controls.learn, LearnStage::Ready { .. }));

        act(&mut st, Action::Learn, ActionSource::Keyboard);
        act(&mut st, Action::Cancel, ActionSource::Keyboard);
        assert_eq!(st.controls.learn, LearnStage::Off);
        // A stray capture after cancelling is ignored.
        act(
            &mut st,
            Action::LearnControl { control: control() },
            ActionSource::Midi,
        );
        assert_eq!(st.controls.learn, LearnStage::Off);
    }
}
