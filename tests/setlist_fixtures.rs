//! Setlists through the real binary: every invalid fixture under tests/fixtures/setlists/invalid
//! must make `scope-deck --check-config --setlist FILE` exit 3 naming file:line:column and key
//! (each fixture's first line says `# expect: <line> <key>`); the shipped example must pass,
//! given on the command line or as `[show] setlist` in config.toml.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> Vec<PathBuf> {
    let dir = root().join("tests/fixtures/setlists/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn check(config_dir: &Path, setlist: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("scope-deck").unwrap();
    cmd.arg("--check-config")
        .arg("--config-dir")
        .arg(config_dir)
        .env("XDG_STATE_HOME", config_dir.join("state"));
    if let Some(s) = setlist {
        cmd.arg("--setlist").arg(s);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn at_least_fifteen_invalid_setlists_each_fail_with_file_line_column_and_key() {
    let all = fixtures();
    assert!(all.len() >= 15, "only {} fixtures", all.len());
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
        let target = dir.path().join(f.file_name().unwrap());
        std::fs::copy(f, &target).unwrap();
        let (code, _out, err) = check(dir.path(), Some(&target));
        let want = format!("{}:{line}:", target.display());
        let want_key = format!("key `{key}`");
        // file:line:column — the column is a number after the line.
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

#[test]
fn the_example_setlist_passes_on_the_command_line_and_from_config() {
    let example = root().join("setlists/example.toml");
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = check(dir.path(), Some(&example));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("setlist") && out.contains("cues"), "{out}");

    std::fs::create_dir(dir.path().join("setlists")).unwrap();
    std::fs::copy(&example, dir.path().join("setlists/show.toml")).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[show]\nsetlist = \"setlists/show.toml\"\n",
    )
    .unwrap();
    let (code, out, err) = check(dir.path(), None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("show.toml"), "{out}");
}

#[test]
fn a_broken_configured_setlist_fails_the_config_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[show]\nsetlist = \"show.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("show.toml"),
        "[[cue]]\nname = \"a\"\nbars = 0\nprompt = \"x\"\n",
    )
    .unwrap();
    let (code, _out, err) = check(dir.path(), None);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("show.toml:3:") && err.contains("key `cue[0].bars`"),
        "{err}"
    );
    // A missing file is named too.
    std::fs::remove_file(dir.path().join("show.toml")).unwrap();
    let (code, _out, err) = check(dir.path(), None);
    assert_eq!(code, 3);
    assert!(err.contains("cannot read setlist"), "{err}");
}
