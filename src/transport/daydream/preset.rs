//! Stream presets: the `POST /v1/streams` body as an editable TOML file. The built-in preset is
//! the seeds' production payload; a file of the same name in `<config dir>/presets/` replaces it.
//! Every problem is reported with file, line and key, like the rest of the configuration.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::diagnostics::{ConfigError, SourceDoc};

/// Built-in presets (file stem, text).
pub(crate) const EMBEDDED_PRESETS: &[(&str, &str)] = &[(
    "daydream-sd-turbo",
    include_str!("../../../presets/daydream-sd-turbo.toml"),
)];

/// A whole preset file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Preset {
    /// Always `streamdiffusion`.
    pub(crate) pipeline: String,
    /// The stream parameters.
    pub(crate) params: StreamParams,
}

/// `params` of the create payload (field names are Daydream's).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamParams {
    /// Base model; every PATCH repeats it.
    pub(crate) model_id: String,
    /// Positive prompt.
    pub(crate) prompt: String,
    /// Negative prompt (reload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) negative_prompt: Option<String>,
    /// Noise seed.
    pub(crate) seed: i64,
    /// Residual noise strength, 0..1.
    pub(crate) delta: f64,
    /// Output width, 384–1024, a multiple of 64.
    pub(crate) width: i64,
    /// Output height, 384–1024, a multiple of 64.
    pub(crate) height: i64,
    /// Scheduler steps.
    pub(crate) num_inference_steps: i64,
    /// Classifier-free guidance.
    pub(crate) guidance_scale: f64,
    /// `tensorrt`, `xformers`, `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) acceleration: Option<String>,
    /// StreamDiffusion batching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) use_denoising_batch: Option<bool>,
    /// Add noise to the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) do_add_noise: Option<bool>,
    /// Timestep indices, ascending, each below `num_inference_steps`.
    pub(crate) t_index_list: Vec<i64>,
    /// Normalise seed weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) normalize_seed_weights: Option<bool>,
    /// Normalise prompt weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) normalize_prompt_weights: Option<bool>,
    /// `linear` or `slerp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seed_interpolation_method: Option<String>,
    /// `linear` or `slerp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prompt_interpolation_method: Option<String>,
    /// Skip near-identical frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) enable_similar_image_filter: Option<bool>,
    /// Similarity threshold, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) similar_image_filter_threshold: Option<f64>,
    /// Frames skipped at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) similar_image_filter_max_skip_frame: Option<i64>,
    /// ControlNets (their `conditioning_scale` is live-changeable).
    #[serde(default)]
    pub(crate) controlnets: Vec<ControlNet>,
}

/// One ControlNet.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlNet {
    /// On or off.
    pub(crate) enabled: bool,
    /// ControlNet model (must match the base model's architecture).
    pub(crate) model_id: String,
    /// Preprocessor name.
    pub(crate) preprocessor: String,
    /// Strength, 0..1 (live-changeable; the API answers 400 above 1).
    pub(crate) conditioning_scale: f64,
    /// Preprocessor options.
    #[serde(default)]
    pub(crate) preprocessor_params: toml::Table,
    /// Guidance start, 0..1.
    #[serde(default)]
    pub(crate) control_guidance_start: f64,
    /// Guidance end, 0..1.
    #[serde(default = "one")]
    pub(crate) control_guidance_end: f64,
}

fn one() -> f64 {
    1.0
}

/// Resolution bounds from the API docs.
pub(crate) const SIZE_RANGE: std::ops::RangeInclusive<i64> = 384..=1024;
/// ControlNet `conditioning_scale` bounds from the OpenAPI schema (above 1 is a 400).
pub(crate) const CONTROLNET_SCALE_MAX: f64 = 1.0;
/// `t_index_list` holds at most this many entries (OpenAPI schema).
pub(crate) const T_INDEX_MAX_ENTRIES: usize = 4;
/// SDXL models take at most this many enabled ControlNets.
pub(crate) const SDXL_MAX_CONTROLNETS: usize = 3;

impl Preset {
    /// Parses and validates a preset named `name` (for messages); all problems are collected.
    pub(crate) fn from_text(name: &str, text: &str) -> Result<Preset, Vec<ConfigError>> {
        let doc = SourceDoc::parse(name, text).map_err(|e| vec![e])?;
        let preset: Preset = doc.deserialize().map_err(|e| vec![e])?;
        let errs = preset.validate(&doc);
        if errs.is_empty() {
            Ok(preset)
        } else {
            Err(errs)
        }
    }

    /// Loads preset `name`: `<dir>/presets/<name>.toml` if present, else the built-in.
    pub(crate) fn load(dir: Option<&Path>, name: &str) -> Result<Preset, Vec<ConfigError>> {
        if let Some(p) = dir.map(|d| d.join("presets").join(format!("{name}.toml"))) {
            if p.exists() {
                let shown = p.display().to_string();
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    vec![ConfigError {
                        file: shown.clone(),
                        line: 0,
                        column: 0,
                        key: String::new(),
                        message: format!("cannot read: {e}"),
                        value: None,
                    }]
                })?;
                return Preset::from_text(&shown, &text);
            }
        }
        match EMBEDDED_PRESETS.iter().find(|(stem, _)| *stem == name) {
            Some((stem, text)) => {
                Preset::from_text(&format!("<built-in>/presets/{stem}.toml"), text)
            }
            None => Err(vec![ConfigError {
                file: "config.toml".into(),
                line: 0,
                column: 0,
                key: "daydream.preset".into(),
                message: format!(
                    "no preset named `{name}` (built-in: {}; or add presets/{name}.toml to the config dir)",
                    EMBEDDED_PRESETS
                        .iter()
                        .map(|(s, _)| *s)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                value: None,
            }]),
        }
    }

    fn validate(&self, doc: &SourceDoc) -> Vec<ConfigError> {
        let mut e = Vec::new();
        let p = &self.params;
        if self.pipeline != "streamdiffusion" {
            e.push(doc.error_at("pipeline", "must be \"streamdiffusion\"", None));
        }
        if p.model_id.trim().is_empty() {
            e.push(doc.error_at("params.model_id", "must not be empty", None));
        }
        if p.prompt.trim().is_empty() {
            e.push(doc.error_at("params.prompt", "must not be empty", None));
        }
        for (k, v) in [("width", p.width), ("height", p.height)] {
            if !SIZE_RANGE.contains(&v) || v % 64 != 0 {
                e.push(doc.error_at(
                    &format!("params.{k}"),
                    "must be from 384 to 1024, a multiple of 64",
                    None,
                ));
            }
        }
        if !(1..=100).contains(&p.num_inference_steps) {
            e.push(doc.error_at("params.num_inference_steps", "must be from 1 to 100", None));
        }
        if let Err(why) = check_t_index_list(&p.t_index_list, p.num_inference_steps) {
            e.push(doc.error_at("params.t_index_list", why, None));
        }
        if !(0.0..=1.0).contains(&p.delta) {
            e.push(doc.error_at("params.delta", "must be from 0 to 1", None));
        }
        if !(0.0..=20.0).contains(&p.guidance_scale) {
            e.push(doc.error_at("params.guidance_scale", "must be from 0 to 20", None));
        }
        if p.seed < 0 {
            e.push(doc.error_at("params.seed", "must not be negative", None));
        }
        for (k, v) in [
            ("seed_interpolation_method", &p.seed_interpolation_method),
            (
                "prompt_interpolation_method",
                &p.prompt_interpolation_method,
            ),
        ] {
            if v.as_deref().is_some_and(|m| m != "linear" && m != "slerp") {
                e.push(doc.error_at(
                    &format!("params.{k}"),
                    "must be \"linear\" or \"slerp\"",
                    None,
                ));
            }
        }
        if p.similar_image_filter_threshold
            .is_some_and(|t| !(0.0..=1.0).contains(&t))
        {
            e.push(doc.error_at(
                "params.similar_image_filter_threshold",
                "must be from 0 to 1",
                None,
            ));
        }
        for (i, c) in p.controlnets.iter().enumerate() {
            let at = |k: &str| format!("params.controlnets[{i}].{k}");
            if c.model_id.trim().is_empty() {
                e.push(doc.error_at(&at("model_id"), "must not be empty", None));
            }
            if !(0.0..=CONTROLNET_SCALE_MAX).contains(&c.conditioning_scale) {
                e.push(doc.error_at(
                    &at("conditioning_scale"),
                    "must be from 0 to 1 (Daydream's API refuses more with HTTP 400)",
                    None,
                ));
            }
            if p.controlnets[..i].iter().any(|o| o.model_id == c.model_id) {
                e.push(doc.error_at(
                    &at("model_id"),
                    "is listed twice; each ControlNet model may appear once",
                    None,
                ));
            }
            for (k, v) in [
                ("control_guidance_start", c.control_guidance_start),
                ("control_guidance_end", c.control_guidance_end),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    e.push(doc.error_at(&at(k), "must be from 0 to 1", None));
                }
            }
        }
        let enabled = p.controlnets.iter().filter(|c| c.enabled).count();
        if is_sdxl(&p.model_id) && enabled > SDXL_MAX_CONTROLNETS {
            e.push(doc.error_at(
                "params.controlnets",
                format!("SDXL takes at most {SDXL_MAX_CONTROLNETS} enabled ControlNets ({enabled} are enabled)"),
                None,
            ));
        }
        e
    }

    /// The `params` object as JSON (what is POSTed).
    pub(crate) fn params_json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(&self.params) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }
}

fn is_sdxl(model_id: &str) -> bool {
    model_id.to_ascii_lowercase().contains("sdxl")
}

/// `t_index_list` must hold 1 to 4 entries, not decreasing, each below `steps`.
pub(crate) fn check_t_index_list(list: &[i64], steps: i64) -> Result<(), String> {
    if list.is_empty() {
        return Err("must list at least one timestep index".into());
    }
    if list.len() > T_INDEX_MAX_ENTRIES {
        return Err(format!(
            "at most {T_INDEX_MAX_ENTRIES} entries (Daydream's API refuses more with HTTP 400); got {}",
            list.len()
        ));
    }
    if list.iter().any(|&t| t < 0 || t >= steps) {
        return Err(format!(
            "each index must be from 0 to num_inference_steps - 1 ({})",
            steps - 1
        ));
    }
    if list.windows(2).any(|w| w[0] > w[1]) {
        return Err("indices must not decrease".into());
    }
    Ok(())
}

/// The API's limits (docs/daydream-api.md, "Limits") checked on a JSON `params` object right
/// before it is sent, so a body the API would answer with 400 never leaves. Returns
/// `(top-level key, why)` for each problem.
pub(crate) fn check_params_json(
    p: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, String)> {
    use serde_json::Value;
    let mut bad = Vec::new();
    let int = |k: &str| p.get(k).and_then(Value::as_i64);
    let steps = int("num_inference_steps").unwrap_or(50);
    if p.contains_key("num_inference_steps") && !(1..=100).contains(&steps) {
        bad.push(("num_inference_steps".into(), "must be from 1 to 100".into()));
    }
    for k in ["width", "height"] {
        if let Some(v) = p.get(k) {
            if !v
                .as_i64()
                .is_some_and(|v| SIZE_RANGE.contains(&v) && v % 64 == 0)
            {
                bad.push((
                    k.into(),
                    "must be from 384 to 1024, a multiple of 64".into(),
                ));
            }
        }
    }
    if let Some(t) = p.get("t_index_list") {
        let list: Option<Vec<i64>> = t
            .as_array()
            .and_then(|a| a.iter().map(Value::as_i64).collect());
        let r = match list {
            Some(l) => check_t_index_list(&l, steps),
            None => Err("must be a list of integers".into()),
        };
        if let Err(why) = r {
            bad.push(("t_index_list".into(), why));
        }
    }
    if let Some(d) = p.get("delta") {
        if !d.as_f64().is_some_and(|d| (0.0..=1.0).contains(&d)) {
            bad.push(("delta".into(), "must be from 0 to 1".into()));
        }
    }
    if let Some(cns) = p.get("controlnets").and_then(Value::as_array) {
        for (i, c) in cns.iter().enumerate() {
            let s = c.get("conditioning_scale").and_then(Value::as_f64);
            if !s.is_some_and(|s| (0.0..=CONTROLNET_SCALE_MAX).contains(&s)) {
                bad.push((
                    "controlnets".into(),
                    format!("controlnets[{i}].conditioning_scale must be from 0 to 1"),
                ));
            }
            let id = c.get("model_id");
            if cns[..i].iter().any(|o| o.get("model_id") == id) {
                bad.push((
                    "controlnets".into(),
                    format!("controlnets[{i}].model_id is listed twice"),
                ));
            }
        }
        let enabled = cns
            .iter()
            .filter(|c| c.get("enabled").and_then(Value::as_bool).unwrap_or(true))
            .count();
        let model = p.get("model_id").and_then(Value::as_str).unwrap_or("");
        if is_sdxl(model) && enabled > SDXL_MAX_CONTROLNETS {
            bad.push((
                "controlnets".into(),
                format!("SDXL takes at most {SDXL_MAX_CONTROLNETS} enabled ControlNets"),
            ));
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_preset_is_the_seeds_production_payload() {
        let p = Preset::load(None, "daydream-sd-turbo").unwrap();
        let v = p.params_json();
        assert_eq!(p.pipeline, "streamdiffusion");
        assert_eq!(v["model_id"], json!("stabilityai/sd-turbo"));
        assert_eq!(v["num_inference_steps"], json!(25));
        assert_eq!(v["guidance_scale"], json!(1.0));
        assert_eq!(v["delta"], json!(0.7));
        assert_eq!(v["t_index_list"], json!([12, 20, 24]));
        assert_eq!(
            (v["width"].clone(), v["height"].clone()),
            (json!(512), json!(512))
        );
        let scales: Vec<f64> = p
            .params
            .controlnets
            .iter()
            .map(|c| c.conditioning_scale)
            .collect();
        assert_eq!(scales, vec![0.75, 0.2, 0.2, 0.75, 0.2]);
        assert!(
            p.params
                .controlnets
                .iter()
                .all(|c| c.model_id.contains("sd21"))
        );
        assert_eq!(
            v["controlnets"][2]["preprocessor_params"],
            json!({"low_threshold": 100, "high_threshold": 200})
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let text = EMBEDDED_PRESETS[0]
            .1
            .replace("width = 512", "width = 500")
            .replace("t_index_list = [12, 20, 24]", "t_index_list = [20, 12, 30]")
            .replace("conditioning_scale = 0.2\npreprocessor_params = {}\ncontrol_guidance_start = 0.0\ncontrol_guidance_end = 1.0\n\n[[params.controlnets]]\nenabled = true\nmodel_id = \"thibaud/controlnet-sd21-canny-diffusers\"", "conditioning_scale = 7.0\npreprocessor_params = {}\ncontrol_guidance_start = 0.0\ncontrol_guidance_end = 1.0\n\n[[params.controlnets]]\nenabled = true\nmodel_id = \"thibaud/controlnet-sd21-canny-diffusers\"");
        let errs = Preset::from_text("my.toml", &text).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"params.width"), "{keys:?}");
        assert!(keys.contains(&"params.t_index_list"), "{keys:?}");
        assert!(
            keys.contains(&"params.controlnets[1].conditioning_scale"),
            "{keys:?}"
        );
        let w = errs.iter().find(|e| e.key == "params.width").unwrap();
        assert_eq!(w.file, "my.toml");
        assert_eq!(text.lines().nth(w.line - 1).unwrap().trim(), "width = 500");
    }

    #[test]
    fn unknown_keys_and_user_files_override() {
        let errs = Preset::from_text(
            "p.toml",
            "pipeline = \"streamdiffusion\"\n[params]\nmodel_idd = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(errs[0].line, 3, "{errs:?}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("presets")).unwrap();
        let text = EMBEDDED_PRESETS[0].1.replace("seed = 42", "seed = 7");
        std::fs::write(dir.path().join("presets/daydream-sd-turbo.toml"), text).unwrap();
        assert_eq!(
            Preset::load(Some(dir.path()), "daydream-sd-turbo")
                .unwrap()
                .params
                .seed,
            7
        );
        let e = Preset::load(Some(dir.path()), "nope").unwrap_err();
        assert_eq!(e[0].key, "daydream.preset");
    }

    /// The limits of the contract's table, on the preset and on a JSON body about to be sent.
    #[test]
    fn api_limits_are_checked_in_presets_and_bodies() {
        let text = EMBEDDED_PRESETS[0]
            .1
            .replacen("conditioning_scale = 0.75", "conditioning_scale = 1.5", 1)
            .replace(
                "t_index_list = [12, 20, 24]",
                "t_index_list = [1, 2, 3, 4, 5]",
            );
        let errs = Preset::from_text("p.toml", &text).unwrap_err();
        let cs = errs
            .iter()
            .find(|e| e.key == "params.controlnets[0].conditioning_scale")
            .unwrap_or_else(|| panic!("{errs:?}"));
        assert!(cs.message.contains("from 0 to 1"), "{cs:?}");
        assert_eq!(
            text.lines().nth(cs.line - 1).unwrap().trim(),
            "conditioning_scale = 1.5"
        );
        let t = errs
            .iter()
            .find(|e| e.key == "params.t_index_list")
            .unwrap();
        assert!(t.message.contains("at most 4"), "{t:?}");
        // Non-decreasing is allowed; decreasing is not.
        assert!(check_t_index_list(&[3, 3, 7], 25).is_ok());
        assert!(check_t_index_list(&[7, 3], 25).is_err());

        let ok = Preset::load(None, "daydream-sd-turbo")
            .unwrap()
            .params_json();
        assert!(
            check_params_json(&ok).is_empty(),
            "{:?}",
            check_params_json(&ok)
        );
        let mut bad = ok.clone();
        bad["controlnets"][2]["conditioning_scale"] = json!(1.01);
        bad.insert("t_index_list".into(), json!([1, 2, 3, 4, 5]));
        bad.insert("width".into(), json!(500));
        let keys: Vec<String> = check_params_json(&bad)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["width", "t_index_list", "controlnets"]);
        let mut xl = ok;
        xl.insert("model_id".into(), json!("stabilityai/sdxl-turbo"));
        assert!(
            check_params_json(&xl)
                .iter()
                .any(|(_, w)| w.contains("at most 3 enabled")),
            "five enabled ControlNets on SDXL"
        );
    }
}
