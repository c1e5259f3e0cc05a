//! Every invalid keymap fixture is refused by the real binary (`--check-config`) with exit code
//! 3 and an error naming the file, the line and the key (as written in the fixture's
//! `# expect: <line> <key>` header).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn invalid_keymaps_fail_with_file_line_and_key() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keymaps/invalid");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 10, "need at least 10 fixtures");
    for f in fixtures {
        let text = std::fs::read_to_string(&f).unwrap();
        let header = text.lines().next().unwrap();
        let (line, key) = header
            .strip_prefix("# expect: ")
            .and_then(|h| h.split_once(' '))
            .unwrap_or_else(|| panic!("{}: header must be `# expect: <line> <key>`", f.display()));
        let cfg = tempfile::tempdir().unwrap();
        std::fs::create_dir(cfg.path().join("keymaps")).unwrap();
        std::fs::write(cfg.path().join("keymaps/bad.toml"), &text).unwrap();
        std::fs::write(cfg.path().join("config.toml"), "[ui]\nkeymap = \"bad\"\n").unwrap();
        let out = assert_cmd::Command::cargo_bin("scope-deck")
            .unwrap()
            .arg("--check-config")
            .arg("--config-dir")
            .arg(cfg.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{}: {stderr}", f.display());
        let want = format!("bad.toml:{line}:");
        let want_key = format!("key `{key}`");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&want) && l.contains(&want_key)),
            "{}: expected `{want}` and `{want_key}` in:\n{stderr}",
            f.display()
        );
    }
}

#[test]
fn a_keymap_with_midi_bindings_passes_check_config() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::create_dir(cfg.path().join("keymaps")).unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("keymaps/examples/controller.toml"),
    )
    .unwrap();
    std::fs::write(cfg.path().join("keymaps/rig.toml"), example).unwrap();
    std::fs::write(cfg.path().join("config.toml"), "[ui]\nkeymap = \"rig\"\n").unwrap();
    assert_cmd::Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--check-config")
        .arg("--config-dir")
        .arg(cfg.path())
        .assert()
        .success();
}
