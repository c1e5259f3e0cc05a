//! WHIP ingest and WHEP playback of the `daydream` backend against the LOCAL STAND-IN of
//! Daydream's API (tests/peer/daydream_standin.py: aiohttp + aiortc, built from
//! docs/daydream-api.md, not the real service, which cannot be reached from here). The stand-in
//! is as strict as the gateway: H.264 only (profile-level-id 42001f) on WHIP, decoding nothing
//! before a key frame. Real H.264 from the video input's GStreamer encoder goes in over WHIP (the
//! stand-in decodes and counts it); the stand-in's H.264 WHEP video, whose top rows carry a frame
//! counter, comes back as RTP packets on the same channel the Scope transport feeds, and is
//! decoded here with GStreamer to read the counters. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::daydream::{KEY, Standin, StandinOptions};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use scope_deck::transport::daydream::{ApiKey, DaydreamVideo, spawn_with_key};
use scope_deck::transport::types::{
    ConnState, RtpPacket, TransportCmd, TransportEvent, VideoCodec,
};
use scope_deck::video::config::{InputConfig, InputSource};
use scope_deck::video::input;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The stand-in's media events of `kind` (`/_state` → `media`).
fn media(state: &Value, kind: &str) -> Vec<Value> {
    state["media"]
        .as_array()
        .map(|m| m.iter().filter(|e| e["kind"] == kind).cloned().collect())
        .unwrap_or_default()
}

/// Decodes H.264 RTP packets and reads the 32-bit counter from the top rows of every frame.
fn decode_counters(packets: &[RtpPacket]) -> Vec<u32> {
    gst::init().unwrap();
    let pt = packets[0].payload_type;
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload={pt} \
         ! rtpjitterbuffer latency=0 ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=GRAY8 \
         ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = p
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    for pkt in packets {
        src.push_buffer(gst::Buffer::from_slice(pkt.data.clone()))
            .unwrap();
    }
    src.end_of_stream().unwrap();
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(3)) {
        let caps = sample.caps().unwrap();
        let s = caps.structure(0).unwrap();
        let width = s.get::<i32>("width").unwrap() as usize;
        let buf = sample.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        let stride = map.len() / s.get::<i32>("height").unwrap() as usize;
        let cell = width / 32;
        let row = &map.as_slice()[16 * stride..16 * stride + width];
        let mut v = 0u32;
        for i in 0..32 {
            v = (v << 1) | u32::from(row[i * cell + cell / 2] > 128);
        }
        out.push(v);
    }
    let _ = p.set_state(gst::State::Null);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_ingest_and_whep_playback_carry_frames() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin = Standin::start(StandinOptions {
        warmup: 0.5,
        ..Default::default()
    });
    // The real video input, H.264 as the app chooses for this backend, running before the
    // session (its first key frame is gone when WHIP connects).
    let (stx, srx) = mpsc::channel(input::SAMPLE_CAPACITY);
    let inp = input::start(
        &InputConfig {
            source: InputSource::TestPattern,
            width: 128,
            height: 64,
            fps: 15,
            bitrate_kbps: 300,
            keyframe_interval_ms: 10_000,
            codec: VideoCodec::H264,
            ..InputConfig::default()
        },
        stx,
        CancellationToken::new(),
    )
    .unwrap();
    let (rtx, mut rrx) = mpsc::channel::<RtpPacket>(4096);
    let (etx, mut erx) = mpsc::channel(1024);
    let video = DaydreamVideo {
        rtp_out: Some(rtx),
        samples_in: Some(Arc::new(Mutex::new(srx))),
        input_keyframes: Some(inp.keyframes.clone()),
        ..DaydreamVideo::default()
    };
    let h = spawn_with_key(&standin.config(), None, ApiKey::new(KEY), etx, video).unwrap();
    h.link.send_waiting(TransportCmd::Connect).await.unwrap();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(40);
    loop {
        match tokio::time::timeout_at(end, erx.recv()).await {
            Ok(Some(TransportEvent::State {
                state: ConnState::Streaming,
                reason: Some(r),
            })) if r.contains("playback connected") => break,
            Ok(Some(TransportEvent::Error(e))) => panic!("{e}"),
            Ok(Some(_)) => {}
            other => panic!("no streaming with playback: {other:?}"),
        }
    }
    let to_streaming = t0.elapsed();
    // Three seconds of playback packets.
    let mut packets = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while let Ok(Some(p)) = tokio::time::timeout_at(until, rrx.recv()).await {
        packets.push(p);
    }
    let state = standin.state();
    let ingest = state["whip_frames_in"].as_u64().unwrap();
    assert!(ingest >= 15, "stand-in decoded only {ingest} ingest frames");
    assert!(
        media(&state, "whip_closed").is_empty(),
        "the strict stand-in closed our ingest: {}",
        state["media"]
    );
    let offers = media(&state, "whip_offer");
    assert_eq!(offers.len(), 1);
    assert!(offers[0]["data"]["refusal"].is_null(), "{}", offers[0]);
    let first_in = media(&state, "first_frame_in");
    assert_eq!(first_in.len(), 1, "{}", state["media"]);
    assert!(!media(&state, "keyframe_in").is_empty());
    assert!(packets.len() > 20, "{} RTP packets", packets.len());
    assert!(
        packets
            .iter()
            .all(|p| p.codec == VideoCodec::H264 && p.clock_rate == 90_000)
    );
    let counters = decode_counters(&packets);
    // Figures for docs/performance.md (not asserted: timing belongs in benchmarks).
    eprintln!(
        "daydream figures: connect->streaming {to_streaming:?} (stand-in warm-up 0.5 s); \
         {} RTP packets, {} frames decoded in 3 s; {ingest} ingest frames at the stand-in; \
         WHIP offer -> first ingest frame decoded {} s",
        packets.len(),
        counters.len(),
        first_in[0]["data"]["after_offer_s"]
    );
    assert!(counters.len() >= 15, "decoded {} frames", counters.len());
    assert!(
        counters.windows(2).all(|w| w[1] > w[0]),
        "frame counters not increasing: {counters:?}"
    );
    h.link.send_waiting(TransportCmd::Shutdown).await.unwrap();
    while let Some(ev) = erx.recv().await {
        if ev == TransportEvent::Stopped {
            break;
        }
    }
    drop(rrx);
    inp.shutdown().await;
    // The gateway's WHEP answer has no Location: nothing to DELETE there; the stream is.
    assert!(
        standin
            .matching("DELETE", "/live/")
            .iter()
            .all(|r| !r["path"].as_str().unwrap().ends_with("/whep"))
    );
    assert_eq!(
        standin.matching("DELETE", "/v1/streams").len(),
        1,
        "stream DELETE"
    );
}

/// The WHIP exchange succeeds but media never connects (the stand-in's answer points every
/// candidate at the discard port): the connection limit ends the attempt with an error that
/// names the leg and the limit, instead of hanging. The limit is injected (1 s) where the
/// product uses the seeds' 45 s (`rtc::CONNECT_TIMEOUT`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_that_never_connects_times_out_with_a_named_error() {
    use scope_deck::transport::daydream::policy::{WARMUP_RETRY, Warmup};
    use scope_deck::transport::daydream::rtc::{self, MediaError, RtcOptions};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin = Standin::start(StandinOptions {
        unreachable_media: true,
        ..Default::default()
    });
    // The gateway only answers WHIP for a stream that exists (its key is in the path).
    let created = standin.create_stream();
    let url = url::Url::parse(created["whip_url"].as_str().unwrap()).unwrap();
    let opts = RtcOptions {
        ice_servers: Vec::new(),
        loopback: true,
        gather_timeout: rtc::GATHER_TIMEOUT,
        connect_timeout: Duration::from_secs(1),
        hosts: rtc::HostPolicy {
            allowed: Vec::new(),
            allow_local_dev: true,
        },
    };
    let warmup = Warmup {
        created_at: Duration::ZERO,
        grace: Duration::ZERO,
        backoff: WARMUP_RETRY,
    };
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let result = rtc::whip(&http, &url, &opts, None, None, &warmup, started).await;
    match result {
        Err(e @ MediaError::Timeout(what, limit)) => {
            assert_eq!(what, "WHIP");
            assert_eq!(limit, Duration::from_secs(1));
            assert!(e.to_string().contains("WHIP: connection timed out"), "{e}");
        }
        Err(other) => panic!("expected the connection timeout, got {other}"),
        Ok(_) => panic!("connected to candidates on the discard port"),
    }
    // The HTTP leg did happen: the failure is the media connection, not the offer.
    assert_eq!(standin.matching("POST", "/live/video-to-video/").len(), 1);
}

/// The backend before H.264 ingest offered what the Scope backend offers (VP8 first, H.264
/// 42e01f) with a VP8 track. The strict stand-in, like the gateway, accepts the HTTP exchange
/// and then closes that session with "non-h264 video" and decodes nothing: proof it would have
/// caught the old backend (whose test asserted VP8 and passed against the lenient stand-in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_stand_in_closes_the_old_vp8_offer() {
    use webrtc::api::APIBuilder;
    use webrtc::api::media_engine::{MIME_TYPE_VP8, MediaEngine};
    use webrtc::api::setting_engine::SettingEngine;
    use webrtc::ice::mdns::MulticastDnsMode;
    use webrtc::ice::network_type::NetworkType;
    use webrtc::peer_connection::configuration::RTCConfiguration;
    use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
    use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
    use webrtc::track::track_local::TrackLocal;
    use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin = Standin::start(StandinOptions {
        warmup: 0.0,
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/v1/streams", standin.url()))
        .bearer_auth(KEY)
        .json(&serde_json::json!({
            "pipeline": "streamdiffusion",
            "params": {"model_id": "stabilityai/sd-turbo", "prompt": "x"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let whip = created["whip_url"].as_str().expect("whip_url").to_string();

    // The old offer, built as the old backend built it.
    let mut media_engine = MediaEngine::default();
    for c in scope_deck::transport::sdp::video_codecs() {
        media_engine.register_codec(c, RTPCodecType::Video).unwrap();
    }
    let mut se = SettingEngine::default();
    se.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    se.set_network_types(vec![NetworkType::Udp4]);
    se.set_include_loopback_candidate(true);
    se.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    let api = APIBuilder::new()
        .with_media_engine(media_engine)
        .with_setting_engine(se)
        .build();
    let pc = api
        .new_peer_connection(RTCConfiguration::default())
        .await
        .unwrap();
    let track = Arc::new(TrackLocalStaticSample::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            ..Default::default()
        },
        "video".to_owned(),
        "old-backend".to_owned(),
    ));
    pc.add_track(track as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), gathered.recv()).await;
    let sdp = pc.local_description().await.unwrap().sdp;
    assert!(sdp.contains("VP8/90000"), "{sdp}");
    let resp = http
        .post(&whip)
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .body(sdp)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "WHIP {}", resp.status());
    let answer = resp.text().await.unwrap();
    pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();

    let end = Instant::now() + Duration::from_secs(15);
    let closed = loop {
        let state = standin.state();
        if let Some(c) = media(&state, "whip_closed").first() {
            break (c.clone(), state);
        }
        assert!(Instant::now() < end, "never closed: {}", state["media"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(closed.0["data"]["reason"], "non-h264 video", "{}", closed.0);
    assert_eq!(
        media(&closed.1, "whip_offer")[0]["data"]["refusal"],
        "non-h264 video"
    );
    assert_eq!(closed.1["whip_frames_in"], 0);
    let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
}

/// Like the gateway, the stand-in closes an H.264 WHIP session that carries no video within 5 s
/// ("missing video"): the offer alone is not enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_stand_in_closes_a_whip_session_without_video() {
    use scope_deck::transport::daydream::policy::{WARMUP_RETRY, Warmup};
    use scope_deck::transport::daydream::rtc::{self, RtcOptions};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let standin = Standin::start(StandinOptions {
        warmup: 0.0,
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/v1/streams", standin.url()))
        .bearer_auth(KEY)
        .json(&serde_json::json!({
            "pipeline": "streamdiffusion",
            "params": {"model_id": "stabilityai/sd-turbo", "prompt": "x"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = url::Url::parse(created["whip_url"].as_str().expect("whip_url")).unwrap();
    let opts = RtcOptions {
        ice_servers: Vec::new(),
        loopback: true,
        gather_timeout: rtc::GATHER_TIMEOUT,
        connect_timeout: Duration::from_secs(20),
        hosts: rtc::HostPolicy {
            allowed: Vec::new(),
            allow_local_dev: true,
        },
    };
    let warmup = Warmup {
        created_at: Duration::ZERO,
        grace: Duration::ZERO,
        backoff: WARMUP_RETRY,
    };
    // Our H.264 offer is accepted; no samples are ever sent.
    let link = rtc::whip(
        &http,
        &url,
        &opts,
        None,
        None,
        &warmup,
        std::time::Instant::now(),
    )
    .await
    .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    let closed = loop {
        let state = standin.state();
        if let Some(c) = media(&state, "whip_closed").first() {
            break c.clone();
        }
        assert!(Instant::now() < end, "never closed: {}", state["media"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(closed["data"]["reason"], "missing video", "{closed}");
    let offer = &media(&standin.state(), "whip_offer")[0];
    assert!(offer["data"]["refusal"].is_null(), "{offer}");
    link.close(&http).await;
}
