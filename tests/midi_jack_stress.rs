//! Four threads connect and close midir JACK clients at once, as the deck's port thread and
//! clock-out thread do on every hot-plug and at shutdown, each keeping its last few connections
//! open, while a controller port and a sink port stay open. Every client is opened and closed
//! under the deck's client lock (`scope_deck::controls::midi::client_lock`), so this checks what
//! the lock cannot: upstream midir 0.11.1 drops a connection by unregistering its port while its
//! client is still active, and libjack's own thread for that client crashed (SIGSEGV) walking the
//! client's ports; `vendor/midir` deactivates first (see `vendor/midir/SCOPE-DECK-PATCH.md`; the
//! loop figures with and without the patch are in docs/performance.md). A crash kills the inner
//! process and fails the outer test; a deadlock fails the deadline.
//!
//! Run with `cargo test --features jack --test midi_jack_stress`.

#![cfg(feature = "jack")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::jack::{self, Jackd};

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use scope_deck::controls::midi::client_lock::Guarded;

/// Connect-and-close rounds per thread.
const ROUNDS: usize = 40;
/// Connections each thread keeps open (it closes its oldest on each new one): more active
/// clients, each notified of every graph change, so a close often meets a notification in flight.
const HELD: usize = 3;
/// All rounds of all threads must be done by then (a few seconds when nothing is stuck).
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn connection_churn_from_four_threads() {
    if std::env::var_os(jack::INNER).is_some() {
        inner();
        return;
    }
    let jackd = Jackd::start("scope-deck-stress", 256);
    let status = jackd.rerun_inside("connection_churn_from_four_threads");
    drop(jackd);
    assert!(status.success(), "inner stress test failed: {status}");
}

/// What a churn thread reports after each round, or why it stopped.
type Round = Result<(), String>;
/// A connection held by a churn thread.
type Held<T> = Result<Guarded<T>, String>;

fn inner() {
    // The ports the churn connects to, open for the whole run.
    let _controller = jack::virtual_output("stress-ctl", "out");
    let _sink = jack::virtual_input("stress-sink", "in", |_, _| {});
    let (tx, rx) = mpsc::channel::<Round>();
    for t in 0..2 {
        let input_tx = tx.clone();
        std::thread::spawn(move || {
            let mut held = VecDeque::new();
            for _ in 0..ROUNDS {
                let round = connect_input(&format!("stress-in{t}")).map(|conn| {
                    held.push_back(conn);
                    if held.len() > HELD {
                        held.pop_front();
                    }
                });
                let _ = input_tx.send(round);
            }
            // Closing what is still held counts as one more round.
            held.clear();
            let _ = input_tx.send(Ok(()));
        });
        let output_tx = tx.clone();
        std::thread::spawn(move || {
            let mut held = VecDeque::new();
            for _ in 0..ROUNDS {
                let round = connect_output(&format!("stress-out{t}")).map(|conn| {
                    held.push_back(conn);
                    if held.len() > HELD {
                        held.pop_front();
                    }
                });
                let _ = output_tx.send(round);
            }
            // Closing what is still held counts as one more round.
            held.clear();
            let _ = output_tx.send(Ok(()));
        });
    }
    drop(tx);
    let started = Instant::now();
    let expected = 4 * (ROUNDS + 1);
    for done in 0..expected {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("round {done} of {expected} failed: {e}"),
            Err(e) => panic!("only {done} of {expected} rounds done after {DEADLINE:?}: {e}"),
        }
    }
    println!(
        "{expected} connect/close rounds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Opens an input client and connects it to the controller port (under the lock).
fn connect_input(client: &str) -> Held<midir::MidiInputConnection<()>> {
    Guarded::open(|| {
        let input = midir::MidiInput::new(client).map_err(|e| e.to_string())?;
        let port = input
            .ports()
            .into_iter()
            .find(|p| input.port_name(p).is_ok_and(|n| n == "stress-ctl:out"))
            .ok_or("no port stress-ctl:out")?;
        input
            .connect(&port, "in", |_, _, _| {}, ())
            .map_err(|e| e.to_string())
    })
}

/// Opens an output client, connects it to the sink port (under the lock), sends a note.
fn connect_output(client: &str) -> Held<midir::MidiOutputConnection> {
    let mut conn = Guarded::open(|| {
        let output = midir::MidiOutput::new(client).map_err(|e| e.to_string())?;
        let port = output
            .ports()
            .into_iter()
            .find(|p| output.port_name(p).is_ok_and(|n| n == "stress-sink:in"))
            .ok_or("no port stress-sink:in")?;
        output.connect(&port, "out").map_err(|e| e.to_string())
    })?;
    conn.send(&[0x90, 60, 100]).map_err(|e| e.to_string())?;
    Ok(conn)
}
