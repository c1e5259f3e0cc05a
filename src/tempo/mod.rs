//! The tempo edges: the arbitrated beat grid shared with the threads that keep time by it (MIDI
//! clock out, Link), the `[tempo]` / `[midi_out]` config, and Link itself (`link` builds).
//!
//! The engine publishes the grid after every batch it folds; readers never block it: the grid is
//! a seqlock of atomics (one writer, wait-free for the writer, readers retry a torn read).

pub mod config;
#[cfg(feature = "link")]
pub mod link;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use crate::core::tempo::Grid;

/// The beat grid as last published by the engine, with the engine's time base.
#[derive(Debug)]
pub struct SharedGrid {
    epoch: Instant,
    seq: AtomicU64,
    at_ns: AtomicU64,
    count: AtomicU64,
    in_bar: AtomicU32,
    bpm: AtomicU64,
    playing: AtomicBool,
}

impl SharedGrid {
    /// An empty grid whose engine time zero is `epoch` (the engine runs on the same epoch).
    pub fn new(epoch: Instant) -> Self {
        SharedGrid {
            epoch,
            seq: AtomicU64::new(0),
            at_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
            in_bar: AtomicU32::new(0),
            bpm: AtomicU64::new(0f64.to_bits()),
            playing: AtomicBool::new(false),
        }
    }

    /// Engine time now.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Publishes `g` (one writer: the engine task).
    pub fn publish(&self, g: &Grid) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.at_ns.store(
            g.at.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
        self.count.store(g.count, Ordering::Relaxed);
        self.in_bar.store(g.in_bar, Ordering::Relaxed);
        self.bpm.store(g.bpm.to_bits(), Ordering::Relaxed);
        self.playing.store(g.playing, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The latest grid (never blocks; retries while the writer is mid-update).
    #[cfg(test)]
    pub(crate) fn read(&self) -> Grid {
        loop {
            if let Some(g) = self.try_read() {
                return g;
            }
            std::hint::spin_loop();
        }
    }

    /// The latest grid, or `None` when the writer is mid-update. A real-time reader (the MIDI
    /// clock thread) must not spin on this: the writer is a normal-priority task that a
    /// real-time spinner can keep off its core (priority inversion); it keeps the grid it last
    /// read instead.
    pub(crate) fn try_read(&self) -> Option<Grid> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 % 2 == 1 {
            return None;
        }
        let g = Grid {
            at: Duration::from_nanos(self.at_ns.load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
            in_bar: self.in_bar.load(Ordering::Relaxed),
            bpm: f64::from_bits(self.bpm.load(Ordering::Relaxed)),
            playing: self.playing.load(Ordering::Relaxed),
        };
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == s1).then_some(g)
    }
}

/// What the engine needs from the tempo edges (all optional: tests and tools run without).
#[derive(Debug, Default, Clone)]
pub struct TempoIo {
    /// Engine time zero shared with the edges (`None`: the engine picks its own).
    pub(crate) epoch: Option<Instant>,
    /// Where the engine publishes the arbitrated grid.
    pub(crate) grid: Option<std::sync::Arc<SharedGrid>>,
    /// Commands for the Link edge (tempo, start/stop).
    pub(crate) link: Option<std::sync::mpsc::SyncSender<crate::core::tempo::LinkCmd>>,
}

/// The running tempo edges (MIDI clock out, Link).
#[derive(Default)]
pub(crate) struct TempoEdges {
    clock_out: Option<crate::controls::midi::clock_out::ClockOutHandle>,
    #[cfg(feature = "link")]
    link: Option<link::LinkHandle>,
}

impl TempoEdges {
    /// Stops every edge (a running MIDI clock sends Stop first); names those that did not stop.
    pub(crate) fn stop(self, deadline: Duration) -> Vec<&'static str> {
        let mut stuck = Vec::new();
        if let Some(c) = self.clock_out {
            if !c.stop_within(deadline) {
                stuck.push("midi clock out");
            }
        }
        #[cfg(feature = "link")]
        if let Some(l) = self.link {
            if !l.stop_within(deadline) {
                stuck.push("link");
            }
        }
        stuck
    }
}

/// Starts what `[midi_out]` and `[tempo]` ask for, sharing one engine epoch and grid.
pub(crate) fn start(
    loaded: &crate::config::LoadedConfig,
    inputs: &tokio::sync::mpsc::Sender<crate::core::msg::Msg>,
) -> (TempoIo, TempoEdges) {
    let epoch = Instant::now();
    let grid = std::sync::Arc::new(SharedGrid::new(epoch));
    let bpb = loaded.app.audio.beats_per_bar;
    let mut edges = TempoEdges::default();
    #[allow(unused_mut)]
    let mut io = TempoIo {
        epoch: Some(epoch),
        grid: Some(grid.clone()),
        link: None,
    };
    let pattern = loaded.app.midi_out.clock.trim();
    if !pattern.is_empty() {
        match crate::controls::midi::io::backend_unavailable() {
            Some(why) => tracing::error!("MIDI clock out: {why}"),
            None => {
                match crate::controls::midi::clock_out::spawn(
                    pattern.to_string(),
                    grid.clone(),
                    bpb,
                ) {
                    Ok(h) => edges.clock_out = Some(h),
                    Err(e) => tracing::error!("MIDI clock out: cannot start its thread: {e}"),
                }
            }
        }
    }
    if loaded.app.tempo.link {
        #[cfg(feature = "link")]
        match link::spawn(&loaded.app.tempo, bpb, grid.clone(), inputs.clone()) {
            Ok((h, tx)) => {
                io.link = Some(tx);
                edges.link = Some(h);
            }
            Err(e) => tracing::error!("Link: cannot start: {e}"),
        }
        #[cfg(not(feature = "link"))]
        tracing::warn!(
            "[tempo] link = true, but this build has no Link (build with --features link)"
        );
    }
    let _ = inputs;
    (io, edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_reader_never_sees_a_torn_grid() {
        // Every field is derived from i: a torn read mixes two i's.
        let grid = |i: u64| Grid {
            at: Duration::from_nanos(i),
            count: i,
            in_bar: (i % 4) as u32,
            bpm: i as f64,
            playing: i % 2 == 0,
        };
        let shared = Arc::new(SharedGrid::new(Instant::now()));
        // The empty grid a new SharedGrid holds is not of that form: publish i = 0 first (the
        // spawn orders it before the writer's and the reads).
        shared.publish(&grid(0));
        let w = shared.clone();
        let writer = std::thread::spawn(move || {
            for i in 1..20_000u64 {
                w.publish(&grid(i));
            }
        });
        let mut reads = 0u64;
        while !writer.is_finished() || reads < 1000 {
            let g = shared.read();
            let i = g.count;
            assert_eq!(g.at, Duration::from_nanos(i));
            assert_eq!(g.in_bar, (i % 4) as u32);
            assert_eq!(g.bpm, i as f64);
            assert_eq!(g.playing, i % 2 == 0);
            reads += 1;
        }
        writer.join().unwrap();
        assert_eq!(shared.read().count, 19_999);
    }
}
