//! The engine task: the single owner of [`AppState`]. It folds every input through the pure
//! reducer, carries out the effects and publishes a snapshot for the front end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::audio::features::AudioFrame;
use crate::core::effect::{Effect, Event};
use crate::core::msg::Msg;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{AppState, Lifecycle};
use crate::core::update::update;
use crate::transport::types::{TransportCmd, TransportEvent};

/// How long the transport gets to say goodbye (DELETE the session) before the engine leaves
/// anyway.
pub const GOODBYE_TIMEOUT: Duration = Duration::from_secs(3);

/// How many queued inputs the engine folds before publishing one snapshot.
const DRAIN_LIMIT: usize = 512;

/// The engine's channels.
pub struct EngineIo {
    /// Actions, signals and audio events from every input.
    pub inputs: mpsc::Receiver<Msg>,
    /// Events from the transport.
    pub transport_events: mpsc::Receiver<TransportEvent>,
    /// Commands to the transport.
    pub transport_commands: mpsc::Sender<TransportCmd>,
    /// Latest audio features (latest wins), if an audio source runs.
    pub audio_frames: Option<watch::Receiver<AudioFrame>>,
    /// The video output's statistics (latest wins), if a video output runs.
    pub video_stats: Option<watch::Receiver<crate::video::VideoStats>>,
    /// Tempo commands for the beat tracker (analysis thread), if an audio source runs.
    pub tempo_commands: Option<mpsc::Sender<crate::audio::tempo::TempoCmd>>,
    /// Observable events (headless stdout). Never blocks the engine: a full queue drops.
    pub events: Option<mpsc::Sender<Event>>,
    /// The snapshot the front end draws.
    pub snapshots: watch::Sender<Arc<UiSnapshot>>,
}

/// Runs the engine until the reducer says `Exit` (after the transport's goodbye, or after
/// [`GOODBYE_TIMEOUT`]). Returns the final state and how many events were dropped.
pub async fn run(mut state: AppState, mut io: EngineIo, tick: Duration) -> (AppState, u64) {
    let start = Instant::now();
    let now = || start.elapsed();
    let mut dropped_events = 0u64;
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut goodbye_deadline: Option<Instant> = None;
    let mut inputs_open = true;

    let mut pending: Vec<Msg> = vec![Msg::Started];
    loop {
        // Fold everything already queued, then publish once.
        let mut exit = false;
        // Snapshots are built at the frame rate (and at once for performer input), not for every
        // audio hop: the front end draws at the frame rate anyway.
        let mut publish = false;
        for msg in pending.drain(..) {
            publish |= matches!(
                msg,
                Msg::Tick | Msg::Started | Msg::Action { .. } | Msg::Signal(_)
            );
            for fx in update(&mut state, msg, now()) {
                match fx {
                    Effect::Transport(cmd) => {
                        if io.transport_commands.send(cmd).await.is_err() {
                            tracing::warn!("transport gone; command dropped");
                        }
                    }
                    Effect::Emit(ev) => {
                        log_event(&ev);
                        if let Some(tx) = &io.events {
                            if tx.try_send(ev).is_err() {
                                dropped_events += 1;
                            }
                        }
                    }
                    Effect::Tempo(cmd) => {
                        if let Some(tx) = &io.tempo_commands {
                            if tx.try_send(cmd).is_err() {
                                tracing::warn!(?cmd, "beat tracker busy; tempo command dropped");
                            }
                        }
                    }
                    Effect::Exit => exit = true,
                }
            }
        }
        if state.lifecycle == Lifecycle::ShuttingDown && goodbye_deadline.is_none() {
            goodbye_deadline = Some(Instant::now() + GOODBYE_TIMEOUT);
        }
        if publish || exit || state.lifecycle != Lifecycle::Running {
            io.snapshots
                .send_replace(Arc::new(UiSnapshot::of(&state, now())));
        }
        if exit || state.lifecycle == Lifecycle::Finished {
            break;
        }

        let deadline =
            goodbye_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            msg = io.inputs.recv(), if inputs_open => match msg {
                Some(m) => pending.push(m),
                None => inputs_open = false,
            },
            ev = io.transport_events.recv() => match ev {
                Some(e) => pending.push(Msg::Transport(e)),
                None => {
                    // Transport task ended without a goodbye: treat as stopped.
                    pending.push(Msg::Transport(TransportEvent::Stopped));
                }
            },
            _ = ticker.tick() => {
                // Audio features are folded at the frame rate, not at the analysis' publish
                // rate: the latest frame wins anyway (onsets and beats come as their own
                // messages, on time), and waking for every frame only to fold it again before
                // the next snapshot is wasted work.
                if let Some(rx) = io.audio_frames.as_mut() {
                    match rx.has_changed() {
                        Ok(true) => pending.push(Msg::AudioFrame(*rx.borrow_and_update())),
                        Ok(false) => {}
                        Err(_) => io.audio_frames = None,
                    }
                }
                if let Some(rx) = io.video_stats.as_mut() {
                    match rx.has_changed() {
                        Ok(true) => {
                            let stats = rx.borrow_and_update().clone();
                            pending.push(Msg::VideoStats(Box::new(stats)));
                        }
                        Ok(false) => {}
                        Err(_) => io.video_stats = None,
                    }
                }
                pending.push(Msg::Tick);
            }
            _ = tokio::time::sleep_until(deadline), if goodbye_deadline.is_some() => {
                tracing::warn!("transport did not confirm shutdown within {:?}; leaving anyway", GOODBYE_TIMEOUT);
                break;
            }
        }
        // Drain what else is ready without waiting.
        while pending.len() < DRAIN_LIMIT {
            match io.inputs.try_recv() {
                Ok(m) => pending.push(m),
                Err(_) => break,
            }
        }
        while pending.len() < DRAIN_LIMIT {
            match io.transport_events.try_recv() {
                Ok(e) => pending.push(Msg::Transport(e)),
                Err(_) => break,
            }
        }
    }
    (state, dropped_events)
}

fn log_event(ev: &Event) {
    match ev {
        Event::Notice {
            level: crate::core::state::Level::Error,
            message,
        } => tracing::error!("{message}"),
        Event::Notice {
            level: crate::core::state::Level::Warn,
            message,
        } => tracing::warn!("{message}"),
        Event::Notice { message, .. } => tracing::info!("{message}"),
        Event::Connection { state, reason } => tracing::info!(
            state = state.label(),
            reason = reason.as_deref().unwrap_or(""),
            "connection"
        ),
        Event::Action { action, source } => {
            tracing::debug!(?source, "action {}", action.describe())
        }
        Event::Sent { payload } => tracing::trace!(%payload, "sent"),
        Event::Stopping { reason } => tracing::info!("stopping: {reason}"),
        _ => {}
    }
}
