//! Benchmark (not a test): what the deck socket adds to a key press on an attached dashboard.
//! A client sends an action line; the service parses it and hands it to the engine's queue; a
//! stand-in engine publishes a new snapshot at once; the hub serialises it and the client reads
//! and decodes it (a busy snapshot: every shipped theme, parameters, meters). In one-process
//! mode the same path is two in-memory channel hops (microseconds), so this round trip is the
//! latency the socket adds. p50/p99/max over `ROUNDS` presses; the budget is ≤ 2 ms p99.
//!
//! Run: `cargo bench --profile dev --bench socket_hop`. Results go to docs/performance.md under
//! `## Deck service`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use scope_deck::core::action::{Action, ActionSource};
use scope_deck::core::msg::Msg;
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::{AppState, CoreSettings};
use scope_deck::core::update::update;
use scope_deck::service::protocol::{DeckClock, ServiceLine};
use scope_deck::service::{ServiceIo, serve, socket};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 2000;

fn busy_state() -> AppState {
    let mut s = AppState::new(CoreSettings::default());
    let themes = scope_deck::config::builtin_themes().unwrap();
    s.mapping = scope_deck::mapping::slice::MappingSlice::new(themes, "cosmic-voyage", 4);
    update(&mut s, Msg::Started, Duration::ZERO);
    for i in 0..20u64 {
        update(
            &mut s,
            Msg::Action {
                action: Action::SetParam {
                    key: "noise_scale".into(),
                    value: serde_json::json!(i as f64 / 20.0),
                },
                source: ActionSource::Midi,
            },
            Duration::from_millis(10 + i),
        );
    }
    s
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too; the measurement is for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("socket_hop: run with `cargo bench --profile dev --bench socket_hop`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join(socket::SOCKET_NAME);
        let listener = socket::bind(&path).unwrap();
        let (inputs_tx, mut inputs_rx) = mpsc::channel::<Msg>(1024);
        let (_events_tx, events_rx) = mpsc::channel(16);
        let mut state = busy_state();
        let (snap_tx, snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
        let size = serde_json::to_vec(&**snap_rx.borrow()).unwrap().len();
        let cancel = CancellationToken::new();
        let io = ServiceIo {
            inputs: inputs_tx,
            events: events_rx,
            snapshots: snap_rx,
            logs: None,
            clock: DeckClock::start(),
            backend: "dry-run".into(),
            preview: None,
        };
        tokio::spawn(serve(listener, io, cancel.clone()));
        // Stand-in engine: fold the action, publish a snapshot at once (as the engine does for
        // key presses).
        let start = Instant::now();
        tokio::spawn(async move {
            while let Some(msg) = inputs_rx.recv().await {
                let now = start.elapsed();
                update(&mut state, msg, now);
                snap_tx.send_replace(Arc::new(UiSnapshot::of(&state, now)));
            }
        });

        let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let _hello = lines.next_line().await.unwrap().unwrap();
        write.write_all(b"{\"cmd\":\"attach\"}\n").await.unwrap();
        let _first = lines.next_line().await.unwrap().unwrap();
        let line = |a: &Action| {
            let mut l = serde_json::to_vec(a).unwrap();
            l.push(b'\n');
            l
        };
        // The same press in one process: queue → stand-in engine → watch → the dashboard.
        let (local_tx, mut local_rx) = mpsc::channel::<Msg>(1024);
        let mut local_state = busy_state();
        let (local_snap_tx, mut local_snaps) =
            watch::channel(Arc::new(UiSnapshot::of(&local_state, Duration::ZERO)));
        tokio::spawn(async move {
            while let Some(msg) = local_rx.recv().await {
                let now = start.elapsed();
                update(&mut local_state, msg, now);
                local_snap_tx.send_replace(Arc::new(UiSnapshot::of(&local_state, now)));
            }
        });
        // A show action (a view key never leaves its dashboard).
        let keys = [Action::TogglePause, Action::TogglePause];
        let mut samples = Vec::with_capacity(ROUNDS);
        let mut local = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS + 100 {
            // Interleaved, so machine load falls on both paths alike.
            let t0 = Instant::now();
            local_tx
                .send(Msg::Action {
                    action: keys[i % 2].clone(),
                    source: ActionSource::Keyboard,
                })
                .await
                .unwrap();
            local_snaps.changed().await.unwrap();
            std::hint::black_box(local_snaps.borrow_and_update().clone());
            if i >= 100 {
                local.push(t0.elapsed());
            }
            let t0 = Instant::now();
            write.write_all(&line(&keys[i % 2])).await.unwrap();
            loop {
                let l = lines.next_line().await.unwrap().unwrap();
                if l.starts_with(r#"{"event":"snapshot""#) {
                    let decoded: ServiceLine = serde_json::from_str(&l).unwrap();
                    std::hint::black_box(decoded);
                    break;
                }
            }
            if i >= 100 {
                samples.push(t0.elapsed());
            }
        }
        let report = |name: &str, v: &mut Vec<Duration>| {
            v.sort();
            let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
            println!(
                "{name}: p50 {:?}  p99 {:?}  max {:?}",
                pct(0.50),
                pct(0.99),
                v[v.len() - 1]
            );
            (pct(0.50), pct(0.99))
        };
        println!("{ROUNDS} key presses, snapshot {size} bytes of JSON");
        let (s50, s99) = report("socket  key → snapshot decoded", &mut samples);
        let (l50, l99) = report("in-process key → snapshot      ", &mut local);
        println!(
            "added by the socket: p50 {:?}  p99 {:?}",
            s50.saturating_sub(l50),
            s99.saturating_sub(l99)
        );
        cancel.cancel();
    });
}
