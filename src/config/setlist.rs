//! Setlist files (`--setlist FILE` or `[show] setlist`): read, then parsed and validated by the
//! core ([`Setlist::from_text`]) against the loaded themes, every problem with file:line:key.

use std::path::{Path, PathBuf};

use crate::config::diagnostics::ConfigError;
use crate::core::cue::Setlist;
use crate::mapping::theme::Theme;

/// Reads and validates one setlist file against the loaded themes and saved looks.
pub(crate) fn load_setlist(
    path: &Path,
    themes: &[Theme],
    looks: &[crate::core::look::Look],
) -> Result<Setlist, Vec<ConfigError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read setlist: {e}"),
            value: None,
        }]
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("setlist");
    let ids: Vec<&str> = themes.iter().map(|t| t.id.as_str()).collect();
    let look_names: Vec<&str> = looks.iter().map(|l| l.name.as_str()).collect();
    let mut errors = Vec::new();
    match Setlist::from_text(&name, stem, &text, &ids, &look_names, &mut errors) {
        Some(s) if errors.is_empty() => Ok(s),
        _ => Err(errors),
    }
}

/// `[show] setlist` resolved against the config folder (an absolute path stays as it is).
pub(crate) fn resolve(configured: &str, dir: Option<&Path>) -> Option<PathBuf> {
    if configured.trim().is_empty() {
        return None;
    }
    let p = PathBuf::from(configured);
    Some(match dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p,
    })
}
