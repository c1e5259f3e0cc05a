//! The engine task: the single owner of [`AppState`]. It folds every input through the pure
//! reducer, carries out the effects and publishes a snapshot for the front end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::audio::features::AudioFrame;
use crate::core::effect::{Effect, Event};
use crate::core::msg::Msg;
use crate::core::outputs::update_routed;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{AppState, Lifecycle};
use crate::transport::lanes::{LaneError, TransportLink};
use crate::transport::types::{TransportCmd, TransportEvent};

/// How long the transport gets to say goodbye (DELETE the session) before the engine leaves
/// anyway.
pub const GOODBYE_TIMEOUT: Duration = Duration::from_secs(3);

/// How many queued inputs the engine folds before publishing one snapshot.
const DRAIN_LIMIT: usize = 512;

/// The engine's two clocks: the control clock drives mapping, smoothing and the parameter
/// changes they send; the frame clock only paces snapshots for the front end, so a slow
/// dashboard (`ui.fps = 10` over SSH) never slows the music's control of the video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clocks {
    /// `Msg::Tick` period (`1 / [engine] control_hz`).
    pub control: Duration,
    /// Snapshot period (`1 / [ui] fps`).
    pub frame: Duration,
}

impl Clocks {
    /// From rates in Hz (each at least 1).
    pub fn from_hz(control_hz: f64, fps: u32) -> Clocks {
        let control_hz = if control_hz.is_finite() {
            control_hz.max(1.0)
        } else {
            1.0
        };
        Clocks {
            control: Duration::from_secs_f64(1.0 / control_hz),
            frame: Duration::from_secs_f64(1.0 / f64::from(fps.max(1))),
        }
    }
}

/// The engine's channels.
pub struct EngineIo {
    /// Actions, signals and audio events from every input.
    pub(crate) inputs: mpsc::Receiver<Msg>,
    /// Events from the transport.
    pub(crate) transport_events: mpsc::Receiver<TransportEvent>,
    /// Commands to the transport: never awaited (latest-wins values, a bounded urgent lane
    /// whose overflow becomes `Msg::CommandDropped`), plus the published desired state.
    pub(crate) transport: TransportLink,
    /// Latest audio features (latest wins), if an audio source runs.
    pub(crate) audio_frames: Option<watch::Receiver<AudioFrame>>,
    /// The video output's statistics (latest wins), if a video output runs.
    pub(crate) video_stats: Option<watch::Receiver<crate::video::VideoStats>>,
    /// When each output's received picture last changed for good (latency samples measured
    /// per output), for the outputs whose video pipeline runs; output 0 with a single server.
    pub(crate) video_changes: Vec<(
        crate::core::outputs::OutputId,
        watch::Receiver<Option<std::time::Instant>>,
    )>,
    /// Tempo commands for the beat tracker (analysis thread), if an audio source runs.
    pub(crate) tempo_commands: Option<mpsc::Sender<crate::audio::tempo::TempoCmd>>,
    /// Observable events (headless stdout). Never blocks the engine: a full queue drops.
    pub(crate) events: Option<mpsc::Sender<Event>>,
    /// The snapshot the front end draws.
    pub(crate) snapshots: watch::Sender<Arc<UiSnapshot>>,
    /// Blackout/fade level and the record key for the video edge (latest wins), if a video
    /// output runs.
    pub(crate) video_control: Option<watch::Sender<crate::core::stage::OutputControl>>,
    /// The shared beat grid, its time base and the Link edge (all optional).
    pub(crate) tempo: crate::tempo::TempoIo,
    /// Learn mode's commands to the MIDI edge (`try_send`), if it runs.
    pub(crate) midi_learn: Option<mpsc::Sender<scope_deck_core::midi::learn::LearnCmd>>,
}

impl EngineIo {
    /// The four channels every engine has; every optional edge (audio, video, tempo, events,
    /// MIDI learn) absent. For tests and benchmarks that run the real engine without the app's
    /// wiring: add the edges they drive with the `with_*` methods.
    pub fn new(
        inputs: mpsc::Receiver<Msg>,
        transport_events: mpsc::Receiver<TransportEvent>,
        transport: TransportLink,
        snapshots: watch::Sender<Arc<UiSnapshot>>,
    ) -> EngineIo {
        EngineIo {
            inputs,
            transport_events,
            transport,
            audio_frames: None,
            video_stats: None,
            video_changes: Vec::new(),
            tempo_commands: None,
            events: None,
            snapshots,
            video_control: None,
            tempo: crate::tempo::TempoIo::default(),
            midi_learn: None,
        }
    }

    /// Observable events go to `events` (as headless stdout does).
    pub fn with_events(mut self, events: mpsc::Sender<Event>) -> EngineIo {
        self.events = Some(events);
        self
    }

    /// Audio features come from `frames` (as from a running audio edge).
    pub fn with_audio_frames(mut self, frames: watch::Receiver<AudioFrame>) -> EngineIo {
        self.audio_frames = Some(frames);
        self
    }

    /// Learn commands go to a MIDI edge through `learn`.
    pub fn with_midi_learn(
        mut self,
        learn: mpsc::Sender<scope_deck_core::midi::learn::LearnCmd>,
    ) -> EngineIo {
        self.midi_learn = Some(learn);
        self
    }
}

/// Observers of the fold, fed from the engine loop and never awaited: the state journal
/// (captured on the control tick) and a recording (every folded message and transport command).
#[derive(Default)]
pub struct Taps {
    /// State journal (src/app/journal.rs).
    pub(crate) journal: Option<crate::app::journal::JournalTap>,
    /// `--record` (src/record).
    pub(crate) record: Option<crate::record::Recorder>,
}

/// Hands a learn command to the MIDI edge without waiting; the answer to fold when it cannot
/// take it (no MIDI edge, or its queue full), so learn mode never waits for nothing.
fn send_learn(
    to: Option<&mpsc::Sender<scope_deck_core::midi::learn::LearnCmd>>,
    cmd: scope_deck_core::midi::learn::LearnCmd,
) -> Option<scope_deck_core::midi::learn::LearnMsg> {
    use scope_deck_core::midi::learn::{LearnCmd, LearnMsg};
    let why = match to.map(|tx| tx.try_send(cmd.clone())) {
        Some(Ok(())) => return None,
        Some(Err(mpsc::error::TrySendError::Full(_))) => "the MIDI edge is busy; try again",
        Some(Err(mpsc::error::TrySendError::Closed(_))) | None => "the MIDI edge is not running",
    };
    tracing::warn!(?cmd, "learn command not delivered: {why}");
    // Disarming something that is not there needs no answer.
    (!matches!(cmd, LearnCmd::Disarm)).then(|| LearnMsg::Failed {
        message: why.into(),
    })
}

/// The engine's links to outputs 1.. (`[[outputs]]`; output 0 is `EngineIo::transport`) and
/// the video routes it publishes from the failover state. Empty with a single server.
#[derive(Default)]
pub struct OutputLinks {
    /// Commands to outputs 1.., in `[[outputs]]` order.
    pub rest: Vec<TransportLink>,
    /// Which output's received video feeds each output's sinks.
    pub video_routes: Option<watch::Sender<Vec<crate::core::outputs::OutputId>>>,
}

/// [`run_with`] without taps.
pub async fn run(state: AppState, io: EngineIo, clocks: Clocks) -> (AppState, u64) {
    run_with(state, io, clocks, Taps::default()).await
}

/// Runs the engine until the reducer says `Exit` (after the transport's goodbye, or after
/// [`GOODBYE_TIMEOUT`]). Returns the final state and how many events were dropped.
///
/// Nothing here awaits an edge: inputs are received, every output is a `try_send`, a watch or
/// the transport lane.
pub(crate) async fn run_with(
    state: AppState,
    io: EngineIo,
    clocks: Clocks,
    taps: Taps,
) -> (AppState, u64) {
    run_outputs(state, io, clocks, taps, OutputLinks::default()).await
}

/// [`run_with`] driving several outputs: every transport command is addressed to one output
/// (`Effect::Output`), each output gets its own desired state (`outputs::desired_for`), and
/// none is ever awaited.
pub async fn run_outputs(
    mut state: AppState,
    mut io: EngineIo,
    clocks: Clocks,
    mut taps: Taps,
    outputs: OutputLinks,
) -> (AppState, u64) {
    // Engine time zero is shared with the threads that keep time by the grid.
    let start = io.tempo.epoch.map_or_else(Instant::now, Instant::from_std);
    let now = || start.elapsed();
    let mut published_grid = None;
    let mut dropped_events = 0u64;
    let mut control = tokio::time::interval(clocks.control);
    control.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut frame = tokio::time::interval(clocks.frame);
    frame.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut goodbye_deadline: Option<Instant> = None;
    let mut inputs_open = true;
    let mut transport_gone_logged = false;
    let mut published_rev: Option<u64> = None;
    let mut published_outputs_rev: Option<(u64, u64)> = None;
    let mut to_transport: Vec<TransportCmd> = Vec::new();
    let mut to_outputs: Vec<(crate::core::outputs::OutputId, TransportCmd)> = Vec::new();
    let mut published_routes: Vec<crate::core::outputs::OutputId> = Vec::new();

    let mut pending: Vec<Msg> = vec![Msg::Started];
    let mut publish = false;
    loop {
        // Fold everything already queued, then publish once.
        let mut exit = false;
        while !pending.is_empty() {
            for msg in std::mem::take(&mut pending) {
                // The performer's own presses show at once; everything else (MIDI at control
                // rate, audio, ticks) waits for the frame clock.
                publish |= match &msg {
                    Msg::Started | Msg::Signal(_) => true,
                    Msg::Action { source, .. } => matches!(
                        source,
                        crate::core::ActionSource::Keyboard | crate::core::ActionSource::Script
                    ),
                    _ => false,
                };
                let t = now();
                if let Some(r) = taps.record.as_mut() {
                    r.input(&msg, t);
                }
                for fx in update_routed(&mut state, msg, t) {
                    match fx {
                        Effect::Transport(cmd) => {
                            if let Some(r) = taps.record.as_mut() {
                                r.output(&cmd, t);
                            }
                            to_transport.push(cmd)
                        }
                        Effect::Output { output, cmd } => {
                            // A recording keeps every output's wire (output 0's as one
                            // server's).
                            if let Some(r) = taps.record.as_mut() {
                                r.output_to(output, &cmd, t);
                            }
                            to_outputs.push((output, cmd))
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
                                    tracing::warn!(
                                        ?cmd,
                                        "beat tracker busy; tempo command dropped"
                                    );
                                }
                            }
                        }
                        Effect::Link(cmd) => {
                            if let Some(tx) = &io.tempo.link {
                                if tx.try_send(cmd).is_err() {
                                    tracing::warn!(?cmd, "Link edge busy; command dropped");
                                }
                            }
                        }
                        Effect::MidiLearn(cmd) => {
                            if let Some(failed) = send_learn(io.midi_learn.as_ref(), cmd) {
                                // Folded next round: learning stops with the reason shown.
                                pending.push(Msg::Learn(failed));
                            }
                        }
                        Effect::SaveLook(look) => save_look(&state, *look),
                        Effect::Exit => exit = true,
                    }
                }
            }
            if let Some(g) = &io.tempo.grid {
                if published_grid != Some(state.tempo.grid) {
                    published_grid = Some(state.tempo.grid);
                    g.publish(&state.tempo.grid);
                }
            }
            // The desired state first, then the batch's commands: whatever the transport takes
            // from the lanes is already in the desired state it reads on its next connect.
            let store = &state.params.store;
            if state.outputs.list.is_empty() {
                if published_rev != Some(store.revision()) {
                    published_rev = Some(store.revision());
                    io.transport
                        .publish(store.full_state(), store.schemas_merged());
                }
            } else if published_outputs_rev != Some((store.revision(), state.outputs.revision)) {
                // Each output replays its own desired state (its overrides, or the lost
                // primary's while it stands in), cut to its own pipeline's schema.
                published_outputs_rev = Some((store.revision(), state.outputs.revision));
                let full = store.full_state();
                for i in 0..state.outputs.list.len() {
                    let link = if i == 0 {
                        Some(&io.transport)
                    } else {
                        outputs.rest.get(i - 1)
                    };
                    if let Some(link) = link {
                        // Its own schema count: a connect waits for its own server's schema
                        // to be merged, never for another output's.
                        link.publish(
                            crate::core::outputs::desired_for(&state, i, &full),
                            state.outputs.list[i].schemas_merged,
                        );
                    }
                }
            }
            if let Some(tx) = &outputs.video_routes {
                let n = state.outputs.list.len();
                if published_routes.len() != n
                    || (0..n).any(|i| published_routes[i] != state.outputs.video_source(i))
                {
                    published_routes = (0..n).map(|i| state.outputs.video_source(i)).collect();
                    tx.send_replace(published_routes.clone());
                }
            }
            for (i, cmd) in to_outputs.drain(..) {
                let link = if i == 0 {
                    Some(&io.transport)
                } else {
                    outputs.rest.get(i - 1)
                };
                let Some(link) = link else { continue };
                match link.send(cmd) {
                    Ok(()) => {}
                    Err(LaneError::Full(kind)) => pending.push(Msg::CommandDropped(kind)),
                    Err(LaneError::Closed) => {
                        if !transport_gone_logged {
                            transport_gone_logged = true;
                            tracing::warn!(output = i, "transport gone; commands dropped");
                        }
                    }
                }
            }
            for cmd in to_transport.drain(..) {
                match io.transport.send(cmd) {
                    Ok(()) => {}
                    // Folded right away: counted, and the performer is told.
                    Err(LaneError::Full(kind)) => pending.push(Msg::CommandDropped(kind)),
                    Err(LaneError::Closed) => {
                        if !transport_gone_logged {
                            transport_gone_logged = true;
                            tracing::warn!("transport gone; commands dropped");
                        }
                    }
                }
            }
        }
        if let Some(tx) = &io.video_control {
            let want = state.stage.control();
            tx.send_if_modified(|c| {
                let changed = *c != want;
                *c = want;
                changed
            });
        }
        if state.lifecycle == Lifecycle::ShuttingDown && goodbye_deadline.is_none() {
            goodbye_deadline = Some(Instant::now() + GOODBYE_TIMEOUT);
        }
        if publish || exit || state.lifecycle != Lifecycle::Running {
            publish = false;
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
            _ = control.tick() => {
                // Audio features are folded at the control rate, not at the analysis' publish
                // rate: the latest frame wins anyway (onsets and beats come as their own
                // messages, on time).
                if let Some(rx) = io.audio_frames.as_mut() {
                    match rx.has_changed() {
                        Ok(true) => pending.push(Msg::AudioFrame(*rx.borrow_and_update())),
                        Ok(false) => {}
                        Err(_) => io.audio_frames = None,
                    }
                }
                pending.push(Msg::Tick);
                if let Some(j) = taps.journal.as_mut() {
                    j.on_tick(&state, now());
                }
            }
            _ = frame.tick() => {
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
                io.video_changes.retain_mut(|(output, rx)| match rx.has_changed() {
                    Ok(true) => {
                        if let Some(seen) = *rx.borrow_and_update() {
                            let at = Instant::from_std(seen).saturating_duration_since(start);
                            pending.push(Msg::VideoChangeSeen { output: *output, at });
                        }
                        true
                    }
                    Ok(false) => true,
                    Err(_) => false,
                });
                publish = true;
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
    if let Some(j) = taps.journal.as_mut() {
        j.capture(&state, now());
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

/// Writes a saved look off the engine loop (a blocking task); a failure lands in the log.
fn save_look(state: &AppState, look: crate::core::look::Look) {
    let Some(dir) = state.settings.looks_dir.clone() else {
        tracing::warn!(look = %look.name, "no config folder: the look is kept until quit only");
        return;
    };
    tokio::task::spawn_blocking(
        move || match crate::config::looks::write_look(&dir, &look) {
            Ok(p) => tracing::info!(path = %p.display(), "look saved"),
            Err(e) => tracing::error!("look {} not saved: {e}", look.name),
        },
    );
}
