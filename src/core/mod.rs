//! The pure core: state, actions, messages, reducer, effects and the UI snapshot, re-exported
//! from the `scope-deck-core` crate.
//!
//! Nothing here does I/O, spawns a task or reads a clock: time is passed in as engine time
//! (`Duration` since start), which is what makes every decision testable by folding messages.

// The core lives in its own crate (crates/scope-deck-core); these paths keep the app crate's
// imports stable.
// (`update` names both the module and the reducer function, as in the core crate.)
pub use scope_deck_core::{
    action, cue, effect, health, look, msg, outputs, params, recall, snapshot, stage, state, tempo,
    update, xfade,
};

pub use action::{Action, ActionSource};
pub use effect::{Effect, Event};
pub use msg::Msg;
pub use snapshot::UiSnapshot;
pub use state::AppState;
