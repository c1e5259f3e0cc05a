//! The dry-run transport: no server, but the same state machine and the same messages, each
//! reported as `Sent` so a rehearsal (or a test) sees exactly what a show would send.

use tokio::sync::mpsc;

use crate::transport::types::{ConnState, TransportCmd, TransportEvent};

/// Runs until `Shutdown` (answered with `Stopped`) or until the command channel closes.
pub async fn run(mut commands: mpsc::Receiver<TransportCmd>, events: mpsc::Sender<TransportEvent>) {
    let mut state = serde_json::Map::new();
    let emit = |ev: TransportEvent| {
        let events = events.clone();
        async move {
            // The engine is gone only when shutting down; nothing to report to then.
            let _ = events.send(ev).await;
        }
    };
    let set = |s: ConnState, why: &str| TransportEvent::State {
        state: s,
        reason: Some(why.to_string()),
    };
    while let Some(cmd) = commands.recv().await {
        match cmd {
            TransportCmd::Connect { initial } => {
                state = initial;
                emit(set(ConnState::Connecting, "dry run")).await;
                emit(TransportEvent::Sent {
                    payload: serde_json::Value::Object(state.clone()),
                })
                .await;
                emit(set(
                    ConnState::Streaming,
                    "dry run: nothing leaves this machine",
                ))
                .await;
            }
            TransportCmd::Update(u) => {
                for (k, v) in &u.values {
                    if k != "reset_cache" {
                        state.insert(k.clone(), v.clone());
                    }
                }
                emit(TransportEvent::Sent {
                    payload: serde_json::Value::Object(u.values),
                })
                .await;
            }
            TransportCmd::Replay { state: s } => {
                state = s;
                emit(TransportEvent::Sent {
                    payload: serde_json::Value::Object(state.clone()),
                })
                .await;
            }
            TransportCmd::Reconnect => {
                emit(set(ConnState::Reconnecting, "dry run: reconnect requested")).await;
                emit(TransportEvent::Sent {
                    payload: serde_json::Value::Object(state.clone()),
                })
                .await;
                emit(set(
                    ConnState::Streaming,
                    "dry run: nothing leaves this machine",
                ))
                .await;
            }
            TransportCmd::Shutdown => {
                emit(set(ConnState::Stopped, "quit")).await;
                emit(TransportEvent::Stopped).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::types::ParamUpdate;
    use serde_json::json;

    #[tokio::test]
    async fn replays_full_state_on_reconnect_and_stops_on_shutdown() {
        let (ctx, crx) = mpsc::channel(8);
        let (etx, mut erx) = mpsc::channel(32);
        let task = tokio::spawn(run(crx, etx));
        let mut init = serde_json::Map::new();
        init.insert("paused".into(), json!(false));
        ctx.send(TransportCmd::Connect { initial: init })
            .await
            .unwrap();
        ctx.send(TransportCmd::Update(ParamUpdate::one(
            "noise_scale",
            json!(0.3),
        )))
        .await
        .unwrap();
        ctx.send(TransportCmd::Update(ParamUpdate::trigger(
            "reset_cache",
            json!(true),
        )))
        .await
        .unwrap();
        ctx.send(TransportCmd::Reconnect).await.unwrap();
        ctx.send(TransportCmd::Shutdown).await.unwrap();
        task.await.unwrap();
        let mut sent = Vec::new();
        let mut stopped = false;
        while let Ok(ev) = erx.try_recv() {
            match ev {
                TransportEvent::Sent { payload } => sent.push(payload),
                TransportEvent::Stopped => stopped = true,
                _ => {}
            }
        }
        assert!(stopped);
        assert_eq!(
            sent.last().unwrap(),
            &json!({"paused": false, "noise_scale": 0.3}),
            "replay has no one-shots"
        );
        assert_eq!(sent[2], json!({"reset_cache": true}));
    }
}
