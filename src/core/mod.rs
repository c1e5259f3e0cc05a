//! The pure core: state, actions, messages, reducer, effects and the UI snapshot.
//!
//! Nothing here does I/O, spawns a task or reads a clock: time is passed in as engine time
//! (`Duration` since start), which is what makes every decision testable by folding messages.

pub mod action;
pub mod effect;
pub mod msg;
pub mod params;
pub mod snapshot;
pub mod state;
pub mod update;

#[cfg(test)]
mod tests;

pub use action::{Action, ActionSource};
pub use effect::{Effect, Event};
pub use msg::Msg;
pub use snapshot::UiSnapshot;
pub use state::AppState;
pub use update::update;
