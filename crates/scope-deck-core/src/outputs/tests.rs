//! The outputs slice folded through `update_routed`: routing, per-output shaping, goodbyes and
//! failover.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::state::CoreSettings;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn spec(name: &str) -> OutputSpec {
    OutputSpec {
        name: name.into(),
        backend: "dry-run".into(),
        target: format!("http://{name}:8000"),
        failover_after: Duration::from_secs(2),
        ..OutputSpec::default()
    }
}

/// Three outputs (`wall`, `left`, `right`; the sides in group `sides`), started and streaming.
fn three() -> AppState {
    let mut specs = vec![spec("wall"), spec("left"), spec("right")];
    specs[1].group = Some("sides".into());
    specs[2].group = Some("sides".into());
    specs[2].overrides.seed = Some(7);
    specs[2].overrides.offsets.insert("noise_scale".into(), 0.1);
    let mut s = AppState::new(CoreSettings::default());
    s.outputs = OutputsSlice::new(specs);
    update_routed(&mut s, Msg::Started, ms(0));
    for i in 0..3 {
        stream(&mut s, i, ms(1));
    }
    s
}

fn event(i: OutputId, event: TransportEvent) -> Msg {
    if i == 0 {
        Msg::Transport(event)
    } else {
        Msg::OutputEvent { output: i, event }
    }
}

fn stream(s: &mut AppState, i: OutputId, at: Duration) -> Vec<Effect> {
    set_state(s, i, ConnState::Streaming, at)
}

fn set_state(s: &mut AppState, i: OutputId, c: ConnState, at: Duration) -> Vec<Effect> {
    update_routed(
        s,
        event(
            i,
            TransportEvent::State {
                state: c,
                reason: None,
            },
        ),
        at,
    )
}

fn act(s: &mut AppState, a: Action, at: Duration) -> Vec<Effect> {
    update_routed(s, Msg::key(a), at)
}

/// Every update addressed to output `i`, merged.
fn sent_to(fx: &[Effect], i: OutputId) -> Map<String, ParamValue> {
    let mut m = Map::new();
    for e in fx {
        if let Effect::Output {
            output,
            cmd: TransportCmd::Update(u),
        } = e
        {
            if *output == i {
                m.extend(u.values.clone());
            }
        }
    }
    m
}

fn select(s: &mut AppState, name: &str) {
    act(
        s,
        Action::OutputSelect {
            output: Some(OutputRef::Name(name.into())),
            group: None,
        },
        ms(5),
    );
}

fn set_noise(v: f64) -> Action {
    Action::SetParam {
        key: "noise_scale".into(),
        value: json!(v),
    }
}

#[test]
fn with_no_outputs_the_reducer_is_unchanged() {
    let mut a = AppState::new(CoreSettings::default());
    let mut b = a.clone();
    let fa = update_routed(&mut a, Msg::Started, ms(0));
    let fb = crate::update(&mut b, Msg::Started, ms(0));
    assert_eq!(fa, fb);
    assert!(fa.contains(&Effect::Transport(TransportCmd::Connect)));
}

#[test]
fn started_connects_every_output() {
    let mut s = AppState::new(CoreSettings::default());
    s.outputs = OutputsSlice::new(vec![spec("a"), spec("b")]);
    let fx = update_routed(&mut s, Msg::Started, ms(0));
    for i in 0..2 {
        assert!(fx.contains(&Effect::Output {
            output: i,
            cmd: TransportCmd::Connect
        }));
    }
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Transport(_))),
        "{fx:?}"
    );
}

#[test]
fn an_action_goes_to_all_outputs_by_default_shaped_per_output() {
    let mut s = three();
    let fx = act(&mut s, set_noise(0.5), ms(10));
    assert_eq!(sent_to(&fx, 0)["noise_scale"], json!(0.5));
    assert_eq!(sent_to(&fx, 1)["noise_scale"], json!(0.5));
    // `right` has an offset of +0.1.
    let right = sent_to(&fx, 2)["noise_scale"].as_f64().unwrap();
    assert!((right - 0.6).abs() < 1e-9, "{right}");
}

#[test]
fn with_one_output_selected_an_action_reaches_only_it_and_stays_its_own() {
    let mut s = three();
    select(&mut s, "left");
    assert_eq!(s.outputs.routing, Routing::One(1));
    let before = s.params.store.get("noise_scale").cloned();
    let fx = act(&mut s, set_noise(0.3), ms(10));
    assert_eq!(sent_to(&fx, 1)["noise_scale"], json!(0.3));
    assert!(sent_to(&fx, 0).is_empty(), "{fx:?}");
    assert!(sent_to(&fx, 2).is_empty(), "{fx:?}");
    // The shared state did not move; the selected output holds the value for its reconnects.
    assert_eq!(s.params.store.get("noise_scale").cloned(), before);
    let full = s.params.store.full_state();
    assert_eq!(desired_for(&s, 1, &full)["noise_scale"], json!(0.3));
    assert_ne!(
        desired_for(&s, 0, &full).get("noise_scale"),
        Some(&json!(0.3))
    );
    // A shared change of the key (mapping, tick) does not override it on `left`.
    let fx = fan_out(
        &s,
        vec![Effect::Transport(TransportCmd::Update(ParamUpdate::one(
            "noise_scale",
            json!(0.7),
        )))],
    );
    assert!(sent_to(&fx, 1).is_empty());
    assert_eq!(sent_to(&fx, 0)["noise_scale"], json!(0.7));
}

#[test]
fn a_one_shot_with_an_output_selected_is_not_kept() {
    let mut s = three();
    select(&mut s, "wall");
    let fx = act(&mut s, Action::ResetCache, ms(10));
    assert_eq!(sent_to(&fx, 0)["reset_cache"], json!(true));
    assert!(sent_to(&fx, 1).is_empty() && sent_to(&fx, 2).is_empty());
    assert!(s.outputs.list[0].own.get("reset_cache").is_none());
}

#[test]
fn panic_and_blackout_always_reach_every_output() {
    let mut s = three();
    select(&mut s, "left");
    let fx = act(&mut s, Action::Panic, ms(10));
    for i in 0..3 {
        assert_eq!(
            sent_to(&fx, i).get("paused"),
            Some(&json!(true)),
            "output {i}: {fx:?}"
        );
    }
    act(&mut s, Action::Blackout { on: Some(true) }, ms(20));
    assert_eq!(
        s.stage.control().level,
        0.0,
        "blackout is the whole stage's"
    );
}

#[test]
fn a_group_selection_reaches_the_group() {
    let mut s = three();
    act(
        &mut s,
        Action::OutputSelect {
            output: None,
            group: Some("sides".into()),
        },
        ms(5),
    );
    let fx = act(&mut s, set_noise(0.2), ms(10));
    assert!(sent_to(&fx, 0).is_empty());
    assert_eq!(sent_to(&fx, 1)["noise_scale"], json!(0.2));
    // A value the output set itself is not offset.
    assert_eq!(sent_to(&fx, 2)["noise_scale"], json!(0.2));
}

#[test]
fn selecting_again_or_all_returns_to_all_and_a_shared_change_clears_own_values() {
    let mut s = three();
    select(&mut s, "left");
    act(&mut s, set_noise(0.3), ms(10));
    select(&mut s, "left");
    assert_eq!(s.outputs.routing, Routing::All);
    let fx = act(&mut s, set_noise(0.4), ms(20));
    assert_eq!(sent_to(&fx, 1)["noise_scale"], json!(0.4));
    assert!(s.outputs.list[1].own.get("noise_scale").is_none());
}

#[test]
fn unknown_outputs_and_groups_are_named_in_a_notice() {
    let mut s = three();
    act(
        &mut s,
        Action::OutputSelect {
            output: Some(OutputRef::Name("floor".into())),
            group: None,
        },
        ms(5),
    );
    let last = s.ui.notices.back().unwrap();
    assert!(
        last.message.contains("no output `floor`"),
        "{}",
        last.message
    );
    assert!(
        last.message.contains("wall, left, right"),
        "{}",
        last.message
    );
    act(
        &mut s,
        Action::OutputSelect {
            output: Some(OutputRef::Number(9)),
            group: None,
        },
        ms(6),
    );
    assert!(s.ui.notices.back().unwrap().message.contains("#9"));
    assert_eq!(s.outputs.routing, Routing::All);
}

#[test]
fn overrides_shape_the_desired_state() {
    let mut s = three();
    act(&mut s, set_noise(0.5), ms(10));
    let full = s.params.store.full_state();
    let right = desired_for(&s, 2, &full);
    assert_eq!(right["seed"], json!(7));
    assert!(desired_for(&s, 0, &full).get("seed").is_none());
    let shared = full["noise_scale"].as_f64().unwrap();
    let got = right["noise_scale"].as_f64().unwrap();
    assert!((got - (shared + 0.1).min(1.0)).abs() < 1e-9);
    // An offset never leaves the key's range.
    s.outputs.list[2]
        .spec
        .overrides
        .offsets
        .insert("noise_scale".into(), 5.0);
    let (_, hi) = s.params.store.spec("noise_scale").unwrap().range().unwrap();
    assert_eq!(desired_for(&s, 2, &full)["noise_scale"], json!(hi));
}

#[test]
fn an_own_prompt_keeps_shared_prompt_transitions_away() {
    let mut s = AppState::new(CoreSettings::default());
    let mut b = spec("b");
    b.overrides.prompt = Some("red room".into());
    s.outputs = OutputsSlice::new(vec![spec("a"), b]);
    update_routed(&mut s, Msg::Started, ms(0));
    let mut u = ParamUpdate::trigger("transition", json!({"target_prompts": []}));
    u.values
        .insert("prompts".into(), json!([{"text": "x", "weight": 1.0}]));
    let fx = fan_out(&s, vec![Effect::Transport(TransportCmd::Update(u))]);
    assert!(sent_to(&fx, 1).is_empty(), "{fx:?}");
    assert!(sent_to(&fx, 0).contains_key("transition"));
    let full = s.params.store.full_state();
    assert_eq!(
        desired_for(&s, 1, &full)["prompts"][0]["text"],
        json!("red room")
    );
}

#[test]
fn the_show_stops_when_the_last_output_said_goodbye() {
    let mut s = three();
    let fx = act(&mut s, Action::ForceQuit, ms(10));
    for i in 0..3 {
        assert!(fx.contains(&Effect::Output {
            output: i,
            cmd: TransportCmd::Shutdown
        }));
    }
    for i in [2, 0] {
        let fx = update_routed(&mut s, event(i, TransportEvent::Stopped), ms(20));
        assert!(!fx.contains(&Effect::Exit), "output {i} is not the last");
    }
    let fx = update_routed(&mut s, event(1, TransportEvent::Stopped), ms(30));
    assert!(fx.contains(&Effect::Exit));
}

#[test]
fn one_output_failing_is_its_own_row_and_a_named_notice() {
    let mut s = three();
    let fx = set_state(&mut s, 1, ConnState::Reconnecting, ms(10));
    assert!(fx.contains(&Effect::Emit(Event::OutputConnection {
        output: "left".into(),
        state: ConnState::Reconnecting,
        reason: None
    })));
    assert_eq!(s.outputs.list[1].lost_since, Some(ms(10)));
    assert_eq!(
        s.transport.state,
        ConnState::Streaming,
        "output 0 drives the shared row"
    );
    update_routed(
        &mut s,
        event(1, TransportEvent::Error("GET /health: no answer".into())),
        ms(11),
    );
    assert_eq!(
        s.ui.notices.back().unwrap().message,
        "left: GET /health: no answer"
    );
    assert!(s.transport.last_error.is_none());
}

#[test]
fn a_lost_primary_fails_over_to_its_standby_and_back() {
    let mut s = three();
    s.outputs.list[0].spec.standby = Some(2);
    select(&mut s, "wall");
    act(&mut s, set_noise(0.25), ms(10));
    act(
        &mut s,
        Action::OutputSelect {
            output: None,
            group: None,
        },
        ms(11),
    );
    set_state(&mut s, 0, ConnState::Reconnecting, ms(1000));
    // Not yet: lost for less than failover_after (2 s).
    let fx = update_routed(&mut s, Msg::Tick, ms(2500));
    assert!(s.outputs.failovers.is_empty(), "{fx:?}");
    let fx = update_routed(&mut s, Msg::Tick, ms(3100));
    assert_eq!(s.outputs.failovers.len(), 1);
    assert_eq!(s.outputs.video_source(0), 2);
    assert_eq!(s.outputs.carries(2), 0);
    // The standby gets the primary's whole state at once, without its own seed.
    let got = sent_to(&fx, 2);
    assert_eq!(got["noise_scale"], json!(0.25));
    assert!(!got.contains_key("seed"), "{got:?}");
    let full = s.params.store.full_state();
    assert_eq!(desired_for(&s, 2, &full)["noise_scale"], json!(0.25));
    // While it stands in, shared changes reach it shaped as the primary (no offset).
    let fx = fan_out(
        &s,
        vec![Effect::Transport(TransportCmd::Update(ParamUpdate::one(
            "vace_context_scale",
            json!(1.0),
        )))],
    );
    assert_eq!(sent_to(&fx, 2)["vace_context_scale"], json!(1.0));
    // The primary is back: video and state return.
    stream(&mut s, 0, ms(5000));
    let fx = update_routed(&mut s, Msg::Tick, ms(5010));
    assert!(s.outputs.failovers.is_empty());
    assert_eq!(s.outputs.video_source(0), 0);
    assert_eq!(
        sent_to(&fx, 2)["seed"],
        json!(7),
        "the standby's own state again"
    );
}

#[test]
fn no_failover_to_a_standby_that_is_down() {
    let mut s = three();
    s.outputs.list[0].spec.standby = Some(1);
    set_state(&mut s, 1, ConnState::Reconnecting, ms(10));
    set_state(&mut s, 0, ConnState::Reconnecting, ms(20));
    update_routed(&mut s, Msg::Tick, ms(9000));
    assert!(s.outputs.failovers.is_empty());
}

#[test]
fn views_show_selection_and_failover() {
    let mut s = three();
    s.outputs.list[0].spec.standby = Some(2);
    select(&mut s, "left");
    set_state(&mut s, 0, ConnState::Reconnecting, ms(10));
    update_routed(&mut s, Msg::Tick, ms(5000));
    let v = views(&s);
    assert!(v[1].selected && !v[0].selected);
    assert_eq!(v[0].failover.as_deref(), Some("→ right"));
    assert_eq!(v[2].failover.as_deref(), Some("← wall"));
    assert_eq!(v[0].state, ConnState::Reconnecting);
}

#[test]
fn output_select_parses_from_a_keymap_table_and_json() {
    let a: Action =
        serde_json::from_value(json!({"action": "output_select", "output": 2})).unwrap();
    assert_eq!(
        a,
        Action::OutputSelect {
            output: Some(OutputRef::Number(2)),
            group: None
        }
    );
    let all = Action::from_name("output_select").unwrap();
    assert_eq!(
        all,
        Action::OutputSelect {
            output: None,
            group: None
        }
    );
}

#[test]
fn a_theme_override_becomes_the_outputs_own_prompt_and_values() {
    let mut s = AppState::new(CoreSettings::default());
    let theme = |id: &str, prompt: &str| {
        let text =
            format!("name = \"{id}\"\nprompts = [\"{prompt}\"]\n[params]\nnoise_scale = 0.35\n");
        let mut errs = Vec::new();
        crate::mapping::theme::Theme::from_text(id, id, &text, &mut errs)
            .unwrap_or_else(|| panic!("{errs:?}"))
    };
    s.mapping = crate::mapping::slice::MappingSlice::new(
        vec![theme("calm", "calm sea"), theme("storm", "storm clouds")],
        "calm",
        4,
    );
    let mut b = spec("b");
    b.overrides.theme = Some("storm".into());
    s.outputs = OutputsSlice::new(vec![spec("a"), b]);
    update_routed(&mut s, Msg::Started, ms(0));
    let full = s.params.store.full_state();
    let text = |m: &Map<String, ParamValue>| m["prompts"].to_string();
    assert!(
        text(&desired_for(&s, 1, &full)).contains("storm clouds"),
        "{full:?}"
    );
    assert!(text(&desired_for(&s, 0, &full)).contains("calm sea"));
    assert_eq!(s.mapping.active, 0, "the shared theme stays");
}

fn float(key: &str, min: f64, max: f64) -> ParamSpec {
    ParamSpec {
        key: key.into(),
        kind: ParamKind::Float { min, max },
        one_shot: false,
    }
}

fn schema(s: &mut AppState, i: OutputId, specs: Vec<ParamSpec>, at: Duration) -> Vec<Effect> {
    update_routed(s, event(i, TransportEvent::Schema(specs)), at)
}

#[test]
fn each_output_is_checked_against_its_own_pipelines_schema() {
    let mut s = three();
    // wall's pipeline: noise_scale up to 1.0 and a `kaleido` only it has; left's: up to 0.4.
    schema(
        &mut s,
        0,
        vec![float("noise_scale", 0.0, 1.0), float("kaleido", 0.0, 1.0)],
        ms(2),
    );
    schema(&mut s, 1, vec![float("noise_scale", 0.0, 0.4)], ms(3));
    // The shared store takes the widest range: 0.9 is wall's to have.
    let fx = act(&mut s, set_noise(0.9), ms(10));
    assert_eq!(sent_to(&fx, 0)["noise_scale"], json!(0.9));
    assert_eq!(
        sent_to(&fx, 1)["noise_scale"],
        json!(0.4),
        "cut to left's range"
    );
    let fx = act(
        &mut s,
        Action::SetParam {
            key: "kaleido".into(),
            value: json!(0.5),
        },
        ms(20),
    );
    assert_eq!(sent_to(&fx, 0)["kaleido"], json!(0.5));
    assert!(
        !sent_to(&fx, 1).contains_key("kaleido"),
        "left's pipeline has no kaleido: {fx:?}"
    );
    // Right has reported no schema yet: the shared check serves (its +0.1 offset, clamped to
    // the shared range).
    assert!(sent_to(&fx, 2).contains_key("kaleido"));
    // Each output's desired state (what its reconnect replays) is cut the same way.
    let full = s.params.store.full_state();
    assert_eq!(desired_for(&s, 1, &full)["noise_scale"], json!(0.4));
    assert!(!desired_for(&s, 1, &full).contains_key("kaleido"));
    assert_eq!(desired_for(&s, 0, &full)["noise_scale"], json!(0.9));
}

#[test]
fn a_transport_waits_for_its_own_schema_only_and_own_values_are_rechecked() {
    let mut s = three();
    select(&mut s, "left");
    act(&mut s, set_noise(0.7), ms(10));
    assert_eq!(s.outputs.list[1].own["noise_scale"], json!(0.7));
    // Wall's schema counts for wall only.
    schema(&mut s, 0, vec![float("noise_scale", 0.0, 1.0)], ms(20));
    let counts: Vec<u64> = s.outputs.list.iter().map(|o| o.schemas_merged).collect();
    assert_eq!(counts, vec![1, 0, 0]);
    // Left's narrower schema re-checks the value it holds, says so, and sends the cut value to
    // left alone.
    let fx = schema(&mut s, 1, vec![float("noise_scale", 0.0, 0.5)], ms(30));
    assert_eq!(s.outputs.list[1].own["noise_scale"], json!(0.5));
    assert_eq!(s.outputs.list[1].schemas_merged, 1);
    assert_eq!(sent_to(&fx, 1)["noise_scale"], json!(0.5));
    assert!(!sent_to(&fx, 0).contains_key("noise_scale"), "{fx:?}");
    assert!(
        fx.iter()
            .any(|e| format!("{e:?}")
                .contains("left: its pipeline's schema limits its own noise_scale")),
        "{fx:?}"
    );
}

#[test]
fn the_journal_keeps_each_outputs_own_values_selection_and_failovers() {
    let mut s = three();
    select(&mut s, "left");
    act(&mut s, set_noise(0.3), ms(10));
    // wall lost for longer than its failover time, with left (streaming) as its standby.
    s.outputs.list[0].spec.standby = Some(1);
    set_state(&mut s, 0, ConnState::Reconnecting, ms(20));
    update_routed(&mut s, Msg::Tick, ms(3000));
    assert_eq!(s.outputs.failovers.len(), 1);
    let r = crate::recall::capture(&s);
    let o = r.outputs.as_ref().unwrap();
    assert_eq!(o.routing, RoutingRecall::Output("left".into()));
    assert_eq!(o.own["left"]["noise_scale"], json!(0.3));
    assert_eq!(o.own["right"]["seed"], json!(7));
    assert_eq!(
        o.failovers,
        vec![FailoverRecall {
            primary: "wall".into(),
            standby: "left".into()
        }]
    );
    // Through JSON, as the journal stores it, into a fresh show of the same outputs.
    let back: crate::recall::Recall =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    let mut t = AppState::new(CoreSettings::default());
    let mut specs = vec![spec("wall"), spec("left"), spec("right")];
    specs[0].standby = Some(1);
    specs[2].overrides.seed = Some(7);
    t.outputs = OutputsSlice::new(specs);
    update_routed(&mut t, Msg::Started, ms(0));
    update_routed(&mut t, Msg::Resume(Box::new(back)), ms(1));
    assert_eq!(t.outputs.list[1].own["noise_scale"], json!(0.3));
    assert_eq!(t.outputs.routing, Routing::One(1));
    assert_eq!(t.outputs.carries(1), 0, "left carries wall again");
    let full = t.params.store.full_state();
    assert_eq!(desired_for(&t, 2, &full)["seed"], json!(7));
    // The shared value did not move: wall's own desired state has no 0.3.
    assert_ne!(
        desired_for(&t, 0, &full).get("noise_scale"),
        Some(&json!(0.3))
    );
    // A primary that streams again ends the restored failover, as a live one.
    stream(&mut t, 0, ms(5));
    update_routed(&mut t, Msg::Tick, ms(10));
    assert!(t.outputs.failovers.is_empty());
}

#[test]
fn a_journal_naming_outputs_this_show_lacks_says_so() {
    let mut s = three();
    select(&mut s, "left");
    act(&mut s, set_noise(0.3), ms(10));
    let r = crate::recall::capture(&s);
    let mut t = AppState::new(CoreSettings::default());
    t.outputs = OutputsSlice::new(vec![spec("wall"), spec("centre")]);
    update_routed(&mut t, Msg::Started, ms(0));
    let fx = update_routed(&mut t, Msg::Resume(Box::new(r)), ms(1));
    assert!(
        fx.iter()
            .any(|e| format!("{e:?}").contains("resume: this show has no left")),
        "{fx:?}"
    );
    assert_eq!(t.outputs.routing, Routing::All);
    assert!(t.outputs.list.iter().all(|o| o.own.is_empty()));
}

/// Engine times (ms) at which output `i` was sent a cache reset, over ticks every 10 ms.
fn reset_times(s: &mut AppState, from: u64, to: u64) -> Vec<Vec<u64>> {
    let mut got = vec![Vec::new(); s.outputs.list.len()];
    for t in (from..to).step_by(10) {
        for e in update_routed(s, Msg::Tick, ms(t)) {
            if let Effect::Output {
                output,
                cmd: TransportCmd::Update(u),
            } = e
            {
                if u.values.get("reset_cache") == Some(&json!(true)) {
                    got[output].push(t);
                }
            }
        }
    }
    got
}

#[test]
fn beat_locked_changes_reach_each_output_early_by_its_own_latency() {
    let theme = "name = \"Beat\"\nprompts = [\"p\"]\n\
                 [[triggers]]\nname = \"reset\"\non = \"beat\"\ncooldown_ms = 300\naction = \"reset_cache\"\n";
    let mut errs = Vec::new();
    let t = crate::mapping::theme::Theme::from_text("beat.toml", "beat", theme, &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    let mut s = AppState::new(CoreSettings::default());
    s.mapping = crate::mapping::slice::MappingSlice::new(vec![t.unwrap()], "beat", 4);
    let mut specs = vec![spec("near"), spec("far"), spec("shared")];
    specs[0].latency = Some(ms(100));
    specs[1].latency = Some(ms(400));
    // `shared` names none: [server] latency_ms (0 here).
    s.outputs = OutputsSlice::new(specs);
    update_routed(&mut s, Msg::Started, ms(0));
    for i in 0..3 {
        stream(&mut s, i, ms(1));
    }
    s.tempo.grid = crate::tempo::Grid {
        at: ms(1000),
        count: 0,
        in_bar: 0,
        bpm: 120.0,
        playing: true,
    };
    let got = reset_times(&mut s, 1000, 2900);
    // Beat k falls at 1000 + 500 k; each output's reset leaves its own latency before it (to
    // the 10 ms tick), decided once against the one grid. Beats 2 and 3 are clear of the start
    // (the first lead beats were due at once and the trigger's cooldown spaces them).
    for (i, lat) in [(0, 100), (1, 400), (2, 0)] {
        for k in 2..=3u64 {
            let due = 1000 + 500 * k - lat;
            assert!(
                got[i].iter().any(|t| t.abs_diff(due) <= 10),
                "output {i}: beat {k} due at {due}, got {:?}",
                got[i]
            );
        }
        assert_eq!(
            got[i].windows(2).filter(|w| w[1] - w[0] < 400).count(),
            0,
            "output {i}: one reset a beat: {:?}",
            got[i]
        );
    }
    assert_eq!(s.tempo.latency(), ms(400), "decided by the largest");
    // A panic drops what is held (the safe state must not be overtaken by a held switch).
    s.outputs.held.push(Held {
        at: ms(5000),
        output: 0,
        cmd: TransportCmd::Update(ParamUpdate::default()),
    });
    act(&mut s, Action::Panic, ms(2950));
    assert!(s.outputs.held.is_empty());
}

/// A cache reset to every output at `t`, then each output's video showing it `delays[i]` later.
fn reset_and_show(s: &mut AppState, t: u64, delays: [u64; 3]) -> Vec<Effect> {
    let mut fx = act(s, Action::ResetCache, ms(t));
    for (i, d) in delays.into_iter().enumerate() {
        fx.extend(update_routed(
            s,
            Msg::VideoChangeSeen {
                output: i,
                at: ms(t + d),
            },
            ms(t + d),
        ));
    }
    fx
}

#[test]
fn each_output_measures_its_own_latency_on_its_own_video() {
    let mut s = three();
    s.tempo.settings.measure_latency = true;
    s.tempo.settings.latency = ms(100);
    let mut fx = Vec::new();
    for n in 0..3 {
        fx.extend(reset_and_show(&mut s, 1000 + 1000 * n, [400, 250, 700]));
    }
    assert_eq!(latency_of(&s, 0), ms(400));
    assert_eq!(latency_of(&s, 1), ms(250));
    assert_eq!(latency_of(&s, 2), ms(700));
    // Output 0's is the tempo slice's, as with a single server; the lead is the largest.
    assert_eq!(s.tempo.measured_latency(), Some(ms(400)));
    assert_eq!(s.tempo.latency(), ms(700));
    for (name, lat) in [("wall", 400), ("left", 250), ("right", 700)] {
        let said = format!("measured on {name}: {lat} ms");
        assert!(
            fx.iter().any(|e| matches!(e, Effect::Emit(Event::Notice { message, .. }) if message.contains(&said))),
            "no notice {said:?}"
        );
    }
    let v = views(&s);
    assert_eq!(
        v.iter()
            .map(|o| (o.latency_ms, o.latency_measured))
            .collect::<Vec<_>>(),
        vec![(400, true), (250, true), (700, true)]
    );
}

#[test]
fn without_measuring_each_output_keeps_its_configured_latency() {
    let mut s = three();
    s.outputs.list[2].spec.latency = Some(ms(300));
    s.tempo.settings.latency = ms(100);
    for n in 0..3 {
        reset_and_show(&mut s, 1000 + 1000 * n, [400, 250, 700]);
    }
    assert_eq!(
        (0..3).map(|i| latency_of(&s, i)).collect::<Vec<_>>(),
        vec![ms(100), ms(100), ms(300)]
    );
    assert!(views(&s).iter().all(|o| !o.latency_measured));
}

#[test]
fn a_failed_over_pipeline_measures_the_standby_it_shows() {
    let mut s = three();
    s.tempo.settings.measure_latency = true;
    s.outputs.failovers.push(Failover {
        primary: 0,
        standby: 1,
        since: ms(0),
    });
    // The wall's pipeline shows the left box's video: its changes are the left box's.
    for n in 0..3 {
        let t = 1000 + 1000 * n;
        act(&mut s, Action::ResetCache, ms(t));
        update_routed(
            &mut s,
            Msg::VideoChangeSeen {
                output: 0,
                at: ms(t + 300),
            },
            ms(t + 300),
        );
    }
    assert_eq!(measured_latency_of(&s, 1), Some(ms(300)));
    assert_eq!(measured_latency_of(&s, 0), None);
}

#[test]
fn a_share_held_back_is_timed_from_when_it_leaves() {
    let mut s = three();
    s.tempo.settings.measure_latency = true;
    let mut m = crate::latency::LatencyMeter::default();
    // Output 1's share of a change leaves 300 ms after the fold that decided it.
    s.outputs.held.push(Held {
        at: ms(1300),
        output: 1,
        cmd: TransportCmd::Update(ParamUpdate {
            values: [("reset_cache".to_string(), json!(true))]
                .into_iter()
                .collect(),
            urgent: true,
        }),
    });
    update_routed(&mut s, Msg::Tick, ms(1000));
    assert_eq!(s.outputs.list[1].meter, m, "nothing left yet");
    update_routed(&mut s, Msg::Tick, ms(1300));
    m.on_sent(ms(1300));
    assert_eq!(s.outputs.list[1].meter, m, "timed when it left");
}
