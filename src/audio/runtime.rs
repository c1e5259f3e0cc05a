//! Running audio: a source thread (demo synth, file, GStreamer, or the cpal device supervisor)
//! fills the ring; a dedicated analysis thread (not a tokio worker) pops hops, runs the
//! [`Analyzer`], publishes [`AudioFrame`]s latest-wins on a `watch`, sends onsets and beats into
//! the engine's bounded input queue (`try_send`, drops counted) and obeys [`TempoCmd`]s.
//! [`AudioHandle::stop_within`] stops both threads within a deadline; a thread stuck in a
//! driver past it is abandoned and named, so quitting never hangs on a sound server.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use tokio::sync::{mpsc, watch};

use crate::audio::config::{AudioConfig, SourceKind};
use crate::audio::dsp::analyzer::Analyzer;
use crate::audio::features::{AudioEvent, AudioFrame};
use crate::audio::ring::{RingStats, RingWriter, ring};
use crate::audio::source::file::{FileDecoder, mixdown};
use crate::audio::source::gst::GstReader;
use crate::audio::synth::Sequencer;
use crate::audio::tempo::TempoCmd;
use crate::core::msg::Msg;

/// Seconds of audio the ring holds (the analysis normally keeps it nearly empty).
const RING_SECS: f32 = 2.0;
/// Capacity of the tempo command queue.
pub(crate) const TEMPO_CAPACITY: usize = 64;
/// How often frames are published (the engine redraws at most this often from audio).
const PUBLISH_HZ: f64 = 60.0;

/// A new ring from the source (first start, or a device that came back).
struct NewRing {
    consumer: rtrb::Consumer<f32>,
    sample_rate: u32,
    /// The writer wakes the analysis thread after every block (paced sources: demo, file,
    /// GStreamer). A device callback may not make that syscall, so for a device the analysis
    /// wakes itself when the next hop is due.
    wakes: bool,
}

/// The source thread's side of the hand-over to the analysis thread.
struct RingOut {
    rings: cb::Sender<NewRing>,
    analysis: std::thread::Thread,
}

impl RingOut {
    /// Sends a new ring (wakes = the writer calls [`RingOut::wake`] after each block).
    fn send(&self, ring: NewRing) -> bool {
        let ok = self.rings.send(ring).is_ok();
        self.analysis.unpark();
        ok
    }

    /// Tells the analysis thread that a block was written (one wake-up per block instead of
    /// one per hop).
    fn wake(&self) {
        self.analysis.unpark();
    }
}

/// Counters worth logging at shutdown.
#[derive(Debug, Default)]
pub struct AudioCounters {
    /// Ring counters (overruns = samples the analysis could not take in time).
    pub ring: Arc<RingStats>,
    /// Events dropped because the engine's queue was full.
    pub(crate) dropped_events: AtomicU64,
}

/// How long [`AudioHandle`]'s `Drop` waits for the threads (normally they stop within ~200 ms).
pub(crate) const STOP_DEADLINE: Duration = Duration::from_secs(2);

/// How long the device supervisor waits for a broken stream to be released before abandoning
/// it: with shared memory on, libpulse can deadlock forever inside that release.
const RELEASE_DEADLINE: Duration = Duration::from_secs(1);

/// The running audio threads. Dropping it stops them (waiting at most [`STOP_DEADLINE`]).
pub struct AudioHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
    /// Each thread sends its name here as it ends (also on panic), so stopping can wait with
    /// a deadline; `JoinHandle::join` has none.
    done: cb::Receiver<&'static str>,
    /// Shared counters.
    pub counters: Arc<AudioCounters>,
}

/// Sends the thread's name when dropped, i.e. when the thread's body returns or unwinds.
struct DoneGuard(&'static str, cb::Sender<&'static str>);
impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

impl AudioHandle {
    /// Stops the threads, waiting at most `deadline`. Returns the names of the threads that
    /// did not end in time (stuck in a driver); they are abandoned, not joined.
    pub(crate) fn stop_within(&mut self, deadline: Duration) -> Vec<&'static str> {
        self.stop.store(true, Ordering::Relaxed);
        for (_, t) in &self.threads {
            t.thread().unpark();
        }
        let until = Instant::now() + deadline;
        let mut pending: Vec<&'static str> = self.threads.iter().map(|(n, _)| *n).collect();
        while !pending.is_empty() {
            match self.done.recv_deadline(until) {
                Ok(name) => pending.retain(|n| *n != name),
                Err(_) => break,
            }
        }
        for (name, t) in self.threads.drain(..) {
            if pending.contains(&name) {
                tracing::error!(
                    thread = name,
                    "audio thread did not stop within {deadline:?}; abandoned"
                );
                drop(t); // detaches
            } else {
                let _ = t.join();
            }
        }
        let c = &self.counters;
        tracing::info!(
            frames = c.ring.frames.load(Ordering::Relaxed),
            overruns = c.ring.overruns.load(Ordering::Relaxed),
            dropped_events = c.dropped_events.load(Ordering::Relaxed),
            "audio stopped"
        );
        pending
    }
}

impl Drop for AudioHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_within(STOP_DEADLINE);
        }
    }
}

/// Where the analysis sends its results.
#[derive(Clone)]
pub struct AudioSinks {
    /// Latest frame.
    pub frames: watch::Sender<AudioFrame>,
    /// The engine's input queue (onsets, beats, audio problems).
    pub inputs: mpsc::Sender<Msg>,
}

fn send_msg(inputs: &mpsc::Sender<Msg>, msg: Msg, counters: &AudioCounters) {
    if inputs.try_send(msg).is_err() {
        counters.dropped_events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts the configured source and the analysis thread. Returns the handle and the sender
/// for tempo commands. Source problems (device missing, file unreadable) are reported as
/// `Msg::AudioProblem` and retried; they do not fail the start.
pub fn start(
    cfg: &AudioConfig,
    sinks: AudioSinks,
) -> std::io::Result<(AudioHandle, mpsc::Sender<TempoCmd>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(AudioCounters::default());
    let (ring_tx, ring_rx) = cb::bounded::<NewRing>(2);
    let (done_tx, done) = cb::bounded::<&'static str>(2);
    let (tempo_tx, tempo_rx) = mpsc::channel::<TempoCmd>(TEMPO_CAPACITY);

    let inputs = sinks.inputs.clone();
    let ana = {
        let cfg = cfg.clone();
        let stop = stop.clone();
        let counters = counters.clone();
        let guard = DoneGuard("audio-analysis", done_tx.clone());
        std::thread::Builder::new()
            .name("audio-analysis".into())
            .spawn(move || {
                let _guard = guard;
                run_analysis(&cfg, &stop, &counters, ring_rx, tempo_rx, &sinks)
            })?
    };
    let src = {
        let cfg = cfg.clone();
        let stop = stop.clone();
        let counters = counters.clone();
        let out = RingOut {
            rings: ring_tx,
            analysis: ana.thread().clone(),
        };
        let guard = DoneGuard("audio-source", done_tx);
        std::thread::Builder::new()
            .name("audio-source".into())
            .spawn(move || {
                let _guard = guard;
                run_source(&cfg, &stop, &counters, &out, &inputs)
            })?
    };
    Ok((
        AudioHandle {
            stop,
            threads: vec![("audio-source", src), ("audio-analysis", ana)],
            done,
            counters,
        },
        tempo_tx,
    ))
}

fn run_analysis(
    cfg: &AudioConfig,
    stop: &AtomicBool,
    counters: &AudioCounters,
    rings: cb::Receiver<NewRing>,
    mut tempo: mpsc::Receiver<TempoCmd>,
    sinks: &AudioSinks,
) {
    let mut consumer: Option<rtrb::Consumer<f32>> = None;
    let mut woken_by_writer = false;
    let mut analyzer: Option<Analyzer> = None;
    let mut rate = 0u32;
    let mut offset = 0.0f64;
    let mut last_pub = f64::NEG_INFINITY;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(r) = rings.try_recv() {
            if r.sample_rate != rate || analyzer.is_none() {
                if let Some(a) = &analyzer {
                    offset += a.time();
                }
                analyzer = Some(Analyzer::new(cfg.analyzer_settings(r.sample_rate)));
                rate = r.sample_rate;
                last_pub = f64::NEG_INFINITY;
            }
            consumer = Some(r.consumer);
            woken_by_writer = r.wakes;
        }
        let (Some(c), Some(a)) = (consumer.as_mut(), analyzer.as_mut()) else {
            std::thread::park_timeout(Duration::from_millis(5));
            continue;
        };
        while let Ok(cmd) = tempo.try_recv() {
            a.command(cmd);
        }
        let avail = c.slots();
        let hop = a.settings().hop;
        if avail < hop {
            if woken_by_writer {
                // A paced source wakes us after each block it writes; the timeout only bounds
                // how late a stop request or a new ring is noticed.
                std::thread::park_timeout(Duration::from_millis(100));
            } else {
                // A device callback may not make syscalls, so it cannot wake us. Sleep until
                // the rest of a hop is due (at least 1 ms): one wake-up per hop, no busy poll.
                let missing = (hop - avail) as f64 / f64::from(rate.max(1));
                std::thread::sleep(Duration::from_secs_f64(missing.max(0.001)));
            }
            continue;
        }
        let Ok(chunk) = c.read_chunk(avail.min(16 * hop)) else {
            continue;
        };
        let (s1, s2) = chunk.as_slices();
        for s in [s1, s2] {
            a.push(
                s,
                &mut |f: &AudioFrame| {
                    if f.time - last_pub >= 1.0 / PUBLISH_HZ {
                        last_pub = f.time;
                        let mut f = *f;
                        f.time += offset;
                        sinks.frames.send_replace(f);
                    }
                },
                &mut |e: AudioEvent| {
                    let e = match e {
                        AudioEvent::Onset { time, strength } => AudioEvent::Onset {
                            time: time + offset,
                            strength,
                        },
                        AudioEvent::Beat {
                            time,
                            count,
                            in_bar,
                            bpm,
                        } => AudioEvent::Beat {
                            time: time + offset,
                            count,
                            in_bar,
                            bpm,
                        },
                    };
                    send_msg(&sinks.inputs, Msg::AudioEvent(e), counters);
                },
            );
        }
        chunk.commit_all();
    }
}

/// Paces a non-device source in real time: sleeps until `frames` samples are due.
struct Pacer {
    start: Instant,
    rate: f64,
    frames: u64,
}

impl Pacer {
    fn new(rate: u32) -> Self {
        Pacer {
            start: Instant::now(),
            rate: f64::from(rate),
            frames: 0,
        }
    }
    fn wait(&mut self, stop: &AtomicBool, add: usize) {
        self.frames += add as u64;
        let due = self.start + Duration::from_secs_f64(self.frames as f64 / self.rate);
        // Sleep in slices so a stop request is noticed quickly.
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(20)));
        }
        // After a long stall (suspend, debugger) do not try to catch up with a burst.
        if Instant::now() > due + Duration::from_millis(500) {
            self.start = Instant::now() - Duration::from_secs_f64(self.frames as f64 / self.rate);
        }
    }
}

fn problem(inputs: &mpsc::Sender<Msg>, counters: &AudioCounters, msg: Option<String>) {
    match &msg {
        Some(m) => tracing::warn!("audio: {m}"),
        None => tracing::info!("audio source back"),
    }
    send_msg(inputs, Msg::AudioProblem(msg), counters);
}

fn new_ring(rate: u32, counters: &AudioCounters, rings: &RingOut) -> Option<RingWriter> {
    let (w, consumer) = ring(
        (rate as f32 * RING_SECS) as usize,
        1,
        0,
        counters.ring.clone(),
    );
    rings
        .send(NewRing {
            consumer,
            sample_rate: rate,
            wakes: true,
        })
        .then_some(w)
}

fn run_source(
    cfg: &AudioConfig,
    stop: &AtomicBool,
    counters: &AudioCounters,
    rings: &RingOut,
    inputs: &mpsc::Sender<Msg>,
) {
    match cfg.source {
        SourceKind::Demo => run_demo(stop, counters, rings),
        SourceKind::File => run_file(cfg, stop, counters, rings, inputs),
        SourceKind::Gstreamer => run_gst(cfg, stop, counters, rings, inputs),
        SourceKind::Device => run_device(cfg, stop, counters, rings, inputs),
    }
}

fn run_demo(stop: &AtomicBool, counters: &AudioCounters, rings: &RingOut) {
    let rate = 48_000;
    let mut synth = Sequencer::demo(rate);
    let Some(mut w) = new_ring(rate, counters, rings) else {
        return;
    };
    // The demo repeats every DEMO_CYCLE_SECS: synthesise the first cycle once (remembering it),
    // then loop the remembered samples, so the demo costs next to nothing after the first pass.
    let cycle = (DEMO_CYCLE_SECS * f64::from(rate)).round() as usize;
    let mut cache: Vec<f32> = Vec::with_capacity(cycle);
    let mut pos = 0usize;
    // 20 ms blocks: the analysis timestamps by stream position, so block size adds no timing
    // error; the demo is never heard, so the extra delay shows nowhere, and every block is one
    // wake-up of this thread and of the analysis (idle CPU).
    let mut buf = vec![0.0f32; 960];
    let mut pace = Pacer::new(rate);
    while !stop.load(Ordering::Relaxed) {
        if cache.len() < cycle {
            synth.fill(&mut buf);
            let take = buf.len().min(cycle - cache.len());
            cache.extend_from_slice(&buf[..take]);
            // The cycle completed inside this block: continue from the cycle's start.
            for o in buf.iter_mut().skip(take) {
                *o = cache[pos];
                pos += 1;
            }
        } else {
            for o in buf.iter_mut() {
                *o = cache[pos];
                pos = (pos + 1) % cycle;
            }
        }
        w.write_mono(&buf);
        rings.wake();
        pace.wait(stop, buf.len());
    }
}

/// Length of one cycle of the built-in demo: 64 beats at 120 BPM then 32 at 128 BPM.
pub(crate) const DEMO_CYCLE_SECS: f64 = 64.0 * 60.0 / 120.0 + 32.0 * 60.0 / 128.0;

/// Sleeps up to `d` in slices, returning early on stop.
fn nap(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_file(
    cfg: &AudioConfig,
    stop: &AtomicBool,
    counters: &AudioCounters,
    rings: &RingOut,
    inputs: &mpsc::Sender<Msg>,
) {
    let path = PathBuf::from(&cfg.file);
    let mut writer: Option<(RingWriter, u32)> = None;
    let mut failing = false;
    let mut inter = Vec::new();
    let mut mono = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // (Re)open: the file loops until the program stops.
        let opened =
            FileDecoder::open(&path, cfg.monitor).and_then(|mut d| d.format().map(|f| (d, f)));
        let (mut dec, (ch, rate)) = match opened {
            Ok(x) => x,
            Err(e) => {
                if !failing {
                    problem(inputs, counters, Some(e.to_string()));
                    failing = true;
                }
                nap(stop, Duration::from_secs(2));
                continue;
            }
        };
        if failing {
            problem(inputs, counters, None);
            failing = false;
        }
        if writer.as_ref().is_none_or(|(_, r)| *r != rate) {
            match new_ring(rate, counters, rings) {
                Some(w) => writer = Some((w, rate)),
                None => return,
            }
        }
        let Some((w, _)) = writer.as_mut() else {
            return;
        };
        let self_paced = dec.self_paced() && cfg.monitor;
        let mut pace = Pacer::new(rate);
        let block = (rate / 100) as usize;
        let mut any = false;
        while !stop.load(Ordering::Relaxed) {
            inter.clear();
            mono.clear();
            match dec.read(&mut inter, block) {
                Ok(Some(_)) => {
                    mixdown(&inter, usize::from(ch), cfg.channel, &mut mono);
                    any |= !mono.is_empty();
                    w.write_mono(&mono);
                    rings.wake();
                    if !self_paced {
                        pace.wait(stop, mono.len());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    problem(inputs, counters, Some(e.to_string()));
                    failing = true;
                    nap(stop, Duration::from_secs(2));
                    break;
                }
            }
        }
        if !any {
            nap(stop, Duration::from_secs(1));
        }
    }
}

fn run_gst(
    cfg: &AudioConfig,
    stop: &AtomicBool,
    counters: &AudioCounters,
    rings: &RingOut,
    inputs: &mpsc::Sender<Msg>,
) {
    let mut writer: Option<(RingWriter, u32)> = None;
    let mut failing = false;
    let mut inter = Vec::new();
    let mut mono = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let opened = GstReader::open_description(&cfg.pipeline)
            .and_then(|mut g| g.format(Duration::from_secs(5)).map(|f| (g, f)));
        let (mut g, (ch, rate)) = match opened {
            Ok(x) => x,
            Err(e) => {
                if !failing {
                    problem(inputs, counters, Some(e.to_string()));
                    failing = true;
                }
                nap(stop, Duration::from_secs(2));
                continue;
            }
        };
        if failing {
            problem(inputs, counters, None);
            failing = false;
        }
        if writer.as_ref().is_none_or(|(_, r)| *r != rate) {
            match new_ring(rate, counters, rings) {
                Some(w) => writer = Some((w, rate)),
                None => return,
            }
        }
        let Some((w, _)) = writer.as_mut() else {
            return;
        };
        while !stop.load(Ordering::Relaxed) {
            inter.clear();
            mono.clear();
            match g.pull(&mut inter, Duration::from_millis(100)) {
                Ok(Some(_)) => {
                    mixdown(&inter, usize::from(ch), cfg.channel, &mut mono);
                    w.write_mono(&mono);
                    rings.wake();
                }
                Ok(None) => {
                    problem(
                        inputs,
                        counters,
                        Some(format!(
                            "GStreamer source `{}` ended; restarting",
                            cfg.pipeline
                        )),
                    );
                    failing = true;
                    break;
                }
                Err(e) => {
                    problem(inputs, counters, Some(e.to_string()));
                    failing = true;
                    break;
                }
            }
        }
        nap(stop, Duration::from_millis(500));
    }
}

/// Makes ALSA re-read its configuration before reopening a lost device: routing hooks (the
/// PulseAudio plugin is only the default while the server runs) are evaluated at load time.
fn refresh_device_config() {
    #[cfg(target_os = "linux")]
    if let Err(e) = alsa::config::update_free_global() {
        tracing::debug!("ALSA configuration not refreshed: {e}");
    }
}

fn run_device(
    cfg: &AudioConfig,
    stop: &AtomicBool,
    counters: &AudioCounters,
    rings: &RingOut,
    inputs: &mpsc::Sender<Msg>,
) {
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        if failing {
            refresh_device_config();
        }
        let opened = crate::audio::source::device::open(
            &cfg.device,
            cfg.channel,
            RING_SECS,
            counters.ring.clone(),
        );
        let (stream, consumer) = match opened {
            Ok(x) => x,
            Err(e) => {
                if !failing {
                    problem(inputs, counters, Some(e.to_string()));
                    failing = true;
                }
                nap(stop, Duration::from_secs(1));
                continue;
            }
        };
        tracing::info!(device = %stream.name, rate = stream.sample_rate, "audio input open");
        if !rings.send(NewRing {
            consumer,
            sample_rate: stream.sample_rate,
            wakes: false,
        }) {
            return;
        }
        if failing {
            problem(inputs, counters, None);
            failing = false;
        }
        // Watch the stream: an error callback or callbacks that stop coming mean it is gone.
        let mut last = counters.ring.callbacks.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let now = counters.ring.callbacks.load(Ordering::Relaxed);
            if now != last {
                last = now;
                last_change = Instant::now();
            }
            let stalled = last_change.elapsed() > Duration::from_secs(2);
            if stream.failed.load(Ordering::Relaxed) || stalled {
                let why = if stalled {
                    "stopped delivering audio"
                } else {
                    "reported an error"
                };
                problem(
                    inputs,
                    counters,
                    Some(format!(
                        "input device {} {why}; waiting for it to return",
                        stream.name
                    )),
                );
                failing = true;
                break;
            }
        }
        // Also reached on stop: a healthy stream is released under the same deadline.
        release(stream);
        nap(stop, Duration::from_millis(500));
    }
}

/// Releases a device stream on a helper thread and waits for it at most [`RELEASE_DEADLINE`].
/// When the sound server died under a stream, libpulse (shared memory on) can deadlock in the
/// release forever; the stream is then abandoned so the supervisor can open the device again.
fn release(stream: crate::audio::source::device::DeviceStream) {
    let name = stream.name.clone();
    let (tx, rx) = cb::bounded::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("audio-release".into())
        .spawn(move || {
            drop(stream);
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => {
            if rx.recv_timeout(RELEASE_DEADLINE).is_err() {
                tracing::warn!(
                    device = %name,
                    "the old input stream did not close within {RELEASE_DEADLINE:?} (sound \
                     server gone; a libpulse deadlock); abandoned, reopening anyway"
                );
            }
        }
        Err(e) => tracing::warn!("cannot spawn a thread to release the input stream: {e}"),
    }
}

/// Starts audio for the engine: returns the handle (if it started), the frame receiver and the
/// tempo command sender for `EngineIo`. A failure to start threads is logged, not fatal.
pub(crate) fn start_for_engine(
    cfg: &AudioConfig,
    inputs: mpsc::Sender<Msg>,
) -> (
    Option<AudioHandle>,
    Option<watch::Receiver<AudioFrame>>,
    Option<mpsc::Sender<TempoCmd>>,
) {
    let (frames, rx) = watch::channel(AudioFrame::default());
    match start(cfg, AudioSinks { frames, inputs }) {
        Ok((h, tempo)) => (Some(h), Some(rx), Some(tempo)),
        Err(e) => {
            tracing::error!("cannot start the audio threads: {e}");
            (None, None, None)
        }
    }
}

/// Stops the audio threads without blocking an async worker, waiting at most `deadline`.
/// Returns the names of threads that did not stop (abandoned).
pub(crate) async fn stop_in_background(
    handle: Option<AudioHandle>,
    deadline: Duration,
) -> Vec<&'static str> {
    match handle {
        Some(mut h) => tokio::task::spawn_blocking(move || h.stop_within(deadline))
            .await
            .unwrap_or_else(|_| vec!["audio"]),
        None => Vec::new(),
    }
}
