//! Ableton Link (`--features link`; the official library through `rusty_link`, GPL-2.0-or-later):
//! joins the session on the local network, reports its tempo, beat position (quantum = the bar
//! length), peers and transport to the engine, and carries out tap/nudge/start/stop for it.
//!
//! Runs on its own thread: every [`REPORT_EVERY`] it captures the app session state and reads
//! Link's clock and the engine's back to back, so the report's beat is placed in engine time
//! without assuming the two clocks share a base.
//!
//! Alone in its session (no peers), it carries the deck's own grid (detected, tapped or MIDI
//! clock: whatever leads) — tempo and bar phase. Link merges sessions by age, so when the deck's
//! session is the older one an app that joins later (a VJ tool, DJ software opened after the deck)
//! adopts its timeline: it starts in time with the music instead of at `link_bpm`. With peers
//! the deck never moves the session on its own; only tap, nudge and start/stop do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusty_link::{AblLink, SessionState};
use tokio::sync::mpsc;

use crate::core::msg::Msg;
use crate::core::tempo::{Grid, LinkCmd, LinkReport};
use crate::edge_thread::EdgeThread;
use crate::tempo::SharedGrid;
use crate::tempo::config::TempoConfig;

/// How often the session is read and reported (several times a beat at any tempo).
pub const REPORT_EVERY: Duration = Duration::from_millis(20);
/// Commands queued for the Link thread at most.
const COMMANDS: usize = 16;

/// The running Link thread.
pub struct LinkHandle {
    thread: EdgeThread,
}

impl LinkHandle {
    /// Leaves the session and waits up to `deadline`.
    pub fn stop_within(self, deadline: Duration) -> bool {
        self.thread.stop_within(deadline)
    }
}

/// Joins the Link session and starts reporting to the engine.
pub fn spawn(
    cfg: &TempoConfig,
    beats_per_bar: u32,
    grid: Arc<SharedGrid>,
    inputs: mpsc::Sender<Msg>,
) -> std::io::Result<(LinkHandle, std::sync::mpsc::SyncSender<LinkCmd>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(COMMANDS);
    let bpm = cfg.link_bpm;
    let quantum = f64::from(beats_per_bar.max(1));
    let thread = EdgeThread::spawn("link", move |stop| {
        run(bpm, quantum, &grid, &inputs, &rx, stop)
    })?;
    Ok((LinkHandle { thread }, tx))
}

fn run(
    bpm: f64,
    quantum: f64,
    grid: &SharedGrid,
    inputs: &mpsc::Sender<Msg>,
    commands: &std::sync::mpsc::Receiver<LinkCmd>,
    stop: &AtomicBool,
) {
    let link = AblLink::new(bpm);
    link.enable_start_stop_sync(true);
    link.enable(true);
    tracing::info!(bpm, quantum, "Link enabled");
    let mut state = SessionState::new();
    let mut dropped = 0u64;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(cmd) = commands.try_recv() {
            link.capture_app_session_state(&mut state);
            let now = link.clock_micros();
            match cmd {
                LinkCmd::SetTempo { bpm } => state.set_tempo(bpm, now),
                LinkCmd::SetPlaying { playing } => state.set_is_playing(playing, now),
            }
            link.commit_app_session_state(&state);
        }
        link.capture_app_session_state(&mut state);
        // Both clocks read back to back: the beat at Link time `t` is the beat at engine `at`.
        let t = link.clock_micros();
        let at = grid.now();
        if link.num_peers() == 0 {
            if let Some(g) = grid.try_read() {
                if carry_grid(&mut state, &g, t, at, quantum) {
                    link.commit_app_session_state(&state);
                }
            }
        }
        let report = LinkReport {
            at,
            beat: state.beat_at_time(t, quantum),
            bpm: state.tempo(),
            peers: link.num_peers().min(u64::from(u32::MAX)) as u32,
            playing: state.is_playing(),
        };
        if inputs.try_send(Msg::Link(report)).is_err() {
            dropped += 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "engine busy; Link reports dropped");
            }
        }
        std::thread::sleep(REPORT_EVERY);
    }
    link.enable(false);
    tracing::info!("Link disabled");
}

/// A session tempo this close to the grid's is left alone (BPM).
const CARRY_TEMPO_EPS: f64 = 0.005;
/// A session phase this close to the grid's is left alone (seconds).
const CARRY_PHASE_EPS: f64 = 0.002;

/// Moves a session the deck is alone in onto grid `g` (Link time `t_us` is engine time `at`):
/// its tempo, and its phase in a bar of `quantum` beats so that the session's downbeats are the
/// grid's. Returns whether `state` changed (then it must be committed). A grid without a tempo
/// leaves the session as it is.
fn carry_grid(state: &mut SessionState, g: &Grid, t_us: i64, at: Duration, quantum: f64) -> bool {
    let Some(beat) = g.beat_at(at) else {
        return false;
    };
    if !(20.0..=999.0).contains(&g.bpm) {
        return false;
    }
    // Where `at` falls in the grid's bar, in beats from the bar's downbeat.
    let in_bar = (beat - g.count as f64 + f64::from(g.in_bar)).rem_euclid(quantum);
    let mut changed = false;
    if (state.tempo() - g.bpm).abs() > CARRY_TEMPO_EPS {
        state.set_tempo(g.bpm, t_us);
        changed = true;
    }
    let off = (state.phase_at_time(t_us, quantum) - in_bar + quantum / 2.0).rem_euclid(quantum)
        - quantum / 2.0;
    if changed || (off * 60.0 / g.bpm).abs() > CARRY_PHASE_EPS {
        // Alone, Link maps this beat to this time exactly (with peers it would wait for the
        // phase instead of jumping, so a peer arriving meanwhile is never disrupted).
        state.request_beat_at_time(in_bar, t_us, quantum);
        changed = true;
    }
    changed
}
