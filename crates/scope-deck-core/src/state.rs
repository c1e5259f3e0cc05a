//! The application state, split into slices that each concern owns. Only the reducer mutates it.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::action::ActionSource;
use crate::audio::features::{AudioEvent, AudioFrame, TempoSource};
use crate::params::{ParamStore, ParamValue};
use crate::transport::types::{ConnState, LinkStats, WarmUp};

/// How many recent entries the activity and notice lists keep.
pub const RECENT_LEN: usize = 64;

/// Everything the engine knows.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings fixed at start-up (from config.toml).
    pub settings: CoreSettings,
    /// Audio analysis results.
    pub audio: AudioSlice,
    /// Connection to the server.
    pub transport: TransportSlice,
    /// Parameters and prompt.
    pub params: ParamsSlice,
    /// Performer input: recent actions, panic, confirmations.
    pub controls: ControlsSlice,
    /// Front-end mode and notices.
    pub ui: UiSlice,
    /// Running, or on the way out.
    pub lifecycle: Lifecycle,
    /// Themes, prompts, persona and the mapping engine.
    pub mapping: crate::mapping::slice::MappingSlice,
    /// The video output's statistics (`None` when no video output runs).
    pub video_output: Option<VideoOutputSlice>,
    /// Server-side video features (Scope's own outputs, reference images).
    pub video: crate::video::reduce::VideoSlice,
    /// Input and output health (signal lost, silent, MIDI gone, sink failed...).
    pub health: crate::health::HealthSlice,
    /// The setlist and its cue launches.
    pub cues: crate::cue::CueSlice,
    /// Saved looks.
    pub looks: crate::look::LookSlice,
    /// Tempo sources, the arbitrated beat grid, latency compensation.
    pub tempo: crate::tempo::TempoSlice,
    /// Blackout, master fade and recording (applied by the video edge).
    pub stage: crate::stage::StageSlice,
    /// The prompt crossfader (slots A and B, position).
    pub xfade: crate::xfade::XfadeSlice,
    /// Several outputs, routing and failover (empty with a single `[server]`).
    pub outputs: crate::outputs::OutputsSlice,
}

/// What the video output reports, with the frame rate derived from its counters.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct VideoOutputSlice {
    /// The latest statistics.
    pub stats: crate::video::VideoStats,
    /// Decoded frames per second over the last report interval.
    pub fps_in: f32,
    /// When the latest statistics arrived.
    pub at: std::time::Duration,
    /// When the decoded frame counter last moved (None: no frame yet): figures older than a
    /// second are shown greyed with their age, never as live.
    pub last_frame_at: Option<std::time::Duration>,
    /// When the last headless `video` event was emitted (one a second).
    pub event_at: Option<std::time::Duration>,
}

/// What panic does (config `[controls] panic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PanicMode {
    /// What the backend can do: `pause` where the server pauses (Scope, dry run); on the hosted
    /// daydream backend, which has no pause or cache reset, the safe prompt plus a local
    /// blackout.
    #[default]
    Auto,
    /// Pause generation and reset the cache.
    Pause,
    /// Switch to the safe prompt and reset the cache (the picture keeps moving).
    SafePrompt,
    /// Black every local output at once (nothing is sent; works on every backend).
    Blackout,
}

/// What a panic does on one backend, resolved from [`PanicMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PanicPlan {
    /// Send `paused: true`.
    pub pause: bool,
    /// Send the safe prompt.
    pub safe_prompt: bool,
    /// Send `reset_cache`.
    pub reset_cache: bool,
    /// Black the local outputs.
    pub blank: bool,
}

impl PanicMode {
    /// What this mode does on `backend` (`scope`, `scope-osc`, `daydream`, `dry-run`).
    pub fn plan(self, backend: &str) -> PanicPlan {
        let hosted = backend == "daydream";
        let mode = match self {
            PanicMode::Auto if hosted => {
                return PanicPlan {
                    safe_prompt: true,
                    blank: true,
                    ..PanicPlan::default()
                };
            }
            PanicMode::Auto => PanicMode::Pause,
            m => m,
        };
        match mode {
            PanicMode::Pause => PanicPlan {
                pause: true,
                reset_cache: !hosted,
                ..PanicPlan::default()
            },
            PanicMode::SafePrompt => PanicPlan {
                safe_prompt: true,
                reset_cache: !hosted,
                ..PanicPlan::default()
            },
            _ => PanicPlan {
                blank: true,
                ..PanicPlan::default()
            },
        }
    }

    /// Why this mode cannot work on `backend` (None when it can): `--check-config` refuses it.
    pub fn unsupported_on(self, backend: &str) -> Option<&'static str> {
        (self == PanicMode::Pause && backend == "daydream").then_some(
            "panic = \"pause\" cannot work on the daydream backend (the hosted API has no pause \
             or cache reset); use \"auto\" (safe prompt + local blackout), \"safe_prompt\" or \
             \"blackout\"",
        )
    }
}

/// Start-up settings the reducer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreSettings {
    /// Backend label (`scope`, `scope-osc`, `daydream`, `dry-run`).
    pub backend: String,
    /// Server URL shown on the dashboard.
    pub server: String,
    /// What panic does.
    pub panic_mode: PanicMode,
    /// Prompt used by `PanicMode::SafePrompt`.
    pub safe_prompt: String,
    /// Ask before quitting while streaming.
    pub confirm_quit: bool,
    /// Initial prompt.
    pub initial_prompt: String,
    /// How long a one-shot flash stays lit on the dashboard.
    pub flash: Duration,
    /// Beats per bar (beat indicator).
    pub beats_per_bar: u32,
    /// Scope's own outputs and the VACE reference images (`[video.scope_outputs]`,
    /// `[video.vace]`).
    pub video: crate::video::reduce::VideoSettings,
    /// Where `save_look` writes (`<config dir>/looks`); `None` = nowhere (kept in memory).
    pub looks_dir: Option<std::path::PathBuf>,
    /// File sinks that follow the record key (`on_key = true`); without one `record` says so.
    pub key_recorders: usize,
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            backend: "dry-run".into(),
            server: "http://127.0.0.1:8000".into(),
            panic_mode: PanicMode::Auto,
            safe_prompt: "calm dark blue gradient, soft light".into(),
            confirm_quit: true,
            initial_prompt: "cosmic nebula, swirling colors, deep space".into(),
            flash: Duration::from_millis(250),
            beats_per_bar: 4,
            video: Default::default(),
            looks_dir: None,
            key_recorders: 0,
        }
    }
}

/// Audio analysis as last published.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct AudioSlice {
    /// Latest features.
    pub frame: AudioFrame,
    /// Last beat event and when it arrived (engine time).
    pub last_beat: Option<(AudioEvent, Duration)>,
    /// Last onset and when it arrived (engine time).
    pub last_onset: Option<(AudioEvent, Duration)>,
    /// Beats seen.
    pub beats: u64,
    /// Onsets seen.
    pub onsets: u64,
    /// Tempo source in use.
    pub tempo_source: TempoSource,
    /// Source description (`demo`, device name, file).
    pub source: String,
    /// Source problem, if any (device gone, file unreadable).
    pub problem: Option<String>,
    /// Peak-hold heights of the spectrum bars (decay over engine time).
    pub spectrum_peaks: [f32; crate::audio::features::SPECTRUM_BARS],
    /// When the last frame arrived (engine time).
    pub frame_at: Duration,
}

/// Connection as last reported by the transport.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct TransportSlice {
    /// State machine position.
    pub state: ConnState,
    /// Why it is there.
    pub reason: Option<String>,
    /// Warm-up countdown while loading.
    pub warmup: Option<WarmUp>,
    /// Health figures.
    pub stats: LinkStats,
    /// When `stats` arrived (they stop during an outage: shown greyed with their age then).
    pub stats_at: Option<Duration>,
    /// When the live session was lost (recordings are marked at both ends of the outage).
    pub lost_at: Option<Duration>,
    /// Recent payloads put on the wire (dry run shows them), newest last.
    pub sent: VecDeque<(Duration, serde_json::Value)>,
    /// Messages sent in total.
    pub sent_count: u64,
    /// Last error from the transport.
    pub last_error: Option<String>,
    /// Commands the engine could not hand over because the transport's lane was full.
    pub commands_dropped: u64,
    /// When the last "not keeping up" notice was shown.
    pub drop_noticed_at: Option<Duration>,
}

/// Parameters and prompt.
#[derive(Debug, Clone, Default)]
pub struct ParamsSlice {
    /// Validated desired state, replayed on reconnect.
    pub store: ParamStore,
    /// Current prompt text (without persona).
    pub prompt: String,
    /// The current prompt's uncomposed parts (text, weight), what the editor edits.
    pub parts: Vec<(String, f64)>,
    /// Last one-shot fired and when (dashboard flash).
    pub last_trigger: Option<(String, Duration)>,
}

/// What the performer did recently.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ActivityEntry {
    /// Engine time.
    pub at: Duration,
    /// Human label.
    pub label: String,
    /// Where it came from.
    pub source: ActionSource,
}

/// State saved when panic fires, restored on release.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PanicSnapshot {
    /// When panic fired.
    pub since: Duration,
    /// `paused` before panic.
    pub paused: Option<ParamValue>,
    /// `prompts` before panic.
    pub prompts: Option<ParamValue>,
}

/// Performer-input state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ControlsSlice {
    /// Recent actions, newest last.
    pub recent: VecDeque<ActivityEntry>,
    /// Set while panic is engaged.
    pub panic: Option<PanicSnapshot>,
    /// A quit is waiting for confirmation (since when).
    pub quit_pending: Option<Duration>,
    /// MIDI learn progress.
    pub learn: crate::midi::learn::LearnStage,
    /// MIDI input activity per device (dashboard activity pane).
    pub midi: crate::midi::activity::MidiInputs,
    /// Show mode (key lock) is on: dangerous keys need a second press.
    pub show_mode: bool,
    /// A dangerous key waiting for its second press in show mode (since when).
    pub confirm: Option<(crate::action::Action, Duration)>,
}

/// A dashboard's mode (each front end has its own; the engine has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Playing.
    #[default]
    Normal,
    /// Help overlay open.
    Help,
    /// Editing the prompt text.
    PromptEdit,
    /// Reading the log and notice history (scrollable).
    Log,
}

/// Severity of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Informational.
    Info,
    /// Something the performer should know.
    Warn,
    /// Something failed.
    Error,
}

/// A short message for the status line / activity pane.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Notice {
    /// Engine time.
    pub at: Duration,
    /// Severity.
    pub level: Level,
    /// Text.
    pub message: String,
}

/// What the engine keeps for the front ends. Each front end owns its own view (mode, help
/// page, log scroll, the prompt editor's draft, the preview overlay): only show-changing
/// actions reach the engine.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct UiSlice {
    /// Recent notices, newest last.
    pub notices: VecDeque<Notice>,
    /// View actions that came from a MIDI binding or a script (no dashboard of their own):
    /// every dashboard applies those newer than the last it saw.
    pub view_actions: ViewActions,
}

/// How many recent view actions the snapshot carries (a dashboard that misses more between
/// two frames misses only view changes).
pub const VIEW_ACTIONS_KEPT: usize = 8;

/// View actions for every dashboard, numbered.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ViewActions {
    /// Number of the newest one (0: none yet).
    pub serial: u64,
    /// The newest [`VIEW_ACTIONS_KEPT`], with their numbers, oldest first.
    pub recent: VecDeque<(u64, crate::action::Action)>,
}

impl ViewActions {
    /// Adds one for every dashboard.
    pub fn push(&mut self, action: crate::action::Action) {
        self.serial += 1;
        if self.recent.len() >= VIEW_ACTIONS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back((self.serial, action));
    }

    /// Those newer than `seen`.
    pub fn since(&self, seen: u64) -> impl Iterator<Item = &crate::action::Action> {
        self.recent
            .iter()
            .filter(move |(n, _)| *n > seen)
            .map(|(_, a)| a)
    }
}

/// Running or shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Normal operation.
    #[default]
    Running,
    /// Waiting for the transport's goodbye.
    ShuttingDown,
    /// Done: the engine exits.
    Finished,
}

impl AppState {
    /// A fresh state from start-up settings.
    pub fn new(settings: CoreSettings) -> Self {
        let params = ParamsSlice {
            prompt: settings.initial_prompt.clone(),
            ..ParamsSlice::default()
        };
        let mut params = params;
        params.store = ParamStore::new();
        AppState {
            settings,
            audio: AudioSlice::default(),
            transport: TransportSlice::default(),
            params,
            controls: ControlsSlice::default(),
            ui: UiSlice::default(),
            lifecycle: Lifecycle::Running,
            mapping: Default::default(),
            video_output: None,
            video: Default::default(),
            health: Default::default(),
            cues: Default::default(),
            looks: Default::default(),
            tempo: Default::default(),
            stage: Default::default(),
            xfade: Default::default(),
            outputs: Default::default(),
        }
    }
}

/// Pushes onto a bounded deque, dropping the oldest.
pub fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= RECENT_LEN {
        q.pop_front();
    }
    q.push_back(item);
}
