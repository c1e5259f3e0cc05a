//! Whole-screen snapshots at 80×24 and 160×48, each state built by folding scripted messages
//! through the real reducer (no clock, no sleeps), drawn with the real renderer.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use crate::audio::features::{AudioEvent, AudioFrame, SPECTRUM_BARS};
use crate::controls::keymap::Keymap;
use crate::core::action::{Action, ActionSource};
use crate::core::msg::Msg;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{AppState, CoreSettings, Mode};
use crate::core::update::update;
use crate::transport::types::{ConnState, LinkStats, TransportEvent, WarmUp};
use crate::ui::log_layer::LogLine;
use crate::ui::render::{ViewState, draw};
use crate::ui::style::UiStyle;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

struct Script {
    state: AppState,
    now: Duration,
}

impl Script {
    fn new() -> Self {
        let mut s = Script {
            state: AppState::new(CoreSettings::default()),
            now: Duration::ZERO,
        };
        s.state.audio.source = "demo".into();
        // The shipped themes.
        let themes = crate::config::builtin_themes().unwrap();
        s.state.mapping = crate::mapping::slice::MappingSlice::new(themes, "cosmic-voyage", 4);
        s
    }
    fn at(&mut self, t: u64, msg: Msg) -> &mut Self {
        self.now = ms(t);
        update(&mut self.state, msg, self.now);
        self
    }
    fn key(&mut self, t: u64, a: Action) -> &mut Self {
        self.at(
            t,
            Msg::Action {
                action: a,
                source: ActionSource::Keyboard,
            },
        )
    }
    fn conn(&mut self, t: u64, state: ConnState, reason: &str) -> &mut Self {
        self.at(
            t,
            Msg::Transport(TransportEvent::State {
                state,
                reason: Some(reason.into()),
            }),
        )
    }
    fn snapshot(&self) -> UiSnapshot {
        UiSnapshot::of(&self.state, self.now)
    }
}

fn frame(t: f64, k: usize) -> AudioFrame {
    let mut f = AudioFrame {
        time: t,
        rms_db: -14.5,
        peak_db: -3.2,
        energy: 0.6,
        bpm: 124.0,
        confidence: 0.82,
        ..AudioFrame::default()
    };
    for i in 0..SPECTRUM_BARS {
        // A deterministic, music-like tilt with some movement.
        let base = 1.0 - i as f32 / SPECTRUM_BARS as f32;
        f.spectrum[i] = (base * (0.6 + 0.4 * (((i + k) % 5) as f32 / 4.0))).clamp(0.0, 1.0);
    }
    f.bar_position = 1.3;
    f
}

fn streaming() -> Script {
    let mut s = Script::new();
    s.at(0, Msg::Started)
        .conn(100, ConnState::Connecting, "offer sent")
        .conn(900, ConnState::Streaming, "video arriving");
    s.at(
        950,
        Msg::Transport(TransportEvent::Stats(LinkStats {
            rx_fps: 24.6,
            rtt_ms: Some(38.0),
            loss: Some(0.004),
            server_fps: Some(25.1),
            reconnects: 0,
            ..LinkStats::default()
        })),
    );
    s.key(
        1000,
        Action::SetParam {
            key: "noise_scale".into(),
            value: json!(0.62),
        },
    );
    s
}

fn render(snap: &UiSnapshot, view: &ViewState, w: u16, h: u16) -> String {
    let mut errs = Vec::new();
    let keymap = Keymap::from_text(
        "k",
        "default",
        crate::config::EMBEDDED_KEYMAPS[0].1,
        &mut errs,
    )
    .unwrap();
    let style = UiStyle::default().monochrome();
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, snap, view, &keymap, &style)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn both(name: &str, snap: &UiSnapshot, view: &ViewState) {
    insta::assert_snapshot!(format!("{name}_80x24"), render(snap, view, 80, 24));
    insta::assert_snapshot!(format!("{name}_160x48"), render(snap, view, 160, 48));
}

#[test]
fn idle() {
    both("idle", &Script::new().snapshot(), &ViewState::default());
}

#[test]
fn warming_up_with_countdown() {
    let mut s = Script::new();
    s.at(0, Msg::Started)
        .conn(100, ConnState::Loading, "POST /api/v1/pipeline/load")
        .conn(2000, ConnState::Warming, "loading longlive");
    s.at(
        42_000,
        Msg::Transport(TransportEvent::WarmUp(WarmUp {
            elapsed: Duration::from_secs(42),
            expected: Duration::from_secs(120),
            stage: Some("loading diffusion model".into()),
        })),
    );
    both("warming", &s.snapshot(), &ViewState::default());
}

#[test]
fn streaming_with_meters_moving() {
    let mut s = streaming();
    for k in 0..8u64 {
        s.at(
            1100 + k * 20,
            Msg::AudioFrame(frame(1.1 + k as f64 * 0.02, k as usize)),
        );
    }
    s.at(
        1250,
        Msg::AudioEvent(AudioEvent::Beat {
            time: 1.25,
            count: 9,
            in_bar: 1,
            bpm: 124.0,
        }),
    );
    s.key(1260, Action::ResetCache);
    s.at(1300, Msg::AudioFrame(frame(1.3, 3)));
    both("streaming", &s.snapshot(), &ViewState::default());
}

#[test]
fn reconnecting() {
    let mut s = streaming();
    s.conn(
        5000,
        ConnState::Reconnecting,
        "peer restarted; retry 2 in 1.6 s",
    );
    s.at(
        5001,
        Msg::Transport(TransportEvent::Stats(LinkStats {
            rx_fps: 0.0,
            rtt_ms: None,
            loss: None,
            server_fps: None,
            reconnects: 2,
            ..LinkStats::default()
        })),
    );
    both("reconnecting", &s.snapshot(), &ViewState::default());
}

#[test]
fn panic_engaged() {
    let mut s = streaming();
    s.key(3000, Action::Panic);
    both("panic", &s.snapshot(), &ViewState::default());
}

#[test]
fn help_open() {
    let s = streaming();
    // A view key: this dashboard's own view, the engine never sees it.
    let view = ViewState {
        mode: Mode::Help,
        ..ViewState::default()
    };
    both("help", &s.snapshot(), &view);
}

#[test]
fn prompt_editing() {
    let s = streaming();
    let view = ViewState {
        mode: Mode::PromptEdit,
        edit_buffer: "neon rain over tokyo".into(),
        ..ViewState::default()
    };
    both("prompt_edit", &s.snapshot(), &view);
}

#[test]
fn errors_in_the_log_pane() {
    let mut s = streaming();
    s.at(
        4000,
        Msg::Transport(TransportEvent::Error(
            "POST http://127.0.0.1:8000/api/v1/webrtc/offer: 500 Internal Server Error".into(),
        )),
    );
    let mut view = ViewState::default();
    for (level, text) in [
        (tracing::Level::INFO, "connection state=streaming"),
        (
            tracing::Level::WARN,
            "no video for 5 s: is pipeline_ids in initialParameters?",
        ),
        (
            tracing::Level::ERROR,
            "POST http://127.0.0.1:8000/api/v1/webrtc/offer: 500 Internal Server Error",
        ),
    ] {
        view.push_log(LogLine {
            level,
            target: "scope_deck".into(),
            text: text.into(),
        });
    }
    both("errors", &s.snapshot(), &view);
}

/// A video output running: stats folded through the reducer (two reports → a frame rate), a
/// preview frame in the view (a diagonal gradient, drawn with the monochrome ramp here).
fn with_video() -> (Script, ViewState) {
    let mut s = streaming();
    let stats = |frames_in: u64, latency_ms: f32| crate::video::VideoStats {
        packets_in: frames_in * 4,
        frames_in,
        frames_out: frames_in * 2,
        latency_ms,
        latency_ms_mean: 1.6,
        sinks: vec![
            crate::video::SinkStatus {
                label: "v4l2:/dev/video10".into(),
                running: true,
                frames_in,
                frames_out: frames_in,
                ..Default::default()
            },
            crate::video::SinkStatus {
                label: "ndi:scope-deck".into(),
                running: false,
                restarts: 1,
                last_error: Some("NDI runtime not found".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    s.at(1000, Msg::VideoStats(Box::new(stats(100, 1.9))));
    s.at(2000, Msg::VideoStats(Box::new(stats(125, 1.7))));
    let (w, h) = (32u32, 32u32);
    let mut rgb = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = ((x + y) * 255 / (w + h - 2)) as u8;
            rgb.extend_from_slice(&[v, v, v]);
        }
    }
    let view = ViewState {
        preview: Some(std::sync::Arc::new(crate::video::PreviewFrame {
            width: w,
            height: h,
            rgb,
            seq: 1,
        })),
        preview_colors: crate::video::preview::PreviewColors::Mono,
        ..ViewState::default()
    };
    (s, view)
}

#[test]
fn video_output_running() {
    let (s, view) = with_video();
    let snap = s.snapshot();
    let fps = snap.video_output.as_ref().map(|v| v.fps_in);
    assert_eq!(fps, Some(25.0), "25 frames in 1 s");
    both("video", &snap, &view);
}

#[test]
fn video_preview_overlay() {
    let (s, mut view) = with_video();
    let snap = s.snapshot();
    view.apply(&Action::TogglePreview, &snap);
    both("preview", &snap, &view);
    view.apply(&Action::TogglePreview, &snap);
    assert!(!view.preview_open);
}

/// The hosted backend reports what it receives from us: the connection panel adds a row.
#[test]
fn hosted_backend_ingest_stats() {
    let mut s = streaming();
    s.at(
        1500,
        Msg::Transport(TransportEvent::Stats(LinkStats {
            rx_fps: 23.9,
            rtt_ms: Some(41.0),
            loss: Some(0.01),
            server_fps: Some(24.0),
            reconnects: 2,
            input_fps: Some(29.5),
            jitter_ms: Some(4.0),
        })),
    );
    let screen = render(&s.snapshot(), &ViewState::default(), 80, 24);
    assert!(screen.contains("│in 29.5 fps  jitter 4 ms"), "{screen}");
    insta::assert_snapshot!("hosted_80x24", screen);
}

#[test]
fn midi_activity_per_device() {
    use crate::controls::midi::activity::DeviceActivity;
    use crate::controls::midi::parse::MidiMsg;
    let dev = |name: &str, connected: bool, count: u64, rate: u32, last: MidiMsg| DeviceActivity {
        name: name.into(),
        connected,
        count,
        rate,
        last: Some(last),
        clock: false,
    };
    let mut s = streaming();
    s.at(
        1100,
        Msg::MidiActivity(vec![
            dev(
                "Launchpad X LPX MIDI In 24:0",
                true,
                3,
                3,
                MidiMsg::NoteOn {
                    channel: 0,
                    note: 36,
                    velocity: 100,
                },
            ),
            dev(
                "nanoKONTROL2 MIDI 1 28:0",
                true,
                40,
                40,
                MidiMsg::Cc {
                    channel: 0,
                    cc: 16,
                    value: 64,
                },
            ),
        ]),
    );
    for (t, a) in [
        (1150, Action::ResetCache),
        (
            1200,
            Action::SetParam {
                key: "noise_scale".into(),
                value: json!(0.5),
            },
        ),
    ] {
        s.at(
            t,
            Msg::Action {
                action: a,
                source: ActionSource::Midi,
            },
        );
    }
    // The nanoKONTROL keeps sending; the Launchpad is unplugged.
    s.at(
        1300,
        Msg::MidiActivity(vec![
            dev(
                "Launchpad X LPX MIDI In 24:0",
                false,
                3,
                0,
                MidiMsg::NoteOn {
                    channel: 0,
                    note: 36,
                    velocity: 100,
                },
            ),
            dev(
                "nanoKONTROL2 MIDI 1 28:0",
                true,
                52,
                52,
                MidiMsg::Cc {
                    channel: 0,
                    cc: 16,
                    value: 80,
                },
            ),
        ]),
    );
    s.at(1350, Msg::Tick);
    both("midi_activity", &s.snapshot(), &ViewState::default());
}

/// Commands a stalled transport could not take are counted on the connection panel (and the
/// notice says so), never silent; with none dropped the panel says nothing about it.
#[test]
fn dropped_transport_commands_are_shown() {
    let mut s = streaming();
    assert!(!render(&s.snapshot(), &ViewState::default(), 160, 48).contains("dropped"));
    for t in 0..3 {
        s.at(
            1100 + t,
            Msg::CommandDropped(crate::transport::types::CmdKind::Urgent),
        );
    }
    let screen = render(&s.snapshot(), &ViewState::default(), 160, 48);
    assert!(screen.contains("dropped 3"), "{screen}");
    assert!(screen.contains("not keeping up"), "{screen}");
}

// ---- Fault states at 80×24 (issue 16): each with its actionable text visible. ----

fn small(name: &str, snap: &UiSnapshot, view: &ViewState) -> String {
    let screen = render(snap, view, 80, 24);
    insta::assert_snapshot!(format!("{name}_80x24"), screen.clone());
    screen
}

/// Streaming on a network audio source with a confident tempo, then whatever `after` does.
fn on_network_audio() -> Script {
    let mut s = streaming();
    s.state.audio.source = "gstreamer".into();
    for k in 0..10u64 {
        s.at(
            1100 + k * 20,
            Msg::AudioFrame(frame(1.1 + k as f64 * 0.02, k as usize)),
        );
        s.at(1100 + k * 20, Msg::Tick);
    }
    s.at(
        1250,
        Msg::AudioEvent(AudioEvent::Beat {
            time: 1.25,
            count: 9,
            in_bar: 1,
            bpm: 124.0,
        }),
    );
    s
}

#[test]
fn fault_audio_signal_lost_says_no_beat() {
    let mut s = on_network_audio();
    // The sender stopped: ticks only.
    for t in (1300..=1900).step_by(33) {
        s.at(t, Msg::Tick);
    }
    let screen = small("fault_audio_lost", &s.snapshot(), &ViewState::default());
    assert!(screen.contains("audio signal lost"), "{screen}");
    assert!(screen.contains("check the sender / cable"), "{screen}");
    assert!(screen.contains("no beat"), "{screen}");
    assert!(
        !screen.contains("124.0 BPM  82%"),
        "stale tempo shown: {screen}"
    );
}

#[test]
fn fault_audio_silent_and_clipping() {
    let mut s = on_network_audio();
    let quiet = |t: f64| {
        Msg::AudioFrame(AudioFrame {
            time: t,
            ..AudioFrame::default()
        })
    };
    for k in 0..30u64 {
        s.at(1400 + k * 33, quiet(1.4 + k as f64 * 0.033));
        s.at(1400 + k * 33, Msg::Tick);
    }
    let screen = small("fault_audio_silent", &s.snapshot(), &ViewState::default());
    assert!(
        screen.contains("silent") && screen.contains("check mute / gain"),
        "{screen}"
    );
    let hot = AudioFrame {
        peak_db: 0.0,
        ..frame(2.5, 1)
    };
    s.at(2500, Msg::AudioFrame(hot));
    s.at(2500, Msg::Tick);
    let screen = small("fault_audio_clipping", &s.snapshot(), &ViewState::default());
    assert!(screen.contains("turn the gain down"), "{screen}");
}

#[test]
fn fault_video_input_stalled_and_sink_failed() {
    let (mut s, view) = with_video();
    s.at(
        3000,
        Msg::InputHealth {
            input: "video in".into(),
            problem: Some((
                crate::core::health::HealthState::Stalled,
                "no frames from the webcam for 1 s: check the source".into(),
            )),
        },
    );
    let screen = small("fault_video_in", &s.snapshot(), &view);
    assert!(screen.contains("video in stalled"), "{screen}");
    assert!(screen.contains("restarting with backoff"), "{screen}");
}

#[test]
fn fault_missing_models_names_the_key() {
    let mut s = Script::new();
    let msg = "pipeline `longlive`: its models are not downloaded on the server (or set \
               server.auto_download_models = true); fetch them with `download_models`";
    s.at(0, Msg::Started).conn(100, ConnState::Loading, msg);
    s.at(100, Msg::Transport(TransportEvent::Error(msg.into())));
    let mut view = ViewState::default();
    view.push_log(LogLine {
        level: tracing::Level::ERROR,
        target: "scope_deck".into(),
        text: msg.into(),
    });
    let screen = small("fault_models", &s.snapshot(), &view);
    assert!(
        screen.contains("[D]"),
        "the key for download_models: {screen}"
    );
    assert!(screen.contains("`download_models` [D]"), "{screen}");
}

#[test]
fn show_mode_confirm_and_paused_marker() {
    let mut s = streaming();
    s.key(2000, Action::TogglePause);
    s.key(2100, Action::ToggleShowMode);
    s.key(2200, Action::Reconnect);
    let screen = small("show_mode_confirm", &s.snapshot(), &ViewState::default());
    let status = screen.lines().next().unwrap_or_default();
    assert!(
        status.contains("PAUSED") && status.contains("SHOW"),
        "{status}"
    );
    assert!(status.contains("press again: reconnect"), "{status}");
}

#[test]
fn log_view_scrolls_and_keeps_whole_lines() {
    let s = streaming();
    let mut view = ViewState {
        mode: Mode::Log,
        ..ViewState::default()
    };
    for i in 0..40 {
        view.push_log(LogLine {
            level: tracing::Level::INFO,
            target: "scope_deck".into(),
            text: format!("line {i}"),
        });
    }
    view.push_log(LogLine {
        level: tracing::Level::WARN,
        target: "scope_deck".into(),
        text: "video sink v4l2:/dev/video10 failed: Device or resource busy; restarting with \
               backoff in 4 s (check that no other program holds the device)"
            .into(),
    });
    let screen = small("log_view", &s.snapshot(), &view);
    assert!(screen.contains("holds the device)"), "{screen}");
    view.log_scroll = 30;
    let screen = render(&s.snapshot(), &view, 80, 24);
    assert!(
        screen.contains("line 5") && !screen.contains("holds the device)"),
        "{screen}"
    );
}

#[test]
fn messages_keep_their_actionable_end_and_name_keys() {
    use crate::ui::render::{keep_ends, with_keys, wrap_keep_ends};
    let t = "video sink failed, restarting with backoff in 4 s";
    assert_eq!(keep_ends(t, 100), t);
    let k = keep_ends(t, 30);
    assert_eq!(k.chars().count(), 30);
    assert!(
        k.starts_with("video sink") && k.ends_with("backoff in 4 s"),
        "{k}"
    );
    let rows = wrap_keep_ends("500 Internal Server Error on POST /offer", 12, 4);
    assert_eq!(
        rows,
        vec!["500 Internal", "Server Error", "on POST", "/offer"]
    );
    let cut = wrap_keep_ends(t, 10, 2);
    assert_eq!(cut.len(), 2);
    assert!(cut[1].ends_with("in 4 s"), "{cut:?}");
    let mut errs = Vec::new();
    let km = Keymap::from_text(
        "k",
        "default",
        crate::config::EMBEDDED_KEYMAPS[0].1,
        &mut errs,
    )
    .unwrap();
    assert_eq!(
        with_keys("held until confirmed with confirm_reload", &km),
        "held until confirmed with confirm_reload [R]"
    );
    assert_eq!(
        with_keys("run the `download_models` action", &km),
        "run the `download_models` [D] action"
    );
    assert_eq!(
        with_keys("press quit again", &km),
        "press quit again",
        "plain words stay"
    );
}

/// Video statistics with a frozen or moving counter and a file sink (waiting or recording).
fn video_stats(frames_in: u64, file_waiting: bool) -> crate::video::VideoStats {
    crate::video::VideoStats {
        packets_in: frames_in * 4,
        frames_in,
        frames_out: frames_in * 2,
        latency_ms: 1.7,
        latency_ms_mean: 1.6,
        sinks: vec![
            crate::video::SinkStatus {
                label: "shm:/tmp/scope-deck.shm".into(),
                running: true,
                frames_in,
                frames_out: frames_in,
                ..Default::default()
            },
            crate::video::SinkStatus {
                label: "file:~/Videos".into(),
                running: !file_waiting,
                waiting: file_waiting,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// Issue 15 item 7: during an outage the last fps/latency and link figures are greyed with
/// their age (monochrome here: the age is what the snapshot shows), never shown as live.
#[test]
fn connection_and_video_during_an_outage() {
    let mut s = streaming();
    s.at(1000, Msg::VideoStats(Box::new(video_stats(100, false))));
    s.at(2000, Msg::VideoStats(Box::new(video_stats(125, false))));
    s.conn(
        2500,
        ConnState::Reconnecting,
        "waiting for the server (GET /health: no answer); checking /health every 0.5 s",
    );
    // The video edge keeps reporting; the counter no longer moves.
    s.at(14_000, Msg::VideoStats(Box::new(video_stats(125, false))));
    let snap = s.snapshot();
    let screen = render(&snap, &ViewState::default(), 160, 48);
    assert!(screen.contains("video: no frame for 12 s"), "{screen}");
    assert!(screen.contains("13 s ago: rx 24.6 fps"), "{screen}");
    both("outage", &snap, &ViewState::default());
}

/// Issue 15 item 7: a recording waiting for its first video is a waiting state, not a red
/// failure, and not a health fault.
#[test]
fn video_waiting_for_the_first_frame() {
    let mut s = streaming();
    s.at(1000, Msg::VideoStats(Box::new(video_stats(0, true))));
    s.at(1250, Msg::VideoStats(Box::new(video_stats(0, true))));
    let snap = s.snapshot();
    assert!(
        !snap
            .health
            .faults
            .iter()
            .any(|f| f.input.starts_with("sink")),
        "{:?}",
        snap.health.faults
    );
    let screen = render(&snap, &ViewState::default(), 160, 48);
    assert!(screen.contains("1/2 sinks (1 waiting)"), "{screen}");
    assert!(screen.contains("◌ file:~/Videos"), "{screen}");
    assert!(!screen.contains("✖ file"), "{screen}");
    both("video_waiting", &snap, &ViewState::default());
}

/// Issue 15 item 8: a value set by hand on a mapped parameter shows that it is held (seconds
/// left of the theme's `hold_ms`), and `release_holds` hands it back to the mapping.
#[test]
fn a_hand_set_mapped_value_shows_its_hold_and_can_be_handed_back() {
    let mut s = streaming(); // noise_scale (mapped by cosmic-voyage) set by key at 1.0 s
    s.at(1500, Msg::Tick);
    let row = |s: &Script| {
        s.snapshot()
            .params
            .into_iter()
            .find(|r| r.key == "noise_scale")
            .expect("noise_scale row")
    };
    let held = row(&s).held.expect("held after a hand-set value");
    assert!(
        held > Duration::ZERO && held < Duration::from_secs(60),
        "{held:?}"
    );
    let screen = render(&s.snapshot(), &ViewState::default(), 80, 24);
    assert!(screen.contains("0.62   ⏸"), "{screen}");
    s.key(1600, Action::ReleaseHolds);
    assert_eq!(row(&s).held, None);
    assert!(
        s.state
            .ui
            .notices
            .iter()
            .any(|n| n.message.contains("takes back 1 held value")),
        "{:?}",
        s.state.ui.notices
    );
}

#[test]
fn cue_panel_with_the_example_setlist() {
    let themes = crate::config::builtin_themes().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("setlists/example.toml");
    let list = crate::config::setlist::load_setlist(&path, &themes, &[]).unwrap();
    let mut s = streaming();
    crate::core::cue::load(&mut s.state, Some(list));
    let beat = |count: u64| {
        Msg::AudioEvent(AudioEvent::Beat {
            time: count as f64 * 0.5,
            count,
            in_bar: (count % 4) as u32,
            bpm: 120.0,
        })
    };
    s.at(1100, beat(0));
    s.key(1200, Action::CueGo); // intro lands now
    s.at(1600, beat(1));
    s.key(1700, Action::CueGo); // build waits for the next bar
    s.key(
        1750,
        Action::SaveLook {
            name: Some("warm".into()),
        },
    );
    s.key(1760, Action::SaveLook { name: None });
    let snap = s.snapshot();
    let cues = snap.cues.as_ref().unwrap();
    assert_eq!(cues.current, Some(0));
    assert!(cues.pending.is_some());
    assert_eq!(snap.looks.0, vec!["warm".to_string(), "look-1".to_string()]);
    both("cues", &snap, &ViewState::default());
}

/// `attach` draws snapshots that crossed the deck socket as JSON: the decoded snapshot equals
/// the original and draws the same screen (video, MIDI activity, meters, panic, help).
#[test]
fn snapshots_survive_the_socket_unchanged() {
    let (mut with_video, _) = with_video();
    with_video.at(
        2100,
        Msg::AudioEvent(AudioEvent::Beat {
            time: 2.0,
            count: 5,
            in_bar: 1,
            bpm: 124.0,
        }),
    );
    with_video.at(2150, Msg::AudioFrame(frame(2.1, 3)));
    with_video.key(2200, Action::Panic);
    let mut help = streaming();
    help.at(
        1100,
        Msg::Action {
            action: Action::ToggleHelp,
            source: ActionSource::Midi,
        },
    );
    for snap in [
        with_video.snapshot(),
        help.snapshot(),
        UiSnapshot::default(),
    ] {
        let line =
            crate::service::protocol::line(&crate::service::protocol::ServiceLine::Snapshot {
                t: 1.0,
                snapshot: Box::new(snap.clone()),
            });
        let back: crate::service::protocol::ServiceLine = serde_json::from_slice(&line).unwrap();
        let crate::service::protocol::ServiceLine::Snapshot { snapshot, .. } = back else {
            panic!("not a snapshot line");
        };
        assert_eq!(*snapshot, snap);
        let view = ViewState::default();
        assert_eq!(
            render(&snapshot, &view, 160, 48),
            render(&snap, &view, 160, 48)
        );
    }
}

/// The status bar says what leaves the deck: BLACKOUT, then the fade's percentage, and REC with
/// its elapsed time and file, at both sizes.
#[test]
fn blackout_fade_and_rec_markers_in_the_status_bar() {
    let mut s = streaming();
    s.state.settings.key_recorders = 1;
    s.key(1000, Action::Record { on: None });
    let stats = crate::video::VideoStats {
        frames_in: 10,
        sinks: vec![crate::video::SinkStatus {
            label: "file:~/rec".into(),
            running: true,
            file: Some("/home/x/rec/show-20261206-031500.mkv".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    s.at(1500, Msg::VideoStats(Box::new(stats)));
    s.key(2000, Action::Blackout { on: None });
    s.at(66_000, Msg::Tick);
    for (w, h) in [(80, 24), (160, 48)] {
        let top = render(&s.snapshot(), &ViewState::default(), w, h);
        let top = top.lines().next().unwrap_or_default().to_string();
        assert!(top.contains("BLACKOUT"), "{top}");
        if w >= 160 {
            assert!(top.contains("REC 1:05 show-20261206-031500.mkv"), "{top}");
        } else {
            assert!(top.contains("REC 1:05"), "{top}");
        }
    }
    s.key(66_100, Action::Blackout { on: None });
    s.key(66_100, Action::MasterFade { beats: Some(4.0) });
    // 124 BPM from the scripted audio: 4 beats ≈ 1.94 s; a quarter in, ~25 %.
    s.at(66_100 + 484, Msg::Tick);
    let top = render(&s.snapshot(), &ViewState::default(), 160, 48);
    let top = top.lines().next().unwrap_or_default().to_string();
    assert!(
        top.contains("FADE 24% ↓") || top.contains("FADE 25% ↓"),
        "{top}"
    );
    assert!(!top.contains("BLACKOUT"), "{top}");
}

/// More bindings than one screen holds: the overlay pages (PgDn/PgUp through `key_to_msg`),
/// every binding on some page, and says which page it is.
#[test]
fn help_pages_when_the_bindings_do_not_fit() {
    use crate::controls::keys::KeyChord;
    use crossterm::event::{KeyCode, KeyModifiers};
    let s = streaming();
    let snap = s.snapshot();
    let mut view = ViewState {
        mode: crate::core::state::Mode::Help,
        ..ViewState::default()
    };
    let first = render(&snap, &view, 80, 24);
    insta::assert_snapshot!("help_page1_80x24", first);
    let keymap = Keymap::from_text(
        "k",
        "default",
        crate::config::EMBEDDED_KEYMAPS[0].1,
        &mut Vec::new(),
    )
    .unwrap();
    let chord = KeyChord::from_event(&crossterm::event::KeyEvent::new(
        KeyCode::PageDown,
        KeyModifiers::NONE,
    ))
    .unwrap();
    let msg = crate::ui::tui::key_to_msg(chord, KeyCode::PageDown, &snap, &keymap, &mut view);
    assert!(msg.is_none(), "paging is the overlay's own business");
    assert_eq!(view.help_page, 1);
    let second = render(&snap, &view, 80, 24);
    insta::assert_snapshot!("help_page2_80x24", second);
    assert!(first.contains("page 1/2") && second.contains("page 2/2"));
    for key in [
        "crossfade +0.1",
        "slot B",
        "crossfade off",
        "blackout",
        "record",
    ] {
        assert!(
            first.contains(key) || second.contains(key),
            "{key} on no page:\n{first}\n{second}"
        );
    }
}

/// The crossfader engaged: the prompt panel shows both slots and the weights sent, the title
/// the fader.
#[test]
fn prompt_crossfade() {
    let mut s = streaming();
    s.key(
        3000,
        Action::SetPromptSlot {
            slot: crate::core::xfade::Slot::B,
            text: Some("neon rain | fog".into()),
            index: None,
        },
    );
    s.key(
        3100,
        Action::SetParam {
            key: "crossfade".into(),
            value: json!(0.3),
        },
    );
    both("prompt_crossfade", &s.snapshot(), &ViewState::default());
}

/// Three outputs (`[[outputs]]`): the wall's server is lost and its standby (`right`) carries
/// it, `left` is warming up and selected; the strip at 80×24, the panel at 160×48.
#[test]
fn three_outputs() {
    use crate::core::outputs::{OutputRef, OutputSpec, OutputsSlice, update_routed};
    let mut s = Script::new();
    let spec = |name: &str, target: &str| OutputSpec {
        name: name.into(),
        backend: "scope".into(),
        target: target.into(),
        failover_after: Duration::from_secs(2),
        ..OutputSpec::default()
    };
    let mut wall = spec("wall", "http://gpu1:8000");
    wall.standby = Some(2);
    let mut left = spec("left", "https://pod-8000.proxy.runpod.net");
    left.overrides.seed = Some(7);
    s.state.outputs = OutputsSlice::new(vec![wall, left, spec("right", "http://gpu2:8000")]);
    let fold = |s: &mut Script, t: u64, msg: Msg| {
        s.now = ms(t);
        update_routed(&mut s.state, msg, s.now);
    };
    let ev = |i: usize, event: TransportEvent| {
        if i == 0 {
            Msg::Transport(event)
        } else {
            Msg::OutputEvent { output: i, event }
        }
    };
    let state = |c: ConnState, why: &str| TransportEvent::State {
        state: c,
        reason: Some(why.into()),
    };
    fold(&mut s, 0, Msg::Started);
    fold(
        &mut s,
        900,
        ev(0, state(ConnState::Streaming, "video arriving")),
    );
    fold(
        &mut s,
        900,
        ev(2, state(ConnState::Streaming, "video arriving")),
    );
    fold(
        &mut s,
        900,
        ev(1, state(ConnState::Warming, "warming up (loading_weights)")),
    );
    fold(
        &mut s,
        950,
        ev(
            1,
            TransportEvent::WarmUp(WarmUp {
                elapsed: Duration::from_secs(30),
                expected: Duration::from_secs(75),
                stage: None,
            }),
        ),
    );
    for i in [0, 2] {
        fold(
            &mut s,
            960,
            ev(
                i,
                TransportEvent::Stats(LinkStats {
                    rx_fps: 24.6,
                    ..LinkStats::default()
                }),
            ),
        );
    }
    fold(
        &mut s,
        1000,
        ev(
            0,
            state(
                ConnState::Reconnecting,
                "GET /health: no answer; checking every 0.5 s",
            ),
        ),
    );
    fold(&mut s, 3500, Msg::Tick);
    fold(
        &mut s,
        3600,
        Msg::key(Action::OutputSelect {
            output: Some(OutputRef::Name("left".into())),
            group: None,
        }),
    );
    let snap = s.snapshot();
    assert_eq!(snap.routing, "left");
    assert_eq!(snap.outputs[0].failover.as_deref(), Some("→ right"));
    both("three_outputs", &snap, &ViewState::default());
}
