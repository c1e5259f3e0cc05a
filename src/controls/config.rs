//! `[controls]` section: panic behaviour and confirmations.

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};
use crate::core::state::PanicMode;

/// `[controls]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ControlsConfig {
    /// What panic does: `auto`, `pause`, `safe_prompt` or `blackout`.
    pub(crate) panic: PanicMode,
    /// Prompt used when `panic = "safe_prompt"`.
    pub(crate) safe_prompt: String,
    /// Ask before quitting while streaming.
    pub(crate) confirm_quit: bool,
}

impl Default for ControlsConfig {
    fn default() -> Self {
        ControlsConfig {
            panic: PanicMode::Auto,
            safe_prompt: "calm dark blue gradient, soft light".into(),
            confirm_quit: true,
        }
    }
}

impl Validate for ControlsConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        if self.safe_prompt.trim().is_empty() {
            errors.push(doc.error_at(&format!("{prefix}.safe_prompt"), "must not be empty", None));
        }
    }
}
