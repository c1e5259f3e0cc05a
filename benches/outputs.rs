//! Benchmark (not a test): several outputs (`[[outputs]]`) against dry-run transports, with the
//! real engine and reducer: key → every output's transport reported the message sent, p50/p99,
//! and the process's CPU and memory while a 100 Hz fader drives all of them, for 1, 3 and 8
//! outputs.
//!
//! The latency is a round trip: the action goes in on the engine's input queue, the engine
//! folds it and addresses one command per output, each dry-run transport coalesces and reports
//! `Sent`, and that report travels back (output 0's on the engine's transport channel, the
//! others through their forwarders) until the engine emits it. It is therefore an upper bound
//! of key-to-wire for the *last* of N outputs.
//!
//! Run: `cargo bench --profile dev --bench outputs`. Results go to docs/performance.md under
//! `## Several outputs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use scope_deck::app::engine::{Clocks, EngineIo, OutputLinks, Taps, run_outputs};
use scope_deck::core::Action;
use scope_deck::core::effect::Event;
use scope_deck::core::msg::{Msg, StopSignal};
use scope_deck::core::outputs::{OutputSpec, OutputsSlice};
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::{AppState, CoreSettings};
use scope_deck::transport::TransportEvent;
use scope_deck::transport::config::{Backend, ServerConfig};
use serde_json::json;
use tokio::sync::{mpsc, watch};

struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    cpu_pct: f64,
    rss_mib: f64,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run_with(n: usize) -> Figures {
    let cfg = ServerConfig {
        backend: Backend::DryRun,
        ..ServerConfig::default()
    };
    let (inputs_tx, inputs_rx) = mpsc::channel::<Msg>(scope_deck::app::INPUT_CAPACITY);
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(65_536);
    let mut handles = Vec::new();
    let mut first_events = None;
    let mut forwarders = Vec::new();
    for i in 0..n {
        let (tx, mut rx) = mpsc::channel(scope_deck::transport::EVENT_CAPACITY);
        handles.push(scope_deck::transport::spawn(&cfg, true, tx).unwrap());
        if i == 0 {
            first_events = Some(rx);
        } else {
            let to = inputs_tx.clone();
            forwarders.push(tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    let _ = to.send(Msg::OutputEvent { output: i, event }).await;
                }
                let _ = to
                    .send(Msg::OutputEvent {
                        output: i,
                        event: TransportEvent::Stopped,
                    })
                    .await;
            }));
        }
    }
    let mut state = AppState::new(CoreSettings {
        confirm_quit: false,
        ..CoreSettings::default()
    });
    state.outputs = OutputsSlice::new(
        (0..n)
            .map(|i| OutputSpec {
                name: format!("out{}", i + 1),
                backend: "dry-run".into(),
                target: "dry run".into(),
                failover_after: Duration::from_secs(5),
                ..OutputSpec::default()
            })
            .collect(),
    );
    let (snap_tx, _snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
    let links = OutputLinks {
        rest: handles[1..].iter().map(|h| h.link.clone()).collect(),
        video_routes: None,
    };
    let engine = tokio::spawn(run_outputs(
        state,
        EngineIo::new(
            inputs_rx,
            first_events.unwrap(),
            handles[0].link.clone(),
            snap_tx,
        )
        .with_events(ev_tx),
        Clocks::from_hz(100.0, 30),
        Taps::default(),
        links,
    ));
    // Wait until every output streams (dry run: at once).
    let mut streaming = 0;
    while streaming < n {
        if let Event::OutputConnection {
            state: scope_deck::transport::ConnState::Streaming,
            ..
        } = ev_rx.recv().await.unwrap()
        {
            streaming += 1;
        }
    }
    // Latency: one key at a time, until all N outputs reported it sent.
    let mut lat = Vec::new();
    for k in 0..300 {
        let v = 0.1 + (k % 250) as f64 * 0.002;
        let t = Instant::now();
        inputs_tx
            .send(Msg::key(Action::SetParam {
                key: "noise_scale".into(),
                value: json!(v),
            }))
            .await
            .unwrap();
        let mut seen = 0;
        while seen < n {
            let ev = tokio::time::timeout(Duration::from_secs(2), ev_rx.recv())
                .await
                .expect("every output reports within 2 s")
                .unwrap();
            let payload = match &ev {
                Event::Sent { payload } | Event::OutputSent { payload, .. } => payload,
                _ => continue,
            };
            if payload.get("noise_scale").and_then(|x| x.as_f64()) == Some(v) {
                seen += 1;
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        // Slower than the coalescer's 60 Hz, so no send waits for its slot.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lat.sort_by(f64::total_cmp);
    // Load: a 100 Hz fader for 5 s, events drained.
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let drain = tokio::spawn(async move { while ev_rx.recv().await.is_some() {} });
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for k in 0..500 {
        tick.tick().await;
        let _ = inputs_tx.try_send(Msg::key(Action::SetParam {
            key: "noise_scale".into(),
            value: json!(0.1 + (k % 300) as f64 * 0.002),
        }));
    }
    let cpu = (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let rss = rss_mib();
    let _ = inputs_tx.send(Msg::Signal(StopSignal::Interrupt)).await;
    drop(inputs_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), engine).await;
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(2), h.task).await;
    }
    for f in forwarders {
        f.abort();
    }
    drain.abort();
    Figures {
        p50_ms: pct(&lat, 0.5),
        p99_ms: pct(&lat, 0.99),
        cpu_pct: cpu,
        rss_mib: rss,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| outputs | key → all sent p50 | p99 | CPU (100 Hz fader) | RSS |");
    println!("|---|---|---|---|---|");
    for n in [1, 3, 8] {
        let f = rt.block_on(run_with(n));
        println!(
            "| {n} | {:.2} ms | {:.2} ms | {:.1} % of one core | {:.1} MiB |",
            f.p50_ms, f.p99_ms, f.cpu_pct, f.rss_mib
        );
    }
}
