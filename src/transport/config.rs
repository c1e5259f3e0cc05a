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
    pub(crate) fn label(self) -> &'static str {
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
    /// A recorded `GET /api/v1/pipelines/schemas` reply (JSON) the dry run clamps values to, as
    /// the real server's schema would; relative to the config folder; empty = built-in ranges.
    pub dry_run_schema: String,
    /// Where ICE servers come from: `auto` (none for a loopback server, the server's
    /// `/api/v1/webrtc/ice-servers` otherwise), `server`, `none`, or `config` (`ice_servers`).
    pub ice: IceMode,
    /// ICE servers used when `ice = "config"`.
    pub ice_servers: Vec<IceServerConfig>,
    /// Send ICE candidates as they are found (PATCH) instead of gathering fully first.
    pub trickle: bool,
    /// How long the pipeline warm-up is expected to take, seconds (the countdown's full scale).
    pub warmup_expected_s: f64,
    /// Give up waiting for the pipeline after this many seconds (then retry with backoff).
    pub load_timeout_s: f64,
    /// Failed loads of a server that answers before the deck stops retrying and says so (a
    /// pipeline the server cannot run fails the same way every time).
    pub max_load_failures: u32,
    /// Pipeline status polling interval while loading, milliseconds.
    pub status_poll_ms: u64,
    /// `/health` polling interval while connected (detects server restarts), milliseconds.
    pub health_poll_ms: u64,
    /// `/health` probe interval while the server does not answer at all, milliseconds: the
    /// deck reconnects this soon after the server returns (backoff is only for failures of a
    /// server that answers).
    pub health_probe_ms: u64,
    /// Maximum data-channel messages per second for continuous values (one-shots bypass it).
    pub send_rate_hz: f64,
    /// "Connected but no video" after this many seconds without a frame.
    pub no_frames_timeout_s: f64,
    /// First reconnect delay, milliseconds.
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay, milliseconds.
    pub reconnect_max_ms: u64,
    /// Random spread of reconnect delays (0..1).
    pub reconnect_jitter: f64,
    /// HTTP request timeout, seconds.
    pub request_timeout_s: f64,
    /// Start downloading a pipeline's missing models without asking.
    pub auto_download_models: bool,
    /// UDP port for the `scope-osc` backend; 0 = the HTTP port of `url`.
    pub osc_port: u16,
    /// Glass-to-glass latency of the pipeline, milliseconds: beat-locked changes (triggers,
    /// quantised switches, cue launches) are sent this much before their beat so they *show*
    /// on it. Hand-made changes are never sent early. 0 = off (until measured).
    pub latency_ms: u64,
    /// Measure the glass-to-glass latency on the running show (a `[video]` output must run)
    /// and use the measurement instead of `latency_ms` once there is one.
    pub measure_latency: bool,
}

/// Where ICE servers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum IceMode {
    /// None for loopback servers, the server's list otherwise.
    #[default]
    Auto,
    /// Always the server's list (remote GPU boxes behind proxies need its TURN credentials).
    Server,
    /// None (host candidates only).
    None,
    /// `ice_servers` from this file.
    Config,
}

/// One configured ICE server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub(crate) urls: Vec<String>,
    /// TURN user name.
    #[serde(default)]
    pub(crate) username: String,
    /// TURN credential.
    #[serde(default)]
    pub(crate) credential: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            backend: Backend::Scope,
            url: "http://127.0.0.1:8000".into(),
            pipeline_ids: vec!["longlive".into()],
            load_params: toml::Table::new(),
            dry_run_schema: String::new(),
            ice: IceMode::Auto,
            ice_servers: Vec::new(),
            trickle: false,
            warmup_expected_s: 120.0,
            load_timeout_s: 900.0,
            max_load_failures: 3,
            status_poll_ms: 1000,
            health_poll_ms: 1000,
            health_probe_ms: 500,
            send_rate_hz: 60.0,
            no_frames_timeout_s: 5.0,
            reconnect_initial_ms: 250,
            reconnect_max_ms: 10_000,
            reconnect_jitter: 0.3,
            latency_ms: 0,
            measure_latency: true,
            request_timeout_s: 10.0,
            auto_download_models: false,
            osc_port: 0,
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
        let mut range = |key: &str, v: f64, lo: f64, hi: f64, what: &str| {
            if !(v.is_finite() && v >= lo && v <= hi) {
                errors.push(doc.error_at(&format!("{prefix}.{key}"), what.to_string(), None));
            }
        };
        range(
            "warmup_expected_s",
            self.warmup_expected_s,
            0.0,
            3600.0,
            "must be 0 to 3600 seconds",
        );
        range(
            "load_timeout_s",
            self.load_timeout_s,
            1.0,
            7200.0,
            "must be 1 to 7200 seconds",
        );
        range(
            "status_poll_ms",
            self.status_poll_ms as f64,
            20.0,
            60_000.0,
            "must be 20 to 60000 ms",
        );
        range(
            "health_poll_ms",
            self.health_poll_ms as f64,
            20.0,
            60_000.0,
            "must be 20 to 60000 ms",
        );
        range(
            "max_load_failures",
            f64::from(self.max_load_failures),
            1.0,
            100.0,
            "must be 1 to 100",
        );
        range(
            "health_probe_ms",
            self.health_probe_ms as f64,
            50.0,
            1000.0,
            "must be 50 to 1000 ms (a returning server should be seen within a second)",
        );
        range(
            "send_rate_hz",
            self.send_rate_hz,
            1.0,
            1000.0,
            "must be 1 to 1000 messages per second (60 is plenty)",
        );
        range(
            "no_frames_timeout_s",
            self.no_frames_timeout_s,
            0.1,
            600.0,
            "must be 0.1 to 600 seconds",
        );
        range(
            "reconnect_initial_ms",
            self.reconnect_initial_ms as f64,
            10.0,
            60_000.0,
            "must be 10 to 60000 ms",
        );
        range(
            "reconnect_max_ms",
            self.reconnect_max_ms as f64,
            self.reconnect_initial_ms as f64,
            600_000.0,
            "must be at least reconnect_initial_ms and at most 600000 ms",
        );
        range(
            "reconnect_jitter",
            self.reconnect_jitter,
            0.0,
            1.0,
            "must be 0 to 1",
        );
        range(
            "request_timeout_s",
            self.request_timeout_s,
            0.1,
            600.0,
            "must be 0.1 to 600 seconds",
        );
        if self.ice == IceMode::Config && self.ice_servers.is_empty() {
            errors.push(doc.error_at(
                &format!("{prefix}.ice_servers"),
                "ice = \"config\" needs at least one entry",
                None,
            ));
        }
        for (i, s) in self.ice_servers.iter().enumerate() {
            let bad = s.urls.is_empty()
                || s.urls.iter().any(|u| {
                    !(u.starts_with("stun:") || u.starts_with("turn:") || u.starts_with("turns:"))
                });
            if bad {
                errors.push(doc.error_at(
                    &format!("{prefix}.ice_servers[{i}].urls"),
                    "needs stun:, turn: or turns: URLs",
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

impl ServerConfig {
    /// The reconnect backoff policy these settings describe.
    pub(crate) fn backoff_policy(&self) -> crate::transport::backoff::BackoffPolicy {
        crate::transport::backoff::BackoffPolicy {
            initial: std::time::Duration::from_millis(self.reconnect_initial_ms),
            max: std::time::Duration::from_millis(self.reconnect_max_ms),
            factor: 2.0,
            jitter: self.reconnect_jitter,
        }
    }

    /// True when `url` names this machine (then `ice = "auto"` uses no ICE servers at all).
    pub(crate) fn is_loopback(&self) -> bool {
        match url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        }
    }

    /// Seconds → Duration, for fields validated as finite and non-negative.
    pub(crate) fn secs(v: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(if v.is_finite() { v.max(0.0) } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::app::AppConfig;

    fn errors_of(text: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let _ = AppConfig::from_text("config.toml", text, &mut errors);
        errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn transport_keys_are_validated_with_file_line_and_key() {
        let errs = errors_of("[server]\nurl = \"http://127.0.0.1:8000\"\nsend_rate_hz = 0\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("config.toml:3"), "{}", errs[0]);
        assert!(errs[0].contains("server.send_rate_hz"), "{}", errs[0]);
        let errs = errors_of(
            "[server]\nice = \"config\"\nice_servers = [{ urls = [\"http://x\"] }]\n\
             reconnect_initial_ms = 500\nreconnect_max_ms = 100\n",
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("server.ice_servers[0].urls") && e.contains(":3")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("server.reconnect_max_ms")),
            "{errs:?}"
        );
        let errs = errors_of("[server]\nice = \"sometimes\"\n");
        assert!(errs.iter().any(|e| e.contains("config.toml:2")), "{errs:?}");
    }

    #[test]
    fn loopback_detection_and_backoff_policy() {
        let mut c = ServerConfig::default();
        assert!(c.is_loopback());
        c.url = "https://abc-8000.proxy.runpod.net".into();
        assert!(!c.is_loopback());
        c.url = "http://localhost:8000".into();
        assert!(c.is_loopback());
        c.url = "http://[::1]:8000".into();
        assert!(c.is_loopback());
        let p = c.backoff_policy();
        assert_eq!(p.initial, std::time::Duration::from_millis(250));
        assert_eq!(p.max, std::time::Duration::from_secs(10));
    }
}
