//! Front ends: the terminal dashboard and the headless JSON-lines mode, sharing one engine.

pub mod config;
pub mod headless;
pub mod render;
pub mod tui;
