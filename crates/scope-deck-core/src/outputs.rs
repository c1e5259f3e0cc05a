//! Several outputs: one deck, one analysis, one beat grid, driving several Scope servers or
//! hosted streams (`[[outputs]]`, docs/outputs.md).
//!
//! The shared reducer ([`crate::update`]) keeps owning the one desired state (`ParamStore`) that
//! every output follows. This slice adds what differs per output — its connection, warm-up, its
//! own values (set while it was selected, or from its `theme`/`prompt`/`seed` override) and
//! parameter offsets — and [`update_routed`] wraps the reducer: performer actions go to every
//! output (routing `All`), to the selected one or to a group; panic, blackout, tempo and cues
//! always reach all; every transport command leaves as [`Effect::Output`], addressed to one
//! output with that output's overrides applied. With no outputs configured the slice is empty
//! and [`update_routed`] is exactly [`crate::update`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Map;

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::effect::{Effect, Event};
use crate::msg::Msg;
use crate::params::{ParamKind, ParamSpec, ParamValue};
use crate::state::{AppState, Level};
use crate::transport::types::{ConnState, ParamUpdate, TransportCmd, TransportEvent, WarmUp};

/// An output's position in [`OutputsSlice::list`] (config order).
pub type OutputId = usize;

/// An output named by its 1-based number or its name (`output_select`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OutputRef {
    /// 1-based position in `[[outputs]]`.
    Number(usize),
    /// The output's `name`.
    Name(String),
}

/// What one output does differently from the shared show (config `[[outputs]]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Overrides {
    /// A theme of its own (its prompt and values; the music's mapping stays shared).
    pub theme: Option<String>,
    /// A prompt of its own.
    pub prompt: Option<String>,
    /// A seed of its own (`seed`), e.g. a variation of the wall's picture on the side screens.
    pub seed: Option<i64>,
    /// Added to the shared value of a numeric parameter, clamped to its range.
    pub offsets: BTreeMap<String, f64>,
}

/// One output as configured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputSpec {
    /// Its name (`wall`, `side-left`).
    pub name: String,
    /// Backend label (`scope`, `daydream`, ...).
    pub backend: String,
    /// Server URL or hosted preset, for the dashboard.
    pub target: String,
    /// Group it belongs to (`output_select` with `group`).
    pub group: Option<String>,
    /// Its overrides.
    pub overrides: Overrides,
    /// The output that takes over its state and video when its server is lost.
    pub standby: Option<OutputId>,
    /// How long its server must be lost before the standby takes over.
    pub failover_after: Duration,
    /// Its pipeline's latency (`latency_ms`): beat-locked changes reach it this early. `None`:
    /// `[server] latency_ms`. Measured on its own video instead once measured
    /// (`[server] measure_latency`).
    pub latency: Option<Duration>,
}

/// One output while the show runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// As configured.
    pub spec: OutputSpec,
    /// Its own connection state.
    pub conn: ConnState,
    /// Why (from its transport).
    pub reason: Option<String>,
    /// Its warm-up, while one runs.
    pub warmup: Option<WarmUp>,
    /// Values it holds against the shared state: set while it was selected, or from its
    /// theme/prompt/seed override. Replayed on its every reconnect.
    pub own: Map<String, ParamValue>,
    /// Since when its server is lost (reconnecting or degraded); `None` while streaming.
    pub lost_since: Option<Duration>,
    /// Received frames per second (its transport's stats).
    pub rx_fps: f32,
    /// Messages its transport reported sent.
    pub sent: u64,
    /// Its transport said goodbye.
    pub stopped: bool,
    /// Its own pipeline's schema as its server reported it (`None` until it has).
    pub schema: Option<BTreeMap<String, ParamSpec>>,
    /// What its sends are checked against: the built-in specs with its own schema over them
    /// (as the single server's store), `None` until its schema arrived (the shared store's
    /// check serves until then).
    pub specs: Option<BTreeMap<String, ParamSpec>>,
    /// Schemas from its own transport merged so far: its transport's connect waits for this
    /// count only, never for another output's schema.
    pub schemas_merged: u64,
    /// Its glass-to-glass latency measured on its own video (`[server] measure_latency`; the
    /// first output's is the tempo slice's meter, as with a single server). Unused for the
    /// first output.
    pub meter: crate::latency::LatencyMeter,
}

/// Where performer actions go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Every output (the default).
    #[default]
    All,
    /// Only this output.
    One(OutputId),
    /// The outputs of this group.
    Group(String),
}

/// A primary whose server is lost, carried by its standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// The output whose server is lost.
    pub primary: OutputId,
    /// The output now carrying its state and feeding its video sinks.
    pub standby: OutputId,
    /// Since when.
    pub since: Duration,
}

/// The outputs slice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputsSlice {
    /// Every output in config order; empty = the single `[server]` of old.
    pub list: Vec<Output>,
    /// Where performer actions go.
    pub routing: Routing,
    /// Failovers in force.
    pub failovers: Vec<Failover>,
    /// Bumped whenever an output's desired state may have changed (own values, failover), so
    /// the engine republishes it.
    pub revision: u64,
    /// Beat-locked commands held back for outputs whose latency is below the largest: each is
    /// released on the first control tick at or after its time, so every output gets the
    /// change early by its own latency against the one grid.
    pub held: Vec<Held>,
}

/// A beat-locked command waiting for its output's moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Engine time it is due.
    pub at: Duration,
    /// For whom.
    pub output: OutputId,
    /// What.
    pub cmd: TransportCmd,
}

impl OutputsSlice {
    /// A slice for `specs` (none connected yet).
    pub fn new(specs: Vec<OutputSpec>) -> Self {
        OutputsSlice {
            list: specs
                .into_iter()
                .map(|spec| Output {
                    spec,
                    conn: ConnState::Idle,
                    reason: None,
                    warmup: None,
                    own: Map::new(),
                    lost_since: None,
                    rx_fps: 0.0,
                    sent: 0,
                    stopped: false,
                    schema: None,
                    specs: None,
                    schemas_merged: 0,
                    meter: Default::default(),
                })
                .collect(),
            ..OutputsSlice::default()
        }
    }

    /// The outputs performer actions reach now.
    pub fn targets(&self) -> Vec<OutputId> {
        match &self.routing {
            Routing::All => (0..self.list.len()).collect(),
            Routing::One(i) => vec![*i],
            Routing::Group(g) => self
                .list
                .iter()
                .enumerate()
                .filter(|(_, o)| o.spec.group.as_deref() == Some(g.as_str()))
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// Whose state output `i` carries: its own, or a lost primary's while it stands in.
    pub fn carries(&self, i: OutputId) -> OutputId {
        self.failovers
            .iter()
            .find(|f| f.standby == i)
            .map_or(i, |f| f.primary)
    }

    /// Which output's received video feeds output `i`'s video sinks (its standby while it is
    /// failed over).
    pub fn video_source(&self, i: OutputId) -> OutputId {
        self.failovers
            .iter()
            .find(|f| f.primary == i)
            .map_or(i, |f| f.standby)
    }

    /// `all`, `wall` or `group sides` (dashboard, notices).
    pub fn routing_label(&self) -> String {
        match &self.routing {
            Routing::All => "all".into(),
            Routing::One(i) => self
                .list
                .get(*i)
                .map_or_else(|| format!("#{}", i + 1), |o| o.spec.name.clone()),
            Routing::Group(g) => format!("group {g}"),
        }
    }

    fn find(&self, r: &OutputRef) -> Option<OutputId> {
        match r {
            OutputRef::Number(n) => n.checked_sub(1).filter(|i| *i < self.list.len()),
            OutputRef::Name(name) => {
                self.list
                    .iter()
                    .position(|o| &o.spec.name == name)
                    .or_else(|| {
                        name.parse::<usize>()
                            .ok()
                            .and_then(|n| self.find(&OutputRef::Number(n)))
                    })
            }
        }
    }
}

/// The latency output `i`'s beat-locked changes are sent early by: the one measured on its own
/// video once measured (`[server] measure_latency`), else its own `latency_ms`, else
/// `[server] latency_ms`.
pub fn latency_of(state: &AppState, i: OutputId) -> Duration {
    measured_latency_of(state, i)
        .or_else(|| state.outputs.list.get(i).and_then(|o| o.spec.latency))
        .unwrap_or(state.tempo.settings.latency)
}

/// Output `i`'s measured latency in use (None: not measuring, or not enough samples yet).
pub fn measured_latency_of(state: &AppState, i: OutputId) -> Option<Duration> {
    if i == 0 {
        return state.tempo.measured_latency();
    }
    if !state.tempo.settings.measure_latency {
        return None;
    }
    state.outputs.list.get(i)?.meter.measured()
}

/// The meter timing output `i` (the first output's is the tempo slice's, as with a single
/// server, so the dashboard's tempo line and `tempo` events read it unchanged).
fn meter_mut(state: &mut AppState, i: OutputId) -> Option<&mut crate::latency::LatencyMeter> {
    if i == 0 {
        Some(&mut state.tempo.meter)
    } else {
        state.outputs.list.get_mut(i).map(|o| &mut o.meter)
    }
}

/// Every visible change in `fx` starts a timing on the meter of the output it leaves for, at
/// the moment it leaves (a share held back for a lower-latency output leaves later).
fn time_visible_changes(state: &mut AppState, fx: &[Effect], now: Duration) {
    for e in fx {
        if let Effect::Output { output, cmd } = e {
            if crate::latency::is_visible_change(cmd) {
                if let Some(m) = meter_mut(state, *output) {
                    m.on_sent(now);
                }
            }
        }
    }
}

/// Output `pipeline`'s video showed a change at `at`: a sample for the output whose video that
/// pipeline shows (its standby's while failed over). When that output's latency moves, the
/// lead floor follows, and a notice names the output.
fn on_video_change(
    state: &mut AppState,
    pipeline: OutputId,
    at: Duration,
    now: Duration,
) -> Vec<Effect> {
    let mut fx = Vec::new();
    let i = state.outputs.video_source(pipeline);
    let lead_before = state.tempo.latency();
    let own_before = latency_of(state, i);
    let Some(sample) = meter_mut(state, i).and_then(|m| m.on_seen(at)) else {
        return fx;
    };
    set_lead_floor(state);
    let own_after = latency_of(state, i);
    if own_after == own_before {
        return fx;
    }
    crate::tempo::latency_changed(state, lead_before, now);
    let configured = state
        .outputs
        .list
        .get(i)
        .and_then(|o| o.spec.latency)
        .unwrap_or(state.tempo.settings.latency);
    // Said once when the measurement takes over, then only when it moves by more than 50 ms.
    if own_before == configured || own_after.abs_diff(own_before) > Duration::from_millis(50) {
        let name = state.outputs.list.get(i).map(|o| o.spec.name.clone());
        crate::tempo::announce_latency(state, name.as_deref(), own_after, sample, now, &mut fx);
    }
    fx
}

/// Beat-locked changes are decided by the largest latency of all outputs; an output with less
/// gets its share later by the difference (see [`hold_beat_locked`]).
fn set_lead_floor(state: &mut AppState) {
    let n = state.outputs.list.len();
    state.tempo.lead_floor = (0..n)
        .map(|i| latency_of(state, i))
        .max()
        .unwrap_or_default();
}

/// In a fold that decided beat-locked changes (a lead beat fired), the urgent updates for an
/// output whose latency is below the one they were decided by are held back by the difference.
fn hold_beat_locked(state: &mut AppState, now: Duration, fx: Vec<Effect>) -> Vec<Effect> {
    let lead = state.tempo.latency();
    let mut out = Vec::with_capacity(fx.len());
    for e in fx {
        match e {
            Effect::Output {
                output,
                cmd: TransportCmd::Update(u),
            } if u.urgent => {
                let wait = lead.saturating_sub(latency_of(state, output));
                if wait.is_zero() {
                    out.push(Effect::Output {
                        output,
                        cmd: TransportCmd::Update(u),
                    });
                } else {
                    state.outputs.held.push(Held {
                        at: now + wait,
                        output,
                        cmd: TransportCmd::Update(u),
                    });
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Held commands whose time has come, in the order they were held.
fn release_held(state: &mut AppState, now: Duration) -> Vec<Effect> {
    if state.outputs.held.is_empty() {
        return Vec::new();
    }
    let (due, later): (Vec<Held>, Vec<Held>) = std::mem::take(&mut state.outputs.held)
        .into_iter()
        .partition(|h| h.at <= now);
    state.outputs.held = later;
    due.into_iter()
        .map(|h| Effect::Output {
            output: h.output,
            cmd: h.cmd,
        })
        .collect()
}

/// The desired state output `i` replays on every (re)connect: the shared `full` state with the
/// offsets and own values of the output it carries.
pub fn desired_for(
    state: &AppState,
    i: OutputId,
    full: &Map<String, ParamValue>,
) -> Map<String, ParamValue> {
    let outs = &state.outputs;
    let (Some(o), Some(me)) = (outs.list.get(outs.carries(i)), outs.list.get(i)) else {
        return full.clone();
    };
    let mut out = Map::new();
    for (k, v) in full {
        if o.own.contains_key(k) {
            continue;
        }
        if let Some(v) = fit(state, me, k, offset(state, o, k, v)) {
            out.insert(k.clone(), v);
        }
    }
    for (k, v) in &o.own {
        if let Some(v) = fit(state, me, k, v.clone()) {
            out.insert(k.clone(), v);
        }
    }
    out
}

/// A value as output `me`'s own pipeline takes it: clamped to its schema's range, `None` when
/// its pipeline refuses the value's type or lacks a key another output's pipeline has (this
/// server would refuse it). A key no schema describes (a load-time `seed` from the output's
/// config) passes as it did with one server. Before its schema arrived the shared check serves.
fn fit(state: &AppState, me: &Output, key: &str, v: ParamValue) -> Option<ParamValue> {
    let Some(specs) = &me.specs else {
        return Some(v);
    };
    match specs.get(key) {
        Some(spec) => spec.accept(&v).ok().map(|a| a.value),
        None if state.params.store.spec(key).is_some() => None,
        None => Some(v),
    }
}

/// Values as output `i`'s pipeline takes them (see [`fit`]).
fn fit_all(
    state: &AppState,
    i: OutputId,
    values: &Map<String, ParamValue>,
) -> Map<String, ParamValue> {
    let Some(me) = state.outputs.list.get(i) else {
        return values.clone();
    };
    values
        .iter()
        .filter_map(|(k, v)| fit(state, me, k, v.clone()).map(|v| (k.clone(), v)))
        .collect()
}

/// A shared value as output `o` gets it: its offset added (clamped to the key's range).
fn offset(state: &AppState, o: &Output, key: &str, v: &ParamValue) -> ParamValue {
    let (Some(d), Some(x)) = (o.spec.overrides.offsets.get(key), v.as_f64()) else {
        return v.clone();
    };
    let spec = state.params.store.spec(key);
    let (lo, hi) = spec.and_then(|s| s.range()).unwrap_or((f64::MIN, f64::MAX));
    let y = (x + d).clamp(lo, hi);
    match spec.map(|s| &s.kind) {
        Some(ParamKind::Int { .. }) => serde_json::json!(y.round() as i64),
        _ => serde_json::json!(y),
    }
}

/// A shared update as output `i` gets it: keys it holds its own value for are left out (a
/// `transition` too when it holds its own prompt), offsets are added. `None` when nothing is
/// left to send.
fn shape_update(state: &AppState, i: OutputId, u: &ParamUpdate) -> Option<ParamUpdate> {
    let outs = &state.outputs;
    let o = outs.list.get(outs.carries(i))?;
    let me = outs.list.get(i)?;
    let mut values = Map::new();
    for (k, v) in &u.values {
        let own_prompt = o.own.contains_key("prompts")
            && matches!(
                k.as_str(),
                "transition" | "_quantized" | "quantize_mode" | "lookahead_ms"
            );
        if o.own.contains_key(k) || own_prompt {
            continue;
        }
        if let Some(v) = fit(state, me, k, offset(state, o, k, v)) {
            values.insert(k.clone(), v);
        }
    }
    (!values.is_empty()).then_some(ParamUpdate {
        values,
        urgent: u.urgent,
    })
}

/// Addresses every shared transport command to every output, shaped for it.
fn fan_out(state: &AppState, fx: Vec<Effect>) -> Vec<Effect> {
    let n = state.outputs.list.len();
    let mut out = Vec::with_capacity(fx.len() + n);
    for e in fx {
        match e {
            Effect::Transport(TransportCmd::Update(u)) => {
                for i in 0..n {
                    if let Some(s) = shape_update(state, i, &u) {
                        out.push(Effect::Output {
                            output: i,
                            cmd: TransportCmd::Update(s),
                        });
                    }
                }
            }
            Effect::Transport(cmd) => {
                for i in 0..n {
                    out.push(Effect::Output {
                        output: i,
                        cmd: cmd.clone(),
                    });
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Actions that follow the routing (to the selected output or group); everything else (panic,
/// blackout, tempo, cues, looks, quit, views) always acts on the whole show.
fn is_routed(state: &AppState, a: &Action) -> bool {
    match a {
        Action::Pause
        | Action::TogglePause
        | Action::ResetCache
        | Action::SetPrompt { .. }
        | Action::Reconnect
        | Action::DownloadModels
        | Action::PromptNext
        | Action::PromptPrev
        | Action::SelectPrompt { .. }
        | Action::SetPersona { .. }
        | Action::ThemeNext
        | Action::ThemePrev
        | Action::SelectTheme { .. } => true,
        // Resume during a panic releases the panic, which is everyone's.
        Action::Resume => state.controls.panic.is_none(),
        // The master fade is the local video's, macros drive the shared mapping.
        Action::SetParam { key, .. } | Action::AdjustParam { key, .. } => {
            key != "master_fade" && !key.starts_with("macro.")
        }
        _ => false,
    }
}

fn is_theme_action(a: &Action) -> bool {
    matches!(
        a,
        Action::ThemeNext | Action::ThemePrev | Action::SelectTheme { .. }
    )
}

/// Keys whose value differs between `before` and `after` (removed keys are not carried).
fn changed(
    before: &Map<String, ParamValue>,
    after: &Map<String, ParamValue>,
) -> Map<String, ParamValue> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// [`crate::update`] with several outputs: routing, per-output transport events, failover, and
/// each output's share of beat-locked changes at its own latency.
pub fn update_routed(state: &mut AppState, msg: Msg, now: Duration) -> Vec<Effect> {
    if state.outputs.list.is_empty() {
        return route(state, msg, now);
    }
    let mut out = if matches!(msg, Msg::Tick) {
        set_lead_floor(state);
        release_held(state, now)
    } else {
        Vec::new()
    };
    // Lead beats fire in whichever fold comes first after they are due (a tick, an audio
    // frame, an action): that fold's urgent updates are the beat-locked ones.
    let lead_before = state.tempo.lead_next();
    let fx = route(state, msg, now);
    if state.tempo.lead_next() != lead_before {
        out.extend(hold_beat_locked(state, now, fx));
    } else {
        out.extend(fx);
    }
    time_visible_changes(state, &out, now);
    out
}

fn route(state: &mut AppState, msg: Msg, now: Duration) -> Vec<Effect> {
    if let Msg::Action {
        action: Action::OutputSelect { output, group },
        source,
    } = msg
    {
        return select(state, output, group, source, now);
    }
    if state.outputs.list.is_empty() {
        return crate::update::update(state, msg, now);
    }
    match msg {
        Msg::Transport(ev) => on_output_event(state, 0, ev, now),
        Msg::VideoChangeSeen { output, at } => on_video_change(state, output, at, now),
        Msg::OutputEvent { output, event } => on_output_event(state, output, event, now),
        Msg::Action { action, source }
            if state.outputs.routing != Routing::All
                && state.lifecycle == crate::state::Lifecycle::Running
                && is_routed(state, &action) =>
        {
            routed_action(state, action, source, now)
        }
        Msg::Started => {
            set_lead_floor(state);
            let fx = crate::update::update(state, Msg::Started, now);
            seed_overrides(state, now);
            fan_out(state, fx)
        }
        Msg::Tick => {
            let mut fx = crate::update::update(state, Msg::Tick, now);
            failover(state, now, &mut fx);
            fan_out(state, fx)
        }
        msg @ Msg::Action { .. } => {
            if let Msg::Action {
                action: Action::Panic,
                ..
            } = &msg
            {
                // A panic's safe state must not be overtaken by a switch held back for later.
                state.outputs.held.clear();
            }
            // To all: a value every output now follows again is no one's own any more.
            let before = state.params.store.full_state();
            let fx = crate::update::update(state, msg, now);
            let diff = changed(&before, &state.params.store.full_state());
            if !diff.is_empty() {
                let mut touched = false;
                for o in &mut state.outputs.list {
                    for k in diff.keys() {
                        touched |= o.own.remove(k).is_some();
                    }
                }
                if touched {
                    state.outputs.revision += 1;
                }
            }
            fan_out(state, fx)
        }
        msg => {
            let fx = crate::update::update(state, msg, now);
            fan_out(state, fx)
        }
    }
}

/// `output_select`: one output (by number or name), a group, or all again.
fn select(
    state: &mut AppState,
    output: Option<OutputRef>,
    group: Option<String>,
    source: ActionSource,
    now: Duration,
) -> Vec<Effect> {
    let mut fx = vec![Effect::Emit(Event::Action {
        action: Action::OutputSelect {
            output: output.clone(),
            group: group.clone(),
        },
        source,
    })];
    if state.lifecycle != crate::state::Lifecycle::Running {
        return Vec::new();
    }
    if state.outputs.list.is_empty() {
        notice(
            state,
            &mut fx,
            Level::Info,
            "output_select: this show has one output ([server]); add [[outputs]] to drive several"
                .into(),
            now,
        );
        return fx;
    }
    let routing = match (output, group) {
        (Some(r), _) => match state.outputs.find(&r) {
            // Selecting the selected output again goes back to all (a mixer's channel select).
            Some(i) if state.outputs.routing == Routing::One(i) => Routing::All,
            Some(i) => Routing::One(i),
            None => {
                let names: Vec<&str> = state
                    .outputs
                    .list
                    .iter()
                    .map(|o| o.spec.name.as_str())
                    .collect();
                let what = match r {
                    OutputRef::Number(n) => format!("#{n}"),
                    OutputRef::Name(s) => format!("`{s}`"),
                };
                notice(
                    state,
                    &mut fx,
                    Level::Warn,
                    format!(
                        "output_select: no output {what} (have: {})",
                        names.join(", ")
                    ),
                    now,
                );
                return fx;
            }
        },
        (None, Some(g)) => {
            if !state
                .outputs
                .list
                .iter()
                .any(|o| o.spec.group.as_deref() == Some(g.as_str()))
            {
                notice(
                    state,
                    &mut fx,
                    Level::Warn,
                    format!("output_select: no output is in group `{g}`"),
                    now,
                );
                return fx;
            }
            Routing::Group(g)
        }
        (None, None) => Routing::All,
    };
    state.outputs.routing = routing;
    let label = state.outputs.routing_label();
    notice(
        state,
        &mut fx,
        Level::Info,
        format!("actions go to {label}"),
        now,
    );
    fx
}

/// A performer action while one output (or a group) is selected: the shared reducer runs, then
/// what it changed in the shared state becomes the targets' own values and the shared state is
/// put back, so the other outputs never see it (not even on their next reconnect).
fn routed_action(
    state: &mut AppState,
    action: Action,
    source: ActionSource,
    now: Duration,
) -> Vec<Effect> {
    let targets = state.outputs.targets();
    let saved_params = state.params.clone();
    let saved_mapping = is_theme_action(&action).then(|| state.mapping.clone());
    let before = state.params.store.full_state();
    let mut fx = match (&action, saved_mapping.is_some()) {
        (a, true) => {
            // A theme for the selection lands at once as a cut (the shared grid's quantised
            // switch belongs to the shared theme).
            let mut fx = vec![Effect::Emit(Event::Action {
                action: a.clone(),
                source,
            })];
            let n = state.mapping.themes.len().max(1);
            let to = match a {
                Action::ThemeNext => (state.mapping.active + 1) % n,
                Action::ThemePrev => (state.mapping.active + n - 1) % n,
                Action::SelectTheme { index } => (*index).min(n - 1),
                _ => state.mapping.active,
            };
            let mut scratch = Vec::new();
            crate::mapping::reduce::switch_now(state, to, now, &mut scratch);
            let name = state
                .mapping
                .theme()
                .map(|t| t.name.clone())
                .unwrap_or_default();
            notice(
                state,
                &mut fx,
                Level::Info,
                format!("theme {name} on {}", state.outputs.routing_label()),
                now,
            );
            fx
        }
        _ => crate::update::update(state, Msg::Action { action, source }, now),
    };
    let diff = changed(&before, &state.params.store.full_state());
    state.params = saved_params;
    if let Some(m) = saved_mapping {
        state.mapping = m;
    }
    for &t in &targets {
        if let Some(o) = state.outputs.list.get_mut(t) {
            o.own.extend(diff.clone());
        }
    }
    if !diff.is_empty() {
        state.outputs.revision += 1;
    }
    // What the reducer sent goes to the targets only; a theme cut sends its values as one
    // urgent update.
    let mut out = Vec::new();
    let mut sent_diff = false;
    for e in fx.drain(..) {
        match e {
            Effect::Transport(TransportCmd::Update(u)) => {
                sent_diff = true;
                for &t in &targets {
                    let values = fit_all(state, t, &u.values);
                    if !values.is_empty() {
                        out.push(Effect::Output {
                            output: t,
                            cmd: TransportCmd::Update(ParamUpdate {
                                values,
                                urgent: u.urgent,
                            }),
                        });
                    }
                }
            }
            Effect::Transport(cmd) => {
                for &t in &targets {
                    out.push(Effect::Output {
                        output: t,
                        cmd: cmd.clone(),
                    });
                }
            }
            other => out.push(other),
        }
    }
    if !sent_diff && !diff.is_empty() {
        for &t in &targets {
            let values = fit_all(state, t, &diff);
            if !values.is_empty() {
                out.push(Effect::Output {
                    output: t,
                    cmd: TransportCmd::Update(ParamUpdate {
                        values,
                        urgent: true,
                    }),
                });
            }
        }
    }
    out
}

/// Turns each output's theme/prompt/seed override into its own values (after `Started` seeded
/// the shared state, before its transport takes the desired state).
fn seed_overrides(state: &mut AppState, now: Duration) {
    for i in 0..state.outputs.list.len() {
        let ov = state.outputs.list[i].spec.overrides.clone();
        let mut own = Map::new();
        if let Some(theme) = &ov.theme {
            if let Some(to) = state.mapping.themes.iter().position(|t| &t.id == theme) {
                let saved = (state.params.clone(), state.mapping.clone());
                let before = state.params.store.full_state();
                let mut scratch = Vec::new();
                crate::mapping::reduce::switch_now(state, to, now, &mut scratch);
                own.extend(changed(&before, &state.params.store.full_state()));
                (state.params, state.mapping) = saved;
            }
        }
        if let Some(p) = &ov.prompt {
            own.insert(
                "prompts".into(),
                serde_json::json!([{ "text": p, "weight": 1.0 }]),
            );
        }
        if let Some(seed) = ov.seed {
            own.insert("seed".into(), serde_json::json!(seed));
        }
        state.outputs.list[i].own.extend(own);
    }
    state.outputs.revision += 1;
}

/// One output's transport reported: its own row first; output 0 also drives the shared
/// connection slice as before, the others only where the show as a whole must know (schema,
/// errors, the last goodbye).
fn on_output_event(
    state: &mut AppState,
    i: OutputId,
    ev: TransportEvent,
    now: Duration,
) -> Vec<Effect> {
    let mut fx = Vec::new();
    if let TransportEvent::Schema(specs) = ev {
        return on_output_schema(state, i, specs, now);
    }
    let Some(o) = state.outputs.list.get_mut(i) else {
        return fx;
    };
    let name = o.spec.name.clone();
    match &ev {
        TransportEvent::State { state: s, reason } => {
            let changed = o.conn != *s || &o.reason != reason;
            if !matches!(s, ConnState::Warming | ConnState::Loading) {
                o.warmup = None;
            }
            match s {
                ConnState::Streaming => o.lost_since = None,
                ConnState::Reconnecting | ConnState::Degraded => {
                    o.lost_since.get_or_insert(now);
                }
                _ => {}
            }
            o.conn = *s;
            o.reason.clone_from(reason);
            if changed {
                fx.push(Effect::Emit(Event::OutputConnection {
                    output: name.clone(),
                    state: *s,
                    reason: reason.clone(),
                }));
            }
        }
        TransportEvent::WarmUp(w) => o.warmup = Some(w.clone()),
        TransportEvent::Stats(s) => o.rx_fps = s.rx_fps,
        TransportEvent::Sent { payload } => {
            o.sent += 1;
            if i != 0 {
                fx.push(Effect::Emit(Event::OutputSent {
                    output: name.clone(),
                    payload: payload.clone(),
                }));
            }
        }
        TransportEvent::Stopped => o.stopped = true,
        _ => {}
    }
    let all_stopped = state.outputs.list.iter().all(|o| o.stopped);
    let shared = match ev {
        // The show has stopped when the last output has said goodbye.
        TransportEvent::Stopped => all_stopped.then_some(TransportEvent::Stopped),
        ev if i == 0 => Some(ev),
        TransportEvent::Error(e) => {
            notice(state, &mut fx, Level::Error, format!("{name}: {e}"), now);
            None
        }
        TransportEvent::Refused { key, reason } => {
            notice(
                state,
                &mut fx,
                Level::Warn,
                format!("{name}: server refused {key}: {reason}"),
                now,
            );
            None
        }
        _ => None,
    };
    if let Some(ev) = shared {
        let more = crate::update::update(state, Msg::Transport(ev), now);
        fx.extend(fan_out(state, more));
    }
    fx
}

/// Output `i`'s pipeline reported its schema: it becomes that output's own check (its held own
/// values are checked again: clamped to its range, or no longer sent when its pipeline lacks
/// them or refuses their type), its transport's connect may go on (its own count), and the
/// shared store takes the union of every output's schema (the widest range of each key, so a
/// value one output's pipeline allows is not cut to another's: each output is cut to its own
/// on the way out).
fn on_output_schema(
    state: &mut AppState,
    i: OutputId,
    specs: Vec<ParamSpec>,
    now: Duration,
) -> Vec<Effect> {
    let mut fx = Vec::new();
    // Keys some pipeline describes (the shared store's check); others (a load-time seed) pass.
    let described: Vec<String> = state
        .outputs
        .list
        .get(i)
        .map(|o| {
            o.own
                .keys()
                .filter(|k| state.params.store.spec(k).is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let Some(o) = state.outputs.list.get_mut(i) else {
        return fx;
    };
    let name = o.spec.name.clone();
    let schema: BTreeMap<String, ParamSpec> =
        specs.into_iter().map(|s| (s.key.clone(), s)).collect();
    let mut effective = crate::params::builtin_specs();
    effective.extend(schema.clone());
    let mut notes = Vec::new();
    let mut resend = Map::new();
    for (k, v) in o.own.iter_mut() {
        match effective.get(k).map(|s| s.accept(v)) {
            Some(Ok(a)) if a.value != *v => {
                notes.push(format!(
                    "{name}: its pipeline's schema limits its own {k}: {v} → {}",
                    a.value
                ));
                *v = a.value.clone();
                resend.insert(k.clone(), a.value);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => notes.push(format!(
                "{name}: its pipeline's schema refuses its own {k} (kept, not sent): {e}"
            )),
            None if described.contains(k) => notes.push(format!(
                "{name}: its pipeline has no {k} (its own value is kept, not sent)"
            )),
            None => {}
        }
    }
    o.schema = Some(schema);
    o.specs = Some(effective);
    o.schemas_merged += 1;
    state.outputs.revision += 1;
    for n in notes {
        notice(state, &mut fx, Level::Warn, n, now);
    }
    if !resend.is_empty() {
        fx.push(Effect::Output {
            output: i,
            cmd: TransportCmd::Update(ParamUpdate {
                values: resend,
                urgent: false,
            }),
        });
    }
    let union = union_schema(&state.outputs);
    let more = crate::update::update(state, Msg::Transport(TransportEvent::Schema(union)), now);
    fx.extend(fan_out(state, more));
    fx
}

/// Every output's reported schema as one: each key with the widest range any output's pipeline
/// gives it (the shared store's check; each output is cut to its own on the way out).
fn union_schema(outs: &OutputsSlice) -> Vec<ParamSpec> {
    let mut union: BTreeMap<String, ParamSpec> = BTreeMap::new();
    for o in &outs.list {
        for (k, s) in o.schema.iter().flatten() {
            match union.get_mut(k) {
                None => {
                    union.insert(k.clone(), s.clone());
                }
                Some(u) => u.kind = widest(&u.kind, &s.kind),
            }
        }
    }
    union.into_values().collect()
}

/// The wider of two shapes of one key (same shape: the union of ranges or options; different
/// shapes: the first output's).
fn widest(a: &ParamKind, b: &ParamKind) -> ParamKind {
    match (a, b) {
        (ParamKind::Float { min: a0, max: a1 }, ParamKind::Float { min: b0, max: b1 }) => {
            ParamKind::Float {
                min: a0.min(*b0),
                max: a1.max(*b1),
            }
        }
        (ParamKind::Int { min: a0, max: a1 }, ParamKind::Int { min: b0, max: b1 }) => {
            ParamKind::Int {
                min: *a0.min(b0),
                max: *a1.max(b1),
            }
        }
        (
            ParamKind::DescendingInts { min: a0, max: a1 },
            ParamKind::DescendingInts { min: b0, max: b1 },
        ) => ParamKind::DescendingInts {
            min: *a0.min(b0),
            max: *a1.max(b1),
        },
        (ParamKind::Choice { options: x }, ParamKind::Choice { options: y }) => {
            let mut options = x.clone();
            options.extend(y.iter().filter(|o| !x.contains(o)).cloned());
            ParamKind::Choice { options }
        }
        (a, _) => a.clone(),
    }
}

/// Moves a lost primary's state and video to its standby once it has been lost for
/// `failover_after`, and back as soon as the primary streams again.
fn failover(state: &mut AppState, now: Duration, fx: &mut Vec<Effect>) {
    let full = state.params.store.full_state();
    // Back: the primary streams again.
    let back: Vec<Failover> = state
        .outputs
        .failovers
        .iter()
        .filter(|f| {
            state
                .outputs
                .list
                .get(f.primary)
                .is_some_and(|o| o.conn == ConnState::Streaming)
        })
        .copied()
        .collect();
    for f in back {
        state.outputs.failovers.retain(|x| x != &f);
        state.outputs.revision += 1;
        // The standby returns to its own state; the primary's reconnect replayed its own.
        let values = desired_for(state, f.standby, &full);
        fx.push(Effect::Output {
            output: f.standby,
            cmd: TransportCmd::Update(ParamUpdate {
                values,
                urgent: true,
            }),
        });
        let (p, s) = (
            state.outputs.list[f.primary].spec.name.clone(),
            state.outputs.list[f.standby].spec.name.clone(),
        );
        notice(
            state,
            fx,
            Level::Info,
            format!("{p} is back: its video and state return from {s}"),
            now,
        );
    }
    for p in 0..state.outputs.list.len() {
        let o = &state.outputs.list[p];
        let (Some(s), Some(lost)) = (o.spec.standby, o.lost_since) else {
            continue;
        };
        let busy = state
            .outputs
            .failovers
            .iter()
            .any(|f| f.primary == p || f.standby == s);
        let standby_live = state
            .outputs
            .list
            .get(s)
            .is_some_and(|x| matches!(x.conn, ConnState::Streaming));
        if busy || !standby_live || now.saturating_sub(lost) < o.spec.failover_after {
            continue;
        }
        state.outputs.failovers.push(Failover {
            primary: p,
            standby: s,
            since: now,
        });
        state.outputs.revision += 1;
        // The standby is live: the primary's whole state goes at once as one update.
        let values = desired_for(state, s, &full);
        fx.push(Effect::Output {
            output: s,
            cmd: TransportCmd::Update(ParamUpdate {
                values,
                urgent: true,
            }),
        });
        let (pn, sn) = (
            state.outputs.list[p].spec.name.clone(),
            state.outputs.list[s].spec.name.clone(),
        );
        let secs = now.saturating_sub(lost).as_secs_f64();
        notice(
            state,
            fx,
            Level::Warn,
            format!("{pn}: server lost for {secs:.1} s; its state and video move to {sn}"),
            now,
        );
    }
}

/// What the state journal keeps of the outputs (`crate::recall`): each output's own values (set
/// while it was selected, from its theme/prompt/seed override, or a schema's re-check), the
/// selection and the failovers in force — by output name, so a reordered `[[outputs]]` still
/// finds its own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutputsRecall {
    /// Where performer actions went.
    #[serde(default)]
    pub routing: RoutingRecall,
    /// Each output's own values, by output name (outputs without any are left out).
    #[serde(default)]
    pub own: BTreeMap<String, Map<String, ParamValue>>,
    /// Failovers in force: the lost primary's name and its standby's.
    #[serde(default)]
    pub failovers: Vec<FailoverRecall>,
}

/// [`Routing`] by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingRecall {
    /// Every output.
    #[default]
    All,
    /// The output of this name.
    Output(String),
    /// The outputs of this group.
    Group(String),
}

/// A failover in force, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecall {
    /// The lost primary.
    pub primary: String,
    /// The output carrying it.
    pub standby: String,
}

/// The outputs' part of the journal; `None` with a single `[server]`.
pub fn capture_recall(state: &AppState) -> Option<OutputsRecall> {
    let outs = &state.outputs;
    if outs.list.is_empty() {
        return None;
    }
    let name = |i: OutputId| outs.list.get(i).map(|o| o.spec.name.clone());
    Some(OutputsRecall {
        routing: match &outs.routing {
            Routing::All => RoutingRecall::All,
            Routing::One(i) => name(*i).map_or(RoutingRecall::All, RoutingRecall::Output),
            Routing::Group(g) => RoutingRecall::Group(g.clone()),
        },
        own: outs
            .list
            .iter()
            .filter(|o| !o.own.is_empty())
            .map(|o| (o.spec.name.clone(), o.own.clone()))
            .collect(),
        failovers: outs
            .failovers
            .iter()
            .filter_map(|f| {
                Some(FailoverRecall {
                    primary: name(f.primary)?,
                    standby: name(f.standby)?,
                })
            })
            .collect(),
    })
}

/// Brings the outputs' part back (after the shared show): each output's own values replace what
/// its overrides seeded, the selection and failovers come back (a failover ends as soon as its
/// primary streams, as a live one does). Names this show no longer has are named in one notice.
pub fn restore_recall(
    state: &mut AppState,
    r: &OutputsRecall,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    if state.outputs.list.is_empty() {
        if !r.own.is_empty() || r.routing != RoutingRecall::All {
            notice(
                state,
                fx,
                Level::Warn,
                "resume: the journal has several outputs; this show has one ([server]): their own values are not restored".into(),
                now,
            );
        }
        return;
    }
    let find = |outs: &OutputsSlice, n: &str| outs.list.iter().position(|o| o.spec.name == n);
    let mut missing: Vec<String> = Vec::new();
    let mut restored = 0;
    for (name, own) in &r.own {
        match find(&state.outputs, name) {
            Some(i) => {
                state.outputs.list[i].own = own.clone();
                restored += 1;
            }
            None => missing.push(name.clone()),
        }
    }
    state.outputs.routing = match &r.routing {
        RoutingRecall::All => Routing::All,
        RoutingRecall::Output(n) => match find(&state.outputs, n) {
            Some(i) => Routing::One(i),
            None => {
                missing.push(n.clone());
                Routing::All
            }
        },
        RoutingRecall::Group(g) => {
            if state
                .outputs
                .list
                .iter()
                .any(|o| o.spec.group.as_deref() == Some(g.as_str()))
            {
                Routing::Group(g.clone())
            } else {
                missing.push(format!("group {g}"));
                Routing::All
            }
        }
    };
    state.outputs.failovers.clear();
    for f in &r.failovers {
        match (
            find(&state.outputs, &f.primary),
            find(&state.outputs, &f.standby),
        ) {
            (Some(primary), Some(standby)) if primary != standby => {
                state.outputs.failovers.push(Failover {
                    primary,
                    standby,
                    since: now,
                })
            }
            _ => missing.push(format!("{}→{}", f.primary, f.standby)),
        }
    }
    state.outputs.revision += 1;
    // Outputs already streaming take their own state at once (on a fresh start the first
    // connect carries it: the desired state is republished after this fold).
    let full = state.params.store.full_state();
    for i in 0..state.outputs.list.len() {
        if state.outputs.list[i].conn == ConnState::Streaming {
            fx.push(Effect::Output {
                output: i,
                cmd: TransportCmd::Update(ParamUpdate {
                    values: desired_for(state, i, &full),
                    urgent: true,
                }),
            });
        }
    }
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        notice(
            state,
            fx,
            Level::Warn,
            format!(
                "resume: this show has no {} (journaled, not restored)",
                missing.join(", ")
            ),
            now,
        );
    }
    let label = state.outputs.routing_label();
    notice(
        state,
        fx,
        Level::Info,
        format!(
            "resumed {} output(s)' own values; actions go to {label}",
            restored
        ),
        now,
    );
}

/// One output's row on the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputView {
    /// Name.
    pub name: String,
    /// Backend label.
    pub backend: String,
    /// URL or preset.
    pub target: String,
    /// Connection state.
    pub state: ConnState,
    /// Why.
    pub reason: Option<String>,
    /// Warm-up progress 0..1, while one runs.
    pub warmup: Option<f32>,
    /// Actions reach it now.
    pub selected: bool,
    /// Received frames per second.
    pub rx_fps: f32,
    /// Messages sent.
    pub sent: u64,
    /// How many own values it holds.
    pub own: usize,
    /// `→ spare` while its standby carries it, `← wall` while it carries another.
    pub failover: Option<String>,
    /// Its beat-locked changes go out this much early (its own share, `latency_of`).
    #[serde(default)]
    pub latency_ms: u64,
    /// `latency_ms` was measured on its own video.
    #[serde(default)]
    pub latency_measured: bool,
}

/// The dashboard's view of every output (empty with a single `[server]`).
pub fn views(state: &AppState) -> Vec<OutputView> {
    let outs = &state.outputs;
    let targets = outs.targets();
    outs.list
        .iter()
        .enumerate()
        .map(|(i, o)| OutputView {
            name: o.spec.name.clone(),
            backend: o.spec.backend.clone(),
            target: o.spec.target.clone(),
            state: o.conn,
            reason: o.reason.clone(),
            warmup: o.warmup.as_ref().map(|w| {
                let exp = w.expected.as_secs_f32();
                if exp > 0.0 {
                    (w.elapsed.as_secs_f32() / exp).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }),
            selected: outs.routing != Routing::All && targets.contains(&i),
            rx_fps: o.rx_fps,
            sent: o.sent,
            own: o.own.len(),
            failover: outs.failovers.iter().find_map(|f| {
                if f.primary == i {
                    Some(format!("→ {}", outs.list[f.standby].spec.name))
                } else if f.standby == i {
                    Some(format!("← {}", outs.list[f.primary].spec.name))
                } else {
                    None
                }
            }),
            latency_ms: u64::try_from(latency_of(state, i).as_millis()).unwrap_or(u64::MAX),
            latency_measured: measured_latency_of(state, i).is_some(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
