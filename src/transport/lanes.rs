//! Engine → transport: the engine never awaits a transport.
//!
//! * **Continuous values** (`Update` without `urgent`) go into a latest-wins map the transport
//!   takes whole when it gets round to it: a stalled transport costs a few map entries, never
//!   a wait, and nothing overflows.
//! * **Urgent and one-shot commands** (connect, triggers, prompt switches, panic, reconnect,
//!   uploads) go over a bounded lane with `try_send`; when it is full the engine counts the
//!   drop and tells the performer (`Msg::CommandDropped`), never silently.
//! * **Shutdown** cannot be lost: it is a cancellation flag, seen after the urgent commands
//!   already queued (they were given first) and before queued continuous values.
//! * **The full desired state** (the engine's [`ParamStore`](crate::core::params::ParamStore),
//!   the only owner of values) is published after every fold batch that changed it, latest
//!   wins; the transport takes it whole on every (re)connect, after waiting until the engine has
//!   merged the schema it reported ([`Inbox::settled`]), so held values are re-clamped first.
//!
//! Every value and urgent command carries a sequence number, so the transport merges the
//! continuous values queued *before* an urgent update into it (the server sees changes in the
//! order they were made) and drops queued values the desired state already includes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::core::params::ParamValue;
use crate::transport::types::{CmdKind, DesiredParams, ParamUpdate, TransportCmd};

/// Capacity of the urgent lane. Urgent commands are rare (a performer's presses, theme
/// switches), so a full lane means the transport has stopped reading.
pub const URGENT_CAPACITY: usize = 64;

/// One message of parameters (key → value).
pub(crate) type Message = serde_json::Map<String, ParamValue>;

/// Why the engine could not hand a command over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The urgent lane is full: the transport is not reading.
    #[error("transport lane full: {} dropped", .0.label())]
    Full(CmdKind),
    /// The transport task has ended.
    #[error("transport gone")]
    Closed,
}

#[derive(Debug, Default)]
struct Pending {
    /// Last sequence number handed out.
    seq: u64,
    /// Continuous values not yet taken, each with the sequence number of its last write.
    values: BTreeMap<String, (u64, ParamValue)>,
    /// Values replaced before the transport took them.
    merged: u64,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Shared {
    /// The lock is held for a map insert or take, never across an await; a poisoned lock
    /// still holds consistent data (inserts cannot half-happen).
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The engine's end. Every method returns at once.
#[derive(Debug, Clone)]
pub struct TransportLink {
    urgent: mpsc::Sender<(u64, TransportCmd)>,
    shared: Arc<Shared>,
    desired: Arc<watch::Sender<Arc<DesiredParams>>>,
    stop: CancellationToken,
}

/// The transport's end.
#[derive(Debug)]
pub struct Inbox {
    urgent: mpsc::Receiver<(u64, TransportCmd)>,
    shared: Arc<Shared>,
    desired: watch::Receiver<Arc<DesiredParams>>,
    stop: CancellationToken,
    stop_seen: bool,
}

/// A connected engine end and transport end.
pub fn pair() -> (TransportLink, Inbox) {
    let (tx, rx) = mpsc::channel(URGENT_CAPACITY);
    let shared = Arc::new(Shared::default());
    let (dtx, drx) = watch::channel(Arc::new(DesiredParams::default()));
    let stop = CancellationToken::new();
    (
        TransportLink {
            urgent: tx,
            shared: shared.clone(),
            desired: Arc::new(dtx),
            stop: stop.clone(),
        },
        Inbox {
            urgent: rx,
            shared,
            desired: drx,
            stop,
            stop_seen: false,
        },
    )
}

impl TransportLink {
    /// Hands `cmd` over without waiting: continuous values latest-wins, shutdown as a flag,
    /// the rest on the bounded lane (`Full` when the transport is not reading).
    pub fn send(&self, cmd: TransportCmd) -> Result<(), LaneError> {
        match self.enqueue_or_reserve(&cmd) {
            None => Ok(()),
            Some(seq) => {
                let kind = cmd.kind();
                self.urgent.try_send((seq, cmd)).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => LaneError::Full(kind),
                    mpsc::error::TrySendError::Closed(_) => LaneError::Closed,
                })
            }
        }
    }

    /// Queues a continuous update or raises the stop flag (`None`: done); otherwise hands out
    /// the sequence number for the urgent lane.
    fn enqueue_or_reserve(&self, cmd: &TransportCmd) -> Option<u64> {
        match cmd {
            TransportCmd::Shutdown => {
                self.stop.cancel();
                None
            }
            TransportCmd::Update(u) if !u.urgent => {
                {
                    let mut p = self.shared.lock();
                    for (k, v) in &u.values {
                        p.seq += 1;
                        let seq = p.seq;
                        if p.values.insert(k.clone(), (seq, v.clone())).is_some() {
                            p.merged += 1;
                        }
                    }
                }
                self.shared.wake.notify_one();
                None
            }
            _ => {
                let mut p = self.shared.lock();
                p.seq += 1;
                Some(p.seq)
            }
        }
    }

    /// Waits for room on the urgent lane (test rigs only; the engine never waits).
    pub async fn send_waiting(&self, cmd: TransportCmd) -> Result<(), LaneError> {
        match self.enqueue_or_reserve(&cmd) {
            None => Ok(()),
            Some(seq) => self
                .urgent
                .send((seq, cmd))
                .await
                .map_err(|_| LaneError::Closed),
        }
    }

    /// Publishes the full desired state (latest wins). `values` must include every continuous
    /// value queued so far; the engine publishes after folding a batch and before sending the
    /// batch's commands, so anything a transport holds is in the desired state it reads next.
    pub fn publish(&self, values: Message, schemas_merged: u64) {
        let seq = self.shared.lock().seq;
        self.desired.send_replace(Arc::new(DesiredParams {
            values,
            schemas_merged,
            seq,
        }));
    }

    /// Publishes a desired state that will not change, for harnesses without an engine (no
    /// schema merge to wait for).
    pub fn publish_fixed(&self, values: Message) {
        self.publish(values, u64::MAX);
    }

    /// How many continuous values were replaced by a newer one before the transport took them.
    #[cfg(test)]
    pub(crate) fn merged(&self) -> u64 {
        self.shared.lock().merged
    }
}

impl Inbox {
    /// The next thing to do: urgent commands in the order they were given (an urgent update
    /// carries the continuous values queued before it), then `Shutdown` once it was asked for,
    /// then the continuous values queued so far as one non-urgent update. `None`: the engine is
    /// gone. Cancel-safe: nothing is taken until a branch completes.
    pub(crate) async fn recv(&mut self) -> Option<TransportCmd> {
        loop {
            tokio::select! {
                biased;
                m = self.urgent.recv() => {
                    let (seq, cmd) = m?;
                    return Some(match cmd {
                        TransportCmd::Update(u) => {
                            let mut values = self.take(Some(seq));
                            values.extend(u.values);
                            TransportCmd::Update(ParamUpdate { values, urgent: true })
                        }
                        other => other,
                    });
                }
                _ = self.stop.cancelled(), if !self.stop_seen => {
                    self.stop_seen = true;
                    return Some(TransportCmd::Shutdown);
                }
                _ = self.shared.wake.notified() => {
                    let values = self.take(None);
                    if !values.is_empty() {
                        return Some(TransportCmd::Update(ParamUpdate { values, urgent: false }));
                    }
                }
            }
        }
    }

    /// Takes every queued continuous value (a goodbye flushes them before it leaves).
    pub(crate) fn take_continuous(&mut self) -> Message {
        self.take(None)
    }

    /// Takes the queued continuous values (those queued before `before`, or all), in key order.
    fn take(&self, before: Option<u64>) -> Message {
        let mut p = self.shared.lock();
        match before {
            None => std::mem::take(&mut p.values)
                .into_iter()
                .map(|(k, (_, v))| (k, v))
                .collect(),
            Some(limit) => {
                let (early, late): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut p.values)
                    .into_iter()
                    .partition(|(_, (s, _))| *s < limit);
                p.values = late;
                early.into_iter().map(|(k, (_, v))| (k, v)).collect()
            }
        }
    }

    /// The full desired state, for a session's first message. Queued continuous values it
    /// already includes are dropped; later ones stay queued and follow.
    pub(crate) fn full_state(&mut self) -> Message {
        let d = self.desired.borrow_and_update().clone();
        self.shared.lock().values.retain(|_, (s, _)| *s > d.seq);
        d.values.clone()
    }

    /// A future that completes once the engine has merged `schemas` schemas (true), or after
    /// `within` (false: the engine is busy or gone; the caller goes on with what it has). It
    /// borrows nothing, so a transport can serve its inbox while it waits.
    pub(crate) fn settled(
        &self,
        schemas: u64,
        within: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let mut rx = self.desired.clone();
        async move {
            tokio::time::timeout(within, rx.wait_for(|d| d.schemas_merged >= schemas))
                .await
                .is_ok_and(|r| r.is_ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Message {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Message::new(),
        }
    }

    #[tokio::test]
    async fn continuous_values_are_latest_wins_and_never_overflow() {
        let (link, mut inbox) = pair();
        for i in 0..10_000 {
            link.send(TransportCmd::Update(ParamUpdate::one(
                "noise_scale",
                json!(f64::from(i) / 10_000.0),
            )))
            .unwrap();
        }
        assert_eq!(link.merged(), 9_999);
        assert_eq!(
            inbox.recv().await,
            Some(TransportCmd::Update(ParamUpdate {
                values: obj(json!({"noise_scale": 0.9999})),
                urgent: false
            }))
        );
    }

    #[tokio::test]
    async fn a_full_urgent_lane_is_reported_and_shutdown_still_gets_through() {
        let (link, mut inbox) = pair();
        for _ in 0..URGENT_CAPACITY {
            link.send(TransportCmd::Reconnect).unwrap();
        }
        assert_eq!(
            link.send(TransportCmd::Update(ParamUpdate::trigger(
                "reset_cache",
                json!(true)
            ))),
            Err(LaneError::Full(CmdKind::Urgent))
        );
        link.send(TransportCmd::Update(ParamUpdate::one(
            "paused",
            json!(true),
        )))
        .unwrap();
        link.send(TransportCmd::Shutdown).unwrap();
        for _ in 0..URGENT_CAPACITY {
            assert_eq!(inbox.recv().await, Some(TransportCmd::Reconnect));
        }
        assert_eq!(inbox.recv().await, Some(TransportCmd::Shutdown));
        assert_eq!(inbox.take_continuous(), obj(json!({"paused": true})));
    }

    #[tokio::test]
    async fn urgent_updates_carry_the_values_queued_before_them_only() {
        let (link, mut inbox) = pair();
        link.send(TransportCmd::Update(ParamUpdate::one(
            "paused",
            json!(true),
        )))
        .unwrap();
        link.send(TransportCmd::Update(ParamUpdate::trigger(
            "reset_cache",
            json!(true),
        )))
        .unwrap();
        link.send(TransportCmd::Update(ParamUpdate::one(
            "paused",
            json!(false),
        )))
        .unwrap();
        // The urgent lane is read first; `paused` was overwritten after the trigger, so it
        // follows it rather than riding along with the old value.
        assert_eq!(
            inbox.recv().await,
            Some(TransportCmd::Update(ParamUpdate {
                values: obj(json!({"reset_cache": true})),
                urgent: true
            }))
        );
        assert_eq!(
            inbox.recv().await,
            Some(TransportCmd::Update(ParamUpdate::one(
                "paused",
                json!(false)
            )))
        );
    }

    #[tokio::test]
    async fn the_full_state_drops_queued_values_it_includes() {
        let (link, mut inbox) = pair();
        link.send(TransportCmd::Update(ParamUpdate::one(
            "noise_scale",
            json!(0.3),
        )))
        .unwrap();
        link.publish(obj(json!({"noise_scale": 0.3, "paused": false})), 1);
        link.send(TransportCmd::Update(ParamUpdate::one(
            "noise_scale",
            json!(0.4),
        )))
        .unwrap();
        assert!(inbox.settled(1, Duration::from_secs(1)).await);
        assert_eq!(
            inbox.full_state(),
            obj(json!({"noise_scale": 0.3, "paused": false}))
        );
        assert_eq!(
            inbox.recv().await,
            Some(TransportCmd::Update(ParamUpdate::one(
                "noise_scale",
                json!(0.4)
            ))),
            "the later value still follows"
        );
        assert!(
            !inbox.settled(2, Duration::from_millis(1)).await,
            "a schema the engine has not merged yet is not settled"
        );
    }
}
