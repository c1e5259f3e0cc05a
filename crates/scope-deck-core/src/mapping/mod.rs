//! The mapping engine: music → prompts and parameters, driven by theme files.
//!
//! - [`theme`]: the theme file format and its validation (file:line:key errors).
//! - [`curve`], [`smoothing`], [`trigger`], [`prompt`]: the pure building blocks.
//! - [`engine`]: one theme's mappings and triggers over frames and events.
//! - [`slice`], [`reduce`], [`view`]: the `AppState` slice, the reducer glue and the dashboard
//!   view.
//!
//! The hot-reload edge (file watcher) lives in the app crate (`mapping::reload`).

pub mod curve;
pub mod engine;
pub mod prompt;
pub mod reduce;
pub mod slice;
pub mod smoothing;
pub mod theme;
pub mod trigger;
pub mod view;
