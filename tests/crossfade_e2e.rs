//! The prompt crossfader end to end: the real binary (headless, `scope` backend) against the
//! aiortc test peer. Fader moves sent as script lines (as a MIDI fader's `set_param crossfade`)
//! arrive on the data channel as weighted `prompts` blends with the interpolation method, and a
//! burst of moves is coalesced (latest wins) instead of flooding the channel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

const THEME: &str = r#"
name = "Fader"
template = "{prompt}"
prompts = ["alpha", "beta"]
"#;

/// The peer's received messages that carry `prompts`.
fn prompt_msgs(entries: &[Value]) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e["kind"] == "message" && e["data"]["prompts"].is_array())
        .map(|e| e["data"].clone())
        .collect()
}

fn blend(pairs: &[(&str, f64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(t, w)| json!({ "text": t, "weight": w }))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fader_moves_arrive_as_weighted_prompt_blends() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "[server]\nbackend = \"scope\"\nurl = \"{}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n\
         [audio]\nsource = \"demo\"\n[ui]\ntheme = \"fader\"\n",
        peer.url()
    ));
    std::fs::create_dir_all(sb.config_dir().join("themes")).unwrap();
    std::fs::write(sb.config_dir().join("themes/fader.toml"), THEME).unwrap();
    let mut child = Command::new(common::bin())
        .args(["--headless", "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("never streamed: {}", peer.stderr()));
        if ev["event"] == "connection" && ev["state"] == "streaming" {
            break;
        }
    }

    let fader = |v: f64| format!(r#"{{"action":"set_param","key":"crossfade","value":{v}}}"#);
    // Each position, waited for on the data channel before the next.
    for (v, want) in [
        (0.25, blend(&[("alpha", 0.75), ("beta", 0.25)])),
        (0.5, blend(&[("alpha", 0.5), ("beta", 0.5)])),
        (1.0, blend(&[("beta", 1.0)])),
    ] {
        writeln!(stdin, "{}", fader(v)).unwrap();
        let got: Value = peer
            .wait_log(Duration::from_secs(20), |entries| {
                prompt_msgs(entries)
                    .into_iter()
                    .find(|m| m["prompts"] == want)
            })
            .await;
        assert_eq!(
            got["prompt_interpolation_method"],
            json!("linear"),
            "the configured interpolation travels with the blend: {got}"
        );
    }
    let before = prompt_msgs(&peer.entries()).len();
    // A fader swept in one burst (40 positions from B back to A): coalesced, the last wins.
    let burst: Vec<String> = (0..=40).map(|i| fader(1.0 - f64::from(i) / 40.0)).collect();
    writeln!(stdin, "{}", burst.join("\n")).unwrap();
    let entries: Vec<Value> = peer
        .wait_log(Duration::from_secs(20), |entries| {
            prompt_msgs(entries)
                .last()
                .is_some_and(|m| m["prompts"] == blend(&[("alpha", 1.0)]))
                .then(|| entries.to_vec())
        })
        .await;
    let during = prompt_msgs(&entries).len() - before;
    assert!(
        during < 20,
        "{during} prompt messages for a 41-step burst: not rate-limited"
    );
    writeln!(stdin, r#"{{"action":"force_quit"}}"#).unwrap();
    let status = common::wait_for("exit", Duration::from_secs(15), || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
}
