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
        // As written (`raw`): without it a typed prompt wears the theme's template.
        r#"{"action":"set_prompt","text":"neon rain","raw":true}"#,
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

/// A rehearsal is held to the server's limits: with a schema recorded from the server
/// (`[server] dry_run_schema`; the fixture is hand-written in Scope's shape) a value is clamped to
/// the pipeline's own range, not the built-in one, and a message over Scope's 64 KiB data-channel
/// limit is refused, as a show would refuse it, instead of being reported as sent.
#[test]
fn dry_run_clamps_to_a_recorded_schema_and_refuses_oversized_messages() {
    let sb = common::Sandbox::new();
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/schemas/narrow-longlive.json"
    );
    sb.write_config(&format!(
        "[server]\npipeline_ids = [\"longlive\"]\ndry_run_schema = \"{schema}\"\n"
    ));
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
    // Streaming comes after the schema is merged (an event, not a sleep).
    for l in lines.by_ref() {
        let l = l.unwrap();
        if l.contains(r#""state":"streaming""#) {
            break;
        }
    }
    writeln!(
        stdin,
        r#"{{"action":"set_param","key":"noise_scale","value":0.9}}"#
    )
    .unwrap();
    let huge = "x".repeat(70 * 1024);
    writeln!(stdin, r#"{{"action":"set_prompt","text":"{huge}"}}"#).unwrap();
    writeln!(stdin, r#"{{"action":"quit"}}"#).unwrap();
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        rest.contains(&json!({"event":"param","key":"noise_scale","value":0.6,"clamped":true})),
        "{rest:#?}"
    );
    let sent: Vec<&Value> = rest
        .iter()
        .filter(|e| e["event"] == "sent")
        .map(|e| &e["payload"])
        .collect();
    assert!(
        sent.iter().any(|p| p["noise_scale"] == json!(0.6)),
        "{sent:#?}"
    );
    // Nothing outside the recorded range went out, the replay on connect included (the
    // theme's own 0.7 is re-clamped before the first message).
    assert!(
        sent.iter()
            .all(|p| p["noise_scale"].as_f64().is_none_or(|v| v <= 0.6 + 1e-9)),
        "{sent:#?}"
    );
    assert!(
        !sent.iter().any(|p| p["prompts"][0]["text"] == json!(huge)),
        "the oversized prompt was reported as sent"
    );
    let refused = rest.iter().find(|e| {
        e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("65536-byte limit"))
    });
    assert!(refused.is_some(), "no refusal notice: {rest:#?}");
    drop(stdin);
}

/// A recorded schema that cannot be read stops the start with the file and key named.
#[test]
fn dry_run_schema_that_cannot_be_read_names_file_and_key() {
    let sb = common::Sandbox::new();
    sb.write_config("[server]\ndry_run_schema = \"no-such-schema.json\"\n");
    let out = Command::cargo_bin("scope-deck")
        .unwrap()
        .args(["--check-config", "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("config.toml"), "{err}");
    assert!(err.contains("server.dry_run_schema"), "{err}");
    assert!(err.contains("no-such-schema.json"), "{err}");
}
