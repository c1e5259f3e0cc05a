//! Latency compensation end to end: the real binary (headless, `scope` backend, demo audio at
//! 120 BPM) against the aiortc test peer standing in for a pipeline that shows a parameter change
//! 300 ms after it arrives (`--video-delay-ms 300 --marker-param noise_scale`). A bar-quantised
//! theme switch (noise_scale 0.2 → 0.7) is asked for; the peer logs the first frame that shows
//! it. With `[server] latency_ms = 300` that frame goes out on the bar line (the forwarded beat
//! the switch was quantised to); with 0 it is late by the delay. With nothing configured and a
//! video output running, the deck measures the delay from the switches it sees come back and
//! the next switch lands on the bar. Figures are printed for docs/performance.md; the
//! assertions only tell "on the bar" from "a delay late" (half the delay apart). The control
//! (latency 0) goes out when the tracker's beat reaches the engine: under load after the grid
//! (57 ms in one CI run, which read as the next beat's bar line when only 30 ms were allowed),
//! so its bar line is looked for up to 200 ms back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use common::deck::{Deck, scope_server};
use common::peer::{Peer, PeerOptions};

use common::beat_grid::{
    LATE_OK_COMPENSATED, LATE_OK_UNCOMPENSATED, THEME_A, THEME_B, marker, switch,
    switch_against_the_bar, wait_locked, wait_shown, wall,
};

/// Well under a beat at 120 BPM (500 ms): the peer's bar line comes from forwarded beats, which
/// reach it 10–45 ms after the deck's own grid, and the deck measures 25–45 ms over the delay,
/// so a switch compensated for 400 ms went out up to 490 ms before the peer's bar line and read
/// as sent on the beat before (one local run, round 13).
const DELAY_MS: u64 = 300;

/// How the deck knows the pipeline latency in a run.
#[derive(Clone, Copy)]
enum Latency {
    /// `[server] latency_ms` (not measured).
    Configured(u64),
    /// Measured on the running show (`measure_latency = true`, `latency_ms = 0`), from the
    /// switches the run makes before the one it times.
    Measured,
}

/// One run's figures, seconds from the bar line.
struct Run {
    /// When the timed switch reached the peer.
    sent: f64,
    /// The first frame showing it.
    seen: f64,
    /// The latency the deck measured (`Latency::Measured`).
    measured_ms: Option<u64>,
}

/// One run at a time: each run is a deck (demo audio, beat tracking, video decode) and a peer
/// encoding 30 fps; the two tests side by side doubled the load on a 2-core machine and
/// delayed the forwarded beats the bar line is measured from by hundreds of milliseconds.
static ONE_RUN_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(latency: Latency) -> Run {
    let _alone = ONE_RUN_AT_A_TIME.lock().await;
    let peer = Peer::start(PeerOptions {
        fps: 30.0,
        extra_args: vec![
            "--video-delay-ms".into(),
            DELAY_MS.to_string(),
            "--marker-param".into(),
            "noise_scale".into(),
        ],
        ..PeerOptions::default()
    })
    .await;
    let sb = common::Sandbox::new();
    let (latency_ms, measure, video) = match latency {
        Latency::Configured(ms) => (ms, false, ""),
        // The deck must decode the video to see the switches: a video output that discards it.
        Latency::Measured => (
            0,
            true,
            "[video]\n[[video.sinks]]\nkind = \"custom\"\npipeline = \"fakesink sync=false\"\n",
        ),
    };
    sb.write_config(&format!(
        "{}latency_ms = {latency_ms}\nmeasure_latency = {measure}\n[audio]\nsource = \"demo\"\n\
         [ui]\ntheme = \"default\"\n{video}",
        scope_server(&peer.url())
    ));
    sb.write_theme("default", THEME_A);
    sb.write_theme("cosmic-voyage", THEME_B);
    let mut deck = Deck::start(&sb);
    wait_locked(&peer, Duration::from_secs(60)).await;
    let mut switches = 0;
    let mut measured_ms = None;
    if let Latency::Measured = latency {
        // Switch back and forth, each shown before the next, until the deck says it measured.
        while measured_ms.is_none() {
            assert!(
                switches < 8,
                "no measured latency after {switches} switches (each shown at the peer)"
            );
            let asked = wall();
            switches += 1;
            deck.send(switch(switches));
            wait_shown(&peer, marker(switches), asked).await;
            // The deck sees that frame a moment later; give it a second and a half, then switch
            // again.
            measured_ms = deck
                .wait_until(Duration::from_millis(1500), |e| {
                    e["event"] == "tempo" && e["latency_measured"] == true
                })
                .and_then(|e| e["latency_ms"].as_u64());
        }
    }
    // The timed switch.
    let asked = wall();
    deck.send(switch(switches + 1));
    // Uncompensated, the switch follows the tracker's beat events (late under load); else it is
    // scheduled from the grid.
    let late_ok = match latency {
        Latency::Configured(0) => LATE_OK_UNCOMPENSATED,
        _ => LATE_OK_COMPENSATED,
    };
    let (sent, seen) = switch_against_the_bar(&peer, asked, marker(switches + 1), late_ok).await;
    deck.quit();
    Run {
        sent,
        seen,
        measured_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bar_quantised_switch_shows_on_the_bar_with_compensation_and_late_without() {
    let c = run(Latency::Configured(DELAY_MS)).await;
    let u = run(Latency::Configured(0)).await;
    println!(
        "latency compensation ({DELAY_MS} ms pipeline delay, 30 fps): with latency_ms = {DELAY_MS}: \
         switch sent {:+.0} ms, first frame showing it {:+.0} ms from the bar line; \
         with 0: sent {:+.0} ms, shown {:+.0} ms",
        c.sent * 1e3,
        c.seen * 1e3,
        u.sent * 1e3,
        u.seen * 1e3
    );
    let half = DELAY_MS as f64 / 2e3;
    assert!(
        c.seen.abs() < half,
        "compensated switch should show on the bar line, showed {:+.0} ms from it",
        c.seen * 1e3
    );
    assert!(
        u.seen > half,
        "uncompensated switch should show about {DELAY_MS} ms late, showed {:+.0} ms",
        u.seen * 1e3
    );
}

/// The same pipeline with nothing configured: the deck measures the latency from the switches
/// it sees come back (its change probe on the decoded video) and then sends the next
/// bar-quantised switch early by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_measured_latency_puts_the_switch_on_the_bar() {
    let m = run(Latency::Measured).await;
    let measured = m.measured_ms.expect("measured");
    println!(
        "latency measured live ({DELAY_MS} ms pipeline delay, 30 fps): {measured} ms; \
         switch sent {:+.0} ms, first frame showing it {:+.0} ms from the bar line",
        m.sent * 1e3,
        m.seen * 1e3
    );
    let half = DELAY_MS as f64 / 2e3;
    assert!(
        m.seen.abs() < half,
        "with the measured latency ({measured} ms) the switch should show on the bar line, \
         showed {:+.0} ms from it",
        m.seen * 1e3
    );
}
