//! `[[outputs]]` through the real binary's `--check-config` and command line: a good two-box
//! config passes, mistakes are named with file, line and key, `--server` cannot be mixed with
//! `[[outputs]]`, and an output's own video sinks are pre-flighted like `[video]`'s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::fixtures::check_config;

const TWO_BOXES: &str = "[server]\nbackend = \"scope\"\n\
    [[outputs]]\nname = \"wall\"\nurl = \"http://gpu1:8000\"\nstandby = \"spare\"\n\
    [[outputs]]\nname = \"spare\"\nurl = \"http://gpu2:8000\"\nseed = 7\n";

#[test]
fn a_two_box_config_checks_clean() {
    let sb = common::Sandbox::new();
    sb.write_config(TWO_BOXES);
    let (code, out, err) = check_config(&sb.config_dir(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("configuration ok"), "{out}");
}

#[test]
fn a_bad_standby_and_theme_are_named_with_line_and_key() {
    let sb = common::Sandbox::new();
    sb.write_config(
        "[[outputs]]\nname = \"wall\"\nstandby = \"sapre\"\n\
         [[outputs]]\nname = \"spare\"\ntheme = \"no-such-theme\"\n",
    );
    let (code, _, err) = check_config(&sb.config_dir(), &[]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(":3:") && err.contains("outputs[0].standby"),
        "{err}"
    );
    assert!(
        err.contains("no output named `sapre` (have: wall, spare)"),
        "{err}"
    );
    let (code, _, err) = {
        sb.write_config("[[outputs]]\nname = \"a\"\ntheme = \"no-such-theme\"\n");
        check_config(&sb.config_dir(), &[])
    };
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("outputs[0].theme") && err.contains("no theme named `no-such-theme`"),
        "{err}"
    );
}

#[test]
fn an_outputs_own_sink_is_preflighted_under_its_key() {
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{TWO_BOXES}[[outputs.video.sinks]]\nkind = \"shm\"\nsocket = \"/nonexistent-dir/x.shm\"\n"
    ));
    let (code, _, err) = check_config(&sb.config_dir(), &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("outputs[1].video.sinks[0].socket"), "{err}");
    assert!(err.contains("/nonexistent-dir"), "{err}");
}

#[test]
fn server_flags_cannot_be_mixed_with_outputs() {
    let sb = common::Sandbox::new();
    sb.write_config(TWO_BOXES);
    let out = Command::new(common::bin())
        .args([
            "--headless",
            "--dry-run",
            "--server",
            "http://a:1",
            "--config-dir",
        ])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--server cannot be combined with [[outputs]]"),
        "{err}"
    );
}
