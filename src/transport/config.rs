//! `[server]` section: which backend, where, and which pipeline.

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};

/// Which transport drives the show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Scope over HTTP + WebRTC (video comes back).
    #[default]
    Scope,
    /// Scope over OSC/UDP, control only (Scope's web UI owns the video session).
    ScopeOsc,
    /// Daydream's hosted StreamDiffusion API.
    Daydream,
    /// No server: record what would be sent.
    DryRun,
}

impl Backend {
    /// Label as written in config.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Scope => "scope",
            Backend::ScopeOsc => "scope-osc",
            Backend::Daydream => "daydream",
            Backend::DryRun => "dry-run",
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Backend.
    pub backend: Backend,
    /// Server base URL (http or https; a RunPod-style proxy URL works).
    pub url: String,
    /// Pipelines to load.
    pub pipeline_ids: Vec<String>,
    /// Pipeline load parameters (`width`, `height`, `seed`, `vace_enabled`, ...).
    pub load_params: toml::Table,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            backend: Backend::Scope,
            url: "http://127.0.0.1:8000".into(),
            pipeline_ids: vec!["longlive".into()],
            load_params: toml::Table::new(),
        }
    }
}

impl Validate for ServerConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => errors.push(doc.error_at(
                &format!("{prefix}.url"),
                "must be an http:// or https:// URL with a host",
                None,
            )),
            Err(e) => {
                errors.push(doc.error_at(&format!("{prefix}.url"), format!("not a URL: {e}"), None))
            }
        }
        if self.pipeline_ids.is_empty() {
            errors.push(doc.error_at(
                &format!("{prefix}.pipeline_ids"),
                "needs at least one pipeline id",
                None,
            ));
        }
        for (i, id) in self.pipeline_ids.iter().enumerate() {
            if id.trim().is_empty() || id.contains(char::is_whitespace) {
                errors.push(doc.error_at(
                    &format!("{prefix}.pipeline_ids[{i}]"),
                    "pipeline ids are single words",
                    None,
                ));
            }
        }
        for key in ["width", "height"] {
            if let Some(v) = self.load_params.get(key) {
                match v.as_integer() {
                    Some(n) if (64..=2048).contains(&n) && n % 8 == 0 => {}
                    _ => errors.push(doc.error_at(
                        &format!("{prefix}.load_params.{key}"),
                        "must be an integer from 64 to 2048, a multiple of 8",
                        None,
                    )),
                }
            }
        }
    }
}
