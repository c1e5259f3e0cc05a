//! MIDI: byte parsing, bindings, clock, feedback, learn mode, the engine-side router, and the
//! midir edge that connects them to real ports.

pub use scope_deck_core::midi::{activity, binding, learn_step, parse};
pub mod client_lock;
pub(crate) mod clock;
pub mod clock_out;
pub(crate) mod config;
pub(crate) mod feedback;
pub mod io;
pub mod learn;
pub(crate) mod router;
