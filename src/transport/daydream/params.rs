//! From scope-deck's parameter keys to Daydream's, and which changes may go out live.
//!
//! Daydream changes `prompt` (and weighted prompt lists), `guidance_scale`, `delta`,
//! `num_inference_steps`, `t_index_list`, `seed` and each ControlNet's `conditioning_scale`
//! without reloading; anything else reloads the pipeline for ~30 s, so during a show such a change
//! is held and refused until the performer confirms it (`confirm_reload`). Keys this backend has
//! no equivalent for (`paused`, `reset_cache`, VACE, LoRA, tempo...) are reported once each,
//! never silently dropped. Pure: no I/O, no clock.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::core::params::{ParamKind, ParamSpec};
use crate::transport::daydream::preset::{
    CONTROLNET_SCALE_MAX, SIZE_RANGE, T_INDEX_MAX_ENTRIES, check_params_json, check_t_index_list,
};

/// Daydream keys that change without a pipeline reload (plus ControlNet scales).
pub(crate) const DYNAMIC_KEYS: &[&str] = &[
    "prompt",
    "guidance_scale",
    "delta",
    "num_inference_steps",
    "t_index_list",
    "seed",
];

/// The one-shot key that confirms held reloading changes.
pub(crate) const CONFIRM_KEY: &str = "confirm_reload";

/// Prefix of the per-ControlNet scale keys (`controlnet_scale_0`, ...).
pub(crate) const CONTROLNET_PREFIX: &str = "controlnet_scale_";

/// Whether a Daydream key changes live or reloads the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Live.
    Dynamic,
    /// ~30 s reload.
    Reload,
}

/// Classifies a Daydream parameter key. `controlnets` is dynamic only when nothing but the
/// scales differ (see [`controlnets_change`]).
pub(crate) fn classify(dd_key: &str) -> Change {
    if DYNAMIC_KEYS.contains(&dd_key) {
        Change::Dynamic
    } else {
        Change::Reload
    }
}

/// Whether replacing `old` ControlNets by `new` is live (only `conditioning_scale` differs).
pub(crate) fn controlnets_change(old: &Value, new: &Value) -> Change {
    let strip = |v: &Value| -> Value {
        match v {
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|c| {
                        let mut c = c.clone();
                        if let Some(o) = c.as_object_mut() {
                            o.remove("conditioning_scale");
                        }
                        c
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    };
    if strip(old) == strip(new) {
        Change::Dynamic
    } else {
        Change::Reload
    }
}

/// Keeps only what may be PATCHed live: the dynamic keys, and `controlnets` when only scales
/// changed relative to `current`. Returns (live, held-for-reload).
#[cfg(test)]
pub(crate) fn split_dynamic(
    params: &Map<String, Value>,
    current: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut live = Map::new();
    let mut held = Map::new();
    for (k, v) in params {
        let change = if k == "controlnets" {
            controlnets_change(current.get(k).unwrap_or(&Value::Null), v)
        } else {
            classify(k)
        };
        match change {
            Change::Dynamic => live.insert(k.clone(), v.clone()),
            Change::Reload => held.insert(k.clone(), v.clone()),
        };
    }
    (live, held)
}

/// What one scope-deck key/value means here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mapped {
    /// Daydream keys and values.
    Set(Vec<(String, Value)>),
    /// Scale of ControlNet `index`.
    ControlnetScale {
        /// Index in the preset's list.
        index: usize,
        /// New scale.
        value: f64,
    },
    /// Apply held reloading changes.
    Confirm,
    /// This backend has no such parameter.
    Unsupported(String),
    /// The value cannot be used (why).
    Invalid(String),
}

/// Maps a scope-deck key; `steps` is the stream's current `num_inference_steps` (to convert
/// Scope's `denoising_step_list`), `controlnets` how many ControlNets the preset has.
pub(crate) fn map_key(key: &str, value: &Value, steps: i64, controlnets: usize) -> Mapped {
    let num = |v: &Value| v.as_f64().filter(|f| f.is_finite());
    match key {
        "prompts" => match prompts_to_daydream(value) {
            Some(p) => Mapped::Set(vec![("prompt".into(), p)]),
            None => Mapped::Invalid("expects a non-empty list of {text, weight}".into()),
        },
        "prompt" => match value.as_str().filter(|s| !s.trim().is_empty()) {
            Some(s) => Mapped::Set(vec![("prompt".into(), json!(s))]),
            None => Mapped::Invalid("expects non-empty text".into()),
        },
        "noise_scale" => match num(value) {
            Some(f) => Mapped::Set(vec![("delta".into(), json!(f.clamp(0.0, 1.0)))]),
            None => Mapped::Invalid("expects a number".into()),
        },
        "denoising_step_list" => match step_list_to_t_index(value, steps) {
            Some(t) if t.len() > T_INDEX_MAX_ENTRIES => Mapped::Invalid(format!(
                "Daydream takes at most {T_INDEX_MAX_ENTRIES} timesteps (t_index_list); got {}, not sent",
                t.len()
            )),
            Some(t) => Mapped::Set(vec![("t_index_list".into(), json!(t))]),
            None => Mapped::Invalid("expects a list of timesteps 0..1000".into()),
        },
        "delta" | "guidance_scale" | "similar_image_filter_threshold" => match num(value) {
            Some(f) => {
                let hi = if key == "guidance_scale" { 20.0 } else { 1.0 };
                Mapped::Set(vec![(key.into(), json!(f.clamp(0.0, hi)))])
            }
            None => Mapped::Invalid("expects a number".into()),
        },
        "seed" => match num(value) {
            Some(f) if f >= 0.0 => Mapped::Set(vec![(key.into(), json!(f.round() as i64))]),
            _ => Mapped::Invalid("expects a non-negative integer".into()),
        },
        "num_inference_steps" => match num(value) {
            Some(f) => Mapped::Set(vec![(key.into(), json!((f.round() as i64).clamp(1, 100)))]),
            None => Mapped::Invalid("expects an integer".into()),
        },
        "t_index_list" => {
            let list: Option<Vec<i64>> = value
                .as_array()
                .and_then(|a| a.iter().map(|x| x.as_i64()).collect());
            match list {
                Some(l) => match check_t_index_list(&l, steps) {
                    Ok(()) => Mapped::Set(vec![(key.into(), json!(l))]),
                    Err(why) => Mapped::Invalid(why),
                },
                None => Mapped::Invalid("expects a list of integers".into()),
            }
        }
        "width" | "height" => match num(value) {
            Some(f) => {
                let v =
                    ((f / 64.0).round() as i64 * 64).clamp(*SIZE_RANGE.start(), *SIZE_RANGE.end());
                Mapped::Set(vec![(key.into(), json!(v))])
            }
            None => Mapped::Invalid("expects an integer".into()),
        },
        "negative_prompt" | "prompt_interpolation_method" | "seed_interpolation_method" => {
            match value.as_str() {
                Some(s) => Mapped::Set(vec![(key.into(), json!(s))]),
                None => Mapped::Invalid("expects text".into()),
            }
        }
        "enable_similar_image_filter" | "do_add_noise" | "use_denoising_batch" => {
            match value.as_bool() {
                Some(b) => Mapped::Set(vec![(key.into(), json!(b))]),
                None => Mapped::Invalid("expects true or false".into()),
            }
        }
        CONFIRM_KEY => Mapped::Confirm,
        k if k.starts_with(CONTROLNET_PREFIX) => {
            match k[CONTROLNET_PREFIX.len()..].parse::<usize>() {
                Ok(i) if i < controlnets => match num(value) {
                    Some(f) if (0.0..=CONTROLNET_SCALE_MAX).contains(&f) => {
                        Mapped::ControlnetScale { index: i, value: f }
                    }
                    Some(f) => Mapped::Invalid(format!(
                        "ControlNet conditioning_scale {f} is out of range: Daydream accepts 0 to 1 (its API answers 400 above 1); not sent"
                    )),
                    None => Mapped::Invalid("expects a number".into()),
                },
                _ => Mapped::Unsupported(format!(
                    "the preset has {controlnets} ControlNets (controlnet_scale_0..{})",
                    controlnets.saturating_sub(1)
                )),
            }
        }
        other => Mapped::Unsupported(format!(
            "Daydream's StreamDiffusion has no `{other}`; this mapping does nothing on the daydream backend"
        )),
    }
}

/// scope-deck `prompts` (`[{text, weight}]`) → Daydream `prompt`: the text for one prompt, a
/// weighted list `[[text, weight], ...]` for a blend.
pub(crate) fn prompts_to_daydream(v: &Value) -> Option<Value> {
    let items = v.as_array()?;
    let mut out = Vec::new();
    for it in items {
        let text = it.get("text")?.as_str()?.trim();
        let weight = it.get("weight").and_then(Value::as_f64).unwrap_or(1.0);
        if !text.is_empty() && weight.is_finite() && weight > 0.0 {
            out.push((text.to_string(), weight));
        }
    }
    match out.len() {
        0 => None,
        1 => Some(json!(out[0].0)),
        _ => Some(Value::Array(
            out.into_iter().map(|(t, w)| json!([t, w])).collect(),
        )),
    }
}

/// Scope's descending timesteps (1000 = pure noise) → StreamDiffusion indices into a schedule of
/// `steps` (0 = most noise), ascending and de-duplicated.
pub(crate) fn step_list_to_t_index(v: &Value, steps: i64) -> Option<Vec<i64>> {
    let steps = steps.max(1);
    let mut out: Vec<i64> = Vec::new();
    for x in v.as_array()? {
        let s = x.as_f64().filter(|f| f.is_finite())?.clamp(0.0, 1000.0);
        out.push((((1000.0 - s) / 1000.0) * (steps - 1) as f64).round() as i64);
    }
    out.sort_unstable();
    out.dedup();
    (!out.is_empty()).then_some(out)
}

/// Parameter specs announced to the core for this backend (so knobs and mappings can target
/// Daydream's own keys; Scope's keys keep their built-in specs and are mapped or reported).
pub(crate) fn specs(controlnets: usize) -> Vec<ParamSpec> {
    let spec = |key: &str, kind: ParamKind| ParamSpec {
        key: key.to_string(),
        kind,
        one_shot: false,
    };
    let mut v = vec![
        spec("prompt", ParamKind::Text),
        spec("negative_prompt", ParamKind::Text),
        spec(
            "guidance_scale",
            ParamKind::Float {
                min: 0.0,
                max: 20.0,
            },
        ),
        spec("delta", ParamKind::Float { min: 0.0, max: 1.0 }),
        spec("num_inference_steps", ParamKind::Int { min: 1, max: 100 }),
        spec("t_index_list", ParamKind::Json),
        spec(
            "seed",
            ParamKind::Int {
                min: 0,
                max: i64::from(i32::MAX),
            },
        ),
        spec(
            "width",
            ParamKind::Int {
                min: 384,
                max: 1024,
            },
        ),
        spec(
            "height",
            ParamKind::Int {
                min: 384,
                max: 1024,
            },
        ),
        spec(
            "seed_interpolation_method",
            ParamKind::Choice {
                options: vec!["linear".into(), "slerp".into()],
            },
        ),
        spec("enable_similar_image_filter", ParamKind::Bool),
        spec(
            "similar_image_filter_threshold",
            ParamKind::Float { min: 0.0, max: 1.0 },
        ),
        spec("do_add_noise", ParamKind::Bool),
        spec("use_denoising_batch", ParamKind::Bool),
        ParamSpec {
            key: CONFIRM_KEY.into(),
            kind: ParamKind::Bool,
            one_shot: true,
        },
    ];
    for i in 0..controlnets {
        v.push(spec(
            &format!("{CONTROLNET_PREFIX}{i}"),
            ParamKind::Float {
                min: 0.0,
                max: CONTROLNET_SCALE_MAX,
            },
        ));
    }
    v
}

/// Something to tell the performer about a parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    /// scope-deck key.
    pub(crate) key: String,
    /// Why it was not (yet) sent.
    pub(crate) reason: String,
}

/// The parameter plan of one stream: what it has, what waits to be PATCHed, what waits for a
/// confirmation, and which unsupported keys were already reported.
#[derive(Debug, Clone)]
pub(crate) struct ParamPlan {
    /// Params the stream was created with / has accepted since.
    stream: Map<String, Value>,
    /// Live changes waiting for the next PATCH (latest wins).
    pending: Map<String, Value>,
    /// Reloading changes waiting for confirmation.
    held: Map<String, Value>,
    reported: BTreeSet<String>,
    confirm_reloads: bool,
    controlnets: usize,
}

impl ParamPlan {
    /// A plan starting from the preset's params.
    pub(crate) fn new(preset_params: Map<String, Value>, confirm_reloads: bool) -> Self {
        let controlnets = preset_params
            .get("controlnets")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        ParamPlan {
            stream: preset_params,
            pending: Map::new(),
            held: Map::new(),
            reported: BTreeSet::new(),
            confirm_reloads,
            controlnets,
        }
    }

    /// The base model every PATCH repeats.
    pub(crate) fn model_id(&self) -> Value {
        self.stream.get("model_id").cloned().unwrap_or(Value::Null)
    }

    /// How many ControlNets the preset has.
    pub(crate) fn controlnet_count(&self) -> usize {
        self.controlnets
    }

    fn effective(&self, key: &str) -> Option<&Value> {
        self.pending
            .get(key)
            .or_else(|| self.held.get(key))
            .or_else(|| self.stream.get(key))
    }

    fn steps(&self) -> i64 {
        self.effective("num_inference_steps")
            .and_then(Value::as_i64)
            .unwrap_or(25)
    }

    fn map(&mut self, key: &str, value: &Value, reports: &mut Vec<Report>) -> Vec<(String, Value)> {
        match map_key(key, value, self.steps(), self.controlnets) {
            Mapped::Set(kv) => kv,
            Mapped::ControlnetScale { index, value } => {
                let mut cns = self
                    .effective("controlnets")
                    .cloned()
                    .unwrap_or(Value::Null);
                if let Some(c) = cns.get_mut(index).and_then(Value::as_object_mut) {
                    c.insert("conditioning_scale".into(), json!(value));
                }
                vec![("controlnets".into(), cns)]
            }
            Mapped::Confirm => Vec::new(),
            Mapped::Invalid(why) => {
                reports.push(Report {
                    key: key.into(),
                    reason: why,
                });
                Vec::new()
            }
            Mapped::Unsupported(why) => {
                if self.reported.insert(key.to_string()) {
                    reports.push(Report {
                        key: key.into(),
                        reason: why,
                    });
                }
                Vec::new()
            }
        }
    }

    /// Applies the full state before the stream exists: everything goes into the create body.
    pub(crate) fn apply_initial(&mut self, state: &Map<String, Value>) -> Vec<Report> {
        let mut reports = Vec::new();
        for (k, v) in state {
            for (dk, dv) in self.map(k, v, &mut reports) {
                self.stream.insert(dk, dv);
            }
        }
        reports
    }

    /// The `params` to create a (re)started stream with: the stream's, plus every change not yet
    /// applied (a restart applies held and failed changes too).
    pub(crate) fn create_params(&mut self) -> Map<String, Value> {
        let held = std::mem::take(&mut self.held);
        let pending = std::mem::take(&mut self.pending);
        for (k, v) in held.into_iter().chain(pending) {
            self.stream.insert(k, v);
        }
        self.stream.clone()
    }

    /// Takes changes during the show: live ones queue for PATCH (latest wins), reloading ones are
    /// held until confirmed (or queued at once when confirmations are off).
    pub(crate) fn push(&mut self, values: &Map<String, Value>) -> Vec<Report> {
        let mut reports = Vec::new();
        let mut confirm = false;
        for (k, v) in values {
            if k == CONFIRM_KEY {
                confirm = true;
                continue;
            }
            for (dk, dv) in self.map(k, v, &mut reports) {
                let change = if dk == "controlnets" {
                    controlnets_change(self.stream.get("controlnets").unwrap_or(&Value::Null), &dv)
                } else {
                    classify(&dk)
                };
                if self.stream.get(&dk) == Some(&dv) && change == Change::Dynamic {
                    // Back to what the stream has: nothing to send.
                    self.pending.remove(&dk);
                    continue;
                }
                match change {
                    Change::Dynamic => {
                        self.pending.insert(dk, dv);
                    }
                    Change::Reload if !self.confirm_reloads => {
                        self.pending.insert(dk, dv);
                    }
                    Change::Reload => {
                        reports.push(Report {
                            key: k.clone(),
                            reason: format!(
                                "`{dk}` reloads the Daydream pipeline (~30 s of no video); held until confirmed with {CONFIRM_KEY}"
                            ),
                        });
                        self.held.insert(dk, dv);
                    }
                }
            }
        }
        self.vet_pending(&mut reports);
        if confirm {
            if self.held.is_empty() {
                reports.push(Report {
                    key: CONFIRM_KEY.into(),
                    reason: "nothing is waiting for confirmation".into(),
                });
            }
            let held = std::mem::take(&mut self.held);
            for (k, v) in held {
                self.pending.insert(k, v);
            }
        }
        reports
    }

    /// Drops queued changes the API would refuse (its limits on the merged params), reporting
    /// each: one bad value must not turn into a 400 that counts toward switching live updates off.
    fn vet_pending(&mut self, reports: &mut Vec<Report>) {
        if self.pending.is_empty() {
            return;
        }
        let mut merged = self.stream.clone();
        for (k, v) in self.held.iter().chain(self.pending.iter()) {
            merged.insert(k.clone(), v.clone());
        }
        for (key, why) in check_params_json(&merged) {
            // A t_index_list beyond fewer steps: the step change is the culprit.
            let culprit = if key == "t_index_list" && !self.pending.contains_key(&key) {
                "num_inference_steps".to_string()
            } else {
                key
            };
            if self.pending.remove(&culprit).is_some() {
                let key = culprit;
                reports.push(Report {
                    key,
                    reason: format!("{why} (Daydream's limit); not sent"),
                });
            }
        }
    }

    /// Problems with the create body (the API's limits); empty when it may be sent.
    pub(crate) fn create_problems(&self) -> Vec<(String, String)> {
        check_params_json(&self.stream)
    }

    /// Changes held for confirmation.
    #[cfg(test)]
    pub(crate) fn held(&self) -> &Map<String, Value> {
        &self.held
    }

    /// True when something waits to be PATCHed.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next PATCH body (`{"pipeline","params":{model_id, ...changed}}`) and the changes it
    /// carries; `None` when nothing waits.
    pub(crate) fn take_patch(&mut self) -> Option<(Value, Map<String, Value>)> {
        if self.pending.is_empty() {
            return None;
        }
        let changes = std::mem::take(&mut self.pending);
        let mut params = Map::new();
        params.insert("model_id".into(), self.model_id());
        for (k, v) in &changes {
            params.insert(k.clone(), v.clone());
        }
        Some((
            json!({"pipeline": "streamdiffusion", "params": params}),
            changes,
        ))
    }

    /// The server took `changes`.
    pub(crate) fn patch_succeeded(&mut self, changes: Map<String, Value>) {
        for (k, v) in changes {
            self.stream.insert(k, v);
        }
    }

    /// The PATCH failed and will be retried: put `changes` back unless newer values came in.
    pub(crate) fn requeue(&mut self, changes: Map<String, Value>) {
        for (k, v) in changes {
            self.pending.entry(k).or_insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::daydream::preset::Preset;

    fn plan() -> ParamPlan {
        let p = Preset::load(None, "daydream-sd-turbo").unwrap();
        ParamPlan::new(p.params_json(), true)
    }

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn classifier_knows_the_documented_dynamic_set() {
        for k in DYNAMIC_KEYS {
            assert_eq!(classify(k), Change::Dynamic);
        }
        for k in [
            "width",
            "height",
            "negative_prompt",
            "model_id",
            "acceleration",
            "controlnets",
        ] {
            assert_eq!(classify(k), Change::Reload, "{k}");
        }
        let a = json!([{"model_id": "a", "conditioning_scale": 0.2}]);
        assert_eq!(
            controlnets_change(&a, &json!([{"model_id": "a", "conditioning_scale": 0.9}])),
            Change::Dynamic
        );
        assert_eq!(
            controlnets_change(&a, &json!([{"model_id": "b", "conditioning_scale": 0.2}])),
            Change::Reload
        );
        let (live, held) = split_dynamic(
            &m(
                json!({"seed": 1, "width": 640, "controlnets": [{"model_id": "a", "conditioning_scale": 1.0}]}),
            ),
            &m(json!({"controlnets": a})),
        );
        assert_eq!(live.keys().collect::<Vec<_>>(), vec!["controlnets", "seed"]);
        assert_eq!(held.keys().collect::<Vec<_>>(), vec!["width"]);
    }

    #[test]
    fn patch_carries_model_id_and_only_dynamic_changes_latest_wins() {
        let mut p = plan();
        let r = p.push(&m(json!({"noise_scale": 0.3, "guidance_scale": 1.5})));
        assert!(r.is_empty(), "{r:?}");
        p.push(&m(json!({"noise_scale": 0.4, "prompts": [{"text": "a", "weight": 1.0}, {"text": "b", "weight": 0.5}]})));
        let (body, _) = p.take_patch().unwrap();
        assert_eq!(
            body,
            json!({"pipeline": "streamdiffusion", "params": {
                "model_id": "stabilityai/sd-turbo", "delta": 0.4, "guidance_scale": 1.5,
                "prompt": [["a", 1.0], ["b", 0.5]]}})
        );
        assert!(p.take_patch().is_none());
    }

    #[test]
    fn reloads_are_held_until_confirmed() {
        let mut p = plan();
        let r = p.push(&m(json!({"width": 700, "seed": 3})));
        assert_eq!(r.len(), 1);
        assert!(r[0].reason.contains("reloads"), "{r:?}");
        let (body, changes) = p.take_patch().unwrap();
        assert_eq!(
            body["params"],
            json!({"model_id": "stabilityai/sd-turbo", "seed": 3})
        );
        p.patch_succeeded(changes);
        assert_eq!(p.held().get("width"), Some(&json!(704)));
        assert!(p.push(&m(json!({CONFIRM_KEY: true}))).is_empty());
        let (body, _) = p.take_patch().unwrap();
        assert_eq!(
            body["params"],
            json!({"model_id": "stabilityai/sd-turbo", "width": 704})
        );
        let r = p.push(&m(json!({CONFIRM_KEY: true})));
        assert!(r[0].reason.contains("nothing"));
    }

    #[test]
    fn unsupported_keys_are_reported_once_each() {
        let mut p = plan();
        let r = p.push(&m(json!({"paused": true, "bpm": 120.0})));
        assert_eq!(
            r.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            vec!["bpm", "paused"]
        );
        assert!(p.push(&m(json!({"paused": false}))).is_empty());
        assert!(!p.has_pending());
    }

    #[test]
    fn controlnet_scale_is_live_and_keeps_the_rest() {
        let mut p = plan();
        p.push(&m(json!({"controlnet_scale_1": 0.6})));
        let (body, _) = p.take_patch().unwrap();
        let cns = body["params"]["controlnets"].as_array().unwrap();
        assert_eq!(cns.len(), 5);
        assert_eq!(cns[1]["conditioning_scale"], json!(0.6));
        assert_eq!(cns[0]["conditioning_scale"], json!(0.75));
        assert_eq!(
            cns[1]["model_id"],
            json!("thibaud/controlnet-sd21-hed-diffusers")
        );
        let r = p.push(&m(json!({"controlnet_scale_9": 0.6})));
        assert!(r[0].reason.contains("5 ControlNets"));
    }

    /// Values the API would answer with 400 are refused here, with the limit named, and nothing
    /// is queued for them.
    #[test]
    fn out_of_range_values_are_refused_before_sending() {
        let mut p = plan();
        let r = p.push(&m(json!({"controlnet_scale_0": 1.2})));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].key, "controlnet_scale_0");
        assert!(
            r[0].reason.contains("0 to 1") && r[0].reason.contains("not sent"),
            "{r:?}"
        );
        assert!(!p.has_pending());
        let r = p.push(&m(json!({"t_index_list": [1, 2, 3, 4, 5]})));
        assert!(r[0].reason.contains("at most 4"), "{r:?}");
        let r = p.push(&m(
            json!({"denoising_step_list": [1000, 800, 600, 400, 200]}),
        ));
        assert!(r[0].reason.contains("at most 4"), "{r:?}");
        // Lowering the steps below the current t_index_list would be a 400: refused too.
        let r = p.push(&m(json!({"num_inference_steps": 10})));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].key, "num_inference_steps");
        assert!(!p.has_pending(), "{:?}", p.take_patch());
        assert!(p.create_problems().is_empty());
        assert!(
            specs(5).iter().any(|s| s.key == "controlnet_scale_4"
                && s.kind == ParamKind::Float { min: 0.0, max: 1.0 })
        );
    }

    #[test]
    fn scope_keys_are_translated() {
        assert_eq!(
            step_list_to_t_index(&json!([1000, 750, 500, 250]), 25),
            Some(vec![0, 6, 12, 18])
        );
        assert_eq!(
            prompts_to_daydream(&json!([{"text": "x", "weight": 1.0}])),
            Some(json!("x"))
        );
        assert_eq!(prompts_to_daydream(&json!([])), None);
        let mut p = plan();
        let r = p.push(&m(json!({"t_index_list": [30]})));
        assert!(r[0].reason.contains("from 0 to"), "{r:?}");
        let mut p = plan();
        p.apply_initial(&m(
            json!({"prompts": [{"text": "night city", "weight": 1.0}], "paused": false}),
        ));
        let c = p.create_params();
        assert_eq!(c["prompt"], json!("night city"));
        assert!(!c.contains_key("paused"));
    }

    #[test]
    fn failed_patch_requeues_under_newer_values() {
        let mut p = plan();
        p.push(&m(json!({"seed": 1, "delta": 0.1})));
        let (_, changes) = p.take_patch().unwrap();
        p.push(&m(json!({"seed": 2})));
        p.requeue(changes);
        let (body, _) = p.take_patch().unwrap();
        assert_eq!(body["params"]["seed"], json!(2));
        assert_eq!(body["params"]["delta"], json!(0.1));
    }
}
