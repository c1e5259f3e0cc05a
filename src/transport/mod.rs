//! Transports: the one owner of everything that talks to the server.
//!
//! Every backend is the same actor, the [`skeleton`]: [`TransportCmd`]s in through an
//! [`lanes::Inbox`] (latest-wins values, a bounded urgent lane, a stop flag: the engine never
//! waits on it), read during every wait; one state machine, coalescer and backoff;
//! [`TransportEvent`]s out through a sink that never waits for the engine. What differs per
//! backend is its [`skeleton::Session`]: Scope ([`scope`]), Scope-OSC ([`osc`]), the hosted
//! Daydream API ([`daydream`]) and the dry run ([`dry_run`]). The engine only sees
//! [`TransportHandle`], so backends can be swapped (dry run in tests and rehearsals, Scope on
//! stage).

pub(crate) mod backoff;
pub(crate) mod coalescer;
pub mod config;
pub mod daydream;
pub(crate) mod dry_run;
pub(crate) mod http;
pub mod lanes;
pub(crate) mod machine;
pub(crate) mod osc;
pub mod protocol;
pub mod schema;
pub(crate) mod scope;
pub mod sdp;
pub(crate) mod skeleton;
pub use scope_deck_core::transport::types;
pub(crate) mod webrtc_session;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use types::{ConnState, ParamUpdate, ServerMessage, TransportCmd, TransportEvent};
pub use webrtc_session::VideoPorts;

use crate::transport::config::{Backend, ServerConfig};

/// Capacity of the event channel.
pub const EVENT_CAPACITY: usize = 256;

/// The engine's end of a running transport.
#[derive(Debug)]
pub struct TransportHandle {
    /// Commands to the actor (never waits; see [`lanes`]).
    pub link: lanes::TransportLink,
    /// The actor task; it ends after answering `Shutdown` with `Stopped`.
    pub task: JoinHandle<()>,
}

/// Why a transport could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The backend is not part of this build yet.
    #[error("backend `{0}` is not available in this build; use --dry-run or backend = \"dry-run\"")]
    Unavailable(&'static str),
    /// The daydream backend cannot start (missing key, bad preset, bad URL).
    #[error("daydream: {0}")]
    Daydream(String),
}

/// Starts the transport for `cfg` (or the dry run), reporting on `events`, without video ports.
pub fn spawn(
    cfg: &ServerConfig,
    dry_run: bool,
    events: mpsc::Sender<TransportEvent>,
) -> Result<TransportHandle, StartError> {
    spawn_with_video(cfg, dry_run, events, VideoPorts::default())
}

/// Starts the transport with video ports: received RTP goes to `video.rtp_out` (bounded,
/// `try_send`, drops counted), encoded frames from `video.samples_in` are sent (video-to-video).
pub fn spawn_with_video(
    cfg: &ServerConfig,
    dry_run: bool,
    events: mpsc::Sender<TransportEvent>,
    video: VideoPorts,
) -> Result<TransportHandle, StartError> {
    let (link, rx) = lanes::pair();
    let backend = if dry_run {
        Backend::DryRun
    } else {
        cfg.backend
    };
    let task = match backend {
        Backend::DryRun => tokio::spawn(dry_run::run(
            rx,
            events,
            cfg.send_rate_hz,
            dry_run::DryRunSchema {
                path: cfg.dry_run_schema.clone().into(),
                pipeline_ids: cfg.pipeline_ids.clone(),
            },
        )),
        Backend::Scope => tokio::spawn(scope::run(cfg.clone(), rx, events, video)),
        Backend::ScopeOsc => tokio::spawn(osc::run(cfg.clone(), rx, events)),
        // The hosted API lands in its own module (its own issue).
        other => return Err(StartError::Unavailable(other.label())),
    };
    Ok(TransportHandle { link, task })
}
