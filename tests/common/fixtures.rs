//! Invalid-file fixtures through the real binary: each fixture's first line says where its error
//! must point (`# expect: <line> <key>`); `--check-config` must exit 3 with a line naming
//! `file:line:column` and ``key `…` ``. One runner for themes, keymaps, setlists and looks.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `.toml` fixtures under `tests/fixtures/<rel>`, sorted.
pub fn invalid(rel: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// `scope-deck --check-config --config-dir DIR [extra...]`: exit code, stdout, stderr.
pub fn check_config(config_dir: &Path, extra: &[OsString]) -> (i32, String, String) {
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--check-config")
        .arg("--config-dir")
        .arg(config_dir)
        .args(extra)
        .env("XDG_STATE_HOME", config_dir.join("state"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Where a fixture goes in a fresh config dir, and the extra arguments that make the binary read
/// it: `place(fixture, config_dir)`.
pub type Place<'a> = &'a dyn Fn(&Path, &Path) -> (PathBuf, Vec<OsString>);

/// Runs every fixture under `rel` (at least `min` of them) and fails with all the misses at once.
pub fn each_fails_located(rel: &str, min: usize, place: Place<'_>) {
    let all = invalid(rel);
    assert!(all.len() >= min, "only {} fixtures in {rel}", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        let (line, key) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .and_then(|h| h.split_once(' '))
            .unwrap_or_else(|| panic!("{}: header must be `# expect: <line> <key>`", f.display()));
        let dir = tempfile::tempdir().unwrap();
        let (target, extra) = place(f, dir.path());
        let (code, _out, err) = check_config(dir.path(), &extra);
        let want = format!("{}:{line}:", target.display());
        let want_key = format!("key `{key}`");
        // file:line:column — the column is a number ≥ 1 after the line.
        let located = err.lines().any(|l| {
            l.strip_prefix(&want).is_some_and(|rest| {
                rest.split(':')
                    .next()
                    .is_some_and(|c| c.parse::<usize>().is_ok_and(|c| c >= 1))
            }) && l.contains(&want_key)
        });
        if code != 3 || !located {
            failures.push(format!(
                "{}: exit {code}, wanted `{want}<col>: … {want_key}`, got:\n{err}",
                f.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Copies `fixture` into `dir/sub/` under its own name and returns the copy's path.
pub fn copy_into(fixture: &Path, dir: &Path, sub: &str) -> PathBuf {
    let to = dir.join(sub);
    std::fs::create_dir_all(&to).unwrap();
    let target = to.join(fixture.file_name().unwrap());
    std::fs::copy(fixture, &target).unwrap();
    target
}

/// A theme that resets the cache on every beat (1 s cooldown) and forwards the beat grid every
/// 200 ms: a steady stream of beat-locked messages (the mapping and several-outputs tests).
pub const BEAT_RESET_THEME: &str = r#"
name = "Beat reset"
prompts = ["test pattern"]
[params]
noise_scale = 0.5
[[mappings]]
source = "energy"
target = "noise_scale"
output = [0.3, 0.7]
attack_ms = 50
release_ms = 300
dead_band = 0.05
[beat]
forward = true
interval_ms = 200
[[triggers]]
name = "reset"
on = "beat"
cooldown_ms = 1000
action = "reset_cache"
"#;
