//! Learn mode: the performer presses the learn key, touches a MIDI control, then presses the key
//! (or turns the parameter) whose action the control should take over. The binding is appended
//! to the user's keymap file with `toml_edit`, so the file keeps its comments and layout.

use crate::controls::midi::binding::ControlKind;
use crate::core::action::Action;

pub use scope_deck_core::midi::learn::*;

fn json_to_toml(v: &serde_json::Value) -> toml_edit::Value {
    match v {
        serde_json::Value::Bool(b) => (*b).into(),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        serde_json::Value::String(s) => s.as_str().into(),
        serde_json::Value::Array(a) => {
            let mut arr = toml_edit::Array::new();
            for i in a {
                arr.push(json_to_toml(i));
            }
            toml_edit::Value::Array(arr)
        }
        serde_json::Value::Object(o) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, v) in o {
                t.insert(k, json_to_toml(v));
            }
            toml_edit::Value::InlineTable(t)
        }
        serde_json::Value::Null => "".into(),
    }
}

/// The `[[midi]]` table a learned pair becomes.
pub(crate) fn binding_table(
    control: &LearnedControl,
    target: &Action,
) -> Result<toml_edit::Table, String> {
    let mut t = toml_edit::Table::new();
    t.insert("device", toml_edit::value(control.device.as_str()));
    let param = match target {
        Action::AdjustParam { key, .. } | Action::SetParam { key, .. } => Some(key.clone()),
        _ => None,
    };
    let kind = match control.kind {
        ControlKind::Cc => "cc",
        ControlKind::Cc14 => "cc14",
        ControlKind::Note => "note",
        ControlKind::Program => "program",
        ControlKind::PitchBend => "pitch_bend",
    };
    t.insert("type", toml_edit::value(kind));
    t.insert("channel", toml_edit::value(i64::from(control.channel)));
    match (control.kind, control.number) {
        (ControlKind::Cc | ControlKind::Cc14, Some(n)) => {
            t.insert("cc", toml_edit::value(i64::from(n)));
        }
        (ControlKind::Note, Some(n)) => {
            t.insert("note", toml_edit::value(i64::from(n)));
        }
        (ControlKind::Program, Some(n)) => {
            t.insert("program", toml_edit::value(i64::from(n)));
        }
        _ => {}
    }
    let continuous = matches!(
        control.kind,
        ControlKind::Cc | ControlKind::Cc14 | ControlKind::PitchBend
    );
    match param {
        Some(key) if continuous => {
            t.insert("param", toml_edit::value(key));
            t.insert("soft_takeover", toml_edit::value(true));
        }
        _ if control.kind == ControlKind::PitchBend => {
            return Err(format!(
                "pitch bend drives a parameter; `{}` is not a parameter change",
                target.name()
            ));
        }
        _ => {
            let json = serde_json::to_value(target).map_err(|e| e.to_string())?;
            let fields = json.as_object().map_or(0, |o| o.len());
            let v = if fields <= 1 {
                toml_edit::value(target.name())
            } else {
                toml_edit::Item::Value(json_to_toml(&json))
            };
            t.insert("action", v);
        }
    }
    Ok(t)
}

/// Appends the learned binding to a keymap file's text, keeping everything else byte for byte.
pub(crate) fn append_binding(
    text: &str,
    control: &LearnedControl,
    target: &Action,
) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("cannot edit the keymap: {e}"))?;
    let mut table = binding_table(control, target)?;
    table.decor_mut().set_prefix(format!(
        "\n# learned: {} → {}\n",
        control.label(),
        target.describe()
    ));
    match doc.get_mut("midi") {
        None => {
            let mut aot = toml_edit::ArrayOfTables::new();
            aot.push(table);
            doc.insert("midi", toml_edit::Item::ArrayOfTables(aot));
        }
        Some(toml_edit::Item::ArrayOfTables(aot)) => aot.push(table),
        Some(_) => {
            return Err("`midi` in the keymap is not an array of [[midi]] tables".into());
        }
    }
    Ok(doc.to_string())
}

/// Writes the learned binding into `path` (seeding it from `seed` when the user has no file
/// yet), validates the result as a keymap and returns its MIDI configuration. The file is only
/// replaced when the new text is a valid keymap.
pub(crate) fn write_binding(
    path: &std::path::Path,
    seed: Option<&str>,
    control: &LearnedControl,
    target: &Action,
) -> Result<crate::controls::keymap::Keymap, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match seed {
            Some(s) => s.to_string(),
            None => return Err(format!("{}: no such keymap file", path.display())),
        },
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let new = append_binding(&text, control, target)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("keymap")
        .to_string();
    let mut errors = Vec::new();
    let km = crate::controls::keymap::Keymap::from_text(
        &path.display().to_string(),
        &stem,
        &new,
        &mut errors,
    )
    .ok_or_else(|| crate::config::ConfigErrors(errors).to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // Write beside and rename, so a crash never leaves half a keymap.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &new).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(km)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "# my rig\nname = \"Mine\"   # keep this comment\n\n[normal]\n\"q\" = \"quit\" # quit!\n\n# pads\n[[midi]]\ntype = \"note\"\nnote = 36\naction = \"panic\"\n";

    fn ctl(kind: ControlKind, number: Option<u8>) -> LearnedControl {
        LearnedControl {
            device: "nanoKONTROL2 MIDI 1".into(),
            channel: 1,
            kind,
            number,
        }
    }

    #[test]
    fn port_names_lose_client_numbers() {
        assert_eq!(
            stable_port_name("nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"),
            "nanoKONTROL2:nanoKONTROL2 MIDI 1"
        );
        assert_eq!(
            stable_port_name("system:midi_capture_1"),
            "system:midi_capture_1"
        );
    }

    #[test]
    fn appends_and_keeps_comments_and_layout() {
        let out = append_binding(
            USER,
            &ctl(ControlKind::Cc, Some(7)),
            &Action::AdjustParam {
                key: "noise_scale".into(),
                delta: 0.05,
            },
        )
        .unwrap();
        assert!(out.starts_with(USER), "original text untouched:\n{out}");
        let tail = &out[USER.len()..];
        assert!(tail.contains("[[midi]]"));
        assert!(tail.contains("param = \"noise_scale\""));
        assert!(tail.contains("soft_takeover = true"));
        assert!(tail.contains("cc = 7"));
        let mut errs = Vec::new();
        let km = crate::controls::keymap::Keymap::from_text("k", "k", &out, &mut errs).unwrap();
        assert_eq!(km.midi.bindings.len(), 2);
    }

    #[test]
    fn action_targets_are_names_or_tables() {
        let out = append_binding(
            "name = \"x\"\n[normal]\nq = \"quit\"\n",
            &ctl(ControlKind::Note, Some(40)),
            &Action::ToggleMapping {
                name: "bass".into(),
            },
        )
        .unwrap();
        assert!(
            out.contains("action = { action = \"toggle_mapping\", name = \"bass\" }"),
            "{out}"
        );
        let out =
            append_binding(&out, &ctl(ControlKind::Note, Some(41)), &Action::ResetCache).unwrap();
        assert!(out.contains("action = \"reset_cache\""));
        let mut errs = Vec::new();
        let km = crate::controls::keymap::Keymap::from_text("k", "k", &out, &mut errs);
        assert!(km.is_some(), "{errs:?}");
        assert!(append_binding(&out, &ctl(ControlKind::PitchBend, None), &Action::Panic).is_err());
    }

    #[test]
    fn write_binding_seeds_a_missing_file_and_refuses_to_break_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keymaps").join("default.toml");
        let seed = crate::config::EMBEDDED_KEYMAPS[0].1;
        let km = write_binding(
            &path,
            Some(seed),
            &ctl(ControlKind::Note, Some(1)),
            &Action::Panic,
        )
        .unwrap();
        assert_eq!(km.midi.bindings.len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(seed));
        // A file that is not a valid keymap is reported and left alone.
        std::fs::write(&path, "name = \"x\"\nmidi = 3\n").unwrap();
        assert!(
            write_binding(
                &path,
                None,
                &ctl(ControlKind::Note, Some(1)),
                &Action::Panic
            )
            .is_err()
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "name = \"x\"\nmidi = 3\n"
        );
    }
}
