//! What a key, a MIDI binding or a headless script line may ask for.
//!
//! Actions are data (serde, tagged by `action`) so keymaps, MIDI bindings and the headless
//! JSON-lines front end all name them the same way: `{"action":"reset_cache"}`,
//! `{"action":"set_param","key":"noise_scale","value":0.4}`.

use serde::{Deserialize, Serialize};

use crate::params::ParamValue;

/// A request from the performer (or a script). The reducer decides what it means in the
/// current state; an action never does I/O by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Leave. While streaming the first press asks for confirmation; a second confirms.
    Quit,
    /// Leave now, no confirmation (scripts, second Ctrl-C).
    ForceQuit,
    /// Dismiss a pending confirmation, stop MIDI learn, or close a dashboard's overlay.
    Cancel,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Show or hide the large video preview (over the meters; keys keep working).
    TogglePreview,
    /// Pause generation (`paused: true`).
    Pause,
    /// Resume generation (`paused: false`); also releases panic.
    Resume,
    /// Toggle between pause and resume.
    TogglePause,
    /// One-shot cache reset: the model forgets its temporal context.
    ResetCache,
    /// Emergency: pause or switch to the safe prompt (config), reset the cache, show it loudly.
    Panic,
    /// Leave the panic state and restore what was playing before.
    ReleasePanic,
    /// Set a parameter to an absolute value.
    SetParam {
        /// Scope parameter key (`noise_scale`, `vace_context_scale`, ...).
        key: String,
        /// New value; numbers are clamped to the parameter's range.
        value: ParamValue,
    },
    /// Move a numeric parameter by `delta`, clamped to its range.
    AdjustParam {
        /// Scope parameter key.
        key: String,
        /// Signed change.
        delta: f64,
    },
    /// Replace the current prompt text (sent as a single full-weight prompt). A typed prompt
    /// is dressed in the active theme's template (persona, style) and crossfades over the
    /// theme's transition; `raw` sends the text exactly as written, as a cut.
    SetPrompt {
        /// The new prompt.
        text: String,
        /// Send the text as written (no theme template), as a hard cut.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        raw: bool,
    },
    /// Drop the connection and connect again (keeps every parameter).
    Reconnect,
    /// Agree to download the loaded pipeline's missing models on the server.
    DownloadModels,
    /// Next generation theme.
    ThemeNext,
    /// Previous generation theme.
    ThemePrev,
    /// Select theme by 0-based index in the theme list.
    SelectTheme {
        /// 0-based index.
        index: usize,
    },
    /// Next prompt in the active theme's list.
    PromptNext,
    /// Previous prompt in the active theme's list.
    PromptPrev,
    /// Select prompt by 0-based index in the active theme's list.
    SelectPrompt {
        /// 0-based index.
        index: usize,
    },
    /// Set the persona used in `{persona} {style}` prompts.
    SetPersona {
        /// Persona word (`androgynous`, `female`, `male`, or any text).
        name: String,
    },
    /// Tap tempo: successive taps set the BPM.
    TapTempo,
    /// Nudge the tempo by `bpm` (signed).
    NudgeTempo {
        /// BPM change.
        bpm: f64,
    },
    /// Declare that the current beat is beat 1 of the bar.
    Redownbeat,
    /// Hand every value the performer holds against the theme's mappings back to them now
    /// (instead of waiting out the theme's `hold_ms`).
    ReleaseHolds,
    /// Enable or disable a named mapping of the active theme.
    ToggleMapping {
        /// Mapping name as written in the theme.
        name: String,
    },
    /// Start editing the prompt text in the TUI; with the crossfader engaged (or `slot` given)
    /// it edits slot A or B (tab switches between them).
    EditPrompt {
        /// `a` or `b`: edit that crossfader slot.
        #[serde(default)]
        slot: Option<crate::xfade::Slot>,
    },
    /// Put a prompt in crossfader slot A or B: `text` (parts separated by `|`, keeping the
    /// slot's weights), `index` (0-based, from the active theme's list), or neither: the prompt
    /// playing now. Engages the crossfader (the other slot gets the live prompt if empty).
    SetPromptSlot {
        /// `a` or `b`.
        slot: crate::xfade::Slot,
        /// Prompt text; `a | b` gives a blend with the slot's weights.
        #[serde(default)]
        text: Option<String>,
        /// 0-based index into the active theme's prompts.
        #[serde(default)]
        index: Option<usize>,
    },
    /// Leave the crossfader: the prompt at its nearer end keeps playing.
    CrossfadeOff,
    /// Set a named theme macro (a MIDI knob or fader), 0..1; mappings read it as
    /// `macro.<name>`.
    SetMacro {
        /// Macro name as declared in the theme's `[macros]`.
        name: String,
        /// 0..1 (clamped).
        value: f64,
    },
    /// MIDI learn: the next touched control is bound to the next key action.
    Learn,
    /// Apply the pipeline-reloading changes the hosted (daydream) backend is holding back
    /// during a show (~30 s without video).
    ConfirmReload,
    /// Turn one of the Scope server's own outputs (NDI/Spout/Syphon, `output_sinks`) on or off.
    ToggleScopeOutput {
        /// `ndi`, `spout` or `syphon`.
        output: crate::video::scope_api::ScopeOutput,
    },
    /// Set one of the Scope server's own outputs explicitly (for scripts: no toggle state).
    SetScopeOutput {
        /// `ndi`, `spout` or `syphon`.
        output: crate::video::scope_api::ScopeOutput,
        /// On or off.
        enabled: bool,
    },
    /// Upload the `[video.vace]` reference images to the server again and send
    /// `vace_ref_images` (after editing the files on disk).
    UploadRefImages,
    /// Open or close the log and notice history (arrows / page keys scroll it).
    ToggleLog,
    /// Show mode (key lock): dangerous keys (reconnect, quit, learn, server outputs) need a
    /// second press; everything that performs still acts at once.
    ToggleShowMode,
    /// Capture the live state (theme, prompts, the performer's parameters, mapping toggles) as a
    /// look; without a name it is `look-N`. Written to the config folder's `looks/<name>.toml`.
    SaveLook {
        /// Letters, digits, `-` and `_`.
        #[serde(default)]
        name: Option<String>,
    },
    /// Bring a saved look back (the theme with its transition); without a name the next one.
    RecallLook {
        /// Look name.
        #[serde(default)]
        name: Option<String>,
    },
    /// Cue list: land the standby cue on its launch rule (again while it waits: now).
    CueGo,
    /// Cue list: move standby to the next cue (nothing fires).
    CueNext,
    /// Cue list: move standby to the previous cue (nothing fires).
    CuePrev,
    /// Cue list: land a cue by 1-based number or name on its launch rule.
    CueJump {
        /// `3` or `"drop"`.
        cue: crate::cue::CueRef,
    },
    /// Forget the held tap tempo: the next source by priority leads again.
    ClearTap,
    /// Pin the tempo source (`auto`, `link`, `midi_clock`, `tap`, `detected`).
    TempoSource {
        /// Which one; `auto` = by the `[tempo] sources` priority.
        source: crate::tempo::SourceChoice,
    },
    /// Pin the next tempo source in priority order (after the last: automatic again).
    CycleTempoSource,
    /// Start or stop the Link session's transport (start/stop sync).
    LinkPlay {
        /// Start (true) or stop.
        playing: bool,
    },
    /// Every local video output black at once (toggle; `on` sets it). Acts in the deck's own
    /// output path, so it works the same on every backend.
    Blackout {
        /// On or off (omitted: toggle).
        #[serde(default)]
        on: Option<bool>,
    },
    /// Fade the local video outputs to black over `beats` beats at the current tempo (4 when
    /// omitted); pressed again (or from black) it fades back in. The fader is
    /// `set_param key = "master_fade"`.
    MasterFade {
        /// Length in beats.
        #[serde(default)]
        beats: Option<f64>,
    },
    /// Start or stop recording the received video (toggle; `on` sets it) with the file sinks
    /// marked `on_key = true`.
    Record {
        /// On or off (omitted: toggle).
        #[serde(default)]
        on: Option<bool>,
    },
    /// Send the performer's actions to one output (by 1-based number or name; selecting the
    /// selected one again, or neither field, means all again) or to a `group` — a mixer's
    /// channel select. Panic, blackout, tempo and cues always reach every output.
    OutputSelect {
        /// The output (omitted: all, or the group).
        #[serde(default)]
        output: Option<crate::outputs::OutputRef>,
        /// A group of outputs (`[[outputs]] group`).
        #[serde(default)]
        group: Option<String>,
    },
}

impl Action {
    /// Whether this action only changes what a dashboard shows (help, the log view, the prompt
    /// editor, the preview overlay): a dashboard's own keys handle it in that dashboard, the
    /// show does not change. `cancel` also closes a dashboard's overlay but reaches the engine
    /// too (it stops MIDI learn), so it is not one of these.
    pub fn is_view(&self) -> bool {
        matches!(
            self,
            Action::ToggleHelp
                | Action::TogglePreview
                | Action::ToggleLog
                | Action::EditPrompt { .. }
        )
    }

    /// The snake_case name, as written in keymaps and shown in the activity log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ForceQuit => "force_quit",
            Action::Cancel => "cancel",
            Action::ToggleHelp => "toggle_help",
            Action::TogglePreview => "toggle_preview",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::TogglePause => "toggle_pause",
            Action::ResetCache => "reset_cache",
            Action::Panic => "panic",
            Action::ReleasePanic => "release_panic",
            Action::SetParam { .. } => "set_param",
            Action::AdjustParam { .. } => "adjust_param",
            Action::SetPrompt { .. } => "set_prompt",
            Action::Reconnect => "reconnect",
            Action::DownloadModels => "download_models",
            Action::ThemeNext => "theme_next",
            Action::ThemePrev => "theme_prev",
            Action::SelectTheme { .. } => "select_theme",
            Action::PromptNext => "prompt_next",
            Action::PromptPrev => "prompt_prev",
            Action::SelectPrompt { .. } => "select_prompt",
            Action::SetPersona { .. } => "set_persona",
            Action::TapTempo => "tap_tempo",
            Action::NudgeTempo { .. } => "nudge_tempo",
            Action::Redownbeat => "redownbeat",
            Action::ReleaseHolds => "release_holds",
            Action::ToggleMapping { .. } => "toggle_mapping",
            Action::EditPrompt { .. } => "edit_prompt",
            Action::SetPromptSlot { .. } => "set_prompt_slot",
            Action::CrossfadeOff => "crossfade_off",
            Action::SetMacro { .. } => "set_macro",
            Action::Learn => "learn",
            Action::ConfirmReload => "confirm_reload",
            Action::ToggleScopeOutput { .. } => "toggle_scope_output",
            Action::SetScopeOutput { .. } => "set_scope_output",
            Action::UploadRefImages => "upload_ref_images",
            Action::ToggleLog => "toggle_log",
            Action::ToggleShowMode => "toggle_show_mode",
            Action::SaveLook { .. } => "save_look",
            Action::RecallLook { .. } => "recall_look",
            Action::CueGo => "cue_go",
            Action::CueNext => "cue_next",
            Action::CuePrev => "cue_prev",
            Action::CueJump { .. } => "cue_jump",
            Action::ClearTap => "clear_tap",
            Action::TempoSource { .. } => "tempo_source",
            Action::CycleTempoSource => "cycle_tempo_source",
            Action::LinkPlay { .. } => "link_play",
            Action::Blackout { .. } => "blackout",
            Action::MasterFade { .. } => "master_fade",
            Action::Record { .. } => "record",
            Action::OutputSelect { .. } => "output_select",
        }
    }

    /// The action has no fields: its name alone says all of it (`"reset_cache"`).
    pub fn is_plain(&self) -> bool {
        !matches!(
            self,
            Action::SetParam { .. }
                | Action::AdjustParam { .. }
                | Action::SetPrompt { .. }
                | Action::SelectTheme { .. }
                | Action::SelectPrompt { .. }
                | Action::SetPersona { .. }
                | Action::NudgeTempo { .. }
                | Action::ToggleMapping { .. }
                | Action::SetMacro { .. }
                | Action::ToggleScopeOutput { .. }
                | Action::SetScopeOutput { .. }
                | Action::CueJump { .. }
                | Action::TempoSource { .. }
                | Action::LinkPlay { .. }
                | Action::SetPromptSlot { .. }
                | Action::OutputSelect { .. }
        )
    }

    /// A short human label for the activity log and help overlay.
    pub fn describe(&self) -> String {
        match self {
            Action::SetParam { key, value } => format!("set {key} = {value}"),
            Action::AdjustParam { key, delta } => format!("{key} {delta:+}"),
            Action::SetPrompt { text, .. } => format!("prompt \"{text}\""),
            Action::SetPromptSlot { slot, text, index } => match (text, index) {
                (Some(t), _) => format!("slot {} \"{t}\"", slot.label()),
                (None, Some(i)) => format!("slot {} ← prompt #{}", slot.label(), i + 1),
                (None, None) => format!("slot {} ← live prompt", slot.label()),
            },
            Action::EditPrompt { slot: Some(s) } => format!("edit slot {}", s.label()),
            Action::SelectTheme { index } => format!("theme #{}", index + 1),
            Action::SelectPrompt { index } => format!("prompt #{}", index + 1),
            Action::SetPersona { name } => format!("persona {name}"),
            Action::NudgeTempo { bpm } => format!("tempo {bpm:+} BPM"),
            Action::ToggleMapping { name } => format!("toggle mapping {name}"),
            Action::SetMacro { name, value } => format!("macro {name} = {value:.2}"),
            Action::ToggleScopeOutput { output } => {
                format!("server {} output on/off", output.label())
            }
            Action::SetScopeOutput { output, enabled } => format!(
                "server {} output {}",
                output.label(),
                if *enabled { "on" } else { "off" }
            ),
            Action::UploadRefImages => "upload reference images".into(),
            Action::CueGo => "cue GO".into(),
            Action::SaveLook { name } => format!("save look {}", name.as_deref().unwrap_or("")),
            Action::RecallLook { name } => {
                format!("recall look {}", name.as_deref().unwrap_or("(next)"))
            }
            Action::TempoSource { source } => format!(
                "tempo source {}",
                source.pinned().map_or("auto", crate::tempo::label)
            ),
            Action::LinkPlay { playing } => {
                format!("Link {}", if *playing { "start" } else { "stop" })
            }
            Action::Blackout { on: Some(on) } => {
                format!("blackout {}", if *on { "on" } else { "off" })
            }
            Action::MasterFade { beats: Some(b) } => format!("master fade {b} beats"),
            Action::Record { on: Some(on) } => {
                format!("record {}", if *on { "on" } else { "off" })
            }
            Action::OutputSelect { output, group } => match (output, group) {
                (Some(crate::outputs::OutputRef::Number(n)), _) => format!("output {n}"),
                (Some(crate::outputs::OutputRef::Name(s)), _) => format!("output {s}"),
                (None, Some(g)) => format!("output group {g}"),
                (None, None) => "outputs: all".into(),
            },
            Action::CueJump { cue } => match cue {
                crate::cue::CueRef::Number(n) => format!("cue jump {n}"),
                crate::cue::CueRef::Name(s) => format!("cue jump {s}"),
            },
            other => other.name().replace('_', " "),
        }
    }

    /// Parses the short form used in keymaps (`"reset_cache"`) for actions without fields.
    pub fn from_name(name: &str) -> Result<Action, String> {
        serde_json::from_value(serde_json::json!({ "action": name })).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("missing field") {
                format!("action `{name}` needs fields; write it as a table: {{ action = \"{name}\", ... }}")
            } else {
                format!("unknown action `{name}`")
            }
        })
    }
}

/// Where an action came from, shown on the dashboard next to the value it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionSource {
    /// A key press.
    #[default]
    Keyboard,
    /// A MIDI binding.
    Midi,
    /// A line on the headless stdin.
    Script,
    /// The theme's mapping engine.
    Mapping,
    /// The engine itself (timers, reconnect replays).
    System,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_uses_action_tag() {
        let a: Action =
            serde_json::from_str(r#"{"action":"set_param","key":"noise_scale","value":0.5}"#)
                .unwrap();
        assert_eq!(
            a,
            Action::SetParam {
                key: "noise_scale".into(),
                value: serde_json::json!(0.5)
            }
        );
        assert_eq!(
            serde_json::to_string(&Action::Quit).unwrap(),
            r#"{"action":"quit"}"#
        );
    }

    #[test]
    fn scope_output_actions_parse_from_scripts() {
        let a: Action =
            serde_json::from_str(r#"{"action":"set_scope_output","output":"ndi","enabled":true}"#)
                .unwrap();
        assert_eq!(
            a,
            Action::SetScopeOutput {
                output: crate::video::scope_api::ScopeOutput::Ndi,
                enabled: true
            }
        );
        assert!(
            serde_json::from_str::<Action>(r#"{"action":"toggle_scope_output","output":"hdmi"}"#)
                .is_err()
        );
        assert_eq!(
            Action::from_name("upload_ref_images").unwrap(),
            Action::UploadRefImages
        );
    }

    #[test]
    fn from_name_explains_missing_fields_and_unknown_names() {
        assert_eq!(
            Action::from_name("reset_cache").unwrap(),
            Action::ResetCache
        );
        assert!(
            Action::from_name("set_param")
                .unwrap_err()
                .contains("needs fields")
        );
        assert!(
            Action::from_name("explode")
                .unwrap_err()
                .contains("unknown action")
        );
    }

    #[test]
    fn plain_actions_parse_from_their_name_alone() {
        for a in [
            Action::Quit,
            Action::DownloadModels,
            Action::ToggleShowMode,
            Action::NudgeTempo { bpm: 1.0 },
            Action::SetMacro {
                name: "x".into(),
                value: 0.5,
            },
        ] {
            assert_eq!(Action::from_name(a.name()).is_ok(), a.is_plain(), "{a:?}");
        }
    }

    #[test]
    fn name_matches_serde_tag() {
        for a in [
            Action::Quit,
            Action::Panic,
            Action::TapTempo,
            Action::EditPrompt { slot: None },
            Action::ThemeNext,
        ] {
            let v = serde_json::to_value(&a).unwrap();
            assert_eq!(v["action"], a.name());
        }
    }
}
