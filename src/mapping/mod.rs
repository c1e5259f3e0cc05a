//! The mapping engine: music → prompts and parameters, driven by theme files.
//!
//! - [`theme`]: the theme file format and its validation (file:line:key errors).
//! - [`curve`], [`smoothing`], [`trigger`], [`prompt`]: the pure building blocks.
//! - [`engine`]: one theme's mappings and triggers over frames and events.
//! - [`slice`], [`reduce`], [`view`]: the `AppState` slice, the reducer glue and the dashboard
//!   view.
//! - [`reload`]: the hot-reload edge (file watcher → `Msg::ThemesReloaded`).

pub mod curve;
pub mod engine;
pub mod prompt;
pub mod reduce;
pub mod reload;
pub mod slice;
pub mod smoothing;
pub mod theme;
pub mod trigger;
pub mod view;

#[cfg(test)]
mod tests;
