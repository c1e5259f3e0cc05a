//! The `scope-osc` backend: control only, OSC over UDP to Scope's `/scope/<key>` addresses, for
//! when Scope's own web UI owns the video session. Same coalescer as every backend; values Scope
//! cannot take over OSC (structured JSON) are refused with a reason instead of silently lost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscType};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::transport::coalescer::{Coalescer, Message};
use crate::transport::config::ServerConfig;
use crate::transport::machine::ConnMachine;
use crate::transport::types::{ConnState, ParamUpdate, TransportCmd, TransportEvent};

/// Translates one parameter message into OSC messages, plus the keys OSC cannot carry.
pub fn to_osc(msg: &Message) -> (Vec<OscMessage>, Vec<(String, String)>) {
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
                let best = items
                    .iter()
                    .filter_map(|p| {
                        let t = p.get("text")?.as_str()?;
                        let w = p.get("weight").and_then(|w| w.as_f64()).unwrap_or(1.0);
                        Some((t, w))
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match best {
                    Some((t, _)) => out.push(OscMessage {
                        addr: "/scope/prompt".into(),
                        args: vec![OscType::String(t.to_string())],
                    }),
                    None => refused.push((k.clone(), "no prompt text to send over OSC".into())),
                }
            }
            ("transition", v) => match v.get("num_steps").and_then(|n| n.as_i64()) {
                Some(n) => out.push(OscMessage {
                    addr: "/scope/transition_steps".into(),
                    args: vec![OscType::Int(n.clamp(0, i64::from(i32::MAX)) as i32)],
                }),
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

/// Where OSC goes: the host of `url`, port `osc_port` or the HTTP port.
pub fn target(cfg: &ServerConfig) -> Option<(String, u16)> {
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
pub async fn run(
    cfg: ServerConfig,
    mut commands: crate::transport::lanes::Inbox,
    events: mpsc::Sender<TransportEvent>,
) {
    let t0 = Instant::now();
    let mut machine = ConnMachine::default();
    let mut coalescer = Coalescer::new(cfg.send_rate_hz);
    let emit = |ev: TransportEvent| {
        let events = events.clone();
        async move {
            let _ = events.send(ev).await;
        }
    };
    let go =
        |m: &mut ConnMachine, s: ConnState, why: String| m.go(s, why, t0.elapsed()).ok().flatten();
    let mut socket: Option<(UdpSocket, SocketAddr)> = None;
    loop {
        let due = coalescer
            .next_due()
            .map(|d| tokio::time::Instant::from_std(t0 + d));
        let cmd = tokio::select! {
            c = commands.recv() => Some(c),
            _ = async { match due { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => None,
        };
        let mut replay = false;
        match cmd {
            Some(None) | Some(Some(TransportCmd::Shutdown)) => {
                if let Some(ev) = go(&mut machine, ConnState::Stopped, "quit".into()) {
                    emit(ev).await;
                }
                emit(TransportEvent::Stopped).await;
                return;
            }
            Some(Some(TransportCmd::Connect)) => replay = true,
            Some(Some(TransportCmd::Reconnect)) | Some(Some(TransportCmd::DownloadModels)) => {
                socket = None;
                if let Some(ev) = go(
                    &mut machine,
                    ConnState::Reconnecting,
                    "reconnect requested".into(),
                ) {
                    emit(ev).await;
                }
                replay = true;
            }
            Some(Some(TransportCmd::Update(u))) => coalescer.push(u),
            Some(Some(TransportCmd::UploadAssets { .. })) => {
                emit(TransportEvent::Refused {
                    key: "vace_ref_images".into(),
                    reason: "reference images need the HTTP API of backend = \"scope\"".into(),
                })
                .await;
            }
            None => {}
        }
        if socket.is_none() {
            if let Some(ev) = go(
                &mut machine,
                ConnState::Connecting,
                "opening UDP socket".into(),
            ) {
                emit(ev).await;
            }
            match open(&cfg).await {
                Ok(s) => {
                    let why = format!("OSC to {} (control only, no video)", s.1);
                    socket = Some(s);
                    if let Some(ev) = go(&mut machine, ConnState::Streaming, why) {
                        emit(ev).await;
                    }
                    replay = true;
                }
                Err(e) => {
                    emit(TransportEvent::Error(e)).await;
                    tokio::time::sleep(Duration::from_millis(cfg.reconnect_initial_ms)).await;
                    continue;
                }
            }
        }
        if replay {
            // The engine's desired state, whole (its store owns the values).
            coalescer.clear_continuous();
            coalescer.push(ParamUpdate {
                values: commands.full_state(),
                urgent: true,
            });
        }
        let Some((sock, addr)) = &socket else {
            continue;
        };
        for msg in coalescer.poll(t0.elapsed()) {
            let (oscs, refused) = to_osc(&msg);
            for (key, reason) in refused {
                emit(TransportEvent::Refused { key, reason }).await;
            }
            for m in oscs {
                match rosc::encoder::encode(&OscPacket::Message(m)) {
                    Ok(bytes) => {
                        if let Err(e) = sock.send_to(&bytes, addr).await {
                            emit(TransportEvent::Error(format!("OSC send to {addr}: {e}"))).await;
                        }
                    }
                    Err(e) => emit(TransportEvent::Error(format!("OSC encode: {e}"))).await,
                }
            }
            emit(TransportEvent::Sent {
                payload: serde_json::Value::Object(msg),
            })
            .await;
        }
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

    /// Real UDP on loopback: a Connect, a burst and a trigger arrive as decodable OSC.
    #[tokio::test]
    async fn sends_real_osc_over_loopback_udp() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rx.local_addr().unwrap().port();
        let cfg = ServerConfig {
            osc_port: port,
            send_rate_hz: 1000.0,
            ..ServerConfig::default()
        };
        let (ctx, crx) = crate::transport::lanes::pair();
        let (etx, mut erx) = mpsc::channel(256);
        let task = tokio::spawn(run(cfg, crx, etx));
        ctx.publish(obj(json!({"paused": false})), 0);
        ctx.send_waiting(TransportCmd::Connect).await.unwrap();
        ctx.send_waiting(TransportCmd::Update(ParamUpdate::trigger(
            "reset_cache",
            json!(true),
        )))
        .await
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while got.len() < 2 {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n]) {
                got.push(m.addr);
            }
        }
        assert_eq!(got, vec!["/scope/paused", "/scope/reset_cache"]);
        ctx.send_waiting(TransportCmd::Shutdown).await.unwrap();
        task.await.unwrap();
        let mut stopped = false;
        while let Ok(ev) = erx.try_recv() {
            stopped |= ev == TransportEvent::Stopped;
        }
        assert!(stopped);
    }
}
