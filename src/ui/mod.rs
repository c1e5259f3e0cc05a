//! Front ends: the terminal dashboard and the headless JSON-lines mode, sharing one engine.

pub(crate) mod config;
pub mod headless;
pub mod log_layer;
pub mod render;
pub mod style;
pub(crate) mod widgets;

#[cfg(test)]
mod screen_tests;
pub(crate) mod tui;
pub(crate) mod view;
