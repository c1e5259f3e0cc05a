//! Flood: 10,000 CC messages per second for 10 s into the MIDI edge, through the real engine
//! and the dry-run transport. Checks that memory stays bounded, the engine keeps up (the last
//! fader position arrives), the transport sees a coalesced stream (about one update per binding
//! per engine tick, not 100,000) and panic notes interleaved in the flood act within one engine
//! tick.
//!
//! The messages enter through the edge's `Injector`, which uses the same bounded channels and
//! drop policy as the midir callbacks; only the midir port itself is left out (the JACK test
//! covers real ports).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use scope_deck::app::engine::{Clocks, EngineIo, run};
use scope_deck::controls::keymap::Keymap;
use scope_deck::controls::midi::io::{LearnTarget, MidiOptions, spawn};
use scope_deck::controls::midi::parse::MidiMsg;
use scope_deck::core::action::Action;
use scope_deck::core::effect::Event;
use scope_deck::core::msg::{Msg, StopSignal};
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::AppState;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const KEYMAP: &str = r#"
name = "flood"
[normal]
"q" = "quit"

[[midi]]
type = "cc"
cc = 1
param = "noise_scale"
range = [0.0, 1.0]

[[midi]]
type = "cc"
cc = 2
encoder = "twos_complement"
param = "noise_scale"
step = 0.0001

[[midi]]
type = "note"
note = 36
action = "panic"

[[midi]]
type = "note"
note = 37
action = "release_panic"
"#;

const RATE: u64 = 10_000;
const SECS: u64 = 10;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn ten_thousand_cc_per_second_for_ten_seconds() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut errs = Vec::new();
        let km = Keymap::from_text("flood.toml", "flood", KEYMAP, &mut errs).unwrap();
        let tick = Duration::from_secs_f64(1.0 / 30.0);

        let (inputs_tx, inputs_rx) = mpsc::channel::<Msg>(scope_deck::app::INPUT_CAPACITY);
        let (tev_tx, tev_rx) = mpsc::channel(scope_deck::transport::EVENT_CAPACITY);
        let transport = scope_deck::transport::spawn(
            &scope_deck::transport::config::ServerConfig::default(),
            true,
            tev_tx,
        )
        .unwrap();
        let state = AppState::new(Default::default());
        let (snap_tx, snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
        let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(1 << 16);
        let cancel = CancellationToken::new();
        let midi = spawn(
            MidiOptions {
                config: km.midi.clone(),
                tick,
                learn: LearnTarget::default(),
                open_ports: false,
                learn_unavailable: None,
            },
            inputs_tx.clone(),
            snap_rx,
            cancel.clone(),
        );
        let engine = tokio::spawn(run(
            state,
            EngineIo::new(inputs_rx, tev_rx, transport.link.clone(), snap_tx)
                .with_events(ev_tx)
                .with_midi_learn(midi.learn.clone()),
            Clocks {
                control: tick,
                frame: tick,
            },
        ));

        // Observe events with arrival times.
        let observer = tokio::spawn(async move {
            let mut sent_noise = 0u64;
            let mut panics: Vec<Instant> = Vec::new();
            let mut last_noise: Option<f64> = None;
            let mut sent_total = 0u64;
            let mut activity = 0u64;
            let mut last_count = 0u64;
            while let Some(ev) = ev_rx.recv().await {
                match ev {
                    Event::MidiActivity { devices } => {
                        activity += 1;
                        last_count = devices.iter().map(|d| d.count).sum();
                    }
                    Event::Action {
                        action: Action::Panic,
                        ..
                    } => panics.push(Instant::now()),
                    Event::Sent { payload } => {
                        sent_total += 1;
                        if let Some(v) = payload.get("noise_scale").and_then(|v| v.as_f64()) {
                            sent_noise += 1;
                            last_noise = Some(v);
                        }
                    }
                    _ => {}
                }
            }
            (sent_noise, sent_total, panics, last_noise, (activity, last_count))
        });

        let rss_before = rss_kib();
        // The flood: paced by elapsed time so the average rate is exact.
        let inject = midi.inject.clone();
        let flood = std::thread::spawn(move || {
            let port: Arc<str> = Arc::from("flood");
            let start = Instant::now();
            let mut sent = 0u64;
            let mut panic_at: Vec<Instant> = Vec::new();
            let mut max_rss = 0;
            let mut last_value = 0u8;
            while sent < RATE * SECS {
                let due = (start.elapsed().as_secs_f64() * RATE as f64) as u64;
                while sent < due.min(RATE * SECS) {
                    let (cc, value) = if sent % 2 == 0 {
                        last_value = (sent / 2 % 128) as u8;
                        (1, last_value)
                    } else {
                        (2, if sent % 4 == 1 { 1 } else { 127 })
                    };
                    inject.send(&port, MidiMsg::Cc { channel: 0, cc, value });
                    sent += 1;
                    // A panic note every second (released half a second later).
                    if sent % RATE == RATE / 2 {
                        panic_at.push(Instant::now());
                        assert!(inject.send(&port, MidiMsg::NoteOn { channel: 0, note: 36, velocity: 127 }));
                    }
                    if sent % RATE == 0 {
                        inject.send(&port, MidiMsg::NoteOn { channel: 0, note: 37, velocity: 127 });
                    }
                }
                if sent % 1000 == 0 {
                    max_rss = max_rss.max(rss_kib());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (start.elapsed(), panic_at, max_rss, last_value)
        });
        let (elapsed, panic_at, max_rss, last_value) =
            tokio::task::spawn_blocking(move || flood.join().unwrap()).await.unwrap();

        // The engine keeps up: the last fader position arrives promptly.
        tokio::time::sleep(tick * 4).await;
        let _ = inputs_tx.send(Msg::Signal(StopSignal::Interrupt)).await;
        drop(inputs_tx);
        let (final_state, _) = engine.await.unwrap();
        cancel.cancel();
        let (sent_noise, sent_total, panics, _last_noise, (activity, activity_count)) =
            observer.await.unwrap();

        let stats = &midi.stats;
        let received = stats.received.load(Ordering::Relaxed);
        let dropped_c = stats.dropped_continuous.load(Ordering::Relaxed);
        let dropped_d = stats.dropped_discrete.load(Ordering::Relaxed);
        let coalesced = stats.coalesced.load(Ordering::Relaxed);
        let latencies: Vec<Duration> = panic_at
            .iter()
            .zip(&panics)
            .map(|(a, b)| b.saturating_duration_since(*a))
            .collect();
        let ticks = elapsed.as_secs_f64() / tick.as_secs_f64();
        println!(
            "flood: {received} messages in {elapsed:?}; dropped continuous {dropped_c}, discrete {dropped_d}; \
             coalesced away {coalesced}; transport sends {sent_total} ({sent_noise} with noise_scale) over {ticks:.0} ticks; \
             panic latency {latencies:?}; RSS {rss_before} KiB → max {max_rss} KiB; \
             {activity} activity reports (last counted {activity_count})"
        );

        assert!(received >= RATE * SECS);
        assert_eq!(dropped_d, 0, "discrete messages are never dropped");
        assert!(
            dropped_c * 100 <= received,
            "more than 1% of CCs dropped: {dropped_c}"
        );
        assert_eq!(panics.len(), panic_at.len(), "every panic note acted");
        for l in &latencies {
            assert!(*l <= tick, "panic took {l:?}, more than one engine tick ({tick:?})");
        }
        // Coalesced: at most a couple of sends per tick (fader and encoder bindings), far fewer
        // than the 100,000 CCs.
        assert!(sent_noise >= 10, "the stream flowed: {sent_noise}");
        assert!(
            (sent_noise as f64) <= ticks * 2.0 * 1.5 + 20.0,
            "not coalesced: {sent_noise} sends in {ticks:.0} ticks"
        );
        // Activity reports are throttled (≤ 10/s; generous cut-off) and counted what arrived.
        assert!(activity >= 1, "no activity report");
        assert!(
            (activity as f64) <= elapsed.as_secs_f64() * 10.0 * 1.5 + 20.0,
            "{activity} activity reports in {elapsed:?}"
        );
        assert!(
            activity_count <= received - dropped_c,
            "counted {activity_count}, received {received}, dropped {dropped_c}"
        );
        // Bounded memory: the channels are bounded; growth stays small.
        assert!(
            max_rss.saturating_sub(rss_before) < 64 * 1024,
            "RSS grew from {rss_before} KiB to {max_rss} KiB"
        );
        // The engine ended on the last fader position (or an encoder step from it).
        let v = final_state
            .params
            .store
            .get("noise_scale")
            .and_then(|v| v.as_f64())
            .unwrap();
        let want = f64::from(last_value) / 127.0;
        assert!((v - want).abs() < 0.01, "final {v}, last fader {want}");
        let _ = transport.task.await;
    });
}
