//! Several outputs end to end: the real binary, headless, drives three aiortc test peers on
//! loopback (`[[outputs]]`, docs/outputs.md).
//!
//! - beat-locked cache resets (demo audio → one analysis → one beat grid) reach all three
//!   peers within a stated tolerance of each other;
//! - with one output selected an action reaches only that peer (the others get a later marker
//!   sent to all, and nothing before it);
//! - killing one peer leaves the other two streaming without a gap in their data channels, and
//!   its reconnect replays its own overrides (seed from config, a value set while selected);
//! - failover: the primary's peer killed → the standby receives the primary's full state and
//!   the primary's video sink keeps receiving frames (now from the standby); primary back →
//!   its traffic returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::deck::Deck;
use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

const THEME: &str = common::fixtures::BEAT_RESET_THEME;

/// How far apart (wall clock, as the peers log it) the same beat's reset may land on two
/// outputs. One engine sends all three in the same fold; what differs is each transport's
/// task and data channel. Measured max here: see docs/performance.md ("Several outputs").
const RESET_TOLERANCE_S: f64 = 0.150;

const SERVER: &str = "[server]\nbackend = \"scope\"\npipeline_ids = [\"longlive\"]\n\
    status_poll_ms = 50\nhealth_poll_ms = 200\nhealth_probe_ms = 100\n\
    reconnect_initial_ms = 100\nreconnect_max_ms = 500\nwarmup_expected_s = 1.0\n";

fn resets(p: &Peer) -> Vec<f64> {
    p.entries()
        .iter()
        .filter(|e| e["kind"] == "message" && e["data"]["reset_cache"] == json!(true))
        .map(|e| e["ts"].as_f64().unwrap())
        .collect()
}

fn messages_with(p: &Peer, key: &str) -> Vec<(f64, Value)> {
    p.entries()
        .iter()
        .filter(|e| e["kind"] == "message" && e["data"].get(key).is_some())
        .map(|e| (e["ts"].as_f64().unwrap(), e["data"][key].clone()))
        .collect()
}

/// Data-channel message times of the current session after `from` (seconds).
fn message_times_after(p: &Peer, from: f64) -> Vec<f64> {
    p.entries()
        .iter()
        .filter(|e| e["kind"] == "message")
        .filter_map(|e| e["ts"].as_f64())
        .filter(|t| *t >= from)
        .collect()
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_outputs_share_the_grid_route_actions_and_survive_a_lost_peer() {
    let peers = [
        Peer::start(PeerOptions::default()).await,
        Peer::start(PeerOptions::default()).await,
        Peer::start(PeerOptions::default()).await,
    ];
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{SERVER}[audio]\nsource = \"demo\"\n[ui]\ntheme = \"beat-reset\"\n\
         [[outputs]]\nname = \"wall\"\nurl = \"{}\"\n\
         [[outputs]]\nname = \"left\"\nurl = \"{}\"\n\
         [[outputs]]\nname = \"right\"\nurl = \"{}\"\nseed = 7\n",
        peers[0].url(),
        peers[1].url(),
        peers[2].url()
    ));
    std::fs::create_dir_all(sb.config_dir().join("themes")).unwrap();
    std::fs::write(sb.config_dir().join("themes/beat-reset.toml"), THEME).unwrap();
    let mut deck = Deck::start(&sb);
    for name in ["wall", "left", "right"] {
        deck.wait_output(name, "streaming", Duration::from_secs(60));
    }
    // Each output's first session carried its own desired state.
    let within = Duration::from_secs(10);
    assert_eq!(peers[2].wait_initial(within).await["seed"], json!(7));
    assert!(peers[0].wait_initial(within).await.get("seed").is_none());

    // 1. Beat-locked resets: wait for eight on every peer, then pair each of the wall's with
    //    the nearest on the others.
    for p in &peers {
        p.wait_log(Duration::from_secs(60), |_| {
            (resets(p).len() >= 8).then_some(())
        })
        .await;
    }
    let (wall, left, right) = (resets(&peers[0]), resets(&peers[1]), resets(&peers[2]));
    let mut worst: f64 = 0.0;
    let mut paired = 0;
    for t in &wall[2..] {
        for other in [&left, &right] {
            let d = other
                .iter()
                .map(|u| (u - t).abs())
                .fold(f64::INFINITY, f64::min);
            worst = worst.max(d);
        }
        paired += 1;
    }
    eprintln!(
        "beat resets on three outputs: {paired} beats, worst spread {:.1} ms",
        worst * 1e3
    );
    assert!(
        worst <= RESET_TOLERANCE_S,
        "the same beat's reset landed {worst:.3} s apart (tolerance {RESET_TOLERANCE_S} s): \
         wall {wall:?} left {left:?} right {right:?}"
    );

    // 2. One output selected: only its peer gets the value. A marker to all afterwards proves
    //    the others were sent everything before it (the data channel is ordered).
    deck.send(json!({"action": "output_select", "output": "left"}));
    deck.send(json!({"action": "set_param", "key": "vace_context_scale", "value": 0.25}));
    deck.send(json!({"action": "output_select", "output": "right"}));
    deck.send(json!({"action": "set_param", "key": "vace_context_scale", "value": 0.75}));
    deck.send(json!({"action": "output_select"}));
    deck.send(
        json!({"action": "set_param", "key": "denoising_step_list", "value": [900, 600, 300]}),
    );
    for p in &peers {
        p.wait_log(Duration::from_secs(10), |_| {
            (!messages_with(p, "denoising_step_list").is_empty()).then_some(())
        })
        .await;
    }
    let vace = |p: &Peer| -> Vec<Value> {
        messages_with(p, "vace_context_scale")
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    };
    assert_eq!(
        vace(&peers[1]),
        [json!(0.25)],
        "left got only its own value"
    );
    assert_eq!(
        vace(&peers[2]),
        [json!(0.75)],
        "right got only its own value"
    );
    assert!(
        vace(&peers[0]).is_empty(),
        "wall was not selected: {:?}",
        vace(&peers[0])
    );

    // 3. Kill the right output's peer: wall and left keep streaming without a gap.
    let right_port = peers[2].port;
    let [wall_peer, left_peer, right_peer] = peers;
    let killed_at = now_s();
    drop(right_peer);
    deck.wait_output("right", "reconnecting", Duration::from_secs(10));
    // Let the survivors run on for a few seconds of beats (measured on their own logs).
    for p in [&wall_peer, &left_peer] {
        p.wait_log(Duration::from_secs(20), |_| {
            let n = message_times_after(p, killed_at).len();
            (n >= 20).then_some(())
        })
        .await;
    }
    for (name, p) in [("wall", &wall_peer), ("left", &left_peer)] {
        let times = message_times_after(p, killed_at - 1.0);
        let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        eprintln!(
            "{name}: largest data-channel gap around the kill {:.0} ms",
            gap * 1e3
        );
        // Beat forwarding sends every 200 ms; a stalled output would go silent for seconds.
        assert!(
            gap < 1.0,
            "{name} went silent for {gap:.2} s when another output died"
        );
        let sessions = p
            .entries()
            .iter()
            .filter(|e| e["kind"] == "initial")
            .count();
        assert_eq!(sessions, 1, "{name} did not reconnect");
    }
    // The peer comes back on the same port: the right output reconnects with its own state.
    let back = Peer::start_on(right_port).await;
    deck.wait_output("right", "streaming", Duration::from_secs(30));
    let replay = back.wait_initial(Duration::from_secs(10)).await;
    assert_eq!(replay["seed"], json!(7), "{replay}");
    assert_eq!(replay["vace_context_scale"], json!(0.75), "{replay}");
    assert_eq!(
        replay["denoising_step_list"],
        json!([900, 600, 300]),
        "{replay}"
    );
    deck.quit();
    let _ = (wall_peer, left_peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_primary_moves_its_state_and_video_to_the_standby_and_back() {
    let primary = Peer::start(PeerOptions::default()).await;
    let standby = Peer::start(PeerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wall.shm");
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{SERVER}[[outputs]]\nname = \"wall\"\nurl = \"{}\"\nstandby = \"spare\"\n\
         failover_after_secs = 1.0\nprompt = \"primary prompt\"\n\
         [[outputs.video.sinks]]\nkind = \"shm\"\nsocket = \"{}\"\n\
         [[outputs]]\nname = \"spare\"\nurl = \"{}\"\nseed = 9\n",
        primary.url(),
        socket.display(),
        standby.url()
    ));
    let mut deck = Deck::start(&sb);
    deck.wait_output("wall", "streaming", Duration::from_secs(60));
    deck.wait_output("spare", "streaming", Duration::from_secs(60));
    deck.send(json!({"action": "output_select", "output": "wall"}));
    deck.send(json!({"action": "set_param", "key": "vace_context_scale", "value": 1.25}));
    primary
        .wait_log(Duration::from_secs(10), |_| {
            (!messages_with(&primary, "vace_context_scale").is_empty()).then_some(())
        })
        .await;
    common::wait_for("shm socket", Duration::from_secs(10), || {
        socket.exists().then_some(())
    });
    let reader = common::rtp_gen::ShmReader::start(&socket, 128, 64);
    reader.wait_frames("frames from the primary", 0, 15, Duration::from_secs(20));

    // The primary's peer dies: after failover_after_secs its state goes to the standby.
    let port = primary.port;
    drop(primary);
    deck.wait_notice("move to spare", Duration::from_secs(20));
    let state = standby
        .wait_message(Duration::from_secs(10), |m| {
            m["prompts"][0]["text"] == json!("primary prompt")
        })
        .await;
    assert_eq!(
        state["vace_context_scale"],
        json!(1.25),
        "the primary's own value: {state}"
    );
    assert!(
        state.get("seed").is_none(),
        "not the standby's own seed: {state}"
    );
    // The wall's sink keeps receiving frames, now from the standby.
    reader.wait_frames(
        "frames from the standby on the wall's sink",
        reader.frames_read(),
        30,
        Duration::from_secs(20),
    );

    // The primary comes back: the wall streams from it again and the standby returns to its
    // own state.
    let back = Peer::start_on(port).await;
    deck.wait_output("wall", "streaming", Duration::from_secs(30));
    deck.wait_notice("wall is back", Duration::from_secs(10));
    let replay = back.wait_initial(Duration::from_secs(10)).await;
    assert_eq!(replay["prompts"][0]["text"], json!("primary prompt"));
    assert_eq!(replay["vace_context_scale"], json!(1.25));
    standby
        .wait_message(Duration::from_secs(10), |m| m["seed"] == json!(9))
        .await;
    // Traffic returns: the wall's sink reads the primary's frames again.
    reader.wait_frames(
        "frames after failback",
        reader.frames_read(),
        15,
        Duration::from_secs(20),
    );
    let stats = back.stats().await;
    assert!(stats["frames_sent"].as_u64().unwrap_or(0) > 0, "{stats}");
    drop(reader);
    deck.quit();
}
