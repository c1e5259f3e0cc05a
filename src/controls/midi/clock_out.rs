//! MIDI clock out: 24 pulses per quarter note, start/stop and song position, phase-locked to the
//! arbitrated beat grid, so lights and other gear follow the deck.
//!
//! [`ClockOut`] is pure (engine time in, bytes and the next wake-up out). [`spawn`] runs it on a
//! dedicated thread with its own timer — not the engine's tick, not the async runtime — that
//! sleeps until the next pulse is due, reads the grid the engine publishes
//! ([`crate::tempo::SharedGrid`], never blocking the engine) and writes to every output port
//! matching `[midi_out] clock`, reconnecting when a port comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::controls::midi::binding::device_matches;
use crate::controls::midi::client_lock::Guarded;
use crate::controls::midi::io::CLIENT_PREFIX;
use crate::core::tempo::Grid;
use crate::edge_thread::{EdgeThread, Scheduling, promote_to_realtime};
use crate::tempo::SharedGrid;

/// Pulses per quarter note.
pub(crate) const PPQN: u32 = 24;
/// MIDI timing clock.
pub const CLOCK: u8 = 0xF8;
/// MIDI start.
pub const START: u8 = 0xFA;
/// MIDI stop.
pub const STOP: u8 = 0xFC;
/// MIDI song position pointer (then LSB, MSB of the position in sixteenths).
pub(crate) const SPP: u8 = 0xF2;
/// A grid whose last anchor is older than this has stopped (no beats: no clock).
const GRID_STALE: Duration = crate::core::tempo::GRID_STALE;
/// The thread wakes at least this often while nothing is due (start, shutdown, ports).
const IDLE_WAKE: Duration = Duration::from_millis(20);

/// Up to four messages due at one instant, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Due {
    bytes: [u8; 8],
    len: usize,
}

impl Due {
    fn push(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(self.bytes.len());
        let n = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }

    /// The raw bytes (complete messages).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The messages, one slice each.
    pub(crate) fn messages(&self) -> impl Iterator<Item = &[u8]> {
        let b = self.bytes();
        let mut i = 0;
        std::iter::from_fn(move || {
            let len = match b.get(i)? {
                &SPP => 3,
                _ => 1,
            };
            let m = b.get(i..i + len)?;
            i += len;
            Some(m)
        })
    }
}

/// The song position pointer message for beat `beat` (sixteenths, 14 bits).
fn spp(beat: u64) -> [u8; 3] {
    let pos = (beat.saturating_mul(4) & 0x3FFF) as u16;
    [SPP, (pos & 0x7F) as u8, (pos >> 7) as u8]
}

/// Follows the grid and says what to send when. Pure: time is passed in.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClockOut {
    /// Started (Start sent, pulses flowing).
    running: bool,
    /// Grid position (beats) of the next pulse.
    next: f64,
    /// A Start goes out with the next pulse.
    start_pending: bool,
    /// Pulses sent since the last start.
    pub(crate) pulses: u64,
    /// Pulses skipped because the grid jumped ahead by more than a beat.
    pub(crate) skipped: u64,
}

impl ClockOut {
    /// A stopped clock.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Whether the clock is running.
    pub(crate) fn running(&self) -> bool {
        self.running
    }

    /// Called when woken at engine time `now` with the latest grid: returns the messages due now
    /// and when to wake next. A start waits for the grid's next downbeat, so a receiver's bar
    /// counter lines up with the deck's bars; pulses sit on the grid's 1/24 beats, each interval
    /// kept within 0.5×–2× the nominal period so a re-anchored grid is followed without bursts.
    pub(crate) fn step(&mut self, g: &Grid, beats_per_bar: u32, now: Duration) -> (Due, Duration) {
        let mut due = Due::default();
        let live = g.playing && now.saturating_sub(g.at) <= GRID_STALE;
        let (Some(period), Some(pos), true) = (g.period(), g.beat_at(now), live) else {
            if self.running {
                self.running = false;
                // Nothing to stop when the Start never went out (still waiting for the bar).
                if std::mem::take(&mut self.start_pending) {
                    return (due, now + IDLE_WAKE);
                }
                due.push(&[STOP]);
                // Where we stopped, for gear that shows the song position.
                due.push(&spp(self.next.max(0.0) as u64));
            }
            return (due, now + IDLE_WAKE);
        };
        let pulse = period / f64::from(PPQN);
        if !self.running {
            // Start on the next downbeat (at least a pulse ahead).
            let bpb = u64::from(beats_per_bar.max(1));
            let first = (pos + 1.0 / f64::from(PPQN)).ceil().max(0.0) as u64;
            let to_bar = (bpb - u64::from(g.in_bar_of(first, beats_per_bar))) % bpb;
            self.next = (first + to_bar) as f64;
            self.running = true;
            self.start_pending = true;
            self.pulses = 0;
        }
        // More than a beat behind the grid (it jumped ahead): resume on the next pulse.
        if pos - self.next > 1.0 {
            let resume = (pos * f64::from(PPQN)).ceil() / f64::from(PPQN);
            self.skipped += ((resume - self.next) * f64::from(PPQN)).round() as u64;
            self.next = resume;
        }
        let target = g.time_of(self.next).unwrap_or(now);
        // Due within a quarter of a millisecond: send now (the sleep rarely ends earlier).
        if target <= now + Duration::from_micros(250) {
            if self.start_pending {
                self.start_pending = false;
                due.push(&[START]);
            }
            due.push(&[CLOCK]);
            self.pulses += 1;
            self.next += 1.0 / f64::from(PPQN);
        } else if self.start_pending {
            // Waiting for the downbeat: wake for it.
            return (due, target.min(now + Duration::from_secs(2)));
        }
        let want = g.time_of(self.next).unwrap_or(now).as_secs_f64() - now.as_secs_f64();
        let wait = want.clamp(0.5 * pulse, 2.0 * pulse);
        (due, now + Duration::from_secs_f64(wait))
    }
}

/// What the clock thread reports (tests/midi_clock_out.rs prints it beside the jitter).
#[derive(Debug, Default)]
pub struct ClockOutStats {
    /// Whether the thread got real-time scheduling (see [`promote_to_realtime`]).
    pub realtime: AtomicBool,
}

/// The running clock thread.
pub struct ClockOutHandle {
    thread: EdgeThread,
    /// What the thread reports.
    pub stats: Arc<ClockOutStats>,
}

impl ClockOutHandle {
    /// Stops the clock (a running clock sends Stop first) and waits up to `deadline`.
    pub fn stop_within(self, deadline: Duration) -> bool {
        self.thread.stop_within(deadline)
    }
}

/// Real-time priority of the clock thread: above all normal work; it runs for microseconds per
/// pulse, so even above an audio server's thread it cannot starve it.
const CLOCK_PRIORITY: u8 = 60;

/// Starts the clock thread sending to output ports matching `pattern`.
pub fn spawn(
    pattern: String,
    grid: Arc<SharedGrid>,
    beats_per_bar: u32,
) -> std::io::Result<ClockOutHandle> {
    let stats = Arc::new(ClockOutStats::default());
    let st = stats.clone();
    let thread = EdgeThread::spawn("midi-clock-out", move |stop| {
        let scheduling = promote_to_realtime("midi-clock-out", CLOCK_PRIORITY);
        st.realtime
            .store(scheduling != Scheduling::Normal, Ordering::Relaxed);
        run(&pattern, &grid, beats_per_bar, stop)
    })?;
    Ok(ClockOutHandle { thread, stats })
}

/// How often missing ports are looked for.
const PORT_SCAN: Duration = Duration::from_secs(1);

fn run(pattern: &str, grid: &SharedGrid, beats_per_bar: u32, stop: &AtomicBool) {
    let mut clock = ClockOut::new();
    // Opened and closed under the process-wide client lock (`client_lock`): the MIDI edge's
    // port thread opens and closes clients at the same time. Taking it here can only wait while
    // scanning or after a port vanished, never for a pulse to an open port (`send` does not lock).
    let mut conns: Vec<(String, Guarded<midir::MidiOutputConnection>)> = Vec::new();
    let mut probe: Option<Guarded<midir::MidiOutput>> = None;
    let mut next_scan = Instant::now();
    // The grid as last read whole (see `SharedGrid::try_read`: this thread may be real-time).
    let mut last_grid = grid.try_read().unwrap_or_default();
    loop {
        let now_i = Instant::now();
        if now_i >= next_scan && (!clock.running() || conns.is_empty()) {
            // Port scans only between bars' worth of silence (stopped) or while nothing is
            // connected, so a scan never delays a pulse.
            next_scan = now_i + PORT_SCAN;
            scan(pattern, &mut probe, &mut conns);
        }
        let stopping = stop.load(Ordering::Relaxed);
        if let Some(g) = grid.try_read() {
            last_grid = g;
        }
        let mut g = last_grid;
        if stopping {
            g.playing = false;
        }
        let (due, wake) = clock.step(&g, beats_per_bar, grid.now());
        if !due.bytes().is_empty() {
            let mut gone = false;
            for m in due.messages() {
                for (_, c) in conns.iter_mut() {
                    gone |= c.send(m).is_err();
                }
            }
            if gone {
                conns.clear();
            }
        }
        if stopping && !clock.running() {
            // JACK queues output for its next cycle: give the Stop a few cycles to leave.
            if !conns.is_empty() && !due.bytes().is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let sleep = wake.saturating_sub(grid.now()).min(if clock.running() {
            Duration::from_millis(100)
        } else {
            IDLE_WAKE
        });
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
    }
}

fn scan(
    pattern: &str,
    probe: &mut Option<Guarded<midir::MidiOutput>>,
    conns: &mut Vec<(String, Guarded<midir::MidiOutputConnection>)>,
) {
    if probe.is_none() {
        *probe =
            Guarded::open(|| midir::MidiOutput::new(&format!("{CLIENT_PREFIX}-clock-scan"))).ok();
    }
    let Some(p) = probe.as_ref() else {
        return;
    };
    let names: Vec<(String, midir::MidiOutputPort)> = p
        .ports()
        .into_iter()
        .filter_map(|port| p.port_name(&port).ok().map(|n| (n, port)))
        .collect();
    conns.retain(|(n, _)| names.iter().any(|(m, _)| m == n));
    for (name, port) in names {
        if name.contains(CLIENT_PREFIX)
            || !device_matches(pattern, &name)
            || conns.iter().any(|(n, _)| *n == name)
        {
            continue;
        }
        let opened = Guarded::open(|| {
            midir::MidiOutput::new(&format!("{CLIENT_PREFIX}-clock"))
                .map_err(|e| e.to_string())?
                .connect(&port, "clock")
                .map_err(|e| e.to_string())
        });
        match opened {
            Ok(c) => {
                tracing::info!(port = %name, "MIDI clock out connected");
                conns.push((name, c));
            }
            Err(e) => tracing::warn!(port = %name, "cannot open MIDI clock output: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(bpm: f64) -> Grid {
        Grid {
            at: Duration::from_millis(1000),
            count: 0,
            in_bar: 0,
            bpm,
            playing: true,
        }
    }

    /// Runs the clock from `from` to `to` waking exactly when it asks; returns (time, bytes).
    fn drive(c: &mut ClockOut, g: &mut Grid, from: f64, to: f64) -> Vec<(f64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut t = Duration::from_secs_f64(from);
        while t.as_secs_f64() < to {
            // Keep the grid anchored recently (as beats re-anchor it).
            if t.saturating_sub(g.at) > Duration::from_secs(1) {
                let b = g.beat_at(t).unwrap().floor();
                g.at = g.time_of(b).unwrap();
                g.in_bar = g.in_bar_of(b as u64, 4);
                g.count = b as u64;
            }
            let (due, wake) = c.step(g, 4, t);
            if !due.bytes().is_empty() {
                out.push((t.as_secs_f64(), due.bytes().to_vec()));
            }
            t = wake;
        }
        out
    }

    #[test]
    fn starts_on_a_downbeat_and_sends_24_pulses_per_beat_on_the_grid() {
        let mut c = ClockOut::new();
        let mut g = grid(120.0);
        // At 1.3 s the grid is at beat 0.6: the next downbeat is beat 4 at 3.0 s.
        let out = drive(&mut c, &mut g, 1.3, 5.0);
        assert_eq!(out[0].1, vec![START, CLOCK]);
        assert!((out[0].0 - 3.0).abs() < 1e-6, "{}", out[0].0);
        let clocks: Vec<f64> = out
            .iter()
            .filter(|(_, b)| b.contains(&CLOCK))
            .map(|(t, _)| *t)
            .collect();
        // 2 s at 120 BPM = 4 beats = 96 pulses, each on the grid's 1/24 beat.
        assert_eq!(clocks.len(), 96);
        for (i, t) in clocks.iter().enumerate() {
            let want = 3.0 + i as f64 * 0.5 / 24.0;
            assert!((t - want).abs() < 1e-6, "pulse {i} at {t}, want {want}");
        }
    }

    #[test]
    fn stops_with_a_song_position_when_the_grid_stops() {
        let mut c = ClockOut::new();
        let mut g = grid(120.0);
        // Started on beat 4 (3.0 s); stopped at 4.0 s = beat 6: sixteenth 24.
        drive(&mut c, &mut g, 1.0, 4.0);
        assert!(c.running());
        g.playing = false;
        let (due, _) = c.step(&g, 4, Duration::from_secs(4));
        let msgs: Vec<&[u8]> = due.messages().collect();
        assert_eq!(msgs[0], &[STOP]);
        assert_eq!(msgs[1][0], SPP);
        assert_eq!((msgs[1][1], msgs[1][2]), (24, 0));
        assert!(!c.running());
        // A stale grid (no beats for GRID_STALE) stops a running clock too.
        let mut c = ClockOut::new();
        let mut g = grid(120.0);
        drive(&mut c, &mut g, 1.0, 4.0);
        let frozen = g;
        let (due, _) = c.step(
            &frozen,
            4,
            frozen.at + GRID_STALE + Duration::from_millis(1),
        );
        assert_eq!(due.bytes()[0], STOP);
        // Stopped before the downbeat came: no Start went out, so no Stop either.
        let mut c = ClockOut::new();
        let mut g = grid(120.0);
        drive(&mut c, &mut g, 1.0, 2.0);
        g.playing = false;
        let (due, _) = c.step(&g, 4, Duration::from_secs(2));
        assert!(due.bytes().is_empty());
    }

    #[test]
    fn a_tempo_change_is_followed_without_bursts() {
        let mut c = ClockOut::new();
        let mut g = grid(120.0);
        let mut out = drive(&mut c, &mut g, 1.0, 3.0);
        // The grid jumps to 130 BPM with its phase shifted by a third of a beat.
        let t = 3.0;
        let b = g.beat_at(Duration::from_secs_f64(t)).unwrap();
        g = Grid {
            at: Duration::from_secs_f64(t),
            count: b.floor() as u64,
            in_bar: 0,
            bpm: 130.0,
            playing: true,
        };
        g.at = Duration::from_secs_f64(t - (b.fract() + 0.33) * 60.0 / 130.0);
        out.extend(drive(&mut c, &mut g, t, 6.0));
        let clocks: Vec<f64> = out
            .iter()
            .filter(|(_, b)| b.contains(&CLOCK))
            .map(|(t, _)| *t)
            .collect();
        let nominal = 60.0 / 130.0 / 24.0;
        for w in clocks.windows(2) {
            let d = w[1] - w[0];
            assert!(d >= 0.5 * nominal - 1e-6, "burst: {d}");
        }
        // Locked again by the end: the last pulses sit on the new grid's 1/24 beats.
        let last = *clocks.last().unwrap();
        let pos = g.beat_at(Duration::from_secs_f64(last)).unwrap() * 24.0;
        assert!((pos - pos.round()).abs() < 1e-3, "off the grid: {pos}");
        let tail = &clocks[clocks.len() - 24..];
        let d = (tail[23] - tail[0]) / 23.0;
        assert!((d - nominal).abs() < 1e-4, "{d} vs {nominal}");
    }
}
