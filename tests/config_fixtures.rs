//! Every fixture under tests/fixtures/config runs through the real binary with
//! `--check-config --config-dir <fixture>`. Invalid ones must exit 3 and name the file, the line
//! and the key given in their `expect` file; valid ones must exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn check(dir: &Path) -> std::process::Output {
    Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--check-config")
        .arg("--config-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn every_invalid_fixture_fails_with_file_line_and_key() {
    let cases = fixtures("invalid");
    assert!(
        cases.len() >= 15,
        "need at least 15 invalid fixtures, have {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let expect = std::fs::read_to_string(case.join("expect")).unwrap();
        let mut lines = expect.lines();
        let (file, line, key) = (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap(),
        );
        let out = check(case);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want_loc = format!("{}:{}:", case.join(file).display(), line);
        let want_key = format!("key `{key}`");
        if out.status.code() != Some(3)
            || !stderr.contains(&want_loc)
            || !stderr.contains(&want_key)
        {
            failures.push(format!(
                "{}: exit {:?}, wanted `{want_loc}` and `{want_key}` in:\n{stderr}",
                case.display(),
                out.status.code()
            ));
        }
        assert!(
            out.stdout.is_empty(),
            "{}: --check-config printed to stdout on failure",
            case.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_valid_fixture_passes() {
    for case in fixtures("valid") {
        let out = check(&case);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("configuration ok"));
    }
}

#[test]
fn all_errors_in_a_file_are_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[ui]\nfps = 0\n[audio]\nfft_size = 1000\n[controls]\nsafe_prompt = \"\"\n",
    )
    .unwrap();
    let out = check(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    for key in ["ui.fps", "audio.fft_size", "controls.safe_prompt"] {
        assert!(
            stderr.contains(&format!("key `{key}`")),
            "missing {key} in {stderr}"
        );
    }
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}

#[test]
fn printed_default_config_is_itself_valid() {
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), &out.stdout).unwrap();
    assert_eq!(check(dir.path()).status.code(), Some(0));
}
