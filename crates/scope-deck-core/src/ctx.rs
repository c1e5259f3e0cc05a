//! What every reducer (the top-level `update` and each slice reducer) shares: the notice and
//! one-shot helpers over the small context (state, engine time, effects). Slice reducers import
//! these from here, never from `update`, so the dependency runs one way: `update` → slices → ctx.

use std::time::Duration;

use crate::effect::{Effect, Event};
use crate::params::ParamValue;
use crate::state::{AppState, Level, Notice, push_bounded};
use crate::transport::types::{ParamUpdate, TransportCmd};

/// Records a notice for the dashboard and emits it.
pub(crate) fn notice(
    state: &mut AppState,
    fx: &mut Vec<Effect>,
    level: Level,
    message: String,
    now: Duration,
) {
    push_bounded(
        &mut state.ui.notices,
        Notice {
            at: now,
            level,
            message: message.clone(),
        },
    );
    fx.push(Effect::Emit(Event::Notice { level, message }));
}

/// Sends a one-shot (urgent) and lights the dashboard flash.
pub(crate) fn fire_trigger(
    state: &mut AppState,
    key: &str,
    value: ParamValue,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    state.params.last_trigger = Some((key.to_string(), now));
    fx.push(Effect::Emit(Event::Param {
        key: key.to_string(),
        value: value.clone(),
        clamped: false,
    }));
    fx.push(Effect::Transport(TransportCmd::Update(
        ParamUpdate::trigger(key, value),
    )));
}
