//! `[ui]` section: frame rate and which theme and keymap are active.

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};

/// `[ui]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct UiConfig {
    /// Dashboard frames per second.
    pub(crate) fps: u32,
    /// Active generation theme (file stem in `themes/`).
    pub(crate) theme: String,
    /// Active keymap (file stem in `keymaps/`).
    pub(crate) keymap: String,
    /// Dashboard colours (file stem in `styles/`).
    pub(crate) style: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            fps: 30,
            theme: "default".into(),
            keymap: "default".into(),
            style: "default".into(),
        }
    }
}

impl Validate for UiConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        if !(1..=120).contains(&self.fps) {
            errors.push(doc.error_at(&format!("{prefix}.fps"), "must be from 1 to 120", None));
        }
    }
}
