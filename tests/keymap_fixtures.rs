//! Every invalid keymap fixture is refused by the real binary (`--check-config`) with exit code
//! 3 and an error naming the file, the line and the key (as written in the fixture's
//! `# expect: <line> <key>` header).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::fixtures;

#[test]
fn invalid_keymaps_fail_with_file_line_and_key() {
    fixtures::each_fails_located("keymaps/invalid", 10, &|f, dir| {
        std::fs::create_dir(dir.join("keymaps")).unwrap();
        let target = dir.join("keymaps/bad.toml");
        std::fs::copy(f, &target).unwrap();
        std::fs::write(dir.join("config.toml"), "[ui]\nkeymap = \"bad\"\n").unwrap();
        (target, Vec::new())
    });
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
