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
    pub(crate) endpoint: String,
    /// Status, if the server answered.
    pub(crate) status: Option<u16>,
    /// Short detail (body excerpt or transport error), key-free.
    pub(crate) detail: String,
    /// The server's `Retry-After` (seconds form), honoured by the retry pacing.
    pub(crate) retry_after: Option<Duration>,
}

impl HttpFail {
    /// Retry class of this failure.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::of(self.status)
    }

    /// `backoff`, or longer when the server asked for it (capped at a minute so a bad header
    /// cannot stall the show).
    pub(crate) fn pace(&self, backoff: Duration) -> Duration {
        self.retry_after
            .map_or(backoff, |r| backoff.max(r.min(Duration::from_secs(60))))
    }
}

/// `Retry-After` in its seconds form (the HTTP-date form is ignored: the backoff applies).
pub(crate) fn retry_after(headers: Option<&reqwest::header::HeaderMap>) -> Option<Duration> {
    headers?
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// What `POST /v1/streams` returned.
#[derive(Clone, PartialEq)]
pub(crate) struct Created {
    /// Stream id.
    pub(crate) id: String,
    /// WHIP ingest URL: the stream key is in its path, so it is a secret (never logged).
    pub(crate) whip_url: String,
    /// Playback id (HLS/iframe), if given.
    pub(crate) playback_id: Option<String>,
}

/// Redacted: the WHIP URL carries the stream key.
impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("id", &self.id)
            .field("whip_url", &redact_url(&self.whip_url))
            .field("playback_id", &self.playback_id)
            .finish()
    }
}

/// A URL safe to show: scheme, host and port only. Daydream's WHIP and WHEP URLs carry the
/// stream key in their path (and could carry tokens in the query), so the path never appears in
/// logs or errors.
pub(crate) fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let tail = if u.path().len() > 1 || u.query().is_some() {
                "/***"
            } else {
                ""
            };
            format!("{}://{host}{port}{tail}", u.scheme())
        }
        Err(_) => "<url>".into(),
    }
}

/// Health figures from `GET /v1/streams/{id}/status`.
#[derive(Clone, Default, PartialEq)]
pub struct Health {
    /// `success: true` with data: the stream is up.
    pub(crate) active: bool,
    /// Frames per second arriving at the pipeline.
    pub(crate) input_fps: Option<f32>,
    /// Frames per second leaving it.
    pub(crate) output_fps: Option<f32>,
    /// Pipeline restarts.
    pub(crate) restart_count: Option<u32>,
    /// Last pipeline error.
    pub(crate) last_error: Option<String>,
    /// Ingest jitter (seconds or ms as the server reports), video track first.
    pub(crate) jitter: Option<f32>,
    /// Ingest packets lost.
    pub(crate) packets_lost: Option<f64>,
    /// Ingest packet loss in percent, as the gateway computes it.
    pub(crate) loss_pct: Option<f32>,
    /// Ingest round trip, milliseconds.
    pub(crate) rtt_ms: Option<f32>,
    /// The gateway's verdict on the ingest connection (`good`, `poor`...).
    pub(crate) conn_quality: Option<String>,
    /// The pipeline state (`LOADING`, `ONLINE`...).
    pub(crate) state: Option<String>,
    /// The gateway's last error (`gateway_status.error.error_message`) and when it happened.
    pub(crate) gateway_error: Option<(String, Option<i64>)>,
    /// WHEP URL the gateway reports, if any (carries the stream key: a secret).
    pub(crate) whep_url: Option<String>,
    /// Server's error text when `success` is false.
    pub(crate) error: Option<String>,
}

/// Leaves out the WHEP URL (it carries the stream key).
impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("active", &self.active)
            .field("state", &self.state)
            .field("input_fps", &self.input_fps)
            .field("output_fps", &self.output_fps)
            .field("jitter", &self.jitter)
            .field("loss_pct", &self.loss_pct)
            .field("rtt_ms", &self.rtt_ms)
            .field("conn_quality", &self.conn_quality)
            .field("gateway_error", &self.gateway_error)
            .finish_non_exhaustive()
    }
}

/// A stream listed by `GET /v1/streams` (to find streams a failed create left behind).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    /// Stream id.
    pub(crate) id: String,
    /// Creation time, seconds since the Unix epoch, if the entry says.
    pub(crate) created_at: Option<f64>,
}

/// The client.
#[derive(Clone)]
pub(crate) struct Api {
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
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
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
    pub(crate) fn new(http: reqwest::Client, base: Url, key: ApiKey) -> Self {
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
            retry_after: None,
            endpoint: endpoint.clone(),
            status: None,
            detail: excerpt(&without_url(&e), &self.key),
        })?;
        let status = resp.status().as_u16();
        let resp_headers = Some(resp.headers().clone());
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(HttpFail {
                retry_after: retry_after(resp_headers.as_ref()),
                endpoint,
                status: Some(status),
                detail: excerpt(&text, &self.key),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| HttpFail {
            retry_after: None,
            endpoint,
            status: Some(status),
            detail: format!("answer is not JSON: {e}"),
        })
    }

    /// `POST /v1/streams`.
    pub(crate) async fn create(&self, body: &Value) -> Result<Created, HttpFail> {
        let v = self
            .send(reqwest::Method::POST, "/v1/streams", None, Some(body))
            .await?;
        let bad = |what: &str| HttpFail {
            retry_after: None,
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
    pub(crate) async fn status(&self, id: &str) -> Result<Health, HttpFail> {
        let path = format!("/v1/streams/{}/status", enc(id));
        let v = self.send(reqwest::Method::GET, &path, None, None).await?;
        Ok(parse_health(&v))
    }

    /// `PATCH /v1/streams/{id}` with `{"pipeline","params":{model_id,...}}`.
    pub(crate) async fn patch(&self, id: &str, body: &Value) -> Result<(), HttpFail> {
        let path = format!("/v1/streams/{}", enc(id));
        self.send(reqwest::Method::PATCH, &path, None, Some(body))
            .await
            .map(|_| ())
    }

    /// `DELETE /v1/streams?id={id}` (the OpenAPI form), falling back to `DELETE
    /// /v1/streams/{id}` (the Unity plugin's form) on 404/405 so a stream is never left running.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), HttpFail> {
        let first = self
            .send(
                reqwest::Method::DELETE,
                "/v1/streams",
                Some(("id", id)),
                None,
            )
            .await;
        match first {
            Err(HttpFail {
                status: Some(404 | 405),
                ..
            }) => {
                let path = format!("/v1/streams/{}", enc(id));
                self.send(reqwest::Method::DELETE, &path, None, None)
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// `GET /v1/streams`: the key's streams (`data` array or a bare array).
    pub(crate) async fn list(&self) -> Result<Vec<Listed>, HttpFail> {
        let v = self
            .send(reqwest::Method::GET, "/v1/streams", None, None)
            .await?;
        let items = v
            .get("data")
            .and_then(Value::as_array)
            .or_else(|| v.as_array())
            .cloned()
            .unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|it| {
                let id = it.get("id")?.as_str()?.to_string();
                Some(Listed {
                    id,
                    created_at: it.get("created_at").and_then(epoch_secs),
                })
            })
            .collect())
    }
}

/// A creation time as seconds since the epoch: a number (seconds, or milliseconds when large),
/// a string holding one, or an RFC 3339 UTC time (`2025-06-01T12:00:00.5Z`).
fn epoch_secs(v: &Value) -> Option<f64> {
    let n = v.as_f64().or_else(|| {
        let s = v.as_str()?.trim();
        s.parse::<f64>().ok().or_else(|| rfc3339_utc(s))
    })?;
    Some(if n > 1e11 { n / 1000.0 } else { n })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)` → seconds since the epoch (UTC only: other offsets
/// are not worth a date library here; they give `None` and the orphan search skips the entry).
fn rfc3339_utc(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec = t.next()?.parse::<f64>().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

fn enc(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// A reqwest error's text without the URL (which could carry a pre-signed token).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
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

/// The per-track figures: the video entry of `track_stats[]`, else the first entry, else the
/// older flat `stats` object.
fn track(stats: &Value) -> &Value {
    match stats.get("track_stats").and_then(Value::as_array) {
        Some(tracks) => tracks
            .iter()
            .find(|t| t.get("type").and_then(Value::as_str) == Some("video"))
            .or_else(|| tracks.first())
            .unwrap_or(&Value::Null),
        None => stats,
    }
}

/// Reads the gateway's status shape (tolerant of missing parts).
pub fn parse_health(v: &Value) -> Health {
    let success = v.get("success").and_then(Value::as_bool).unwrap_or(false);
    let data = v.get("data").unwrap_or(&Value::Null);
    let inf = data.get("inference_status").unwrap_or(&Value::Null);
    let gw = data.get("gateway_status").unwrap_or(&Value::Null);
    let stats = gw
        .get("ingest_metrics")
        .and_then(|m| m.get("stats"))
        .unwrap_or(&Value::Null);
    let t = track(stats);
    let text = |x: Option<&Value>| {
        x.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let gateway_error = gw.get("error").and_then(|e| {
        let msg = text(e.get("error_message")).or_else(|| text(Some(e)))?;
        Some((msg, e.get("error_time").and_then(Value::as_i64)))
    });
    Health {
        active: success && !data.is_null(),
        input_fps: num(inf.get("input_fps")).map(|f| f as f32),
        output_fps: num(inf.get("output_fps")).map(|f| f as f32),
        restart_count: num(inf.get("restart_count")).map(|f| f as u32),
        last_error: text(inf.get("last_error")),
        jitter: num(find(t, &["jitter"])).map(|f| f as f32),
        packets_lost: num(find(t, &["packets_lost", "packetsLost"])),
        loss_pct: num(t.get("packet_loss_pct")).map(|f| f as f32),
        rtt_ms: num(find(t, &["rtt", "round_trip_time"])).map(|f| f as f32),
        conn_quality: text(stats.get("conn_quality")),
        state: text(data.get("state")).or_else(|| text(inf.get("state"))),
        gateway_error,
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
        // The gateway's shape: per-track figures in track_stats[], the video track's used.
        let h = parse_health(&json!({"success": true, "error": null, "data": {
            "stream_id": "s", "state": "ONLINE",
            "inference_status": {"input_fps": 30.0, "output_fps": 20.0},
            "gateway_status": {"whep_url": "https://x.livepeer.com/stk_secret-r-out/whep",
                "error": {"error_message": "segmenter stalled", "error_time": 1700000000000_i64},
                "ingest_metrics": {"stats": {"conn_quality": "poor", "peer_conn_stats": {},
                    "track_stats": [
                        {"type": "audio", "jitter": 0.2, "packets_lost": 9, "rtt": 99.0},
                        {"type": "video", "jitter": 0.004, "packets_lost": 3,
                         "packet_loss_pct": 1.5, "rtt": 41.0}]}}}}}));
        assert_eq!(
            (h.jitter, h.packets_lost, h.rtt_ms, h.loss_pct),
            (Some(0.004), Some(3.0), Some(41.0), Some(1.5))
        );
        assert_eq!(h.conn_quality.as_deref(), Some("poor"));
        assert_eq!(h.state.as_deref(), Some("ONLINE"));
        assert_eq!(
            h.gateway_error,
            Some(("segmenter stalled".to_string(), Some(1_700_000_000_000)))
        );
        assert!(!format!("{h:?}").contains("stk_secret"), "{h:?}");
        let h = parse_health(&json!({"success": false, "error": "stream not ready", "data": null}));
        assert!(!h.active);
        assert_eq!(h.error.as_deref(), Some("stream not ready"));
    }

    #[test]
    fn failures_name_endpoint_and_status_without_the_key() {
        let key = ApiKey::new("daydream_live_K");
        let f = HttpFail {
            retry_after: None,
            endpoint: "PATCH /v1/streams/s1".into(),
            status: Some(503),
            detail: excerpt("bad token daydream_live_K", &key),
        };
        assert_eq!(
            f.to_string(),
            "PATCH /v1/streams/s1: HTTP 503 (bad token ***)"
        );
        assert_eq!(f.outcome(), Outcome::NotReady);
        assert_eq!(f.pace(Duration::from_secs(2)), Duration::from_secs(2));
        let f = HttpFail {
            retry_after: Some(Duration::from_secs(7)),
            ..f
        };
        assert_eq!(f.pace(Duration::from_secs(2)), Duration::from_secs(7));
        let f = HttpFail {
            retry_after: Some(Duration::from_secs(3600)),
            ..f
        };
        assert_eq!(
            f.pace(Duration::from_secs(2)),
            Duration::from_secs(60),
            "capped"
        );
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(retry_after(Some(&h)), Some(Duration::from_secs(5)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(Some(&h)), None);
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

    #[test]
    fn urls_with_secrets_are_shown_without_their_path() {
        assert_eq!(
            redact_url("https://ai.livepeer.com/live/video-to-video/stk_abc/whip"),
            "https://ai.livepeer.com/***"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/x?token=t"),
            "http://127.0.0.1:9/***"
        );
        assert_eq!(
            redact_url("https://ai.livepeer.com"),
            "https://ai.livepeer.com"
        );
        assert_eq!(redact_url("not a url stk_abc"), "<url>");
        let c = Created {
            id: "s".into(),
            whip_url: "https://ai.livepeer.com/live/video-to-video/stk_abc/whip".into(),
            playback_id: None,
        };
        assert!(!format!("{c:?}").contains("stk_abc"));
        assert_eq!(epoch_secs(&json!("1710853711616")), Some(1_710_853_711.616));
        assert_eq!(epoch_secs(&json!(1_710_853_711.5)), Some(1_710_853_711.5));
        assert_eq!(epoch_secs(&json!("1970-01-01T00:00:00Z")), Some(0.0));
        assert_eq!(
            epoch_secs(&json!("2024-03-19T13:08:31.616Z")),
            Some(1_710_853_711.616)
        );
        assert_eq!(epoch_secs(&json!("2024-03-19T13:08:31+02:00")), None);
    }
}
