//! The `daydream` backend: Daydream's hosted StreamDiffusion API (the seeds' "Dream").
//!
//! A stream is created from an editable preset (the seeds' production SD-Turbo payload by
//! default), polled for status through a warm-up grace window, fed the video input over WHIP and
//! played back over WHEP into the same RTP channel as Scope's video. Parameter changes are
//! mapped to Daydream's keys, filtered to the live-changeable ones, throttled and coalesced into
//! `PATCH`es that always carry `model_id`; pipeline-reloading changes wait for a confirmation.
//! Pure policy lives in [`params`], [`policy`], [`allowlist`] and [`preset`]; the edges in
//! [`api`], [`rtc`] and [`actor`]. The contract is summarised in docs/daydream-api.md.

pub(crate) mod actor;
pub(crate) mod allowlist;
pub mod api;
pub(crate) mod config;
pub(crate) mod key;
pub(crate) mod params;
pub mod policy;
pub(crate) mod preset;
pub mod rtc;

use std::path::Path;
use tokio::sync::mpsc;

use crate::transport::types::TransportEvent;
use crate::transport::{StartError, TransportHandle};

pub use config::DaydreamConfig;
pub use key::ApiKey;
pub(crate) use preset::Preset;

/// Where the video goes and comes from: the same ports as the Scope backend (WHEP playback into
/// `rtp_out`, the video input's encoded frames from `samples_in` over WHIP).
pub type DaydreamVideo = crate::transport::VideoPorts;

/// Everything the actor needs, checked before it starts.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// `[daydream]`.
    pub(crate) cfg: DaydreamConfig,
    /// The create payload.
    pub(crate) preset: Preset,
    /// Video ports.
    pub(crate) video: DaydreamVideo,
}

/// Loads the key and preset, checks the API URL and starts the actor. Errors say what to fix
/// (preset errors name file, line and key) and never contain the key.
pub(crate) fn spawn(
    cfg: &DaydreamConfig,
    config_dir: Option<&Path>,
    events: mpsc::Sender<TransportEvent>,
    video: DaydreamVideo,
) -> Result<TransportHandle, StartError> {
    let key_file = (!cfg.api_key_file.is_empty()).then(|| Path::new(&cfg.api_key_file));
    let key =
        ApiKey::from_env_or_file(key_file).map_err(|e| StartError::Daydream(e.to_string()))?;
    spawn_with_key(cfg, config_dir, key, events, video)
}

/// [`spawn`] with an explicit key (tests).
pub fn spawn_with_key(
    cfg: &DaydreamConfig,
    config_dir: Option<&Path>,
    key: ApiKey,
    events: mpsc::Sender<TransportEvent>,
    video: DaydreamVideo,
) -> Result<TransportHandle, StartError> {
    let preset = Preset::load(config_dir, &cfg.preset).map_err(|errs| {
        StartError::Daydream(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let base = allowlist::check_api_url(&cfg.api_url, cfg.allow_local_dev)
        .map_err(|e| StartError::Daydream(format!("[daydream] api_url: {e}")))?;
    let http = api::http_client().map_err(StartError::Daydream)?;
    let client = api::Api::new(http.clone(), base, key);
    let (link, rx) = crate::transport::lanes::pair();
    let setup = Setup {
        cfg: cfg.clone(),
        preset,
        video,
    };
    let task = tokio::spawn(actor::run(setup, client, http, rx, events));
    Ok(TransportHandle { link, task })
}

#[cfg(test)]
mod reducer_tests {
    //! The core's side of the daydream backend: its schema makes Daydream's keys settable and
    //! `confirm_reload` a one-shot that reaches the transport.
    use std::time::Duration;

    use serde_json::json;

    use crate::core::action::Action;
    use crate::core::effect::Effect;
    use crate::core::msg::Msg;
    use crate::core::state::{AppState, CoreSettings};
    use crate::core::update::update;
    use crate::transport::types::{ParamUpdate, TransportCmd, TransportEvent};

    #[test]
    fn confirm_reload_reaches_the_transport_only_where_announced() {
        let mut s = AppState::new(CoreSettings::default());
        update(&mut s, Msg::Started, Duration::ZERO);
        let fx = update(&mut s, Msg::key(Action::ConfirmReload), Duration::ZERO);
        assert!(
            !fx.iter().any(|f| matches!(f, Effect::Transport(_))),
            "{fx:?}"
        );
        update(
            &mut s,
            Msg::Transport(TransportEvent::Schema(super::params::specs(5))),
            Duration::ZERO,
        );
        let fx = update(&mut s, Msg::key(Action::ConfirmReload), Duration::ZERO);
        assert!(fx.contains(&Effect::Transport(TransportCmd::Update(
            ParamUpdate::trigger("confirm_reload", json!(true))
        ))));
        let fx = update(
            &mut s,
            Msg::key(Action::SetParam {
                key: "controlnet_scale_4".into(),
                value: json!(3.0),
            }),
            Duration::ZERO,
        );
        assert!(
            fx.contains(&Effect::Transport(TransportCmd::Update(ParamUpdate::one(
                "controlnet_scale_4",
                json!(1.0)
            ))))
        );
    }
}
