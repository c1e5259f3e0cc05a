//! `--check-config` with several outputs (issue 20 item 5): every output's server is asked, not
//! just the first — `--check-servers` asks each `[[outputs]]` output's URL with its own video
//! section, repeated `--server` asks each URL — and each report names its output. Two aiortc
//! peers on loopback; nothing is started on either (no POST).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use common::peer::{Peer, PeerOptions};

fn check(sb: &common::Sandbox, extra: &[String]) -> Output {
    Command::cargo_bin("scope-deck")
        .unwrap()
        .arg("--check-config")
        .args(extra)
        .arg("--config-dir")
        .arg(sb.config_dir())
        .env("XDG_STATE_HOME", sb.state_home())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

async fn posts(peer: &Peer) -> usize {
    peer.requests()
        .await
        .iter()
        .filter(|e| e["method"] == "POST")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outputs_server_is_checked_and_named() {
    // The wall's box is fine; the side box lacks the models and the NDI its own video wants.
    let wall = Peer::start(PeerOptions::default()).await;
    let side = Peer::start(PeerOptions {
        missing_models: vec!["longlive".into()],
        ..Default::default()
    })
    .await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "[server]\npipeline_ids = [\"longlive\"]\n\
         [[outputs]]\nname = \"wall\"\nurl = \"{}\"\n\
         [[outputs]]\nname = \"side\"\nurl = \"{}\"\n\
         [outputs.video.scope_outputs]\nenable = [\"ndi\"]\n",
        wall.url(),
        side.url()
    ));

    // Without --check-servers nothing is asked (the check stays offline).
    let (out, sb) = tokio::task::spawn_blocking(move || (check(&sb, &[]), sb))
        .await
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains("GET /health"), "{t}");

    let (out, sb) =
        tokio::task::spawn_blocking(move || (check(&sb, &["--check-servers".into()]), sb))
            .await
            .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains(&format!("server wall: GET /health: ok ({})", wall.url())),
        "{t}"
    );
    assert!(
        t.contains(&format!("server side: GET /health: ok ({})", side.url())),
        "{t}"
    );
    // The side's problems are its own: models, and NDI under its own key.
    let side_lines: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("server side:"))
        .collect();
    assert!(
        side_lines
            .iter()
            .any(|l| l.contains("pipeline_id=longlive") && l.contains("not downloaded")),
        "{t}"
    );
    assert!(
        side_lines
            .iter()
            .any(|l| l.contains("outputs[1].video.scope_outputs.enable")
                && l.contains("cannot publish NDI")),
        "{t}"
    );
    assert!(
        !t.lines()
            .any(|l| l.starts_with("server wall:") && l.contains("not downloaded")),
        "{t}"
    );
    assert!(t.contains("2 problem(s)"), "{t}");

    // Repeated --server: each URL is asked, named as the show names them (out1, out2).
    let urls = vec![
        "--server".to_string(),
        wall.url(),
        "--server".into(),
        side.url(),
    ];
    sb.write_config("[server]\npipeline_ids = [\"longlive\"]\n");
    let out = tokio::task::spawn_blocking(move || check(&sb, &urls))
        .await
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("server out1: GET /health: ok"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.starts_with("server out2:") && l.contains("not downloaded")),
        "{t}"
    );
    assert!(t.contains("1 problem(s)"), "{t}");

    assert_eq!(posts(&wall).await, 0, "nothing started on the wall's box");
    assert_eq!(posts(&side).await, 0, "nothing started on the side box");
}
