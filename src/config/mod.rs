//! Configuration: `config.toml`, `themes/*.toml` and `keymaps/*.toml`.
//!
//! Defaults are embedded in the binary; the user's files in the config directory (XDG
//! `~/.config/scope-deck`, or `--config-dir`) are layered over them: `config.toml` fills in
//! whatever it sets over the built-in defaults, and a theme or keymap file replaces the built-in
//! one with the same file stem (or adds a new one). Every file is parsed into raw structs with
//! unknown fields denied, then validated, collecting *all* errors with file, line and key.

pub mod app;
pub(crate) mod looks;
pub(crate) mod outputs;
pub(crate) mod setlist;
pub use scope_deck_core::diagnostics;

use std::path::{Path, PathBuf};

pub use app::AppConfig;
pub use diagnostics::{ConfigError, ConfigErrors, SourceDoc};

use crate::controls::keymap::Keymap;
use crate::mapping::theme::Theme;

/// Built-in `config.toml`, also printed by `--print-default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../config.default.toml");

/// Built-in themes (file stem, text).
pub const EMBEDDED_THEMES: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    (
        "cosmic-voyage",
        include_str!("../../themes/cosmic-voyage.toml"),
    ),
    (
        "neon-foundry",
        include_str!("../../themes/neon-foundry.toml"),
    ),
    (
        "digital-forest",
        include_str!("../../themes/digital-forest.toml"),
    ),
    (
        "synthwave-highway",
        include_str!("../../themes/synthwave-highway.toml"),
    ),
    (
        "crystal-sanctuary",
        include_str!("../../themes/crystal-sanctuary.toml"),
    ),
];

/// Built-in keymaps (file stem, text).
pub const EMBEDDED_KEYMAPS: &[(&str, &str)] =
    &[("default", include_str!("../../keymaps/default.toml"))];

/// Built-in dashboard styles (file stem, text).
pub const EMBEDDED_STYLES: &[(&str, &str)] =
    &[("default", include_str!("../../styles/default.toml"))];

/// Everything loaded and validated.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// `config.toml` merged over defaults.
    pub(crate) app: AppConfig,
    /// Themes in display order (built-ins first, then the user's, each sorted by file stem).
    pub(crate) themes: Vec<Theme>,
    /// The active keymap.
    pub(crate) keymap: Keymap,
    /// The active dashboard style (colours).
    pub(crate) style: crate::ui::style::UiStyle,
    /// Which files were read (for `--check-config` and the log).
    pub(crate) files: Vec<String>,
    /// The directory user files were looked for in.
    pub(crate) dir: Option<PathBuf>,
    /// The setlist (`[show] setlist`, or `--setlist` set later) with its path.
    pub(crate) setlist: Option<(PathBuf, crate::core::cue::Setlist)>,
    /// Saved looks (`looks/*.toml`).
    pub(crate) looks: Vec<crate::core::look::Look>,
}

/// The default user config directory (`$XDG_CONFIG_HOME/scope-deck`).
pub(crate) fn default_config_dir() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    etcetera::choose_base_strategy()
        .ok()
        .map(|d| d.config_dir().join("scope-deck"))
}

/// A named text to parse: user file or embedded default.
struct Text {
    name: String,
    stem: String,
    text: String,
}

fn read_dir_tomls(dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<Text> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        match std::fs::read_to_string(&p) {
            Ok(text) => out.push(Text {
                name: p.display().to_string(),
                stem,
                text,
            }),
            Err(e) => errors.push(file_error(&p, &format!("cannot read: {e}"))),
        }
    }
    out
}

fn file_error(p: &Path, msg: &str) -> ConfigError {
    ConfigError {
        file: p.display().to_string(),
        line: 0,
        column: 0,
        key: String::new(),
        message: msg.to_string(),
        value: None,
    }
}

/// Embedded entries overlaid by user entries with the same stem.
fn layered(embedded: &[(&str, &str)], kind: &str, user: Vec<Text>) -> Vec<Text> {
    let mut out: Vec<Text> = embedded
        .iter()
        .map(|(stem, text)| Text {
            name: format!("<built-in>/{kind}/{stem}.toml"),
            stem: (*stem).to_string(),
            text: (*text).to_string(),
        })
        .collect();
    for u in user {
        match out.iter_mut().find(|t| t.stem == u.stem) {
            Some(slot) => *slot = u,
            None => out.push(u),
        }
    }
    out
}

/// The themes that ship inside the binary, with no user overlay (tests, replays, defaults).
pub fn builtin_themes() -> Result<Vec<Theme>, Vec<ConfigError>> {
    let (mut errors, mut files) = (Vec::new(), Vec::new());
    let themes = load_themes(None, &mut errors, &mut files);
    if errors.is_empty() {
        Ok(themes)
    } else {
        Err(errors)
    }
}

/// Loads the built-in themes layered with `dir/themes/*.toml` (start-up and hot reload),
/// collecting every error and the file names read.
pub(crate) fn load_themes(
    dir: Option<&Path>,
    errors: &mut Vec<ConfigError>,
    files: &mut Vec<String>,
) -> Vec<Theme> {
    let user_themes = dir
        .map(|d| read_dir_tomls(&d.join("themes"), errors))
        .unwrap_or_default();
    let mut themes = Vec::new();
    for t in layered(EMBEDDED_THEMES, "themes", user_themes) {
        files.push(t.name.clone());
        if let Some(theme) = Theme::from_text(&t.name, &t.stem, &t.text, errors) {
            themes.push(theme);
        }
    }
    themes
}

/// Loads and validates everything from `dir` (or the default directory) over the built-ins.
pub(crate) fn load(dir: Option<&Path>) -> Result<LoadedConfig, ConfigErrors> {
    let dir: Option<PathBuf> = dir.map(Path::to_path_buf).or_else(default_config_dir);
    let mut errors = Vec::new();
    let mut files = Vec::new();

    // config.toml
    let user_cfg = dir
        .as_ref()
        .map(|d| d.join("config.toml"))
        .filter(|p| p.exists());
    let app = match &user_cfg {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => {
                files.push(p.display().to_string());
                AppConfig::from_text(&p.display().to_string(), &text, &mut errors)
            }
            Err(e) => {
                errors.push(file_error(p, &format!("cannot read: {e}")));
                None
            }
        },
        None => {
            files.push("<built-in>/config.toml".into());
            AppConfig::from_text("<built-in>/config.toml", DEFAULT_CONFIG, &mut errors)
        }
    };

    // themes
    let themes = load_themes(dir.as_deref(), &mut errors, &mut files);

    // keymaps
    let user_keymaps = dir
        .as_ref()
        .map(|d| read_dir_tomls(&d.join("keymaps"), &mut errors))
        .unwrap_or_default();
    let mut keymaps = Vec::new();
    for k in layered(EMBEDDED_KEYMAPS, "keymaps", user_keymaps) {
        files.push(k.name.clone());
        if let Some(km) = Keymap::from_text(&k.name, &k.stem, &k.text, &mut errors) {
            keymaps.push(km);
        }
    }

    // dashboard styles
    let user_styles = dir
        .as_ref()
        .map(|d| read_dir_tomls(&d.join("styles"), &mut errors))
        .unwrap_or_default();
    let mut styles = Vec::new();
    for st in layered(EMBEDDED_STYLES, "styles", user_styles) {
        files.push(st.name.clone());
        if let Some(style) =
            crate::ui::style::UiStyle::from_text(&st.name, &st.stem, &st.text, &mut errors)
        {
            styles.push(style);
        }
    }

    let Some(mut app) = app else {
        return Err(ConfigErrors(errors));
    };
    // The dry run's recorded schema: resolved against the config folder and checked now, so a
    // rehearsal never starts on a file that cannot be read.
    if !app.server.dry_run_schema.is_empty() {
        let path = dir
            .as_deref()
            .map(|d| d.join(&app.server.dry_run_schema))
            .unwrap_or_else(|| PathBuf::from(&app.server.dry_run_schema));
        let check = crate::transport::dry_run::DryRunSchema {
            path: path.clone(),
            pipeline_ids: app.server.pipeline_ids.clone(),
        };
        match check.load() {
            Ok(_) => app.server.dry_run_schema = path.display().to_string(),
            Err(e) => errors.push(app.error_at("server.dry_run_schema", e)),
        }
    }
    // The hosted backend's stream preset (presets/<name>.toml), checked like any config file.
    if app.server.backend == crate::transport::config::Backend::Daydream {
        if let Err(errs) =
            crate::transport::daydream::Preset::load(dir.as_deref(), &app.daydream.preset)
        {
            errors.extend(errs);
        }
    }
    // Each hosted output's own preset, checked the same way.
    for o in &app.outputs {
        let hosted =
            o.backend.unwrap_or(app.server.backend) == crate::transport::config::Backend::Daydream;
        let preset = o.preset.as_deref().unwrap_or(&app.daydream.preset);
        if hosted
            && (app.server.backend != crate::transport::config::Backend::Daydream
                || preset != app.daydream.preset)
        {
            if let Err(errs) = crate::transport::daydream::Preset::load(dir.as_deref(), preset) {
                errors.extend(errs);
            }
        }
    }
    // Cross-file references.
    if !themes.iter().any(|t| t.id == app.ui.theme) && errors.is_empty() {
        errors.push(app.error_at(
            "ui.theme",
            format!(
            "no theme named `{}` (have: {})",
            app.ui.theme,
            themes.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
        ));
    }
    for (i, o) in app.outputs.iter().enumerate() {
        if let Some(t) = &o.theme {
            if !themes.iter().any(|x| &x.id == t) {
                errors.push(app.error_at(
                    &format!("outputs[{i}].theme"),
                    format!(
                        "no theme named `{t}` (have: {})",
                        themes.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    let keymap = keymaps.iter().find(|k| k.id == app.ui.keymap).cloned();
    if keymap.is_none() && errors.is_empty() {
        errors.push(app.error_at(
            "ui.keymap",
            format!(
            "no keymap named `{}` (have: {})",
            app.ui.keymap,
            keymaps.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
        ));
    }
    let style = styles.iter().find(|s| s.id == app.ui.style).cloned();
    if style.is_none() && errors.is_empty() {
        errors.push(app.error_at(
            "ui.style",
            format!(
                "no style named `{}` (have: {})",
                app.ui.style,
                styles.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let looks = dir
        .as_deref()
        .map(|d| looks::load_looks(d, &themes, &mut errors))
        .unwrap_or_default();
    let mut setlist = None;
    if let Some(path) = setlist::resolve(&app.show.setlist, dir.as_deref()) {
        files.push(path.display().to_string());
        match setlist::load_setlist(&path, &themes, &looks) {
            Ok(s) => setlist = Some((path, s)),
            Err(e) => errors.extend(e),
        }
    }
    match (keymap, style) {
        (Some(keymap), Some(style)) if errors.is_empty() => Ok(LoadedConfig {
            app,
            themes,
            keymap,
            style,
            files,
            dir,
            setlist,
            looks,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_load_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(Some(dir.path())).unwrap();
        assert_eq!(loaded.app, AppConfig::default());
        assert!(loaded.themes.iter().any(|t| t.id == "default"));
        assert_eq!(loaded.keymap.id, "default");
    }

    #[test]
    fn user_files_override_by_stem_and_errors_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[ui]\nfps = 0\n[server]\nurl = \"ftp://x\"\n",
        )
        .unwrap();
        let errs = load(Some(dir.path())).unwrap_err();
        assert!(errs.0.len() >= 2, "{errs}");
        assert!(errs.to_string().contains("ui.fps"), "{errs}");
        assert!(errs.to_string().contains("server.url"), "{errs}");
    }
}
