//! The headless front end driven end to end through the real binary: JSON-lines actions in,
//! JSON-lines events out, dry-run transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};

fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("non-JSON line on stdout: {l:?}: {e}"))
        })
        .collect()
}

fn headless(sb: &common::Sandbox) -> Command {
    let mut c = Command::cargo_bin("scope-deck").unwrap();
    c.args(["--headless", "--dry-run", "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home());
    c
}

#[test]
fn scripted_session_answers_with_json_events_and_quits() {
    let sb = common::Sandbox::new();
    let input = [
        r#"{"action":"reset_cache"}"#,
        r#"{"action":"set_param","key":"noise_scale","value":1.5}"#,
        "",
        "# a comment",
        r#"{"action":"fly"}"#,
        r#"{"action":"set_prompt","text":"neon rain"}"#,
        r#"{"action":"quit"}"#,
    ]
    .join("\n");
    let out = headless(&sb)
        .write_stdin(input)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"ready"));
    assert!(
        ev.contains(&json!({"event":"param","key":"noise_scale","value":1.0,"clamped":true})),
        "{ev:#?}"
    );
    assert!(
        ev.contains(&json!({"event":"sent","payload":{"reset_cache":true}})),
        "{ev:#?}"
    );
    let bad = ev
        .iter()
        .find(|e| e["event"] == "notice" && e["level"] == "error")
        .expect("bad line reported");
    assert!(
        bad["message"].as_str().unwrap().contains("stdin line 5"),
        "{bad}"
    );
    let sent_prompt = ev
        .iter()
        .any(|e| e["event"] == "sent" && e["payload"]["prompts"][0]["text"] == "neon rain");
    assert!(sent_prompt, "{ev:#?}");
    assert!(
        ev.contains(&json!({"event":"stopping","reason":"quit"})),
        "{ev:#?}"
    );
    // The first message on the wire carries the full initial state.
    let first_sent = ev.iter().find(|e| e["event"] == "sent").unwrap();
    assert_eq!(first_sent["payload"]["paused"], json!(false));
}

#[test]
fn closing_stdin_stops_cleanly() {
    let sb = common::Sandbox::new();
    let out = headless(&sb)
        .write_stdin("")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let ev = events(&out.stdout);
    assert!(
        ev.contains(&json!({"event":"stopping","reason":"input_closed"})),
        "{ev:#?}"
    );
}

#[test]
fn sigterm_shuts_down_in_order_and_logs() {
    let sb = common::Sandbox::new();
    let mut child = StdCommand::new(common::bin())
        .args(["--headless", "--dry-run", "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for the engine to be up (an event, not a sleep).
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.contains("\"ready\""), "{ready}");
    writeln!(stdin, r#"{{"action":"pause"}}"#).unwrap();
    let mut seen_pause = false;
    for l in lines.by_ref() {
        let l = l.unwrap();
        if l.contains(r#""payload":{"paused":true}"#) {
            seen_pause = true;
            break;
        }
    }
    assert!(seen_pause);
    StdCommand::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        rest.contains(&json!({"event":"signal","signal":"terminate"})),
        "{rest:#?}"
    );
    assert!(
        rest.contains(&json!({"event":"stopping","reason":"terminate"})),
        "{rest:#?}"
    );
    let log = sb.log();
    assert!(log.contains("signal received"), "{log}");
    assert!(log.contains("exit"), "logs are flushed last: {log}");
    drop(stdin);
}

#[test]
fn bad_server_flag_is_a_usage_error() {
    let sb = common::Sandbox::new();
    let out = headless(&sb)
        .args(["--server", "gpu box"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server gpu box"));
    assert!(out.stdout.is_empty());
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "--headless",
        "--dry-run",
        "--server",
        "--config-dir",
        "--log-level",
        "--check-config",
        "Exit codes",
        "Examples",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
    let v = Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")));
}
