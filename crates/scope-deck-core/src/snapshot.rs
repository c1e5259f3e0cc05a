//! The read-only view the front ends draw from, published on a `watch` channel.
//!
//! Cheap to build (a few small clones at frame rate) and owned, so the renderer never holds a
//! lock or touches engine state.

use std::time::Duration;

use crate::action::ActionSource;
use crate::params::ParamValue;
use crate::state::{AppState, AudioSlice, ControlsSlice, Lifecycle, TransportSlice, UiSlice};

/// One parameter row for the live-parameters panel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamRow {
    /// Key.
    pub key: String,
    /// Current value.
    pub value: ParamValue,
    /// Numeric range, when it has one.
    pub range: Option<(f64, f64)>,
    /// Who set it.
    pub source: ActionSource,
    /// A hand-set value the theme's mapping leaves alone for this much longer (then glides
    /// back from it); `release_holds` hands it back at once.
    pub held: Option<Duration>,
}

/// Everything a front end shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UiSnapshot {
    /// Engine time of this snapshot.
    pub now: Duration,
    /// Backend label.
    pub backend: String,
    /// Server URL.
    pub server: String,
    /// Audio.
    pub audio: AudioSlice,
    /// Connection.
    pub transport: TransportSlice,
    /// Parameters with ranges.
    pub params: Vec<ParamRow>,
    /// Current prompt.
    pub prompt: String,
    /// Last one-shot (name, when).
    pub last_trigger: Option<(String, Duration)>,
    /// Performer input state.
    pub controls: ControlsSlice,
    /// Front-end state.
    pub ui: UiSlice,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Flash duration.
    pub flash: Duration,
    /// Beats per bar.
    pub beats_per_bar: u32,
    /// Themes, prompt with persona, pending quantised change, mappings and triggers.
    pub mapping: crate::mapping::view::MappingView,
    /// Video output statistics (`None` when no video output runs).
    pub video_output: Option<crate::state::VideoOutputSlice>,
    /// Theme file stems in list order (how keymaps and `[[feedback]]` lights name themes; the
    /// mapping view carries display names).
    pub theme_ids: Vec<String>,
    /// Scope's own outputs (availability, what is on) and the reference images in use.
    pub scope_outputs: crate::video::reduce::ScopeOutputsView,
    /// Inputs and outputs that are not ok.
    pub health: crate::health::HealthSlice,
    /// The cue list (`None` without a setlist).
    pub cues: Option<crate::cue::CueView>,
    /// Saved look names, and the one recalled last.
    pub looks: (Vec<String>, Option<usize>),
    /// Blackout, master fade and the record key.
    pub stage: crate::stage::StageSlice,
    /// The prompt crossfader as sent (None when not engaged).
    pub xfade: Option<crate::xfade::XfadeView>,
    /// What a prompt editor of the live prompt starts with (parts joined with ` | `, never a
    /// rendered blend; the crossfader's slots have theirs in `xfade`).
    pub edit_text: String,
    /// Tempo source, confidence, Link and the latency in use.
    pub tempo: TempoView,
    /// Every output (`[[outputs]]`; empty with a single `[server]`).
    #[serde(default)]
    pub outputs: Vec<crate::outputs::OutputView>,
    /// Where actions go (`all`, an output's name, `group <name>`).
    #[serde(default)]
    pub routing: String,
}

/// What the dashboard shows about the room's clock.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TempoView {
    /// Who sets the grid.
    pub active: crate::audio::features::TempoSource,
    /// Pinned by the performer.
    pub pinned: Option<crate::audio::features::TempoSource>,
    /// Confidence of the active source.
    pub confidence: f32,
    /// Beat-locked changes go out this much early.
    pub latency: Duration,
    /// `latency` was measured on the running show (false: `[server] latency_ms`).
    #[serde(default)]
    pub latency_measured: bool,
    /// Link session: peers, playing (None: Link not running).
    pub link: Option<(u32, bool)>,
}

impl TempoView {
    /// From the state.
    pub fn of(state: &AppState) -> Self {
        let t = &state.tempo;
        TempoView {
            active: t.active,
            pinned: t.pinned,
            // The tracker's own figure is live between ticks.
            confidence: if t.active == crate::audio::features::TempoSource::Detected {
                state.audio.frame.confidence.clamp(0.0, 1.0)
            } else {
                t.confidence
            },
            latency: t.latency(),
            latency_measured: t.measured_latency().is_some(),
            link: t.link.map(|l| (l.peers, l.playing)),
        }
    }

    /// `pinned · link 2 peers ▶ · +400 ms` (empty when there is nothing to add).
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if self.pinned.is_some() {
            parts.push("pinned".to_string());
        }
        if let Some((peers, playing)) = self.link {
            parts.push(format!(
                "link {peers} peer{} {}",
                if peers == 1 { "" } else { "s" },
                if playing { "▶" } else { "■" }
            ));
        }
        if !self.latency.is_zero() {
            parts.push(format!(
                "latency {} ms{}",
                self.latency.as_millis(),
                if self.latency_measured {
                    " measured"
                } else {
                    ""
                }
            ));
        }
        parts.join(" · ")
    }
}

impl UiSnapshot {
    /// Builds the snapshot of `state` at `now`.
    pub fn of(state: &AppState, now: Duration) -> Self {
        let store = &state.params.store;
        let params = store
            .entries()
            .iter()
            .map(|(k, e)| ParamRow {
                key: k.clone(),
                value: e.value.clone(),
                range: store.spec(k).and_then(|s| s.range()),
                source: e.source,
                held: state
                    .mapping
                    .engine
                    .holds
                    .get(k)
                    .map(|until| until.saturating_sub(now))
                    .filter(|left| !left.is_zero()),
            })
            .collect();
        UiSnapshot {
            now,
            backend: state.settings.backend.clone(),
            server: state.settings.server.clone(),
            audio: state.audio.clone(),
            transport: state.transport.clone(),
            params,
            prompt: state.params.prompt.clone(),
            last_trigger: state.params.last_trigger.clone(),
            controls: state.controls.clone(),
            ui: state.ui.clone(),
            lifecycle: state.lifecycle,
            flash: state.settings.flash,
            beats_per_bar: state.settings.beats_per_bar,
            mapping: crate::mapping::view::MappingView::of(state, &state.audio.frame),
            video_output: state.video_output.clone(),
            theme_ids: state.mapping.themes.iter().map(|t| t.id.clone()).collect(),
            scope_outputs: crate::video::reduce::ScopeOutputsView::of(state),
            health: state.health.clone(),
            cues: crate::cue::CueView::of(state, now),
            looks: (
                state.looks.list.iter().map(|l| l.name.clone()).collect(),
                state.looks.last,
            ),
            tempo: TempoView::of(state),
            stage: state.stage.clone(),
            xfade: crate::xfade::XfadeView::of(state),
            edit_text: crate::xfade::edit_text(state, None),
            outputs: crate::outputs::views(state),
            routing: state.outputs.routing_label(),
        }
    }

    /// What a prompt editor of `slot` (None: the live prompt) starts with.
    pub fn edit_text_for(&self, slot: Option<crate::xfade::Slot>) -> &str {
        slot.and_then(|s| {
            self.xfade
                .as_ref()?
                .edit_texts
                .iter()
                .find(|(k, _)| *k == s)
                .map(|(_, t)| t.as_str())
        })
        .unwrap_or(&self.edit_text)
    }

    /// Whether a beat happened within the flash window.
    pub fn beat_flash(&self) -> bool {
        self.audio
            .last_beat
            .as_ref()
            .is_some_and(|(_, at)| self.now.saturating_sub(*at) < self.flash)
    }

    /// The beat display should say "no beat" rather than a stale BPM: the tempo is the
    /// detector's and the input is lost or silent, or no beat came for a while.
    pub fn no_beat(&self) -> bool {
        use crate::audio::features::TempoSource;
        use crate::health::HealthState;
        if self.audio.tempo_source != TempoSource::Detected || self.audio.frame.bpm <= 0.0 {
            return false;
        }
        matches!(self.health.audio(), HealthState::Lost | HealthState::Silent)
            || self
                .audio
                .last_beat
                .as_ref()
                .is_none_or(|(_, at)| self.now.saturating_sub(*at) > crate::health::NO_BEAT_AFTER)
    }

    /// The recording marker: `REC 1:05 show-20261206-031500.mkv` while the record key is on
    /// (the file once a recorder writes one), None otherwise.
    pub fn recording(&self) -> Option<String> {
        let since = self.stage.recording?;
        let elapsed = crate::stage::clock(self.now.saturating_sub(since));
        let file = self
            .video_output
            .iter()
            .flat_map(|v| v.stats.sinks.iter())
            .filter(|k| k.running)
            .find_map(|k| k.file.as_ref())
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        Some(match file {
            Some(f) => format!("REC {elapsed} {f}"),
            None => format!("REC {elapsed}"),
        })
    }

    /// Whether a one-shot is still flashing.
    pub fn trigger_flash(&self) -> Option<&str> {
        self.last_trigger
            .as_ref()
            .filter(|(_, at)| self.now.saturating_sub(*at) < self.flash)
            .map(|(n, _)| n.as_str())
    }
}

impl Default for UiSnapshot {
    fn default() -> Self {
        UiSnapshot::of(&AppState::new(Default::default()), Duration::ZERO)
    }
}
