//! scope-deck's pure core: state, actions, messages, reducer, effects, the mapping engine, the
//! parameter store, the UI snapshot and the vocabulary the engine shares with the edges.
//!
//! Nothing here does I/O, spawns a task or reads a clock: time is passed in as engine time
//! (`Duration` since start), which is what makes every decision testable by folding messages.
//! The crate's dependency list holds no runtime, network, device or terminal crate, so the
//! compiler (not a comment) keeps it pure; the edges in the `scope-deck` crate depend on it.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod action;
pub mod audio;
mod ctx;
pub mod cue;
pub mod diagnostics;
pub mod effect;
pub mod health;
pub mod latency;
pub mod look;
pub mod mapping;
pub mod midi;
pub mod msg;
pub mod outputs;
pub mod params;
pub mod recall;
pub mod show;
pub mod snapshot;
pub mod stage;
pub mod state;
pub mod tempo;
pub mod transport;
pub mod update;
pub mod video;
pub mod xfade;

#[cfg(test)]
mod tests;

pub use action::{Action, ActionSource};
pub use effect::{Effect, Event};
pub use msg::Msg;
pub use snapshot::UiSnapshot;
pub use state::AppState;
pub use update::update;
