//! Invalid theme fixtures through the real binary: `scope-deck --check-config --config-dir <dir>`
//! with the fixture as `<dir>/themes/<name>.toml` must exit 3 and name file:line and key.
//! Each fixture states what it expects on its first line: `# expect: <line> <key>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/themes/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn check(config_dir: &Path) -> (i32, String, String) {
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--check-config")
        .arg("--config-dir")
        .arg(config_dir)
        .env("XDG_STATE_HOME", config_dir.join("state"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn at_least_ten_invalid_fixtures_each_fail_with_file_line_and_key() {
    let all = fixtures();
    assert!(all.len() >= 10, "only {} fixtures", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", f.display()));
        let (line, key) = expect.split_once(' ').unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("themes")).unwrap();
        let name = f.file_name().unwrap();
        let target = dir.path().join("themes").join(name);
        std::fs::copy(f, &target).unwrap();
        let (code, _out, err) = check(dir.path());
        let want = format!("{}:{line}:", target.display());
        let want_key = format!("key `{key}`");
        let located = err
            .lines()
            .any(|l| l.starts_with(&want) && l.contains(&want_key));
        if code != 3 || !located {
            failures.push(format!(
                "{}: exit {code}, wanted `{want}… {want_key}`, got:\n{err}",
                name.to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shipped_themes_pass_as_user_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let themes = dir.path().join("themes");
    std::fs::create_dir(&themes).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
    let mut n = 0;
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, themes.join(p.file_name().unwrap())).unwrap();
        n += 1;
    }
    assert_eq!(n, 6);
    let (code, out, err) = check(dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("synthwave-highway.toml"), "{out}");
}
