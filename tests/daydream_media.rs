//! WHIP ingest and WHEP playback of the `daydream` backend against the LOCAL STAND-IN of
//! Daydream's API (tests/peer/daydream_standin.py: aiohttp + aiortc, built from
//! docs/daydream-api.md, not the real service, which cannot be reached from here). Real VP8 from
//! GStreamer goes in over WHIP (the stand-in decodes and counts it); the stand-in's WHEP video,
//! whose top rows carry a frame counter, comes back as RTP packets on the same channel the Scope
//! transport feeds, and is decoded here with GStreamer to read the counters. Loopback only.
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
    ConnState, EncodedSample, RtpPacket, TransportCmd, TransportEvent, VideoCodec,
};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

/// Live VP8 test pattern (128×64, 15 fps) into `tx`, until the receiver is gone.
fn feed_vp8(tx: mpsc::Sender<EncodedSample>) {
    gst::init().unwrap();
    let p = gst::parse::launch(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=128,height=64,framerate=15/1 \
         ! vp8enc deadline=1 keyframe-max-dist=15 ! appsink name=s sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(2)) {
        let buf = sample.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        let s = EncodedSample {
            data: bytes::Bytes::copy_from_slice(map.as_slice()),
            duration: Duration::from_millis(66),
            codec: VideoCodec::Vp8,
        };
        if tx.blocking_send(s).is_err() {
            break;
        }
    }
    let _ = p.set_state(gst::State::Null);
}

/// Decodes VP8 RTP packets and reads the 32-bit counter from the top rows of every frame.
fn decode_counters(packets: &[RtpPacket]) -> Vec<u32> {
    gst::init().unwrap();
    let pt = packets[0].payload_type;
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload={pt} \
         ! rtpjitterbuffer latency=0 ! rtpvp8depay ! vp8dec ! videoconvert ! video/x-raw,format=GRAY8 \
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
    let (stx, srx) = mpsc::channel(32);
    let feeder = std::thread::spawn(move || feed_vp8(stx));
    let (rtx, mut rrx) = mpsc::channel::<RtpPacket>(4096);
    let (etx, mut erx) = mpsc::channel(1024);
    let video = DaydreamVideo {
        rtp_out: Some(rtx),
        samples_in: Some(Arc::new(Mutex::new(srx))),
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
    let ingest = standin.state()["whip_frames_in"].as_u64().unwrap();
    assert!(ingest >= 15, "stand-in decoded only {ingest} ingest frames");
    assert!(packets.len() > 20, "{} RTP packets", packets.len());
    assert!(
        packets
            .iter()
            .all(|p| p.codec == VideoCodec::Vp8 && p.clock_rate == 90_000)
    );
    let counters = decode_counters(&packets);
    // Figures for docs/performance.md (not asserted: timing belongs in benchmarks).
    eprintln!(
        "daydream figures: connect->streaming {to_streaming:?} (stand-in warm-up 0.5 s); \
         {} RTP packets, {} frames decoded in 3 s; {ingest} ingest frames at the stand-in",
        packets.len(),
        counters.len()
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
    feeder.join().unwrap();
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
    use scope_deck::transport::daydream::policy::{Backoff, Warmup};
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
        backoff: Backoff::default(),
    };
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let result = rtc::whip(&http, &url, &opts, None, &warmup, started).await;
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
