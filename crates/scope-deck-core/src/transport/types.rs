//! The typed interface between the engine and any transport (Scope WebRTC, Scope OSC, hosted
//! API, dry run). Commands go in, events come out, both over bounded channels.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::params::ParamValue;

/// A batch of parameter changes for the server.
///
/// Continuous values may be merged latest-wins per key by the transport's coalescer; an update
/// with `urgent` set carries a one-shot (cache reset, prompt switch) and is sent at once, never
/// merged away.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParamUpdate {
    /// Changed keys and their (already validated and clamped) values.
    pub values: serde_json::Map<String, ParamValue>,
    /// Contains a one-shot trigger: send immediately, never drop.
    pub urgent: bool,
}

impl ParamUpdate {
    /// A single continuous value.
    pub fn one(key: &str, value: ParamValue) -> Self {
        let mut values = serde_json::Map::new();
        values.insert(key.to_string(), value);
        ParamUpdate {
            values,
            urgent: false,
        }
    }

    /// A one-shot trigger.
    pub fn trigger(key: &str, value: ParamValue) -> Self {
        ParamUpdate {
            urgent: true,
            ..ParamUpdate::one(key, value)
        }
    }
}

/// What the engine asks a transport to do.
///
/// The engine never awaits a transport: continuous values (`Update` without `urgent`) travel
/// latest-wins, everything else over a bounded lane whose overflow is counted and shown
/// (docs/transport.md, "Engine → transport"). The full desired state is not carried here: the
/// transport reads the engine's published [`DesiredParams`] when it (re)connects.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportCmd {
    /// Connect (load pipeline, warm up, negotiate) and send the full desired state first.
    Connect,
    /// Send parameter changes.
    Update(ParamUpdate),
    /// Tear the session down and build it again, keeping all state.
    Reconnect,
    /// Say goodbye (DELETE the session) and stop. The transport answers with `Stopped`.
    Shutdown,
    /// The performer agreed to download the pipeline's missing models on the server.
    DownloadModels,
    /// Upload these local reference images to the server (`/api/v1/assets`) on this and every
    /// later connect to a fresh server, and send their server paths as `vace_ref_images`.
    UploadAssets {
        /// Local image files.
        files: Vec<std::path::PathBuf>,
    },
}

impl TransportCmd {
    /// What kind of command this is (for the overflow notice and counters).
    pub fn kind(&self) -> CmdKind {
        match self {
            TransportCmd::Connect => CmdKind::Connect,
            TransportCmd::Update(u) if u.urgent => CmdKind::Urgent,
            TransportCmd::Update(_) => CmdKind::Continuous,
            TransportCmd::Reconnect => CmdKind::Reconnect,
            TransportCmd::Shutdown => CmdKind::Shutdown,
            TransportCmd::DownloadModels => CmdKind::DownloadModels,
            TransportCmd::UploadAssets { .. } => CmdKind::UploadAssets,
        }
    }
}

/// The kind of a [`TransportCmd`], without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmdKind {
    /// `Connect`.
    Connect,
    /// An urgent update (one-shot trigger, prompt switch, panic).
    Urgent,
    /// A continuous update.
    Continuous,
    /// `Reconnect`.
    Reconnect,
    /// `Shutdown`.
    Shutdown,
    /// `DownloadModels`.
    DownloadModels,
    /// `UploadAssets`.
    UploadAssets,
}

impl CmdKind {
    /// Words for the performer.
    pub fn label(self) -> &'static str {
        match self {
            CmdKind::Connect => "connect",
            CmdKind::Urgent => "one-shot update",
            CmdKind::Continuous => "parameter update",
            CmdKind::Reconnect => "reconnect",
            CmdKind::Shutdown => "shutdown",
            CmdKind::DownloadModels => "model download",
            CmdKind::UploadAssets => "asset upload",
        }
    }
}

/// The engine's full desired parameter state as published to the transport (latest wins).
///
/// [`crate::params::ParamStore`] is the only owner of parameter values; this is a read-only
/// copy taken after a fold batch. A transport takes `values` whole on every (re)connect, after
/// waiting until `schemas_merged` counts the schema it reported, so the values it sends were
/// re-clamped to that schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DesiredParams {
    /// Every stored (non one-shot) value.
    pub values: serde_json::Map<String, ParamValue>,
    /// How many `TransportEvent::Schema` the engine has merged so far.
    pub schemas_merged: u64,
    /// The continuous-lane sequence number this copy includes (values queued with a sequence
    /// number at or below it are already in `values`).
    pub seq: u64,
}

/// A message the server sent on the data channel, parsed once at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// The server ended the session.
    StreamStopped {
        /// Why, when it says.
        error_message: Option<String>,
    },
    /// Parameters changed through the REST API.
    ParametersUpdated(serde_json::Value),
    /// Tempo sync state.
    TempoUpdate(serde_json::Value),
    /// A quantized change will apply after `delay_ms`.
    ChangeScheduled {
        /// Delay until it applies.
        delay_ms: Option<f64>,
    },
    /// A quantized change was applied.
    ChangeApplied(serde_json::Value),
    /// Anything else (kept whole, so a newer server's messages still reach the log).
    Unknown(serde_json::Value),
}

impl ServerMessage {
    /// Classifies one JSON message (unknown shapes become `Unknown`).
    pub fn from_json(v: serde_json::Value) -> ServerMessage {
        let ty = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
        match ty {
            "stream_stopped" => ServerMessage::StreamStopped {
                error_message: v
                    .get("error_message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string),
            },
            "parameters_updated" => ServerMessage::ParametersUpdated(v),
            "tempo_update" => ServerMessage::TempoUpdate(v),
            "change_scheduled" => ServerMessage::ChangeScheduled {
                delay_ms: v.get("delay_ms").and_then(|d| d.as_f64()),
            },
            "change_applied" => ServerMessage::ChangeApplied(v),
            _ => ServerMessage::Unknown(v),
        }
    }
}

/// Connection state machine shared by every backend (see docs/transport.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    /// Nothing attempted yet.
    #[default]
    Idle,
    /// Asking the server to load the pipeline.
    Loading,
    /// The pipeline is loading or warming up (countdown running).
    Warming,
    /// Offer/answer and ICE in progress.
    Connecting,
    /// Parameters flowing and frames arriving.
    Streaming,
    /// Connected but unhealthy (no frames, high loss).
    Degraded,
    /// Lost; trying again with backoff.
    Reconnecting,
    /// Finished (quit, or gave up).
    Stopped,
}

impl ConnState {
    /// Lower-case label for the dashboard and events.
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Idle => "idle",
            ConnState::Loading => "loading",
            ConnState::Warming => "warming",
            ConnState::Connecting => "connecting",
            ConnState::Streaming => "streaming",
            ConnState::Degraded => "degraded",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Stopped => "stopped",
        }
    }
}

/// Warm-up progress for the countdown gauge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WarmUp {
    /// Time since loading started.
    pub elapsed: Duration,
    /// How long it is expected to take.
    pub expected: Duration,
    /// The server's loading stage, if it tells.
    pub stage: Option<String>,
}

/// Link health figures for the connection panel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LinkStats {
    /// Frames per second received.
    pub rx_fps: f32,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f32>,
    /// Packet loss fraction 0..1.
    pub loss: Option<f32>,
    /// Pipeline fps reported by the server.
    pub server_fps: Option<f32>,
    /// Reconnect attempts since start.
    pub reconnects: u32,
    /// Frames per second the server receives from us (video-to-video input), if it says.
    pub input_fps: Option<f32>,
    /// Ingest jitter in milliseconds as the server measures it, if it says.
    pub jitter_ms: Option<f32>,
}

/// What a transport reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportEvent {
    /// The state machine moved.
    State {
        /// New state.
        state: ConnState,
        /// Why (shown next to the state).
        reason: Option<String>,
    },
    /// Warm-up progress.
    WarmUp(WarmUp),
    /// Health figures.
    Stats(LinkStats),
    /// A message was put on the wire (dry run shows these; real transports may too).
    Sent {
        /// Exactly what was sent.
        payload: serde_json::Value,
    },
    /// The server refused or could not take a value.
    Refused {
        /// Parameter key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The server sent a message on the data channel.
    ServerMessage(ServerMessage),
    /// Parameter specs learnt from the pipeline schema.
    Schema(Vec<crate::params::ParamSpec>),
    /// What `/api/v1/hardware/info` says (read after each connect; all unknown when the server
    /// lacks the endpoint).
    Hardware(crate::video::scope_api::HardwareInfo),
    /// Reference images uploaded; `vace_ref_images` already carries their server paths.
    AssetsUploaded {
        /// (local file, server path), in config order.
        uploaded: Vec<(std::path::PathBuf, String)>,
    },
    /// A problem worth showing the user (endpoint and status named).
    Error(String),
    /// The transport finished its goodbye and stopped.
    Stopped,
}

/// Video codec negotiated on the WebRTC video transceiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// VP8 (preferred; Scope's own UI forces it).
    Vp8,
    /// H.264.
    H264,
}

/// One received RTP packet of the generated video, handed from the transport to the video edge
/// over a bounded channel (the video edge drops, and counts, when it falls behind).
#[derive(Debug, Clone)]
pub struct RtpPacket {
    /// The complete RTP packet (header + payload) as received.
    pub data: bytes::Bytes,
    /// Negotiated codec.
    pub codec: VideoCodec,
    /// Negotiated payload type.
    pub payload_type: u8,
    /// RTP clock rate (90 kHz for video).
    pub clock_rate: u32,
    /// When it arrived (for added-latency stats).
    pub arrival: std::time::Instant,
}

/// One encoded frame of *outgoing* video (video-to-video pipelines, WHIP ingest), produced by
/// the video input edge and written to the WebRTC track by the transport.
#[derive(Debug, Clone)]
pub struct EncodedSample {
    /// Encoded frame: VP8 (Scope) or H.264 Annex B byte-stream, one access unit (hosted).
    pub data: bytes::Bytes,
    /// Frame duration.
    pub duration: Duration,
    /// Codec of `data`.
    pub codec: VideoCodec,
}
