//! Issue 15 items 2–6 against the aiortc peer: a server that is down at start or goes away is
//! probed cheaply and reconnected the moment it answers; the OSC backend's state comes from
//! HTTP; unknown pipelines are refused before loading; a load that cannot succeed stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::peer::{Peer, PeerOptions, free_port};
use common::rig::{Rig, fast_config};
use scope_deck::transport::config::ServerConfig;
use scope_deck::transport::{ConnState, TransportEvent};

/// Reasons of every `state` event seen so far.
fn reasons(rig: &Rig, state: ConnState) -> Vec<String> {
    rig.seen
        .iter()
        .filter_map(|e| match e {
            TransportEvent::State { state: s, reason } if *s == state => {
                Some(reason.clone().unwrap_or_default())
            }
            _ => None,
        })
        .collect()
}

/// The production backoff (250 ms doubling to 10 s): the one that left a returned server idle.
fn production_backoff(url: &str) -> ServerConfig {
    let d = ServerConfig::default();
    ServerConfig {
        reconnect_initial_ms: d.reconnect_initial_ms,
        reconnect_max_ms: d.reconnect_max_ms,
        reconnect_jitter: d.reconnect_jitter,
        health_probe_ms: d.health_probe_ms,
        health_poll_ms: 200,
        ..fast_config(url)
    }
}

/// Item 4: nothing listens at start → `reconnecting` with the reason (not stuck in idle, no
/// illegal move), then connected once a server appears on that port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_at_start_waits_visibly_and_connects_when_it_appears() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut rig = Rig::start(&production_backoff(&url), false).await;
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await,
        "{:?}",
        rig.seen
    );
    let why = reasons(&rig, ConnState::Reconnecting);
    assert!(
        why.iter()
            .any(|r| r.contains("waiting for the server") && r.contains("/health")),
        "{why:?}"
    );
    assert_eq!(
        rig.states().first(),
        Some(&ConnState::Reconnecting),
        "the first state is a visible wait"
    );
    // Let several probes fail: the state must not churn (one event for the whole wait).
    rig.pump(Duration::from_millis(1500)).await;
    assert_eq!(
        rig.count_state(ConnState::Reconnecting),
        1,
        "{:?}",
        rig.seen
    );
    let peer = Peer::start(PeerOptions {
        port: Some(port),
        ..PeerOptions::default()
    })
    .await;
    let back = Instant::now();
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(20))
            .await,
        "{:?}\n{}",
        rig.seen,
        peer.stderr()
    );
    eprintln!(
        "server up at start+: streaming {:.0} ms after /health answered",
        back.elapsed().as_secs_f64() * 1000.0
    );
    assert!(rig.quit().await);
}

/// Item 2: the server is killed and comes back on the same port after a few seconds (long
/// enough for the old backoff to reach 4 s): streaming again within a generous bound of its
/// return (goal ≤ 1 s, docs/performance.md; measured figure printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_that_returns_is_reconnected_at_once() {
    let peer = Peer::start(PeerOptions::default()).await;
    let port = peer.port;
    let mut rig = Rig::start(&production_backoff(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(30))
            .await,
        "{:?}",
        rig.seen
    );
    let streaming_before = rig.count_state(ConnState::Streaming);
    drop(peer);
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await,
        "{:?}",
        rig.seen
    );
    // The outage itself (the scenario, not a synchronisation): 4 s of nobody answering.
    rig.pump(Duration::from_secs(4)).await;
    assert!(
        reasons(&rig, ConnState::Reconnecting)
            .iter()
            .any(|r| r.contains("waiting for the server")),
        "{:?}",
        rig.seen
    );
    let peer = Peer::start(PeerOptions {
        port: Some(port),
        ..PeerOptions::default()
    })
    .await;
    let back = Instant::now();
    let ok = rig
        .until(Duration::from_secs(20), |e| {
            matches!(
                e,
                TransportEvent::State {
                    state: ConnState::Streaming,
                    ..
                }
            )
        })
        .await;
    let ms = back.elapsed().as_secs_f64() * 1000.0;
    eprintln!("reconnect after return: streaming {ms:.0} ms after /health answered");
    assert!(ok, "{:?}\n{}", rig.seen, peer.stderr());
    assert_eq!(rig.count_state(ConnState::Streaming), streaming_before + 1);
    // Generous for a loaded 2-core box (pipeline load + warm-up 0.3 s + ICE included).
    assert!(
        ms < 4000.0,
        "streaming {ms:.0} ms after the server returned"
    );
    assert!(rig.quit().await);
}

/// A shm sink started with `socket` as its path; returns the stats once it runs.
async fn run_shm_sink(
    socket: &std::path::Path,
) -> (
    scope_deck::video::VideoHandle,
    scope_deck::video::VideoStats,
    tokio_util::sync::CancellationToken,
) {
    use scope_deck::video::config::{SinkConfig, VideoConfig};
    let cfg = VideoConfig {
        sinks: vec![SinkConfig::Shm {
            socket: socket.to_string_lossy().into(),
            format: "I420".into(),
        }],
        restart_backoff_ms: 100,
        ..VideoConfig::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let (_tx, handle) = scope_deck::video::start(&cfg, cancel.clone()).unwrap();
    let mut stats = handle.stats.clone();
    let s = common::rtp_gen::wait_stats(
        &mut stats,
        "the shm sink to run",
        Duration::from_secs(10),
        |s| s.sinks.first().is_some_and(|k| k.running),
    )
    .await;
    (handle, s, cancel)
}

/// Item 6: a socket left by a SIGKILLed deck (a file nobody listens on) is removed and the sink
/// listens on the configured path, not `<path>.0`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_shm_socket_is_recovered_and_the_configured_path_used() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("out.shm");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_err(),
        "the stale socket refuses connections before the sink starts"
    );
    let (handle, s, _cancel) = run_shm_sink(&socket).await;
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        "the sink listens on the configured path: {s:#?}"
    );
    assert!(
        !dir.path().join("out.shm.0").exists(),
        "moved aside: {s:#?}"
    );
    assert_eq!(s.sinks[0].last_error, None, "{s:#?}");
    handle.shutdown().await;
}

/// Item 6: a path another writer really listens on is left alone, and the sink says loudly
/// where it listens instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shm_path_in_use_is_kept_and_the_actual_path_reported() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("out.shm");
    let _other = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let (handle, s, _cancel) = run_shm_sink(&socket).await;
    let err = s.sinks[0].last_error.clone().unwrap_or_default();
    assert!(
        err.contains("in use") && err.contains("out.shm.0"),
        "{s:#?}"
    );
    assert!(dir.path().join("out.shm.0").exists());
    handle.shutdown().await;
}

/// Requests `peer` answered matching `method path`.
async fn requests(peer: &Peer, method: &str, path: &str) -> usize {
    peer.requests()
        .await
        .iter()
        .filter(|e| e["method"] == method && e["path"] == path)
        .count()
}

/// Errors reported so far.
fn errors(rig: &Rig) -> Vec<String> {
    rig.seen
        .iter()
        .filter_map(|e| match e {
            TransportEvent::Error(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Item 5: a typo in the pipeline id is refused before any load, with a suggestion, and not
/// retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_pipeline_is_refused_before_loading_with_a_suggestion() {
    let peer = Peer::start(PeerOptions::default()).await;
    let cfg = ServerConfig {
        pipeline_ids: vec!["passthru".into()],
        ..fast_config(&peer.url())
    };
    let mut rig = Rig::start(&cfg, false).await;
    assert!(
        rig.until(Duration::from_secs(10), |e| matches!(
            e,
            TransportEvent::Error(m) if m.contains("not retrying")
        ))
        .await,
        "{:?}",
        rig.seen
    );
    let err = errors(&rig).join("\n");
    assert!(
        err.contains("`passthru` is not on this server")
            && err.contains("did you mean `passthrough`"),
        "{err}"
    );
    // Several backoff periods (50 ms) pass: nothing is retried, nothing was loaded.
    rig.pump(Duration::from_millis(800)).await;
    assert_eq!(requests(&peer, "POST", "/api/v1/pipeline/load").await, 0);
    assert_eq!(
        requests(&peer, "GET", "/api/v1/pipelines/schemas").await,
        1,
        "checked once, then waiting for the performer"
    );
    assert!(!rig.states().contains(&ConnState::Streaming));
    assert!(rig.quit().await);
}

/// Item 5: a load that ends in `error` with an empty error field (real Scope without the
/// pipeline's GPU dependencies) says what is known and stops after `max_load_failures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_failing_without_a_reason_says_what_is_known_and_stops() {
    let peer = Peer::start(PeerOptions {
        warmup: 0.1,
        extra_args: vec!["--load-fail".into(), "longlive".into()],
        ..PeerOptions::default()
    })
    .await;
    let cfg = ServerConfig {
        max_load_failures: 2,
        ..fast_config(&peer.url())
    };
    let mut rig = Rig::start(&cfg, false).await;
    assert!(
        rig.until(Duration::from_secs(20), |e| matches!(
            e,
            TransportEvent::Error(m) if m.contains("not retrying")
        ))
        .await,
        "{:?}\n{}",
        rig.seen,
        peer.stderr()
    );
    let err = errors(&rig).join("\n");
    assert!(!err.contains("no reason given"), "{err}");
    assert!(
        err.contains("empty error field") && err.contains("server's log"),
        "{err}"
    );
    assert!(err.contains("vram_gb 0"), "hardware named: {err}");
    assert!(err.contains("2 failed loads in a row"), "{err}");
    rig.pump(Duration::from_millis(800)).await;
    assert_eq!(
        requests(&peer, "POST", "/api/v1/pipeline/load").await,
        2,
        "stopped after max_load_failures"
    );
    let why = reasons(&rig, ConnState::Loading);
    assert!(
        why.last().is_some_and(|r| r.contains("not retrying")),
        "the state says it stopped: {why:?}"
    );
    assert!(rig.quit().await);
}

/// An OSC config for the peer at `url` (OSC to the HTTP port number, as Scope listens).
fn osc_config(url: &str) -> ServerConfig {
    ServerConfig {
        backend: scope_deck::transport::config::Backend::ScopeOsc,
        send_rate_hz: 200.0,
        health_probe_ms: 100,
        ..fast_config(url)
    }
}

/// OSC messages the peer received, `(address, args)` in order.
fn osc_received(peer: &Peer) -> Vec<(String, serde_json::Value)> {
    peer.entries()
        .into_iter()
        .filter(|e| e["kind"] == "osc")
        .map(|e| {
            (
                e["data"]["address"].as_str().unwrap_or("").to_string(),
                e["data"]["args"].clone(),
            )
        })
        .collect()
}

/// Item 3: OSC is fire-and-forget, so with nothing listening (no server at all, or a server
/// whose OSC listener is off) the backend is not streaming and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_with_nothing_listening_is_not_streaming() {
    // No server at all.
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut rig = Rig::start(&osc_config(&url), false).await;
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await,
        "{:?}",
        rig.seen
    );
    rig.pump(Duration::from_millis(600)).await;
    assert!(
        !rig.states().contains(&ConnState::Streaming),
        "{:?}",
        rig.seen
    );
    assert!(rig.quit().await);

    // A server whose OSC listener is off.
    let peer = Peer::start(PeerOptions::default()).await;
    let mut rig = Rig::start(&osc_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Reconnecting, Duration::from_secs(10))
            .await,
        "{:?}",
        rig.seen
    );
    rig.pump(Duration::from_millis(600)).await;
    assert!(
        !rig.states().contains(&ConnState::Streaming),
        "{:?}",
        rig.seen
    );
    assert!(
        reasons(&rig, ConnState::Reconnecting)
            .iter()
            .any(|r| r.contains("OSC listener is off")),
        "{:?}",
        rig.seen
    );
    // Turned on: streaming, and the held state goes out.
    peer.control("osc", serde_json::json!({"on": true})).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(10))
            .await,
        "{:?}",
        rig.seen
    );
    assert!(rig.quit().await);
}

/// Item 3: a theme's prompt switch (a `transition` with target prompts) reaches Scope's OSC as
/// the steps and then the prompt text; a key Scope's OSC does not list is refused with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osc_prompt_switch_arrives_and_unknown_keys_are_refused() {
    use scope_deck::transport::{ParamUpdate, TransportCmd};
    let peer = Peer::start(PeerOptions {
        extra_args: vec!["--osc".into()],
        ..PeerOptions::default()
    })
    .await;
    let mut rig = Rig::start(&osc_config(&peer.url()), false).await;
    assert!(
        rig.until_state(ConnState::Streaming, Duration::from_secs(10))
            .await,
        "{:?}\n{}",
        rig.seen,
        peer.stderr()
    );
    let mut values = serde_json::Map::new();
    values.insert(
        "transition".into(),
        serde_json::json!({"num_steps": 6, "target_prompts": [{"text": "neon city", "weight": 1.0}]}),
    );
    rig.send(TransportCmd::Update(ParamUpdate {
        values,
        urgent: true,
    }))
    .await;
    rig.send(TransportCmd::Update(ParamUpdate::one(
        "made_up_key",
        serde_json::json!(3),
    )))
    .await;
    let got = rig
        .wait_peer(&peer, Duration::from_secs(10), |_| {
            let got = osc_received(&peer);
            got.iter()
                .any(|(a, v)| a == "/scope/prompt" && v == &serde_json::json!(["neon city"]))
                .then_some(got)
        })
        .await;
    let steps = got
        .iter()
        .position(|(a, v)| a == "/scope/transition_steps" && v == &serde_json::json!([6]));
    let prompt = got
        .iter()
        .position(|(a, v)| a == "/scope/prompt" && v == &serde_json::json!(["neon city"]));
    assert!(
        steps.is_some() && steps < prompt,
        "steps before the prompt: {got:?}"
    );
    assert!(
        rig.until_seen(Duration::from_secs(5), |seen| seen.iter().any(|e| matches!(
            e,
            TransportEvent::Refused { key, reason } if key == "made_up_key" && reason.contains("osc/paths")
        )))
        .await,
        "{:?}",
        rig.seen
    );
    assert!(
        !osc_received(&peer)
            .iter()
            .any(|(a, _)| a == "/scope/made_up_key"),
        "an unknown key never reaches the wire"
    );
    assert!(rig.quit().await);
}
