//! Cue lists (setlists): an ordered list of cues, each a theme, a prompt or weighted blend,
//! parameter values and actions, fired by GO on a launch rule (now, next beat, next bar, the
//! next N-bar phrase, at bar N, or a time offset), optionally followed by the next cue after N
//! bars or seconds.
//!
//! Launches are folded here with the engine time and the beat events the reducer already sees;
//! nothing reads a clock, so every launch is testable by folding messages.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionSource};
use crate::ctx::notice;
use crate::diagnostics::{ConfigError, SourceDoc};
use crate::effect::Effect;
use crate::params::{ParamStore, ParamValue};
use crate::state::{AppState, Level};

/// A cue named by its 1-based number or its name (`cue_jump`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CueRef {
    /// 1-based position in the setlist.
    Number(usize),
    /// The cue's `name` (a string of digits is read as a number).
    Name(String),
}

/// When a cue lands after GO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Launch {
    /// At once.
    Now,
    /// On the next beat.
    Beat,
    /// On the next downbeat.
    Bar,
    /// On the next downbeat that starts an N-bar phrase (bars 1, 1+N, 1+2N, ...).
    Bars(u64),
    /// On the downbeat of bar N (counted from the first downbeat heard); at once if it passed.
    AtBar(u64),
    /// This long after GO.
    After(Duration),
}

/// What fires the next cue by itself once a cue has landed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Follow {
    /// After this many bars (on a downbeat).
    Bars(u64),
    /// After this long.
    After(Duration),
}

/// One cue: what it changes and when it lands.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Name shown on the dashboard and used by `cue_jump`.
    pub name: String,
    /// A saved look recalled first (its theme, prompts, parameters, toggles).
    pub look: Option<String>,
    /// Theme id to switch to (the theme's own switch rule and transition apply).
    pub theme: Option<String>,
    /// Prompts with weights; one entry is a plain prompt.
    pub prompts: Vec<(String, f64)>,
    /// Parameter values (validated against the parameter table).
    pub params: BTreeMap<String, ParamValue>,
    /// Further actions, in order.
    pub actions: Vec<Action>,
    /// When GO lands.
    pub launch: Launch,
    /// Auto-follow into the next cue.
    pub follow: Option<Follow>,
}

/// A loaded setlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Setlist {
    /// Title (`name`, or the file stem).
    pub name: String,
    /// Cues in order.
    pub cues: Vec<Cue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetlist {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cue: Vec<RawCue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCue {
    name: String,
    #[serde(default)]
    look: Option<String>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    blend: Option<Vec<RawBlend>>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    actions: Vec<toml::Value>,
    #[serde(default)]
    launch: Option<String>,
    #[serde(default)]
    bars: Option<i64>,
    #[serde(default)]
    at_bar: Option<i64>,
    #[serde(default)]
    after_secs: Option<f64>,
    #[serde(default)]
    follow_bars: Option<i64>,
    #[serde(default)]
    follow_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlend {
    text: String,
    weight: f64,
}

/// Longest time offset or follow accepted (an hour: a typo guard, not a limit on shows).
const MAX_SECS: f64 = 3600.0;

impl Setlist {
    /// Parses and validates one setlist file; every problem is pushed with file:line:column
    /// and key. `themes` and `looks` are the known theme ids and saved look names (a cue naming
    /// another one is an error; an empty list is not checked).
    pub fn from_text(
        file: &str,
        stem: &str,
        text: &str,
        themes: &[&str],
        looks: &[&str],
        errors: &mut Vec<ConfigError>,
    ) -> Option<Setlist> {
        let (doc, raw) = SourceDoc::load::<RawSetlist>(file, text, errors)?;
        let before = errors.len();
        let mut err = |path: &str, msg: &str| errors.push(doc.error_at(path, msg, None));
        if raw.cue.is_empty() {
            err("", "a setlist needs at least one [[cue]]");
        }
        let store = ParamStore::new();
        let mut cues = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let last = raw.cue.len().saturating_sub(1);
        for (i, rc) in raw.cue.iter().enumerate() {
            let at = |k: &str| format!("cue[{i}].{k}");
            let name = rc.name.trim().to_string();
            if name.is_empty() {
                err(&at("name"), "must not be empty");
            } else if name.chars().all(|c| c.is_ascii_digit()) {
                err(
                    &at("name"),
                    "must not be only digits (cue_jump reads digits as a number)",
                );
            } else if let Some(first) = seen.insert(name.clone(), i) {
                err(
                    &at("name"),
                    &format!("duplicate cue name (cue {} has it)", first + 1),
                );
            }
            if let Some(l) = &rc.look {
                if l.trim().is_empty() {
                    err(&at("look"), "must not be empty");
                } else if !looks.is_empty() && !looks.contains(&l.as_str()) {
                    err(
                        &at("look"),
                        &format!("no saved look of that name (have: {})", looks.join(", ")),
                    );
                } else if looks.is_empty() {
                    err(
                        &at("look"),
                        "no saved looks (save one with save_look first)",
                    );
                }
            }
            if let Some(t) = &rc.theme {
                if !themes.is_empty() && !themes.contains(&t.as_str()) {
                    err(
                        &at("theme"),
                        &format!("unknown theme (known: {})", themes.join(", ")),
                    );
                }
            }
            let mut prompts = Vec::new();
            match (&rc.prompt, &rc.blend) {
                (Some(_), Some(_)) => err(&at("blend"), "give either prompt or blend, not both"),
                (Some(p), None) if p.trim().is_empty() => err(&at("prompt"), "must not be empty"),
                (Some(p), None) => prompts.push((p.clone(), 1.0)),
                (None, Some(b)) if b.is_empty() => err(&at("blend"), "needs at least one prompt"),
                (None, Some(b)) => {
                    for (j, e) in b.iter().enumerate() {
                        if e.text.trim().is_empty() {
                            err(&format!("cue[{i}].blend[{j}].text"), "must not be empty");
                        }
                        if !e.weight.is_finite() || e.weight < 0.0 {
                            err(&format!("cue[{i}].blend[{j}].weight"), "must be 0 or more");
                        }
                        prompts.push((e.text.clone(), e.weight));
                    }
                    if b.iter().all(|e| e.weight <= 0.0) {
                        err(&at("blend"), "at least one weight must be above 0");
                    }
                }
                (None, None) => {}
            }
            let mut params = BTreeMap::new();
            for (k, v) in &rc.params {
                let path = format!("cue[{i}].params.{k}");
                let Ok(j) = serde_json::to_value(v) else {
                    err(&path, "cannot be sent as JSON");
                    continue;
                };
                match store.spec(k) {
                    None => err(&path, "unknown parameter"),
                    Some(spec) => match spec.accept(&j) {
                        Ok(acc) if acc.clamped => {
                            let (lo, hi) = spec.range().unwrap_or_default();
                            err(&path, &format!("outside the parameter's range {lo}..{hi}"))
                        }
                        Ok(_) => {
                            params.insert(k.clone(), j);
                        }
                        Err(e) => err(&path, &e.to_string()),
                    },
                }
            }
            let mut actions = Vec::new();
            for (j, v) in rc.actions.iter().enumerate() {
                let path = format!("cue[{i}].actions[{j}]");
                let parsed = match v {
                    toml::Value::String(s) => Action::from_name(s),
                    other => serde_json::to_value(other)
                        .map_err(|e| e.to_string())
                        .and_then(|j| serde_json::from_value(j).map_err(|e| e.to_string())),
                };
                match parsed {
                    Ok(a) if is_cue_action(&a) => err(&path, "a cue may not move the cue list"),
                    Ok(a) => actions.push(a),
                    Err(e) => err(&path, &e),
                }
            }
            let mut rules = Vec::new();
            let launch = match rc.launch.as_deref() {
                None => None,
                Some("now") => Some(Launch::Now),
                Some("beat") => Some(Launch::Beat),
                Some("bar") => Some(Launch::Bar),
                Some(_) => {
                    err(
                        &at("launch"),
                        "must be now, beat or bar (or use bars, at_bar, after_secs)",
                    );
                    None
                }
            };
            if let Some(l) = launch {
                rules.push(("launch", l));
            }
            if let Some(n) = rc.bars {
                if n < 1 {
                    err(&at("bars"), "must be 1 or more");
                }
                rules.push(("bars", Launch::Bars(n.max(1) as u64)));
            }
            if let Some(n) = rc.at_bar {
                if n < 1 {
                    err(
                        &at("at_bar"),
                        "must be 1 or more (bar 1 is the first downbeat)",
                    );
                }
                rules.push(("at_bar", Launch::AtBar(n.max(1) as u64)));
            }
            if let Some(s) = rc.after_secs {
                let d = secs(s).unwrap_or_else(|| {
                    err(
                        &at("after_secs"),
                        &format!("must be from 0 to {MAX_SECS} seconds"),
                    );
                    Duration::ZERO
                });
                rules.push(("after_secs", Launch::After(d)));
            }
            if rules.len() > 1 {
                err(
                    &at(rules[1].0),
                    &format!("one launch rule per cue (`{}` is also given)", rules[0].0),
                );
            }
            let launch = rules.first().map(|r| r.1).unwrap_or(Launch::Bar);
            let follow = match (rc.follow_bars, rc.follow_secs) {
                (Some(_), Some(_)) => {
                    err(
                        &at("follow_secs"),
                        "give either follow_bars or follow_secs, not both",
                    );
                    None
                }
                (Some(n), None) if n < 1 => {
                    err(&at("follow_bars"), "must be 1 or more");
                    None
                }
                (Some(n), None) => Some(Follow::Bars(n as u64)),
                (None, Some(s)) => match secs(s).filter(|d| !d.is_zero()) {
                    Some(d) => Some(Follow::After(d)),
                    None => {
                        err(
                            &at("follow_secs"),
                            &format!("must be above 0 and at most {MAX_SECS} seconds"),
                        );
                        None
                    }
                },
                (None, None) => None,
            };
            if follow.is_some() && i == last {
                let key = if rc.follow_bars.is_some() {
                    "follow_bars"
                } else {
                    "follow_secs"
                };
                err(&at(key), "the last cue has no next cue to follow into");
            }
            if rc.look.is_none()
                && rc.theme.is_none()
                && prompts.is_empty()
                && params.is_empty()
                && actions.is_empty()
                && rc.actions.is_empty()
                && rc.params.is_empty()
                && rc.blend.is_none()
                && rc.prompt.is_none()
            {
                err(
                    &at("name"),
                    "the cue changes nothing: give a theme, prompt, blend, params or actions",
                );
            }
            cues.push(Cue {
                name,
                look: rc.look.clone(),
                theme: rc.theme.clone(),
                prompts,
                params,
                actions,
                launch,
                follow,
            });
        }
        if errors.len() > before {
            return None;
        }
        Some(Setlist {
            name: raw
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| stem.to_string()),
            cues,
        })
    }
}

fn secs(s: f64) -> Option<Duration> {
    (s.is_finite() && (0.0..=MAX_SECS).contains(&s)).then(|| Duration::from_secs_f64(s))
}

/// Actions that move the cue list (not allowed inside a cue: a cue firing a cue could loop).
pub fn is_cue_action(a: &Action) -> bool {
    matches!(
        a,
        Action::CueGo | Action::CueNext | Action::CuePrev | Action::CueJump { .. }
    )
}

/// When a waiting launch lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// On the first beat whose running count reaches this.
    Beat(u64),
    /// On the downbeat that starts this bar (1-based, counted from the first downbeat).
    Bar(u64),
    /// At this engine time.
    At(Duration),
}

/// A cue waiting for its moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Index of the cue.
    pub cue: usize,
    /// When it lands.
    pub due: Due,
    /// Armed by auto-follow rather than by GO.
    pub follow: bool,
}

/// The cue list's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CueSlice {
    /// The loaded setlist.
    pub setlist: Option<Setlist>,
    /// The cue that landed last.
    pub current: Option<usize>,
    /// The cue GO fires (standby).
    pub standby: usize,
    /// A launch waiting for its beat, bar or time.
    pub pending: Option<Pending>,
    /// Downbeats heard (bar 1 is the first).
    pub bar: u64,
    /// Running beat count of the last beat heard.
    pub beat: Option<u64>,
    /// Beat index in the bar of the last beat heard.
    pub in_bar: u32,
    /// When the last beat arrived and the period to the one before (countdown display).
    pub last_beat_at: Option<Duration>,
}

impl CueSlice {
    /// Beats (or time) until the pending launch, for the dashboard: `(beats, time)`.
    pub fn countdown(&self, bpb: u32, now: Duration) -> Option<Countdown> {
        let p = self.pending?;
        Some(match p.due {
            Due::At(t) => Countdown::Time(t.saturating_sub(now)),
            Due::Beat(c) => Countdown::Beats(c.saturating_sub(self.beat.unwrap_or(0))),
            Due::Bar(b) => {
                if self.bar == 0 && self.beat.is_none() {
                    Countdown::WaitingForBeat
                } else {
                    let bars_left = b.saturating_sub(self.bar + 1);
                    let to_next = u64::from(bpb.max(1) - self.in_bar.min(bpb.max(1) - 1));
                    Countdown::Beats(bars_left * u64::from(bpb.max(1)) + to_next)
                }
            }
        })
    }
}

/// How long until a pending cue lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Countdown {
    /// This many beats.
    Beats(u64),
    /// This much time.
    Time(Duration),
    /// No beat heard yet: a beat-quantised launch waits for the music.
    WaitingForBeat,
}

/// One cue as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct CueRow {
    /// 1-based number.
    pub number: usize,
    /// Name.
    pub name: String,
    /// What it changes (`theme neon-foundry · blend 2 · 1 param · reset cache`).
    pub what: String,
    /// When GO lands it (`next bar`, `bar 33`, `+2.0 s`, ...).
    pub when: String,
}

/// What the cue panel shows: small, built at frame rate (a window of rows, not the list).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CueView {
    /// Setlist title.
    pub title: String,
    /// Cues in the list.
    pub total: usize,
    /// The cue that landed last (index).
    pub current: Option<usize>,
    /// The cue GO fires (index).
    pub standby: usize,
    /// The waiting launch: (index, countdown, armed by auto-follow).
    pub pending: Option<(usize, Countdown, bool)>,
    /// Bar count (1 = first downbeat heard).
    pub bar: u64,
    /// Up to [`CUE_ROWS`] rows around standby; `first` is the index of the first.
    pub rows: Vec<CueRow>,
    /// Index of `rows[0]`.
    pub first: usize,
}

/// How many cue rows the snapshot carries.
pub const CUE_ROWS: usize = 8;

impl CueView {
    /// The view of `state` at `now`; `None` without a setlist.
    pub fn of(state: &AppState, now: Duration) -> Option<CueView> {
        let c = &state.cues;
        let list = c.setlist.as_ref()?;
        let total = list.cues.len();
        let first = c
            .current
            .unwrap_or(c.standby)
            .min(c.standby)
            .saturating_sub(1)
            .min(total.saturating_sub(CUE_ROWS));
        let rows = list
            .cues
            .iter()
            .enumerate()
            .skip(first)
            .take(CUE_ROWS)
            .map(|(i, q)| CueRow {
                number: i + 1,
                name: q.name.clone(),
                what: q.summary(),
                when: q.launch.label(),
            })
            .collect();
        Some(CueView {
            title: list.name.clone(),
            total,
            current: c.current,
            standby: c.standby,
            pending: c.pending.and_then(|p| {
                c.countdown(state.settings.beats_per_bar, now)
                    .map(|cd| (p.cue, cd, p.follow))
            }),
            bar: c.bar,
            rows,
            first,
        })
    }

    /// The row of cue `index`, when it is in the window.
    pub fn row(&self, index: usize) -> Option<&CueRow> {
        index.checked_sub(self.first).and_then(|i| self.rows.get(i))
    }
}

impl Launch {
    /// Short label for the dashboard.
    pub fn label(&self) -> String {
        match self {
            Launch::Now => "now".into(),
            Launch::Beat => "next beat".into(),
            Launch::Bar => "next bar".into(),
            Launch::Bars(n) => format!("next {n}-bar"),
            Launch::AtBar(b) => format!("bar {b}"),
            Launch::After(d) => format!("+{:.1} s", d.as_secs_f64()),
        }
    }
}

impl Cue {
    /// What the cue changes, in a few words.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.look {
            parts.push(format!("look {l}"));
        }
        if let Some(t) = &self.theme {
            parts.push(format!("theme {t}"));
        }
        match self.prompts.as_slice() {
            [] => {}
            [(t, _)] => parts.push(format!("\"{t}\"")),
            b => parts.push(format!("blend {}", b.len())),
        }
        match self.params.len() {
            0 => {}
            1 => parts.extend(self.params.keys().map(|k| k.to_string())),
            n => parts.push(format!("{n} params")),
        }
        parts.extend(self.actions.iter().map(|a| a.describe()));
        match self.follow {
            Some(Follow::Bars(n)) => parts.push(format!("→ next after {n} bars")),
            Some(Follow::After(d)) => parts.push(format!("→ next after {:.1} s", d.as_secs_f64())),
            None => {}
        }
        parts.join(" · ")
    }
}

/// A new setlist (start-up or hot reload): standby goes to the first cue, nothing is pending.
pub fn load(state: &mut AppState, setlist: Option<Setlist>) {
    let c = &mut state.cues;
    let same_len = match (&c.setlist, &setlist) {
        (Some(a), Some(b)) => a.cues.len() == b.cues.len(),
        _ => false,
    };
    c.setlist = setlist;
    if !same_len {
        c.current = None;
        c.standby = 0;
        c.pending = None;
    }
}

/// A hot reload of the setlist file: the new list, or the errors (the running list stays).
pub fn on_reloaded(
    state: &mut AppState,
    result: Result<Setlist, String>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    match result {
        Ok(s) => {
            let msg = format!("setlist reloaded: {} ({} cues)", s.name, s.cues.len());
            load(state, Some(s));
            notice(state, fx, Level::Info, msg, now);
        }
        Err(e) => notice(
            state,
            fx,
            Level::Error,
            format!("setlist not reloaded, the running list stays: {e}"),
            now,
        ),
    }
}

/// Handles `cue_go`, `cue_next`, `cue_prev` and `cue_jump`.
pub fn on_action(state: &mut AppState, action: &Action, now: Duration, fx: &mut Vec<Effect>) {
    let Some(n) = state.cues.setlist.as_ref().map(|s| s.cues.len()) else {
        notice(
            state,
            fx,
            Level::Warn,
            "no setlist loaded (--setlist FILE)".into(),
            now,
        );
        return;
    };
    match action {
        Action::CueGo => {
            // GO while a launch waits: the performer wants it now.
            if let Some(p) = state.cues.pending.take() {
                fire(state, p.cue, now, fx);
            } else if state.cues.standby < n {
                go(state, state.cues.standby, now, fx);
            } else {
                notice(state, fx, Level::Info, "end of the setlist".into(), now);
            }
        }
        Action::CueNext => state.cues.standby = (state.cues.standby + 1).min(n.saturating_sub(1)),
        Action::CuePrev => state.cues.standby = state.cues.standby.saturating_sub(1),
        Action::CueJump { cue } => match find(state, cue) {
            Some(i) => {
                state.cues.pending = None;
                go(state, i, now, fx);
            }
            None => notice(
                state,
                fx,
                Level::Warn,
                format!("no cue {}", label(cue)),
                now,
            ),
        },
        _ => {}
    }
}

fn label(r: &CueRef) -> String {
    match r {
        CueRef::Number(n) => n.to_string(),
        CueRef::Name(s) => format!("\"{s}\""),
    }
}

fn find(state: &AppState, r: &CueRef) -> Option<usize> {
    let cues = &state.cues.setlist.as_ref()?.cues;
    let number = match r {
        CueRef::Number(n) => Some(*n),
        CueRef::Name(s) => s.trim().parse::<usize>().ok(),
    };
    match (number, r) {
        (Some(n), _) => n.checked_sub(1).filter(|i| *i < cues.len()),
        (None, CueRef::Name(s)) => cues.iter().position(|c| c.name == s.trim()),
        _ => None,
    }
}

/// Arms cue `i` on its launch rule (or fires it when that is now).
fn go(state: &mut AppState, i: usize, now: Duration, fx: &mut Vec<Effect>) {
    let Some(cue) = state.cues.setlist.as_ref().and_then(|s| s.cues.get(i)) else {
        return;
    };
    let c = &state.cues;
    let due = match cue.launch {
        Launch::Now => None,
        Launch::Beat => Some(Due::Beat(c.beat.map_or(0, |b| b + 1))),
        Launch::Bar => Some(Due::Bar(c.bar + 1)),
        Launch::Bars(n) => Some(Due::Bar(next_phrase(c.bar, n))),
        Launch::AtBar(b) if b > c.bar => Some(Due::Bar(b)),
        Launch::AtBar(_) => None,
        Launch::After(d) => Some(Due::At(now + d)),
    };
    match due {
        None => fire(state, i, now, fx),
        Some(due) => {
            state.cues.pending = Some(Pending {
                cue: i,
                due,
                follow: false,
            })
        }
    }
}

/// The first bar after `bar` that starts an `n`-bar phrase (1, 1+n, 1+2n, ...).
fn next_phrase(bar: u64, n: u64) -> u64 {
    let n = n.max(1);
    let next = bar + 1;
    let rem = (next - 1) % n;
    if rem == 0 { next } else { next + (n - rem) }
}

/// Lands cue `i`: theme, prompts, params and actions, in that order; arms its auto-follow.
fn fire(state: &mut AppState, i: usize, now: Duration, fx: &mut Vec<Effect>) {
    let Some(cue) = state
        .cues
        .setlist
        .as_ref()
        .and_then(|s| s.cues.get(i))
        .cloned()
    else {
        return;
    };
    let n = state.cues.setlist.as_ref().map_or(0, |s| s.cues.len());
    state.cues.current = Some(i);
    state.cues.standby = (i + 1).min(n.saturating_sub(1));
    state.cues.pending = None;
    notice(
        state,
        fx,
        Level::Info,
        format!("cue {} {}", i + 1, cue.name),
        now,
    );
    let src = ActionSource::System;
    if let Some(name) = &cue.look {
        let a = Action::RecallLook {
            name: Some(name.clone()),
        };
        crate::update::apply(state, a, src, now, fx);
    }
    if let Some(id) = &cue.theme {
        match state.mapping.themes.iter().position(|t| &t.id == id) {
            Some(index) => crate::update::apply(state, Action::SelectTheme { index }, src, now, fx),
            None => notice(
                state,
                fx,
                Level::Warn,
                format!("cue theme {id} is not loaded"),
                now,
            ),
        }
    }
    match cue.prompts.as_slice() {
        [] => {}
        [(text, w)] if (*w - 1.0).abs() < f64::EPSILON => crate::update::apply(
            state,
            Action::SetPrompt {
                text: text.clone(),
                raw: true,
            },
            src,
            now,
            fx,
        ),
        blend => {
            let value = serde_json::Value::Array(
                blend
                    .iter()
                    .map(|(t, w)| serde_json::json!({ "text": t, "weight": w }))
                    .collect(),
            );
            crate::update::apply(
                state,
                Action::SetParam {
                    key: "prompts".into(),
                    value,
                },
                src,
                now,
                fx,
            );
        }
    }
    for (key, value) in cue.params {
        crate::update::apply(state, Action::SetParam { key, value }, src, now, fx);
    }
    for a in cue.actions {
        crate::update::apply(state, a, src, now, fx);
    }
    if i + 1 < n {
        let due = match cue.follow {
            None => None,
            Some(Follow::Bars(b)) => Some(Due::Bar(state.cues.bar + b)),
            Some(Follow::After(d)) => Some(Due::At(now + d)),
        };
        if let Some(due) = due {
            state.cues.pending = Some(Pending {
                cue: i + 1,
                due,
                follow: true,
            });
        }
    }
}

/// After every message: counts the beat grid and lands a pending cue whose moment came.
/// `beat` is `(count, in_bar)` when the message was a beat.
pub fn advance(
    state: &mut AppState,
    beat: Option<(u64, u32)>,
    now: Duration,
    fx: &mut Vec<Effect>,
) {
    if let Some((count, in_bar)) = beat {
        state.cues.beat = Some(count);
        state.cues.in_bar = in_bar;
        state.cues.last_beat_at = Some(now);
        if in_bar == 0 {
            state.cues.bar += 1;
        }
    }
    let Some(p) = state.cues.pending else {
        return;
    };
    let due = match p.due {
        Due::At(t) => now >= t,
        Due::Beat(c) => beat.is_some() && state.cues.beat.is_some_and(|b| b >= c),
        Due::Bar(b) => beat.is_some_and(|(_, ib)| ib == 0) && state.cues.bar >= b,
    };
    if due {
        state.cues.pending = None;
        fire(state, p.cue, now, fx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::features::AudioEvent;
    use crate::msg::Msg;
    use crate::state::CoreSettings;
    use crate::update::update;

    const LIST: &str = r#"
name = "t"
[[cue]]
name = "intro"
prompt = "fog"
launch = "now"

[[cue]]
name = "drop"
blend = [{ text = "fire", weight = 0.7 }, { text = "ice", weight = 0.3 }]
params = { noise_scale = 0.6 }
follow_bars = 2

[[cue]]
name = "break"
prompt = "rain"
launch = "beat"
follow_secs = 1.5

[[cue]]
name = "end"
actions = ["reset_cache"]
after_secs = 2.0
"#;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn parse(text: &str) -> Result<Setlist, Vec<ConfigError>> {
        let mut e = Vec::new();
        Setlist::from_text("s.toml", "s", text, &[], &["warm"], &mut e).ok_or(e)
    }

    fn state() -> AppState {
        let mut s = AppState::new(CoreSettings::default());
        update(&mut s, Msg::Started, ms(0));
        load(&mut s, Some(parse(LIST).unwrap()));
        s
    }

    fn act(s: &mut AppState, a: Action, t: u64) -> Vec<Effect> {
        update(s, Msg::key(a), ms(t))
    }

    /// Beat `count` at `t` ms, 4/4 with count 0 on a downbeat.
    fn beat(s: &mut AppState, count: u64, t: u64) -> Vec<Effect> {
        let ev = AudioEvent::Beat {
            time: t as f64 / 1000.0,
            count,
            in_bar: (count % 4) as u32,
            bpm: 120.0,
        };
        update(s, Msg::AudioEvent(ev), ms(t))
    }

    fn prompts(s: &AppState) -> serde_json::Value {
        s.params.store.get("prompts").cloned().unwrap_or_default()
    }

    #[test]
    fn a_full_setlist_parses_with_defaults() {
        let l = parse(LIST).unwrap();
        assert_eq!(l.cues.len(), 4);
        assert_eq!(l.cues[0].launch, Launch::Now);
        assert_eq!(l.cues[1].launch, Launch::Bar, "default");
        assert_eq!(l.cues[1].follow, Some(Follow::Bars(2)));
        assert_eq!(l.cues[3].launch, Launch::After(ms(2000)));
        assert_eq!(
            l.cues[1].prompts,
            vec![("fire".into(), 0.7), ("ice".into(), 0.3)]
        );
    }

    #[test]
    fn go_now_fires_at_once_and_moves_standby() {
        let mut s = state();
        act(&mut s, Action::CueGo, 10);
        assert_eq!(s.cues.current, Some(0));
        assert_eq!(s.cues.standby, 1);
        assert_eq!(prompts(&s)[0]["text"], "fog");
    }

    #[test]
    fn go_on_bar_waits_for_the_next_downbeat_then_follows_two_bars_later() {
        let mut s = state();
        beat(&mut s, 0, 0); // bar 1
        act(&mut s, Action::CueGo, 10); // intro, now
        beat(&mut s, 1, 500);
        act(&mut s, Action::CueGo, 600); // drop, next bar
        assert_eq!(s.cues.pending.map(|p| p.due), Some(Due::Bar(2)));
        assert_eq!(s.cues.countdown(4, ms(600)), Some(Countdown::Beats(3)));
        beat(&mut s, 2, 1000);
        beat(&mut s, 3, 1500);
        assert_eq!(s.cues.current, Some(0), "not before the downbeat");
        beat(&mut s, 4, 2000); // bar 2
        assert_eq!(s.cues.current, Some(1));
        assert_eq!(prompts(&s)[1]["text"], "ice");
        assert_eq!(
            s.params.store.get("noise_scale"),
            Some(&serde_json::json!(0.6))
        );
        // Auto-follow: two bars later (bar 4) the break lands by itself.
        assert_eq!(s.cues.pending.map(|p| p.due), Some(Due::Bar(4)));
        for c in 5..12 {
            beat(&mut s, c, 2000 + (c - 4) * 500);
        }
        assert_eq!(s.cues.current, Some(1));
        beat(&mut s, 12, 6000);
        assert_eq!(s.cues.current, Some(2));
        // Its own follow is 1.5 s of engine time, folded at any message.
        update(&mut s, Msg::Tick, ms(7400));
        assert_eq!(s.cues.current, Some(2));
        update(&mut s, Msg::Tick, ms(7500));
        assert_eq!(s.cues.current, Some(3));
        assert_eq!(s.cues.pending, None, "last cue follows nowhere");
    }

    #[test]
    fn launch_on_beat_and_time_offset_and_go_again_forces() {
        let mut s = state();
        s.cues.standby = 2; // break: next beat
        beat(&mut s, 6, 0);
        act(&mut s, Action::CueGo, 100);
        assert_eq!(s.cues.pending.map(|p| p.due), Some(Due::Beat(7)));
        update(&mut s, Msg::Tick, ms(300));
        assert_eq!(s.cues.current, None);
        beat(&mut s, 7, 500);
        assert_eq!(s.cues.current, Some(2));
        // End: 2 s after GO; GO again while it waits lands it at once.
        s.cues.pending = None;
        act(&mut s, Action::CueGo, 1000);
        assert_eq!(
            s.cues.countdown(4, ms(1500)),
            Some(Countdown::Time(ms(1500)))
        );
        act(&mut s, Action::CueGo, 1600);
        assert_eq!(s.cues.current, Some(3));
    }

    #[test]
    fn bars_phrase_and_at_bar_land_on_the_right_downbeat() {
        assert_eq!(next_phrase(0, 4), 1);
        assert_eq!(next_phrase(1, 4), 5);
        assert_eq!(next_phrase(4, 4), 5);
        assert_eq!(next_phrase(5, 8), 9);
        let text = r#"
[[cue]]
name = "a"
prompt = "x"
at_bar = 3
[[cue]]
name = "b"
prompt = "y"
bars = 4
"#;
        let mut s = state();
        load(&mut s, Some(parse(text).unwrap()));
        beat(&mut s, 0, 0);
        act(&mut s, Action::CueGo, 10);
        for c in 1..8 {
            beat(&mut s, c, c * 500);
        }
        assert_eq!(s.cues.current, None, "bar 2 is not bar 3");
        beat(&mut s, 8, 4000);
        assert_eq!((s.cues.bar, s.cues.current), (3, Some(0)));
        act(&mut s, Action::CueGo, 4100); // bars = 4: next phrase starts at bar 5
        assert_eq!(s.cues.pending.map(|p| p.due), Some(Due::Bar(5)));
    }

    #[test]
    fn jump_by_number_and_name_next_prev_and_no_setlist() {
        let mut s = state();
        act(
            &mut s,
            Action::CueJump {
                cue: CueRef::Name("break".into()),
            },
            0,
        );
        assert_eq!(s.cues.pending.map(|p| p.cue), Some(2));
        act(
            &mut s,
            Action::CueJump {
                cue: CueRef::Number(1),
            },
            10,
        );
        assert_eq!(s.cues.current, Some(0));
        act(&mut s, Action::CueNext, 20);
        act(&mut s, Action::CueNext, 30);
        act(&mut s, Action::CueNext, 40);
        act(&mut s, Action::CueNext, 50);
        assert_eq!(s.cues.standby, 3, "clamped at the end");
        act(&mut s, Action::CuePrev, 60);
        assert_eq!(s.cues.standby, 2);
        let fx = act(
            &mut s,
            Action::CueJump {
                cue: CueRef::Name("nope".into()),
            },
            70,
        );
        assert!(fx.iter().any(|e| format!("{e:?}").contains("no cue")));
        let mut empty = AppState::new(CoreSettings::default());
        let fx = act(&mut empty, Action::CueGo, 0);
        assert!(fx.iter().any(|e| format!("{e:?}").contains("no setlist")));
    }

    #[test]
    fn problems_are_located_by_key() {
        let e = parse("[[cue]]\nname = \"a\"\nlaunch = \"soon\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (3, "cue[0].launch"));
        let e = parse("[[cue]]\nname = \"a\"\nprompt = \"x\"\nfollow_bars = 2\n").unwrap_err();
        assert_eq!(e[0].key, "cue[0].follow_bars");
        let e = parse("[[cue]]\nname = \"a\"\nparams = { noise_scale = \"loud\" }\n").unwrap_err();
        assert_eq!(e[0].key, "cue[0].params.noise_scale");
    }

    #[test]
    fn cue_jump_parses_by_number_or_name_from_json() {
        let a: Action = serde_json::from_str(r#"{"action":"cue_jump","cue":3}"#).unwrap();
        assert_eq!(
            a,
            Action::CueJump {
                cue: CueRef::Number(3)
            }
        );
        let a: Action = serde_json::from_str(r#"{"action":"cue_jump","cue":"drop"}"#).unwrap();
        assert_eq!(
            a,
            Action::CueJump {
                cue: CueRef::Name("drop".into())
            }
        );
        assert_eq!(Action::from_name("cue_go").unwrap(), Action::CueGo);
        assert!(Action::from_name("cue_jump").is_err(), "needs a cue");
    }

    #[test]
    fn a_bad_reload_keeps_the_running_list_and_a_good_one_replaces_it() {
        let mut s = state();
        act(&mut s, Action::CueGo, 0);
        let fx = update(
            &mut s,
            Msg::SetlistReloaded(Err("s.toml:3:1: bad".into())),
            ms(10),
        );
        assert!(fx.iter().any(|e| format!("{e:?}").contains("s.toml:3:1")));
        assert_eq!(s.cues.setlist.as_ref().map(|l| l.cues.len()), Some(4));
        assert_eq!(s.cues.current, Some(0));
        let two = "[[cue]]\nname = \"x\"\nprompt = \"y\"\n[[cue]]\nname = \"z\"\nprompt = \"w\"\n";
        update(
            &mut s,
            Msg::SetlistReloaded(Ok(parse(two).unwrap())),
            ms(20),
        );
        assert_eq!(s.cues.setlist.as_ref().map(|l| l.cues.len()), Some(2));
        assert_eq!(
            (s.cues.current, s.cues.standby),
            (None, 0),
            "a new shape starts over"
        );
    }

    #[test]
    fn a_cue_with_a_look_recalls_it_before_its_own_changes() {
        let mut s = state();
        act(
            &mut s,
            Action::SetPrompt {
                text: "from look".into(),
                raw: false,
            },
            0,
        );
        act(
            &mut s,
            Action::SaveLook {
                name: Some("warm".into()),
            },
            5,
        );
        act(
            &mut s,
            Action::SetPrompt {
                text: "other".into(),
                raw: false,
            },
            8,
        );
        let text = "[[cue]]\nname = \"a\"\nlook = \"warm\"\nlaunch = \"now\"\nparams = { noise_scale = 0.2 }\n";
        load(&mut s, Some(parse(text).unwrap()));
        act(&mut s, Action::CueGo, 10);
        assert_eq!(s.params.prompt, "from look");
        assert_eq!(
            s.params.store.get("noise_scale"),
            Some(&serde_json::json!(0.2))
        );
        let e = parse("[[cue]]\nname = \"a\"\nlook = \"cold\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].key.as_str()), (3, "cue[0].look"));
    }
}
