//! Reducer-level tests of the mapping engine: messages folded through the real `update` with
//! injected time, using the shipped themes.

use std::time::Duration;

use serde_json::json;

use crate::audio::features::{AudioEvent, AudioFrame};
use crate::core::action::{Action, ActionSource};
use crate::core::effect::Effect;
use crate::core::msg::Msg;
use crate::core::state::{AppState, CoreSettings};
use crate::core::update::update;
use crate::mapping::slice::MappingSlice;
use crate::transport::types::{ParamUpdate, TransportCmd};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn shipped() -> Vec<crate::mapping::theme::Theme> {
    crate::config::builtin_themes().unwrap()
}

fn index_of(s: &AppState, id: &str) -> usize {
    s.mapping
        .themes
        .iter()
        .position(|t| t.id == id)
        .unwrap_or_else(|| panic!("no theme {id}"))
}

fn state_on(id: &str) -> AppState {
    let mut s = AppState::new(CoreSettings::default());
    s.mapping = MappingSlice::new(shipped(), id, 4);
    update(&mut s, Msg::Started, ms(0));
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

fn act(s: &mut AppState, a: Action, at: u64) -> Vec<Effect> {
    update(
        s,
        Msg::Action {
            action: a,
            source: ActionSource::Keyboard,
        },
        ms(at),
    )
}

fn frame_at(bpm: f32, t_ms: u64, energy: f32) -> AudioFrame {
    let beat = 60.0 / f64::from(bpm);
    let beats = t_ms as f64 / 1000.0 / beat;
    AudioFrame {
        time: t_ms as f64 / 1000.0,
        energy,
        bpm,
        beat_phase: beats.fract() as f32,
        bar_position: (beats % 4.0) as f32,
        confidence: 0.9,
        ..AudioFrame::default()
    }
}

fn beat(count: u64, t_ms: u64) -> Msg {
    Msg::AudioEvent(AudioEvent::Beat {
        time: t_ms as f64 / 1000.0,
        count,
        in_bar: (count % 4) as u32,
        bpm: 120.0,
    })
}

/// Plays `from..to` ms at 120 BPM: a frame every 10 ms and a beat every 500 ms.
fn play(s: &mut AppState, from: u64, to: u64, energy: f32) -> Vec<(u64, Effect)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        if t % 500 == 0 {
            for e in update(s, beat(t / 500, t), ms(t)) {
                out.push((t, e));
            }
        }
        for e in update(s, Msg::AudioFrame(frame_at(120.0, t, energy)), ms(t)) {
            out.push((t, e));
        }
        t += 10;
    }
    out
}

#[test]
fn start_applies_the_active_theme_to_the_first_offer() {
    let mut s = AppState::new(CoreSettings::default());
    s.mapping = MappingSlice::new(shipped(), "synthwave-highway", 4);
    let fx = update(&mut s, Msg::Started, ms(0));
    assert_eq!(fx.get(1), Some(&Effect::Transport(TransportCmd::Connect)));
    // The first offer carries the desired state the engine publishes after this fold.
    let initial = s.params.store.full_state();
    assert_eq!(initial["noise_scale"], json!(0.6));
    assert_eq!(
        initial["prompts"][0]["text"],
        json!(
            "androgynous cartoon magical dj driving a neon convertible on an endless highway, \
             synthwave, retro-futuristic, magenta and cyan, 80s chrome, grid horizon"
        )
    );
}

#[test]
fn theme_switch_waits_for_the_next_downbeat_and_crossfades() {
    let mut s = state_on("default");
    play(&mut s, 0, 1200, 0.5); // beats 0,1,2 → grid running; bar 0 seen
    let fx = act(&mut s, Action::SelectTheme { index: 1 }, 1200);
    assert!(updates(&fx).iter().all(|u| !u.urgent), "{fx:?}");
    assert!(s.mapping.pending.is_some());
    let snap = crate::core::snapshot::UiSnapshot::of(&s, ms(1200));
    let p = snap.mapping.pending.as_ref().unwrap();
    assert_eq!(p.theme, "Cosmic Voyage");
    // At 1.2 s the next downbeat is at 2.0 s.
    let eta = p.eta.unwrap().as_secs_f64();
    assert!((eta - 0.8).abs() < 0.03, "{eta}");
    // Cosmic Voyage has an 80 ms lookahead: it lands on the frame at 1.92 s.
    let out = play(&mut s, 1210, 2100, 0.5);
    let (at, urgent) = out
        .iter()
        .find_map(|(t, e)| match e {
            Effect::Transport(TransportCmd::Update(u)) if u.urgent => Some((*t, u.clone())),
            _ => None,
        })
        .expect("switch sent");
    assert!((1920..2000).contains(&at), "landed at {at}");
    assert_eq!(urgent.values["transition"]["num_steps"], json!(12));
    assert_eq!(
        urgent.values["transition"]["temporal_interpolation_method"],
        json!("slerp")
    );
    assert_eq!(urgent.values["noise_scale"], json!(0.55));
    assert!(!urgent.values.contains_key("prompts"));
    assert_eq!(s.mapping.theme().unwrap().id, "cosmic-voyage");
    // The store holds the target prompt for reconnect replays.
    assert!(
        s.params.store.get("prompts").unwrap()[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("vast cosmic nebula")
    );
}

fn with_latency(mut s: AppState, ms_: u64) -> AppState {
    s.tempo = crate::core::tempo::TempoSlice::new(crate::core::tempo::TempoSettings {
        latency: ms(ms_),
        ..Default::default()
    });
    s
}

#[test]
fn with_latency_a_bar_quantised_switch_goes_that_much_before_the_bar_and_beats_forward_on_time() {
    let mut s = with_latency(state_on("default"), 400);
    play(&mut s, 0, 1200, 0.5);
    act(&mut s, Action::SelectTheme { index: 1 }, 1200);
    let out = play(&mut s, 1210, 2600, 0.5);
    let (at, _) = out
        .iter()
        .find(|(_, e)| matches!(e, Effect::Transport(TransportCmd::Update(u)) if u.urgent))
        .expect("switch sent");
    // The bar line is at 2.0 s: sent 400 ms early (within one 10 ms frame).
    assert!((1600..=1610).contains(at), "landed at {at}");
    assert_eq!(s.mapping.theme().unwrap().id, "cosmic-voyage");
    // Scope's beat forwarding stays on the real beat: beat 4 (the bar line) at 2.0 s.
    let fwd = out
        .iter()
        .find_map(|(t, e)| match e {
            Effect::Transport(TransportCmd::Update(u))
                if u.values.get("beat_count") == Some(&json!(4)) =>
            {
                Some(*t)
            }
            _ => None,
        })
        .expect("beat 4 forwarded");
    assert_eq!(fwd, 2000);
    // A hand-made change is never early or late: it goes with the key press.
    let fx = act(&mut s, Action::ResetCache, 2345);
    assert!(
        updates(&fx)
            .iter()
            .any(|u| u.values.contains_key("reset_cache"))
    );
}

#[test]
fn with_latency_a_server_quantised_switch_asks_for_at_least_that_lookahead() {
    let mut s = with_latency(state_on("default"), 400);
    play(&mut s, 0, 1200, 0.5);
    let ix = index_of(&s, "synthwave-highway");
    let fx = act(&mut s, Action::SelectTheme { index: ix }, 1200);
    let u = updates(&fx);
    let q = u.iter().find(|u| u.urgent).expect("sent at once");
    assert_eq!(q.values["lookahead_ms"], json!(400));
}

#[test]
fn without_a_beat_grid_a_switch_lands_at_once() {
    let mut s = state_on("default");
    let fx = act(&mut s, Action::ThemeNext, 100);
    let u = updates(&fx);
    assert_eq!(u.len(), 1);
    assert!(u[0].urgent);
    assert!(s.mapping.pending.is_none());
    assert!(
        s.ui.notices
            .iter()
            .any(|n| n.message.contains("no beat grid"))
    );
}

#[test]
fn server_quantised_switch_is_sent_at_once_with_quantize_fields() {
    let mut s = state_on("default");
    play(&mut s, 0, 1200, 0.5);
    let ix = index_of(&s, "synthwave-highway");
    let fx = act(&mut s, Action::SelectTheme { index: ix }, 1200);
    let u = updates(&fx);
    let urgent: Vec<_> = u.iter().filter(|u| u.urgent).collect();
    assert_eq!(urgent.len(), 1, "{u:?}");
    let v = &urgent[0].values;
    assert_eq!(v["_quantized"], json!(true));
    assert_eq!(v["quantize_mode"], json!("2_bar"));
    assert_eq!(v["lookahead_ms"], json!(100));
    assert_eq!(v["transition"]["num_steps"], json!(6));
    // Locally the old theme runs until the boundary (bar index 2 = 4.0 s), then the engine
    // switches without sending the switch again.
    assert_eq!(s.mapping.theme().unwrap().id, "default");
    let out = play(&mut s, 1210, 4010, 0.5);
    assert_eq!(s.mapping.theme().unwrap().id, "synthwave-highway");
    let resent = out.iter().any(|(_, e)| {
        matches!(e, Effect::Transport(TransportCmd::Update(u)) if u.values.contains_key("_quantized"))
    });
    assert!(!resent);
}

#[test]
fn a_switch_lands_by_its_deadline_when_beats_stop() {
    let mut s = state_on("default");
    play(&mut s, 0, 1200, 0.5);
    let ix = index_of(&s, "digital-forest"); // 4_bar, max wait 12 s
    act(&mut s, Action::SelectTheme { index: ix }, 1200);
    assert!(s.mapping.pending.is_some());
    let fx = update(&mut s, Msg::Tick, ms(13_100));
    assert!(updates(&fx).is_empty(), "not before 1.2 s + 12 s");
    let fx = update(&mut s, Msg::Tick, ms(13_200));
    assert!(updates(&fx).iter().any(|u| u.urgent));
    assert_eq!(s.mapping.theme().unwrap().id, "digital-forest");
}

#[test]
fn prompt_actions_crossfade_and_persona_changes_resend_without_reload() {
    let mut s = state_on("synthwave-highway");
    let fx = act(&mut s, Action::PromptNext, 10);
    let u = updates(&fx);
    assert!(u[0].urgent);
    let tr = &u[0].values["transition"];
    assert_eq!(tr["num_steps"], json!(6));
    assert!(
        tr["target_prompts"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("androgynous cartoon magical dj under a giant setting sun")
    );
    let fx = act(
        &mut s,
        Action::SetPersona {
            name: "female".into(),
        },
        20,
    );
    let u = updates(&fx);
    assert_eq!(u.len(), 1);
    let text = u[0].values["transition"]["target_prompts"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with("female cartoon magical dj under"),
        "{text}"
    );
    // Only the prompt moves: no pipeline reload, no other key.
    assert_eq!(u[0].values.len(), 1);
    let fx = act(&mut s, Action::SelectPrompt { index: 9 }, 30);
    assert!(updates(&fx).is_empty());
    act(&mut s, Action::PromptPrev, 40);
    assert_eq!(s.mapping.prompt_index, 0);
    let snap = crate::core::snapshot::UiSnapshot::of(&s, ms(40));
    assert!(
        snap.mapping
            .prompt
            .starts_with("female cartoon magical dj driving")
    );
    assert_eq!(snap.mapping.persona, "female");
}

#[test]
fn mapped_values_are_sent_non_urgent_and_marked_as_mapping() {
    let mut s = state_on("cosmic-voyage");
    let out = play(&mut s, 0, 600, 0.9);
    let sent: Vec<_> = out
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::Transport(TransportCmd::Update(u)) if u.values.contains_key("noise_scale") => {
                Some(u.clone())
            }
            _ => None,
        })
        .collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|u| !u.urgent));
    let snap = crate::core::snapshot::UiSnapshot::of(&s, ms(600));
    let row = snap.params.iter().find(|r| r.key == "noise_scale").unwrap();
    assert_eq!(row.source, ActionSource::Mapping);
    let v = row.value.as_f64().unwrap();
    assert!((0.35..=0.95).contains(&v), "{v}");
}

#[test]
fn macros_drive_list_parameters() {
    let mut s = state_on("cosmic-voyage");
    play(&mut s, 0, 100, 0.1);
    act(
        &mut s,
        Action::SetMacro {
            name: "detail".into(),
            value: 0.0,
        },
        100,
    );
    play(&mut s, 100, 200, 0.1);
    assert_eq!(
        s.params.store.get("denoising_step_list"),
        Some(&json!([1000, 500]))
    );
    act(
        &mut s,
        Action::SetMacro {
            name: "detail".into(),
            value: 7.0, // clamped to 1
        },
        200,
    );
    play(&mut s, 200, 300, 0.1);
    assert_eq!(
        s.params.store.get("denoising_step_list"),
        Some(&json!([1000, 750, 500, 250]))
    );
}

#[test]
fn panic_and_the_master_toggle_stop_the_engine() {
    let mut s = state_on("neon-foundry");
    act(&mut s, Action::Panic, 0);
    let out = play(&mut s, 0, 2100, 1.0);
    assert!(
        out.iter()
            .all(|(_, e)| !matches!(e, Effect::Transport(TransportCmd::Update(_)))),
        "{out:?}"
    );
    act(&mut s, Action::ReleasePanic, 2100);
    act(&mut s, Action::ToggleMapping { name: "*".into() }, 2100);
    let out = play(&mut s, 2100, 4100, 1.0);
    assert!(
        out.iter()
            .all(|(_, e)| !matches!(e, Effect::Transport(TransportCmd::Update(_))))
    );
    act(&mut s, Action::ToggleMapping { name: "*".into() }, 4100);
    let out = play(&mut s, 4100, 6100, 1.0);
    assert!(
        out.iter()
            .any(|(_, e)| matches!(e, Effect::Transport(TransportCmd::Update(u)) if u.values.contains_key("reset_cache")))
    );
}

#[test]
fn toggling_one_trigger_by_name() {
    let mut s = state_on("neon-foundry");
    act(
        &mut s,
        Action::ToggleMapping {
            name: "forge".into(),
        },
        0,
    );
    let out = play(&mut s, 0, 4100, 1.0);
    assert!(!out.iter().any(|(_, e)| matches!(e, Effect::Transport(TransportCmd::Update(u)) if u.values.contains_key("reset_cache"))));
    act(
        &mut s,
        Action::ToggleMapping {
            name: "nope".into(),
        },
        4100,
    );
    assert!(
        s.ui.notices
            .back()
            .unwrap()
            .message
            .contains("no mapping or trigger named `nope`")
    );
}

#[test]
fn invalid_reload_keeps_the_running_theme_and_shows_the_error() {
    let mut s = state_on("neon-foundry");
    let before = s.mapping.clone();
    let fx = update(
        &mut s,
        Msg::ThemesReloaded(Err(
            "themes/neon-foundry.toml:12:1: key `mappings[0].curve`: must be one of ...".into(),
        )),
        ms(10),
    );
    assert!(updates(&fx).is_empty());
    assert_eq!(s.mapping, before);
    let n = s.ui.notices.back().unwrap();
    assert_eq!(n.level, crate::core::state::Level::Error);
    assert!(n.message.contains("neon-foundry.toml:12:1"));
}

#[test]
fn valid_reload_reapplies_a_changed_active_theme() {
    let mut s = state_on("default");
    let mut themes = shipped();
    themes[0].params.insert("noise_scale".into(), json!(0.8));
    let fx = update(&mut s, Msg::ThemesReloaded(Ok(themes.clone())), ms(10));
    let u = updates(&fx);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].values["noise_scale"], json!(0.8));
    // The same list again changes nothing on the wire.
    let fx = update(&mut s, Msg::ThemesReloaded(Ok(themes)), ms(20));
    assert!(updates(&fx).is_empty());
}

#[test]
fn beat_forwarding_sends_tempo_state() {
    let mut s = state_on("synthwave-highway");
    let out = play(&mut s, 0, 600, 0.5);
    let keys: std::collections::BTreeSet<String> = out
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::Transport(TransportCmd::Update(u)) => Some(u.values.keys().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    for k in [
        "bpm",
        "beat_phase",
        "bar_position",
        "beat_count",
        "is_playing",
    ] {
        assert!(keys.contains(k), "{k} missing from {keys:?}");
    }
    assert_eq!(s.params.store.get("bpm"), Some(&json!(120.0)));
}

#[test]
fn macro_params_from_midi_bindings_set_macros() {
    let mut s = state_on("cosmic-voyage");
    act(
        &mut s,
        Action::SetParam {
            key: "macro.detail".into(),
            value: json!(0.9),
        },
        0,
    );
    assert_eq!(s.mapping.macros["detail"], 0.9);
    act(
        &mut s,
        Action::AdjustParam {
            key: "macro.detail".into(),
            delta: 0.5,
        },
        10,
    );
    assert_eq!(s.mapping.macros["detail"], 1.0);
    // Ordinary parameters are untouched by the bridge.
    act(
        &mut s,
        Action::SetParam {
            key: "noise_scale".into(),
            value: json!(0.4),
        },
        20,
    );
    assert_eq!(s.params.store.get("noise_scale"), Some(&json!(0.4)));
    assert!(s.params.store.get("macro.detail").is_none());
}

#[test]
fn a_hand_set_mapped_parameter_holds_its_mapping_then_glides_back() {
    let mut s = state_on("default"); // breath: energy → noise_scale, hold 4 s
    play(&mut s, 0, 500, 1.0);
    act(
        &mut s,
        Action::SetParam {
            key: "noise_scale".into(),
            value: json!(0.5),
        },
        500,
    );
    let held = play(&mut s, 500, 4500, 1.0);
    assert!(
        held.iter().all(|(_, e)| !matches!(e, Effect::Transport(TransportCmd::Update(u)) if u.values.contains_key("noise_scale"))),
        "mapping must hold while the hand-set value stands"
    );
    assert_eq!(s.params.store.get("noise_scale"), Some(&json!(0.5)));
    let after = play(&mut s, 4500, 4800, 1.0);
    let first = after
        .iter()
        .find_map(|(_, e)| match e {
            Effect::Transport(TransportCmd::Update(u)) => u.values.get("noise_scale").cloned(),
            _ => None,
        })
        .unwrap()
        .as_f64()
        .unwrap();
    // Glides from 0.5 (attack 250 ms), no jump to the top of the range.
    assert!(first > 0.5 && first < 0.55, "{first}");
}

#[test]
fn cancelling_a_server_quantised_switch_schedules_the_running_theme_back() {
    let mut s = state_on("default");
    play(&mut s, 0, 1200, 0.5);
    let ix = index_of(&s, "synthwave-highway");
    act(&mut s, Action::SelectTheme { index: ix }, 1200);
    assert!(s.mapping.pending.as_ref().unwrap().sent);
    let fx = act(&mut s, Action::SelectTheme { index: 0 }, 1300);
    let u = updates(&fx);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].values["_quantized"], json!(true));
    assert_eq!(u[0].values["quantize_mode"], json!("2_bar"));
    assert!(
        u[0].values["transition"]["target_prompts"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("cosmic nebula")
    );
    assert!(s.mapping.pending.is_none());
    assert_eq!(s.mapping.theme().unwrap().id, "default");
}

#[test]
fn crossfades_and_quantise_flags_are_one_shots_never_replayed() {
    let specs = crate::core::params::builtin_specs();
    for k in [
        "transition",
        "_quantized",
        "quantize_mode",
        "lookahead_ms",
        "reset_cache",
    ] {
        assert!(specs[k].one_shot, "{k}");
    }
    // A theme switch leaves the destination prompt, not the fade, in the replayed state.
    let mut s = state_on("default");
    act(&mut s, Action::ThemeNext, 10);
    let full = s.params.store.full_state();
    assert!(full.contains_key("prompts"));
    assert!(!full.contains_key("transition"));
}

/// Scope's beat forwarding reads the arbitrated grid: while Link leads, `bpm` is the session's
/// (126, the tracker hears 120) and `is_playing` follows Link's transport, not "a tempo is known".
#[test]
fn is_playing_follows_links_transport_while_link_leads() {
    use crate::core::tempo::LinkReport;
    let mut s = state_on("synthwave-highway");
    let link = |at: u64, playing: bool| {
        Msg::Link(LinkReport {
            at: ms(at),
            beat: at as f64 / 500.0,
            bpm: 126.0,
            peers: 1,
            playing,
        })
    };
    let last_playing = |out: &[(u64, Effect)]| {
        updates(&out.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>())
            .iter()
            .filter_map(|u| u.values.get("is_playing").cloned())
            .next_back()
    };
    // Link leads and its transport runs: the tracker's frames keep arriving.
    let mut out = Vec::new();
    for at in (0..1000).step_by(20) {
        out.extend(
            update(&mut s, link(at, true), ms(at))
                .into_iter()
                .map(|e| (at, e)),
        );
        out.extend(play(&mut s, at, at + 20, 0.5));
    }
    assert_eq!(last_playing(&out), Some(json!(true)));
    // Scope gets the session's tempo, not the tracker's 120.
    let bpms: Vec<_> = updates(&out.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>())
        .iter()
        .filter_map(|u| u.values.get("bpm").cloned())
        .collect();
    assert_eq!(bpms.last(), Some(&json!(126.0)), "{bpms:?}");
    // The session stops (a DJ pressed stop in Live): frames still say 120 BPM.
    let mut out = Vec::new();
    for at in (1000..2000).step_by(20) {
        out.extend(
            update(&mut s, link(at, false), ms(at))
                .into_iter()
                .map(|e| (at, e)),
        );
        out.extend(play(&mut s, at, at + 20, 0.5));
    }
    assert_eq!(last_playing(&out), Some(json!(false)));
    assert!(s.audio.frame.bpm > 100.0);
}
