//! Invalid theme fixtures through the real binary: `scope-deck --check-config --config-dir <dir>`
//! with the fixture as `<dir>/themes/<name>.toml` must exit 3 and name file:line and key.
//! Each fixture states what it expects on its first line: `# expect: <line> <key>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::fixtures;

fn check(config_dir: &Path) -> (i32, String, String) {
    fixtures::check_config(config_dir, &[])
}

#[test]
fn at_least_ten_invalid_fixtures_each_fail_with_file_line_and_key() {
    fixtures::each_fails_located("themes/invalid", 10, &|f, dir| {
        (fixtures::copy_into(f, dir, "themes"), Vec::new())
    });
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
