//! The video concern's part of the pure reducer: Scope's own server-side outputs
//! (`output_sinks`, gated by `/api/v1/hardware/info`) and VACE reference images.
//!
//! Called from `core::update`; like the rest of the core it does no I/O. The desired
//! `output_sinks` object and `vace_ref_images` live in the [`ParamStore`](crate::params)
//! so every reconnect replays them with the rest of the state.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::effect::{Effect, Event};
use crate::state::{AppState, Level};
use crate::transport::types::{ParamUpdate, TransportCmd};
use crate::video::scope_api::{HardwareInfo, ScopeOutput, output_sink_update};

/// Start-up settings of the video concern the reducer needs (from `[video.scope_outputs]` and
/// `[video.vace]`).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    /// Sender name the server publishes its NDI/Spout/Syphon output under.
    pub output_name: String,
    /// Server outputs to turn on once the server said what it can do.
    pub start_outputs: Vec<ScopeOutput>,
    /// Local reference images uploaded to `/api/v1/assets` on connect (absolute or relative to
    /// the working directory; the config loader resolves them against the config folder).
    pub ref_images: Vec<PathBuf>,
    /// `vace_context_scale` sent with the reference images.
    pub context_scale: f64,
}

impl Default for VideoSettings {
    fn default() -> Self {
        VideoSettings {
            output_name: "scope-deck".into(),
            start_outputs: Vec::new(),
            ref_images: Vec::new(),
            context_scale: 1.0,
        }
    }
}

/// What the reducer knows about the server's video features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoSlice {
    /// The last `/api/v1/hardware/info` answer (`None` until read, or when it could not be).
    pub hardware: Option<HardwareInfo>,
    /// `start_outputs` were requested already (once per run, not per reconnect: the store
    /// replays them).
    pub started_outputs: bool,
    /// Reference images sent as `vace_ref_images`: (local file, server path).
    pub ref_images: Vec<(PathBuf, String)>,
}

/// One server output for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScopeOutputRow {
    /// Which output.
    pub output: ScopeOutput,
    /// What the server said (`None`: not asked yet, or it did not say).
    pub available: Option<bool>,
    /// Requested on (replayed on reconnect).
    pub enabled: bool,
}

/// Scope's own outputs and the reference images, as the dashboard draws them.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct ScopeOutputsView {
    /// The backend can steer server outputs at all (`scope` and the dry run).
    pub supported: bool,
    /// Sender name used for the outputs.
    pub name: String,
    /// NDI, Spout, Syphon in that order.
    pub outputs: Vec<ScopeOutputRow>,
    /// GPU memory the server reported, in GB.
    pub vram_gb: Option<f64>,
    /// Reference images in use (local file names).
    pub ref_images: Vec<String>,
}

impl ScopeOutputsView {
    /// Builds the view of `state`.
    pub fn of(state: &AppState) -> Self {
        let hw = state.video.hardware.as_ref();
        ScopeOutputsView {
            supported: unsupported_reason(&state.settings.backend, "").is_none(),
            name: state.settings.video.output_name.clone(),
            outputs: ScopeOutput::ALL
                .iter()
                .map(|&o| ScopeOutputRow {
                    output: o,
                    available: hw.and_then(|h| h.available(o)),
                    enabled: is_enabled(state, o),
                })
                .collect(),
            vram_gb: hw.and_then(|h| h.vram_gb),
            ref_images: state
                .video
                .ref_images
                .iter()
                .map(|(f, _)| {
                    f.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| f.display().to_string())
                })
                .collect(),
        }
    }

    /// Whether any server output is on (the summary line is not empty), without building it.
    pub fn any_on(&self) -> bool {
        self.outputs.iter().any(|r| r.enabled)
    }

    /// One short line (`server out: NDI on · Spout n/a`), empty when nothing is on or
    /// unavailable, for the connection panel.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .outputs
            .iter()
            .filter(|r| r.enabled)
            .map(|r| match r.available {
                Some(false) => format!("{} on (unavailable)", r.output.label()),
                _ => format!("{} on", r.output.label()),
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("server out: {}", parts.join(" · "))
        }
    }
}

/// Why `backend` cannot do `what` (a Scope-only feature), or `None` when it can.
fn unsupported_reason(backend: &str, what: &str) -> Option<String> {
    match backend {
        "scope" | "dry-run" => None,
        "daydream" => Some(format!(
            "{what}: a Scope-only feature; the hosted daydream backend cannot do it"
        )),
        other => Some(format!(
            "{what}: needs the WebRTC data channel of backend = \"scope\"; `{other}` cannot carry it"
        )),
    }
}

/// Whether the desired `output_sinks` has `out` enabled.
pub fn is_enabled(state: &AppState, out: ScopeOutput) -> bool {
    state
        .params
        .store
        .get("output_sinks")
        .and_then(|v| v.get(out.key()))
        .and_then(|v| v.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Seeds the values the first offer must carry (before `Connect` is built).
pub fn seed(state: &mut AppState, now: Duration) {
    let v = &state.settings.video;
    if !v.ref_images.is_empty() && state.params.store.get("vace_context_scale").is_none() {
        let scale = json!(v.context_scale);
        let _ = state
            .params
            .store
            .set("vace_context_scale", &scale, ActionSource::System, now);
    }
}

/// After `Connect`: ask the transport to upload the configured reference images.
pub fn on_started(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    if !state.settings.video.ref_images.is_empty() {
        upload(state, now, fx);
    }
    if state.settings.backend == "dry-run" {
        // No hardware report will come: apply the start outputs now.
        start_outputs(state, now, fx);
    }
}

fn upload(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    if let Some(why) = unsupported_reason(&state.settings.backend, "reference images (VACE)") {
        notice(state, fx, Level::Warn, why, now);
        return;
    }
    let files = state.settings.video.ref_images.clone();
    if files.is_empty() {
        notice(
            state,
            fx,
            Level::Info,
            "no reference images configured ([video.vace] ref_images)".into(),
            now,
        );
        return;
    }
    fx.push(Effect::Transport(TransportCmd::UploadAssets { files }));
}

fn start_outputs(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    if state.video.started_outputs {
        return;
    }
    state.video.started_outputs = true;
    for out in state.settings.video.start_outputs.clone() {
        if !is_enabled(state, out) {
            set_output(state, out, true, ActionSource::System, now, fx);
        }
    }
}

/// Handles the video actions; `false` when `action` is not one of them.
pub fn on_action(
    state: &mut AppState,
    action: &Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> bool {
    match action {
        Action::ToggleScopeOutput { output } => {
            let on = !is_enabled(state, *output);
            set_output(state, *output, on, source, now, fx);
        }
        Action::SetScopeOutput { output, enabled } => {
            set_output(state, *output, *enabled, source, now, fx);
        }
        Action::UploadRefImages => upload(state, now, fx),
        _ => return false,
    }
    true
}

/// Turns one server output on or off: refused with a notice (nothing sent) when the backend
/// cannot or the server said it has no such output; else the full desired `output_sinks` object
/// is stored (so reconnects replay every output) and sent.
pub fn set_output(
    state: &mut AppState,
    out: ScopeOutput,
    enabled: bool,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let what = format!("the server's {} output", out.label());
    if let Some(why) = unsupported_reason(&state.settings.backend, &what) {
        notice(state, fx, Level::Warn, why, now);
        return;
    }
    let name = state.settings.video.output_name.clone();
    let update = match output_sink_update(out, enabled, &name, state.video.hardware.as_ref()) {
        Ok(u) => u,
        Err(why) => {
            notice(state, fx, Level::Warn, why, now);
            return;
        }
    };
    let mut sinks = state
        .params
        .store
        .get("output_sinks")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Object(one)) = update.values.get("output_sinks") {
        for (k, v) in one {
            sinks.insert(k.clone(), v.clone());
        }
    }
    let value = Value::Object(sinks);
    match state.params.store.set("output_sinks", &value, source, now) {
        Ok(acc) => {
            fx.push(Effect::Emit(Event::Param {
                key: "output_sinks".into(),
                value: acc.value.clone(),
                clamped: false,
            }));
            fx.push(Effect::Transport(TransportCmd::Update(ParamUpdate::one(
                "output_sinks",
                acc.value,
            ))));
            let state_word = if enabled { "on" } else { "off" };
            notice(
                state,
                fx,
                Level::Info,
                format!("{what} {state_word} (\"{name}\")"),
                now,
            );
        }
        Err(e) => notice(state, fx, Level::Error, e.to_string(), now),
    }
}

/// The transport read `/api/v1/hardware/info` (after each connect).
pub fn on_hardware(state: &mut AppState, hw: HardwareInfo, now: Duration, fx: &mut Vec<Effect>) {
    for out in ScopeOutput::ALL {
        if is_enabled(state, out) && hw.available(out) == Some(false) {
            notice(
                state,
                fx,
                Level::Warn,
                format!(
                    "the server's {} output is on but /api/v1/hardware/info says it is not \
                     available on this server",
                    out.label()
                ),
                now,
            );
        }
    }
    state.video.hardware = Some(hw);
    start_outputs(state, now, fx);
}

/// The transport uploaded the reference images and already put `vace_ref_images` in its state
/// (and on the wire when streaming): record them so replays and theme switches keep them, without
/// sending them a second time.
pub fn on_assets(
    state: &mut AppState,
    uploaded: Vec<(PathBuf, String)>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let paths: Vec<String> = uploaded.iter().map(|(_, p)| p.clone()).collect();
    let _ = state
        .params
        .store
        .set("vace_ref_images", &json!(paths), ActionSource::System, now);
    let n = uploaded.len();
    state.video.ref_images = uploaded;
    notice(
        state,
        fx,
        Level::Info,
        format!(
            "{n} reference image{} uploaded (vace_ref_images)",
            if n == 1 { "" } else { "s" }
        ),
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::transport::types::TransportEvent;
    use crate::update::update;

    fn state(backend: &str) -> AppState {
        let mut s = AppState::new(CoreSettings {
            backend: backend.into(),
            ..CoreSettings::default()
        });
        update(&mut s, Msg::Started, Duration::ZERO);
        s
    }

    fn act(s: &mut AppState, a: Action) -> Vec<Effect> {
        update(
            s,
            Msg::Action {
                action: a,
                source: ActionSource::Keyboard,
            },
            Duration::from_secs(1),
        )
    }

    fn sent(fx: &[Effect]) -> Vec<Value> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Transport(TransportCmd::Update(u)) => Some(Value::Object(u.values.clone())),
                _ => None,
            })
            .collect()
    }

    fn warned(s: &AppState) -> Option<String> {
        s.ui.notices
            .iter()
            .rev()
            .find(|n| n.level == Level::Warn)
            .map(|n| n.message.clone())
    }

    #[test]
    fn toggles_keep_every_output_in_one_object() {
        let mut s = state("scope");
        let fx = act(
            &mut s,
            Action::ToggleScopeOutput {
                output: ScopeOutput::Ndi,
            },
        );
        assert_eq!(
            sent(&fx),
            vec![json!({"output_sinks": {"ndi": {"enabled": true, "name": "scope-deck"}}})]
        );
        let fx = act(
            &mut s,
            Action::SetScopeOutput {
                output: ScopeOutput::Syphon,
                enabled: true,
            },
        );
        assert_eq!(
            sent(&fx),
            vec![json!({"output_sinks": {
                "ndi": {"enabled": true, "name": "scope-deck"},
                "syphon": {"enabled": true, "name": "scope-deck"}}})]
        );
        let fx = act(
            &mut s,
            Action::ToggleScopeOutput {
                output: ScopeOutput::Ndi,
            },
        );
        assert_eq!(sent(&fx)[0]["output_sinks"]["ndi"]["enabled"], json!(false));
        // The store holds the whole object: a reconnect replays both.
        let full = s.params.store.full_state();
        assert_eq!(full["output_sinks"]["syphon"]["enabled"], json!(true));
        let view = ScopeOutputsView::of(&s);
        assert!(view.supported);
        assert_eq!(view.summary(), "server out: Syphon on");
    }

    #[test]
    fn unavailable_output_is_refused_and_nothing_sent() {
        let mut s = state("scope");
        update(
            &mut s,
            Msg::Transport(TransportEvent::Hardware(HardwareInfo::from_json(
                &json!({"vram_gb": 24.0, "ndi_available": false, "spout_available": true}),
            ))),
            Duration::ZERO,
        );
        let fx = act(
            &mut s,
            Action::ToggleScopeOutput {
                output: ScopeOutput::Ndi,
            },
        );
        assert!(sent(&fx).is_empty(), "{fx:?}");
        assert!(
            warned(&s).unwrap().contains("NDI runtime"),
            "{:?}",
            warned(&s)
        );
        assert!(s.params.store.get("output_sinks").is_none());
        let fx = act(
            &mut s,
            Action::ToggleScopeOutput {
                output: ScopeOutput::Spout,
            },
        );
        assert_eq!(sent(&fx).len(), 1);
        let v = ScopeOutputsView::of(&s);
        assert_eq!(v.vram_gb, Some(24.0));
        assert_eq!(v.outputs[0].available, Some(false));
        assert!(v.outputs[1].enabled);
    }

    #[test]
    fn daydream_says_scope_only_and_sends_nothing() {
        let mut s = state("daydream");
        let fx = act(
            &mut s,
            Action::ToggleScopeOutput {
                output: ScopeOutput::Ndi,
            },
        );
        assert!(sent(&fx).is_empty());
        assert!(warned(&s).unwrap().contains("Scope-only"));
        assert!(!ScopeOutputsView::of(&s).supported);
        let fx = act(&mut s, Action::UploadRefImages);
        assert!(
            !fx.iter()
                .any(|e| matches!(e, Effect::Transport(TransportCmd::UploadAssets { .. })))
        );
    }

    #[test]
    fn start_outputs_apply_once_after_the_hardware_report() {
        let mut s = AppState::new(CoreSettings {
            backend: "scope".into(),
            video: VideoSettings {
                start_outputs: vec![ScopeOutput::Ndi, ScopeOutput::Spout],
                ..VideoSettings::default()
            },
            ..CoreSettings::default()
        });
        update(&mut s, Msg::Started, Duration::ZERO);
        let hw = HardwareInfo::from_json(&json!({"ndi_available": true, "spout_available": false}));
        let fx = update(
            &mut s,
            Msg::Transport(TransportEvent::Hardware(hw.clone())),
            Duration::ZERO,
        );
        assert_eq!(
            sent(&fx),
            vec![json!({"output_sinks": {"ndi": {"enabled": true, "name": "scope-deck"}}})]
        );
        assert!(warned(&s).unwrap().contains("Windows"));
        let fx = update(
            &mut s,
            Msg::Transport(TransportEvent::Hardware(hw)),
            Duration::ZERO,
        );
        assert!(sent(&fx).is_empty(), "applied once per run");
    }

    #[test]
    fn reference_images_are_uploaded_after_connect_and_recorded() {
        let mut s = AppState::new(CoreSettings {
            backend: "scope".into(),
            video: VideoSettings {
                ref_images: vec!["/tmp/a.png".into()],
                context_scale: 1.4,
                ..VideoSettings::default()
            },
            ..CoreSettings::default()
        });
        let fx = update(&mut s, Msg::Started, Duration::ZERO);
        let connect = fx
            .iter()
            .position(|e| matches!(e, Effect::Transport(TransportCmd::Connect)))
            .expect("connect");
        assert_eq!(
            s.params.store.full_state()["vace_context_scale"],
            json!(1.4),
            "the desired state the transport reads on connect carries the context scale"
        );
        let upload = fx
            .iter()
            .position(|e| matches!(e, Effect::Transport(TransportCmd::UploadAssets { files }) if files == &vec![PathBuf::from("/tmp/a.png")]))
            .expect("upload requested");
        assert!(connect < upload);
        let fx = update(
            &mut s,
            Msg::Transport(TransportEvent::AssetsUploaded {
                uploaded: vec![("/tmp/a.png".into(), "/srv/assets/a.png".into())],
            }),
            Duration::ZERO,
        );
        assert!(sent(&fx).is_empty(), "the transport already sent it");
        assert_eq!(
            s.params.store.full_state()["vace_ref_images"],
            json!(["/srv/assets/a.png"])
        );
        assert_eq!(ScopeOutputsView::of(&s).ref_images, vec!["a.png"]);
        let fx = act(&mut s, Action::UploadRefImages);
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Transport(TransportCmd::UploadAssets { .. })))
        );
    }
}
