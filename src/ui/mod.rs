//! Front ends: the terminal dashboard and the headless JSON-lines mode, sharing one engine.

pub mod config;
pub mod headless;
pub mod log_layer;
pub mod render;
pub mod style;
pub mod widgets;

#[cfg(test)]
mod screen_tests;
pub mod tui;
pub mod view;
