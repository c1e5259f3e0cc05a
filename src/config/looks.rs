//! Look files (`<config dir>/looks/*.toml`): read and validated at start-up (`--check-config`
//! names file:line:column and key), written when the performer saves a look. A write goes to a
//! temporary file first and is renamed over the old one, so a crash never leaves half a file;
//! an existing file is edited with `toml_edit`, so the user's comments stay.

use std::path::{Path, PathBuf};

use crate::config::diagnostics::ConfigError;
use crate::core::look::Look;
use crate::mapping::theme::Theme;

/// Reads every `dir/looks/*.toml`; problems are pushed, valid looks returned in file order.
pub(crate) fn load_looks(dir: &Path, themes: &[Theme], errors: &mut Vec<ConfigError>) -> Vec<Look> {
    let ids: Vec<&str> = themes.iter().map(|t| t.id.as_str()).collect();
    let Ok(rd) = std::fs::read_dir(dir.join("looks")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        if p.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = p.display().to_string();
        match std::fs::read_to_string(&p) {
            Ok(text) => {
                if let Some(l) = Look::from_text(&name, &text, &ids, errors) {
                    out.push(l);
                }
            }
            Err(e) => errors.push(ConfigError {
                file: name,
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read look: {e}"),
                value: None,
            }),
        }
    }
    out
}

fn json_to_item(v: &serde_json::Value) -> Option<toml_edit::Value> {
    Some(match v {
        serde_json::Value::Bool(b) => (*b).into(),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        serde_json::Value::String(s) => s.as_str().into(),
        serde_json::Value::Array(a) => {
            let mut arr = toml_edit::Array::new();
            for x in a {
                arr.push(json_to_item(x)?);
            }
            toml_edit::Value::Array(arr)
        }
        serde_json::Value::Object(o) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, x) in o {
                t.insert(k, json_to_item(x)?);
            }
            toml_edit::Value::InlineTable(t)
        }
        serde_json::Value::Null => return None,
    })
}

/// The look written into `doc` (an existing file's document keeps its comments).
fn fill(doc: &mut toml_edit::DocumentMut, look: &Look) {
    doc["name"] = toml_edit::value(look.name.as_str());
    match &look.theme {
        Some(t) => doc["theme"] = toml_edit::value(t.as_str()),
        None => {
            doc.remove("theme");
        }
    }
    let mut prompts = toml_edit::Array::new();
    for (text, weight) in &look.prompts {
        let mut t = toml_edit::InlineTable::new();
        t.insert("text", text.as_str().into());
        t.insert("weight", (*weight).into());
        prompts.push(t);
    }
    doc["prompts"] = toml_edit::value(prompts);
    let params = doc
        .entry("params")
        .or_insert(toml_edit::table())
        .as_table_mut();
    if let Some(params) = params {
        params.retain(|k, _| look.params.contains_key(k));
        for (k, v) in &look.params {
            if let Some(v) = json_to_item(v) {
                params[k.as_str()] = toml_edit::Item::Value(v);
            }
        }
    }
    match &look.crossfade {
        Some(x) => {
            let parts = |ps: &[(String, f64)]| {
                let mut arr = toml_edit::Array::new();
                for (text, weight) in ps {
                    let mut t = toml_edit::InlineTable::new();
                    t.insert("text", text.as_str().into());
                    t.insert("weight", (*weight).into());
                    arr.push(t);
                }
                arr
            };
            let mut t = toml_edit::Table::new();
            t["position"] = toml_edit::value(x.position);
            t["a"] = toml_edit::value(parts(&x.a));
            t["b"] = toml_edit::value(parts(&x.b));
            doc["crossfade"] = toml_edit::Item::Table(t);
        }
        None => {
            doc.remove("crossfade");
        }
    }
    let maps = doc
        .entry("mappings")
        .or_insert(toml_edit::table())
        .as_table_mut();
    if let Some(maps) = maps {
        maps.retain(|k, _| look.mappings.contains_key(k));
        for (k, on) in &look.mappings {
            maps[k.as_str()] = toml_edit::value(*on);
        }
    }
}

/// Writes `dir/<name>.toml` atomically (temporary file + rename); returns the path.
pub(crate) fn write_look(dir: &Path, look: &Look) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.toml", look.name));
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(text) => text.parse::<toml_edit::DocumentMut>().unwrap_or_default(),
        Err(_) => {
            let mut d = toml_edit::DocumentMut::new();
            d.decor_mut().set_prefix(
                "# A look saved by scope-deck (save_look); recall_look brings it back.\n",
            );
            d
        }
    };
    fill(&mut doc, look);
    let tmp = dir.join(format!(".{}.toml.tmp", look.name));
    std::fs::write(&tmp, doc.to_string()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(noise: f64) -> Look {
        Look {
            name: "warm".into(),
            theme: Some("default".into()),
            prompts: vec![("fog".into(), 0.75), ("sun".into(), 0.25)],
            params: [("noise_scale".to_string(), serde_json::json!(noise))].into(),
            mappings: [("wobble".to_string(), false)].into(),
            crossfade: Some(scope_deck_core::look::LookCrossfade {
                a: vec![("fog".into(), 1.0)],
                b: vec![("rain".into(), 3.0), ("hail".into(), 1.0)],
                position: 0.3,
            }),
        }
    }

    #[test]
    fn a_written_look_reads_back_and_keeps_the_users_comments() {
        let d = tempfile::tempdir().unwrap();
        let looks = d.path().join("looks");
        let p = write_look(&looks, &look(0.4)).unwrap();
        let mut errs = Vec::new();
        let themes = crate::config::builtin_themes().unwrap();
        let back = load_looks(d.path(), &themes, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(back, vec![look(0.4)]);
        // The user annotates the file; saving again keeps the note and changes the value.
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("# for the slow song\n{text}")).unwrap();
        write_look(&looks, &look(0.6)).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("# for the slow song"), "{text}");
        assert!(text.contains("noise_scale = 0.6"), "{text}");
        let leftovers: Vec<_> = std::fs::read_dir(&looks)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
    }
}
