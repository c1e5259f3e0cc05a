//! The mapping engine: music → prompts and parameters, driven by theme files.

pub mod theme;
