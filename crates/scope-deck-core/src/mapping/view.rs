//! What the dashboard shows of the mapping engine (part of `UiSnapshot`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::audio::features::AudioFrame;
use crate::mapping::prompt::display;
use crate::state::AppState;

/// One mapping row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MappingRow {
    /// Name.
    pub name: String,
    /// Source name (`energy`, `macro.x`).
    pub source: String,
    /// Target parameter.
    pub target: String,
    /// Running.
    pub enabled: bool,
    /// Smoothed normalised output 0..1 (for a meter), once a frame arrived.
    pub level: Option<f64>,
}

/// One trigger row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TriggerRow {
    /// Name.
    pub name: String,
    /// Running.
    pub enabled: bool,
    /// When it last fired (engine time).
    pub last_fired: Option<Duration>,
}

/// A quantised theme change on its way.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PendingView {
    /// Theme it switches to.
    pub theme: String,
    /// `beat`, `bar`, `2_bar`, `4_bar`.
    pub boundary: String,
    /// Predicted time until it lands (from tempo and bar position), if a grid runs.
    pub eta: Option<Duration>,
    /// Engine time at which it lands anyway.
    pub deadline: Duration,
    /// Already sent to the server with `_quantized`.
    pub server_quantized: bool,
}

/// The mapping part of the snapshot.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct MappingView {
    /// Theme names in list order.
    pub themes: Vec<String>,
    /// Index of the active theme (None when no theme is loaded).
    pub active: Option<usize>,
    /// Active theme name.
    pub theme_name: String,
    /// Active theme description.
    pub description: String,
    /// Prompt index and count in the active theme.
    pub prompt_index: usize,
    /// Prompts in the active theme.
    pub prompt_count: usize,
    /// The prompt as sent (persona and style filled in; blends joined with `+`).
    pub prompt: String,
    /// Persona in effect.
    pub persona: String,
    /// Personas offered by the theme.
    pub personas: Vec<String>,
    /// Next quantised change.
    pub pending: Option<PendingView>,
    /// Mappings of the active theme.
    pub mappings: Vec<MappingRow>,
    /// Triggers of the active theme.
    pub triggers: Vec<TriggerRow>,
    /// Macro values.
    pub macros: BTreeMap<String, f32>,
    /// The whole engine is off.
    pub off: bool,
    /// Beat forwarding to Scope is on.
    pub beat_forwarding: bool,
    /// Pipelines the theme was made for.
    pub pipeline_hint: Vec<String>,
}

impl MappingView {
    /// Builds the view from the state and the latest audio frame.
    pub fn of(state: &AppState, frame: &AudioFrame) -> Self {
        let m = &state.mapping;
        let Some(theme) = m.theme() else {
            return MappingView::default();
        };
        let persona = m.persona();
        let pending = m.pending.as_ref().map(|p| PendingView {
            theme: m
                .themes
                .get(p.to)
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            boundary: p.mode.as_str().to_string(),
            eta: crate::mapping::reduce::eta(state, p, frame),
            deadline: p.deadline,
            server_quantized: p.sent,
        });
        MappingView {
            themes: m.themes.iter().map(|t| t.name.clone()).collect(),
            active: Some(m.active),
            theme_name: theme.name.clone(),
            description: theme.description.clone(),
            prompt_index: m.prompt_index,
            prompt_count: theme.prompts.len(),
            prompt: theme
                .prompts
                .get(m.prompt_index)
                .map(|e| display(theme, e, &persona))
                .unwrap_or_default(),
            persona,
            personas: theme.personas.clone(),
            pending,
            mappings: theme
                .mappings
                .iter()
                .enumerate()
                .map(|(i, mp)| MappingRow {
                    name: mp.name.clone(),
                    source: mp.source.name(),
                    target: mp.target.clone(),
                    enabled: m.engine.is_enabled(&mp.name, mp.enabled),
                    level: m.engine.mappings.get(i).and_then(|r| r.filter.value),
                })
                .collect(),
            triggers: theme
                .triggers
                .iter()
                .enumerate()
                .map(|(i, t)| TriggerRow {
                    name: t.name.clone(),
                    enabled: m.engine.is_enabled(&t.name, t.enabled),
                    last_fired: m.engine.triggers.get(i).and_then(|s| s.last_fired),
                })
                .collect(),
            macros: m.macros.clone(),
            off: m.off,
            beat_forwarding: theme.beat.enabled,
            pipeline_hint: theme.pipeline.pipeline_ids.clone(),
        }
    }
}

/// The prompt panel title: ` prompt ` plus theme, prompt position, persona and the pending
/// quantised switch with its predicted landing (`next: Neon Foundry @bar 1.2s`).
pub fn prompt_title(v: &MappingView, _now: Duration) -> String {
    if v.theme_name.is_empty() {
        return " prompt ".to_string();
    }
    let mut t = format!(
        " prompt · {} {}/{}",
        v.theme_name,
        v.prompt_index + 1,
        v.prompt_count
    );
    if !v.persona.is_empty() {
        t.push_str(&format!(" · {}", v.persona));
    }
    if v.off {
        t.push_str(" · mapping OFF");
    }
    if let Some(p) = &v.pending {
        t.push_str(&format!(
            " · next: {} @{}",
            p.theme,
            p.boundary.replace('_', " ")
        ));
        if let Some(eta) = p.eta {
            t.push_str(&format!(" {:.1}s", eta.as_secs_f64()));
        }
        if p.server_quantized {
            t.push_str(" (server)");
        }
    }
    t.push(' ');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_names_theme_prompt_persona_and_pending_switch() {
        let mut v = MappingView {
            theme_name: "Cosmic Voyage".into(),
            prompt_index: 1,
            prompt_count: 4,
            persona: "female".into(),
            ..MappingView::default()
        };
        assert_eq!(
            prompt_title(&v, Duration::ZERO),
            " prompt · Cosmic Voyage 2/4 · female "
        );
        v.pending = Some(PendingView {
            theme: "Neon Foundry".into(),
            boundary: "2_bar".into(),
            eta: Some(Duration::from_millis(1250)),
            deadline: Duration::from_secs(9),
            server_quantized: true,
        });
        assert_eq!(
            prompt_title(&v, Duration::ZERO),
            " prompt · Cosmic Voyage 2/4 · female · next: Neon Foundry @2 bar 1.2s (server) "
        );
        assert_eq!(
            prompt_title(&MappingView::default(), Duration::ZERO),
            " prompt "
        );
    }
}
