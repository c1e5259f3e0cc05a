//! A transport that never reads its inbox (a stuck session) must not stop the engine: keys and
//! audio keep being folded and published, continuous values never overflow, and urgent commands
//! that do not fit are counted and shown — in the snapshot and as a notice event — never lost
//! silently. Quitting still ends the engine within its goodbye timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use scope_deck::app::engine::{Clocks, EngineIo, GOODBYE_TIMEOUT, run};
use scope_deck::audio::features::{AudioEvent, AudioFrame};
use scope_deck::core::action::{Action, ActionSource};
use scope_deck::core::effect::Event;
use scope_deck::core::msg::Msg;
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::{AppState, CoreSettings};
use scope_deck::transport::lanes::{self, URGENT_CAPACITY};
use serde_json::json;
use tokio::sync::{mpsc, watch};

/// Generous: the engine answers in microseconds; this only bounds a broken build.
const WITHIN: Duration = Duration::from_secs(10);

fn key(action: Action) -> Msg {
    Msg::Action {
        action,
        source: ActionSource::Keyboard,
    }
}

async fn snapshot_where(
    rx: &mut watch::Receiver<Arc<UiSnapshot>>,
    what: &str,
    pred: impl FnMut(&Arc<UiSnapshot>) -> bool,
) -> Arc<UiSnapshot> {
    match tokio::time::timeout(WITHIN, rx.wait_for(pred)).await {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("the engine stopped publishing before: {what}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_that_never_reads_does_not_stop_the_engine() {
    // The transport's end is held (so the lane stays open) and never read.
    let (link, _stuck_inbox) = lanes::pair();
    let (inputs_tx, inputs_rx) = mpsc::channel::<Msg>(1024);
    let (_tev_tx, tev_rx) = mpsc::channel(16);
    let (frames_tx, frames_rx) = watch::channel(AudioFrame::default());
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(1 << 16);
    let state = AppState::new(CoreSettings {
        confirm_quit: false,
        ..CoreSettings::default()
    });
    let (snap_tx, mut snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
    let engine = tokio::spawn(run(
        state,
        EngineIo::new(inputs_rx, tev_rx, link.clone(), snap_tx)
            .with_audio_frames(frames_rx)
            .with_events(ev_tx),
        Clocks::from_hz(100.0, 10),
    ));

    // Far more urgent commands than the lane holds: every one is folded (its action event
    // appears), the overflow is counted.
    let presses = URGENT_CAPACITY * 3;
    for _ in 0..presses {
        inputs_tx.send(key(Action::ResetCache)).await.unwrap();
    }
    // A flood of continuous values never overflows (latest wins).
    for i in 0..2000 {
        inputs_tx
            .send(key(Action::SetParam {
                key: "noise_scale".into(),
                value: json!(f64::from(i) / 2000.0),
            }))
            .await
            .unwrap();
    }
    let snap = snapshot_where(&mut snap_rx, "all keys folded", |s| {
        s.params
            .iter()
            .any(|r| r.key == "noise_scale" && r.value == json!(1999.0 / 2000.0))
    })
    .await;
    // Connect took one slot; every reset beyond the lane's room was dropped and counted.
    let dropped = snap.transport.commands_dropped;
    assert_eq!(
        dropped,
        (presses + 1 - URGENT_CAPACITY) as u64,
        "the overflow is counted exactly"
    );

    // Audio: beats and frames keep being folded while the transport is stuck.
    for n in 1..=20u64 {
        inputs_tx
            .send(Msg::AudioEvent(AudioEvent::Beat {
                time: n as f64 * 0.5,
                count: n,
                in_bar: (n % 4) as u32,
                bpm: 120.0,
            }))
            .await
            .unwrap();
    }
    frames_tx.send_replace(AudioFrame {
        energy: 0.625,
        ..AudioFrame::default()
    });
    let snap = snapshot_where(&mut snap_rx, "audio folded", |s| {
        s.audio.beats >= 20 && s.audio.frame.energy == 0.625
    })
    .await;
    assert_eq!(
        snap.transport.commands_dropped, dropped,
        "continuous values and audio never count as drops"
    );

    // Quit: the shutdown flag cannot be lost to the full lane; the stuck transport never
    // answers, so the engine leaves after its goodbye timeout.
    inputs_tx.send(key(Action::Quit)).await.unwrap();
    let (final_state, _) = tokio::time::timeout(GOODBYE_TIMEOUT + WITHIN, engine)
        .await
        .expect("the engine left")
        .unwrap();
    assert_eq!(final_state.transport.commands_dropped, dropped);

    // Everything the engine did is visible on the event stream.
    let mut resets = 0;
    let mut overflow_notices = Vec::new();
    while let Ok(ev) = ev_rx.try_recv() {
        match ev {
            Event::Action {
                action: Action::ResetCache,
                ..
            } => resets += 1,
            Event::Notice { message, .. } if message.contains("not keeping up") => {
                overflow_notices.push(message)
            }
            _ => {}
        }
    }
    assert_eq!(resets, presses, "every key press was folded");
    assert!(
        !overflow_notices.is_empty() && overflow_notices.len() <= 3,
        "told, but not once per drop: {overflow_notices:?}"
    );
    assert!(overflow_notices[0].contains("one-shot update dropped"));
}
