//! Performer input: key chords, keymaps, MIDI in/out, learn mode and the help overlay data.

pub(crate) mod config;
pub(crate) mod help;
pub mod keymap;
pub(crate) mod keys;
pub mod midi;
