//! The pure half of the Scope video features: server-side outputs, what `/api/v1/hardware/info`
//! says, and the `output_sinks` / VACE payload builders. The HTTP calls live in the app crate.

use serde_json::{Value, json};

use crate::transport::types::ParamUpdate;

/// A server-side output the server itself can publish.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ScopeOutput {
    /// NDI (any OS with the NDI runtime on the server).
    Ndi,
    /// Spout (Windows GPU servers only).
    Spout,
    /// Syphon (macOS servers only).
    Syphon,
}

impl ScopeOutput {
    /// Every output, in dashboard order.
    pub const ALL: [ScopeOutput; 3] = [ScopeOutput::Ndi, ScopeOutput::Spout, ScopeOutput::Syphon];

    /// Display name (`NDI`, `Spout`, `Syphon`) for notices and the dashboard.
    pub fn label(self) -> &'static str {
        match self {
            ScopeOutput::Ndi => "NDI",
            ScopeOutput::Spout => "Spout",
            ScopeOutput::Syphon => "Syphon",
        }
    }

    /// Key inside `output_sinks`.
    pub fn key(self) -> &'static str {
        match self {
            ScopeOutput::Ndi => "ndi",
            ScopeOutput::Spout => "spout",
            ScopeOutput::Syphon => "syphon",
        }
    }
}

/// What `/api/v1/hardware/info` says about the server. Missing fields stay `None` (older servers
/// only report `spout_available`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HardwareInfo {
    /// GPU memory in GB.
    pub vram_gb: Option<f64>,
    /// NDI output possible.
    pub ndi: Option<bool>,
    /// Spout output possible.
    pub spout: Option<bool>,
    /// Syphon output possible.
    pub syphon: Option<bool>,
}

impl HardwareInfo {
    /// Parses the endpoint's JSON (tolerant: unknown fields are ignored).
    pub fn from_json(v: &Value) -> HardwareInfo {
        let flag = |k: &str| v.get(k).and_then(Value::as_bool);
        HardwareInfo {
            vram_gb: v.get("vram_gb").and_then(Value::as_f64),
            ndi: flag("ndi_available"),
            spout: flag("spout_available"),
            syphon: flag("syphon_available"),
        }
    }

    /// Whether `out` is available (`None` = the server did not say).
    pub fn available(&self, out: ScopeOutput) -> Option<bool> {
        match out {
            ScopeOutput::Ndi => self.ndi,
            ScopeOutput::Spout => self.spout,
            ScopeOutput::Syphon => self.syphon,
        }
    }
}

/// The `output_sinks` update turning one server-side output on or off. Refuses to enable an
/// output the server says it cannot provide (with the reason), so the operator is told at once.
pub fn output_sink_update(
    out: ScopeOutput,
    enabled: bool,
    name: &str,
    hw: Option<&HardwareInfo>,
) -> Result<ParamUpdate, String> {
    if enabled && hw.and_then(|h| h.available(out)) == Some(false) {
        let why = match out {
            ScopeOutput::Spout => "Spout needs the Scope server to run on Windows",
            ScopeOutput::Syphon => "Syphon needs the Scope server to run on macOS",
            ScopeOutput::Ndi => "the Scope server has no NDI runtime installed",
        };
        return Err(format!(
            "cannot enable the server's {} output: {why} (from /api/v1/hardware/info)",
            out.key()
        ));
    }
    let mut sink = json!({ "enabled": enabled });
    if !name.is_empty() {
        sink["name"] = json!(name);
    }
    let mut sinks = serde_json::Map::new();
    sinks.insert(out.key().into(), sink);
    Ok(ParamUpdate::one("output_sinks", Value::Object(sinks)))
}

/// `vace_ref_images` (server asset paths) and `vace_context_scale` (clamped to 0–2) together.
pub fn vace_update(ref_images: &[String], context_scale: f64) -> ParamUpdate {
    let mut u = ParamUpdate::one("vace_ref_images", json!(ref_images));
    let scale = if context_scale.is_finite() {
        context_scale.clamp(0.0, 2.0)
    } else {
        1.0
    };
    u.values.insert("vace_context_scale".into(), json!(scale));
    u
}

/// The asset path the server returned for an upload (`{"path": ...}`).
pub fn asset_path(v: &Value) -> Option<String> {
    v.get("path").and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sinks_payload_shape() {
        let u = output_sink_update(ScopeOutput::Ndi, true, "stage", None).unwrap();
        assert_eq!(
            Value::Object(u.values),
            json!({"output_sinks": {"ndi": {"enabled": true, "name": "stage"}}})
        );
    }

    #[test]
    fn unavailable_output_is_refused_with_reason() {
        let hw = HardwareInfo::from_json(&json!({"vram_gb": 24.0, "spout_available": false}));
        assert_eq!(hw.vram_gb, Some(24.0));
        let e = output_sink_update(ScopeOutput::Spout, true, "", Some(&hw)).unwrap_err();
        assert!(e.contains("Windows"), "{e}");
        // Disabling is always allowed; unknown availability is not refused.
        assert!(output_sink_update(ScopeOutput::Spout, false, "", Some(&hw)).is_ok());
        assert!(output_sink_update(ScopeOutput::Syphon, true, "", Some(&hw)).is_ok());
    }

    #[test]
    fn vace_payload_clamps_scale() {
        let u = vace_update(&["/assets/a.png".into()], 3.5);
        assert_eq!(
            Value::Object(u.values),
            json!({"vace_ref_images": ["/assets/a.png"], "vace_context_scale": 2.0})
        );
    }
}
