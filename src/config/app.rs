//! `config.toml`: one section per concern, each owned by its module.

use serde::Deserialize;

use crate::config::diagnostics::{ConfigError, SourceDoc};

/// The validated contents of `config.toml` (defaults filled in).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// `[server]`: backend, URL, pipeline.
    pub(crate) server: crate::transport::config::ServerConfig,
    /// `[audio]`: input source and analysis.
    pub(crate) audio: crate::audio::config::AudioConfig,
    /// `[engine]`: the control clock.
    pub(crate) engine: EngineConfig,
    /// `[ui]`: frame rate, theme and keymap selection.
    pub(crate) ui: crate::ui::config::UiConfig,
    /// `[controls]`: panic behaviour, confirmations, MIDI.
    pub(crate) controls: crate::controls::config::ControlsConfig,
    /// `[prompt]`: starting prompt.
    pub(crate) prompt: PromptConfig,
    /// `[logging]`: level and directory.
    pub(crate) logging: LoggingConfig,
    /// `[daydream]`: the hosted StreamDiffusion backend.
    pub(crate) daydream: crate::transport::daydream::DaydreamConfig,
    /// `[video]`: output sinks, terminal preview, video input.
    pub(crate) video: crate::video::config::VideoConfig,
    /// `[show]`: the setlist.
    pub(crate) show: ShowConfig,
    /// `[tempo]`: tempo source priority, Ableton Link.
    pub(crate) tempo: crate::tempo::config::TempoConfig,
    /// `[midi_out]`: MIDI clock out.
    pub(crate) midi_out: crate::tempo::config::MidiOutConfig,
    /// `[[outputs]]`: several servers or hosted streams (empty: the single `[server]`).
    pub(crate) outputs: Vec<crate::config::outputs::OutputConfig>,
    /// The parsed file, kept to locate cross-file errors.
    #[serde(skip)]
    doc: Option<SourceDoc>,
}

impl PartialEq for AppConfig {
    fn eq(&self, o: &Self) -> bool {
        self.server == o.server
            && self.audio == o.audio
            && self.engine == o.engine
            && self.ui == o.ui
            && self.controls == o.controls
            && self.prompt == o.prompt
            && self.logging == o.logging
            && self.daydream == o.daydream
            && self.video == o.video
            && self.show == o.show
            && self.tempo == o.tempo
            && self.midi_out == o.midi_out
            && self.outputs == o.outputs
    }
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EngineConfig {
    /// Control clock in Hz: mapping, smoothing and the parameter changes they send run at
    /// this rate, and the MIDI router flushes at it, whatever the dashboard's `ui.fps`.
    pub(crate) control_hz: f64,
}

impl EngineConfig {
    /// The accepted range of `control_hz`.
    pub(crate) const CONTROL_HZ: std::ops::RangeInclusive<f64> = 30.0..=1000.0;
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { control_hz: 100.0 }
    }
}

impl Validate for EngineConfig {
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>) {
        if !Self::CONTROL_HZ.contains(&self.control_hz) {
            errors.push(doc.error_at(
                &format!("{prefix}.control_hz"),
                "must be from 30 to 1000 (Hz)",
                None,
            ));
        }
    }
}

/// `[show]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ShowConfig {
    /// Setlist file (relative to the config folder); empty = none. `--setlist` overrides it.
    pub(crate) setlist: String,
}

/// `[prompt]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PromptConfig {
    /// The prompt sent with the first offer.
    pub(crate) initial: String,
}

impl Default for PromptConfig {
    fn default() -> Self {
        PromptConfig {
            initial: "cosmic nebula, swirling colors, deep space".into(),
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive.
    pub(crate) level: String,
    /// Log directory; empty = `$XDG_STATE_HOME/scope-deck`.
    pub(crate) dir: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            dir: String::new(),
        }
    }
}

/// A section that can check itself after parsing, reporting into the shared error list.
pub(crate) trait Validate {
    /// Pushes every problem found; `prefix` is the section's key path (`server`).
    fn validate(&self, doc: &SourceDoc, prefix: &str, errors: &mut Vec<ConfigError>);
}

impl AppConfig {
    /// Parses and validates `text` named `name`; `None` if anything was wrong (errors pushed).
    pub fn from_text(name: &str, text: &str, errors: &mut Vec<ConfigError>) -> Option<AppConfig> {
        let doc = match SourceDoc::parse(name, text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let mut cfg: AppConfig = match doc.deserialize() {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let before = errors.len();
        cfg.server.validate(&doc, "server", errors);
        cfg.audio.validate(&doc, "audio", errors);
        cfg.engine.validate(&doc, "engine", errors);
        cfg.ui.validate(&doc, "ui", errors);
        cfg.controls.validate(&doc, "controls", errors);
        cfg.daydream.validate(&doc, "daydream", errors);
        cfg.video.validate(&doc, "video", errors);
        cfg.tempo.validate(&doc, "tempo", errors);
        crate::config::outputs::validate(&cfg.outputs, &cfg.server, &doc, errors);
        if cfg.prompt.initial.trim().is_empty() {
            errors.push(doc.error_at("prompt.initial", "must not be empty", None));
        }
        if tracing_subscriber::EnvFilter::try_new(&cfg.logging.level).is_err() {
            errors.push(doc.error_at(
                "logging.level",
                "not a log level (error, warn, info, debug, trace) or filter directive",
                None,
            ));
        }
        cfg.doc = Some(doc);
        (errors.len() == before).then_some(cfg)
    }

    /// An error located at `path` in this config's file.
    pub(crate) fn error_at(&self, path: &str, message: String) -> ConfigError {
        match &self.doc {
            Some(doc) => doc.error_at(path, message, None),
            None => ConfigError {
                file: "<built-in>/config.toml".into(),
                line: 0,
                column: 0,
                key: path.into(),
                message,
                value: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_file_equals_code_defaults() {
        let mut errs = Vec::new();
        let cfg = AppConfig::from_text("d", crate::config::DEFAULT_CONFIG, &mut errs).unwrap();
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            cfg,
            AppConfig::default(),
            "config.default.toml and Default impls drifted"
        );
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let mut errs = Vec::new();
        assert_eq!(
            AppConfig::from_text("e", "", &mut errs).unwrap(),
            AppConfig::default()
        );
    }

    #[test]
    fn control_rate_is_validated_and_located() {
        let mut errs = Vec::new();
        assert!(
            AppConfig::from_text("c.toml", "[engine]\ncontrol_hz = 10.0\n", &mut errs).is_none()
        );
        assert_eq!(
            (errs[0].line, errs[0].key.as_str()),
            (2, "engine.control_hz")
        );
        let mut errs = Vec::new();
        let cfg = AppConfig::from_text("c.toml", "[engine]\ncontrol_hz = 250.0\n", &mut errs);
        assert_eq!(cfg.map(|c| c.engine.control_hz), Some(250.0));
    }

    #[test]
    fn bad_log_level_is_located() {
        let mut errs = Vec::new();
        assert!(
            AppConfig::from_text("c.toml", "[logging]\nlevel = \"loud[\"\n", &mut errs).is_none()
        );
        assert_eq!((errs[0].line, errs[0].key.as_str()), (2, "logging.level"));
    }
}
