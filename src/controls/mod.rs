//! Performer input: key chords, keymaps, MIDI in/out, learn mode and the help overlay data.

pub mod config;
pub mod help;
pub mod keymap;
pub mod keys;
pub mod midi;
