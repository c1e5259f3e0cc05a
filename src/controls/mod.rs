//! Performer input: key chords and keymaps (MIDI joins in the Controls issue).

pub mod config;
pub mod keymap;
pub mod keys;
