//! The Daydream HTTP API (`/v1/streams`): create, status, PATCH, DELETE. Only this client ever
//! reads the API key, and only to put it in the `Authorization` header of requests to the
//! configured API host. Errors name the endpoint and status and never contain the key.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::transport::daydream::key::ApiKey;
use crate::transport::daydream::policy::Outcome;

/// A failed exchange: which endpoint, what status (none = no answer), and a short detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{endpoint}: {}{}", .status.map_or("no answer".to_string(), |s| format!("HTTP {s}")), if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
pub struct HttpFail {
    /// `METHOD /path`.
    pub endpoint: String,
    /// Status, if the server answered.
    pub status: Option<u16>,
    /// Short detail (body excerpt or transport error), key-free.
    pub detail: String,
}

impl HttpFail {
    /// Retry class of this failure.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.status)
    }
}

/// What `POST /v1/streams` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// Stream id.
    pub id: String,
    /// Pre-signed WHIP ingest URL (never gets the key).
    pub whip_url: String,
    /// Playback id (HLS/iframe), if given.
    pub playback_id: Option<String>,
}

/// Health figures from `GET /v1/streams/{id}/status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// `success: true` with data: the stream is up.
    pub active: bool,
    /// Frames per second arriving at the pipeline.
    pub input_fps: Option<f32>,
    /// Frames per second leaving it.
    pub output_fps: Option<f32>,
    /// Pipeline restarts.
    pub restart_count: Option<u32>,
    /// Last pipeline error.
    pub last_error: Option<String>,
    /// Ingest jitter (seconds or ms as the server reports).
    pub jitter: Option<f32>,
    /// Ingest packets lost.
    pub packets_lost: Option<f64>,
    /// Ingest round trip, milliseconds.
    pub rtt_ms: Option<f32>,
    /// WHEP URL the gateway reports, if any.
    pub whep_url: Option<String>,
    /// Server's error text when `success` is false.
    pub error: Option<String>,
}

/// The client.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("key", &self.key)
            .finish()
    }
}

/// A plain HTTP client for API and WHIP/WHEP requests: rustls (the app's ring provider), no
/// redirects (a redirect must not carry the key elsewhere), bounded timeouts.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn excerpt(s: &str, key: &ApiKey) -> String {
    let s = s.replace(key.expose(), "***");
    let s = s.trim();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(159).collect::<String>())
    } else {
        s.to_string()
    }
}

impl Api {
    /// A client for `base` (already checked: HTTPS, or loopback HTTP in development).
    pub fn new(http: reqwest::Client, base: Url, key: ApiKey) -> Self {
        Api { http, base, key }
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let prefix = u.path().trim_end_matches('/').to_string();
        u.set_path(&format!("{prefix}{path}"));
        u
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<(&str, &str)>,
        body: Option<&Value>,
    ) -> Result<Value, HttpFail> {
        let endpoint = format!("{method} {path}");
        let mut url = self.url(path);
        if let Some((k, v)) = query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.key.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| HttpFail {
            endpoint: endpoint.clone(),
            status: None,
            detail: excerpt(&without_url(&e), &self.key),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(HttpFail {
                endpoint,
                status: Some(status),
                detail: excerpt(&text, &self.key),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| HttpFail {
            endpoint,
            status: Some(status),
            detail: format!("answer is not JSON: {e}"),
        })
    }

    /// `POST /v1/streams`.
    pub async fn create(&self, body: &Value) -> Result<Created, HttpFail> {
        let v = self
            .send(reqwest::Method::POST, "/v1/streams", None, Some(body))
            .await?;
        let bad = |what: &str| HttpFail {
            endpoint: "POST /v1/streams".into(),
            status: Some(201),
            detail: format!("answer lacks {what}"),
        };
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`id`"))?;
        let whip = v
            .get("whip_url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`whip_url`"))?;
        Ok(Created {
            id: id.to_string(),
            whip_url: whip.to_string(),
            playback_id: v
                .get("output_playback_id")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// `GET /v1/streams/{id}/status`.
    pub async fn status(&self, id: &str) -> Result<Health, HttpFail> {
        let path = format!("/v1/streams/{}/status", enc(id));
        let v = self.send(reqwest::Method::GET, &path, None, None).await?;
        Ok(parse_health(&v))
    }

    /// `PATCH /v1/streams/{id}` with `{"pipeline","params":{model_id,...}}`.
    pub async fn patch(&self, id: &str, body: &Value) -> Result<(), HttpFail> {
        let path = format!("/v1/streams/{}", enc(id));
        self.send(reqwest::Method::PATCH, &path, None, Some(body))
            .await
            .map(|_| ())
    }

    /// `DELETE /v1/streams?id={id}` (the seeds' path).
    pub async fn delete(&self, id: &str) -> Result<(), HttpFail> {
        self.send(
            reqwest::Method::DELETE,
            "/v1/streams",
            Some(("id", id)),
            None,
        )
        .await
        .map(|_| ())
    }
}

fn enc(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// A reqwest error's text without the URL (which could carry a pre-signed token).
pub fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

fn find<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    match v {
        Value::Object(m) => {
            for k in keys {
                if let Some(x) = m.get(*k) {
                    if !x.is_null() {
                        return Some(x);
                    }
                }
            }
            m.values().find_map(|x| find(x, keys))
        }
        _ => None,
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|f| f.is_finite())
}

/// Reads the documented status shape (tolerant of missing parts).
pub fn parse_health(v: &Value) -> Health {
    let success = v.get("success").and_then(Value::as_bool).unwrap_or(false);
    let data = v.get("data").unwrap_or(&Value::Null);
    let inf = data.get("inference_status").unwrap_or(&Value::Null);
    let gw = data.get("gateway_status").unwrap_or(&Value::Null);
    let ingest = gw.get("ingest_metrics").unwrap_or(&Value::Null);
    Health {
        active: success && !data.is_null(),
        input_fps: num(inf.get("input_fps")).map(|f| f as f32),
        output_fps: num(inf.get("output_fps")).map(|f| f as f32),
        restart_count: num(inf.get("restart_count")).map(|f| f as u32),
        last_error: inf
            .get("last_error")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        jitter: num(find(ingest, &["jitter"])).map(|f| f as f32),
        packets_lost: num(find(ingest, &["packets_lost", "packetsLost"])),
        rtt_ms: num(find(ingest, &["rtt", "round_trip_time"])).map(|f| f as f32),
        whep_url: gw
            .get("whep_url")
            .and_then(Value::as_str)
            .map(str::to_string),
        error: v
            .get("error")
            .filter(|e| !e.is_null())
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_is_read_from_the_documented_shape() {
        let h = parse_health(&json!({"success": true, "error": null, "data": {
            "inference_status": {"input_fps": 29.5, "output_fps": 24.0, "restart_count": 2, "last_error": ""},
            "gateway_status": {"whep_url": "https://x.livepeer.com/whep", "ingest_metrics": {"stats": {"jitter": 0.004, "packets_lost": 3, "rtt": 41.0}}}}}));
        assert!(h.active);
        assert_eq!(
            (h.input_fps, h.output_fps, h.restart_count),
            (Some(29.5), Some(24.0), Some(2))
        );
        assert_eq!(
            (h.jitter, h.packets_lost, h.rtt_ms),
            (Some(0.004), Some(3.0), Some(41.0))
        );
        assert_eq!(h.last_error, None);
        let h = parse_health(&json!({"success": false, "error": "stream not ready", "data": null}));
        assert!(!h.active);
        assert_eq!(h.error.as_deref(), Some("stream not ready"));
    }

    #[test]
    fn failures_name_endpoint_and_status_without_the_key() {
        let key = ApiKey::new("daydream_live_K");
        let f = HttpFail {
            endpoint: "PATCH /v1/streams/s1".into(),
            status: Some(503),
            detail: excerpt("bad token daydream_live_K", &key),
        };
        assert_eq!(
            f.to_string(),
            "PATCH /v1/streams/s1: HTTP 503 (bad token ***)"
        );
        assert_eq!(f.outcome(), Outcome::NotReady);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = Api::new(
            reqwest::Client::new(),
            Url::parse("https://api.daydream.live").unwrap(),
            key,
        );
        assert!(!format!("{api:?}").contains("daydream_live_K"));
        assert_eq!(
            api.url("/v1/streams").as_str(),
            "https://api.daydream.live/v1/streams"
        );
    }
}
