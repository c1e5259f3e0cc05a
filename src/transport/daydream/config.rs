//! `[daydream]` section: where the hosted API lives, which preset to create streams from, where
//! the API key comes from, and the protections around WHIP/WHEP hosts.

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};
use crate::transport::daydream::allowlist;

/// The seeds' production allowlist of Daydream/Livepeer base domains for WHIP and WHEP URLs.
pub(crate) const DEFAULT_ALLOWED_HOSTS: &[&str] = &[
    "daydream.live",
    "sdaydream.live",
    "livepeer.com",
    "livepeer.studio",
    "livepeer.cloud",
    "lp-playback.studio",
];

/// `[daydream]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaydreamConfig {
    /// API base URL (HTTPS; plain HTTP only on loopback with `allow_local_dev`).
    pub api_url: String,
    /// Preset name: `presets/<name>.toml` in the config dir, else the built-in of that name.
    pub preset: String,
    /// File holding the API key (mode 0600). Empty: only the `DAYDREAM_API_KEY` variable.
    pub api_key_file: String,
    /// Base domains a WHIP/WHEP URL may point to (subdomains included).
    pub allowed_hosts: Vec<String>,
    /// Local development: allow plain-HTTP API/WHIP/WHEP URLs on loopback hosts.
    pub allow_local_dev: bool,
    /// ICE servers for WHIP/WHEP (STUN URLs). Empty list = host candidates only.
    pub ice_servers: Vec<String>,
    /// Parameter PATCHes per second at most (latest value wins in between).
    pub patch_rate_hz: f64,
    /// Warm-up grace window: not-ready answers (404/409/429/5xx) are retried, not reported.
    pub warmup_grace_secs: f64,
    /// Consecutive failed PATCHes (outside the window) before live updates are switched off.
    pub max_patch_failures: u32,
    /// Status polling interval (health panel).
    pub status_poll_secs: f64,
    /// Expected warm-up time for the countdown gauge.
    pub expected_warmup_secs: f64,
    /// Refuse pipeline-reloading changes unless confirmed (`confirm_reload`).
    pub confirm_reloads: bool,
    /// How long playback (WHEP) keeps being retried after ingest connects: WHEP answers 404
    /// until the first output exists, and a cold worker can take minutes.
    pub playback_wait_secs: f64,
    /// Longest pause between playback retries (they start at 1 s and double up to this).
    pub playback_retry_max_secs: f64,
}

impl Default for DaydreamConfig {
    fn default() -> Self {
        DaydreamConfig {
            api_url: "https://api.daydream.live".into(),
            preset: "daydream-sd-turbo".into(),
            api_key_file: String::new(),
            allowed_hosts: DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allow_local_dev: false,
            ice_servers: vec!["stun:stun.l.google.com:19302".into()],
            patch_rate_hz: 3.0,
            warmup_grace_secs: 60.0,
            max_patch_failures: 5,
            status_poll_secs: 2.0,
            expected_warmup_secs: 15.0,
            confirm_reloads: true,
            playback_wait_secs: 300.0,
            playback_retry_max_secs: 10.0,
        }
    }
}

impl Validate for DaydreamConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        let at = |k: &str| format!("{prefix}.{k}");
        if let Err(e) = allowlist::check_api_url(&self.api_url, self.allow_local_dev) {
            errors.push(doc.error_at(&at("api_url"), e, None));
        }
        if self.preset.trim().is_empty()
            || self
                .preset
                .contains(|c: char| c == '/' || c == '\\' || c.is_whitespace())
        {
            errors.push(doc.error_at(
                &at("preset"),
                "a preset name is one word (the file stem in presets/)",
                None,
            ));
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            if !allowlist::is_valid_domain(h) {
                errors.push(doc.error_at(
                    &format!("{prefix}.allowed_hosts[{i}]"),
                    "must be a bare domain such as `livepeer.com` (no scheme, port or path)",
                    None,
                ));
            }
        }
        for (i, s) in self.ice_servers.iter().enumerate() {
            if !(s.starts_with("stun:") || s.starts_with("turn:") || s.starts_with("turns:")) {
                errors.push(doc.error_at(
                    &format!("{prefix}.ice_servers[{i}]"),
                    "must be a stun:, turn: or turns: URL",
                    None,
                ));
            }
        }
        let range = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if !range(self.patch_rate_hz, 0.2, 20.0) {
            errors.push(doc.error_at(
                &at("patch_rate_hz"),
                "must be from 0.2 to 20 (HTTP PATCH is heavy: a few per second)",
                None,
            ));
        }
        if !range(self.warmup_grace_secs, 0.0, 600.0) {
            errors.push(doc.error_at(
                &at("warmup_grace_secs"),
                "must be from 0 to 600 seconds",
                None,
            ));
        }
        if !(1..=100).contains(&self.max_patch_failures) {
            errors.push(doc.error_at(&at("max_patch_failures"), "must be from 1 to 100", None));
        }
        if !range(self.status_poll_secs, 0.1, 60.0) {
            errors.push(doc.error_at(
                &at("status_poll_secs"),
                "must be from 0.1 to 60 seconds",
                None,
            ));
        }
        if !range(self.playback_wait_secs, 0.0, 3600.0) {
            errors.push(doc.error_at(
                &at("playback_wait_secs"),
                "must be from 0 to 3600 seconds (a cold worker can take minutes: 300 is advised)",
                None,
            ));
        }
        if !range(self.playback_retry_max_secs, 0.05, 60.0) {
            errors.push(doc.error_at(
                &at("playback_retry_max_secs"),
                "must be from 0.05 to 60 seconds",
                None,
            ));
        }
        if !range(self.expected_warmup_secs, 0.0, 600.0) {
            errors.push(doc.error_at(
                &at("expected_warmup_secs"),
                "must be from 0 to 600 seconds",
                None,
            ));
        }
    }
}

impl DaydreamConfig {
    /// The warm-up grace window.
    pub(crate) fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.warmup_grace_secs.max(0.0))
    }

    /// The playback retry pacing (1 s doubling to `playback_retry_max_secs`; shorter when the
    /// cap is below 1 s, so tests can scale the schedule down).
    pub(crate) fn playback_backoff(&self) -> crate::transport::backoff::BackoffPolicy {
        let max =
            std::time::Duration::from_secs_f64(self.playback_retry_max_secs.clamp(0.05, 60.0));
        crate::transport::backoff::BackoffPolicy::without_jitter(
            max.min(std::time::Duration::from_secs(1)),
            max,
        )
    }

    /// The playback wait.
    pub(crate) fn playback_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.playback_wait_secs.clamp(0.0, 3600.0))
    }
}
