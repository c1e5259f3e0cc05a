//! `--check-config --server URL` (each `--server` given) and `--check-config --check-servers`
//! (every configured output's server): asks a Scope server what the show will need from it,
//! without starting a session (no pipeline load, no offer): does it answer, does it offer the
//! configured pipelines, are their models downloaded, can it publish the server-side outputs the
//! config turns on, and which theme parameters its schema lacks. A pre-flight the operator runs
//! before doors.

use std::time::Duration;

use crate::config::LoadedConfig;
use crate::transport::config::Backend;
use crate::transport::http::ScopeHttp;
use crate::transport::schema;
use crate::video::scope_api::ScopeOutput;

/// How long one request may take before the check reports the server as not answering.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server check found: problems fail the pre-flight, notes are printed only.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ServerReport {
    /// Things that would fail at show time, each naming the endpoint (and the config key where
    /// one is to blame).
    pub(crate) problems: Vec<String>,
    /// Things worth knowing that do not fail the show.
    pub(crate) notes: Vec<String>,
}

/// One server to check: where it is and what of the config belongs to it.
#[derive(Debug, Clone)]
pub(crate) struct ServerTarget {
    /// `wall` (an output's name) or empty for the single `[server]` / a bare `--server`.
    pub(crate) label: String,
    /// Its backend.
    pub(crate) backend: Backend,
    /// Its URL (already validated as an http(s) URL with a host).
    pub(crate) url: String,
    /// The server-side outputs it must publish (`[video.scope_outputs] enable`, or its own).
    pub(crate) scope_outputs: Vec<ScopeOutput>,
    /// The config key those come from (`video.scope_outputs.enable`,
    /// `outputs[1].video.scope_outputs.enable`).
    pub(crate) scope_outputs_key: String,
}

impl ServerTarget {
    /// A bare URL checked against `[server]` and `[video]` (`--server URL`).
    pub(crate) fn bare(loaded: &LoadedConfig, backend: Backend, url: &str) -> Self {
        ServerTarget {
            label: String::new(),
            backend,
            url: url.to_string(),
            scope_outputs: loaded.app.video.scope_outputs.enable.clone(),
            scope_outputs_key: "video.scope_outputs.enable".into(),
        }
    }

    /// Every configured output's server (`[[outputs]]`, or the single `[server]`), each with
    /// its own video section; hosted outputs are listed too (their check says there is nothing
    /// to ask).
    pub(crate) fn configured(loaded: &LoadedConfig, dry_run: bool) -> Vec<ServerTarget> {
        let app = &loaded.app;
        if app.outputs.is_empty() {
            let backend = if dry_run {
                Backend::DryRun
            } else {
                app.server.backend
            };
            return vec![ServerTarget::bare(loaded, backend, &app.server.url)];
        }
        app.outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let backend = if dry_run {
                    Backend::DryRun
                } else {
                    o.backend.unwrap_or(app.server.backend)
                };
                let (scope_outputs, scope_outputs_key) = match &o.video {
                    Some(v) => (
                        v.scope_outputs.enable.clone(),
                        format!("outputs[{i}].video.scope_outputs.enable"),
                    ),
                    None if i == 0 => (
                        app.video.scope_outputs.enable.clone(),
                        "video.scope_outputs.enable".into(),
                    ),
                    None => (Vec::new(), String::new()),
                };
                ServerTarget {
                    label: o.name.clone(),
                    backend,
                    url: o.url.clone().unwrap_or_else(|| app.server.url.clone()),
                    scope_outputs,
                    scope_outputs_key,
                }
            })
            .collect()
    }

    /// `server` or `server wall` (the prefix of its report's lines).
    pub(crate) fn prefix(&self) -> String {
        if self.label.is_empty() {
            "server".into()
        } else {
            format!("server {}", self.label)
        }
    }
}

/// Runs the check against one server.
pub(crate) async fn check(loaded: &LoadedConfig, target: &ServerTarget) -> ServerReport {
    let (backend, url) = (target.backend, target.url.as_str());
    let mut report = ServerReport::default();
    if !matches!(backend, Backend::Scope | Backend::ScopeOsc) {
        report.notes.push(format!(
            "--server checks a Scope server; the {} backend is not asked (nothing to check)",
            backend.label()
        ));
        return report;
    }
    let app = &loaded.app;
    let http = match ScopeHttp::new(url, REQUEST_TIMEOUT) {
        Ok(h) => h,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    if let Err(e) = http.health().await {
        // Nothing else can answer either; one clear line is better than five.
        report
            .problems
            .push(format!("{e} — is the server running at {url}?"));
        return report;
    }
    report.notes.push(format!("GET /health: ok ({url})"));

    let ids = &app.server.pipeline_ids;
    match http.schemas().await {
        Err(e) => report.problems.push(e.to_string()),
        Ok(reply) => match schema::known_pipelines(&reply) {
            None => report
                .problems
                .push("GET /api/v1/pipelines/schemas: the reply has no `pipelines` object".into()),
            Some(known) => match schema::check_pipeline_ids(ids, &known) {
                Err(why) => report
                    .problems
                    .push(app.error_at("server.pipeline_ids", why).to_string()),
                Ok(()) => {
                    report.notes.push(format!(
                        "GET /api/v1/pipelines/schemas: offers {}",
                        ids.join(", ")
                    ));
                    if let Ok(specs) = schema::specs_from_schemas(&reply, ids) {
                        unknown_theme_params(loaded, &specs, &mut report);
                    }
                }
            },
        },
    }

    for id in ids {
        match http.models_status(id).await {
            Ok(s) if s.downloaded => {}
            Ok(_) => report.problems.push(format!(
                "GET /api/v1/models/status?pipeline_id={id}: the models of `{id}` are not \
                 downloaded on the server; press `D` (download_models) once connected, or download \
                 them on the server before the show"
            )),
            // Older servers and pipelines without weights have no such endpoint.
            Err(e) if e.status() == Some(404) => report
                .notes
                .push(format!("{e} (this server does not report model downloads)")),
            Err(e) => report.problems.push(e.to_string()),
        }
    }

    let wanted = &target.scope_outputs;
    if !wanted.is_empty() {
        match http.hardware_info().await {
            Err(e) => report.problems.push(e.to_string()),
            Ok(info) => {
                for out in wanted {
                    let available = match out {
                        ScopeOutput::Ndi => info.ndi,
                        ScopeOutput::Spout => info.spout,
                        ScopeOutput::Syphon => info.syphon,
                    };
                    if available != Some(true) {
                        report.problems.push(
                            app.error_at(
                                &target.scope_outputs_key,
                                format!(
                                    "GET /api/v1/hardware/info: the server cannot publish {} \
                                     output ({})",
                                    (*out).label(),
                                    if available.is_none() {
                                        "not reported"
                                    } else {
                                        "unavailable"
                                    }
                                ),
                            )
                            .to_string(),
                        );
                    }
                }
            }
        }
    }
    report
}

/// Notes every theme parameter the loaded pipelines' schema does not describe: the deck keeps
/// such values (a later pipeline may have them), but this server will ignore them.
fn unknown_theme_params(
    loaded: &LoadedConfig,
    specs: &[crate::core::params::ParamSpec],
    report: &mut ServerReport,
) {
    for theme in &loaded.themes {
        let missing: Vec<&str> = theme
            .params
            .keys()
            .filter(|k| !specs.iter().any(|s| &s.key == *k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            report.notes.push(format!(
                "theme `{}`: this server's pipeline has no {} (kept, not applied)",
                theme.id,
                missing.join(", ")
            ));
        }
    }
}
