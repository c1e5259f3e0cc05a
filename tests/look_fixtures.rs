//! Invalid look files through the real binary: `scope-deck --check-config --config-dir <dir>`
//! with the fixture as `<dir>/looks/<name>.toml` must exit 3 naming file:line:column and key.
//! Each fixture states what it expects on its first line: `# expect: <line> <key>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/looks/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn invalid_looks_fail_the_config_check_with_file_line_column_and_key() {
    let all = fixtures();
    assert!(all.len() >= 8, "only {} fixtures", all.len());
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
        std::fs::create_dir(dir.path().join("looks")).unwrap();
        let target = dir.path().join("looks").join(f.file_name().unwrap());
        std::fs::copy(f, &target).unwrap();
        let out = Command::cargo_bin("scope-deck")
            .unwrap()
            .arg("--check-config")
            .arg("--config-dir")
            .arg(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{line}:", target.display());
        let want_key = format!("key `{key}`");
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
