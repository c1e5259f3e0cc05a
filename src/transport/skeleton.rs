//! The one transport skeleton: a single actor loop every backend runs, with the backend-specific
//! part (a [`Session`]) plugged in.
//!
//! The skeleton owns what every backend shares, so each is written once:
//! * the engine's [`Inbox`], read during every wait (a session connecting, PATCHing, polling or
//!   waiting for the engine is always awaited through [`Skeleton::guard`]), so `Shutdown` and
//!   urgent commands are answered while a session step hangs;
//! * the [`ConnMachine`] (every state change is checked against the table), the [`Coalescer`]
//!   (what goes on the wire and when), the reconnect [`Backoff`] and the reconnect policy
//!   ([`End`]);
//! * the [`EventSink`]: events to the engine without ever waiting for it (a backlog flushed as
//!   the engine reads, so a slow engine cannot stall the loop that answers it).
//!
//! A session is the backend's part: connect (everything up to a live session), send one
//! coalesced message, handle its own inner events (link events, finished requests, timers), take
//! its one-shot commands, and end the live session. See docs/transport.md.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::transport::backoff::Backoff;
use crate::transport::coalescer::{Coalescer, Message};
use crate::transport::lanes::Inbox;
use crate::transport::machine::{ConnMachine, allowed};
use crate::transport::types::{ConnState, ParamUpdate, TransportCmd, TransportEvent};

/// How long a (re)connect waits for the engine to merge the schema the session reported (it
/// folds at once unless it is stuck; then the session goes on with the state it has).
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Events held for a slow engine before progress reports (`Stats`, `WarmUp`, `Sent`) are dropped
/// (states, errors, schemas and `Stopped` are always kept).
const BACKLOG_CAP: usize = 4096;
/// How long the final events (`Stopped`) may wait for room in a full event channel.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// Why a wait was cut short by a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The performer asked for a fresh session.
    Reconnect,
    /// Quit.
    Shutdown,
}

/// Why a session attempt or a live session ended: the reconnect policy's input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    /// Try again after backoff.
    Retry(String),
    /// The server restarted (it forgot the session: no goodbye); try again after backoff.
    Restarted(String),
    /// Nobody answers: [`Session::wait_for_server`], then try again the moment it answers.
    Unreachable(String),
    /// Try again at once (the performer asked).
    Now(String),
    /// Retrying cannot help: say so and wait for the performer's reconnect.
    Hopeless(String),
    /// Quit.
    Shutdown,
}

impl From<Interrupt> for End {
    fn from(i: Interrupt) -> Self {
        match i {
            Interrupt::Reconnect => End::Now("reconnect requested".into()),
            Interrupt::Shutdown => End::Shutdown,
        }
    }
}

impl End {
    /// Whether the server still knows the session (a goodbye DELETE makes sense).
    pub(crate) fn server_knows_session(&self) -> bool {
        !matches!(self, End::Restarted(_) | End::Unreachable(_))
    }
}

/// Events to the engine without waiting for it: sent at once while the channel has room, else
/// queued in order and flushed by the actor loop as the engine reads.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<TransportEvent>,
    backlog: VecDeque<TransportEvent>,
    dropped: u64,
}

impl EventSink {
    /// A sink in front of the engine's event channel.
    pub(crate) fn new(tx: mpsc::Sender<TransportEvent>) -> Self {
        EventSink {
            tx,
            backlog: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Hands `ev` over (or queues it behind earlier ones); never waits.
    pub(crate) fn emit(&mut self, ev: TransportEvent) {
        if self.backlog.is_empty() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => self.queue(ev),
                // The engine is gone (only while shutting down): nothing to report to.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        } else {
            self.queue(ev);
            self.flush();
        }
    }

    fn queue(&mut self, ev: TransportEvent) {
        let progress = matches!(
            ev,
            TransportEvent::Stats(_) | TransportEvent::WarmUp(_) | TransportEvent::Sent { .. }
        );
        if progress && self.backlog.len() >= BACKLOG_CAP {
            if self.dropped == 0 {
                tracing::warn!(
                    "the engine is not reading transport events; dropping progress reports"
                );
            }
            self.dropped += 1;
            return;
        }
        self.backlog.push_back(ev);
    }

    /// Sends queued events while the channel has room.
    pub(crate) fn flush(&mut self) {
        while let Some(ev) = self.backlog.pop_front() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.backlog.push_front(ev);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    /// Completes when queued events can move (pending while nothing is queued). Cancel-safe.
    pub(crate) async fn writable(&self) {
        if self.backlog.is_empty() {
            return std::future::pending().await;
        }
        // The permit is released at once: `flush` takes the room it proved.
        let _ = self.tx.reserve().await;
    }

    /// Progress reports dropped because the engine did not read.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Delivers what is queued, waiting at most [`CLOSE_WITHIN`] in all (the actor is ending).
    async fn close(&mut self) {
        let tx = self.tx.clone();
        let backlog = std::mem::take(&mut self.backlog);
        let all = async move {
            for ev in backlog {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(CLOSE_WITHIN, all).await.is_err() {
            tracing::warn!("the engine did not take the transport's last events");
        }
    }
}

/// The skeleton's state, lent to the session on every call: inbox, event sink, state machine,
/// coalescer and backoff.
#[derive(Debug)]
pub(crate) struct Skeleton {
    /// The engine's commands (read during every wait).
    pub(crate) inbox: Inbox,
    /// Events to the engine.
    pub(crate) sink: EventSink,
    /// The connection state.
    pub(crate) machine: ConnMachine,
    /// What goes on the wire and when.
    pub(crate) coalescer: Coalescer,
    /// Reconnect delays (reset once a session reaches streaming).
    pub(crate) backoff: Backoff,
    /// Sessions started after the first (shown in the link statistics).
    pub(crate) reconnects: u32,
    /// Schemas reported to the engine (a connect waits until it has merged them all).
    schemas_sent: u64,
    /// One-shot commands for the session (uploads, model downloads), taken at its next safe
    /// point.
    pub(crate) for_session: VecDeque<TransportCmd>,
    t0: Instant,
}

impl Skeleton {
    /// A skeleton reading `inbox`, reporting on `events`.
    pub(crate) fn new(
        inbox: Inbox,
        events: mpsc::Sender<TransportEvent>,
        send_rate_hz: f64,
        backoff: Backoff,
    ) -> Self {
        Skeleton {
            inbox,
            sink: EventSink::new(events),
            machine: ConnMachine::default(),
            coalescer: Coalescer::new(send_rate_hz),
            backoff,
            reconnects: 0,
            schemas_sent: 0,
            for_session: VecDeque::new(),
            t0: Instant::now(),
        }
    }

    /// Time since the actor started (the coalescer's and machine's clock).
    pub(crate) fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// The instant [`Skeleton::now`] counts from.
    pub(crate) fn clock(&self) -> Instant {
        self.t0
    }

    /// The instant `at` (on [`Skeleton::now`]'s clock) for a timer.
    pub(crate) fn instant(&self, at: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.t0 + at)
    }

    /// Reports an event (never waits).
    pub(crate) fn emit(&mut self, ev: TransportEvent) {
        self.sink.emit(ev);
    }

    /// Reports an error (also logged).
    pub(crate) fn error(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        tracing::warn!("{msg}");
        self.emit(TransportEvent::Error(msg));
    }

    /// Moves the state machine (an illegal move is logged as a bug, never a panic). Reaching
    /// streaming resets the backoff: the session worked.
    pub(crate) fn go(&mut self, to: ConnState, reason: impl Into<String>) {
        let now = self.now();
        match self.machine.go(to, reason, now) {
            Ok(Some(ev)) => self.emit(ev),
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
        if to == ConnState::Streaming {
            self.backoff.reset();
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> ConnState {
        self.machine.state()
    }

    /// `degraded` when the table allows it from here (the session was up); otherwise the
    /// current state with `reason` (a session still coming up names what went wrong).
    pub(crate) fn degrade(&mut self, reason: impl Into<String>) {
        let state = self.state();
        if allowed(state, ConnState::Degraded) {
            self.go(ConnState::Degraded, reason);
        } else {
            self.go(state, reason);
        }
    }

    /// Reports a session's schema to the engine (a connect then waits for its merge, see
    /// [`Skeleton::settled_full_state`]).
    pub(crate) fn report_schema(&mut self, specs: Vec<crate::core::params::ParamSpec>) {
        self.schemas_sent += 1;
        self.emit(TransportEvent::Schema(specs));
    }

    /// The engine's full desired state for a session's first message, read once the engine has
    /// merged (and re-clamped its values to) every schema reported so far, or after
    /// [`SETTLE_TIMEOUT`]. Pending continuous values it carries are dropped from the coalescer.
    pub(crate) async fn settled_full_state(&mut self) -> Result<Message, Interrupt> {
        let settled = self.inbox.settled(self.schemas_sent, SETTLE_TIMEOUT);
        if !self.guard(settled).await? {
            tracing::warn!(
                "the engine did not merge the schema within {SETTLE_TIMEOUT:?}; using the state \
                 it last published"
            );
        }
        let state = self.inbox.full_state();
        self.coalescer.clear_continuous();
        Ok(state)
    }

    /// Replays the engine's full desired state as the next message (a session that came (back)
    /// up with no initial message of its own).
    pub(crate) fn replay_full_state(&mut self) {
        self.coalescer.clear_continuous();
        let values = self.inbox.full_state();
        self.coalescer.push(ParamUpdate {
            values,
            urgent: true,
        });
    }

    /// Applies a command that does not end the current phase (values into the coalescer,
    /// one-shots queued for the session).
    fn absorb(&mut self, cmd: Option<TransportCmd>) -> Result<(), Interrupt> {
        match cmd {
            None | Some(TransportCmd::Shutdown) => Err(Interrupt::Shutdown),
            Some(TransportCmd::Reconnect) => Err(Interrupt::Reconnect),
            // Already connecting: every session starts from the full desired state anyway.
            Some(TransportCmd::Connect) => Ok(()),
            Some(TransportCmd::Update(u)) => {
                self.coalescer.push(u);
                Ok(())
            }
            Some(cmd @ TransportCmd::DownloadModels) => {
                self.for_session.push_back(cmd);
                // Only a set-up waiting in `loading` (for models) restarts; never a live session.
                if self.state() == ConnState::Loading {
                    Err(Interrupt::Reconnect)
                } else {
                    Ok(())
                }
            }
            Some(cmd @ TransportCmd::UploadAssets { .. }) => {
                self.for_session.push_back(cmd);
                Ok(())
            }
        }
    }

    /// Awaits `fut` while serving commands and moving queued events: every session step that
    /// can take time goes through here.
    pub(crate) async fn guard<F: Future>(&mut self, fut: F) -> Result<F::Output, Interrupt> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                // A step that is already done is not cut short by what came meanwhile.
                out = &mut fut => return Ok(out),
                cmd = self.inbox.recv() => self.absorb(cmd)?,
                _ = self.sink.writable() => self.sink.flush(),
            }
        }
    }

    /// Sleeps while serving commands.
    pub(crate) async fn sleep(&mut self, d: Duration) -> Result<(), Interrupt> {
        self.guard(tokio::time::sleep(d)).await
    }

    /// Waits until the performer asks again (or quits).
    async fn wait_for_performer(&mut self) -> Result<(), Interrupt> {
        match self.guard(std::future::pending::<()>()).await {
            Err(Interrupt::Reconnect) | Ok(()) => Ok(()),
            Err(Interrupt::Shutdown) => Err(Interrupt::Shutdown),
        }
    }

    async fn stopped(&mut self, why: &str) {
        self.go(ConnState::Stopped, why);
        self.emit(TransportEvent::Stopped);
        self.sink.close().await;
    }
}

/// The backend-specific part of a transport. Every call gets the [`Skeleton`]; anything that can
/// take time is awaited through [`Skeleton::guard`] (or runs as a task reporting back through
/// [`Session::next_event`]), so the inbox is read throughout.
pub(crate) trait Session: Send {
    /// What the session's own sources report (link events, finished requests, timers).
    type Event: Send;

    /// Everything up to a live session (states reported through [`Skeleton::go`]).
    fn connect(&mut self, sk: &mut Skeleton) -> impl Future<Output = Result<(), End>> + Send;

    /// Whether coalesced messages may go out now.
    fn ready(&self) -> bool {
        true
    }

    /// Sends one coalesced message.
    fn send(
        &mut self,
        msg: Message,
        sk: &mut Skeleton,
    ) -> impl Future<Output = Result<(), End>> + Send;

    /// The next inner event of the live session (pending while there is none). Cancel-safe.
    fn next_event(&mut self) -> impl Future<Output = Self::Event> + Send;

    /// Handles one inner event.
    fn on_event(
        &mut self,
        ev: Self::Event,
        sk: &mut Skeleton,
    ) -> impl Future<Output = Result<(), End>> + Send;

    /// A one-shot command for this backend (`UploadAssets`, `DownloadModels`).
    fn on_command(
        &mut self,
        cmd: TransportCmd,
        sk: &mut Skeleton,
    ) -> impl Future<Output = Result<(), End>> + Send;

    /// Ends the live session, if any (the goodbye: DELETE, close). After a `Shutdown` it is
    /// awaited (bounded); otherwise it should not hold the loop (wind down in the background).
    fn end(&mut self, why: &End, sk: &mut Skeleton) -> impl Future<Output = ()> + Send;

    /// Waits for an unreachable server to answer again (`Ok`: try now). By default, the backoff.
    fn wait_for_server(
        &mut self,
        why: &str,
        sk: &mut Skeleton,
    ) -> impl Future<Output = Result<(), Interrupt>> + Send {
        let _ = why;
        async move {
            let delay = sk.backoff.next_delay();
            sk.sleep(delay).await
        }
    }

    /// The performer asked for a fresh start: forget failure counts that stop retrying.
    fn fresh_start(&mut self) {}
}

/// A transport that cannot start (a bad URL): says why and stops.
pub(crate) async fn refuse(mut sk: Skeleton, why: String) {
    sk.error(why.clone());
    sk.stopped(&why).await;
}

/// Runs `session` until `Shutdown` (answered with `Stopped`) or until the engine is gone.
pub(crate) async fn run<S: Session>(mut sk: Skeleton, mut session: S) {
    // Wait for the engine's Connect (commands before it only shape the state).
    loop {
        let cmd = tokio::select! {
            cmd = sk.inbox.recv() => cmd,
            _ = sk.sink.writable() => { sk.sink.flush(); continue; }
        };
        match cmd {
            Some(TransportCmd::Connect) => break,
            other => {
                if let Err(Interrupt::Shutdown) = sk.absorb(other) {
                    return sk.stopped("quit before connecting").await;
                }
            }
        }
    }
    sk.coalescer.clear_continuous();
    loop {
        let end = match session.connect(&mut sk).await {
            Ok(()) => live(&mut sk, &mut session).await,
            Err(End::Retry(why)) => {
                // Set-up failures are errors worth showing (endpoint and status named).
                sk.error(why.clone());
                End::Retry(why)
            }
            Err(e) => e,
        };
        session.end(&end, &mut sk).await;
        match end {
            End::Shutdown => return sk.stopped("quit").await,
            End::Hopeless(why) => {
                let msg =
                    format!("{why}; not retrying (fix it, then press reconnect to try again)");
                sk.error(msg.clone());
                sk.go(ConnState::Loading, msg);
                if sk.wait_for_performer().await.is_err() {
                    return sk.stopped("quit").await;
                }
                session.fresh_start();
                sk.reconnects += 1;
                sk.go(ConnState::Reconnecting, "reconnect requested");
            }
            End::Unreachable(why) => {
                sk.reconnects += 1;
                sk.error(format!("server unreachable: {why}"));
                if let Err(Interrupt::Shutdown) = session.wait_for_server(&why, &mut sk).await {
                    return sk.stopped("quit").await;
                }
            }
            End::Now(why) => {
                sk.reconnects += 1;
                sk.backoff.reset();
                session.fresh_start();
                sk.go(ConnState::Reconnecting, why);
            }
            End::Retry(why) | End::Restarted(why) => {
                sk.reconnects += 1;
                let delay = sk.backoff.next_delay();
                sk.go(
                    ConnState::Reconnecting,
                    format!("{why}; retrying in {:.1} s", delay.as_secs_f64()),
                );
                if let Err(Interrupt::Shutdown) = sk.sleep(delay).await {
                    return sk.stopped("quit").await;
                }
            }
        }
    }
}

/// A live session: commands, coalesced sends, the session's own events and queued events to the
/// engine, all from one loop.
async fn live<S: Session>(sk: &mut Skeleton, session: &mut S) -> End {
    loop {
        while let Some(cmd) = sk.for_session.pop_front() {
            if let Err(e) = session.on_command(cmd, sk).await {
                return e;
            }
        }
        let ready = session.ready();
        if ready {
            let now = sk.now();
            for msg in sk.coalescer.poll(now) {
                if let Err(e) = session.send(msg, sk).await {
                    return e;
                }
            }
        }
        let due = sk
            .coalescer
            .next_due()
            .filter(|_| ready)
            .map(|d| sk.instant(d));
        tokio::select! {
            biased;
            cmd = sk.inbox.recv() => {
                if let Err(i) = sk.absorb(cmd) {
                    return i.into();
                }
            }
            ev = session.next_event() => {
                if let Err(e) = session.on_event(ev, sk).await {
                    return e;
                }
            }
            _ = sk.sink.writable() => sk.sink.flush(),
            _ = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u32) -> TransportEvent {
        TransportEvent::Error(format!("e{n}"))
    }

    #[tokio::test]
    async fn the_sink_never_waits_and_keeps_order() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut sink = EventSink::new(tx);
        for n in 0..10 {
            sink.emit(state(n));
        }
        let mut got = Vec::new();
        while got.len() < 10 {
            tokio::select! {
                ev = rx.recv() => got.push(ev.unwrap()),
                _ = sink.writable() => sink.flush(),
            }
        }
        assert_eq!(got, (0..10).map(state).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn progress_reports_are_dropped_first_when_the_engine_stops_reading() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = EventSink::new(tx);
        sink.emit(state(0));
        for _ in 0..BACKLOG_CAP + 10 {
            sink.emit(TransportEvent::Stats(Default::default()));
        }
        sink.emit(TransportEvent::Stopped);
        assert_eq!(
            sink.dropped(),
            10,
            "the channel holds one, the backlog the cap"
        );
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(ev) = rx.recv().await {
                got.push(ev);
            }
            got
        });
        sink.close().await;
        drop(sink);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), BACKLOG_CAP + 2);
        assert_eq!(got.first(), Some(&state(0)));
        assert_eq!(got.last(), Some(&TransportEvent::Stopped), "kept and last");
    }
}
