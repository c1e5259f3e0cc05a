//! Four threads connect and close midir JACK clients at once, as the deck's port thread and
//! clock-out thread do on every hot-plug and at shutdown, while a controller port and a sink port
//! stay open. Every client is opened and closed under the deck's client lock
//! (`scope_deck::controls::midi::client_lock`), so this checks what the lock cannot: a connection
//! whose drop unregistered its port while its client was still active crashed libjack's own
//! thread (SIGSEGV; fixed by the patch in `vendor/midir`, see `vendor/midir/SCOPE-DECK-PATCH.md`).
//! A crash kills the inner process and fails the outer test; a deadlock fails the deadline.
//!
//! Run with `cargo test --features jack --test midi_jack_stress`.

#![cfg(feature = "jack")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::jack::{self, Jackd};

use std::sync::mpsc;
use std::time::{Duration, Instant};

use scope_deck::controls::midi::client_lock::Guarded;

/// Connect-and-close rounds per thread.
const ROUNDS: usize = 40;
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

fn inner() {
    // The ports the churn connects to, open for the whole run.
    let _controller = jack::virtual_output("stress-ctl", "out");
    let _sink = jack::virtual_input("stress-sink", "in", |_, _| {});
    let (tx, rx) = mpsc::channel::<Round>();
    for t in 0..2 {
        let input_tx = tx.clone();
        std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                let _ = input_tx.send(connect_input(&format!("stress-in{t}")));
            }
        });
        let output_tx = tx.clone();
        std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                let _ = output_tx.send(connect_output(&format!("stress-out{t}")));
            }
        });
    }
    drop(tx);
    let started = Instant::now();
    let expected = 4 * ROUNDS;
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

/// Opens an input client, connects it to the controller port, closes it (all under the lock).
fn connect_input(client: &str) -> Round {
    let conn = Guarded::open(|| {
        let input = midir::MidiInput::new(client).map_err(|e| e.to_string())?;
        let port = input
            .ports()
            .into_iter()
            .find(|p| input.port_name(p).is_ok_and(|n| n == "stress-ctl:out"))
            .ok_or("no port stress-ctl:out")?;
        input
            .connect(&port, "in", |_, _, _| {}, ())
            .map_err(|e| e.to_string())
    })?;
    drop(conn);
    Ok(())
}

/// Opens an output client, connects it to the sink port, sends a note, closes it.
fn connect_output(client: &str) -> Round {
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
    drop(conn);
    Ok(())
}
