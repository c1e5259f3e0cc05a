//! Prompt composition: `{persona} {prompt}, {style}` templates, weighted blends and Scope's
//! `transition` crossfade.

use serde_json::json;

use crate::mapping::theme::{PromptEntry, Theme};
use crate::params::ParamValue;

/// Fills the theme's template for one prompt text. Empty persona or style leave no stray
/// spaces or commas behind.
pub fn compose(template: &str, persona: &str, prompt: &str, style: &str) -> String {
    let filled = template
        .replace("{persona}", persona.trim())
        .replace("{prompt}", prompt.trim())
        .replace("{style}", style.trim());
    // Tidy what empty slots leave: doubled spaces, ", ," and leading/trailing separators.
    let mut out = filled.split_whitespace().collect::<Vec<_>>().join(" ");
    while out.contains(" ,") {
        out = out.replace(" ,", ",");
    }
    while out.contains(",,") {
        out = out.replace(",,", ",");
    }
    out.trim_matches(|c: char| c == ',' || c.is_whitespace())
        .to_string()
}

/// The `prompts` value for an entry: `[{text, weight}, ...]` with weights normalised to sum 1.
pub fn prompts_value(theme: &Theme, entry: &PromptEntry, persona: &str) -> ParamValue {
    let total: f64 = entry.parts.iter().map(|(_, w)| *w).sum();
    let total = if total > 0.0 { total } else { 1.0 };
    ParamValue::Array(
        entry
            .parts
            .iter()
            .map(|(text, w)| {
                json!({
                    "text": compose(&theme.template, persona, text, &theme.style),
                    "weight": crate::mapping::smoothing::round6(w / total),
                })
            })
            .collect(),
    )
}

/// Scope's crossfade: `{target_prompts, num_steps, temporal_interpolation_method}`.
pub fn transition_value(target_prompts: &ParamValue, steps: u32, method: &str) -> ParamValue {
    json!({
        "target_prompts": target_prompts,
        "num_steps": steps,
        "temporal_interpolation_method": method,
    })
}

/// The composed text of an entry for the dashboard (blends joined with `+`).
pub fn display(theme: &Theme, entry: &PromptEntry, persona: &str) -> String {
    match entry.parts.as_slice() {
        [(t, _)] => compose(&theme.template, persona, t, &theme.style),
        parts => parts
            .iter()
            .map(|(t, w)| {
                format!(
                    "{} ×{w}",
                    compose(&theme.template, persona, t, &theme.style)
                )
            })
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_table() {
        let t = crate::mapping::theme::DEFAULT_TEMPLATE;
        // (template, persona, prompt, style, expected)
        let table = [
            (
                t,
                "androgynous",
                "dj",
                "cartoon magical blue sparkle",
                "androgynous dj, cartoon magical blue sparkle",
            ),
            (t, "", "nebula", "", "nebula"),
            (t, "female", "dj", "", "female dj"),
            (t, "", "nebula", "neon", "nebula, neon"),
            (
                "{persona} {style}",
                "male",
                "ignored",
                "cartoon magical dj blue sparkle",
                "male cartoon magical dj blue sparkle",
            ),
            ("{style}, {prompt}", "", "forest", "", "forest"),
        ];
        for (tpl, persona, prompt, style, want) in table {
            assert_eq!(compose(tpl, persona, prompt, style), want, "{tpl}");
        }
    }

    #[test]
    fn blends_are_normalised() {
        let mut errs = Vec::new();
        let theme = Theme::from_text(
            "t.toml",
            "t",
            "name = \"t\"\nstyle = \"neon\"\nprompts = [{ blend = [{ text = \"a\", weight = 3 }, { text = \"b\", weight = 1 }] }]\n",
            &mut errs,
        )
        .unwrap_or_else(|| panic!("{errs:?}"));
        let v = prompts_value(&theme, &theme.prompts[0], "male");
        assert_eq!(
            v,
            json!([{"text": "male a, neon", "weight": 0.75}, {"text": "male b, neon", "weight": 0.25}])
        );
        let tr = transition_value(&v, 8, "slerp");
        assert_eq!(tr["num_steps"], json!(8));
        assert_eq!(tr["target_prompts"], v);
    }
}
