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
            untimed(
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("non-JSON line on stdout: {l:?}: {e}")),
            )
        })
        .collect()
}

/// Checks the event's timestamp `t` (seconds on the deck's clock) and removes it, so the rest
/// can be compared whole.
fn untimed(mut v: Value) -> Value {
    let t = v
        .as_object_mut()
        .and_then(|o| o.remove("t"))
        .unwrap_or_else(|| panic!("event without t: {v}"));
    assert!(t.as_f64().is_some_and(|t| t >= 0.0), "bad t {t} in {v}");
    v
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
        .map(|l| untimed(serde_json::from_str(&l.unwrap()).unwrap()))
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
        .map(|l| untimed(serde_json::from_str(&l.unwrap()).unwrap()))
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

/// Hardening: a line over the limit is skipped with an error naming it and the next line still
/// acts; internal actions (the MIDI edge's learn steps) are refused by name; every event has a
/// timestamp on one clock that never goes back.
#[test]
fn long_lines_and_internal_actions_are_refused_and_events_are_timed() {
    let sb = common::Sandbox::new();
    let huge = format!(
        r#"{{"action":"set_prompt","text":"{}"}}"#,
        "x".repeat(1100 * 1024)
    );
    let input = [
        huge.as_str(),
        r#"{"action":"learn_done","ok":true,"message":"bound"}"#,
        r#"{"action":"set_prompt","text":"after the long line","raw":true}"#,
        r#"{"action":"quit"}"#,
    ]
    .join("\n");
    let out = headless(&sb)
        .write_stdin(input)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let raw: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let times: Vec<f64> = raw.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let ev = events(&out.stdout);
    let errors: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "notice" && e["level"] == "error")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        errors
            .iter()
            .any(|m| m.contains("stdin line 1") && m.contains("longer than")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|m| m.contains("stdin line 2") && m.contains("unknown variant `learn_done`")),
        "{errors:?}"
    );
    assert!(
        ev.iter()
            .any(|e| e["event"] == "sent"
                && e["payload"]["prompts"][0]["text"] == "after the long line"),
        "the line after the long one was lost: {ev:#?}"
    );
}

/// When the reader of stdout goes away (a pipe into `head` that ended), the deck stops cleanly
/// instead of running on unheard.
#[test]
fn a_closed_stdout_stops_the_deck() {
    let sb = common::Sandbox::new();
    let mut child = StdCommand::new(common::bin())
        .args(["--headless", "--dry-run", "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.contains("\"ready\""), "{ready}");
    // Close the reading end; the demo keeps the engine sending, so the next write fails.
    drop(lines);
    let status = common::wait_for("the deck to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
    let log = common::wait_for("the stop in the log", Duration::from_secs(5), || {
        let l = sb.log();
        l.contains("output_closed").then_some(l)
    });
    assert!(log.contains("stdout closed by its reader"), "{log}");
    drop(stdin);
}

#[test]
fn the_leading_tempo_source_is_a_headless_event() {
    let sb = common::Sandbox::new();
    let input = [
        // A nudge holds a manual tempo (the `tap` source); pinning detection overrides it.
        r#"{"action":"nudge_tempo","bpm":0.5}"#,
        r#"{"action":"tempo_source","source":"detected"}"#,
        r#"{"action":"quit"}"#,
    ]
    .join("\n");
    let out = headless(&sb)
        .write_stdin(input)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let tempo: Vec<Value> = events(&out.stdout)
        .into_iter()
        .filter(|e| e["event"] == "tempo")
        .collect();
    let tap = tempo
        .iter()
        .find(|e| e["source"] == "tap")
        .unwrap_or_else(|| panic!("no tap tempo event: {tempo:#?}"));
    assert_eq!(tap["confidence"], json!(1.0));
    assert!(tap["bpm"].as_f64().is_some_and(|b| b > 0.0), "{tap}");
    assert!(
        tempo
            .iter()
            .any(|e| e["source"] == "detected" && e["pinned"] == "detected"),
        "{tempo:#?}"
    );
}
