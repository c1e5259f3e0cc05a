//! Setlists through the real binary: every invalid fixture under tests/fixtures/setlists/invalid
//! must make `scope-deck --check-config --setlist FILE` exit 3 naming file:line:column and key
//! (each fixture's first line says `# expect: <line> <key>`); the shipped example must pass,
//! given on the command line or as `[show] setlist` in config.toml.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::fixtures;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(config_dir: &Path, setlist: Option<&Path>) -> (i32, String, String) {
    let extra: Vec<std::ffi::OsString> = setlist
        .map(|s| vec!["--setlist".into(), s.as_os_str().to_owned()])
        .unwrap_or_default();
    fixtures::check_config(config_dir, &extra)
}

#[test]
fn at_least_fifteen_invalid_setlists_each_fail_with_file_line_column_and_key() {
    fixtures::each_fails_located("setlists/invalid", 15, &|f, dir| {
        let target = dir.join(f.file_name().unwrap());
        std::fs::copy(f, &target).unwrap();
        (
            target.clone(),
            vec!["--setlist".into(), target.into_os_string()],
        )
    });
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
