//! The real binary, headless, with the `scope` backend against the aiortc peer: it warms up,
//! streams, sends a clamped parameter over the real data channel, and on quit DELETEs its
//! session before exiting 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_binary_streams_to_the_peer_and_deletes_on_quit() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "[server]\nbackend = \"scope\"\nurl = \"{}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n",
        peer.url()
    ));
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
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { return };
            if let Ok(v) = serde_json::from_str(&l) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    let wait_event = |pred: &dyn Fn(&Value) -> bool, what: &str| -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within 30 s: {seen:#?}"));
            let hit = pred(&v);
            seen.push(v);
            if hit {
                return seen;
            }
        }
    };
    let seen = wait_event(
        &|v| v["event"] == "connection" && v["state"] == "streaming",
        "streaming",
    );
    assert!(
        seen.iter()
            .any(|v| v["event"] == "connection" && v["state"] == "warming"),
        "{seen:#?}"
    );
    writeln!(
        stdin,
        r#"{{"action":"set_param","key":"noise_scale","value":0.95}}"#
    )
    .unwrap();
    // The schema on the peer caps noise_scale at 0.8.
    wait_event(
        &|v| v["event"] == "sent" && v["payload"]["noise_scale"] == json!(0.8),
        "a sent noise_scale",
    );
    peer.wait_log(Duration::from_secs(5), |e| {
        e.iter()
            .any(|x| x["kind"] == "message" && x["data"]["noise_scale"] == json!(0.8))
            .then_some(())
    })
    .await;
    writeln!(stdin, r#"{{"action":"force_quit"}}"#).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "binary did not exit after quit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let stats = peer.stats().await;
    assert_eq!(stats["deleted"].as_array().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["sessions"], json!([]), "no zombie session");
    drop(stdin);
}
