//! The MIDI edge: midir ports in and out, and the async router task.
//!
//! * A port thread owns every midir connection. It polls the port lists (hot-plug: new matching
//!   ports are opened, vanished ones dropped) and sends feedback bytes. Every client is opened
//!   and closed under [`client_lock`](crate::controls::midi::client_lock), which the clock-out
//!   thread shares.
//! * Each input callback parses bytes with its own [`MidiParser`] and `try_send`s the messages
//!   into one of two bounded channels: discrete messages (notes, programs, clock) and continuous
//!   ones (CC, pitch bend). The callback never blocks; a full channel drops the message and
//!   counts it ([`MidiStats`]). The discrete channel is drained first, so a flood of CCs cannot
//!   delay or starve a panic pad.
//! * The router task evaluates bindings ([`Router`]), sends discrete actions to the engine at
//!   once, coalesces continuous ones per binding and flushes them at most once per control
//!   period (`[engine] control_hz`, never the dashboard's frame; a move after a quiet spell at
//!   once), turns
//!   the published snapshot into feedback, and carries out learn mode: the engine's
//!   `LearnCmd` effects arrive on their own channel ([`MidiHandle::learn`]); a save writes the
//!   keymap on a blocking-pool thread (`spawn_blocking`), never on an async worker, and the
//!   answers go back as `Msg::Learn`.
//! * The router task also tracks input activity per port ([`ActivityTracker`]: counts, rate,
//!   last message, port opened/vanished as told by the port thread) and reports it to the
//!   engine at most every 100 ms, only when it changed. The callbacks stay as they were.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::controls::midi::activity::ActivityTracker;
use crate::controls::midi::binding::{Current, device_matches};
use crate::controls::midi::client_lock::Guarded;
use crate::controls::midi::config::MidiConfig;
use crate::controls::midi::feedback::{Feedback, FeedbackState};
use crate::controls::midi::learn::{LearnCmd, LearnMsg, LearnedControl, write_binding};
use crate::controls::midi::parse::{MidiMsg, MidiParser};
use crate::controls::midi::router::Router;
use crate::core::action::{Action, ActionSource};
use crate::core::msg::Msg;
use crate::core::snapshot::UiSnapshot;

/// Capacity of the continuous (CC, pitch bend) channel from the callbacks.
pub(crate) const CONTINUOUS_CAPACITY: usize = 4096;
/// Capacity of the discrete (notes, programs, clock) channel from the callbacks.
pub(crate) const DISCRETE_CAPACITY: usize = 1024;
/// Capacity of the port opened/vanished channel from the port thread.
pub(crate) const PORT_EVENT_CAPACITY: usize = 64;
/// How often the port lists are polled for hot-plugged devices.
pub(crate) const PORT_POLL: Duration = Duration::from_millis(500);
/// Client-name prefix of our own ports (never connected to ourselves).
pub(crate) const CLIENT_PREFIX: &str = "scope-deck";

/// One parsed message with where and when it arrived.
#[derive(Debug, Clone)]
pub(crate) struct RawEvent {
    /// Input-port name.
    pub(crate) port: Arc<str>,
    /// The message.
    pub(crate) msg: MidiMsg,
    /// Arrival time.
    pub(crate) at: Instant,
}

/// Counters shared by the callbacks and the router.
#[derive(Debug, Default)]
pub struct MidiStats {
    /// Messages parsed in the callbacks.
    pub received: AtomicU64,
    /// Continuous messages dropped because the channel was full.
    pub dropped_continuous: AtomicU64,
    /// Discrete messages dropped because the channel was full (should stay 0).
    pub dropped_discrete: AtomicU64,
    /// Actions sent to the engine.
    pub(crate) actions_sent: AtomicU64,
    /// Continuous outputs merged away by coalescing.
    pub coalesced: AtomicU64,
    /// Input ports currently connected (updated at every port poll).
    pub open_inputs: AtomicU64,
    /// Output ports currently connected (updated at every port poll).
    pub(crate) open_outputs: AtomicU64,
}

/// Where learned bindings go.
#[derive(Debug, Clone, Default)]
pub struct LearnTarget {
    /// The user's keymap file (`<config dir>/keymaps/<id>.toml`); `None` disables learn.
    pub path: Option<PathBuf>,
    /// Text to start from when the user has no such file yet (the built-in keymap).
    pub seed: Option<String>,
}

/// Handle to the running MIDI edge.
pub struct MidiHandle {
    /// Counters.
    pub stats: Arc<MidiStats>,
    /// The router task (ends when cancelled or the engine's input channel closes).
    pub(crate) task: tokio::task::JoinHandle<()>,
    /// Senders for injecting events as if they came from a port (tests, tools).
    pub inject: Injector,
    /// Where the engine sends learn mode's commands (`Effect::MidiLearn`; `try_send`, never
    /// awaited).
    pub learn: mpsc::Sender<LearnCmd>,
}

/// Capacity of the learn command channel (a performer's presses: a few at most).
pub(crate) const LEARN_CAPACITY: usize = 16;

/// Sends events into the router as the callbacks do (same channels, same drop policy).
#[derive(Clone)]
pub struct Injector {
    discrete: mpsc::Sender<RawEvent>,
    continuous: mpsc::Sender<RawEvent>,
    ports: mpsc::Sender<(Arc<str>, bool)>,
    stats: Arc<MidiStats>,
}

impl Injector {
    /// Queues `msg` from `port` without blocking; returns false when it was dropped.
    pub fn send(&self, port: &Arc<str>, msg: MidiMsg) -> bool {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let ev = RawEvent {
            port: port.clone(),
            msg,
            at: Instant::now(),
        };
        if msg.is_discrete() {
            let ok = self.discrete.try_send(ev).is_ok();
            if !ok {
                self.stats.dropped_discrete.fetch_add(1, Ordering::Relaxed);
            }
            ok
        } else {
            let ok = self.continuous.try_send(ev).is_ok();
            if !ok {
                self.stats
                    .dropped_continuous
                    .fetch_add(1, Ordering::Relaxed);
            }
            ok
        }
    }

    /// Tells the router that input port `port` was opened (`true`) or vanished (`false`), as
    /// the port thread does on hot-plug. Never blocks; false when the notice was dropped.
    pub(crate) fn port(&self, port: &Arc<str>, connected: bool) -> bool {
        self.ports.try_send((port.clone(), connected)).is_ok()
    }
}

/// Options for [`spawn`].
pub struct MidiOptions {
    /// Validated MIDI configuration from the active keymap.
    pub config: MidiConfig,
    /// Coalescing period: the engine's control period (`1 / [engine] control_hz`). Continuous
    /// values are flushed at most once per period (at once after a quiet spell), so MIDI
    /// latency does not depend on `ui.fps` and an idle router does not wake for it.
    pub tick: Duration,
    /// Learn-mode file.
    pub learn: LearnTarget,
    /// Open real ports (false: only the injector feeds the router).
    pub open_ports: bool,
    /// Why learn mode cannot capture anything (no ports will ever be opened); it then answers
    /// at once instead of waiting forever.
    pub learn_unavailable: Option<String>,
}

/// Starts the MIDI edge: the port thread (when `open_ports`) and the router task.
pub fn spawn(
    opts: MidiOptions,
    inputs: mpsc::Sender<Msg>,
    snapshots: watch::Receiver<Arc<UiSnapshot>>,
    cancel: CancellationToken,
) -> MidiHandle {
    let stats = Arc::new(MidiStats::default());
    let (dtx, drx) = mpsc::channel(DISCRETE_CAPACITY);
    let (ctx, crx) = mpsc::channel(CONTINUOUS_CAPACITY);
    let (ptx, prx) = mpsc::channel(PORT_EVENT_CAPACITY);
    let inject = Injector {
        discrete: dtx,
        continuous: ctx,
        ports: ptx,
        stats: stats.clone(),
    };
    let (fb_tx, fb_rx) = std::sync::mpsc::sync_channel::<(usize, MidiMsg)>(1024);
    let (learn_tx, learn_rx) = mpsc::channel(LEARN_CAPACITY);
    if opts.open_ports {
        let inj = inject.clone();
        let cfg = opts.config.clone();
        let spawned = std::thread::Builder::new()
            .name("midi-ports".into())
            .spawn(move || port_thread(cfg, inj, fb_rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the MIDI port thread: {e}");
        }
    }
    let task = tokio::spawn(router_task(
        opts,
        Receivers {
            discrete: drx,
            continuous: crx,
            ports: prx,
            learn: learn_rx,
        },
        inputs,
        snapshots,
        fb_tx,
        stats.clone(),
        cancel,
    ));
    MidiHandle {
        stats,
        task,
        inject,
        learn: learn_tx,
    }
}

fn current_of(snap: &UiSnapshot, key: &str) -> Option<Current> {
    let row = snap.params.iter().find(|r| r.key == key)?;
    Some(Current {
        value: row.value.as_f64()?,
        range: row.range,
        by_midi: row.source == ActionSource::Midi,
    })
}

/// How often the router does its housekeeping (MIDI clock timeout, activity reports).
const HOUSEKEEPING: Duration = Duration::from_millis(25);

/// Sleeps until `at`, or forever when nothing is due.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// What the router task reads from the callbacks and the port thread.
struct Receivers {
    discrete: mpsc::Receiver<RawEvent>,
    continuous: mpsc::Receiver<RawEvent>,
    ports: mpsc::Receiver<(Arc<str>, bool)>,
    learn: mpsc::Receiver<LearnCmd>,
}

/// A learned binding being written: the pair and the blocking write's result.
type Saving = (
    LearnedControl,
    crate::core::action::Action,
    tokio::task::JoinHandle<Result<crate::controls::keymap::Keymap, String>>,
);

/// Starts writing a learned binding on the blocking pool (file I/O never runs on an async
/// worker); None when there is nowhere to write it.
fn start_save(
    target: &LearnTarget,
    control: LearnedControl,
    action: crate::core::action::Action,
) -> Result<Saving, String> {
    let path = target
        .path
        .clone()
        .ok_or_else(|| "no config directory to write the keymap into".to_string())?;
    let seed = target.seed.clone();
    let (c, a) = (control.clone(), action.clone());
    let write = tokio::task::spawn_blocking(move || write_binding(&path, seed.as_deref(), &c, &a));
    Ok((control, action, write))
}

#[allow(clippy::too_many_arguments)]
async fn router_task(
    opts: MidiOptions,
    rx: Receivers,
    inputs: mpsc::Sender<Msg>,
    mut snapshots: watch::Receiver<Arc<UiSnapshot>>,
    feedback_out: std::sync::mpsc::SyncSender<(usize, MidiMsg)>,
    stats: Arc<MidiStats>,
    cancel: CancellationToken,
) {
    let Receivers {
        mut discrete,
        mut continuous,
        mut ports,
        learn: mut learn_rx,
    } = rx;
    let mut learn_open = true;
    // One save at a time (they append to the same file), the rest in order.
    let mut saving: Option<Saving> = None;
    let mut queued_saves: std::collections::VecDeque<(LearnedControl, Action)> =
        std::collections::VecDeque::new();
    let start = Instant::now();
    // Only a session that opens input ports announces "no MIDI input" while nothing is there.
    let mut activity = ActivityTracker::new(opts.open_ports && !opts.config.inputs.is_empty());
    let mut ports_open = true;
    let mut router = Router::new(&opts.config);
    let mut feedback: Vec<Feedback> = opts.config.feedback.clone();
    let mut fb_state = FeedbackState::new(feedback.len());
    // Leading-edge throttle: a move after a quiet spell goes out at once; during a burst the
    // router flushes at most once per control period, latest wins per binding.
    let flush_period = opts.tick.max(Duration::from_millis(1));
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut last_flush: Option<tokio::time::Instant> = None;
    // Housekeeping (MIDI clock timeout, activity reports ≤ 10/s) on its own slow clock.
    let mut ticker = tokio::time::interval(HOUSEKEEPING);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut snap = snapshots.borrow().clone();
    let secs = |at: Instant| at.saturating_duration_since(start).as_secs_f64();

    macro_rules! send_all {
        ($msgs:expr) => {
            for m in $msgs {
                if inputs.send(m).await.is_err() {
                    return;
                }
                stats.actions_sent.fetch_add(1, Ordering::Relaxed);
            }
        };
    }

    // Coalesced values go out at once if the last flush is a flush period ago, else at the
    // next flush tick (one rule for both lanes).
    macro_rules! flush_or_schedule {
        () => {
            if flush_at.is_none() && router.has_pending() {
                let now = tokio::time::Instant::now();
                let due = last_flush.map_or(now, |t| t + flush_period);
                if due <= now {
                    last_flush = Some(now);
                    let out = router.flush();
                    stats
                        .coalesced
                        .store(router.stats.coalesced, Ordering::Relaxed);
                    send_all!(out);
                } else {
                    flush_at = Some(due);
                }
            }
        };
    }

    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            // The engine's learn commands before input: an armed capture sees the next touch.
            cmd = learn_rx.recv(), if learn_open => match cmd {
                None => learn_open = false,
                Some(LearnCmd::Arm) => match &opts.learn_unavailable {
                    Some(why) => send_all!([Msg::Learn(LearnMsg::Failed { message: why.clone() })]),
                    None => router.set_learning(true),
                },
                Some(LearnCmd::Disarm) => router.set_learning(false),
                Some(LearnCmd::Save { control, target }) => {
                    if saving.is_some() {
                        queued_saves.push_back((control, target));
                    } else {
                        match start_save(&opts.learn, control, target) {
                            Ok(s) => saving = Some(s),
                            Err(message) => send_all!([Msg::Learn(LearnMsg::Failed { message })]),
                        }
                    }
                }
            },
            ev = discrete.recv() => {
                let Some(ev) = ev else { return };
                activity.on_message(&ev.port, &ev.msg, ev.at.saturating_duration_since(start));
                let out = router.on_message(&ev.port, &ev.msg, secs(ev.at), |k| current_of(&snap, k));
                send_all!(out);
                flush_or_schedule!();
            }
            ev = continuous.recv() => {
                let Some(ev) = ev else { return };
                activity.on_message(&ev.port, &ev.msg, ev.at.saturating_duration_since(start));
                let mut out = router.on_message(&ev.port, &ev.msg, secs(ev.at), |k| current_of(&snap, k));
                // Drain what is queued (bounded per round so discrete messages never wait long).
                for _ in 0..256 {
                    if !discrete.is_empty() {
                        break;
                    }
                    match continuous.try_recv() {
                        Ok(ev) => {
                            activity.on_message(&ev.port, &ev.msg, ev.at.saturating_duration_since(start));
                            out.extend(router.on_message(&ev.port, &ev.msg, secs(ev.at), |k| current_of(&snap, k)));
                        }
                        Err(_) => break,
                    }
                }
                send_all!(out);
                flush_or_schedule!();
            }
            _ = sleep_until_some(flush_at) => {
                flush_at = None;
                last_flush = Some(tokio::time::Instant::now());
                let out = router.flush();
                stats.coalesced.store(router.stats.coalesced, Ordering::Relaxed);
                send_all!(out);
            }
            _ = ticker.tick() => {
                if let Some(m) = router.poll(secs(Instant::now())) {
                    send_all!([m]);
                }
                if let Some(report) = activity.report(start.elapsed()) {
                    if inputs.send(Msg::MidiActivity(report)).await.is_err() {
                        return;
                    }
                }
            }
            ev = ports.recv(), if ports_open => match ev {
                Some((port, connected)) => activity.on_port(&port, connected, start.elapsed()),
                None => ports_open = false,
            },
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return;
                }
                snap = snapshots.borrow_and_update().clone();
                for (i, msg) in fb_state.update(&feedback, &snap) {
                    let _ = feedback_out.try_send((i, msg));
                }
            }
            written = async {
                match saving.as_mut() {
                    Some((_, _, write)) => write.await,
                    None => std::future::pending().await,
                }
            }, if saving.is_some() => {
                let Some((control, target, _)) = saving.take() else { continue };
                let answer = match written {
                    Ok(Ok(km)) => {
                        router.reload(&km.midi);
                        feedback = km.midi.feedback.clone();
                        fb_state = FeedbackState::new(feedback.len());
                        let file = opts.learn.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                        tracing::info!(file = %file, "learned {} → {}", control.label(), target.describe());
                        LearnMsg::Saved { message: format!("{} → {} saved in {file}", control.label(), target.describe()) }
                    }
                    Ok(Err(message)) => LearnMsg::Failed { message },
                    Err(e) => LearnMsg::Failed { message: format!("writing the keymap failed: {e}") },
                };
                send_all!([Msg::Learn(answer)]);
                while let Some((control, target)) = queued_saves.pop_front() {
                    match start_save(&opts.learn, control, target) {
                        Ok(s) => {
                            saving = Some(s);
                            break;
                        }
                        Err(message) => send_all!([Msg::Learn(LearnMsg::Failed { message })]),
                    }
                }
            }
        }
    }
}

/// Opens matching ports, reconnects on hot-plug and sends feedback. Runs until the router task
/// drops the feedback sender.
fn port_thread(
    cfg: MidiConfig,
    inject: Injector,
    feedback: std::sync::mpsc::Receiver<(usize, MidiMsg)>,
) {
    // Every midir object is `Guarded`: opened and closed under the process-wide client lock
    // (the clock-out thread opens and closes clients too; see `client_lock`).
    let mut inputs: HashMap<String, Guarded<midir::MidiInputConnection<()>>> = HashMap::new();
    let mut outputs: HashMap<String, Guarded<midir::MidiOutputConnection>> = HashMap::new();
    // Last message per feedback entry, resent when a port (re)appears.
    let mut last: HashMap<usize, MidiMsg> = HashMap::new();
    let mut next_poll = Instant::now();
    // One client each for listing ports, kept for the session (opening a client per poll would
    // churn the JACK graph / ALSA sequencer every half second).
    let mut probe_in: Option<Guarded<midir::MidiInput>> = None;
    let mut probe_out: Option<Guarded<midir::MidiOutput>> = None;
    let mut ports_ok = true;
    let want_in = |name: &str| {
        !name.contains(CLIENT_PREFIX)
            && (cfg.inputs.iter().any(|p| device_matches(p, name))
                || cfg
                    .clock
                    .as_deref()
                    .is_some_and(|p| device_matches(p, name)))
    };
    let want_out = |name: &str| {
        !name.contains(CLIENT_PREFIX)
            && cfg.feedback.iter().any(|f| device_matches(&f.device, name))
    };
    loop {
        if ports_ok && Instant::now() >= next_poll {
            next_poll = Instant::now() + PORT_POLL;
            if probe_in.is_none() {
                match Guarded::open(|| midir::MidiInput::new(&format!("{CLIENT_PREFIX}-scan"))) {
                    Ok(p) => probe_in = Some(p),
                    Err(e) => {
                        tracing::error!("MIDI unavailable: {e}; MIDI is off for this session");
                        ports_ok = false;
                    }
                }
            }
            let scanned = match &probe_in {
                Some(probe) => scan_inputs(probe, &mut inputs, &want_in, &inject),
                None => Ok(()),
            };
            if let Err(e) = scanned {
                // The backend itself failed (no server, no sequencer): retrying would only
                // repeat the backend's own error output, so stop polling.
                tracing::error!("MIDI unavailable: {e}; MIDI is off for this session");
                ports_ok = false;
            }
            if ports_ok && !cfg.feedback.is_empty() {
                if probe_out.is_none() {
                    probe_out = Guarded::open(|| {
                        midir::MidiOutput::new(&format!("{CLIENT_PREFIX}-scan-out"))
                    })
                    .ok();
                }
                let fresh = match &probe_out {
                    Some(probe) => scan_outputs(probe, &mut outputs, &want_out),
                    None => Vec::new(),
                };
                for name in fresh {
                    for (i, msg) in &last {
                        if cfg
                            .feedback
                            .get(*i)
                            .is_some_and(|f| device_matches(&f.device, &name))
                        {
                            if let Some(conn) = outputs.get_mut(&name) {
                                let _ = conn.send(&msg.to_bytes());
                            }
                        }
                    }
                }
            }
        }
        inject
            .stats
            .open_inputs
            .store(inputs.len() as u64, Ordering::Relaxed);
        inject
            .stats
            .open_outputs
            .store(outputs.len() as u64, Ordering::Relaxed);
        let wait = if ports_ok {
            next_poll.saturating_duration_since(Instant::now())
        } else {
            Duration::from_secs(3600)
        };
        match feedback.recv_timeout(wait) {
            Ok((i, msg)) => {
                last.insert(i, msg);
                let Some(f) = cfg.feedback.get(i) else {
                    continue;
                };
                let bytes = msg.to_bytes();
                let mut gone = Vec::new();
                for (name, conn) in outputs.iter_mut() {
                    if device_matches(&f.device, name) && conn.send(&bytes).is_err() {
                        gone.push(name.clone());
                    }
                }
                for g in gone {
                    outputs.remove(&g);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // Leaving: put out every light we lit.
                for i in last.keys() {
                    let Some(f) = cfg.feedback.get(*i) else {
                        continue;
                    };
                    let bytes = f.message(f.off).to_bytes();
                    for (name, conn) in outputs.iter_mut() {
                        if device_matches(&f.device, name) {
                            let _ = conn.send(&bytes);
                        }
                    }
                }
                // Backends such as JACK queue output for their next process cycle and drop it
                // when the port closes; there is no flush, so give them a few cycles.
                if !last.is_empty() && !outputs.is_empty() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                return;
            }
        }
    }
}

/// Why no MIDI backend can be used here, checked without touching the backend (ALSA writes its
/// own errors to the terminal on every failed open, which would scribble over the TUI).
pub(crate) fn backend_unavailable() -> Option<String> {
    #[cfg(all(target_os = "linux", not(feature = "jack")))]
    {
        let seq = std::path::Path::new("/dev/snd/seq");
        if !seq.exists() {
            return Some(
                "no ALSA sequencer (/dev/snd/seq is missing: is the snd-seq kernel module loaded?); MIDI is off"
                    .into(),
            );
        }
    }
    None
}

fn scan_inputs(
    probe: &midir::MidiInput,
    conns: &mut HashMap<String, Guarded<midir::MidiInputConnection<()>>>,
    want: &dyn Fn(&str) -> bool,
    inject: &Injector,
) -> Result<(), String> {
    let ports = probe.ports();
    let names: Vec<(String, midir::MidiInputPort)> = ports
        .into_iter()
        .filter_map(|p| probe.port_name(&p).ok().map(|n| (n, p)))
        .collect();
    conns.retain(|name, _| {
        let keep = names.iter().any(|(n, _)| n == name);
        if !keep {
            tracing::info!(port = %name, "MIDI input gone");
            inject.port(&Arc::from(name.as_str()), false);
        }
        keep
    });
    for (name, port) in names {
        if conns.contains_key(&name) || !want(&name) {
            continue;
        }
        let label: Arc<str> = Arc::from(name.as_str());
        let inj = inject.clone();
        let mut parser = MidiParser::new();
        let mut backend_failed = false;
        // The callback runs on the backend's thread: it parses and `try_send`s, nothing else
        // (never the client lock, never a blocking call).
        let opened = Guarded::open(|| {
            let mut input = midir::MidiInput::new(&format!("{CLIENT_PREFIX}-in")).map_err(|e| {
                backend_failed = true;
                e.to_string()
            })?;
            input.ignore(midir::Ignore::None);
            input
                .connect(
                    &port,
                    "in",
                    move |_stamp, bytes, _| {
                        parser.feed(bytes, |m| {
                            inj.send(&label, m);
                        })
                    },
                    (),
                )
                .map_err(|e| e.to_string())
        });
        match opened {
            Ok(c) => {
                tracing::info!(port = %name, "MIDI input connected");
                inject.port(&Arc::from(name.as_str()), true);
                conns.insert(name, c);
            }
            Err(e) if backend_failed => return Err(e),
            Err(e) => tracing::warn!(port = %name, "cannot open MIDI input: {e}"),
        }
    }
    Ok(())
}

fn scan_outputs(
    probe: &midir::MidiOutput,
    conns: &mut HashMap<String, Guarded<midir::MidiOutputConnection>>,
    want: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let names: Vec<(String, midir::MidiOutputPort)> = probe
        .ports()
        .into_iter()
        .filter_map(|p| probe.port_name(&p).ok().map(|n| (n, p)))
        .collect();
    conns.retain(|name, _| names.iter().any(|(n, _)| n == name));
    let mut fresh = Vec::new();
    for (name, port) in names {
        if conns.contains_key(&name) || !want(&name) {
            continue;
        }
        let opened = Guarded::open(|| {
            midir::MidiOutput::new(&format!("{CLIENT_PREFIX}-out"))
                .map_err(|e| e.to_string())?
                .connect(&port, "feedback")
                .map_err(|e| e.to_string())
        });
        match opened {
            Ok(c) => {
                tracing::info!(port = %name, "MIDI output connected");
                conns.insert(name.clone(), c);
                fresh.push(name);
            }
            Err(e) => tracing::warn!(port = %name, "cannot open MIDI output: {e}"),
        }
    }
    fresh
}

/// Starts the MIDI edge for a loaded configuration (nothing when the active keymap declares no
/// MIDI). Learned bindings go to `<config dir>/keymaps/<keymap id>.toml`.
pub(crate) fn spawn_for(
    loaded: &crate::config::LoadedConfig,
    tick: Duration,
    inputs: &mpsc::Sender<Msg>,
    snapshots: &watch::Receiver<Arc<UiSnapshot>>,
    cancel: &CancellationToken,
) -> Option<MidiHandle> {
    let km = &loaded.keymap;
    let path = loaded
        .dir
        .as_ref()
        .map(|d| d.join("keymaps").join(format!("{}.toml", km.id)));
    let seed = crate::config::EMBEDDED_KEYMAPS
        .iter()
        .find(|(stem, _)| *stem == km.id)
        .map(|(_, t)| (*t).to_string());
    // Ports are only opened when the keymap asks for MIDI, so a keyboard-only session never
    // touches the MIDI backend. Learn mode then explains how to switch MIDI on.
    let config = km.midi.clone();
    let unavailable = backend_unavailable();
    if let (false, Some(why)) = (config.is_empty(), &unavailable) {
        tracing::error!("{why}");
    }
    let open_ports = !config.is_empty() && unavailable.is_none();
    let learn_unavailable = if open_ports && !config.inputs.is_empty() {
        None
    } else {
        Some(unavailable.unwrap_or_else(|| {
            format!(
                "no MIDI input is open: add `[midi_in]` with `devices = [\"*\"]` to keymap `{}`",
                km.id
            )
        }))
    };
    Some(spawn(
        MidiOptions {
            config,
            tick,
            learn: LearnTarget { path, seed },
            open_ports,
            learn_unavailable,
        },
        inputs.clone(),
        snapshots.clone(),
        cancel.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state::AppState;

    #[test]
    fn full_channels_drop_and_count_without_blocking() {
        let stats = Arc::new(MidiStats::default());
        let (dtx, _drx) = mpsc::channel(2);
        let (ctx, _crx) = mpsc::channel(3);
        let (ptx, _prx) = mpsc::channel(1);
        let inj = Injector {
            discrete: dtx,
            continuous: ctx,
            ports: ptx,
            stats: stats.clone(),
        };
        let port: Arc<str> = Arc::from("p");
        let cc = MidiMsg::Cc {
            channel: 0,
            cc: 1,
            value: 2,
        };
        let sent: Vec<bool> = (0..5).map(|_| inj.send(&port, cc)).collect();
        assert_eq!(sent, vec![true, true, true, false, false]);
        // Notes have their own channel: a CC flood does not crowd them out.
        let note = MidiMsg::NoteOn {
            channel: 0,
            note: 36,
            velocity: 1,
        };
        assert!(inj.send(&port, note) && inj.send(&port, note));
        assert!(!inj.send(&port, note));
        assert_eq!(stats.received.load(Ordering::Relaxed), 8);
        assert_eq!(stats.dropped_continuous.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dropped_discrete.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn learn_answers_at_once_when_no_port_can_be_opened() {
        let mut state = AppState::new(Default::default());
        let (_snaps, snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
        let (tx, mut rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let h = spawn(
            MidiOptions {
                config: MidiConfig::default(),
                tick: Duration::from_millis(10),
                learn: LearnTarget::default(),
                open_ports: false,
                learn_unavailable: Some("no MIDI input is open".into()),
            },
            tx,
            snap_rx,
            cancel.clone(),
        );
        let fx = crate::core::update::update(&mut state, Msg::key(Action::Learn), Duration::ZERO);
        for e in fx {
            if let crate::core::effect::Effect::MidiLearn(cmd) = e {
                h.learn.try_send(cmd).unwrap();
            }
        }
        let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        match &msg {
            Msg::Learn(LearnMsg::Failed { message }) => {
                assert!(message.contains("no MIDI input"));
            }
            other => panic!("{other:?}"),
        }
        crate::core::update::update(&mut state, msg, Duration::ZERO);
        assert_eq!(
            state.controls.learn,
            crate::controls::midi::learn::LearnStage::Off
        );
        cancel.cancel();
    }

    #[tokio::test]
    async fn activity_reaches_the_engine_throttled_and_a_vanished_port_is_reported() {
        let state = AppState::new(Default::default());
        let (_snaps, snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
        let (tx, mut rx) = mpsc::channel(4096);
        let cancel = CancellationToken::new();
        let h = spawn(
            MidiOptions {
                config: MidiConfig::default(),
                tick: Duration::from_millis(5),
                learn: LearnTarget::default(),
                open_ports: false,
                learn_unavailable: None,
            },
            tx,
            snap_rx,
            cancel.clone(),
        );
        let port: Arc<str> = Arc::from("nanoKONTROL2 MIDI 1 24:0");
        assert!(h.inject.port(&port, true));
        for v in 0..200u8 {
            h.inject.send(
                &port,
                MidiMsg::Cc {
                    channel: 0,
                    cc: 16,
                    value: v % 128,
                },
            );
        }
        // Reports until every CC is counted (unbound CCs send no actions).
        let mut reports = 0;
        let last = loop {
            let d = next_activity(&mut rx).await;
            reports += 1;
            if d.first().is_some_and(|d| d.count == 200) {
                break d;
            }
            assert!(reports < 50, "{d:?}");
        };
        assert_eq!(last.len(), 1);
        assert!(last[0].connected);
        assert_eq!(
            last[0].last,
            Some(MidiMsg::Cc {
                channel: 0,
                cc: 16,
                value: 199 % 128
            })
        );
        assert!(h.inject.port(&port, false));
        let gone = loop {
            let d = next_activity(&mut rx).await;
            if !d[0].connected {
                break d;
            }
        };
        assert_eq!(gone[0].count, 200);
        cancel.cancel();
    }

    async fn next_activity(
        rx: &mut mpsc::Receiver<Msg>,
    ) -> Vec<crate::controls::midi::activity::DeviceActivity> {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Msg::MidiActivity(d))) => d,
            other => panic!("{other:?}"),
        }
    }
}
