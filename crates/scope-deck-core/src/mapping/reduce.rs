//! Reducer glue: the core's `update` hands audio, actions, ticks and theme reloads to these
//! functions, which run the engine and turn its output into validated store writes and transport
//! commands. Pure like the reducer: no I/O, time passed in.
//!
//! Continuous outputs go out as one non-urgent `ParamUpdate` per input (the transport coalesces
//! them to ≤ 60 messages a second); cache resets, prompt switches and theme switches are urgent.

use std::time::Duration;

use serde_json::json;

use crate::action::{Action, ActionSource};
use crate::audio::features::{AudioEvent, AudioFrame};
use crate::ctx::{fire_trigger, notice};
use crate::effect::{Effect, Event};
use crate::mapping::engine::{EngineState, Fired, Output, PromptMove};
use crate::mapping::prompt::{prompts_value, transition_value};
use crate::mapping::slice::{Boundary, PendingSwitch};
use crate::mapping::theme::{QuantizeMode, Theme};
use crate::params::ParamValue;
use crate::state::{AppState, Level};
use crate::transport::types::{ParamUpdate, TransportCmd};

/// The part of a message the mapping engine reacts to after the core reducer has handled it
/// (copied out first, so the core's own arms stay untouched).
#[derive(Debug, Clone, PartialEq)]
pub enum MappingInput {
    /// Nothing for the mapping engine.
    None,
    /// A frame. The engine reads `state.audio.frame` after the core folded it, i.e. with the
    /// arbitrated tempo (Link's grid and transport while Link leads), not the tracker's raw copy.
    Frame,
    /// An onset or beat.
    Event(AudioEvent),
    /// The frame clock.
    Tick,
    /// The performer (not the mapping) set or adjusted this parameter.
    Manual(String),
}

impl MappingInput {
    /// Picks out what the mapping engine needs from `msg`.
    pub fn of(msg: &crate::msg::Msg) -> Self {
        use crate::msg::Msg;
        match msg {
            Msg::AudioFrame(_) => MappingInput::Frame,
            Msg::AudioEvent(e) => MappingInput::Event(*e),
            Msg::Tick => MappingInput::Tick,
            Msg::Action {
                action: Action::SetParam { key, .. } | Action::AdjustParam { key, .. },
                source,
            } if *source != ActionSource::Mapping && !key.starts_with("macro.") => {
                MappingInput::Manual(key.clone())
            }
            _ => MappingInput::None,
        }
    }
}

/// Runs the mapping engine for a message the core reducer has just applied.
pub fn after_update(
    state: &mut AppState,
    input: MappingInput,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    match input {
        MappingInput::None => {}
        MappingInput::Frame => {
            let f = state.audio.frame;
            on_frame(state, &f, now, fx)
        }
        MappingInput::Event(e) => on_event(state, &e, now, fx),
        MappingInput::Tick => on_tick(state, now, fx),
        MappingInput::Manual(key) => on_manual(state, &key, now),
    }
}

/// A hand-set value on a mapped parameter holds that mapping for the theme's `hold_ms`.
fn on_manual(state: &mut AppState, key: &str, now: Duration) {
    let Some(value) = state.params.store.get(key).cloned() else {
        return;
    };
    let mut engine = std::mem::take(&mut state.mapping.engine);
    if let Some(theme) = state.mapping.theme() {
        if !theme.hold.is_zero() {
            engine.hold(theme, key, &value, now + theme.hold);
        }
    }
    state.mapping.engine = engine;
}

/// How recent the last beat must be for the grid to count as running.
const GRID_STALE: Duration = Duration::from_secs(3);

fn active_theme(state: &AppState) -> Option<Theme> {
    state.mapping.theme().cloned()
}

fn suspended(state: &AppState) -> bool {
    state.mapping.off || state.controls.panic.is_some()
}

/// At start-up: the active theme's defaults and first prompt go into the store, so the first
/// offer carries them. Sends nothing itself (the Connect that follows carries the full state).
pub fn on_started(state: &mut AppState, now: Duration) {
    let Some(theme) = active_theme(state) else {
        return;
    };
    let mut upd = ParamUpdate::default();
    theme_values(state, &theme, now, None, &mut upd);
    switch_engine(state, state.mapping.active, now);
}

/// A new audio frame (already stored in `state.audio.frame`).
pub fn on_frame(state: &mut AppState, frame: &AudioFrame, now: Duration, fx: &mut Vec<Effect>) {
    if state.mapping.theme().is_none() {
        return;
    }
    // A quantised switch lands early by its lookahead, or late by its deadline.
    if let Some(p) = state.mapping.pending.clone() {
        let to_theme = state.mapping.themes.get(p.to).cloned();
        let lookahead = to_theme.map_or(Duration::ZERO, |t| t.switch.lookahead);
        let eta = eta(state, &p, frame);
        let early = !p.sent && !lookahead.is_zero() && eta.is_some_and(|e| e <= lookahead);
        if early || now >= p.deadline {
            land(state, now, fx);
            return;
        }
    }
    if suspended(state) {
        return;
    }
    // Borrow the theme in place (no per-frame clone): the engine is moved out meanwhile.
    let mut engine = std::mem::take(&mut state.mapping.engine);
    let out = match state.mapping.theme() {
        Some(theme) => engine.on_frame(theme, frame, &state.mapping.macros, now),
        None => Output::default(),
    };
    state.mapping.engine = engine;
    apply_output(state, out, now, fx);
}

/// An onset or beat (already counted in `state.audio`).
pub fn on_event(state: &mut AppState, ev: &AudioEvent, now: Duration, fx: &mut Vec<Effect>) {
    event(state, ev, false, now, fx)
}

/// A beat of the grid sent early by the pipeline latency (`tempo::lead_beats`): it fires
/// triggers and lands switches, but Scope's beat forwarding stays on the real beat
/// ([`forward_beat`]).
pub fn on_lead_beat(state: &mut AppState, ev: &AudioEvent, now: Duration, fx: &mut Vec<Effect>) {
    event(state, ev, true, now, fx)
}

/// Forwards a real beat to Scope's tempo engine (`beat_count`, `beat_phase`, `bar_position`)
/// when beat-locked changes run on early beats.
pub fn forward_beat(state: &mut AppState, ev: &AudioEvent, now: Duration, fx: &mut Vec<Effect>) {
    let AudioEvent::Beat { count, in_bar, .. } = *ev else {
        return;
    };
    if suspended(state) || !state.mapping.theme().is_some_and(|t| t.beat.enabled) {
        return;
    }
    let mut upd = ParamUpdate::default();
    for (k, v) in [
        ("beat_count", json!(count)),
        ("beat_phase", json!(0.0)),
        ("bar_position", json!(f64::from(in_bar))),
    ] {
        set_checked(state, k, &v, now, &mut upd, fx);
    }
    if !upd.values.is_empty() {
        fx.push(Effect::Transport(TransportCmd::Update(upd)));
    }
}

fn event(state: &mut AppState, ev: &AudioEvent, lead: bool, now: Duration, fx: &mut Vec<Effect>) {
    let mut downbeat = None;
    if let AudioEvent::Beat { count, in_bar, .. } = *ev {
        state.mapping.last_beat = Some((count, now));
        if in_bar == 0 {
            downbeat = Some(state.mapping.bars);
            state.mapping.bars += 1;
        }
        if let Some(p) = &state.mapping.pending {
            let reached = match p.boundary {
                Boundary::Beat(b) => count >= b,
                Boundary::Bar(b) => downbeat.is_some_and(|d| d >= b),
            };
            if reached {
                land(state, now, fx);
            }
        }
    }
    if suspended(state) {
        return;
    }
    let energy = state.audio.frame.energy;
    let mut engine = std::mem::take(&mut state.mapping.engine);
    let mut out = match state.mapping.theme() {
        Some(theme) => engine.on_event(theme, ev, downbeat, energy, now),
        None => Output::default(),
    };
    if lead {
        out.values
            .retain(|(k, _)| !matches!(k.as_str(), "beat_count" | "beat_phase" | "bar_position"));
    }
    state.mapping.engine = engine;
    let (audio_time, beat_count) = match *ev {
        AudioEvent::Beat { time, count, .. } => (time, Some(count)),
        AudioEvent::Onset { time, .. } => (time, None),
    };
    for f in &out.fired {
        fx.push(Effect::Emit(Event::Trigger {
            name: f.trigger.clone(),
            audio_time,
            beat_count,
        }));
    }
    apply_output(state, out, now, fx);
}

/// The frame clock: lands a switch whose deadline passed while no audio arrives.
pub fn on_tick(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    if state
        .mapping
        .pending
        .as_ref()
        .is_some_and(|p| now >= p.deadline)
    {
        land(state, now, fx);
    }
}

/// Handles the mapping actions; returns false for actions it does not own.
pub fn on_action(
    state: &mut AppState,
    action: &Action,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) -> bool {
    let n = state.mapping.themes.len();
    match action {
        Action::ThemeNext | Action::ThemePrev | Action::SelectTheme { .. } if n == 0 => {
            notice(state, fx, Level::Warn, "no themes loaded".into(), now);
        }
        Action::ThemeNext => {
            let base = state
                .mapping
                .pending
                .as_ref()
                .map_or(state.mapping.active, |p| p.to);
            request_theme(state, (base + 1) % n, now, fx);
        }
        Action::ThemePrev => {
            let base = state
                .mapping
                .pending
                .as_ref()
                .map_or(state.mapping.active, |p| p.to);
            request_theme(state, (base + n - 1) % n, now, fx);
        }
        Action::SelectTheme { index } => {
            if *index < n {
                request_theme(state, *index, now, fx);
            } else {
                notice(
                    state,
                    fx,
                    Level::Warn,
                    format!("no theme #{} (have {n})", index + 1),
                    now,
                );
            }
        }
        Action::PromptNext => move_prompt(state, PromptMove::Next, None, source, now, fx),
        Action::PromptPrev => move_prompt(state, PromptMove::Prev, None, source, now, fx),
        Action::SelectPrompt { index } => {
            move_prompt(state, PromptMove::To(*index), None, source, now, fx)
        }
        Action::SetPersona { name } => {
            let name = name.trim();
            state.mapping.persona = (!name.is_empty()).then(|| name.to_string());
            let label = state.mapping.persona();
            notice(
                state,
                fx,
                Level::Info,
                format!(
                    "persona: {}",
                    if label.is_empty() { "none" } else { &label }
                ),
                now,
            );
            send_prompt(state, None, source, now, fx);
        }
        Action::ToggleMapping { name } => toggle(state, name, now, fx),
        Action::SetMacro { name, value } => set_macro(state, name, *value, now, fx),
        Action::SetParam { key, value } if is_macro_action(action) => {
            let name = key.trim_start_matches("macro.");
            match value.as_f64() {
                Some(v) => set_macro(state, name, v, now, fx),
                None => notice(
                    state,
                    fx,
                    Level::Warn,
                    format!("macro {name}: expects a number 0..1"),
                    now,
                ),
            }
        }
        Action::AdjustParam { key, delta } if is_macro_action(action) => {
            let name = key.trim_start_matches("macro.");
            let cur = state.mapping.macros.get(name).copied().unwrap_or(0.5);
            set_macro(state, name, f64::from(cur) + delta, now, fx);
        }
        _ => return false,
    }
    true
}

/// Whether a `set_param` / `adjust_param` addresses a theme macro (`macro.<name>`), so MIDI
/// faders and encoders bound with `param = "macro.drive"` steer macros.
pub fn is_macro_action(a: &Action) -> bool {
    match a {
        Action::SetParam { key, .. } | Action::AdjustParam { key, .. } => {
            key.strip_prefix("macro.").is_some_and(|n| !n.is_empty())
        }
        _ => false,
    }
}

fn set_macro(state: &mut AppState, name: &str, value: f64, now: Duration, fx: &mut Vec<Effect>) {
    if !value.is_finite() {
        notice(
            state,
            fx,
            Level::Warn,
            format!("macro {name}: not a number"),
            now,
        );
    } else {
        state
            .mapping
            .macros
            .insert(name.to_string(), value.clamp(0.0, 1.0) as f32);
    }
}

/// New themes from the hot-reload watcher. An invalid edit keeps everything running and shows
/// the error; a valid one replaces the list and re-applies the active theme if it changed.
pub fn on_themes_reloaded(
    state: &mut AppState,
    result: Result<Vec<Theme>, String>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let themes = match result {
        Ok(t) if t.is_empty() => {
            notice(
                state,
                fx,
                Level::Error,
                "themes reload: no valid theme; keeping the running ones".into(),
                now,
            );
            return;
        }
        Ok(t) => t,
        Err(e) => {
            notice(
                state,
                fx,
                Level::Error,
                format!("theme reload failed, keeping the running theme:\n{e}"),
                now,
            );
            return;
        }
    };
    let old = active_theme(state);
    let old_id = old.as_ref().map(|t| t.id.clone()).unwrap_or_default();
    let pending_id = state
        .mapping
        .pending
        .as_ref()
        .and_then(|p| state.mapping.themes.get(p.to))
        .map(|t| t.id.clone());
    state.mapping.themes = themes;
    state.mapping.pending = None;
    let (idx, found) = match state.mapping.themes.iter().position(|t| t.id == old_id) {
        Some(i) => (i, true),
        None => (0, false),
    };
    state.mapping.active = idx;
    let new = active_theme(state);
    if !found {
        notice(
            state,
            fx,
            Level::Warn,
            format!("theme `{old_id}` is gone; switching to the first theme"),
            now,
        );
    }
    if new != old {
        let keep = state.mapping.prompt_index;
        apply_now(state, idx, now, fx, None);
        let len = state.mapping.theme().map_or(0, |t| t.prompts.len());
        if found && keep < len && keep != 0 {
            state.mapping.prompt_index = keep;
            send_prompt(state, Some(0), ActionSource::System, now, fx);
        }
        let name = state
            .mapping
            .theme()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        notice(
            state,
            fx,
            Level::Info,
            format!("theme reloaded: {name}"),
            now,
        );
    } else {
        notice(state, fx, Level::Info, "themes reloaded".into(), now);
    }
    if let Some(id) = pending_id {
        if let Some(to) = state.mapping.themes.iter().position(|t| t.id == id) {
            request_theme(state, to, now, fx);
        }
    }
}

/// Turns engine output into store writes, one non-urgent update, and trigger effects.
fn apply_output(state: &mut AppState, out: Output, now: Duration, fx: &mut Vec<Effect>) {
    let mut upd = ParamUpdate::default();
    for (k, v) in out.values {
        set_checked(state, &k, &v, now, &mut upd, fx);
    }
    if !upd.values.is_empty() {
        fx.push(Effect::Transport(TransportCmd::Update(upd)));
    }
    for f in out.fired {
        match f.what {
            Fired::ResetCache => {
                if state
                    .params
                    .store
                    .set("reset_cache", &json!(true), ActionSource::Mapping, now)
                    .is_ok()
                {
                    fire_trigger(state, "reset_cache", json!(true), now, fx);
                }
            }
            Fired::Prompt { to, steps } => {
                move_prompt(state, to, steps, ActionSource::Mapping, now, fx)
            }
            Fired::Nudge { .. } => {}
        }
    }
}

/// Validates one value through the store (source = mapping) into `upd`; a refused key is
/// reported once.
fn set_checked(
    state: &mut AppState,
    key: &str,
    v: &ParamValue,
    now: Duration,
    upd: &mut ParamUpdate,
    fx: &mut Vec<Effect>,
) {
    match state.params.store.set(key, v, ActionSource::Mapping, now) {
        Ok(acc) => {
            upd.values.insert(key.to_string(), acc.value);
        }
        Err(e) => {
            if state.mapping.warned.insert(key.to_string()) {
                notice(state, fx, Level::Warn, format!("mapping: {e}"), now);
            }
        }
    }
}

/// Whether beats are arriving.
fn grid_running(state: &AppState, now: Duration) -> bool {
    state.audio.frame.bpm > 0.0
        && state
            .mapping
            .last_beat
            .is_some_and(|(_, at)| now.saturating_sub(at) <= GRID_STALE)
}

/// Asks for a theme switch, quantised as the incoming theme says.
fn request_theme(state: &mut AppState, to: usize, now: Duration, fx: &mut Vec<Effect>) {
    let Some(theme) = state.mapping.themes.get(to).cloned() else {
        return;
    };
    if to == state.mapping.active {
        if let Some(p) = state.mapping.pending.take() {
            if p.sent {
                // The server already scheduled the other theme: schedule this one over it.
                send_quantised(state, &theme, p.mode, now, fx);
            }
            notice(
                state,
                fx,
                Level::Info,
                format!("staying on {}", theme.name),
                now,
            );
        }
        return;
    }
    let mode = theme.switch.quantize;
    if mode == QuantizeMode::None || !grid_running(state, now) {
        if mode != QuantizeMode::None {
            notice(
                state,
                fx,
                Level::Info,
                format!("no beat grid: {} now", theme.name),
                now,
            );
        }
        state.mapping.pending = None;
        apply_now(state, to, now, fx, Some(theme.transition.steps));
        return;
    }
    let boundary = match mode {
        QuantizeMode::Beat => Boundary::Beat(state.mapping.last_beat.map_or(0, |(c, _)| c + 1)),
        _ => {
            let n = mode.bars().max(1);
            Boundary::Bar(state.mapping.bars.div_ceil(n) * n)
        }
    };
    let mut sent = false;
    if theme.switch.server_quantized {
        send_quantised(state, &theme, mode, now, fx);
        sent = true;
    }
    state.mapping.pending = Some(PendingSwitch {
        to,
        requested_at: now,
        boundary,
        mode,
        deadline: now + theme.switch.max_wait,
        sent,
    });
    notice(
        state,
        fx,
        Level::Info,
        format!(
            "{} on the next {}",
            theme.name,
            mode.as_str().replace('_', " ")
        ),
        now,
    );
}

/// Sends a theme's values with Scope's `_quantized`, `quantize_mode` and `lookahead_ms`: the
/// server applies them on its next boundary.
fn send_quantised(
    state: &mut AppState,
    theme: &Theme,
    mode: QuantizeMode,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let mut upd = ParamUpdate {
        urgent: true,
        ..ParamUpdate::default()
    };
    theme_values(state, theme, now, Some(theme.transition.steps), &mut upd);
    upd.values.insert("_quantized".into(), json!(true));
    upd.values
        .insert("quantize_mode".into(), json!(mode.as_str()));
    // The server lands it this much before its boundary: at least the pipeline latency.
    let lookahead = theme.switch.lookahead.max(state.tempo.latency());
    upd.values
        .insert("lookahead_ms".into(), json!(lookahead.as_millis() as u64));
    fx.push(Effect::Transport(TransportCmd::Update(upd)));
}

/// Lands the pending switch.
fn land(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    let Some(p) = state.mapping.pending.take() else {
        return;
    };
    if p.sent {
        switch_engine(state, p.to, now);
    } else {
        let steps = state.mapping.themes.get(p.to).map(|t| t.transition.steps);
        apply_now(state, p.to, now, fx, steps);
    }
}

/// Switches to theme `to` at once: one urgent update with its defaults and prompt (as a
/// crossfade when `steps` > 0), then the engine restarts on the new theme.
fn apply_now(
    state: &mut AppState,
    to: usize,
    now: Duration,
    fx: &mut Vec<Effect>,
    steps: Option<u32>,
) {
    let Some(theme) = state.mapping.themes.get(to).cloned() else {
        return;
    };
    let mut upd = ParamUpdate {
        urgent: true,
        ..ParamUpdate::default()
    };
    theme_values(state, &theme, now, steps, &mut upd);
    switch_engine(state, to, now);
    notice(
        state,
        fx,
        Level::Info,
        format!("theme: {}", theme.name),
        now,
    );
    fx.push(Effect::Transport(TransportCmd::Update(upd)));
}

/// Writes a theme's defaults and first prompt into the store and `upd` (prompt as a
/// `transition` when `steps` is a positive crossfade length).
fn theme_values(
    state: &mut AppState,
    theme: &Theme,
    now: Duration,
    steps: Option<u32>,
    upd: &mut ParamUpdate,
) {
    for (k, v) in &theme.params {
        if let Ok(acc) = state.params.store.set(k, v, ActionSource::Mapping, now) {
            upd.values.insert(k.clone(), acc.value);
        }
    }
    if theme.switch.reset_cache && steps.is_some() {
        upd.values.insert("reset_cache".into(), json!(true));
        state.params.last_trigger = Some(("reset_cache".into(), now));
    }
    let persona = match &state.mapping.persona {
        Some(p) => p.clone(),
        None => theme.persona.clone(),
    };
    if let Some(entry) = theme.prompts.first() {
        let prompts = prompts_value(theme, entry, &persona);
        state.params.prompt = entry.label();
        state.params.parts = entry.parts.clone();
        if let Ok(acc) = state
            .params
            .store
            .set("prompts", &prompts, ActionSource::Mapping, now)
        {
            put_prompts(upd, acc.value, steps, &theme.transition.method);
        }
    }
}

/// `prompts` for a cut, `transition` for a crossfade.
fn put_prompts(upd: &mut ParamUpdate, prompts: ParamValue, steps: Option<u32>, method: &str) {
    match steps {
        Some(s) if s > 0 => {
            upd.values
                .insert("transition".into(), transition_value(&prompts, s, method));
        }
        _ => {
            upd.values.insert("prompts".into(), prompts);
        }
    }
}

/// Restarts the engine on theme `to` (no messages).
fn switch_engine(state: &mut AppState, to: usize, _now: Duration) {
    // The new theme's first prompt replaces whatever the crossfader blended.
    crate::xfade::release(state);
    state.mapping.active = to;
    state.mapping.prompt_index = 0;
    if let Some(theme) = state.mapping.themes.get(to) {
        for (k, v) in &theme.macros {
            state.mapping.macros.entry(k.clone()).or_insert(*v);
        }
        state.mapping.engine = EngineState::for_theme(theme, &state.params.store);
    }
}

/// Moves in the active theme's prompt list and sends the prompt.
fn move_prompt(
    state: &mut AppState,
    to: PromptMove,
    steps: Option<u32>,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let Some(theme) = state.mapping.theme() else {
        notice(state, fx, Level::Warn, "no themes loaded".into(), now);
        return;
    };
    let n = theme.prompts.len().max(1);
    let cur = state.mapping.prompt_index;
    let next = match to {
        PromptMove::Next => (cur + 1) % n,
        PromptMove::Prev => (cur + n - 1) % n,
        PromptMove::To(i) if i < n => i,
        PromptMove::To(i) => {
            notice(
                state,
                fx,
                Level::Warn,
                format!("no prompt #{} (the theme has {n})", i + 1),
                now,
            );
            return;
        }
    };
    state.mapping.prompt_index = next;
    send_prompt(state, steps, source, now, fx);
}

/// Sends the current prompt (with persona) as an urgent update; crossfades with the theme's
/// transition unless `steps` overrides it.
fn send_prompt(
    state: &mut AppState,
    steps: Option<u32>,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    let Some(theme) = active_theme(state) else {
        return;
    };
    let Some(entry) = theme.prompts.get(state.mapping.prompt_index) else {
        return;
    };
    let prompts = prompts_value(&theme, entry, &state.mapping.persona());
    // A theme prompt (a trigger, a cue) replaces the crossfader's blend: it lets go, so the
    // prompt panel never shows a blend that is no longer sent.
    crate::xfade::release(state);
    state.params.prompt = entry.label();
    state.params.parts = entry.parts.clone();
    let steps = steps.unwrap_or(theme.transition.steps);
    store_and_send_prompts(
        state,
        &prompts,
        Some(steps),
        &theme.transition.method,
        source,
        now,
        fx,
    );
}

/// Stores `prompts` as the live prompt value and sends it urgently: crossfaded over `steps`
/// with `method` when `steps > 0`, else at once. A value the store refuses is a notice.
pub(crate) fn store_and_send_prompts(
    state: &mut AppState,
    prompts: &ParamValue,
    steps: Option<u32>,
    method: &str,
    source: ActionSource,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    match state.params.store.set("prompts", prompts, source, now) {
        Ok(acc) => {
            state.params.last_trigger = Some(("prompt".into(), now));
            fx.push(Effect::Emit(Event::Param {
                key: "prompts".into(),
                value: acc.value.clone(),
                clamped: false,
            }));
            let mut upd = ParamUpdate {
                urgent: true,
                ..ParamUpdate::default()
            };
            put_prompts(&mut upd, acc.value, steps, method);
            fx.push(Effect::Transport(TransportCmd::Update(upd)));
        }
        Err(e) => notice(state, fx, Level::Error, e.to_string(), now),
    }
}

fn toggle(state: &mut AppState, name: &str, now: Duration, fx: &mut Vec<Effect>) {
    if name == "*" || name == "all" {
        state.mapping.off = !state.mapping.off;
        let msg = if state.mapping.off {
            "mapping engine off (parameters hold)"
        } else {
            "mapping engine on"
        };
        notice(state, fx, Level::Info, msg.into(), now);
        return;
    }
    let Some(theme) = active_theme(state) else {
        notice(state, fx, Level::Warn, "no themes loaded".into(), now);
        return;
    };
    let msg = match state.mapping.engine.toggle(&theme, name) {
        Some(true) => (Level::Info, format!("mapping {name} on")),
        Some(false) => (Level::Info, format!("mapping {name} off")),
        None => (
            Level::Warn,
            format!(
                "theme {} has no mapping or trigger named `{name}`",
                theme.name
            ),
        ),
    };
    notice(state, fx, msg.0, msg.1, now);
}

/// Predicted time until the pending switch's boundary, from the latest frame.
pub fn eta(state: &AppState, p: &PendingSwitch, frame: &AudioFrame) -> Option<Duration> {
    let bpm = f64::from(frame.bpm);
    if bpm <= 0.0 {
        return None;
    }
    let beat = 60.0 / bpm;
    let bpb = f64::from(state.mapping.beats_per_bar.max(1));
    let beats = match p.boundary {
        Boundary::Beat(b) => {
            let last = state.mapping.last_beat.map_or(0, |(c, _)| c);
            (b.saturating_sub(last + 1)) as f64
                + (1.0 - f64::from(frame.beat_phase).clamp(0.0, 1.0))
        }
        Boundary::Bar(b) => {
            let bars_between = b.saturating_sub(state.mapping.bars) as f64;
            bars_between * bpb + (bpb - f64::from(frame.bar_position).clamp(0.0, bpb))
        }
    };
    Some(Duration::from_secs_f64((beats * beat).max(0.0)))
}

/// Switches to theme `to` at once, as a cut (no quantise wait, no crossfade): a resumed show
/// picks up where it was.
pub(crate) fn switch_now(state: &mut AppState, to: usize, now: Duration, fx: &mut Vec<Effect>) {
    state.mapping.pending = None;
    apply_now(state, to, now, fx, None);
}
