//! The `daydream` backend against a LOCAL STAND-IN of Daydream's API (tests/peer/
//! daydream_standin.py, aiohttp + aiortc). The stand-in is a FAKE built from the documented
//! contract (docs/daydream-api.md, itself written from the public gateway code, OpenAPI
//! description and official clients), not the real service, which cannot be reached from here.
//! It is as strict as that contract on the REST side: the stream key in the WHIP path, status and
//! PATCH 404 until ingest, WHEP 404 until the first output, 400 on out-of-range values.
//! Loopback only: empty ICE server lists, 127.0.0.1 candidates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::daydream::{KEY, Standin, StandinOptions};
use scope_deck::transport::TransportHandle;
use scope_deck::transport::daydream::{ApiKey, DaydreamConfig, DaydreamVideo, spawn_with_key};
use scope_deck::transport::types::{
    ConnState, EncodedSample, ParamUpdate, TransportCmd, TransportEvent,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

struct Rig {
    handle: TransportHandle,
    events: mpsc::Receiver<TransportEvent>,
    seen: Vec<TransportEvent>,
    // Keeps the WHIP sample channel open.
    _samples: mpsc::Sender<EncodedSample>,
}

impl Rig {
    async fn start(cfg: DaydreamConfig) -> Rig {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (etx, erx) = mpsc::channel(1024);
        let (stx, srx) = mpsc::channel(8);
        let video = DaydreamVideo {
            rtp_out: None,
            samples_in: Some(Arc::new(Mutex::new(srx))),
            ..DaydreamVideo::default()
        };
        let handle = spawn_with_key(&cfg, None, ApiKey::new(KEY), etx, video).unwrap();
        let mut initial = serde_json::Map::new();
        initial.insert(
            "prompts".into(),
            json!([{"text": "neon koi", "weight": 1.0}]),
        );
        initial.insert("paused".into(), json!(false));
        handle.link.publish_fixed(initial);
        handle
            .link
            .send_waiting(TransportCmd::Connect)
            .await
            .unwrap();
        Rig {
            handle,
            events: erx,
            seen: Vec::new(),
            _samples: stx,
        }
    }

    async fn send(&self, cmd: TransportCmd) {
        self.handle.link.send_waiting(cmd).await.unwrap();
    }

    /// Waits for an event matching `pred` (deadline), keeping everything seen.
    async fn wait(
        &mut self,
        what: &str,
        secs: u64,
        pred: impl Fn(&TransportEvent) -> bool,
    ) -> TransportEvent {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(end, self.events.recv()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return ev;
                    }
                }
                Ok(None) => panic!(
                    "transport ended while waiting for {what}; seen {:#?}",
                    self.seen
                ),
                Err(_) => panic!("timed out waiting for {what}; seen {:#?}", self.seen),
            }
        }
    }

    /// Collects what arrives within `d`.
    async fn drain_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Ok(Some(ev)) = tokio::time::timeout_at(end, self.events.recv()).await {
            self.seen.push(ev);
        }
    }

    async fn shutdown(mut self) -> Vec<TransportEvent> {
        self.send(TransportCmd::Shutdown).await;
        self.wait("Stopped", 5, |e| matches!(e, TransportEvent::Stopped))
            .await;
        self.seen
    }

    fn errors(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                TransportEvent::Error(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

fn is_state(s: ConnState) -> impl Fn(&TransportEvent) -> bool {
    move |e| matches!(e, TransportEvent::State { state, .. } if *state == s)
}

fn whep_posts(standin: &Standin) -> Vec<Value> {
    standin
        .matching("POST", "/live/")
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/whep"))
        .collect()
}

fn statuses(reqs: &[Value]) -> Vec<u64> {
    reqs.iter().map(|r| r["status"].as_u64().unwrap()).collect()
}

/// Warm-up: a create answered 503 once (retried once), status answered 404 until ingest and
/// 404/409/503 for 2 s after it, then success;
/// the transport retries quietly (no error event), reports warm-up progress, reaches streaming,
/// and on shutdown DELETEs the stream and the WHIP session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_not_ready_answers_are_retried_quietly_then_streaming() {
    let standin = Standin::start(StandinOptions {
        warmup: 2.0,
        create_fail: 1,
        warmup_codes: vec![404, 409, 503],
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait("streaming", 40, is_state(ConnState::Streaming))
        .await;
    assert!(
        rig.errors().is_empty(),
        "errors during warm-up: {:?}",
        rig.errors()
    );
    assert!(
        rig.seen.iter().any(|e| matches!(e, TransportEvent::WarmUp(w) if w.stage.as_deref().is_some_and(|s| s.contains("not ready")))),
        "no warm-up progress reported"
    );
    let creates = statuses(&standin.matching("POST", "/v1/streams"));
    assert_eq!(creates, vec![503, 201]);
    let polls = statuses(&standin.matching("GET", "/v1/streams/"));
    for code in [404, 409, 503, 200] {
        assert!(
            polls.contains(&code),
            "status answers {polls:?} lack {code}"
        );
    }
    let first_ok = polls.iter().position(|&c| c == 200).unwrap();
    assert!(polls[..first_ok].iter().all(|&c| c != 200));
    // The create body is the preset with the performer's prompt and without unsupported keys.
    let body = standin.matching("POST", "/v1/streams").last().unwrap()["body"].clone();
    assert_eq!(body["pipeline"], "streamdiffusion");
    assert_eq!(body["params"]["model_id"], "stabilityai/sd-turbo");
    assert_eq!(body["params"]["prompt"], "neon koi");
    assert_eq!(body["params"]["controlnets"].as_array().unwrap().len(), 5);
    assert!(body["params"].get("paused").is_none());
    assert!(
        rig.seen
            .iter()
            .any(|e| matches!(e, TransportEvent::Refused { key, .. } if key == "paused")),
        "unsupported key not reported"
    );
    // Health figures from the status endpoint: the video entry of track_stats[] (the audio
    // entry has rtt 9.0), and the gateway's loss percentage.
    rig.wait("stats", 10, |e| matches!(e, TransportEvent::Stats(s) if s.server_fps == Some(24.5) && s.rtt_ms == Some(12.5))).await;
    // What the server receives from us: input fps, and the jitter (seconds → ms).
    let stats = rig
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            TransportEvent::Stats(s) if s.server_fps == Some(24.5) => Some(*s),
            _ => None,
        })
        .unwrap();
    assert_eq!(stats.input_fps, Some(29.8));
    assert!(
        stats.jitter_ms.is_some_and(|j| (j - 3.0).abs() < 1e-3),
        "{stats:?}"
    );
    assert!(
        stats.loss.is_some_and(|l| (l - 0.005).abs() < 1e-6),
        "{stats:?}"
    );
    let seen = rig.shutdown().await;
    assert!(seen.iter().any(is_state(ConnState::Stopped)));
    let deletes = standin.matching("DELETE", "/v1/streams");
    assert_eq!(deletes.len(), 1, "stream DELETE");
    assert!(deletes[0]["query"].as_str().unwrap().starts_with("id=str_"));
    // The WHIP Location (plain http on loopback, allowed by the local-development opt-in) is
    // the only media address DELETEd.
    assert_eq!(
        standin.matching("DELETE", "/live/video-to-video/").len(),
        1,
        "WHIP session DELETE"
    );
}

/// PATCH: throttled to the configured rate with the latest value winning, only live-changeable
/// keys (always with model_id), not-ready PATCH answers retried quietly inside the window, a
/// reloading change held until confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_are_throttled_filtered_and_carry_model_id() {
    let standin = Standin::start(StandinOptions {
        warmup: 1.0,
        patch_warmup: Some(3.0),
        ..Default::default()
    });
    let mut cfg = standin.config();
    cfg.patch_rate_hz = 4.0;
    let mut rig = Rig::start(cfg).await;
    rig.wait("streaming", 40, is_state(ConnState::Streaming))
        .await;
    // 100 knob moves over 2 s, a prompt change and an unsupported key.
    let start = Instant::now();
    for i in 0..100 {
        let v = f64::from(i) / 100.0;
        rig.send(TransportCmd::Update(ParamUpdate::one(
            "noise_scale",
            json!(v),
        )))
        .await;
        if i == 50 {
            rig.send(TransportCmd::Update(ParamUpdate::trigger(
                "prompts",
                json!([{"text": "a", "weight": 1.0}, {"text": "b", "weight": 0.5}]),
            )))
            .await;
            rig.send(TransportCmd::Update(ParamUpdate::one(
                "vace_context_scale",
                json!(1.0),
            )))
            .await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let burst = start.elapsed();
    rig.send(TransportCmd::Update(ParamUpdate::one("width", json!(640))))
        .await;
    rig.wait("width held", 5, |e| matches!(e, TransportEvent::Refused { key, reason } if key == "width" && reason.contains("reloads"))).await;
    // Wait until the PATCH warm-up is over and the final value went through.
    rig.drain_for(Duration::from_secs(4)).await;
    let patches = standin.matching("PATCH", "/v1/streams/");
    let ok: Vec<&Value> = patches.iter().filter(|r| r["status"] == 200).collect();
    assert!(
        !ok.is_empty(),
        "no PATCH succeeded: {:?}",
        statuses(&patches)
    );
    assert!(
        statuses(&patches).iter().any(|&c| c != 200),
        "PATCH warm-up answers were not exercised"
    );
    assert!(
        rig.errors().is_empty(),
        "not-ready PATCHes must not surface: {:?}",
        rig.errors()
    );
    // Throttled: never back to back (the exact 250 ms spacing is unit-tested with injected time
    // in transport::daydream; receive times here carry the loaded machine's jitter), and far
    // fewer PATCHes than knob moves (below).
    let ts: Vec<f64> = patches.iter().map(|r| r["ts"].as_f64().unwrap()).collect();
    for w in ts.windows(2) {
        assert!(w[1] - w[0] >= 0.05, "PATCHes {:.3}s apart", w[1] - w[0]);
    }
    assert!(
        patches.len() < 100 / 5,
        "{} PATCHes for 100 moves in {burst:?}",
        patches.len()
    );
    let dynamic = [
        "model_id",
        "prompt",
        "guidance_scale",
        "delta",
        "num_inference_steps",
        "t_index_list",
        "seed",
        "controlnets",
    ];
    for p in &patches {
        assert_eq!(p["body"]["pipeline"], "streamdiffusion");
        let params = p["body"]["params"].as_object().unwrap();
        assert_eq!(params["model_id"], "stabilityai/sd-turbo");
        for k in params.keys() {
            assert!(dynamic.contains(&k.as_str()), "non-dynamic key {k} in {p}");
        }
    }
    let last = ok.last().unwrap();
    assert_eq!(
        last["body"]["params"]["delta"],
        json!(0.99),
        "latest value wins"
    );
    assert!(
        ok.iter()
            .any(|p| p["body"]["params"]["prompt"] == json!([["a", 1.0], ["b", 0.5]]))
    );
    assert!(
        rig.seen.iter().any(
            |e| matches!(e, TransportEvent::Refused { key, .. } if key == "vace_context_scale")
        )
    );
    // Confirming sends the held reload.
    rig.send(TransportCmd::Update(ParamUpdate::trigger(
        "confirm_reload",
        json!(true),
    )))
    .await;
    rig.wait("reload sent", 5, |e| matches!(e, TransportEvent::Sent { payload } if payload["params"]["width"] == json!(640))).await;
    rig.drain_for(Duration::from_millis(800)).await;
    let last = standin.matching("PATCH", "/v1/streams/").pop().unwrap();
    assert_eq!(
        last["body"]["params"],
        json!({"model_id": "stabilityai/sd-turbo", "width": 640})
    );
    assert_eq!(last["status"], 200);
    rig.shutdown().await;
}

/// Five consecutive PATCH failures outside the warm-up window switch live updates off (error and
/// degraded state naming it), and no further PATCH is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_make_live_updates_unavailable() {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        patch_fail: 500,
        ..Default::default()
    });
    let mut cfg = standin.config();
    cfg.warmup_grace_secs = 3.0;
    let mut rig = Rig::start(cfg).await;
    rig.wait("streaming", 40, is_state(ConnState::Streaming))
        .await;
    rig.send(TransportCmd::Update(ParamUpdate::one(
        "guidance_scale",
        json!(2.0),
    )))
    .await;
    rig.wait("unavailable", 30, |e| matches!(e, TransportEvent::State { state: ConnState::Degraded, reason: Some(r) } if r.contains("live updates unavailable"))).await;
    let errors = rig.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("live updates unavailable — changes apply on restart")),
        "{errors:?}"
    );
    let counted: Vec<&String> = errors
        .iter()
        .filter(|e| e.contains("parameter update failed"))
        .collect();
    assert_eq!(counted.len(), 4, "{errors:?}");
    assert!(
        counted[0].contains("(1/5)")
            && counted[0].contains("PATCH /v1/streams/")
            && counted[0].contains("HTTP 500"),
        "{counted:?}"
    );
    let n = standin.matching("PATCH", "/v1/streams/").len();
    rig.send(TransportCmd::Update(ParamUpdate::one(
        "guidance_scale",
        json!(3.0),
    )))
    .await;
    rig.drain_for(Duration::from_secs(2)).await;
    assert_eq!(
        standin.matching("PATCH", "/v1/streams/").len(),
        n,
        "PATCHed after giving up"
    );
    // A restart applies the changes: the new stream is created with them, the old one deleted.
    rig.seen.clear();
    rig.send(TransportCmd::Reconnect).await;
    rig.wait("streaming again", 40, is_state(ConnState::Streaming))
        .await;
    let creates = standin.matching("POST", "/v1/streams");
    assert_eq!(creates.len(), 2);
    assert_eq!(creates[1]["body"]["params"]["guidance_scale"], json!(3.0));
    assert_eq!(
        standin.matching("DELETE", "/v1/streams").len(),
        1,
        "old stream deleted"
    );
    assert!(rig.errors().is_empty(), "{:?}", rig.errors());
    rig.shutdown().await;
}

/// A whip_url on a host outside the allowlist is refused before any connection is attempted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_url_outside_the_allowlist_is_refused() {
    let standin = Standin::start(StandinOptions {
        whip_host: Some("ingest.evil-livepeer.example".into()),
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    let ev = rig
        .wait(
            "refusal",
            20,
            |e| matches!(e, TransportEvent::Error(m) if m.contains("WHIP URL refused")),
        )
        .await;
    let TransportEvent::Error(msg) = ev else {
        unreachable!()
    };
    assert!(msg.contains("ingest.evil-livepeer.example"), "{msg}");
    assert!(msg.contains("allowed_hosts"), "{msg}");
    assert!(standin.matching("POST", "/live/").is_empty());
    rig.shutdown().await;
    // The stream it could not use is still deleted.
    assert_eq!(standin.matching("DELETE", "/v1/streams").len(), 1);
}

/// Quitting while the stream is still being created (create retried after a 503) still deletes
/// the stream once it exists, within the goodbye time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_during_creation_deletes_the_stream() {
    let standin = Standin::start(StandinOptions {
        create_fail: 1,
        ..Default::default()
    });
    let rig = Rig::start(standin.config()).await;
    let t = Instant::now();
    let seen = rig.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "goodbye took {:?}",
        t.elapsed()
    );
    assert!(seen.iter().any(is_state(ConnState::Stopped)));
    assert_eq!(
        statuses(&standin.matching("POST", "/v1/streams")),
        vec![503, 201]
    );
    assert_eq!(standin.matching("DELETE", "/v1/streams").len(), 1);
}

/// Without the `livepeer-playback-url` header, playback falls back to the status endpoint's
/// `gateway_status.whep_url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_falls_back_to_the_status_whep_url() {
    let standin = Standin::start(StandinOptions {
        no_playback_header: true,
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait("playback", 40, |e| {
        matches!(e, TransportEvent::State { state: ConnState::Streaming, reason: Some(r) } if r.contains("playback connected"))
    })
    .await;
    assert_eq!(whep_posts(&standin).len(), 1);
    assert!(rig.errors().is_empty(), "{:?}", rig.errors());
    rig.shutdown().await;
}

/// Playback that becomes available long after ingest is picked up by the retries alone (no
/// reconnect). The real case is a cold worker: output after ~90 s, with the 60 s warm-up window
/// that used to bound WHEP. The schedule is scaled by 0.1 through config knobs so the test takes
/// ~10 s instead of 90: output after 9 s (90 s), warm-up window 6 s (60 s), playback retried up
/// to 30 s (`playback_wait_secs`, 300 s by default) at most 1 s apart
/// (`playback_retry_max_secs`, 10 s by default). The default schedule itself is checked in
/// `policy::tests::default_playback_schedule_covers_a_cold_worker`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_available_after_the_warm_up_window_is_picked_up() {
    late_playback(0.1).await;
}

/// The same at full scale with the default schedule: output after 90 s, the default 60 s
/// warm-up window, default playback retries. 90 s of wall time, so run on demand:
/// `cargo test --test daydream_api -- --ignored late_playback_at_full_scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "90 s of wall time; the scaled test above runs by default"]
async fn late_playback_at_full_scale() {
    late_playback(1.0).await;
}

async fn late_playback(scale: f64) {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        output_delay: 90.0 * scale,
        ..Default::default()
    });
    let mut cfg = standin.config();
    if scale < 1.0 {
        cfg.warmup_grace_secs = 60.0 * scale;
        cfg.playback_wait_secs = 300.0 * scale;
        cfg.playback_retry_max_secs = 10.0 * scale;
    }
    let window = Duration::from_secs_f64(cfg.warmup_grace_secs);
    let deadline = (120.0 * scale).ceil() as u64 + 30;
    let mut rig = Rig::start(cfg).await;
    rig.wait("ingest", 40, is_state(ConnState::Streaming)).await;
    let t = Instant::now();
    rig.wait("playback", deadline, |e| {
        matches!(e, TransportEvent::State { state: ConnState::Streaming, reason: Some(r) } if r.contains("playback connected"))
    })
    .await;
    assert!(
        t.elapsed() > window,
        "playback came after {:?}, before the warm-up window ({window:?}) ended: the test proves nothing",
        t.elapsed()
    );
    eprintln!(
        "late playback (scale {scale}): picked up {:?} after ingest",
        t.elapsed()
    );
    assert!(
        rig.seen.iter().any(|e| matches!(e, TransportEvent::State { reason: Some(r), .. } if r.contains("waiting for the first output ("))),
        "no visible waiting state: {:#?}",
        rig.seen
    );
    let whep = statuses(&whep_posts(&standin));
    assert_eq!(whep.last(), Some(&201), "{whep:?}");
    assert!(
        whep[..whep.len() - 1].iter().all(|&c| c == 404) && whep.len() >= 5,
        "WHEP answers {whep:?}"
    );
    // One stream, one ingest: picked up without a reconnect.
    assert_eq!(standin.matching("POST", "/v1/streams").len(), 1);
    assert!(rig.errors().is_empty(), "{:?}", rig.errors());
    rig.shutdown().await;
}

/// A 307 from the WHIP host is followed (the target passes the same host check) and the
/// session comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_redirect_is_followed() {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        whip_redirect: true,
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait("playback", 40, |e| {
        matches!(e, TransportEvent::State { state: ConnState::Streaming, reason: Some(r) } if r.contains("playback connected"))
    })
    .await;
    let whip: Vec<Value> = standin
        .matching("POST", "/")
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/whip"))
        .collect();
    assert_eq!(statuses(&whip), vec![307, 201]);
    assert!(
        whip[1]["path"]
            .as_str()
            .unwrap()
            .starts_with("/redirected/"),
        "{whip:?}"
    );
    assert!(rig.errors().is_empty(), "{:?}", rig.errors());
    rig.shutdown().await;
}

/// A 307 to a host outside the allowlist is not followed: the error names the host and not the
/// stream key the redirect carries in its path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_redirect_to_a_foreign_host_is_refused() {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        whip_redirect: true,
        whip_redirect_host: Some("ingest.evil-livepeer.example".into()),
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    let ev = rig
        .wait(
            "refusal",
            30,
            |e| matches!(e, TransportEvent::Error(m) if m.contains("video ingest failed")),
        )
        .await;
    let TransportEvent::Error(msg) = ev else {
        unreachable!()
    };
    assert!(
        msg.contains("redirect refused") && msg.contains("ingest.evil-livepeer.example"),
        "{msg}"
    );
    let keys = standin.stream_keys();
    assert_eq!(keys.len(), 1);
    assert!(!msg.contains(keys[0].as_str()), "stream key in {msg}");
    rig.shutdown().await;
}

/// A ControlNet scale above the API's limit of 1 is refused before sending, with the limit
/// named; an in-range one goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_controlnet_scale_is_refused_before_sending() {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait("streaming", 40, is_state(ConnState::Streaming))
        .await;
    rig.send(TransportCmd::Update(ParamUpdate::one(
        "controlnet_scale_0",
        json!(1.5),
    )))
    .await;
    let ev = rig
        .wait(
            "refusal",
            5,
            |e| matches!(e, TransportEvent::Refused { key, .. } if key == "controlnet_scale_0"),
        )
        .await;
    let TransportEvent::Refused { reason, .. } = ev else {
        unreachable!()
    };
    assert!(
        reason.contains("0 to 1") && reason.contains("not sent"),
        "{reason}"
    );
    rig.send(TransportCmd::Update(ParamUpdate::one(
        "controlnet_scale_0",
        json!(0.5),
    )))
    .await;
    rig.wait("in-range PATCH", 10, |e| {
        matches!(e, TransportEvent::Sent { payload } if payload["params"]["controlnets"][0]["conditioning_scale"] == json!(0.5))
    })
    .await;
    rig.drain_for(Duration::from_millis(500)).await;
    let patches = standin.matching("PATCH", "/v1/streams/");
    assert!(!patches.is_empty());
    for p in &patches {
        assert_eq!(p["status"], 200, "{p}");
        assert_ne!(
            p["body"]["params"]["controlnets"][0]["conditioning_scale"],
            json!(1.5)
        );
    }
    rig.shutdown().await;
}

/// 409 on create (a conflict, possibly the account's stream quota) is reported, not retried:
/// the transport waits in `loading` for the performer's reconnect (`stopped` is final, only for
/// quit), saying it does not retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_conflict_is_reported_not_retried() {
    let standin = Standin::start(StandinOptions {
        create_conflict: 1,
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait("not retrying", 20, |e| {
        matches!(e, TransportEvent::State { state: ConnState::Loading, reason: Some(r) } if r.contains("not retrying"))
    })
    .await;
    let errors = rig.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("HTTP 409") && e.contains("limit of running streams")),
        "{errors:?}"
    );
    rig.drain_for(Duration::from_secs(2)).await;
    assert_eq!(
        statuses(&standin.matching("POST", "/v1/streams")),
        vec![409],
        "create retried after 409"
    );
    rig.shutdown().await;
}

/// A create whose answer is lost (504 after the service created the stream) is retried once;
/// on quit the stream it left behind is found by its creation time and deleted with the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_left_by_a_lost_create_is_deleted_on_quit() {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        create_lost: 1,
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait("streaming", 40, is_state(ConnState::Streaming))
        .await;
    assert_eq!(
        statuses(&standin.matching("POST", "/v1/streams")),
        vec![504, 201]
    );
    rig.shutdown().await;
    let st = standin.state();
    let streams = st["streams"].as_object().unwrap();
    assert_eq!(streams.len(), 2);
    assert!(
        streams.values().all(|s| s["deleted"] == json!(true)),
        "a stream is left running: {st}"
    );
}

/// When `DELETE /v1/streams?id=` is not accepted, `DELETE /v1/streams/{id}` is used; a gateway
/// error in the status is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_falls_back_to_the_path_form_and_gateway_errors_show() {
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        no_query_delete: true,
        gateway_error: Some("segmenter stalled".into()),
        ..Default::default()
    });
    let mut rig = Rig::start(standin.config()).await;
    rig.wait(
        "gateway error",
        40,
        |e| matches!(e, TransportEvent::Error(m) if m == "Daydream gateway: segmenter stalled"),
    )
    .await;
    rig.drain_for(Duration::from_secs(2)).await;
    assert_eq!(
        rig.errors()
            .iter()
            .filter(|e| e.contains("segmenter"))
            .count(),
        1,
        "the same gateway error is shown once"
    );
    rig.shutdown().await;
    let deletes = standin.matching("DELETE", "/v1/streams");
    assert_eq!(statuses(&deletes), vec![405, 200], "{deletes:?}");
    assert!(
        deletes[1]["path"]
            .as_str()
            .unwrap()
            .starts_with("/v1/streams/str_")
    );
    assert!(
        standin.state()["streams"]
            .as_object()
            .unwrap()
            .values()
            .all(|s| s["deleted"] == json!(true))
    );
}
