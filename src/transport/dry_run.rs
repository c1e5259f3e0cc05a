//! The dry-run session: no server, but the same skeleton (state machine, coalescer, inbox) as a
//! show, each message reported as `Sent`, so a rehearsal (or a test) sees exactly what a show
//! would send and when. It holds a rehearsal to the server's limits: a message over Scope's
//! 64 KiB data-channel limit is `Refused` as a show would refuse it, and a schema recorded from
//! the real server (`[server] dry_run_schema`) is announced on connect so values are clamped to
//! the pipeline's own ranges.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::transport::backoff::{Backoff, BackoffPolicy};
use crate::transport::coalescer::Message;
use crate::transport::lanes::Inbox;
use crate::transport::protocol;
use crate::transport::skeleton::{self, End, Session, Skeleton};
use crate::transport::types::{ConnState, ParamUpdate, TransportCmd, TransportEvent};

/// Where the dry run's parameter ranges come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct DryRunSchema {
    /// A recorded `GET /api/v1/pipelines/schemas` reply (empty: the built-in ranges only).
    pub(crate) path: std::path::PathBuf,
    /// The pipelines whose schemas apply.
    pub(crate) pipeline_ids: Vec<String>,
}

impl DryRunSchema {
    /// Reads and maps the recorded schema; `Ok(None)` when none is configured.
    pub(crate) fn load(&self) -> Result<Option<Vec<crate::core::params::ParamSpec>>, String> {
        if self.path.as_os_str().is_empty() {
            return Ok(None);
        }
        let name = self.path.display();
        let text = std::fs::read_to_string(&self.path).map_err(|e| format!("{name}: {e}"))?;
        let reply: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        crate::transport::schema::specs_from_schemas(&reply, &self.pipeline_ids)
            .map(Some)
            .map_err(|e| format!("{name}: {e}"))
    }
}

/// Reports one message as a show would: `Sent`, or `Refused` when Scope's data channel would
/// not take it.
fn report(m: serde_json::Map<String, serde_json::Value>) -> TransportEvent {
    match protocol::encode(&m) {
        Ok(_) => TransportEvent::Sent {
            payload: serde_json::Value::Object(m),
        },
        Err(e) => TransportEvent::Refused {
            key: e.largest.clone(),
            reason: e.to_string(),
        },
    }
}

/// Runs until `Shutdown` (answered with `Stopped`) or until the command channel closes.
/// `send_rate_hz` is the coalescer rate a show would use.
pub(crate) async fn run(
    commands: Inbox,
    events: mpsc::Sender<TransportEvent>,
    send_rate_hz: f64,
    schema: DryRunSchema,
) {
    // No server to stampede: a rehearsal never waits between sessions.
    let backoff = Backoff::seeded(
        BackoffPolicy {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            factor: 1.0,
            jitter: 0.0,
        },
        0,
    );
    let sk = Skeleton::new(commands, events, send_rate_hz, backoff);
    skeleton::run(
        sk,
        DryRunSession {
            schema,
            schema_reported: false,
        },
    )
    .await;
}

/// The dry run's part of the skeleton: every coalesced message reported as `Sent`.
pub(crate) struct DryRunSession {
    schema: DryRunSchema,
    schema_reported: bool,
}

impl Session for DryRunSession {
    type Event = std::convert::Infallible;

    async fn connect(&mut self, sk: &mut Skeleton) -> Result<(), End> {
        if !self.schema_reported {
            self.schema_reported = true;
            // As a show merges the loaded pipeline's schema before streaming.
            match self.schema.load() {
                Ok(Some(specs)) => sk.report_schema(specs),
                Ok(None) => {}
                Err(e) => sk.error(format!("server.dry_run_schema: {e}")),
            }
        }
        // The engine's desired state, whole (its store owns the values), re-clamped to the
        // recorded schema once the engine merged it.
        let state = sk.settled_full_state().await?;
        sk.go(ConnState::Connecting, "dry run");
        sk.go(ConnState::Streaming, "dry run: nothing leaves this machine");
        sk.coalescer.push(ParamUpdate {
            values: state,
            urgent: true,
        });
        Ok(())
    }

    async fn send(&mut self, msg: Message, sk: &mut Skeleton) -> Result<(), End> {
        sk.emit(report(msg));
        Ok(())
    }

    async fn next_event(&mut self) -> Self::Event {
        std::future::pending().await
    }

    async fn on_event(&mut self, ev: Self::Event, _sk: &mut Skeleton) -> Result<(), End> {
        match ev {}
    }

    async fn on_command(&mut self, cmd: TransportCmd, sk: &mut Skeleton) -> Result<(), End> {
        match cmd {
            // As a show would: the session starts over with the full state.
            TransportCmd::DownloadModels => Err(End::Now("dry run: reconnect requested".into())),
            TransportCmd::UploadAssets { files } => {
                upload(files, sk).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn end(&mut self, why: &End, sk: &mut Skeleton) {
        if matches!(why, End::Shutdown) {
            // Whatever is pending would have been sent before the goodbye.
            let values = sk.inbox.take_continuous();
            sk.coalescer.push(ParamUpdate {
                values,
                urgent: false,
            });
            let at = sk.now() + sk.coalescer.min_interval();
            for m in sk.coalescer.poll(at) {
                sk.emit(report(m));
            }
        }
    }
}

/// Nothing is uploaded; the files are checked as a show would read them and their local paths
/// stand in for the server's asset paths.
async fn upload(files: Vec<std::path::PathBuf>, sk: &mut Skeleton) {
    let mut uploaded = Vec::new();
    for f in files {
        match tokio::fs::metadata(&f).await {
            Ok(m) if m.is_file() => {
                tracing::info!("dry run: would upload {}", f.display());
                let shown = f.display().to_string();
                uploaded.push((f, shown));
            }
            Ok(_) => sk.error(format!("reference image {}: not a file", f.display())),
            Err(e) => sk.error(format!("reference image {}: {e}", f.display())),
        }
    }
    let paths: Vec<String> = uploaded.iter().map(|(_, p)| p.clone()).collect();
    sk.coalescer.push(ParamUpdate::one(
        "vace_ref_images",
        serde_json::json!(paths),
    ));
    sk.emit(TransportEvent::AssetsUploaded { uploaded });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn replays_full_state_on_reconnect_and_stops_on_shutdown() {
        let (ctx, crx) = crate::transport::lanes::pair();
        let (etx, mut erx) = mpsc::channel(64);
        let task = tokio::spawn(run(crx, etx, 60.0, DryRunSchema::default()));
        let mut init = serde_json::Map::new();
        init.insert("paused".into(), json!(false));
        ctx.publish(init.clone(), 0);
        ctx.send_waiting(TransportCmd::Connect).await.unwrap();
        let mut sent = Vec::new();
        // The first message is the full state the engine published.
        while sent.is_empty() {
            if let Some(TransportEvent::Sent { payload }) = erx.recv().await {
                sent.push(payload);
            }
        }
        ctx.send_waiting(TransportCmd::Update(ParamUpdate::one(
            "noise_scale",
            json!(0.3),
        )))
        .await
        .unwrap();
        // The engine's store holds it too (it is the only owner of values).
        init.insert("noise_scale".into(), json!(0.3));
        ctx.publish(init, 0);
        ctx.send_waiting(TransportCmd::Update(ParamUpdate::trigger(
            "reset_cache",
            json!(true),
        )))
        .await
        .unwrap();
        ctx.send_waiting(TransportCmd::Reconnect).await.unwrap();
        ctx.send_waiting(TransportCmd::Shutdown).await.unwrap();
        task.await.unwrap();
        let mut stopped = false;
        while let Ok(ev) = erx.try_recv() {
            match ev {
                TransportEvent::Sent { payload } => sent.push(payload),
                TransportEvent::Stopped => stopped = true,
                _ => {}
            }
        }
        assert!(stopped);
        assert_eq!(sent[0], json!({"paused": false}));
        assert!(
            sent.iter()
                .filter(|m| m.get("reset_cache").is_some())
                .count()
                == 1,
            "the trigger went out exactly once: {sent:?}"
        );
        assert_eq!(
            sent.last().unwrap(),
            &json!({"paused": false, "noise_scale": 0.3}),
            "replay has no one-shots"
        );
    }

    /// A rehearsal checks the reference images as a show would read them and shows the
    /// `vace_ref_images` it would send; a missing file is named.
    #[tokio::test]
    async fn upload_assets_checks_files_and_shows_the_payload() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.png");
        std::fs::write(&good, b"png").unwrap();
        let missing = dir.path().join("nope.png");
        let (ctx, crx) = crate::transport::lanes::pair();
        let (etx, mut erx) = mpsc::channel(64);
        let task = tokio::spawn(run(crx, etx, 60.0, DryRunSchema::default()));
        ctx.send_waiting(TransportCmd::Connect).await.unwrap();
        ctx.send_waiting(TransportCmd::UploadAssets {
            files: vec![good.clone(), missing.clone()],
        })
        .await
        .unwrap();
        ctx.send_waiting(TransportCmd::Shutdown).await.unwrap();
        task.await.unwrap();
        let (mut errors, mut uploaded, mut sent) = (Vec::new(), Vec::new(), Vec::new());
        while let Ok(ev) = erx.try_recv() {
            match ev {
                TransportEvent::Error(e) => errors.push(e),
                TransportEvent::AssetsUploaded { uploaded: u } => uploaded = u,
                TransportEvent::Sent { payload } => sent.push(payload),
                _ => {}
            }
        }
        assert!(errors[0].contains("nope.png"), "{errors:?}");
        assert_eq!(uploaded, vec![(good.clone(), good.display().to_string())]);
        assert!(
            sent.iter()
                .any(|p| p["vace_ref_images"] == json!([good.display().to_string()])),
            "{sent:?}"
        );
    }

    /// A rehearsal shows the coalescing a show would do: a burst becomes few messages.
    #[tokio::test]
    async fn a_burst_is_coalesced_like_a_show() {
        let (ctx, crx) = crate::transport::lanes::pair();
        let (etx, mut erx) = mpsc::channel(2048);
        let task = tokio::spawn(run(crx, etx, 10.0, DryRunSchema::default()));
        ctx.send_waiting(TransportCmd::Connect).await.unwrap();
        for i in 0..500 {
            ctx.send_waiting(TransportCmd::Update(ParamUpdate::one(
                "noise_scale",
                json!(f64::from(i) / 1000.0),
            )))
            .await
            .unwrap();
        }
        ctx.send_waiting(TransportCmd::Shutdown).await.unwrap();
        task.await.unwrap();
        let mut values = Vec::new();
        while let Ok(ev) = erx.try_recv() {
            if let TransportEvent::Sent { payload } = ev {
                if let Some(v) = payload.get("noise_scale") {
                    values.push(v.clone());
                }
            }
        }
        assert!(
            values.len() < 50,
            "{} messages for 500 updates",
            values.len()
        );
        assert_eq!(values.last(), Some(&json!(0.499)));
    }
}
