//! `--check-config --server URL` against the aiortc test peer (issue 16 item 4): the pre-flight
//! asks the server what the show will need — health, pipeline ids, models, server-side outputs —
//! reports every problem in one run with the endpoint (and config key) named, and never starts a
//! session (no pipeline load, no offer).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use common::peer::{Peer, PeerOptions, free_port};

fn check(sb: &common::Sandbox, url: &str) -> Output {
    Command::cargo_bin("scope-deck")
        .unwrap()
        .args(["--check-config", "--server", url, "--config-dir"])
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Paths the peer was asked for with `method`.
async fn requested(peer: &Peer, method: &str) -> Vec<String> {
    peer.requests()
        .await
        .iter()
        .filter(|e| e["method"] == method)
        .map(|e| e["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_can_run_the_show_passes_without_a_session() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config("[server]\npipeline_ids = [\"passthrough\"]\n");
    let url = peer.url();
    let out = tokio::task::spawn_blocking(move || {
        let o = check(&sb, &url);
        (o, sb)
    })
    .await
    .unwrap()
    .0;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("GET /health: ok"), "{t}");
    assert!(t.contains("offers passthrough"), "{t}");
    assert!(t.contains("configuration ok"), "{t}");
    // Asked, never started: no load, no offer.
    assert_eq!(requested(&peer, "POST").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_problem_is_reported_in_one_run_with_endpoint_and_key() {
    let peer = Peer::start(PeerOptions {
        missing_models: vec!["longlive".into()],
        hardware: vec!["spout"],
        ..Default::default()
    })
    .await;
    let sb = common::Sandbox::new();
    sb.write_config(
        "[server]\npipeline_ids = [\"longlive\"]\n\n[video.scope_outputs]\nenable = [\"ndi\"]\n",
    );
    let url = peer.url();
    let (out, sb) = tokio::task::spawn_blocking(move || (check(&sb, &url), sb))
        .await
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("models/status?pipeline_id=longlive") && t.contains("not downloaded"),
        "{t}"
    );
    assert!(
        t.contains("key `video.scope_outputs.enable`") && t.contains("cannot publish NDI"),
        "{t}"
    );
    assert!(t.contains("2 problem(s)"), "{t}");

    // A typo in the pipeline id is named with the nearest one the server offers.
    sb.write_config("[server]\npipeline_ids = [\"passthru\"]\n");
    let url = peer.url();
    let out = tokio::task::spawn_blocking(move || check(&sb, &url))
        .await
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("key `server.pipeline_ids`") && t.contains("did you mean `passthrough`"),
        "{t}"
    );
    assert_eq!(requested(&peer, "POST").await, Vec::<String>::new());
}

/// Nothing listens on the port: one line naming the endpoint, exit 3, within the request timeout.
#[test]
fn a_server_that_does_not_answer_is_named() {
    let sb = common::Sandbox::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = check(&sb, &url);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("health") && t.contains(&url), "{t}");
}
