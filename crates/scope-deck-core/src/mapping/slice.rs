//! The mapping slice of `AppState`: the theme list, what is active, and the engine's memory.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::mapping::engine::EngineState;
use crate::mapping::theme::{QuantizeMode, Theme};

/// A beat-grid boundary a change waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// The beat with this running count (or a later one).
    Beat(u64),
    /// The downbeat of the bar with this index (or a later one).
    Bar(u64),
}

/// A theme switch waiting for its boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSwitch {
    /// Theme index it switches to.
    pub to: usize,
    /// When it was asked for.
    pub requested_at: Duration,
    /// Which boundary.
    pub boundary: Boundary,
    /// The quantise mode (for display).
    pub mode: QuantizeMode,
    /// Land anyway at this time if no beat grid arrives.
    pub deadline: Duration,
    /// Already sent with Scope's `_quantized` (the server lands it; locally only the engine
    /// switches at the boundary).
    pub sent: bool,
}

/// Mapping state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappingSlice {
    /// All loaded themes in display order.
    pub themes: Vec<Theme>,
    /// Index of the active theme (meaningless while `themes` is empty).
    pub active: usize,
    /// Index in the active theme's prompt list.
    pub prompt_index: usize,
    /// The performer's persona; `None` = the theme's own.
    pub persona: Option<String>,
    /// Macro values (0..1) set by MIDI/scripts, seeded from the themes' `[macros]`.
    pub macros: BTreeMap<String, f32>,
    /// Engine memory for the active theme.
    pub engine: EngineState,
    /// A quantised theme switch on its way.
    pub pending: Option<PendingSwitch>,
    /// Beats per bar (config `[audio] beats_per_bar`), for landing predictions.
    pub beats_per_bar: u32,
    /// Downbeats seen (the index the next downbeat gets).
    pub bars: u64,
    /// Last beat: running count and when it arrived.
    pub last_beat: Option<(u64, Duration)>,
    /// The whole engine is switched off (`toggle_mapping` with name `*`).
    pub off: bool,
    /// Parameters the server/pipeline refused, warned about once each.
    pub warned: BTreeSet<String>,
}

impl MappingSlice {
    /// A slice with `themes`, `active` selected (by id; the first when not found).
    pub fn new(themes: Vec<Theme>, active_id: &str, beats_per_bar: u32) -> Self {
        let active = themes.iter().position(|t| t.id == active_id).unwrap_or(0);
        MappingSlice {
            themes,
            active,
            beats_per_bar: beats_per_bar.max(1),
            ..MappingSlice::default()
        }
    }

    /// The active theme, if any are loaded.
    pub fn theme(&self) -> Option<&Theme> {
        self.themes.get(self.active)
    }

    /// The persona in effect.
    pub fn persona(&self) -> String {
        match (&self.persona, self.theme()) {
            (Some(p), _) => p.clone(),
            (None, Some(t)) => t.persona.clone(),
            (None, None) => String::new(),
        }
    }
}
