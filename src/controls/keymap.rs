//! Keymaps (`keymaps/*.toml`): which chord does which action, per mode.
//!
//! ```toml
//! name = "Default"
//! [normal]
//! "q" = "quit"
//! "up" = { action = "adjust_param", key = "noise_scale", delta = 0.05 }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::diagnostics::{ConfigError, SourceDoc};
use crate::controls::keys::KeyChord;
use crate::core::action::Action;
use crate::core::state::Mode;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeymap {
    name: String,
    #[serde(default)]
    normal: toml::Table,
    #[serde(default)]
    help: toml::Table,
    #[serde(default)]
    prompt_edit: toml::Table,
    #[serde(default)]
    midi_in: crate::controls::midi::config::RawMidiIn,
    #[serde(default)]
    midi: Vec<crate::controls::midi::config::RawMidiBinding>,
    #[serde(default)]
    feedback: Vec<crate::controls::midi::config::RawFeedback>,
}

/// One binding: chord → action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyBinding {
    /// The chord.
    pub(crate) chord: KeyChord,
    /// What it does.
    pub(crate) action: Action,
}

/// A validated keymap.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    /// File stem.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Bindings per mode, in file order (the help overlay lists them in this order).
    pub(crate) modes: BTreeMap<ModeKey, Vec<KeyBinding>>,
    /// MIDI inputs, bindings, clock and feedback declared in the same file.
    pub midi: crate::controls::midi::config::MidiConfig,
}

/// `Mode` as a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ModeKey {
    /// `[normal]`.
    Normal,
    /// `[help]`.
    Help,
    /// `[prompt_edit]`.
    PromptEdit,
}

impl From<Mode> for ModeKey {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Normal => ModeKey::Normal,
            Mode::Help => ModeKey::Help,
            Mode::PromptEdit => ModeKey::PromptEdit,
            // The log view scrolls with fixed keys (see `ui::tui`); other keys keep playing.
            Mode::Log => ModeKey::Normal,
        }
    }
}

/// Quotes a TOML key for a key path when it is not a bare key.
pub(crate) fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("\"{}\"", k.replace('"', "\\\""))
    }
}

/// Turns a keymap value (`"quit"` or `{ action = "...", ... }`) into an action.
pub(crate) fn parse_action_value(v: &toml::Value) -> Result<Action, String> {
    match v {
        toml::Value::String(name) => Action::from_name(name),
        toml::Value::Table(_) => {
            let json = serde_json::to_value(v).map_err(|e| e.to_string())?;
            serde_json::from_value::<Action>(json).map_err(|e| format!("invalid action: {e}"))
        }
        other => Err(format!(
            "expected an action name or {{ action = ... }} table, found a {}",
            other.type_str()
        )),
    }
}

impl Keymap {
    /// Parses and validates one keymap file; `None` with errors pushed when invalid.
    pub fn from_text(
        name: &str,
        stem: &str,
        text: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Keymap> {
        let doc = match SourceDoc::parse(name, text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let raw: RawKeymap = match doc.deserialize() {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        let before = errors.len();
        let mut modes = BTreeMap::new();
        for (section, mode, table) in [
            ("normal", ModeKey::Normal, &raw.normal),
            ("help", ModeKey::Help, &raw.help),
            ("prompt_edit", ModeKey::PromptEdit, &raw.prompt_edit),
        ] {
            let mut list: Vec<KeyBinding> = Vec::new();
            for (k, v) in table {
                let path = format!("{section}.{}", quote_key(k));
                let chord = match KeyChord::parse(k) {
                    Ok(c) => c,
                    Err(e) => {
                        errors.push(doc.error_at(&path, e, Some(format!("\"{k}\""))));
                        continue;
                    }
                };
                if let Some(prev) = list.iter().find(|b| b.chord == chord) {
                    errors.push(doc.error_at(
                        &path,
                        format!(
                            "same key as an earlier binding ({}) in [{section}]",
                            prev.chord
                        ),
                        Some(format!("\"{k}\"")),
                    ));
                    continue;
                }
                match parse_action_value(v) {
                    Ok(action) => list.push(KeyBinding { chord, action }),
                    Err(e) => errors.push(doc.error_at(&path, e, None)),
                }
            }
            modes.insert(mode, list);
        }
        let midi = crate::controls::midi::config::validate(
            &doc,
            &raw.midi_in,
            &raw.midi,
            &raw.feedback,
            errors,
        );
        let has_quit = modes.get(&ModeKey::Normal).is_some_and(|l| {
            l.iter()
                .any(|b| matches!(b.action, Action::Quit | Action::ForceQuit))
        });
        if errors.len() == before && !has_quit {
            errors.push(doc.error_at(
                "normal",
                "binds no key to `quit`: there would be no way out",
                None,
            ));
        }
        (errors.len() == before).then(|| Keymap {
            id: stem.to_string(),
            name: raw.name,
            modes,
            midi,
        })
    }

    /// The action bound to `chord` in `mode`.
    pub(crate) fn lookup(&self, mode: Mode, chord: &KeyChord) -> Option<&Action> {
        self.modes
            .get(&ModeKey::from(mode))?
            .iter()
            .find(|b| b.chord == *chord)
            .map(|b| &b.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_keymap_is_valid_and_quits_on_q() {
        let mut errs = Vec::new();
        let km = Keymap::from_text(
            "d",
            "default",
            crate::config::EMBEDDED_KEYMAPS[0].1,
            &mut errs,
        )
        .unwrap();
        assert!(errs.is_empty());
        assert_eq!(
            km.lookup(Mode::Normal, &KeyChord::parse("q").unwrap()),
            Some(&Action::Quit)
        );
    }

    #[test]
    fn bad_chords_actions_and_duplicates_are_located() {
        let text = "name = \"x\"\n[normal]\n\"q\" = \"quit\"\n\"hyper+x\" = \"panic\"\n\"r\" = \"explode\"\n\"A\" = \"panic\"\n\"shift+a\" = \"pause\"\n\".\" = 3\n";
        let mut errs = Vec::new();
        assert!(Keymap::from_text("k.toml", "k", text, &mut errs).is_none());
        let got: Vec<_> = errs.iter().map(|e| (e.line, e.key.clone())).collect();
        assert_eq!(
            got,
            vec![
                (4, "normal.\"hyper+x\"".to_string()),
                (5, "normal.r".to_string()),
                (7, "normal.\"shift+a\"".to_string()),
                (8, "normal.\".\"".to_string()),
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn a_keymap_without_quit_is_refused() {
        let mut errs = Vec::new();
        assert!(
            Keymap::from_text(
                "k.toml",
                "k",
                "name = \"x\"\n[normal]\n\"r\" = \"reset_cache\"\n",
                &mut errs
            )
            .is_none()
        );
        assert!(errs[0].message.contains("quit"));
    }
}
