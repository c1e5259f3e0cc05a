//! Reducer tests: fold scripted messages through `update` and check state and effects.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::msg::StopSignal;
use crate::state::{CoreSettings, Lifecycle, PanicMode};
use crate::transport::types::{ConnState, ParamUpdate, TransportCmd, TransportEvent};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn started() -> AppState {
    let mut s = AppState::new(CoreSettings::default());
    update(&mut s, Msg::Started, ms(0));
    s
}

fn streaming() -> AppState {
    let mut s = started();
    update(
        &mut s,
        Msg::Transport(TransportEvent::State {
            state: ConnState::Streaming,
            reason: None,
        }),
        ms(1),
    );
    s
}

fn updates(fx: &[Effect]) -> Vec<ParamUpdate> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Transport(TransportCmd::Update(u)) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

fn has_shutdown(fx: &[Effect]) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::Transport(TransportCmd::Shutdown)))
}

#[test]
fn started_announces_and_connects_with_full_state() {
    let mut s = AppState::new(CoreSettings::default());
    let fx = update(&mut s, Msg::Started, ms(0));
    assert!(matches!(fx[0], Effect::Emit(Event::Ready { .. })));
    assert_eq!(fx[1], Effect::Transport(TransportCmd::Connect), "{fx:?}");
    // The transport reads the full desired state the engine publishes after this fold.
    let initial = s.params.store.full_state();
    assert_eq!(initial["paused"], json!(false));
    assert_eq!(
        initial["prompts"][0]["text"],
        json!(CoreSettings::default().initial_prompt)
    );
}

#[test]
fn quit_while_idle_shuts_down_at_once_and_exits_after_goodbye() {
    let mut s = started();
    let fx = update(&mut s, Msg::key(Action::Quit), ms(5));
    assert!(has_shutdown(&fx));
    assert_eq!(s.lifecycle, Lifecycle::ShuttingDown);
    let fx = update(&mut s, Msg::Transport(TransportEvent::Stopped), ms(6));
    assert_eq!(fx, vec![Effect::Exit]);
    assert_eq!(s.lifecycle, Lifecycle::Finished);
}

#[test]
fn quit_while_streaming_needs_confirmation_within_window() {
    let mut s = streaming();
    let fx = update(&mut s, Msg::key(Action::Quit), ms(10));
    assert!(!has_shutdown(&fx));
    assert!(s.controls.quit_pending.is_some());
    // The window expires on a tick: a later single press asks again.
    update(
        &mut s,
        Msg::Tick,
        ms(10) + update::QUIT_CONFIRM_WINDOW + ms(1),
    );
    assert!(s.controls.quit_pending.is_none());
    let fx = update(&mut s, Msg::key(Action::Quit), ms(5000));
    assert!(!has_shutdown(&fx));
    let fx = update(&mut s, Msg::key(Action::Quit), ms(5100));
    assert!(has_shutdown(&fx));
}

#[test]
fn scripted_quit_needs_no_confirmation() {
    let mut s = streaming();
    let fx = update(
        &mut s,
        Msg::Action {
            action: Action::Quit,
            source: ActionSource::Script,
        },
        ms(10),
    );
    assert!(has_shutdown(&fx));
}

#[test]
fn another_action_cancels_a_pending_quit() {
    let mut s = streaming();
    update(&mut s, Msg::key(Action::Quit), ms(10));
    update(&mut s, Msg::key(Action::ResetCache), ms(20));
    let fx = update(&mut s, Msg::key(Action::Quit), ms(30));
    assert!(!has_shutdown(&fx));
}

#[test]
fn force_quit_and_signals_skip_confirmation_and_happen_once() {
    let mut s = streaming();
    assert!(has_shutdown(&update(
        &mut s,
        Msg::key(Action::ForceQuit),
        ms(10)
    )));
    assert!(!has_shutdown(&update(
        &mut s,
        Msg::Signal(StopSignal::Terminate),
        ms(11)
    )));
    let mut s = streaming();
    let fx = update(&mut s, Msg::Signal(StopSignal::Hangup), ms(10));
    assert!(has_shutdown(&fx));
    assert!(fx.contains(&Effect::Emit(Event::Stopping {
        reason: "hangup".into()
    })));
}

#[test]
fn actions_are_ignored_once_shutting_down() {
    let mut s = started();
    update(&mut s, Msg::key(Action::ForceQuit), ms(1));
    assert!(update(&mut s, Msg::key(Action::ResetCache), ms(2)).is_empty());
}

/// View actions belong to the dashboard that pressed them: from a key they change nothing in
/// the engine; from MIDI or a script every dashboard gets them, numbered; `cancel` still stops
/// MIDI learn.
#[test]
fn view_actions_from_keys_stay_out_of_the_show_and_others_reach_every_dashboard() {
    let mut s = started();
    let before = s.ui.clone();
    update(&mut s, Msg::key(Action::ToggleHelp), ms(1));
    update(&mut s, Msg::key(Action::EditPrompt { slot: None }), ms(2));
    update(&mut s, Msg::key(Action::Cancel), ms(3));
    assert_eq!(s.ui.view_actions, before.view_actions);
    let fx = update(
        &mut s,
        Msg::Action {
            action: Action::TogglePreview,
            source: ActionSource::Midi,
        },
        ms(4),
    );
    assert!(
        !fx.iter()
            .any(|f| matches!(f, Effect::Emit(Event::Notice { .. }))),
        "no 'not available' notice: {fx:?}"
    );
    update(
        &mut s,
        Msg::Action {
            action: Action::Cancel,
            source: ActionSource::Script,
        },
        ms(5),
    );
    assert_eq!(s.ui.view_actions.serial, 2);
    let seen: Vec<_> = s.ui.view_actions.since(0).cloned().collect();
    assert_eq!(seen, vec![Action::TogglePreview, Action::Cancel]);
    assert_eq!(s.ui.view_actions.since(1).count(), 1);
    for i in 0..20 {
        update(
            &mut s,
            Msg::Action {
                action: Action::ToggleHelp,
                source: ActionSource::Midi,
            },
            ms(10 + i),
        );
    }
    assert_eq!(
        s.ui.view_actions.recent.len(),
        state::VIEW_ACTIONS_KEPT,
        "bounded"
    );
    assert_eq!(s.ui.view_actions.serial, 22);
}

#[test]
fn pause_resume_and_toggle_send_paused() {
    let mut s = started();
    let u = updates(&update(&mut s, Msg::key(Action::Pause), ms(1)));
    assert_eq!(u, vec![ParamUpdate::one("paused", json!(true))]);
    let u = updates(&update(&mut s, Msg::key(Action::TogglePause), ms(2)));
    assert_eq!(u, vec![ParamUpdate::one("paused", json!(false))]);
    let u = updates(&update(&mut s, Msg::key(Action::TogglePause), ms(3)));
    assert_eq!(u, vec![ParamUpdate::one("paused", json!(true))]);
    let u = updates(&update(&mut s, Msg::key(Action::Resume), ms(4)));
    assert_eq!(u, vec![ParamUpdate::one("paused", json!(false))]);
}

#[test]
fn reset_cache_is_an_urgent_one_shot_and_flashes() {
    let mut s = started();
    let u = updates(&update(&mut s, Msg::key(Action::ResetCache), ms(7)));
    assert_eq!(u, vec![ParamUpdate::trigger("reset_cache", json!(true))]);
    assert_eq!(s.params.last_trigger, Some(("reset_cache".into(), ms(7))));
    assert!(
        s.params.store.get("reset_cache").is_none(),
        "one-shots are not replayed"
    );
}

#[test]
fn set_and_adjust_param_validate_and_clamp() {
    let mut s = started();
    let fx = update(
        &mut s,
        Msg::key(Action::SetParam {
            key: "noise_scale".into(),
            value: json!(3.0),
        }),
        ms(1),
    );
    assert!(fx.contains(&Effect::Emit(Event::Param {
        key: "noise_scale".into(),
        value: json!(1.0),
        clamped: true
    })));
    let u = updates(&update(
        &mut s,
        Msg::key(Action::AdjustParam {
            key: "noise_scale".into(),
            delta: -0.25,
        }),
        ms(2),
    ));
    assert_eq!(u, vec![ParamUpdate::one("noise_scale", json!(0.75))]);
    // Bad key: nothing sent, an error notice instead.
    let fx = update(
        &mut s,
        Msg::key(Action::SetParam {
            key: "warp".into(),
            value: json!(1),
        }),
        ms(3),
    );
    assert!(updates(&fx).is_empty());
    assert_eq!(
        s.ui.notices.back().map(|n| n.level),
        Some(state::Level::Error)
    );
}

#[test]
fn set_param_on_a_one_shot_key_fires_a_trigger() {
    let mut s = started();
    let u = updates(&update(
        &mut s,
        Msg::key(Action::SetParam {
            key: "reset_cache".into(),
            value: json!(true),
        }),
        ms(1),
    ));
    assert_eq!(u, vec![ParamUpdate::trigger("reset_cache", json!(true))]);
}

#[test]
fn set_prompt_is_urgent_and_empty_prompts_are_ignored() {
    let mut s = started();
    let u = updates(&update(
        &mut s,
        Msg::key(Action::SetPrompt {
            text: "neon rain".into(),
            raw: false,
        }),
        ms(1),
    ));
    assert_eq!(u.len(), 1);
    assert!(u[0].urgent);
    assert_eq!(u[0].values["prompts"][0]["text"], json!("neon rain"));
    assert!(
        updates(&update(
            &mut s,
            Msg::key(Action::SetPrompt {
                text: "  ".into(),
                raw: false,
            }),
            ms(2)
        ))
        .is_empty()
    );
    assert_eq!(s.params.prompt, "neon rain");
}

#[test]
fn panic_pauses_resets_and_release_restores() {
    let mut s = started();
    let u = updates(&update(&mut s, Msg::key(Action::Panic), ms(1)));
    assert_eq!(u.len(), 1);
    assert!(u[0].urgent);
    assert_eq!(u[0].values["paused"], json!(true));
    assert_eq!(u[0].values["reset_cache"], json!(true));
    assert!(s.controls.panic.is_some());
    let u = updates(&update(&mut s, Msg::key(Action::ReleasePanic), ms(2)));
    assert_eq!(u[0].values["paused"], json!(false));
    assert!(s.controls.panic.is_none());
}

#[test]
fn panic_with_safe_prompt_keeps_playing_and_resume_restores_prompt() {
    let mut s = AppState::new(CoreSettings {
        panic_mode: PanicMode::SafePrompt,
        ..CoreSettings::default()
    });
    update(&mut s, Msg::Started, ms(0));
    let before = s.params.store.get("prompts").cloned().unwrap();
    let u = updates(&update(&mut s, Msg::key(Action::Panic), ms(1)));
    assert_eq!(
        u[0].values["prompts"][0]["text"],
        json!(s.settings.safe_prompt)
    );
    assert!(u[0].values.get("paused").is_none());
    let u = updates(&update(&mut s, Msg::key(Action::Resume), ms(2)));
    assert_eq!(u[0].values["prompts"], before);
}

#[test]
fn reconnect_asks_the_transport() {
    let mut s = started();
    let fx = update(&mut s, Msg::key(Action::Reconnect), ms(1));
    assert!(fx.contains(&Effect::Transport(TransportCmd::Reconnect)));
}

#[test]
fn download_models_asks_the_transport() {
    let mut s = started();
    let fx = update(&mut s, Msg::key(Action::DownloadModels), ms(1));
    assert!(fx.contains(&Effect::Transport(TransportCmd::DownloadModels)));
    let v = serde_json::to_value(Action::DownloadModels).unwrap();
    assert_eq!(v["action"], Action::DownloadModels.name());
}

#[test]
fn tempo_actions_reach_the_beat_tracker() {
    use crate::audio::tempo::TempoCmd;
    let mut s = started();
    let fx = update(&mut s, Msg::key(Action::TapTempo), ms(1500));
    assert!(fx.contains(&Effect::Tempo(TempoCmd::Tap { at_secs: 1.5 })));
    // A nudge holds a manual tempo (no tempo known yet: from 120 BPM).
    let fx = update(&mut s, Msg::key(Action::NudgeTempo { bpm: -0.5 }), ms(1600));
    assert!(fx.contains(&Effect::Tempo(TempoCmd::External {
        bpm: 119.5,
        beat_phase: None,
        source: crate::audio::features::TempoSource::Tap
    })));
    let fx = update(&mut s, Msg::key(Action::Redownbeat), ms(1700));
    assert!(fx.contains(&Effect::Tempo(TempoCmd::Redownbeat)));
    let ext = TempoCmd::External {
        bpm: 128.0,
        beat_phase: None,
        source: crate::audio::features::TempoSource::MidiClock,
    };
    update(&mut s, Msg::Tempo(ext), ms(1800));
    assert_eq!(
        s.audio.tempo_source,
        crate::audio::features::TempoSource::MidiClock
    );
    // The clock stops: the held manual tempo leads again until cleared.
    update(&mut s, Msg::Tempo(TempoCmd::ExternalStopped), ms(1900));
    assert_eq!(
        s.audio.tempo_source,
        crate::audio::features::TempoSource::Tap
    );
    update(&mut s, Msg::key(Action::ClearTap), ms(2000));
    assert_eq!(
        s.audio.tempo_source,
        crate::audio::features::TempoSource::Detected
    );
}

#[test]
fn theme_actions_without_themes_say_so() {
    let mut s = started();
    update(&mut s, Msg::key(Action::ThemeNext), ms(1));
    assert!(
        s.ui.notices
            .back()
            .unwrap()
            .message
            .contains("no themes loaded")
    );
}

#[test]
fn transport_events_update_the_slice() {
    let mut s = started();
    let fx = update(
        &mut s,
        Msg::Transport(TransportEvent::State {
            state: ConnState::Warming,
            reason: Some("loading".into()),
        }),
        ms(1),
    );
    assert_eq!(fx.len(), 1);
    // Same state again: no duplicate event.
    assert!(
        update(
            &mut s,
            Msg::Transport(TransportEvent::State {
                state: ConnState::Warming,
                reason: Some("loading".into())
            }),
            ms(2)
        )
        .is_empty()
    );
    update(
        &mut s,
        Msg::Transport(TransportEvent::Sent {
            payload: json!({"paused": false}),
        }),
        ms(3),
    );
    assert_eq!(s.transport.sent_count, 1);
    update(
        &mut s,
        Msg::Transport(TransportEvent::Error(
            "POST /api/v1/webrtc/offer: 500".into(),
        )),
        ms(4),
    );
    assert!(s.transport.last_error.as_deref().unwrap().contains("500"));
}

#[test]
fn bad_input_becomes_an_error_notice() {
    let mut s = started();
    let fx = update(
        &mut s,
        Msg::BadInput("line 1: unknown action".into()),
        ms(1),
    );
    assert!(matches!(
        &fx[0],
        Effect::Emit(Event::Notice {
            level: state::Level::Error,
            ..
        })
    ));
}

#[test]
fn activity_is_bounded() {
    let mut s = started();
    for i in 0..200 {
        update(&mut s, Msg::key(Action::TogglePause), ms(i));
    }
    assert_eq!(s.controls.recent.len(), state::RECENT_LEN);
}

#[test]
fn spectrum_peaks_hold_then_decay_with_engine_time() {
    use crate::audio::features::AudioFrame;
    let mut s = started();
    let mut loud = AudioFrame::default();
    loud.spectrum[3] = 0.9;
    update(&mut s, Msg::AudioFrame(loud), ms(1000));
    assert_eq!(s.audio.spectrum_peaks[3], 0.9);
    update(&mut s, Msg::AudioFrame(AudioFrame::default()), ms(1500));
    let p = s.audio.spectrum_peaks[3];
    assert!(
        (p - (0.9 - update::PEAK_DECAY_PER_SEC * 0.5)).abs() < 1e-6,
        "{p}"
    );
    update(&mut s, Msg::AudioFrame(AudioFrame::default()), ms(5000));
    assert_eq!(s.audio.spectrum_peaks[3], 0.0);
}

#[test]
fn streaming_again_clears_the_last_error() {
    let mut s = started();
    update(
        &mut s,
        Msg::Transport(TransportEvent::Error("GET /health: no answer".into())),
        ms(1),
    );
    assert!(s.transport.last_error.is_some());
    update(
        &mut s,
        Msg::Transport(TransportEvent::State {
            state: ConnState::Streaming,
            reason: None,
        }),
        ms(2),
    );
    assert!(s.transport.last_error.is_none());
}

#[test]
fn a_changed_schema_reclamps_held_values_and_tells_the_performer() {
    let mut s = started();
    update(
        &mut s,
        Msg::key(Action::SetParam {
            key: "noise_scale".into(),
            value: json!(0.9),
        }),
        ms(1),
    );
    let spec = crate::params::ParamSpec {
        key: "noise_scale".into(),
        kind: crate::params::ParamKind::Float { min: 0.0, max: 0.5 },
        one_shot: false,
    };
    let fx = update(
        &mut s,
        Msg::Transport(TransportEvent::Schema(vec![spec])),
        ms(2),
    );
    assert_eq!(s.params.store.get("noise_scale"), Some(&json!(0.5)));
    assert_eq!(
        updates(&fx),
        vec![ParamUpdate::one("noise_scale", json!(0.5))]
    );
    assert!(
        s.ui.notices
            .iter()
            .any(|n| n.message.contains("noise_scale"))
    );
    assert_eq!(s.params.store.schemas_merged(), 1);
}

#[test]
fn dropped_commands_are_counted_and_noticed_at_most_once_a_second() {
    let mut s = started();
    let mut notices = 0;
    for i in 0..50 {
        let fx = update(
            &mut s,
            Msg::CommandDropped(crate::transport::types::CmdKind::Urgent),
            ms(i * 10),
        );
        notices += fx
            .iter()
            .filter(|e| matches!(e, Effect::Emit(Event::Notice { message, .. }) if message.contains("not keeping up")))
            .count();
    }
    assert_eq!(s.transport.commands_dropped, 50);
    assert_eq!(notices, 1, "0..490 ms: one notice");
    let fx = update(
        &mut s,
        Msg::CommandDropped(crate::transport::types::CmdKind::Reconnect),
        ms(1000),
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::Emit(Event::Notice { message, .. }) if message.contains("reconnect dropped (51 commands"))));
}

/// Headless scripts get the video figures once a second, with the age of the last frame.
#[test]
fn video_stats_become_a_video_event_once_a_second_with_the_frame_age() {
    let mut s = started();
    let stats = |frames_in: u64| {
        Msg::VideoStats(Box::new(crate::video::VideoStats {
            frames_in,
            sinks: vec![crate::video::SinkStatus {
                waiting: true,
                ..Default::default()
            }],
            ..Default::default()
        }))
    };
    let video_events = |fx: &[Effect]| -> Vec<Event> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Emit(ev @ Event::Video { .. }) => Some(ev.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(video_events(&update(&mut s, stats(10), ms(1000))).len(), 1);
    assert!(video_events(&update(&mut s, stats(20), ms(1250))).is_empty());
    assert!(video_events(&update(&mut s, stats(20), ms(1500))).is_empty());
    let ev = video_events(&update(&mut s, stats(20), ms(3250)));
    match ev.as_slice() {
        [
            Event::Video {
                frames_in,
                sinks_waiting,
                sinks_failed,
                last_frame_age_s,
                ..
            },
        ] => {
            assert_eq!(*frames_in, 20);
            assert_eq!((*sinks_waiting, *sinks_failed), (1, 0));
            assert_eq!(
                *last_frame_age_s,
                Some(2.0),
                "the counter last moved at 1.25 s"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !s.health.faults.iter().any(|f| f.input.starts_with("sink")),
        "a waiting sink is not a fault"
    );
}

/// A running recording is marked at both ends of an outage (notice → log and headless event).
#[test]
fn recordings_are_marked_when_the_server_goes_away_and_comes_back() {
    let mut s = started();
    let conn = |st: ConnState| {
        Msg::Transport(TransportEvent::State {
            state: st,
            reason: Some("x".into()),
        })
    };
    update(&mut s, conn(ConnState::Connecting), ms(100));
    update(&mut s, conn(ConnState::Streaming), ms(200));
    update(
        &mut s,
        Msg::VideoStats(Box::new(crate::video::VideoStats {
            frames_in: 5,
            sinks: vec![crate::video::SinkStatus {
                running: true,
                file: Some("/rec/show.mkv".into()),
                ..Default::default()
            }],
            ..Default::default()
        })),
        ms(300),
    );
    let notices = |fx: &[Effect]| -> Vec<String> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Emit(Event::Notice { message, .. }) => Some(message.clone()),
                _ => None,
            })
            .collect()
    };
    let n = notices(&update(&mut s, conn(ConnState::Reconnecting), ms(10_000)));
    assert!(
        n.iter()
            .any(|m| m.contains("/rec/show.mkv") && m.contains("outage from 10.0 s")),
        "{n:?}"
    );
    let n = notices(&update(&mut s, conn(ConnState::Connecting), ms(12_000)));
    assert!(n.is_empty(), "{n:?}");
    let n = notices(&update(&mut s, conn(ConnState::Streaming), ms(14_500)));
    assert!(
        n.iter()
            .any(|m| m.contains("/rec/show.mkv") && m.contains("after a 4.5 s outage")),
        "{n:?}"
    );
}
