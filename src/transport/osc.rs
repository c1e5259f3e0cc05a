//! The `scope-osc` backend: control only, OSC over UDP to Scope's `/scope/<key>` addresses, for
//! when Scope's own web UI owns the video session. A session of the transport skeleton (same
//! inbox, state machine and coalescer as every backend); values Scope
//! cannot take over OSC (structured JSON, keys missing from its `/api/v1/osc/paths`) are refused
//! with a reason instead of silently lost.
//!
//! OSC is fire-and-forget, so the connection state comes from HTTP: `/health` answers and
//! `/api/v1/osc/status` says the listener is on (on our port) → streaming; otherwise
//! reconnecting with the reason, values kept and replayed whole once it is back.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rosc::{OscMessage, OscPacket, OscType};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::transport::coalescer::Message;
use crate::transport::config::ServerConfig;
use crate::transport::http::{HttpError, ScopeHttp};
use crate::transport::skeleton::{self, End, Session, Skeleton};
use crate::transport::types::{ConnState, TransportCmd, TransportEvent};

/// Translates one parameter message into OSC messages, plus the keys OSC cannot carry.
pub(crate) fn to_osc(msg: &Message) -> (Vec<OscMessage>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for (k, v) in msg {
        let arg = |t: OscType| OscMessage {
            addr: format!("/scope/{k}"),
            args: vec![t],
        };
        match (k.as_str(), v) {
            ("prompts", serde_json::Value::Array(items)) => {
                // Scope's OSC takes one prompt text: the heaviest one.
                match heaviest_prompt(items) {
                    Some(t) => out.push(OscMessage {
                        addr: "/scope/prompt".into(),
                        args: vec![OscType::String(t.to_string())],
                    }),
                    None => refused.push((k.clone(), "no prompt text to send over OSC".into())),
                }
            }
            ("transition", v) => match v.get("num_steps").and_then(|n| n.as_i64()) {
                Some(n) => {
                    out.push(OscMessage {
                        addr: "/scope/transition_steps".into(),
                        args: vec![OscType::Int(n.clamp(0, i64::from(i32::MAX)) as i32)],
                    });
                    // The steps alone change nothing on screen: the target prompt follows
                    // (after the steps, so Scope crossfades with them).
                    if let Some(serde_json::Value::Array(items)) = v.get("target_prompts") {
                        match heaviest_prompt(items) {
                            Some(t) => out.push(OscMessage {
                                addr: "/scope/prompt".into(),
                                args: vec![OscType::String(t.to_string())],
                            }),
                            None if items.is_empty() => {}
                            None => refused
                                .push((k.clone(), "transition target without prompt text".into())),
                        }
                    }
                }
                None => refused.push((k.clone(), "transition without num_steps".into())),
            },
            (_, serde_json::Value::Bool(b)) => out.push(arg(OscType::Bool(*b))),
            (_, serde_json::Value::String(s)) => out.push(arg(OscType::String(s.clone()))),
            (_, serde_json::Value::Number(n)) => {
                if let Some(i) = n.as_i64().filter(|i| i32::try_from(*i).is_ok()) {
                    out.push(arg(OscType::Int(i as i32)));
                } else if let Some(f) = n.as_f64() {
                    out.push(arg(OscType::Float(f as f32)));
                }
            }
            (_, serde_json::Value::Array(items))
                if !items.is_empty() && items.iter().all(|i| i.as_i64().is_some()) =>
            {
                out.push(OscMessage {
                    addr: format!("/scope/{k}"),
                    args: items
                        .iter()
                        .filter_map(|i| i.as_i64())
                        .map(|i| {
                            OscType::Int(i.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
                        })
                        .collect(),
                });
            }
            _ => refused.push((
                k.clone(),
                "structured values cannot be sent over OSC; use backend = \"scope\"".into(),
            )),
        }
    }
    (out, refused)
}

/// The text of the heaviest prompt of a `prompts` list (Scope's OSC takes one prompt).
fn heaviest_prompt(items: &[serde_json::Value]) -> Option<&str> {
    items
        .iter()
        .filter_map(|p| {
            let t = p.get("text")?.as_str()?;
            let w = p.get("weight").and_then(|w| w.as_f64()).unwrap_or(1.0);
            Some((t, w))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t)
}

/// Drops messages whose key the server's OSC does not know (it would log "OSC UNKNOWN" and
/// ignore them), returning them as refusals with the reason.
pub(crate) fn keep_known(
    msgs: Vec<OscMessage>,
    known: &BTreeSet<String>,
) -> (Vec<OscMessage>, Vec<(String, String)>) {
    let mut refused = Vec::new();
    let kept = msgs
        .into_iter()
        .filter(|m| {
            let key = m.addr.trim_start_matches("/scope/");
            let ok = known.contains(key);
            if !ok {
                refused.push((
                    key.to_string(),
                    format!(
                        "the server's OSC does not accept {} (not in /api/v1/osc/paths); use \
                         backend = \"scope\"",
                        m.addr
                    ),
                ));
            }
            ok
        })
        .collect();
    (kept, refused)
}

/// The keys of an `/api/v1/osc/paths` reply (every group of `active` and `available`).
pub(crate) fn osc_keys(paths: &serde_json::Value) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    for section in ["active", "available"] {
        for group in paths.get(section)?.as_object()?.values() {
            for p in group.as_array().into_iter().flatten() {
                if let Some(k) = p.get("key").and_then(|k| k.as_str()) {
                    keys.insert(k.to_string());
                }
            }
        }
    }
    (!keys.is_empty()).then_some(keys)
}

/// What HTTP says about the server's OSC listener.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Link {
    /// `/health` does not answer.
    Down(String),
    /// The server answers; its OSC listener is off or on another port.
    NotListening(String),
    /// Listening (`note` when the server cannot say), with the keys it accepts when known.
    Up {
        /// Why delivery is unchecked, if it is.
        note: Option<String>,
        /// `/api/v1/osc/paths` keys.
        keys: Option<BTreeSet<String>>,
    },
}

/// Reads the server's OSC state over HTTP.
async fn check(http: &ScopeHttp, port: u16) -> Link {
    if let Err(e) = http.health().await {
        return Link::Down(e.to_string());
    }
    match http.osc_status().await {
        Ok(v) => {
            if v.get("listening").and_then(|l| l.as_bool()) != Some(true) {
                return Link::NotListening(
                    "the server answers but its OSC listener is off (/api/v1/osc/status)".into(),
                );
            }
            if let Some(p) = v.get("port").and_then(|p| p.as_u64())
                && p != u64::from(port)
            {
                return Link::NotListening(format!(
                    "the server's OSC listens on port {p}, the deck sends to {port} \
                     (server.osc_port)"
                ));
            }
            let keys = http.osc_paths().await.ok().and_then(|v| osc_keys(&v));
            Link::Up { note: None, keys }
        }
        Err(HttpError::Status { status: 404, .. }) => Link::Up {
            note: Some("this server has no /api/v1/osc/status: delivery unchecked".into()),
            keys: None,
        },
        Err(e) => Link::NotListening(e.to_string()),
    }
}

/// Re-checks every `poll` while up, every `probe` while not; reports each verdict.
async fn monitor(
    http: ScopeHttp,
    port: u16,
    poll: Duration,
    probe: Duration,
    tx: mpsc::Sender<Link>,
) {
    loop {
        let link = check(&http, port).await;
        let wait = if matches!(link, Link::Up { .. }) {
            poll
        } else {
            probe
        };
        if tx.send(link).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Where OSC goes: the host of `url`, port `osc_port` or the HTTP port.
pub(crate) fn target(cfg: &ServerConfig) -> Option<(String, u16)> {
    let u = url::Url::parse(&cfg.url).ok()?;
    let host = u.host_str()?.trim_matches(['[', ']']).to_string();
    let port = if cfg.osc_port != 0 {
        cfg.osc_port
    } else {
        u.port_or_known_default()?
    };
    Some((host, port))
}

/// Runs the OSC backend until `Shutdown` (answered with `Stopped`).
pub(crate) async fn run(
    cfg: ServerConfig,
    commands: crate::transport::lanes::Inbox,
    events: mpsc::Sender<TransportEvent>,
) {
    let sk = Skeleton::new(
        commands,
        events,
        cfg.send_rate_hz,
        crate::transport::backoff::Backoff::new(cfg.backoff_policy()),
    );
    let http = match ScopeHttp::new(&cfg.url, ServerConfig::secs(cfg.request_timeout_s)) {
        Ok(h) => h,
        Err(e) => return skeleton::refuse(sk, e.to_string()).await,
    };
    let session = OscSession {
        cfg,
        http,
        socket: None,
        links: None,
        monitor: None,
        up: false,
        keys: None,
    };
    skeleton::run(sk, session).await;
}

/// The OSC part of the skeleton: a UDP socket, and an HTTP monitor that says whether the
/// server's listener is there (OSC itself is fire-and-forget).
pub(crate) struct OscSession {
    cfg: ServerConfig,
    http: ScopeHttp,
    socket: Option<(UdpSocket, SocketAddr)>,
    links: Option<mpsc::Receiver<Link>>,
    monitor: Option<tokio::task::JoinHandle<()>>,
    /// The listener was confirmed (messages go out only then).
    up: bool,
    /// `/api/v1/osc/paths` keys, when the server lists them.
    keys: Option<BTreeSet<String>>,
}

impl Session for OscSession {
    type Event = Option<Link>;

    async fn connect(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        if self.socket.is_none() {
            let opened = sk.guard(open(&self.cfg)).await?;
            self.socket = Some(opened.map_err(End::Hopeless)?);
        }
        let Some((_, addr)) = &self.socket else {
            return Ok(());
        };
        sk.go(
            ConnState::Connecting,
            "checking the server's OSC listener over HTTP",
        );
        let (link_tx, links) = mpsc::channel(4);
        self.links = Some(links);
        self.up = false;
        self.monitor = Some(tokio::spawn(monitor(
            self.http.clone(),
            addr.port(),
            Duration::from_millis(self.cfg.health_poll_ms.max(1)),
            Duration::from_millis(self.cfg.health_probe_ms.max(1)),
            link_tx,
        )));
        Ok(())
    }

    fn ready(&self) -> bool {
        self.up
    }

    async fn send(&mut self, msg: Message, sk: &mut Skeleton) -> Result<(), End> {
        let Some((socket, addr)) = &self.socket else {
            return Ok(());
        };
        let (oscs, mut refused) = to_osc(&msg);
        let oscs = match &self.keys {
            Some(k) => {
                let (kept, unknown) = keep_known(oscs, k);
                refused.extend(unknown);
                kept
            }
            None => oscs,
        };
        for (key, reason) in refused {
            sk.emit(TransportEvent::Refused { key, reason });
        }
        for m in oscs {
            match rosc::encoder::encode(&OscPacket::Message(m)) {
                // UDP: the send returns once the datagram is queued, never waiting on the server.
                Ok(bytes) => {
                    if let Err(e) = socket.send_to(&bytes, addr).await {
                        sk.error(format!("OSC send to {addr}: {e}"));
                    }
                }
                Err(e) => sk.error(format!("OSC encode: {e}")),
            }
        }
        sk.emit(TransportEvent::Sent {
            payload: serde_json::Value::Object(msg),
        });
        Ok(())
    }

    async fn next_event(&mut self) -> Option<Link> {
        match &mut self.links {
            Some(l) => l.recv().await,
            None => std::future::pending().await,
        }
    }

    async fn on_event(&mut self, link: Option<Link>, sk: &mut Skeleton) -> Result<(), End> {
        let Some(link) = link else {
            return Err(End::Retry("OSC: the HTTP monitor ended".into()));
        };
        let addr = self.socket.as_ref().map(|(_, a)| *a);
        match link {
            Link::Up { note, keys } => {
                self.keys = keys;
                if !self.up {
                    self.up = true;
                    // Every (re)connect sends the full state.
                    sk.replay_full_state();
                    if sk.state() == ConnState::Reconnecting {
                        sk.go(ConnState::Connecting, "the server's OSC listener is back");
                    }
                    let to = addr.map(|a| a.to_string()).unwrap_or_default();
                    let why = match note {
                        Some(n) => format!("OSC to {to} (control only, no video; {n})"),
                        None => format!(
                            "OSC to {to} (control only, no video; listener confirmed over HTTP)"
                        ),
                    };
                    sk.go(ConnState::Streaming, why);
                }
            }
            Link::Down(e) | Link::NotListening(e) => {
                self.up = false;
                sk.go(
                    ConnState::Reconnecting,
                    format!("waiting for the server's OSC listener ({e}); values are kept"),
                );
            }
        }
        Ok(())
    }

    async fn on_command(&mut self, cmd: TransportCmd, sk: &mut Skeleton) -> Result<(), End> {
        match cmd {
            TransportCmd::UploadAssets { .. } => sk.emit(TransportEvent::Refused {
                key: "vace_ref_images".into(),
                reason: "reference images need the HTTP API of backend = \"scope\"".into(),
            }),
            // The link is HTTP's verdict; a new session replays the full state.
            TransportCmd::DownloadModels => sk.replay_full_state(),
            _ => {}
        }
        Ok(())
    }

    async fn end(&mut self, _why: &End, _sk: &mut Skeleton) {
        if let Some(m) = self.monitor.take() {
            m.abort();
        }
        self.links = None;
        self.up = false;
    }
}

async fn open(cfg: &ServerConfig) -> Result<(UdpSocket, SocketAddr), String> {
    let (host, port) =
        target(cfg).ok_or_else(|| format!("server.url `{}` has no host/port for OSC", cfg.url))?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("OSC: cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("OSC: {host} has no address"))?;
    let bind = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("OSC: cannot open a UDP socket: {e}"))?;
    Ok((sock, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Message {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn values_map_to_scope_addresses_and_structures_are_refused() {
        let (m, refused) = to_osc(&obj(json!({
            "noise_scale": 0.5,
            "paused": true,
            "reset_cache": true,
            "denoising_step_list": [1000, 500],
            "prompts": [{"text": "a", "weight": 0.2}, {"text": "b", "weight": 0.8}],
            "transition": {"num_steps": 4, "target_prompts": []},
            "lora_scales": [{"path": "x", "scale": 1.0}],
        })));
        let by: std::collections::BTreeMap<_, _> = m
            .iter()
            .map(|m| (m.addr.as_str(), m.args.clone()))
            .collect();
        assert_eq!(by["/scope/noise_scale"], vec![OscType::Float(0.5)]);
        assert_eq!(by["/scope/paused"], vec![OscType::Bool(true)]);
        assert_eq!(by["/scope/reset_cache"], vec![OscType::Bool(true)]);
        assert_eq!(
            by["/scope/denoising_step_list"],
            vec![OscType::Int(1000), OscType::Int(500)]
        );
        assert_eq!(by["/scope/prompt"], vec![OscType::String("b".into())]);
        assert_eq!(by["/scope/transition_steps"], vec![OscType::Int(4)]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "lora_scales");
    }

    #[test]
    fn target_uses_the_http_port_unless_configured() {
        let mut c = ServerConfig::default();
        assert_eq!(target(&c), Some(("127.0.0.1".into(), 8000)));
        c.osc_port = 9000;
        assert_eq!(target(&c), Some(("127.0.0.1".into(), 9000)));
        c.osc_port = 0;
        c.url = "https://pod.proxy.runpod.net".into();
        assert_eq!(target(&c), Some(("pod.proxy.runpod.net".into(), 443)));
    }

    #[test]
    fn a_prompt_transition_sends_its_steps_then_the_target_prompt() {
        let (m, refused) = to_osc(&obj(json!({
            "transition": {"num_steps": 8, "target_prompts": [
                {"text": "dim", "weight": 0.1}, {"text": "neon city", "weight": 0.9}
            ]},
        })));
        let got: Vec<_> = m
            .iter()
            .map(|m| (m.addr.as_str(), m.args.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/scope/transition_steps", vec![OscType::Int(8)]),
                ("/scope/prompt", vec![OscType::String("neon city".into())]),
            ]
        );
        assert!(refused.is_empty());
        let (_, refused) = to_osc(&obj(json!({
            "transition": {"num_steps": 8, "target_prompts": [{"weight": 1.0}]},
        })));
        assert_eq!(
            refused.len(),
            1,
            "a target without text is refused, not dropped"
        );
    }

    #[test]
    fn keys_the_server_does_not_list_are_refused_with_the_reason() {
        let paths = json!({
            "active": {"Runtime": [{"key": "prompt"}, {"key": "noise_scale"}]},
            "available": {"gray": [{"key": "paused"}]},
        });
        let known = osc_keys(&paths).unwrap();
        assert_eq!(known.len(), 3);
        assert_eq!(osc_keys(&json!({"active": {}, "available": {}})), None);
        let (m, _) = to_osc(&obj(
            json!({"noise_scale": 0.5, "made_up": 1, "paused": true}),
        ));
        let (kept, refused) = keep_known(m, &known);
        let kept: Vec<_> = kept.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(kept, vec!["/scope/noise_scale", "/scope/paused"]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "made_up");
        assert!(
            refused[0].1.contains("/api/v1/osc/paths"),
            "{}",
            refused[0].1
        );
    }
}
