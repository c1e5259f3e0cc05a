//! The mapping engine: music → prompts and parameters, driven by theme files.
//!
//! - [`theme`]: the theme file format and its validation (file:line:key errors).
//! - [`curve`], [`smoothing`], [`trigger`], [`prompt`]: the pure building blocks.
//! - [`engine`]: one theme's mappings and triggers over frames and events.
//! - [`slice`], [`reduce`], [`view`]: the `AppState` slice, the reducer glue and the dashboard
//!   view.
//! - [`reload`]: the hot-reload edge (file watcher → `Msg::ThemesReloaded`).

pub use scope_deck_core::mapping::{
    curve, engine, prompt, reduce, slice, smoothing, theme, trigger, view,
};
pub mod reload;

#[cfg(test)]
mod tests;
