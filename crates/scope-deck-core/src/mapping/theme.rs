//! Generation themes (`themes/*.toml`): what the model is asked to paint and how the music
//! steers it.
//!
//! A theme is data, not code: prompts (lists, weighted blends, a `{persona}` slot and style
//! keywords), parameter defaults and ranges, pipeline hints, mappings (audio feature or MIDI macro
//! → parameter, with curve, smoothing, dead-band and quantisation), triggers (beat, bar, onset,
//! rising level → cache reset, prompt change, nudge) and how theme switches land on the bar.
//! Every file is validated completely: all problems are collected, each with file:line:key.
//! The field reference is docs/themes.md.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::diagnostics::{ConfigError, SourceDoc};
use crate::mapping::curve::Curve;
use crate::params::{ParamKind, ParamStore, ParamValue};

/// The default prompt template: persona, then the prompt, then style keywords.
pub const DEFAULT_TEMPLATE: &str = "{persona} {prompt}, {style}";

/// A theme file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    persona: String,
    #[serde(default)]
    personas: Vec<String>,
    #[serde(default)]
    style: String,
    #[serde(default)]
    template: Option<String>,
    prompts: Vec<toml::Value>,
    #[serde(default)]
    negative_prompt: String,
    #[serde(default = "default_hold_ms")]
    hold_ms: f64,
    #[serde(default)]
    pipeline: RawPipeline,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    ranges: BTreeMap<String, Vec<f64>>,
    #[serde(default)]
    macros: BTreeMap<String, f64>,
    #[serde(default)]
    transition: RawTransition,
    #[serde(default)]
    switch: RawSwitch,
    #[serde(default)]
    beat: RawBeat,
    #[serde(default)]
    mappings: Vec<RawMapping>,
    #[serde(default)]
    triggers: Vec<RawTrigger>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default)]
    pipeline_ids: Vec<String>,
    #[serde(default)]
    load_params: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTransition {
    steps: i64,
    method: String,
}

impl Default for RawTransition {
    fn default() -> Self {
        RawTransition {
            steps: 0,
            method: "linear".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSwitch {
    quantize: String,
    server_quantized: bool,
    lookahead_ms: i64,
    max_wait_ms: i64,
    reset_cache: bool,
}

impl Default for RawSwitch {
    fn default() -> Self {
        RawSwitch {
            quantize: "bar".into(),
            server_quantized: false,
            lookahead_ms: 0,
            max_wait_ms: 8000,
            reset_cache: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBeat {
    forward: bool,
    interval_ms: i64,
}

impl Default for RawBeat {
    fn default() -> Self {
        RawBeat {
            forward: false,
            interval_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    #[serde(default)]
    name: Option<String>,
    source: String,
    target: String,
    #[serde(default)]
    input: Option<Vec<f64>>,
    #[serde(default)]
    output: Option<Vec<f64>>,
    #[serde(default)]
    curve: Option<String>,
    #[serde(default)]
    shape: Option<f64>,
    #[serde(default)]
    invert: bool,
    #[serde(default)]
    attack_ms: f64,
    #[serde(default)]
    release_ms: f64,
    #[serde(default)]
    dead_band: f64,
    #[serde(default)]
    step: Option<f64>,
    #[serde(default)]
    steps: Option<Vec<toml::Value>>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

fn default_hold_ms() -> f64 {
    4000.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    name: Option<String>,
    on: String,
    #[serde(default)]
    every: Option<i64>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    hysteresis: Option<f64>,
    #[serde(default)]
    min_energy: Option<f64>,
    cooldown_ms: f64,
    action: String,
    #[serde(default)]
    prompt: Option<i64>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    amount: Option<f64>,
    #[serde(default)]
    decay_ms: Option<f64>,
    #[serde(default)]
    transition_steps: Option<i64>,
    #[serde(default = "yes")]
    enabled: bool,
}

/// One entry of a theme's prompt list: a single prompt or a weighted blend.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptEntry {
    /// (text, weight) parts; a plain prompt is one part of weight 1.
    pub parts: Vec<(String, f64)>,
}

impl PromptEntry {
    /// Short label for the dashboard (`a` or `a ×0.7 + b ×0.3`).
    pub fn label(&self) -> String {
        match self.parts.as_slice() {
            [(t, _)] => t.clone(),
            parts => parts
                .iter()
                .map(|(t, w)| format!("{t} ×{w}"))
                .collect::<Vec<_>>()
                .join(" + "),
        }
    }
}

/// Where a mapping or rising-level trigger reads its value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Loudness after auto-gain, 0..1.
    Energy,
    /// Normalised spectral centroid, 0..1.
    Brightness,
    /// Spectral flux (onset strength), 0..1.
    Flux,
    /// Bass band, 0..1.
    Bass,
    /// Mid band, 0..1.
    Mid,
    /// High band, 0..1.
    High,
    /// Tempo in BPM.
    Bpm,
    /// Position within the beat, 0..1 (a saw wave locked to the music).
    BeatPhase,
    /// Beat index within the bar, fractional (0..beats per bar).
    BarPosition,
    /// Tempo confidence, 0..1.
    Confidence,
    /// RMS level in dBFS.
    RmsDb,
    /// A named macro set by MIDI or a script (`Action::SetMacro`), 0..1.
    Macro(String),
}

impl Source {
    /// Parses `energy`, `bass`, `macro.intensity`, ...
    pub fn parse(s: &str) -> Option<Source> {
        Some(match s {
            "energy" => Source::Energy,
            "brightness" => Source::Brightness,
            "flux" => Source::Flux,
            "bass" => Source::Bass,
            "mid" => Source::Mid,
            "high" => Source::High,
            "bpm" => Source::Bpm,
            "beat_phase" => Source::BeatPhase,
            "bar_position" => Source::BarPosition,
            "confidence" => Source::Confidence,
            "rms_db" => Source::RmsDb,
            other => {
                let name = other.strip_prefix("macro.")?;
                if name.is_empty() {
                    return None;
                }
                Source::Macro(name.to_string())
            }
        })
    }

    /// The natural input range of this source (what `input` defaults to).
    pub fn default_range(&self) -> (f64, f64) {
        match self {
            Source::Bpm => (60.0, 180.0),
            Source::BarPosition => (0.0, 4.0),
            Source::RmsDb => (-60.0, 0.0),
            _ => (0.0, 1.0),
        }
    }

    /// Name as written in theme files.
    pub fn name(&self) -> String {
        match self {
            Source::Energy => "energy".into(),
            Source::Brightness => "brightness".into(),
            Source::Flux => "flux".into(),
            Source::Bass => "bass".into(),
            Source::Mid => "mid".into(),
            Source::High => "high".into(),
            Source::Bpm => "bpm".into(),
            Source::BeatPhase => "beat_phase".into(),
            Source::BarPosition => "bar_position".into(),
            Source::Confidence => "confidence".into(),
            Source::RmsDb => "rms_db".into(),
            Source::Macro(m) => format!("macro.{m}"),
        }
    }
}

const SOURCES_HELP: &str = "energy, brightness, flux, bass, mid, high, bpm, beat_phase, \
                            bar_position, confidence, rms_db, macro.<name>";

/// How a mapping's output is quantised.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantise {
    /// Continuous (floats).
    None,
    /// Round to multiples of `step` from the low end of the output range (ints use 1).
    Step(f64),
    /// Pick one of these values (e.g. descending denoising step lists); the output range is
    /// split into equal bins, lowest input → first item.
    List(Vec<ParamValue>),
}

/// One mapping: source → target parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Name (for `toggle_mapping` and the dashboard); defaults to `source→target`.
    pub name: String,
    /// What it reads.
    pub source: Source,
    /// Which parameter it drives.
    pub target: String,
    /// Source range that maps onto 0..1 (values outside are clamped).
    pub input: (f64, f64),
    /// Output range of the parameter (defaults to the theme's `ranges` or the parameter's own).
    pub output: (f64, f64),
    /// Response curve.
    pub curve: Curve,
    /// Flip the response (loud → low).
    pub invert: bool,
    /// Time constant while the output rises.
    pub attack: Duration,
    /// Time constant while the output falls.
    pub release: Duration,
    /// Minimum change (fraction of the output range) before a new value is sent.
    pub dead_band: f64,
    /// Quantisation.
    pub quantise: Quantise,
    /// Runs when the theme starts (`toggle_mapping` flips it live).
    pub enabled: bool,
}

/// What makes a trigger fire.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerOn {
    /// Every `every`-th beat (by the tracker's running beat count).
    Beat {
        /// Beat divisor (1 = every beat).
        every: u32,
    },
    /// Every `every`-th bar, on the downbeat.
    Bar {
        /// Bar divisor (1 = every bar).
        every: u32,
    },
    /// An onset at least this strong.
    Onset {
        /// Minimum strength 0..1.
        threshold: f32,
    },
    /// A source rising through `threshold`; re-armed once it falls below
    /// `threshold - hysteresis`.
    Rise {
        /// What is watched.
        source: Source,
        /// Level to rise through.
        threshold: f64,
        /// Re-arm distance below the threshold.
        hysteresis: f64,
    },
}

/// What a trigger does.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerAction {
    /// One-shot `reset_cache`.
    ResetCache,
    /// Next prompt in the theme's list (wrapping).
    NextPrompt {
        /// Crossfade length override (chunks); `None` = the theme's transition.
        steps: Option<u32>,
    },
    /// Previous prompt in the list (wrapping).
    PrevPrompt {
        /// Crossfade length override.
        steps: Option<u32>,
    },
    /// A given prompt of the list.
    Prompt {
        /// 0-based index.
        index: usize,
        /// Crossfade length override.
        steps: Option<u32>,
    },
    /// Push a numeric parameter by `amount` (in its units) and let it decay back.
    Nudge {
        /// Parameter key.
        target: String,
        /// Signed push.
        amount: f64,
        /// Time to decay back to the mapped / default value.
        decay: Duration,
    },
}

/// A trigger: event → action, rate-limited by a cooldown.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Name (for `toggle_mapping` and the activity log).
    pub name: String,
    /// What fires it.
    pub on: TriggerOn,
    /// Only fire when energy is at least this (keeps silence from resetting the picture).
    pub min_energy: Option<f32>,
    /// Minimum time between two firings.
    pub cooldown: Duration,
    /// What it does.
    pub action: TriggerAction,
    /// Runs when the theme starts.
    pub enabled: bool,
}

/// Scope's `transition` crossfade used for prompt and theme changes.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionSpec {
    /// Crossfade length in pipeline chunks; 0 = hard cut (plain `prompts`).
    pub steps: u32,
    /// `linear` or `slerp` (`temporal_interpolation_method`).
    pub method: String,
}

/// Where a quantised change lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizeMode {
    /// At once.
    None,
    /// Next beat.
    Beat,
    /// Next downbeat.
    Bar,
    /// Next downbeat of an even bar.
    TwoBar,
    /// Next downbeat of a bar divisible by four.
    FourBar,
}

impl QuantizeMode {
    /// Wire name (Scope's `quantize_mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            QuantizeMode::None => "none",
            QuantizeMode::Beat => "beat",
            QuantizeMode::Bar => "bar",
            QuantizeMode::TwoBar => "2_bar",
            QuantizeMode::FourBar => "4_bar",
        }
    }

    fn parse(s: &str) -> Option<QuantizeMode> {
        Some(match s {
            "none" => QuantizeMode::None,
            "beat" => QuantizeMode::Beat,
            "bar" => QuantizeMode::Bar,
            "2_bar" => QuantizeMode::TwoBar,
            "4_bar" => QuantizeMode::FourBar,
            _ => return None,
        })
    }

    /// Bars per boundary (0 for none/beat).
    pub fn bars(self) -> u64 {
        match self {
            QuantizeMode::None | QuantizeMode::Beat => 0,
            QuantizeMode::Bar => 1,
            QuantizeMode::TwoBar => 2,
            QuantizeMode::FourBar => 4,
        }
    }
}

/// How switching *to* this theme lands.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchSpec {
    /// Boundary to wait for.
    pub quantize: QuantizeMode,
    /// Send at once with Scope's `_quantized` and let the server wait for the boundary.
    pub server_quantized: bool,
    /// Send this much before the predicted boundary (local) / Scope's `lookahead_ms` (server).
    pub lookahead: Duration,
    /// Land anyway after this long when no beat grid arrives.
    pub max_wait: Duration,
    /// Reset the cache as the theme lands.
    pub reset_cache: bool,
}

/// Beat forwarding to Scope's tempo engine.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatForward {
    /// Send `bpm`, `beat_phase`, `bar_position`, `beat_count`, `is_playing`.
    pub enabled: bool,
    /// Minimum time between two continuous beat-state messages (beats are always sent).
    pub interval: Duration,
}

/// Pipeline and load hints: what this theme was designed for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineHints {
    /// Pipeline ids (`longlive`, `streamdiffusionv2`, ...).
    pub pipeline_ids: Vec<String>,
    /// Load parameters (`width`, `height`, `vace_enabled`, ...), as JSON.
    pub load_params: serde_json::Map<String, ParamValue>,
}

/// A validated theme.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// File stem (how config and actions refer to it).
    pub id: String,
    /// Display name.
    pub name: String,
    /// One line about its mood.
    pub description: String,
    /// Persona used in the template until the performer picks one.
    pub persona: String,
    /// Personas offered for cycling on the dashboard (may be empty).
    pub personas: Vec<String>,
    /// Style keywords appended to every prompt.
    pub style: String,
    /// Prompt template with `{persona}`, `{prompt}` and `{style}`.
    pub template: String,
    /// Prompt list; the first is the starting prompt.
    pub prompts: Vec<PromptEntry>,
    /// Negative prompt, for backends that take one.
    pub negative_prompt: String,
    /// After a performer sets a mapped parameter by hand, its mapping pauses this long and
    /// then glides back from the hand-set value (zero: the mapping wins at once).
    pub hold: Duration,
    /// Pipeline hints.
    pub pipeline: PipelineHints,
    /// Parameter defaults applied when the theme becomes active (validated against the built-in
    /// parameter table).
    pub params: BTreeMap<String, ParamValue>,
    /// Narrower ranges for numeric parameters (mapping outputs and nudges stay inside).
    pub ranges: BTreeMap<String, (f64, f64)>,
    /// Macros this theme reads, with their starting values (0..1).
    pub macros: BTreeMap<String, f32>,
    /// Crossfade for prompt and theme changes.
    pub transition: TransitionSpec,
    /// How switching to this theme lands.
    pub switch: SwitchSpec,
    /// Beat forwarding.
    pub beat: BeatForward,
    /// Continuous mappings.
    pub mappings: Vec<Mapping>,
    /// Triggers.
    pub triggers: Vec<Trigger>,
}

/// Collects errors for one document.
struct Check<'a> {
    doc: &'a SourceDoc,
    errors: &'a mut Vec<ConfigError>,
}

impl Check<'_> {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push(self.doc.error_at(path, msg, None));
    }

    fn duration_ms(&mut self, path: &str, v: f64, max: f64) -> Duration {
        if !v.is_finite() || v < 0.0 || v > max {
            self.err(path, format!("must be from 0 to {max} milliseconds"));
            return Duration::ZERO;
        }
        Duration::from_secs_f64(v / 1000.0)
    }

    fn pair(&mut self, path: &str, v: &[f64]) -> Option<(f64, f64)> {
        match v {
            [a, b] if a.is_finite() && b.is_finite() && a != b => Some((*a, *b)),
            [_, _] => {
                self.err(path, "needs two different finite numbers [low, high]");
                None
            }
            _ => {
                self.err(path, "needs exactly two numbers [low, high]");
                None
            }
        }
    }
}

fn to_json(v: &toml::Value) -> Result<ParamValue, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

impl Theme {
    /// Parses and validates one theme file; `None` with errors pushed when it is invalid.
    pub fn from_text(
        name: &str,
        stem: &str,
        text: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Theme> {
        let (doc, raw) = SourceDoc::load::<RawTheme>(name, text, errors)?;
        let before = errors.len();
        let mut c = Check { doc: &doc, errors };
        let store = ParamStore::new();
        if raw.name.trim().is_empty() {
            c.err("name", "must not be empty");
        }

        // Prompts.
        let template = raw
            .template
            .clone()
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        check_template(&mut c, &template);
        let prompts = check_prompts(&mut c, &raw.prompts);
        for (i, p) in raw.personas.iter().enumerate() {
            if p.trim().is_empty() {
                c.err(&format!("personas[{i}]"), "must not be empty");
            }
        }

        let hold = c.duration_ms("hold_ms", raw.hold_ms, 600000.0);

        // Pipeline hints.
        let mut pipeline = PipelineHints::default();
        for (i, id) in raw.pipeline.pipeline_ids.iter().enumerate() {
            if id.trim().is_empty() {
                c.err(&format!("pipeline.pipeline_ids[{i}]"), "must not be empty");
            }
        }
        pipeline.pipeline_ids = raw.pipeline.pipeline_ids.clone();
        for (k, v) in &raw.pipeline.load_params {
            match to_json(v) {
                Ok(j) => {
                    pipeline.load_params.insert(k.clone(), j);
                }
                Err(e) => c.err(&format!("pipeline.load_params.{k}"), e),
            }
        }

        // Parameter defaults.
        let mut params = BTreeMap::new();
        for (k, v) in &raw.params {
            let path = format!("params.{k}");
            let json = match to_json(v) {
                Ok(j) => j,
                Err(e) => {
                    c.err(&path, format!("cannot be used as a parameter: {e}"));
                    continue;
                }
            };
            match store.spec(k) {
                None => c.err(&path, "not a known Scope parameter"),
                Some(spec) if spec.one_shot => c.err(&path, "is a one-shot trigger, not a default"),
                Some(_) if k == "prompts" || k == "transition" => c.err(
                    &path,
                    "is set by the theme's `prompts` and `transition`, not a default",
                ),
                Some(spec) => match spec.accept(&json) {
                    Ok(acc) if acc.clamped => c.err(
                        &path,
                        match spec.range() {
                            Some((lo, hi)) => format!("out of range {lo}..{hi}"),
                            None => "out of range or not in descending order".to_string(),
                        },
                    ),
                    Ok(acc) => {
                        params.insert(k.clone(), acc.value);
                    }
                    Err(e) => c.err(&path, e.to_string()),
                },
            }
        }

        // Ranges.
        let mut ranges = BTreeMap::new();
        for (k, v) in &raw.ranges {
            let path = format!("ranges.{k}");
            let Some((lo, hi)) = c.pair(&path, v) else {
                continue;
            };
            match store.spec(k).and_then(|s| numeric_range(&s.kind)) {
                None => c.err(&path, "not a known numeric Scope parameter"),
                Some((slo, shi)) => {
                    if lo > hi {
                        c.err(&path, "low must be below high");
                    } else if lo < slo || hi > shi {
                        c.err(&path, format!("outside the parameter's range {slo}..{shi}"));
                    } else {
                        ranges.insert(k.clone(), (lo, hi));
                    }
                }
            }
        }
        for (k, v) in &params {
            if let (Some((lo, hi)), Some(x)) = (ranges.get(k), v.as_f64()) {
                if x < *lo || x > *hi {
                    c.err(
                        &format!("params.{k}"),
                        format!("default outside the theme's range {lo}..{hi}"),
                    );
                }
            }
        }

        // Macros.
        let mut macros = BTreeMap::new();
        for (k, v) in &raw.macros {
            if !(0.0..=1.0).contains(v) {
                c.err(&format!("macros.{k}"), "macro values are 0..1");
            } else {
                macros.insert(k.clone(), *v as f32);
            }
        }

        // Transition, switch, beat forwarding.
        let transition = TransitionSpec {
            steps: check_steps(&mut c, "transition.steps", raw.transition.steps),
            method: check_method(&mut c, "transition.method", &raw.transition.method),
        };
        let quantize = QuantizeMode::parse(&raw.switch.quantize).unwrap_or_else(|| {
            c.err(
                "switch.quantize",
                "must be one of none, beat, bar, 2_bar, 4_bar",
            );
            QuantizeMode::Bar
        });
        let switch = SwitchSpec {
            quantize,
            server_quantized: raw.switch.server_quantized,
            lookahead: c.duration_ms(
                "switch.lookahead_ms",
                raw.switch.lookahead_ms as f64,
                2000.0,
            ),
            max_wait: c.duration_ms("switch.max_wait_ms", raw.switch.max_wait_ms as f64, 60000.0),
            reset_cache: raw.switch.reset_cache,
        };
        if switch.server_quantized && quantize == QuantizeMode::None {
            c.err(
                "switch.server_quantized",
                "needs a quantize boundary (beat, bar, 2_bar or 4_bar)",
            );
        }
        let beat = BeatForward {
            enabled: raw.beat.forward,
            interval: c.duration_ms("beat.interval_ms", raw.beat.interval_ms as f64, 5000.0),
        };
        if beat.enabled && beat.interval < Duration::from_millis(16) {
            c.err(
                "beat.interval_ms",
                "at least 16 ms (the transport sends at most 60 messages a second)",
            );
        }

        // Mappings.
        let mut mappings = Vec::new();
        let mut names = BTreeSet::new();
        let mut driven: BTreeMap<String, usize> = BTreeMap::new();
        for (i, m) in raw.mappings.iter().enumerate() {
            if let Some(mp) = check_mapping(&mut c, &store, &ranges, &macros, i, m) {
                let p = format!("mappings[{i}]");
                if !names.insert(mp.name.clone()) {
                    c.err(
                        &format!("{p}.name"),
                        format!("duplicate name `{}`", mp.name),
                    );
                }
                if let Some(j) = driven.insert(mp.target.clone(), i) {
                    c.err(
                        &format!("{p}.target"),
                        format!("`{}` is already driven by mappings[{j}]", mp.target),
                    );
                }
                mappings.push(mp);
            }
        }

        if beat.enabled {
            for (i, m) in raw.mappings.iter().enumerate() {
                if matches!(
                    m.target.as_str(),
                    "bpm" | "beat_phase" | "bar_position" | "beat_count" | "is_playing"
                ) {
                    c.err(
                        &format!("mappings[{i}].target"),
                        format!("`{}` is sent by beat forwarding ([beat] forward)", m.target),
                    );
                }
            }
        }

        // Triggers.
        let mut triggers = Vec::new();
        for (i, t) in raw.triggers.iter().enumerate() {
            if let Some(tr) = check_trigger(&mut c, &store, &macros, prompts.len(), i, t) {
                if !names.insert(tr.name.clone()) {
                    c.err(
                        &format!("triggers[{i}].name"),
                        format!("duplicate name `{}`", tr.name),
                    );
                }
                triggers.push(tr);
            }
        }

        (errors.len() == before).then(|| Theme {
            id: stem.to_string(),
            name: raw.name,
            description: raw.description,
            persona: raw.persona.trim().to_string(),
            personas: raw.personas,
            style: raw.style.trim().to_string(),
            template,
            prompts,
            negative_prompt: raw.negative_prompt,
            hold,
            pipeline,
            params,
            ranges,
            macros,
            transition,
            switch,
            beat,
            mappings,
            triggers,
        })
    }

    /// The output range a mapping or nudge of `key` must stay in.
    pub fn range_of(&self, key: &str, store: &ParamStore) -> Option<(f64, f64)> {
        self.ranges
            .get(key)
            .copied()
            .or_else(|| store.spec(key).and_then(|s| numeric_range(&s.kind)))
    }
}

/// Numeric range of a parameter kind (ints and floats; `DescendingInts` have no scalar range).
fn numeric_range(kind: &ParamKind) -> Option<(f64, f64)> {
    match kind {
        ParamKind::Float { min, max } => Some((*min, *max)),
        ParamKind::Int { min, max } => Some((*min as f64, *max as f64)),
        _ => None,
    }
}

fn check_template(c: &mut Check<'_>, t: &str) {
    if !t.contains("{prompt}") {
        c.err("template", "must contain {prompt}");
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            c.err("template", "unclosed `{`");
            return;
        };
        let word = &after[..close];
        if !matches!(word, "persona" | "prompt" | "style") {
            c.err(
                "template",
                format!("unknown placeholder {{{word}}} (use {{persona}}, {{prompt}}, {{style}})"),
            );
        }
        rest = &after[close + 1..];
    }
}

fn check_prompts(c: &mut Check<'_>, raw: &[toml::Value]) -> Vec<PromptEntry> {
    if raw.is_empty() {
        c.err("prompts", "needs at least one prompt");
    }
    let mut out = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let path = format!("prompts[{i}]");
        match v {
            toml::Value::String(s) if s.trim().is_empty() => c.err(&path, "must not be empty"),
            toml::Value::String(s) => out.push(PromptEntry {
                parts: vec![(s.trim().to_string(), 1.0)],
            }),
            toml::Value::Table(t) => {
                let Some(toml::Value::Array(items)) = t.get("blend") else {
                    c.err(
                        &path,
                        "a prompt is a string or { blend = [{ text = \"..\", weight = 0.5 }, ..] }",
                    );
                    continue;
                };
                if let Some(k) = t.keys().find(|k| *k != "blend") {
                    c.err(&format!("{path}.{k}"), "unknown field (only `blend`)");
                }
                let mut parts = Vec::new();
                for (j, it) in items.iter().enumerate() {
                    let pp = format!("{path}.blend[{j}]");
                    let text = it.get("text").and_then(|x| x.as_str());
                    let weight = it
                        .get("weight")
                        .and_then(|x| x.as_float().or_else(|| x.as_integer().map(|i| i as f64)));
                    match (text, weight) {
                        (Some(t), Some(w)) if !t.trim().is_empty() && w > 0.0 && w.is_finite() => {
                            parts.push((t.trim().to_string(), w))
                        }
                        (Some(_), Some(_)) => c.err(
                            &pp,
                            "text must not be empty and weight must be a positive number",
                        ),
                        _ => c.err(&pp, "needs text = \"..\" and weight = <number>"),
                    }
                }
                if items.len() < 2 {
                    c.err(&format!("{path}.blend"), "a blend needs at least two parts");
                } else if parts.len() == items.len() {
                    out.push(PromptEntry { parts });
                }
            }
            _ => c.err(&path, "a prompt is a string or a { blend = [...] } table"),
        }
    }
    out
}

fn check_steps(c: &mut Check<'_>, path: &str, v: i64) -> u32 {
    if !(0..=64).contains(&v) {
        c.err(path, "must be from 0 (hard cut) to 64 chunks");
        return 0;
    }
    v as u32
}

fn check_method(c: &mut Check<'_>, path: &str, v: &str) -> String {
    if !matches!(v, "linear" | "slerp") {
        c.err(path, "must be linear or slerp");
    }
    v.to_string()
}

fn check_source(
    c: &mut Check<'_>,
    path: &str,
    s: &str,
    macros: &BTreeMap<String, f32>,
) -> Option<Source> {
    match Source::parse(s) {
        None => {
            c.err(path, format!("unknown source (use {SOURCES_HELP})"));
            None
        }
        Some(Source::Macro(m)) if !macros.contains_key(&m) => {
            c.err(
                path,
                format!("macro `{m}` is not declared in [macros] (declare it with a start value)"),
            );
            None
        }
        Some(s) => Some(s),
    }
}

fn check_mapping(
    c: &mut Check<'_>,
    store: &ParamStore,
    ranges: &BTreeMap<String, (f64, f64)>,
    macros: &BTreeMap<String, f32>,
    i: usize,
    m: &RawMapping,
) -> Option<Mapping> {
    let p = format!("mappings[{i}]");
    let before = c.errors.len();
    let source = check_source(c, &format!("{p}.source"), &m.source, macros);
    let spec = store.spec(&m.target);
    let tpath = format!("{p}.target");
    let mut output = None;
    let mut quantise = Quantise::None;
    match spec.map(|s| (&s.kind, s.one_shot)) {
        None => c.err(&tpath, "not a known Scope parameter"),
        Some((_, true)) => c.err(&tpath, "is a one-shot: drive it with a trigger instead"),
        Some((ParamKind::Float { .. } | ParamKind::Int { .. }, _)) => {
            let (slo, shi) = ranges
                .get(&m.target)
                .copied()
                .or_else(|| spec.and_then(|s| numeric_range(&s.kind)))
                .unwrap_or((0.0, 1.0));
            output = Some((slo, shi));
            if let Some(o) = &m.output {
                if let Some((lo, hi)) = c.pair(&format!("{p}.output"), o) {
                    let (a, b) = (lo.min(hi), lo.max(hi));
                    if a < slo || b > shi {
                        c.err(
                            &format!("{p}.output"),
                            format!("outside the range of `{}`: {slo}..{shi}", m.target),
                        );
                    }
                    output = Some((lo, hi));
                }
            }
            if matches!(spec.map(|s| &s.kind), Some(ParamKind::Int { .. })) {
                quantise = Quantise::Step(1.0);
            }
            if let Some(st) = m.step {
                let width = output.map_or(1.0, |(a, b)| (b - a).abs());
                if !(st > 0.0 && st.is_finite() && st <= width) {
                    c.err(
                        &format!("{p}.step"),
                        "must be a positive number no larger than the output range",
                    );
                } else {
                    quantise = Quantise::Step(st);
                }
            }
            if m.steps.is_some() {
                c.err(
                    &format!("{p}.steps"),
                    "a list of values is for list parameters (denoising_step_list); use step",
                );
            }
        }
        Some((kind @ ParamKind::DescendingInts { .. }, _)) => {
            output = Some((0.0, 1.0));
            match &m.steps {
                None => c.err(
                    &p,
                    format!(
                        "`{}` takes a list: give steps = [[..], [..]] to choose from",
                        m.target
                    ),
                ),
                Some(list) if list.len() < 2 => {
                    c.err(&format!("{p}.steps"), "needs at least two choices")
                }
                Some(list) => {
                    let spec = spec.cloned();
                    let mut vals = Vec::new();
                    for (j, v) in list.iter().enumerate() {
                        let sp = format!("{p}.steps[{j}]");
                        let ok = v.as_array().is_some_and(|a| {
                            !a.is_empty()
                                && a.iter().all(|x| x.as_integer().is_some())
                                && a.windows(2).all(|w| {
                                    w[0].as_integer().unwrap_or(0) > w[1].as_integer().unwrap_or(0)
                                })
                        });
                        if !ok {
                            c.err(
                                &sp,
                                "must be a non-empty list of integers in strictly descending order",
                            );
                            continue;
                        }
                        let Ok(j) = to_json(v) else { continue };
                        match spec.as_ref().map(|s| s.accept(&j)) {
                            Some(Ok(acc)) if !acc.clamped => vals.push(acc.value),
                            _ => {
                                let (lo, hi) = match kind {
                                    ParamKind::DescendingInts { min, max } => (*min, *max),
                                    _ => (0, 0),
                                };
                                c.err(&sp, format!("items must be within {lo}..{hi}"))
                            }
                        }
                    }
                    quantise = Quantise::List(vals);
                }
            }
            if m.output.is_some() || m.step.is_some() {
                c.err(
                    &format!("{p}.output"),
                    "list parameters choose from `steps`; output and step do not apply",
                );
            }
        }
        Some(_) => c.err(
            &tpath,
            format!("`{}` is not numeric and cannot be mapped", m.target),
        ),
    }
    let input = match &m.input {
        Some(v) => c.pair(&format!("{p}.input"), v),
        None => source.as_ref().map(Source::default_range),
    };
    let curve = match Curve::parse(m.curve.as_deref().unwrap_or("linear"), m.shape) {
        Ok(cv) => cv,
        Err(e) => {
            let k = if m.curve.is_some() && !e.contains("shape") {
                "curve"
            } else {
                "shape"
            };
            c.err(&format!("{p}.{k}"), e);
            Curve::Linear
        }
    };
    let attack = c.duration_ms(&format!("{p}.attack_ms"), m.attack_ms, 60000.0);
    let release = c.duration_ms(&format!("{p}.release_ms"), m.release_ms, 60000.0);
    if !(0.0..0.5).contains(&m.dead_band) {
        c.err(
            &format!("{p}.dead_band"),
            "is a fraction of the output range: 0 to below 0.5",
        );
    }
    if c.errors.len() != before {
        return None;
    }
    let source = source?;
    let name = m
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{}→{}", source.name(), m.target));
    Some(Mapping {
        name,
        source,
        target: m.target.clone(),
        input: input?,
        output: output?,
        curve,
        invert: m.invert,
        attack,
        release,
        dead_band: m.dead_band,
        quantise,
        enabled: m.enabled,
    })
}

fn check_trigger(
    c: &mut Check<'_>,
    store: &ParamStore,
    macros: &BTreeMap<String, f32>,
    n_prompts: usize,
    i: usize,
    t: &RawTrigger,
) -> Option<Trigger> {
    let p = format!("triggers[{i}]");
    let before = c.errors.len();
    let every = match t.every {
        None => 1,
        Some(n) if (1..=64).contains(&n) => n as u32,
        Some(_) => {
            c.err(&format!("{p}.every"), "must be from 1 to 64");
            1
        }
    };
    let on = match t.on.as_str() {
        "beat" => Some(TriggerOn::Beat { every }),
        "bar" => Some(TriggerOn::Bar { every }),
        "onset" => {
            let th = t.threshold.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&th) {
                c.err(&format!("{p}.threshold"), "onset strength is 0..1");
            }
            Some(TriggerOn::Onset {
                threshold: th as f32,
            })
        }
        "rise" => {
            let src = check_source(
                c,
                &format!("{p}.source"),
                t.source.as_deref().unwrap_or("energy"),
                macros,
            );
            let Some(th) = t.threshold.filter(|x| x.is_finite()) else {
                c.err(
                    &format!("{p}.threshold"),
                    "a rise trigger needs a threshold",
                );
                return None;
            };
            let hy = t.hysteresis.unwrap_or(0.05);
            if !(hy >= 0.0 && hy.is_finite()) {
                c.err(&format!("{p}.hysteresis"), "must be zero or positive");
            }
            src.map(|source| TriggerOn::Rise {
                source,
                threshold: th,
                hysteresis: hy,
            })
        }
        _ => {
            c.err(&format!("{p}.on"), "must be one of beat, bar, onset, rise");
            None
        }
    };
    if t.every.is_some() && !matches!(t.on.as_str(), "beat" | "bar") {
        c.err(&format!("{p}.every"), "only beat and bar triggers count");
    }
    if t.source.is_some() && t.on != "rise" {
        c.err(&format!("{p}.source"), "only rise triggers read a source");
    }
    if let Some(me) = t.min_energy {
        if !(0.0..=1.0).contains(&me) {
            c.err(&format!("{p}.min_energy"), "energy is 0..1");
        }
    }
    let cooldown = c.duration_ms(&format!("{p}.cooldown_ms"), t.cooldown_ms, 600000.0);
    let steps = t
        .transition_steps
        .map(|s| check_steps(c, &format!("{p}.transition_steps"), s));
    let action = match t.action.as_str() {
        "reset_cache" => Some(TriggerAction::ResetCache),
        "next_prompt" => Some(TriggerAction::NextPrompt { steps }),
        "prev_prompt" => Some(TriggerAction::PrevPrompt { steps }),
        "prompt" => match t.prompt {
            Some(ix) if ix >= 0 && (ix as usize) < n_prompts => Some(TriggerAction::Prompt {
                index: ix as usize,
                steps,
            }),
            Some(_) => {
                c.err(
                    &format!("{p}.prompt"),
                    format!("no such prompt: the theme has {n_prompts} (0-based index)"),
                );
                None
            }
            None => {
                c.err(&p, "action `prompt` needs prompt = <index>");
                None
            }
        },
        "nudge" => {
            let target = t.target.clone().unwrap_or_default();
            let range = store.spec(&target).and_then(|s| numeric_range(&s.kind));
            if t.target.is_none() {
                c.err(&p, "action `nudge` needs target = \"<parameter>\"");
            } else if range.is_none() {
                c.err(
                    &format!("{p}.target"),
                    "not a known numeric Scope parameter",
                );
            }
            let amount = t.amount.unwrap_or(0.0);
            if amount == 0.0 || !amount.is_finite() {
                c.err(&format!("{p}.amount"), "a nudge needs a non-zero amount");
            }
            let decay = c.duration_ms(
                &format!("{p}.decay_ms"),
                t.decay_ms.unwrap_or(500.0),
                60000.0,
            );
            Some(TriggerAction::Nudge {
                target,
                amount,
                decay,
            })
        }
        _ => {
            c.err(
                &format!("{p}.action"),
                "must be one of reset_cache, next_prompt, prev_prompt, prompt, nudge",
            );
            None
        }
    };
    if t.prompt.is_some() && t.action != "prompt" {
        c.err(&format!("{p}.prompt"), "only used by action `prompt`");
    }
    if (t.target.is_some() || t.amount.is_some() || t.decay_ms.is_some()) && t.action != "nudge" {
        c.err(
            &p,
            "target, amount and decay_ms are only used by action `nudge`",
        );
    }
    if matches!(action, Some(TriggerAction::ResetCache)) && t.cooldown_ms < 250.0 {
        c.err(
            &format!("{p}.cooldown_ms"),
            "cache resets need a cooldown of at least 250 ms so a busy track cannot thrash the model",
        );
    }
    if matches!(
        action,
        Some(
            TriggerAction::NextPrompt { .. }
                | TriggerAction::PrevPrompt { .. }
                | TriggerAction::Prompt { .. }
        )
    ) && t.cooldown_ms < 500.0
    {
        c.err(
            &format!("{p}.cooldown_ms"),
            "prompt changes need a cooldown of at least 500 ms (a crossfade needs time to land)",
        );
    }
    if c.errors.len() != before {
        return None;
    }
    let (on, action) = (on?, action?);
    let name = t
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{}→{}", t.on, t.action));
    Some(Trigger {
        name,
        on,
        min_energy: t.min_energy.map(|x| x as f32),
        cooldown,
        action,
        enabled: t.enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs_of(text: &str) -> Vec<(usize, String)> {
        let mut errs = Vec::new();
        assert!(
            Theme::from_text("t.toml", "t", text, &mut errs).is_none(),
            "should be invalid"
        );
        let mut keys: Vec<_> = errs.iter().map(|e| (e.line, e.key.clone())).collect();
        keys.sort();
        keys
    }

    #[test]
    fn params_are_checked_against_the_parameter_table() {
        let t = "name = \"x\"\nprompts = [\"a\"]\n[params]\nnoise_scale = 4.0\nwarp = 1\nreset_cache = true\n";
        assert_eq!(
            errs_of(t),
            vec![
                (4, "params.noise_scale".into()),
                (5, "params.warp".into()),
                (6, "params.reset_cache".into())
            ]
        );
    }

    #[test]
    fn a_full_theme_parses() {
        let t = r#"
name = "Full"
persona = "androgynous"
personas = ["androgynous", "female", "male"]
style = "neon, sparkle"
prompts = ["a", { blend = [{ text = "b", weight = 0.7 }, { text = "c", weight = 0.3 }] }]
[pipeline]
pipeline_ids = ["longlive"]
load_params = { width = 512, height = 512 }
[params]
noise_scale = 0.5
[ranges]
noise_scale = [0.3, 0.9]
[macros]
intensity = 0.5
[transition]
steps = 8
method = "slerp"
[switch]
quantize = "2_bar"
server_quantized = true
lookahead_ms = 120
[beat]
forward = true
[[mappings]]
source = "energy"
target = "noise_scale"
curve = "s_curve"
attack_ms = 40
release_ms = 400
dead_band = 0.02
[[mappings]]
name = "steps"
source = "macro.intensity"
target = "denoising_step_list"
steps = [[1000, 750], [1000, 750, 500, 250]]
[[triggers]]
on = "bar"
every = 2
cooldown_ms = 1000
action = "reset_cache"
[[triggers]]
name = "bump"
on = "onset"
threshold = 0.8
cooldown_ms = 100
action = "nudge"
target = "noise_scale"
amount = 0.1
"#;
        let mut errs = Vec::new();
        let th =
            Theme::from_text("f.toml", "f", t, &mut errs).unwrap_or_else(|| panic!("{errs:?}"));
        assert_eq!(th.prompts[1].parts.len(), 2);
        assert_eq!(th.mappings[0].output, (0.3, 0.9));
        assert_eq!(th.mappings[0].name, "energy→noise_scale");
        assert!(matches!(&th.mappings[1].quantise, Quantise::List(v) if v.len() == 2));
        assert_eq!(th.switch.quantize, QuantizeMode::TwoBar);
        assert_eq!(th.triggers[0].on, TriggerOn::Bar { every: 2 });
        assert_eq!(th.pipeline.load_params["width"], serde_json::json!(512));
    }

    #[test]
    fn all_mapping_problems_are_collected_with_keys() {
        let t = r#"name = "x"
prompts = ["a"]
[[mappings]]
source = "loudness"
target = "noise_scale"
curve = "wobbly"
[[mappings]]
source = "energy"
target = "denoising_step_list"
steps = [[250, 500], [1000]]
[[triggers]]
on = "beat"
cooldown_ms = 10
action = "reset_cache"
"#;
        assert_eq!(
            errs_of(t),
            vec![
                (4, "mappings[0].source".into()),
                (6, "mappings[0].curve".into()),
                (10, "mappings[1].steps[0]".into()),
                (13, "triggers[0].cooldown_ms".into()),
            ]
        );
    }
}
