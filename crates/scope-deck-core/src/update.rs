//! The reducer: `update(state, msg, now) -> effects`. Pure: no I/O, no clock, no randomness.

use std::time::Duration;

use serde_json::json;

use crate::action::{Action, ActionSource};
use crate::effect::{Effect, Event};
use crate::msg::{Msg, StopSignal};
use crate::params::{Accepted, ParamValue};
use crate::state::{ActivityEntry, AppState, Level, Lifecycle, PanicSnapshot, push_bounded};
use crate::transport::types::{
    CmdKind, ConnState, ParamUpdate, ServerMessage, TransportCmd, TransportEvent,
};

pub(crate) use crate::ctx::{fire_trigger, notice};

/// How long a quit confirmation waits for the second press.
pub const QUIT_CONFIRM_WINDOW: Duration = Duration::from_secs(3);

/// How fast spectrum peak-hold marks fall (full scale per second).
pub const PEAK_DECAY_PER_SEC: f32 = 0.6;

/// How many sent payloads the transport slice keeps for display.
const SENT_KEEP: usize = 16;

/// Applies one message to the state and returns what the edges must do.
pub fn update(state: &mut AppState, msg: Msg, now: Duration) -> Vec<Effect> {
    let mut fx = Vec::new();
    let mut to_mapping = crate::mapping::reduce::MappingInput::of(&msg);
    // Health is derived at the frame tick and on the messages it is made of.
    let beat = match &msg {
        Msg::AudioEvent(crate::audio::features::AudioEvent::Beat { count, in_bar, .. }) => {
            Some((*count, *in_bar))
        }
        _ => None,
    };
    // With a pipeline latency, beat-locked changes run on the grid's beats sent early
    // (`tempo::lead_beats`), and the tracker's own beats only forward the grid.
    let direct = crate::tempo::beats_are_direct(state);
    let real_beat = match (&msg, direct) {
        (Msg::AudioEvent(ev @ crate::audio::features::AudioEvent::Beat { .. }), false) => {
            to_mapping = crate::mapping::reduce::MappingInput::None;
            Some(*ev)
        }
        _ => None,
    };
    let beat = if direct { beat } else { None };
    let health = matches!(
        msg,
        Msg::Tick
            | Msg::AudioProblem(_)
            | Msg::MidiActivity(_)
            | Msg::VideoStats(_)
            | Msg::InputHealth { .. }
    );
    match msg {
        Msg::Started => {
            fx.push(Effect::Emit(Event::Ready {
                version: env!("CARGO_PKG_VERSION").to_string(),
                backend: state.settings.backend.clone(),
            }));
            crate::mapping::reduce::on_started(state, now);
            seed_initial_params(state, now);
            crate::video::reduce::seed(state, now);
            fx.push(Effect::Transport(TransportCmd::Connect));
            crate::video::reduce::on_started(state, now, &mut fx);
        }
        Msg::Action { action, source } => {
            if state.lifecycle != Lifecycle::Running {
                return fx;
            }
            record_activity(state, &action, source, now);
            fx.push(Effect::Emit(Event::Action {
                action: action.clone(),
                source,
            }));
            apply_action(state, action, source, now, &mut fx);
        }
        Msg::Tick => {
            crate::stage::advance(state, now);
            if let Some(since) = state.controls.quit_pending {
                if now.saturating_sub(since) > QUIT_CONFIRM_WINDOW {
                    state.controls.quit_pending = None;
                }
            }
            if state
                .controls
                .confirm
                .as_ref()
                .is_some_and(|(_, at)| now.saturating_sub(*at) > crate::show::CONFIRM_WINDOW)
            {
                state.controls.confirm = None;
            }
            crate::tempo::arbitrate(state, now, &mut fx);
        }
        Msg::AudioFrame(frame) => {
            let dt = now.saturating_sub(state.audio.frame_at).as_secs_f32();
            let decay = PEAK_DECAY_PER_SEC * dt;
            for (peak, v) in state.audio.spectrum_peaks.iter_mut().zip(frame.spectrum) {
                *peak = (*peak - decay).max(v);
            }
            state.audio.frame = frame;
            state.audio.frame_at = now;
            crate::tempo::on_frame(state, now);
            crate::health::on_audio_frame(state, now);
        }
        Msg::AudioEvent(ev) => match ev {
            crate::audio::features::AudioEvent::Beat { .. } => {
                state.audio.beats += 1;
                state.audio.last_beat = Some((ev, now));
                crate::tempo::on_beat(state, &ev, now);
            }
            crate::audio::features::AudioEvent::Onset { .. } => {
                state.audio.onsets += 1;
                state.audio.last_onset = Some((ev, now));
            }
        },
        Msg::ThemesReloaded(result) => {
            crate::mapping::reduce::on_themes_reloaded(state, result, now, &mut fx)
        }
        Msg::SetlistReloaded(result) => crate::cue::on_reloaded(state, result, now, &mut fx),
        Msg::AudioProblem(problem) => {
            if let Some(p) = &problem {
                notice(state, &mut fx, Level::Warn, format!("audio: {p}"), now);
            }
            state.audio.problem = problem;
        }
        Msg::Tempo(cmd) => crate::tempo::on_external(state, cmd, now, &mut fx),
        Msg::Learn(m) => crate::midi::on_learn(state, m, now, &mut fx),
        Msg::Link(report) => crate::tempo::on_link(state, report, now, &mut fx),
        Msg::Transport(ev) => on_transport(state, ev, now, &mut fx),
        // Routed by `outputs::update_routed`; the shared reducer has nothing to add.
        Msg::OutputEvent { .. } => {}
        Msg::VideoStats(stats) => on_video_stats(state, *stats, now, &mut fx),
        Msg::VideoChangeSeen { at, .. } => crate::tempo::on_video_change(state, at, now, &mut fx),
        Msg::Signal(signal) => {
            fx.push(Effect::Emit(Event::Signal { signal }));
            begin_shutdown(state, signal_reason(signal), &mut fx);
        }
        Msg::BadInput(why) => notice(state, &mut fx, Level::Error, why, now),
        Msg::CommandDropped(kind) => on_command_dropped(state, kind, now, &mut fx),
        Msg::MidiActivity(devices) => {
            crate::midi::activity::on_report(state, devices, now, &mut fx)
        }
        Msg::Resume(r) => {
            if state.lifecycle == Lifecycle::Running {
                crate::recall::restore(state, &r, now, &mut fx);
            }
        }
        Msg::InputHealth { input, problem } => {
            if input == "video in" {
                state.health.video_in = problem;
            }
        }
    }
    if health {
        crate::health::refresh(state, now, &mut fx);
    }
    crate::mapping::reduce::after_update(state, to_mapping, now, &mut fx);
    if state.lifecycle == Lifecycle::Running {
        crate::cue::advance(state, beat, now, &mut fx);
    }
    if let Some(ev) = real_beat {
        crate::mapping::reduce::forward_beat(state, &ev, now, &mut fx);
    }
    if !direct && state.lifecycle == Lifecycle::Running {
        for ev in crate::tempo::lead_beats(state, now) {
            crate::mapping::reduce::on_lead_beat(state, &ev, now, &mut fx);
            if let crate::audio::features::AudioEvent::Beat { count, in_bar, .. } = ev {
                crate::cue::advance(state, Some((count, in_bar)), now, &mut fx);
            }
        }
    }
    // A change the picture will show: the latency meter times it (crate::latency). With
    // several outputs each output's meter times its own share when it leaves
    // (`crate::outputs`: a share held back for a lower-latency output leaves later).
    if state.outputs.list.is_empty() && crate::latency::sends_visible_change(&fx) {
        state.tempo.meter.on_sent(now);
    }
    fx
}

/// Applies an action on behalf of the engine (a cue landing), without the activity log.
pub(crate) fn apply(
    state: &mut AppState,
    action: Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    apply_action(state, action, source, now, fx);
}

/// Keeps the latest video statistics and derives the decoded frame rate from the counter.
fn on_video_stats(
    state: &mut AppState,
    stats: crate::video::VideoStats,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let fps_in = match &state.video_output {
        Some(prev) if now > prev.at && stats.frames_in >= prev.stats.frames_in => {
            (stats.frames_in - prev.stats.frames_in) as f32 / (now - prev.at).as_secs_f32()
        }
        Some(prev) if now == prev.at => prev.fps_in,
        _ => 0.0,
    };
    let last_frame_at = match &state.video_output {
        Some(prev) if stats.frames_in == prev.stats.frames_in => prev.last_frame_at,
        _ if stats.frames_in > 0 => Some(now),
        _ => None,
    };
    let prev_event = state.video_output.as_ref().and_then(|v| v.event_at);
    let report = prev_event.is_none_or(|t| now.saturating_sub(t) >= VIDEO_EVENT_EVERY);
    let v = crate::state::VideoOutputSlice {
        stats,
        fps_in,
        at: now,
        last_frame_at,
        event_at: if report { Some(now) } else { prev_event },
    };
    if report {
        fx.push(Effect::Emit(video_event(&v, now)));
    }
    state.video_output = Some(v);
}

/// Marks running recordings at an outage (`gap` None: it starts; Some: it ended after that
/// long): a notice (dashboard, log, headless `notice` event) naming the file, so the frozen
/// stretch can be found and cut.
fn mark_recordings(
    state: &mut AppState,
    gap: Option<Duration>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let files: Vec<String> = state
        .video_output
        .iter()
        .flat_map(|v| v.stats.sinks.iter())
        .filter(|k| k.running)
        .filter_map(|k| k.file.as_ref().map(|f| f.display().to_string()))
        .collect();
    for f in files {
        let (level, message) = match gap {
            None => (
                Level::Warn,
                format!(
                    "recording {f}: server outage from {:.1} s (engine time); the picture                      freezes here",
                    now.as_secs_f64()
                ),
            ),
            Some(g) => (
                Level::Info,
                format!(
                    "recording {f}: video back at {:.1} s after a {:.1} s outage",
                    now.as_secs_f64(),
                    g.as_secs_f64()
                ),
            ),
        };
        notice(state, fx, level, message, now);
    }
}

/// Headless `video` events at most this often (the stats arrive every 250 ms).
const VIDEO_EVENT_EVERY: Duration = Duration::from_secs(1);

/// The periodic `video` event: what the dashboard's video figures say, with their age.
fn video_event(v: &crate::state::VideoOutputSlice, now: Duration) -> Event {
    let s = &v.stats;
    Event::Video {
        fps_in: v.fps_in,
        frames_in: s.frames_in,
        decode_ms: s.latency_ms,
        frames_dropped: s.frames_dropped,
        packets_lost: s.packets_lost + s.packets_dropped,
        decode_errors: s.decode_errors,
        sinks_running: s.sinks.iter().filter(|k| k.running).count(),
        sinks_waiting: s.sinks.iter().filter(|k| !k.running && k.waiting).count(),
        sinks_failed: s.sinks.iter().filter(|k| !k.running && !k.waiting).count(),
        last_frame_age_s: v.last_frame_at.map(|t| now.saturating_sub(t).as_secs_f64()),
    }
}

fn signal_reason(s: StopSignal) -> &'static str {
    match s {
        StopSignal::Interrupt => "interrupt",
        StopSignal::Terminate => "terminate",
        StopSignal::Hangup => "hangup",
        StopSignal::InputClosed => "input_closed",
        StopSignal::OutputClosed => "output_closed",
    }
}

/// Values every session starts with, so the first offer carries a complete state.
fn seed_initial_params(state: &mut AppState, now: Duration) {
    let store = &mut state.params.store;
    if store.get("prompts").is_none() {
        let prompts = prompts_value(&state.params.prompt);
        let _ = store.set("prompts", &prompts, ActionSource::System, now);
    }
    if store.get("paused").is_none() {
        let _ = store.set("paused", &json!(false), ActionSource::System, now);
    }
}

fn prompts_value(text: &str) -> ParamValue {
    json!([{ "text": text, "weight": 1.0 }])
}

fn record_activity(state: &mut AppState, action: &Action, source: ActionSource, now: Duration) {
    push_bounded(
        &mut state.controls.recent,
        ActivityEntry {
            at: now,
            label: action.describe(),
            source,
        },
    );
}

fn is_live(state: &AppState) -> bool {
    matches!(
        state.transport.state,
        ConnState::Streaming | ConnState::Degraded
    )
}

fn apply_action(
    state: &mut AppState,
    action: Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    if !matches!(action, Action::Quit) {
        state.controls.quit_pending = None;
    }
    let Some(action) = crate::show::gate(state, action, source, now, fx) else {
        return;
    };
    let Some(action) = crate::midi::learn_step(state, action, source, now, fx) else {
        return;
    };
    match action {
        Action::Quit => {
            // Only a performer's stray key press needs guarding; scripts mean what they say.
            let by_hand = matches!(source, ActionSource::Keyboard | ActionSource::Midi);
            let confirm = by_hand && state.settings.confirm_quit && is_live(state);
            match state.controls.quit_pending {
                None if confirm => {
                    state.controls.quit_pending = Some(now);
                    notice(
                        state,
                        fx,
                        Level::Warn,
                        "streaming: press quit again to stop the show".into(),
                        now,
                    );
                }
                _ => begin_shutdown(state, "quit", fx),
            }
        }
        Action::ForceQuit => begin_shutdown(state, "quit", fx),
        // The dashboard that pressed it closed its own overlay; MIDI learn was stopped above.
        Action::Cancel if source != ActionSource::Keyboard => {
            state.ui.view_actions.push(Action::Cancel)
        }
        Action::Cancel => {}
        // A dashboard's own keys change only that dashboard's view (they never get here from
        // one); from a MIDI binding or a script, every dashboard applies it.
        a if a.is_view() => {
            if source != ActionSource::Keyboard {
                state.ui.view_actions.push(a);
            }
        }
        a @ (Action::SaveLook { .. } | Action::RecallLook { .. }) => {
            crate::look::on_action(state, &a, now, fx)
        }
        a @ (Action::CueGo | Action::CueNext | Action::CuePrev | Action::CueJump { .. }) => {
            crate::cue::on_action(state, &a, now, fx)
        }
        a @ (Action::Blackout { .. } | Action::MasterFade { .. } | Action::Record { .. }) => {
            crate::stage::on_action(state, &a, now, fx);
        }
        a @ (Action::SetParam { .. } | Action::AdjustParam { .. })
            if crate::stage::on_action(state, &a, now, fx) => {}
        Action::ToggleShowMode => {
            let on = !state.controls.show_mode;
            state.controls.show_mode = on;
            state.controls.confirm = None;
            let text = if on {
                "show mode on: reconnect, quit, learn and server outputs need a second press"
            } else {
                "show mode off"
            };
            notice(state, fx, Level::Info, text.into(), now);
        }
        a @ (Action::SetPromptSlot { .. } | Action::CrossfadeOff) => {
            crate::xfade::on_action(state, &a, source, now, fx);
        }
        a @ (Action::SetParam { .. } | Action::AdjustParam { .. })
            if crate::xfade::on_action(state, &a, source, now, fx) => {}
        a @ (Action::PromptNext | Action::PromptPrev | Action::SelectPrompt { .. })
            if state.xfade.engaged() =>
        {
            crate::xfade::load_far(state, &a, source, now, fx);
        }
        Action::Pause => set_param(state, "paused", json!(true), source, now, fx),
        Action::Resume => {
            if state.controls.panic.is_some() {
                release_panic(state, source, now, fx);
            } else {
                set_param(state, "paused", json!(false), source, now, fx);
            }
        }
        Action::TogglePause => {
            let paused = state
                .params
                .store
                .get("paused")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            set_param(state, "paused", json!(!paused), source, now, fx);
        }
        Action::ResetCache => fire_trigger(state, "reset_cache", json!(true), now, fx),
        Action::Panic => engage_panic(state, source, now, fx),
        Action::ReleasePanic => release_panic(state, source, now, fx),
        // `macro.<name>` keys are theme macros (MIDI faders bound with `param = "macro.x"`).
        a @ (Action::SetParam { .. } | Action::AdjustParam { .. })
            if crate::mapping::reduce::is_macro_action(&a) =>
        {
            crate::mapping::reduce::on_action(state, &a, source, now, fx);
        }
        Action::SetParam { key, value } => set_param(state, &key, value, source, now, fx),
        Action::AdjustParam { key, delta } => {
            match state.params.store.adjust(&key, delta, source, now) {
                Ok(acc) => param_changed(&key, acc, fx),
                Err(e) => notice(state, fx, Level::Error, e.to_string(), now),
            }
        }
        Action::SetPrompt { text, .. } if text.trim().is_empty() => {
            notice(state, fx, Level::Warn, "empty prompt ignored".into(), now);
        }
        Action::SetPrompt { text, raw } => {
            crate::xfade::release(state);
            let previous = crate::mapping::theme::PromptEntry {
                parts: state.params.parts.clone(),
            };
            state.params.parts = if raw {
                vec![(text.clone(), 1.0)]
            } else {
                crate::xfade::parse_parts(&text, Some(&previous))
            };
            state.params.prompt = state
                .params
                .parts
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            send_prompt(state, raw, source, now, fx);
        }
        Action::Reconnect => fx.push(Effect::Transport(TransportCmd::Reconnect)),
        Action::DownloadModels => fx.push(Effect::Transport(TransportCmd::DownloadModels)),
        Action::Redownbeat => fx.push(Effect::Tempo(crate::audio::tempo::TempoCmd::Redownbeat)),
        Action::ReleaseHolds => {
            let n = state.mapping.engine.holds.len();
            state.mapping.engine.holds.clear();
            let msg = match n {
                0 => "no value is held against the mapping".to_string(),
                n => format!("the mapping takes back {n} held value(s)"),
            };
            notice(state, fx, Level::Info, msg, now);
        }
        Action::ConfirmReload => {
            // Only backends that hold reloads announce the key (daydream's schema).
            if state.params.store.spec("confirm_reload").is_some() {
                fire_trigger(state, "confirm_reload", json!(true), now, fx);
            } else {
                notice(
                    state,
                    fx,
                    Level::Info,
                    "nothing to confirm on this backend".into(),
                    now,
                );
            }
        }
        other if crate::tempo::on_action(state, &other, source, now, fx) => {}
        other if crate::mapping::reduce::on_action(state, &other, source, now, fx) => {}
        other if crate::video::reduce::on_action(state, &other, source, now, fx) => {}
        other => {
            // Actions whose concern is not built yet: the performer is told plainly instead of
            // the key doing nothing.
            notice(
                state,
                fx,
                Level::Info,
                format!("{} is not available in this build yet", other.name()),
                now,
            );
        }
    }
}

/// Sends the typed prompt: raw = the text as written, as a cut; otherwise each part in the
/// active theme's template (persona, style), over the theme's transition when it has one.
fn send_prompt(
    state: &mut AppState,
    raw: bool,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let value = if raw {
        prompts_value(&state.params.prompt)
    } else {
        let total: f64 = state.params.parts.iter().map(|(_, w)| w.max(0.0)).sum();
        let total = if total > 0.0 { total } else { 1.0 };
        ParamValue::Array(
            state
                .params
                .parts
                .iter()
                .map(|(t, w)| {
                    json!({
                        "text": crate::xfade::compose_live(state, t),
                        "weight": crate::mapping::smoothing::round6(w.max(0.0) / total),
                    })
                })
                .collect(),
        )
    };
    // Raw text is a cut; composed parts crossfade over the theme's transition (when it has steps).
    let (steps, method) = match state.mapping.theme() {
        Some(t) if !raw => (Some(t.transition.steps), t.transition.method.clone()),
        _ => (None, String::new()),
    };
    crate::mapping::reduce::store_and_send_prompts(state, &value, steps, &method, source, now, fx);
}

fn set_param(
    state: &mut AppState,
    key: &str,
    value: ParamValue,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    match state.params.store.set(key, &value, source, now) {
        Ok(acc) => {
            if state.params.store.spec(key).is_some_and(|s| s.one_shot) {
                fire_trigger(state, key, acc.value, now, fx);
            } else {
                param_changed(key, acc, fx);
            }
        }
        Err(e) => notice(state, fx, Level::Error, e.to_string(), now),
    }
}

fn param_changed(key: &str, acc: Accepted, fx: &mut Vec<Effect>) {
    fx.push(Effect::Emit(Event::Param {
        key: key.to_string(),
        value: acc.value.clone(),
        clamped: acc.clamped,
    }));
    fx.push(Effect::Transport(TransportCmd::Update(ParamUpdate::one(
        key, acc.value,
    ))));
}

fn engage_panic(state: &mut AppState, source: ActionSource, now: Duration, fx: &mut Vec<Effect>) {
    if state.controls.panic.is_none() {
        state.controls.panic = Some(PanicSnapshot {
            since: now,
            paused: state.params.store.get("paused").cloned(),
            prompts: state.params.store.get("prompts").cloned(),
        });
    }
    let plan = state.settings.panic_mode.plan(&state.settings.backend);
    let mut update = ParamUpdate {
        urgent: true,
        ..ParamUpdate::default()
    };
    if plan.pause {
        let _ = state.params.store.set("paused", &json!(true), source, now);
        update.values.insert("paused".into(), json!(true));
    }
    if plan.safe_prompt {
        let safe = prompts_value(&state.settings.safe_prompt);
        let _ = state.params.store.set("prompts", &safe, source, now);
        update.values.insert("prompts".into(), safe);
    }
    if plan.reset_cache {
        update.values.insert("reset_cache".into(), json!(true));
    }
    // Local and immediate: the picture is gone before any server answers.
    state.stage.panic_blank = plan.blank;
    state.params.last_trigger = Some(("panic".into(), now));
    notice(state, fx, Level::Error, "PANIC engaged".into(), now);
    if !update.values.is_empty() {
        fx.push(Effect::Transport(TransportCmd::Update(update)));
    }
}

fn release_panic(state: &mut AppState, source: ActionSource, now: Duration, fx: &mut Vec<Effect>) {
    let Some(saved) = state.controls.panic.take() else {
        return;
    };
    state.stage.panic_blank = false;
    let mut update = ParamUpdate {
        urgent: true,
        ..ParamUpdate::default()
    };
    // The hosted backend has no pause: nothing to restore there.
    if state.settings.backend != "daydream" {
        let paused = saved.paused.unwrap_or(json!(false));
        let _ = state.params.store.set("paused", &paused, source, now);
        update.values.insert("paused".into(), paused);
    }
    if let Some(p) = saved.prompts {
        let _ = state.params.store.set("prompts", &p, source, now);
        update.values.insert("prompts".into(), p);
    }
    notice(state, fx, Level::Info, "panic released".into(), now);
    fx.push(Effect::Transport(TransportCmd::Update(update)));
}

fn begin_shutdown(state: &mut AppState, reason: &str, fx: &mut Vec<Effect>) {
    if state.lifecycle != Lifecycle::Running {
        return;
    }
    state.lifecycle = Lifecycle::ShuttingDown;
    fx.push(Effect::Emit(Event::Stopping {
        reason: reason.to_string(),
    }));
    fx.push(Effect::Transport(TransportCmd::Shutdown));
}

fn on_transport(state: &mut AppState, ev: TransportEvent, now: Duration, fx: &mut Vec<Effect>) {
    match ev {
        TransportEvent::State { state: s, reason } => {
            if s != ConnState::Warming && s != ConnState::Loading {
                state.transport.warmup = None;
            }
            let changed = state.transport.state != s || state.transport.reason != reason;
            let was_live = matches!(
                state.transport.state,
                ConnState::Streaming | ConnState::Degraded
            );
            let live = matches!(s, ConnState::Streaming | ConnState::Degraded);
            if was_live && !live && s != ConnState::Stopped {
                mark_recordings(state, None, now, fx);
                state.transport.lost_at = Some(now);
            } else if live && !was_live {
                if let Some(lost) = state.transport.lost_at.take() {
                    mark_recordings(state, Some(now.saturating_sub(lost)), now, fx);
                }
            }
            state.transport.state = s;
            state.transport.reason = reason.clone();
            if s == ConnState::Streaming {
                // Recovered: an old error would only mislead.
                state.transport.last_error = None;
            }
            if changed {
                fx.push(Effect::Emit(Event::Connection { state: s, reason }));
            }
        }
        TransportEvent::WarmUp(w) => state.transport.warmup = Some(w),
        TransportEvent::Stats(s) => {
            state.transport.stats = s;
            state.transport.stats_at = Some(now);
        }
        TransportEvent::Sent { payload } => {
            state.transport.sent_count += 1;
            if state.transport.sent.len() >= SENT_KEEP {
                state.transport.sent.pop_front();
            }
            state.transport.sent.push_back((now, payload.clone()));
            fx.push(Effect::Emit(Event::Sent { payload }));
        }
        TransportEvent::Refused { key, reason } => {
            notice(
                state,
                fx,
                Level::Warn,
                format!("server refused {key}: {reason}"),
                now,
            );
        }
        TransportEvent::ServerMessage(ServerMessage::StreamStopped { error_message }) => {
            let why = error_message.as_deref().unwrap_or("no reason given");
            notice(
                state,
                fx,
                Level::Warn,
                format!("server stopped the stream: {why}"),
                now,
            );
        }
        TransportEvent::ServerMessage(_) => {}
        TransportEvent::Schema(specs) => on_schema(state, specs, now, fx),
        TransportEvent::Hardware(hw) => crate::video::reduce::on_hardware(state, hw, now, fx),
        TransportEvent::AssetsUploaded { uploaded } => {
            crate::video::reduce::on_assets(state, uploaded, now, fx)
        }
        TransportEvent::Error(e) => {
            state.transport.last_error = Some(e.clone());
            notice(state, fx, Level::Error, e, now);
        }
        TransportEvent::Stopped => {
            state.transport.state = ConnState::Stopped;
            if state.lifecycle == Lifecycle::ShuttingDown {
                state.lifecycle = Lifecycle::Finished;
                fx.push(Effect::Exit);
            }
        }
    }
}

/// How often the "transport not keeping up" notice may repeat while commands keep dropping.
pub const DROP_NOTICE_EVERY: Duration = Duration::from_secs(1);

/// The transport's bounded command lane was full: count it and tell the performer (at most once
/// a second, the count always current in the snapshot).
fn on_command_dropped(state: &mut AppState, kind: CmdKind, now: Duration, fx: &mut Vec<Effect>) {
    let t = &mut state.transport;
    t.commands_dropped += 1;
    let due = t
        .drop_noticed_at
        .is_none_or(|at| now.saturating_sub(at) >= DROP_NOTICE_EVERY);
    if due {
        t.drop_noticed_at = Some(now);
        let n = t.commands_dropped;
        notice(
            state,
            fx,
            Level::Error,
            format!(
                "transport not keeping up: {} dropped ({n} command{} dropped so far)",
                kind.label(),
                if n == 1 { "" } else { "s" }
            ),
            now,
        );
    }
}

/// A schema from the transport: merge it, re-clamping what is held, and send what changed so a
/// live session never keeps a value the pipeline cannot take.
fn on_schema(
    state: &mut AppState,
    specs: Vec<crate::params::ParamSpec>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let changed = state.params.store.merge_specs(specs);
    let mut upd = ParamUpdate::default();
    for c in changed {
        match c {
            crate::params::Revalidated::Clamped { key, from, to } => {
                notice(
                    state,
                    fx,
                    Level::Warn,
                    format!("the pipeline's schema limits {key}: {from} → {to}"),
                    now,
                );
                fx.push(Effect::Emit(Event::Param {
                    key: key.clone(),
                    value: to.clone(),
                    clamped: true,
                }));
                upd.values.insert(key, to);
            }
            crate::params::Revalidated::Dropped { key, error } => notice(
                state,
                fx,
                Level::Warn,
                format!("the pipeline's schema refuses the held {key}: {error}"),
                now,
            ),
        }
    }
    if !upd.values.is_empty() {
        fx.push(Effect::Transport(TransportCmd::Update(upd)));
    }
}
