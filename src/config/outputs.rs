//! `[[outputs]]`: one deck driving several Scope servers or hosted streams (docs/outputs.md).
//!
//! Each output names its backend and server (or hosted preset), optionally its own video sinks
//! and input, its overrides, and a standby to fail over to. The rest of `[server]` and
//! `[daydream]` (timeouts, pipeline, rates) is shared. No `[[outputs]]` and at most one
//! `--server`: the single `[server]` of old, unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};
use crate::core::outputs::{OutputSpec, Overrides};
use crate::transport::config::{Backend, ServerConfig};

/// The most outputs a deck drives (F1..F8 select them; the dashboard row has room for them).
pub const MAX_OUTPUTS: usize = 8;

/// The largest `latency_ms` an output may name: beat-locked changes are decided this early, so
/// more than a few seconds is a typo, not a pipeline.
pub const MAX_LATENCY_MS: u64 = 10_000;

/// Default `failover_after_secs`.
pub const DEFAULT_FAILOVER_SECS: f64 = 5.0;

/// One `[[outputs]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Unique name (`wall`, `side-left`): shown on the dashboard, used by `output_select`.
    pub name: String,
    /// Backend (default: `[server] backend`).
    #[serde(default)]
    pub backend: Option<Backend>,
    /// Server URL (`scope`, `scope-osc`; default: `[server] url`).
    #[serde(default)]
    pub url: Option<String>,
    /// Hosted stream preset (`daydream`; default: `[daydream] preset`).
    #[serde(default)]
    pub preset: Option<String>,
    /// Group for `output_select { group = ... }`.
    #[serde(default)]
    pub group: Option<String>,
    /// Another output's name: it takes this output's state and video over when this one's
    /// server is lost for `failover_after_secs`.
    #[serde(default)]
    pub standby: Option<String>,
    /// Seconds lost before the standby takes over.
    #[serde(default = "default_failover")]
    pub failover_after_secs: f64,
    /// A theme of its own (file stem).
    #[serde(default)]
    pub theme: Option<String>,
    /// A prompt of its own.
    #[serde(default)]
    pub prompt: Option<String>,
    /// A seed of its own.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Added to shared numeric parameters (`noise_scale = 0.1`), clamped to their ranges.
    #[serde(default)]
    pub offsets: BTreeMap<String, f64>,
    /// Its pipeline's latency, ms: beat-locked changes reach it this early (default:
    /// `[server] latency_ms`; measured on its own video instead when `[server] measure_latency`
    /// and it has a video pipeline).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Its own video sinks and input (same keys as `[video]`). Without it the first output
    /// has `[video]` and the others none.
    #[serde(default)]
    pub video: Option<crate::video::config::VideoConfig>,
}

fn default_failover() -> f64 {
    DEFAULT_FAILOVER_SECS
}

/// Checks every `[[outputs]]` entry; errors name `outputs[i].key`.
pub fn validate(
    outputs: &[OutputConfig],
    server: &ServerConfig,
    doc: &SourceDoc,
    errors: &mut Vec<ConfigError>,
) {
    if outputs.len() > MAX_OUTPUTS {
        errors.push(doc.error_at(
            &format!("outputs[{MAX_OUTPUTS}]"),
            format!("at most {MAX_OUTPUTS} outputs (found {})", outputs.len()),
            None,
        ));
    }
    for (i, o) in outputs.iter().enumerate() {
        let at = |k: &str| format!("outputs[{i}].{k}");
        let name = o.name.trim();
        if name.is_empty() || name.len() > 24 || name.chars().any(char::is_whitespace) {
            errors.push(doc.error_at(
                &at("name"),
                "must be 1 to 24 characters without spaces",
                None,
            ));
        }
        if outputs[..i].iter().any(|p| p.name == o.name) {
            errors.push(doc.error_at(
                &at("name"),
                format!("another output is already named `{}`", o.name),
                None,
            ));
        }
        let backend = o.backend.unwrap_or(server.backend);
        match backend {
            Backend::Scope | Backend::ScopeOsc => {
                let url = o.url.as_deref().unwrap_or(&server.url);
                if !valid_url(url) {
                    errors.push(doc.error_at(
                        &at("url"),
                        "expected an http:// or https:// URL with a host",
                        None,
                    ));
                }
                if o.preset.is_some() {
                    errors.push(doc.error_at(
                        &at("preset"),
                        "a preset is for backend = \"daydream\"; this output has a url",
                        None,
                    ));
                }
            }
            Backend::Daydream => {
                if o.url.is_some() {
                    errors.push(doc.error_at(
                        &at("url"),
                        "the daydream backend takes a `preset` ([daydream] api_url is shared), not a url",
                        None,
                    ));
                }
            }
            Backend::DryRun => {}
        }
        if let Some(s) = &o.standby {
            if s == &o.name {
                errors.push(doc.error_at(
                    &at("standby"),
                    "an output cannot be its own standby",
                    None,
                ));
            } else if !outputs.iter().any(|p| &p.name == s) {
                let names: Vec<&str> = outputs.iter().map(|p| p.name.as_str()).collect();
                errors.push(doc.error_at(
                    &at("standby"),
                    format!("no output named `{s}` (have: {})", names.join(", ")),
                    None,
                ));
            }
        }
        if !(o.failover_after_secs.is_finite() && (0.5..=600.0).contains(&o.failover_after_secs)) {
            errors.push(doc.error_at(
                &at("failover_after_secs"),
                "must be from 0.5 to 600 (seconds)",
                None,
            ));
        }
        if o.latency_ms.is_some_and(|ms| ms > MAX_LATENCY_MS) {
            errors.push(doc.error_at(
                &at("latency_ms"),
                format!("must be from 0 to {MAX_LATENCY_MS} (ms)"),
                None,
            ));
        }
        if o.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
            errors.push(doc.error_at(&at("prompt"), "must not be empty", None));
        }
        if o.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
            errors.push(doc.error_at(&at("group"), "must not be empty", None));
        }
        for (k, v) in &o.offsets {
            if !v.is_finite() {
                errors.push(doc.error_at(
                    &format!("outputs[{i}].offsets.{k}"),
                    "must be a number",
                    None,
                ));
            }
        }
        if let Some(v) = &o.video {
            v.validate(doc, &format!("outputs[{i}].video"), errors);
        }
    }
}

fn valid_url(url: &str) -> bool {
    matches!(url::Url::parse(url), Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// One output ready to start: its transport's settings, its video and its core spec.
#[derive(Debug, Clone)]
pub struct ResolvedOutput {
    /// What the core knows of it.
    pub spec: OutputSpec,
    /// `[server]` with this output's backend and URL.
    pub server: ServerConfig,
    /// `[daydream]` with this output's preset.
    pub daydream: crate::transport::daydream::DaydreamConfig,
    /// Its video sinks and input.
    pub video: crate::video::config::VideoConfig,
}

/// The outputs to run: `[[outputs]]`, or one per `--server` when given twice or more; empty =
/// the single `[server]` (with at most one `--server` applied by the caller as before).
pub fn resolve(
    app: &crate::config::AppConfig,
    servers: &[String],
    dry_run: bool,
) -> Result<Vec<ResolvedOutput>, String> {
    if !app.outputs.is_empty() && !servers.is_empty() {
        return Err(
            "--server cannot be combined with [[outputs]] in config.toml (each output names its url)"
                .into(),
        );
    }
    let entries: Vec<OutputConfig> = if app.outputs.is_empty() {
        if servers.len() < 2 {
            return Ok(Vec::new());
        }
        if servers.len() > MAX_OUTPUTS {
            return Err(format!(
                "--server: at most {MAX_OUTPUTS} servers (found {})",
                servers.len()
            ));
        }
        servers
            .iter()
            .enumerate()
            .map(|(i, url)| {
                if !valid_url(url) {
                    return Err(format!(
                        "--server {url}: expected an http:// or https:// URL with a host"
                    ));
                }
                Ok(OutputConfig {
                    name: format!("out{}", i + 1),
                    backend: Some(Backend::Scope),
                    url: Some(url.clone()),
                    preset: None,
                    group: None,
                    standby: None,
                    failover_after_secs: DEFAULT_FAILOVER_SECS,
                    theme: None,
                    prompt: None,
                    seed: None,
                    offsets: BTreeMap::new(),
                    latency_ms: None,
                    video: None,
                })
            })
            .collect::<Result<_, _>>()?
    } else {
        app.outputs.clone()
    };
    let index = |name: &str| entries.iter().position(|e| e.name == name);
    Ok(entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut server = app.server.clone();
            if let Some(b) = e.backend {
                server.backend = b;
            }
            if let Some(u) = &e.url {
                server.url = u.clone();
            }
            let mut daydream = app.daydream.clone();
            if let Some(p) = &e.preset {
                daydream.preset = p.clone();
            }
            let backend = if dry_run {
                Backend::DryRun
            } else {
                server.backend
            };
            let target = match server.backend {
                Backend::Daydream => format!("preset {}", daydream.preset),
                _ => server.url.clone(),
            };
            let video = match (&e.video, i) {
                (Some(v), _) => v.clone(),
                (None, 0) => app.video.clone(),
                (None, _) => crate::video::config::VideoConfig {
                    sinks: Vec::new(),
                    input: Default::default(),
                    ..app.video.clone()
                },
            };
            ResolvedOutput {
                spec: OutputSpec {
                    name: e.name.clone(),
                    backend: backend.label().to_string(),
                    target,
                    group: e.group.clone(),
                    overrides: Overrides {
                        theme: e.theme.clone(),
                        prompt: e.prompt.clone(),
                        seed: e.seed,
                        offsets: e.offsets.clone(),
                    },
                    standby: e.standby.as_deref().and_then(index),
                    failover_after: Duration::from_secs_f64(
                        e.failover_after_secs.clamp(0.5, 600.0),
                    ),
                    latency: e.latency_ms.map(Duration::from_millis),
                },
                server,
                daydream,
                video,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AppConfig;

    fn parse(text: &str) -> Result<AppConfig, Vec<ConfigError>> {
        let mut errs = Vec::new();
        AppConfig::from_text("c.toml", text, &mut errs).ok_or(errs)
    }

    const TWO_BOXES: &str = r#"
[server]
backend = "scope"

[[outputs]]
name = "wall"
url = "http://gpu1:8000"
standby = "spare"
failover_after_secs = 3

[[outputs]]
name = "spare"
url = "http://gpu2:8000"
seed = 7
group = "sides"
[outputs.offsets]
noise_scale = 0.1
"#;

    #[test]
    fn two_boxes_resolve_with_their_urls_overrides_and_standby() {
        let app = parse(TWO_BOXES).unwrap();
        let outs = resolve(&app, &[], false).unwrap();
        assert_eq!(outs.len(), 2);
        assert_eq!(outs[0].server.url, "http://gpu1:8000");
        assert_eq!(outs[1].server.url, "http://gpu2:8000");
        assert_eq!(outs[0].spec.standby, Some(1));
        assert_eq!(outs[0].spec.failover_after, Duration::from_secs(3));
        assert_eq!(outs[1].spec.overrides.seed, Some(7));
        assert_eq!(outs[1].spec.overrides.offsets["noise_scale"], 0.1);
        assert_eq!(outs[1].spec.group.as_deref(), Some("sides"));
        // Shared settings come from [server].
        assert_eq!(outs[1].server.pipeline_ids, app.server.pipeline_ids);
    }

    #[test]
    fn no_outputs_and_one_server_is_the_single_server_of_old() {
        let app = parse("").unwrap();
        assert!(app.outputs.is_empty());
        assert!(resolve(&app, &[], false).unwrap().is_empty());
        assert!(
            resolve(&app, &["http://a:1".into()], false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn repeated_server_flags_make_outputs_and_bad_urls_are_named() {
        let app = parse("").unwrap();
        let outs = resolve(&app, &["http://a:1".into(), "http://b:2".into()], true).unwrap();
        assert_eq!(
            outs.iter()
                .map(|o| o.spec.name.as_str())
                .collect::<Vec<_>>(),
            ["out1", "out2"]
        );
        assert_eq!(outs[1].spec.backend, "dry-run");
        let e = resolve(&app, &["http://a:1".into(), "ftp://b".into()], false).unwrap_err();
        assert!(e.contains("--server ftp://b"), "{e}");
        let app = parse(TWO_BOXES).unwrap();
        assert!(resolve(&app, &["http://a:1".into()], false).is_err());
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let errs = parse(
            "[[outputs]]\nname = \"wall\"\nurl = \"ftp://x\"\nstandby = \"nobody\"\n\
             [[outputs]]\nname = \"wall\"\nfailover_after_secs = 0\n",
        )
        .unwrap_err();
        let found: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert!(found.contains(&(3, "outputs[0].url")), "{found:?}");
        assert!(found.contains(&(4, "outputs[0].standby")), "{found:?}");
        assert!(found.contains(&(6, "outputs[1].name")), "{found:?}");
        assert!(
            found.contains(&(7, "outputs[1].failover_after_secs")),
            "{found:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.message.contains("no output named `nobody`"))
        );
    }

    #[test]
    fn an_outputs_latency_is_its_own_and_bounded() {
        let app = parse(&TWO_BOXES.replace("seed = 7\n", "seed = 7\nlatency_ms = 450\n")).unwrap();
        let outs = resolve(&app, &[], false).unwrap();
        assert_eq!(outs[0].spec.latency, None, "wall: [server] latency_ms");
        assert_eq!(outs[1].spec.latency, Some(Duration::from_millis(450)));
        let errs = parse("[[outputs]]\nname = \"a\"\nlatency_ms = 60000\n").unwrap_err();
        assert_eq!(
            (errs[0].line, errs[0].key.as_str()),
            (3, "outputs[0].latency_ms")
        );
        assert!(errs[0].message.contains("0 to 10000"), "{errs:?}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let errs = parse("[[outputs]]\nname = \"a\"\nsede = 3\n").unwrap_err();
        assert_eq!(errs[0].line, 3, "{errs:?}");
    }

    #[test]
    fn the_first_output_has_the_video_section_unless_it_names_its_own() {
        let app = parse(
            "[[video.sinks]]\nkind = \"shm\"\nsocket = \"/tmp/a\"\n\
             [[outputs]]\nname = \"a\"\n[[outputs]]\nname = \"b\"\n",
        );
        let app = match app {
            Ok(a) => a,
            // The sink's keys are the video module's business; this test is about who owns it.
            Err(e) => panic!("{e:?}"),
        };
        let outs = resolve(&app, &[], false).unwrap();
        assert_eq!(outs[0].video.sinks.len(), 1);
        assert!(outs[1].video.sinks.is_empty());
    }
}
