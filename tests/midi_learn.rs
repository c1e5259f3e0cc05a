//! Learn mode end to end: learn key → a touched MIDI control → the next key's action becomes the
//! target → the MIDI edge appends the binding to the user's keymap file (keeping its comments
//! and layout), reloads it, and the control works at once.
//!
//! MIDI messages enter through the edge's injector (same channels as the midir callbacks); the
//! engine is the real reducer folded by the test loop, which hands its `Effect::MidiLearn`
//! commands to the edge as the engine does (`try_send`) and folds the edge's `Msg::Learn`
//! answers. Real ports are covered by `midi_jack`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use scope_deck::controls::keymap::Keymap;
use scope_deck::controls::midi::io::{LearnTarget, MidiOptions, spawn};
use scope_deck::controls::midi::learn::{LearnCmd, LearnMsg, LearnStage};
use scope_deck::controls::midi::parse::MidiMsg;
use scope_deck::core::action::{Action, ActionSource};
use scope_deck::core::effect::Effect;
use scope_deck::core::msg::Msg;
use scope_deck::core::snapshot::UiSnapshot;
use scope_deck::core::state::AppState;
use scope_deck::core::update::update;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const USER_KEYMAP: &str = "# My rig — hand-written, keep my notes!\nname = \"rig\"  # shown in help\n\n[normal]\n\"q\" = \"quit\"      # out\n\"r\" = \"reset_cache\"\n\"l\" = \"learn\"\n\n# the fader\n[[midi]]\ntype = \"cc\"\ncc = 0\nparam = \"noise_scale\"   # main fader\n";

/// The engine's part: fold, hand learn commands to the MIDI edge, publish.
struct Engine {
    state: AppState,
    snaps: watch::Sender<Arc<UiSnapshot>>,
    learn: mpsc::Sender<LearnCmd>,
}

impl Engine {
    fn apply(&mut self, msg: Msg) {
        for fx in update(&mut self.state, msg, Duration::ZERO) {
            if let Effect::MidiLearn(cmd) = fx {
                self.learn.try_send(cmd).expect("learn lane full");
            }
        }
        self.snaps
            .send_replace(Arc::new(UiSnapshot::of(&self.state, Duration::ZERO)));
    }
}

/// The next message that is not an activity report (those are folded on the way).
async fn next_msg(rx: &mut mpsc::Receiver<Msg>, engine: &mut Engine) -> Msg {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("timed out")
            .expect("edge ended");
        if matches!(msg, Msg::MidiActivity(_)) {
            engine.apply(msg);
        } else {
            return msg;
        }
    }
}

async fn next_midi_action(rx: &mut mpsc::Receiver<Msg>, engine: &mut Engine) -> Action {
    // Activity reports (the injected pad counts as input activity) are applied on the way.
    let msg = next_msg(rx, engine).await;
    let Msg::Action {
        action,
        source: ActionSource::Midi,
    } = &msg
    else {
        panic!("unexpected {msg:?}");
    };
    let action = action.clone();
    engine.apply(msg);
    action
}

#[test]
fn learned_binding_is_appended_keeping_comments_and_works_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keymaps").join("rig.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, USER_KEYMAP).unwrap();
        let mut errs = Vec::new();
        let km = Keymap::from_text("rig.toml", "rig", USER_KEYMAP, &mut errs).unwrap();

        let state = AppState::new(Default::default());
        let (snaps, snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));
        let (tx, mut rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let edge = spawn(
            MidiOptions {
                config: km.midi.clone(),
                tick: Duration::from_millis(10),
                learn: LearnTarget {
                    path: Some(path.clone()),
                    seed: None,
                },
                open_ports: false,
                learn_unavailable: None,
            },
            tx,
            snap_rx,
            cancel.clone(),
        );
        let mut engine = Engine {
            state,
            snaps,
            learn: edge.learn.clone(),
        };
        let port: Arc<str> = Arc::from("nanoPAD2 MIDI 1 24:0");
        let pad = MidiMsg::NoteOn {
            channel: 9,
            note: 40,
            velocity: 100,
        };

        // Before learning the pad does nothing.
        assert!(edge.inject.send(&port, pad));

        // 1. Learn key: the engine arms the edge (a command on its own lane, ahead of the pad).
        engine.apply(Msg::key(Action::Learn));
        // 2. Touch the pad: captured, not acted on.
        assert!(edge.inject.send(&port, pad));
        let captured = next_msg(&mut rx, &mut engine).await;
        let Msg::Learn(LearnMsg::Captured { control }) = &captured else {
            panic!("{captured:?}");
        };
        let control = control.clone();
        engine.apply(captured);
        assert!(matches!(
            engine.state.controls.learn,
            LearnStage::WaitingTarget(_)
        ));
        assert_eq!(control.device, "nanoPAD2 MIDI 1");
        assert_eq!(control.channel, 10);
        assert_eq!(control.number, Some(40));
        // 3. The key whose action the pad takes over.
        engine.apply(Msg::key(Action::ResetCache));
        // The edge writes the file and reports.
        match next_msg(&mut rx, &mut engine).await {
            Msg::Learn(LearnMsg::Saved { message }) => {
                assert!(message.contains("rig.toml"), "{message}");
                engine.apply(Msg::Learn(LearnMsg::Saved { message }));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(engine.state.controls.learn, LearnStage::Off);

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(USER_KEYMAP),
            "comments and layout kept:\n{text}"
        );
        let added = &text[USER_KEYMAP.len()..];
        for want in [
            "[[midi]]",
            "device = \"nanoPAD2 MIDI 1\"",
            "type = \"note\"",
            "channel = 10",
            "note = 40",
            "action = \"reset_cache\"",
            "# learned:",
        ] {
            assert!(added.contains(want), "missing `{want}` in:\n{added}");
        }
        let mut errs = Vec::new();
        let reloaded = Keymap::from_text("rig.toml", "rig", &text, &mut errs).unwrap();
        assert_eq!(reloaded.midi.bindings.len(), 2);

        // 4. The pad works at once.
        assert!(edge.inject.send(&port, pad));
        assert_eq!(
            next_midi_action(&mut rx, &mut engine).await,
            Action::ResetCache
        );
        // The pad shows as one device with its last message (reports may trail the action).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let dev = engine
                .state
                .controls
                .midi
                .devices
                .first()
                .map(|d| d.activity.clone());
            if dev
                .as_ref()
                .is_some_and(|d| d.last == Some(pad) && d.count >= 3)
            {
                assert_eq!(engine.state.controls.midi.devices.len(), 1);
                assert_eq!(
                    engine.state.controls.midi.devices[0].label(),
                    "nanoPAD2 MIDI 1"
                );
                break;
            }
            assert!(Instant::now() < deadline, "no activity report: {dev:?}");
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            {
                engine.apply(msg);
            }
        }
        cancel.cancel();
    });
}
