//! The one WebRTC peer builder (webrtc-rs 0.17), for Scope and for the hosted backend's
//! WHIP/WHEP: [`peer_connection`] (codecs, interceptors, ICE policy), [`offer_sdp`] (offer, with
//! or without waiting for ICE gathering), [`spawn_sample_writer`] (the video input onto a
//! track), [`spawn_rtcp_reader`] (key-frame requests from the server), [`forward_track`] (received
//! RTP to the video edge) and [`spawn_pli`]. [`scope_peer`] builds a Scope session on it: the
//! `parameters` data channel created before the offer, one video transceiver (VP8 first, H264
//! accepted); `daydream::rtc` builds WHIP (H.264-only ingest) and WHEP on it.
//!
//! Callbacks do nothing but turn what happened into [`LinkEvent`]s on a bounded channel (or bump
//! atomic counters for per-packet facts); the transport actor owns every decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};
use webrtc::api::APIBuilder;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MIME_TYPE_VP8, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::registry::Registry;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::{RTCRtpTransceiver, RTCRtpTransceiverInit};
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use webrtc::util::Marshal;

use crate::transport::protocol::IceServer;
use crate::transport::sdp;
use crate::transport::types::{EncodedSample, RtpPacket, VideoCodec};

/// Capacity of the link event channel (callbacks → actor).
const LINK_CAPACITY: usize = 256;

/// Something the WebRTC stack reported.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// The data channel opened.
    ChannelOpen,
    /// The data channel closed.
    ChannelClosed,
    /// A text message from the server.
    Message(String),
    /// Peer connection state changed.
    Peer(RTCPeerConnectionState),
    /// A local ICE candidate (trickle mode), as Scope's PATCH body item.
    Candidate(serde_json::Value),
    /// The remote video track started.
    Track(VideoCodec),
    /// `/health` answered (server start time) or failed (why).
    Health(Result<f64, String>),
    /// Server-side fps from `/api/v1/session/metrics`.
    ServerFps(Option<f32>),
}

/// Per-packet counters shared with the RTP reader task (no channel traffic per packet).
#[derive(Debug, Default)]
pub(crate) struct VideoCounters {
    /// Frames completed (RTP marker bits).
    pub(crate) frames: AtomicU64,
    /// Packets received.
    pub(crate) packets: AtomicU64,
    /// Packets missing by sequence number.
    pub(crate) lost: AtomicU64,
    /// Packets the video edge did not take (its channel was full).
    pub(crate) dropped: AtomicU64,
}

/// Where received and sent video goes.
#[derive(Debug, Clone, Default)]
pub struct VideoPorts {
    /// Received RTP packets for the video edge (bounded; `try_send`, drops counted).
    pub rtp_out: Option<mpsc::Sender<RtpPacket>>,
    /// Encoded frames to send (video-to-video); shared across reconnects.
    pub samples_in: Option<Arc<Mutex<mpsc::Receiver<EncodedSample>>>>,
    /// The video edge's key-frame request counter: each change asks the sender for a key frame
    /// (RTCP PLI), so a lost first key frame or a loss burst does not leave the picture frozen.
    pub keyframe_requests: Option<tokio::sync::watch::Receiver<u64>>,
    /// The other direction: asks our video input's encoder for a key frame when a session
    /// connects and on every RTCP PLI/FIR the server sends about our track (its decoder cannot
    /// start or recover without one).
    pub input_keyframes: Option<KeyframeRequests>,
}

/// Asks the video input's encoder for a key frame. Cloned into the transports; asking never
/// blocks or allocates, and the input merges and rate-limits what it forces
/// (`video::input::FORCE_MIN_INTERVAL`).
#[derive(Debug, Clone)]
pub struct KeyframeRequests(Arc<tokio::sync::watch::Sender<u64>>);

impl KeyframeRequests {
    /// A requester and the receiver the encoder watches.
    pub(crate) fn new() -> (KeyframeRequests, tokio::sync::watch::Receiver<u64>) {
        let (tx, rx) = tokio::sync::watch::channel(0);
        (KeyframeRequests(Arc::new(tx)), rx)
    }

    /// Asks for one key frame.
    pub fn request(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Reads the RTCP the server sends about our outgoing track and turns every PLI/FIR into a
/// key-frame request to the encoder (webrtc-rs also needs the sender's RTCP read for its
/// interceptors to see it). Ends with the sender.
pub(crate) fn spawn_rtcp_reader(
    sender: Arc<webrtc::rtp_transceiver::rtp_sender::RTCRtpSender>,
    keyframes: Option<KeyframeRequests>,
) -> tokio::task::JoinHandle<()> {
    use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
    use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    tokio::spawn(async move {
        while let Ok((packets, _)) = sender.read_rtcp().await {
            for p in &packets {
                let any = p.as_any();
                let kind = if any.is::<PictureLossIndication>() {
                    "PLI"
                } else if any.is::<FullIntraRequest>() {
                    "FIR"
                } else {
                    continue;
                };
                tracing::debug!("server asked for a key frame (RTCP {kind})");
                if let Some(k) = &keyframes {
                    k.request();
                }
            }
        }
    })
}

/// Reads every RTP packet of a received video track: counts packets, losses (by sequence number)
/// and frames (marker bits), and hands each packet to the video edge with `try_send` (a full
/// channel drops and counts; the network side never waits for GStreamer).
pub(crate) fn forward_track(
    track: Arc<webrtc::track::track_remote::TrackRemote>,
    codec: VideoCodec,
    counters: Arc<VideoCounters>,
    out: Option<mpsc::Sender<RtpPacket>>,
) {
    let pt = track.payload_type();
    let clock_rate = track.codec().capability.clock_rate;
    tokio::spawn(async move {
        let mut last_seq: Option<u16> = None;
        while let Ok((pkt, _)) = track.read_rtp().await {
            counters.packets.fetch_add(1, Ordering::Relaxed);
            let seq = pkt.header.sequence_number;
            if let Some(prev) = last_seq {
                let gap = seq.wrapping_sub(prev);
                if gap > 1 && gap < 1000 {
                    counters
                        .lost
                        .fetch_add(u64::from(gap - 1), Ordering::Relaxed);
                }
            }
            last_seq = Some(seq);
            if pkt.header.marker {
                counters.frames.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(out) = &out {
                let Ok(data) = pkt.marshal() else { continue };
                let p = RtpPacket {
                    data,
                    codec,
                    payload_type: pt,
                    clock_rate,
                    arrival: Instant::now(),
                };
                if out.try_send(p).is_err() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

/// Answers the video edge's key-frame requests with RTCP PLI for `media_ssrc`, at most one per
/// [`PLI_MIN_INTERVAL`], until the peer connection is gone.
pub(crate) fn spawn_pli(
    pc: std::sync::Weak<RTCPeerConnection>,
    media_ssrc: u32,
    mut requests: tokio::sync::watch::Receiver<u64>,
) {
    tokio::spawn(async move {
        requests.mark_unchanged();
        while requests.changed().await.is_ok() {
            let Some(pc) = pc.upgrade() else { break };
            let pli =
                webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
            if pc.write_rtcp(&[Box::new(pli)]).await.is_err() {
                break;
            }
            tracing::debug!(media_ssrc, "key frame requested (RTCP PLI)");
            drop(pc);
            tokio::time::sleep(PLI_MIN_INTERVAL).await;
        }
    });
}

/// Fewest milliseconds between two key-frame requests (a decoder asking every packet must not
/// flood the sender).
pub(crate) const PLI_MIN_INTERVAL: Duration = Duration::from_millis(250);

/// A Scope peer session: peer connection, data channel and the events of both.
pub(crate) struct PeerSession {
    /// The peer connection.
    pub(crate) pc: Arc<RTCPeerConnection>,
    /// The `parameters` channel.
    pub(crate) dc: Arc<RTCDataChannel>,
    /// Events from callbacks.
    pub(crate) events: mpsc::Receiver<LinkEvent>,
    /// A sender for the actor's own monitors (health polling).
    pub(crate) events_tx: mpsc::Sender<LinkEvent>,
    /// Video counters.
    pub(crate) counters: Arc<VideoCounters>,
    /// Background tasks to stop with the session.
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The video transceiver (its placeholder sender track may need the answer's codec).
    video_transceiver: Arc<RTCRtpTransceiver>,
    /// True when the video edge feeds a real (VP8) track.
    has_input: bool,
}

/// Errors from the WebRTC stack (kept as text: they are shown, not matched on).
#[derive(Debug, thiserror::Error)]
#[error("WebRTC: {0}")]
pub(crate) struct RtcError(pub(crate) String);

fn rtc<E: std::fmt::Display>(e: E) -> RtcError {
    RtcError(e.to_string())
}

/// Which video codecs a peer connection registers (and so offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codecs {
    /// Scope: VP8 first, H264 accepted ([`sdp::video_codecs`]).
    Scope,
    /// The hosted gateway: H.264 `42001f` only ([`sdp::hosted_video_codecs`]); its media engine
    /// registers nothing else for video.
    HostedH264,
}

/// How [`peer_connection`] builds a peer connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeerOptions {
    /// Codecs to register.
    pub(crate) codecs: Codecs,
    /// STUN/TURN servers (empty: host candidates only).
    pub(crate) ice: Vec<IceServer>,
    /// Loopback-only candidates (a server on this machine, tests).
    pub(crate) loopback: bool,
}

/// The one peer-connection builder: codecs, the default interceptors (NACK, RTCP reports, the
/// stats Scope's RTT comes from), UDP4 without mDNS, loopback candidates only for a local server.
pub(crate) async fn peer_connection(
    opts: &PeerOptions,
) -> Result<Arc<RTCPeerConnection>, RtcError> {
    let mut media = MediaEngine::default();
    let codecs = match opts.codecs {
        Codecs::Scope => sdp::video_codecs(),
        Codecs::HostedH264 => sdp::hosted_video_codecs(),
    };
    for c in codecs {
        media.register_codec(c, RTPCodecType::Video).map_err(rtc)?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media).map_err(rtc)?;
    let mut se = SettingEngine::default();
    se.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    se.set_network_types(vec![NetworkType::Udp4]);
    if opts.loopback {
        se.set_include_loopback_candidate(true);
        se.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    }
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(se)
        .build();
    let config = RTCConfiguration {
        ice_servers: opts
            .ice
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect(),
        ..Default::default()
    };
    Ok(Arc::new(
        api.new_peer_connection(config).await.map_err(rtc)?,
    ))
}

/// A local video track fed by [`spawn_sample_writer`].
pub(crate) fn sample_track(mime_type: &str, sdp_fmtp_line: &str) -> Arc<TrackLocalStaticSample> {
    Arc::new(TrackLocalStaticSample::new(
        RTCRtpCodecCapability {
            mime_type: mime_type.to_owned(),
            clock_rate: 90_000,
            sdp_fmtp_line: sdp_fmtp_line.to_owned(),
            ..Default::default()
        },
        "video".to_owned(),
        "scope-deck".to_owned(),
    ))
}

/// Writes the video input's encoded frames onto `track` until either side ends. The receiver is
/// shared across sessions (one session at a time holds it).
pub(crate) fn spawn_sample_writer(
    track: Arc<TrackLocalStaticSample>,
    samples: Arc<Mutex<mpsc::Receiver<EncodedSample>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut rx = samples.lock().await;
        while let Some(s) = rx.recv().await {
            let sample = Sample {
                data: s.data,
                duration: s.duration,
                ..Default::default()
            };
            if track.write_sample(&sample).await.is_err() {
                break;
            }
        }
    })
}

/// Creates the offer and sets it locally; with `gather` waits (up to that long) for ICE
/// gathering so the SDP carries every candidate (non-trickle). Returns the SDP to send.
pub(crate) async fn offer_sdp(
    pc: &RTCPeerConnection,
    gather: Option<Duration>,
) -> Result<String, RtcError> {
    let offer = pc.create_offer(None).await.map_err(rtc)?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await.map_err(rtc)?;
    if let Some(limit) = gather
        && tokio::time::timeout(limit, gathered.recv()).await.is_err()
    {
        tracing::warn!("ICE gathering incomplete after {limit:?}; offering what we have");
    }
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| RtcError("no local description after create_offer".into()))
}

/// Builds a Scope session: peer connection, data channel and video transceiver.
pub(crate) async fn scope_peer(
    ice: &[IceServer],
    loopback: bool,
    trickle: bool,
    video: &VideoPorts,
) -> Result<PeerSession, RtcError> {
    let pc = peer_connection(&PeerOptions {
        codecs: Codecs::Scope,
        ice: ice.to_vec(),
        loopback,
    })
    .await?;
    let (tx, rx) = mpsc::channel(LINK_CAPACITY);
    let counters = Arc::new(VideoCounters::default());
    let mut tasks = Vec::new();

    // Data channel first (before the offer), ordered, negotiated in-band.
    let dc = pc
        .create_data_channel(
            "parameters",
            Some(RTCDataChannelInit {
                ordered: Some(true),
                ..Default::default()
            }),
        )
        .await
        .map_err(rtc)?;
    {
        let t = tx.clone();
        dc.on_open(Box::new(move || {
            let t = t.clone();
            Box::pin(async move {
                let _ = t.send(LinkEvent::ChannelOpen).await;
            })
        }));
        let t = tx.clone();
        dc.on_close(Box::new(move || {
            let t = t.clone();
            Box::pin(async move {
                let _ = t.send(LinkEvent::ChannelClosed).await;
            })
        }));
        let t = tx.clone();
        dc.on_message(Box::new(move |m| {
            let t = t.clone();
            Box::pin(async move {
                let text = String::from_utf8_lossy(&m.data).into_owned();
                let _ = t.send(LinkEvent::Message(text)).await;
            })
        }));
    }
    {
        let t = tx.clone();
        let keyframes = video.input_keyframes.clone();
        pc.on_peer_connection_state_change(Box::new(move |s| {
            let t = t.clone();
            // A new session: its decoder needs a key frame now, not at the next periodic one.
            if s == RTCPeerConnectionState::Connected
                && let Some(k) = &keyframes
            {
                k.request();
            }
            Box::pin(async move {
                let _ = t.send(LinkEvent::Peer(s)).await;
            })
        }));
    }
    if trickle {
        let t = tx.clone();
        pc.on_ice_candidate(Box::new(move |c| {
            let t = t.clone();
            Box::pin(async move {
                if let Some(c) = c.and_then(|c| c.to_json().ok()) {
                    let v = serde_json::json!({
                        "candidate": c.candidate,
                        "sdpMid": c.sdp_mid,
                        "sdpMLineIndex": c.sdp_mline_index,
                    });
                    let _ = t.send(LinkEvent::Candidate(v)).await;
                }
            })
        }));
    }

    // Video: sendrecv with a track for video-to-video, sendrecv without one for text-to-video
    // (what Scope's own UI does). Generated video comes back on this transceiver.
    let has_input = video.samples_in.is_some();
    let init = || {
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendrecv,
            send_encodings: vec![],
        })
    };
    let video_transceiver = if let Some(samples) = video.samples_in.clone() {
        let track = sample_track(MIME_TYPE_VP8, "");
        let t = pc
            .add_transceiver_from_track(
                Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>,
                init(),
            )
            .await
            .map_err(rtc)?;
        tasks.push(spawn_rtcp_reader(
            t.sender().await,
            video.input_keyframes.clone(),
        ));
        tasks.push(spawn_sample_writer(track, samples));
        t
    } else {
        pc.add_transceiver_from_kind(RTPCodecType::Video, init())
            .await
            .map_err(rtc)?
    };
    {
        let t = tx.clone();
        let counters = Arc::clone(&counters);
        let out = video.rtp_out.clone();
        let keyframes = video.keyframe_requests.clone();
        let weak_pc = Arc::downgrade(&pc);
        pc.on_track(Box::new(move |track, _receiver, _transceiver| {
            let t = t.clone();
            let counters = Arc::clone(&counters);
            let out = out.clone();
            if let Some(kf) = keyframes.clone() {
                spawn_pli(weak_pc.clone(), track.ssrc(), kf);
            }
            Box::pin(async move {
                let codec_params = track.codec();
                let codec =
                    sdp::codec_of(&codec_params.capability.mime_type).unwrap_or(VideoCodec::Vp8);
                let _ = t.send(LinkEvent::Track(codec)).await;
                forward_track(track, codec, counters, out);
            })
        }));
    }
    Ok(PeerSession {
        pc,
        dc,
        events: rx,
        events_tx: tx,
        counters,
        tasks,
        video_transceiver,
        has_input,
    })
}

impl PeerSession {
    /// Creates the offer; unless trickling, waits (up to `gather_timeout`) for ICE gathering so
    /// the SDP carries every candidate. Returns the SDP to POST.
    pub(crate) async fn offer(
        &self,
        trickle: bool,
        gather_timeout: Duration,
    ) -> Result<String, RtcError> {
        offer_sdp(&self.pc, (!trickle).then_some(gather_timeout)).await
    }

    /// Applies the server's answer.
    ///
    /// webrtc-rs gives a track-less `sendrecv` transceiver a silent placeholder track of the
    /// first registered codec (VP8); when Scope answers H264 that placeholder cannot bind, so it
    /// is swapped for an H264 one first. Real outgoing video is VP8: an H264 answer then cannot
    /// carry it, which is reported as such.
    pub(crate) async fn answer(&self, sdp: String) -> Result<(), RtcError> {
        let chosen = sdp::negotiated_video(&sdp).map(|(c, _)| c);
        if chosen == Some(VideoCodec::H264) {
            if self.has_input {
                return Err(RtcError(
                    "the server answered H264 but the outgoing video is VP8".into(),
                ));
            }
            let h264 = sdp::video_codecs()
                .into_iter()
                .find(|c| sdp::codec_of(&c.capability.mime_type) == Some(VideoCodec::H264))
                .map(|c| c.capability)
                .unwrap_or_default();
            let placeholder = Arc::new(TrackLocalStaticSample::new(
                h264,
                "video".to_owned(),
                "scope-deck".to_owned(),
            ));
            self.video_transceiver
                .sender()
                .await
                .replace_track(Some(placeholder as Arc<dyn TrackLocal + Send + Sync>))
                .await
                .map_err(rtc)?;
        }
        let desc = RTCSessionDescription::answer(sdp).map_err(rtc)?;
        self.pc.set_remote_description(desc).await.map_err(rtc)
    }

    /// Sends one text message on the data channel.
    /// A send that does not complete within a second means the association is dying.
    pub(crate) async fn send(&self, text: String) -> Result<(), RtcError> {
        match tokio::time::timeout(Duration::from_secs(1), self.dc.send_text(text)).await {
            Ok(r) => r.map(|_| ()).map_err(rtc),
            Err(_) => {
                tracing::warn!("data channel send blocked for 1 s");
                Err(RtcError("data channel send blocked for 1 s".into()))
            }
        }
    }

    /// Round-trip time to the server, when one was measured: the ICE candidate pair's (webrtc-rs
    /// 0.17 never fills it), else RFC 3550 §6.4.1 from the server's receiver reports on our
    /// outgoing video (LSR/DLSR; only sessions that send video have them). Receive-only sessions
    /// have neither (aiortc sends no XR), and the dashboard shows no number rather than a guess.
    pub(crate) async fn rtt_ms(&self) -> Option<f32> {
        use webrtc::stats::StatsReportType;
        let Ok(report) =
            tokio::time::timeout(Duration::from_millis(200), self.pc.get_stats()).await
        else {
            tracing::warn!("get_stats blocked for 200 ms");
            return None;
        };
        let ice = report.reports.values().find_map(|r| match r {
            StatsReportType::CandidatePair(p) if p.nominated && p.current_round_trip_time > 0.0 => {
                Some((p.current_round_trip_time * 1000.0) as f32)
            }
            _ => None,
        });
        ice.or_else(|| {
            report.reports.values().find_map(|r| match r {
                // The interceptor records it in milliseconds.
                StatsReportType::RemoteInboundRTP(s) if s.kind == "video" => {
                    s.round_trip_time.map(|ms| ms as f32)
                }
                _ => None,
            })
        })
    }

    /// Closes the data channel and peer connection (bounded: webrtc-rs can hang closing a
    /// connection whose peer vanished) and stops the helper tasks.
    pub(crate) async fn close(self) {
        for t in &self.tasks {
            t.abort();
        }
        let closing = async {
            let _ = self.dc.close().await;
            let _ = self.pc.close().await;
        };
        if tokio::time::timeout(Duration::from_secs(2), closing)
            .await
            .is_err()
        {
            tracing::warn!("closing the peer connection took over 2 s; abandoned");
        }
    }
}
