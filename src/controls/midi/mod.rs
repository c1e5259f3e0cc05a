//! MIDI: byte parsing, bindings, clock, feedback, learn mode, the engine-side router, and the
//! midir edge that connects them to real ports.

pub mod binding;
pub mod clock;
pub mod config;
pub mod feedback;
pub mod io;
pub mod learn;
pub mod parse;
pub mod router;

use std::time::Duration;

use crate::controls::midi::learn::LearnStage;
use crate::core::action::{Action, ActionSource};
use crate::core::effect::{Effect, Event};
use crate::core::state::{AppState, Level, Notice, push_bounded};

fn learn_notice(
    state: &mut AppState,
    fx: &mut Vec<Effect>,
    level: Level,
    msg: String,
    now: Duration,
) {
    push_bounded(
        &mut state.ui.notices,
        Notice {
            at: now,
            level,
            message: msg.clone(),
        },
    );
    fx.push(Effect::Emit(Event::Notice {
        level,
        message: msg,
    }));
}

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
            learn_notice(
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
            learn_notice(state, fx, level, format!("learn: {message}"), now);
            None
        }
        Action::LearnControl { control } => {
            if *stage == LearnStage::WaitingControl {
                let msg = format!(
                    "learn: {} touched; now press the key (or move the parameter) it should control",
                    control.label()
                );
                state.controls.learn = LearnStage::WaitingTarget(control);
                learn_notice(state, fx, Level::Info, msg, now);
            }
            None
        }
        Action::Cancel if *stage != LearnStage::Off => {
            state.controls.learn = LearnStage::Off;
            learn_notice(state, fx, Level::Info, "learn cancelled".into(), now);
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
            learn_notice(state, fx, Level::Info, msg, now);
            passes
        }
        a => Some(a),
    }
}
