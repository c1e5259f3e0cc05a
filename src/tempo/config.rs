//! `[tempo]` (which source sets the beat grid, Link) and `[midi_out]` (MIDI clock out).

use serde::Deserialize;

use crate::audio::features::TempoSource;
use crate::config::app::Validate;
use crate::config::diagnostics::{ConfigError, SourceDoc};

/// `[tempo]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TempoConfig {
    /// Priority of the tempo sources: the first alive one sets the grid (`link`, `midi_clock`,
    /// `tap`, `detected`); detection is the last resort even when not listed.
    pub sources: Vec<String>,
    /// Join an Ableton Link session (builds with `--features link` only).
    pub link: bool,
    /// Link tempo when the deck starts a session alone, until the deck has a grid of its own
    /// (then the lone session carries that grid, `crate::tempo::link`).
    pub link_bpm: f64,
}

impl Default for TempoConfig {
    fn default() -> Self {
        TempoConfig {
            sources: ["link", "midi_clock", "tap", "detected"]
                .map(String::from)
                .to_vec(),
            link: false,
            link_bpm: 120.0,
        }
    }
}

impl TempoConfig {
    /// The priority as sources (names already validated; unknown ones are skipped).
    pub(crate) fn sources(&self) -> Vec<TempoSource> {
        self.sources
            .iter()
            .filter_map(|s| crate::core::tempo::parse_source(s))
            .collect()
    }
}

impl Validate for TempoConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        for (i, s) in self.sources.iter().enumerate() {
            if crate::core::tempo::parse_source(s).is_none() {
                errors.push(doc.error_at(
                    &format!("{prefix}.sources"),
                    format!(
                        "entry {} `{s}` is not a tempo source: link, midi_clock, tap or detected",
                        i + 1
                    ),
                    None,
                ));
            }
        }
        if !(20.0..=400.0).contains(&self.link_bpm) {
            errors.push(doc.error_at(
                &format!("{prefix}.link_bpm"),
                "must be from 20 to 400 (BPM)",
                None,
            ));
        }
    }
}

/// `[midi_out]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MidiOutConfig {
    /// Send MIDI clock (24 ppqn, start/stop, song position) to output ports matching this
    /// pattern (`*` wildcards, as `[midi_in]`); empty = no clock out.
    pub(crate) clock: String,
}
