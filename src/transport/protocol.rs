//! Wire types for both directions: Scope's HTTP replies, data-channel messages from the server,
//! and the client's parameter messages. Unknown server message types are kept, never fatal:
//! newer Scope versions add types, and a performance must not stop for one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::transport::coalescer::Message;

/// Scope's limit for one data-channel message.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Health {
    /// `healthy` when all is well.
    pub(crate) status: String,
    /// Changes when the server restarts (seconds since the epoch).
    pub(crate) server_start_time: f64,
    /// Server version.
    #[serde(default)]
    pub(crate) version: Option<String>,
}

/// `status` of `GET /api/v1/pipeline/status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LoadStatus {
    /// Nothing loaded.
    NotLoaded,
    /// Loading (the warm-up).
    Loading,
    /// Ready.
    Loaded,
    /// Load failed (`error` says why; reported once, then `not_loaded`).
    Error,
    /// A status this build does not know.
    #[serde(other)]
    Other,
}

/// `GET /api/v1/pipeline/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct PipelineStatus {
    /// Load status.
    pub(crate) status: LoadStatus,
    /// Loaded pipeline.
    #[serde(default)]
    pub(crate) pipeline_id: Option<String>,
    /// Error text when `status` is `error`.
    #[serde(default)]
    pub(crate) error: Option<String>,
    /// Loading stage, when the server reports one.
    #[serde(default)]
    pub(crate) loading_stage: Option<String>,
}

/// One ICE server from `GET /api/v1/webrtc/ice-servers`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub(crate) struct IceServer {
    /// One URL or several.
    #[serde(deserialize_with = "one_or_many")]
    pub(crate) urls: Vec<String>,
    /// TURN user name.
    #[serde(default)]
    pub(crate) username: Option<String>,
    /// TURN credential.
    #[serde(default)]
    pub(crate) credential: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `GET /api/v1/webrtc/ice-servers`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct IceServers {
    /// The servers.
    #[serde(rename = "iceServers", default)]
    pub(crate) ice_servers: Vec<IceServer>,
}

/// `POST /api/v1/webrtc/offer` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Offer<'a> {
    /// Offer SDP (complete, non-trickle by default).
    pub(crate) sdp: &'a str,
    /// Always `offer`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// The full current state plus `pipeline_ids`.
    #[serde(rename = "initialParameters")]
    pub(crate) initial_parameters: &'a Message,
}

/// `POST /api/v1/webrtc/offer` reply.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Answer {
    /// Answer SDP.
    pub(crate) sdp: String,
    /// `answer`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Session id for PATCH and DELETE.
    #[serde(rename = "sessionId")]
    pub(crate) session_id: String,
}

/// `GET /api/v1/models/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ModelsStatus {
    /// Weights present.
    pub(crate) downloaded: bool,
    /// Download progress, when one runs.
    #[serde(default)]
    pub(crate) progress: Option<serde_json::Value>,
}

impl ModelsStatus {
    /// Progress percentage, if the server reports one.
    pub(crate) fn percent(&self) -> Option<f64> {
        let p = self.progress.as_ref()?;
        ["percentage", "percent", "progress"]
            .iter()
            .find_map(|k| p.get(*k).and_then(|v| v.as_f64()))
    }

    /// An error message carried in the progress (auth failures land here).
    pub(crate) fn error(&self) -> Option<String> {
        let p = self.progress.as_ref()?;
        p.get("error")
            .and_then(|e| e.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// One session in `GET /api/v1/session/metrics`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub(crate) struct SessionMetrics {
    /// Frames out per second.
    #[serde(default)]
    pub(crate) fps_out: Option<f64>,
    /// Pipeline fps.
    #[serde(default)]
    pub(crate) pipeline_fps: Option<f64>,
}

/// `GET /api/v1/session/metrics`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub(crate) struct Metrics {
    /// Per session.
    #[serde(default)]
    pub(crate) sessions: BTreeMap<String, SessionMetrics>,
}

pub(crate) use crate::transport::types::ServerMessage;

/// The server sent something that is not JSON at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server sent a data-channel message that is not JSON ({error}): {start}")]
pub struct NotJson {
    /// Parser error.
    pub(crate) error: String,
    /// The start of the message.
    pub start: String,
}

/// Parses one data-channel message once, at the edge, into the typed message the engine
/// folds; anything JSON is accepted (unknown shapes become `ServerMessage::Unknown`).
pub fn parse_server_message(text: &str) -> Result<ServerMessage, NotJson> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| NotJson {
        error: e.to_string(),
        start: text.chars().take(80).collect(),
    })?;
    Ok(ServerMessage::from_json(v))
}

/// A client message too big for the data channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "message of {bytes} bytes exceeds Scope's {MAX_MESSAGE_BYTES}-byte limit (largest key `{largest}`)"
)]
pub(crate) struct TooLarge {
    /// Size.
    pub(crate) bytes: usize,
    /// The key with the largest value (the likely culprit).
    pub(crate) largest: String,
}

/// Encodes one parameter message for the data channel.
pub(crate) fn encode(msg: &Message) -> Result<String, TooLarge> {
    let text = serde_json::Value::Object(msg.clone()).to_string();
    if text.len() > MAX_MESSAGE_BYTES {
        let largest = msg
            .iter()
            .max_by_key(|(_, v)| v.to_string().len())
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        return Err(TooLarge {
            bytes: text.len(),
            largest,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_messages_parse_and_unknown_types_are_kept() {
        let m = parse_server_message(r#"{"type":"stream_stopped","error_message":"oom"}"#).unwrap();
        assert_eq!(
            m,
            ServerMessage::StreamStopped {
                error_message: Some("oom".into())
            }
        );
        let m = parse_server_message(r#"{"type":"change_scheduled","delay_ms":125}"#).unwrap();
        assert_eq!(
            m,
            ServerMessage::ChangeScheduled {
                delay_ms: Some(125.0)
            }
        );
        let m = parse_server_message(r#"{"type":"brand_new","x":[1]}"#).unwrap();
        assert_eq!(
            m,
            ServerMessage::Unknown(json!({"type":"brand_new","x":[1]}))
        );
        let m = parse_server_message("[1,2]").unwrap();
        assert!(matches!(m, ServerMessage::Unknown(_)));
        let e = parse_server_message("{oops").unwrap_err();
        assert!(e.to_string().contains("not JSON"));
    }

    #[test]
    fn http_replies_parse_including_unknown_statuses_and_single_urls() {
        let s: PipelineStatus = serde_json::from_value(json!({
            "status":"loading","pipeline_id":"longlive","loading_stage":"weights","error":null,
            "produces_video": true
        }))
        .unwrap();
        assert_eq!(s.status, LoadStatus::Loading);
        assert_eq!(s.loading_stage.as_deref(), Some("weights"));
        let s: PipelineStatus = serde_json::from_value(json!({"status":"compiling"})).unwrap();
        assert_eq!(s.status, LoadStatus::Other);
        let i: IceServers = serde_json::from_value(json!({"iceServers":[
            {"urls":"stun:stun.l.google.com:19302"},
            {"urls":["turn:a","turns:b"],"username":"u","credential":"c"}]}))
        .unwrap();
        assert_eq!(i.ice_servers[0].urls, vec!["stun:stun.l.google.com:19302"]);
        assert_eq!(i.ice_servers[1].username.as_deref(), Some("u"));
        let a: Answer =
            serde_json::from_value(json!({"sdp":"v=0","type":"answer","sessionId":"abc"})).unwrap();
        assert_eq!(a.session_id, "abc");
        let m: ModelsStatus = serde_json::from_value(json!({"downloaded":false,
            "progress":{"is_downloading":true,"percentage":41.5}}))
        .unwrap();
        assert_eq!(m.percent(), Some(41.5));
        assert_eq!(m.error(), None);
    }

    #[test]
    fn offers_serialise_with_scope_field_names() {
        let mut init = Message::new();
        init.insert("pipeline_ids".into(), json!(["longlive"]));
        let o = Offer {
            sdp: "v=0",
            kind: "offer",
            initial_parameters: &init,
        };
        assert_eq!(
            serde_json::to_value(o).unwrap(),
            json!({"sdp":"v=0","type":"offer","initialParameters":{"pipeline_ids":["longlive"]}})
        );
    }

    #[test]
    fn oversized_messages_are_refused_naming_the_key() {
        let mut m = Message::new();
        m.insert("noise_scale".into(), json!(0.5));
        assert_eq!(encode(&m).unwrap(), r#"{"noise_scale":0.5}"#);
        m.insert("vace_ref_images".into(), json!("x".repeat(70_000)));
        let e = encode(&m).unwrap_err();
        assert_eq!(e.largest, "vace_ref_images");
    }
}
