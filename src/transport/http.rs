//! Scope's HTTP API, typed. Every error names the endpoint and, where there is one, the status
//! and the server's `detail`, so a performer reads "POST /api/v1/webrtc/offer: 400 No pipeline
//! loaded" instead of a generic failure.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::transport::coalescer::Message;
use crate::transport::protocol::{
    Answer, Health, IceServers, Metrics, ModelsStatus, Offer, PipelineStatus,
};

/// What went wrong talking HTTP to the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// No answer (refused, timeout, DNS, TLS).
    #[error("{endpoint}: no answer from the server ({reason})")]
    Network {
        /// `METHOD /path`.
        endpoint: String,
        /// reqwest's explanation.
        reason: String,
    },
    /// A non-success status.
    #[error("{endpoint}: HTTP {status}{}", detail.as_ref().map(|d| format!(" — {d}")).unwrap_or_default())]
    Status {
        /// `METHOD /path`.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The server's `detail` (FastAPI) or the start of the body.
        detail: Option<String>,
    },
    /// A success status with a body we cannot read.
    #[error("{endpoint}: malformed reply ({reason}); body starts: {start:?}")]
    Malformed {
        /// `METHOD /path`.
        endpoint: String,
        /// Parser error.
        reason: String,
        /// The start of the body.
        start: String,
    },
    /// The configured URL cannot be joined with an API path.
    #[error("server url `{0}` cannot be used as a base URL")]
    BadUrl(String),
}

impl HttpError {
    /// The HTTP status, if the server answered with one.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A typed client for one Scope server.
#[derive(Debug, Clone)]
pub(crate) struct ScopeHttp {
    client: reqwest::Client,
    base: url::Url,
}

impl ScopeHttp {
    /// A client for `base` (http or https) with a per-request `timeout`.
    pub(crate) fn new(base: &str, timeout: Duration) -> Result<Self, HttpError> {
        let mut base = url::Url::parse(base).map_err(|_| HttpError::BadUrl(base.to_string()))?;
        if base.cannot_be_a_base() {
            return Err(HttpError::BadUrl(base.to_string()));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| HttpError::Network {
                endpoint: "client".into(),
                reason: e.to_string(),
            })?;
        Ok(ScopeHttp { client, base })
    }

    fn url(&self, path: &str) -> Result<url::Url, HttpError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|_| HttpError::BadUrl(self.base.to_string()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, HttpError> {
        let endpoint = format!("{method} /{}", path.trim_start_matches('/'));
        let text = self.send(method, path, body, &endpoint).await?;
        serde_json::from_str(&text).map_err(|e| HttpError::Malformed {
            endpoint,
            reason: e.to_string(),
            start: text.chars().take(80).collect(),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        endpoint: &str,
    ) -> Result<String, HttpError> {
        let mut req = self.client.request(method, self.url(path)?);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let net = |e: reqwest::Error| HttpError::Network {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        };
        let resp = req.send().await.map_err(net)?;
        let status = resp.status();
        let text = resp.text().await.map_err(net)?;
        if !status.is_success() {
            return Err(HttpError::Status {
                endpoint: endpoint.to_string(),
                status: status.as_u16(),
                detail: detail_of(&text),
            });
        }
        Ok(text)
    }

    /// `GET /health`.
    pub(crate) async fn health(&self) -> Result<Health, HttpError> {
        self.call(reqwest::Method::GET, "health", None).await
    }

    /// `GET /api/v1/hardware/info`: which server-side outputs the server can publish.
    pub(crate) async fn hardware_info(
        &self,
    ) -> Result<crate::video::scope_api::HardwareInfo, HttpError> {
        let v: serde_json::Value = self
            .call(reqwest::Method::GET, "api/v1/hardware/info", None)
            .await?;
        Ok(crate::video::scope_api::HardwareInfo::from_json(&v))
    }

    /// The underlying client (for calls with non-JSON bodies, such as asset uploads).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The server's base URL.
    pub(crate) fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `POST /api/v1/pipeline/load`.
    pub(crate) async fn load(
        &self,
        pipeline_ids: &[String],
        load_params: &serde_json::Value,
    ) -> Result<(), HttpError> {
        let mut body = serde_json::json!({ "pipeline_ids": pipeline_ids });
        if load_params.as_object().is_some_and(|m| !m.is_empty()) {
            body["load_params"] = load_params.clone();
        }
        let ep = "POST /api/v1/pipeline/load";
        self.send(
            reqwest::Method::POST,
            "api/v1/pipeline/load",
            Some(body),
            ep,
        )
        .await
        .map(|_| ())
    }

    /// `GET /api/v1/pipeline/status`.
    pub(crate) async fn status(&self) -> Result<PipelineStatus, HttpError> {
        self.call(reqwest::Method::GET, "api/v1/pipeline/status", None)
            .await
    }

    /// `GET /api/v1/pipelines/schemas` (raw; see `schema::specs_from_schemas`).
    pub(crate) async fn schemas(&self) -> Result<serde_json::Value, HttpError> {
        self.call(reqwest::Method::GET, "api/v1/pipelines/schemas", None)
            .await
    }

    /// `GET /api/v1/webrtc/ice-servers`.
    pub(crate) async fn ice_servers(&self) -> Result<IceServers, HttpError> {
        self.call(reqwest::Method::GET, "api/v1/webrtc/ice-servers", None)
            .await
    }

    /// `POST /api/v1/webrtc/offer`.
    pub(crate) async fn offer(&self, sdp: &str, initial: &Message) -> Result<Answer, HttpError> {
        let body = serde_json::to_value(Offer {
            sdp,
            kind: "offer",
            initial_parameters: initial,
        })
        .unwrap_or_default();
        self.call(reqwest::Method::POST, "api/v1/webrtc/offer", Some(body))
            .await
    }

    /// `PATCH /api/v1/webrtc/offer/{id}` with trickled candidates.
    pub(crate) async fn trickle(
        &self,
        session: &str,
        candidates: serde_json::Value,
    ) -> Result<(), HttpError> {
        let path = format!("api/v1/webrtc/offer/{session}");
        let ep = format!("PATCH /{path}");
        let body = serde_json::json!({ "candidates": candidates });
        self.send(reqwest::Method::PATCH, &path, Some(body), &ep)
            .await
            .map(|_| ())
    }

    /// `DELETE /api/v1/webrtc/offer/{id}`.
    pub(crate) async fn delete_session(&self, session: &str) -> Result<(), HttpError> {
        let path = format!("api/v1/webrtc/offer/{session}");
        let ep = format!("DELETE /{path}");
        self.send(reqwest::Method::DELETE, &path, None, &ep)
            .await
            .map(|_| ())
    }

    /// `GET /api/v1/models/status?pipeline_id=`.
    pub(crate) async fn models_status(&self, pipeline_id: &str) -> Result<ModelsStatus, HttpError> {
        let mut url = self.url("api/v1/models/status")?;
        url.query_pairs_mut()
            .append_pair("pipeline_id", pipeline_id);
        let q = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        self.call(
            reqwest::Method::GET,
            &format!("api/v1/models/status{q}"),
            None,
        )
        .await
    }

    /// `POST /api/v1/models/download`.
    pub(crate) async fn models_download(&self, pipeline_id: &str) -> Result<(), HttpError> {
        let ep = "POST /api/v1/models/download";
        let body = serde_json::json!({ "pipeline_id": pipeline_id });
        self.send(
            reqwest::Method::POST,
            "api/v1/models/download",
            Some(body),
            ep,
        )
        .await
        .map(|_| ())
    }

    /// `GET /api/v1/osc/status`: `{enabled, listening, port, host}` of the server's OSC listener.
    pub(crate) async fn osc_status(&self) -> Result<serde_json::Value, HttpError> {
        self.call(reqwest::Method::GET, "api/v1/osc/status", None)
            .await
    }

    /// `GET /api/v1/osc/paths`: the OSC keys the server accepts (`active`/`available` groups).
    pub(crate) async fn osc_paths(&self) -> Result<serde_json::Value, HttpError> {
        self.call(reqwest::Method::GET, "api/v1/osc/paths", None)
            .await
    }

    /// `GET /api/v1/session/metrics`.
    pub(crate) async fn metrics(&self) -> Result<Metrics, HttpError> {
        self.call(reqwest::Method::GET, "api/v1/session/metrics", None)
            .await
    }
}

/// FastAPI's `detail` (string or validation list) or the start of a non-JSON body.
fn detail_of(body: &str) -> Option<String> {
    let text = body.trim();
    if text.is_empty() {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => match v.get("detail") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(d) => Some(d.to_string().chars().take(200).collect()),
            None => Some(text.chars().take(200).collect()),
        },
        Err(_) => Some(text.chars().take(200).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_come_from_fastapi_bodies_or_raw_text() {
        assert_eq!(
            detail_of(r#"{"detail":"No pipeline loaded"}"#).as_deref(),
            Some("No pipeline loaded")
        );
        assert!(
            detail_of(r#"{"detail":[{"loc":["body","sdp"]}]}"#)
                .unwrap()
                .contains("sdp")
        );
        assert_eq!(detail_of("Bad Gateway").as_deref(), Some("Bad Gateway"));
        assert_eq!(detail_of("  "), None);
    }

    #[test]
    fn errors_name_endpoint_and_status() {
        let e = HttpError::Status {
            endpoint: "POST /api/v1/webrtc/offer".into(),
            status: 400,
            detail: Some("No pipeline loaded".into()),
        };
        assert_eq!(
            e.to_string(),
            "POST /api/v1/webrtc/offer: HTTP 400 — No pipeline loaded"
        );
        assert_eq!(e.status(), Some(400));
    }

    #[test]
    fn base_urls_with_paths_keep_them() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let h = ScopeHttp::new(
            "https://pod-8000.proxy.runpod.net/scope",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            h.url("/health").unwrap().as_str(),
            "https://pod-8000.proxy.runpod.net/scope/health"
        );
        assert!(ScopeHttp::new("mailto:x@y", Duration::from_secs(1)).is_err());
    }
}
