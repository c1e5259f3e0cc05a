//! WHIP ingest and WHEP playback (webrtc-rs 0.17), built with the transport's one peer builder
//! ([`webrtc_session`]: H.264-only codecs, the shared sample writer and RTCP/PLI tasks); the
//! WHIP/WHEP specifics live here. One peer connection each, non-trickle ICE
//! (gather fully, at most 20 s, then one offer), 45 s to connect. WHIP sends the video input's
//! encoded frames; WHEP receives the generated video and hands every RTP packet to the same
//! bounded channel the Scope transport feeds, so the same GStreamer output pipeline plays it.
//! The API key is never sent here: WHIP/WHEP URLs are pre-signed.
//!
//! Video is H.264 both ways: the gateway's WHIP accepts only H.264 (profile-level-id 42001f,
//! packetization-mode 1) and closes anything else ("non-h264 video"), and its WHEP output is
//! H.264 (docs/daydream-api.md, from livepeer/go-livepeer `media/whip_server.go`). The server's
//! PLI/FIR on our WHIP track force a key frame in the encoder, as does connecting.
//! Those URLs carry the stream
//! key in their path, so errors and logs show only their scheme and host
//! ([`api::redact_url`](crate::transport::daydream::api::redact_url)). A 307/308 answer is followed
//! (at most [`MAX_REDIRECTS`]) only to a target that passes the same HTTPS + allowlist check; a
//! `Location` is DELETEd on close only if it passes that check too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};
use webrtc::api::media_engine::MIME_TYPE_H264;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;

use crate::transport::daydream::allowlist;
use crate::transport::daydream::api::{HttpFail, redact_url, retry_after, without_url};
use crate::transport::daydream::policy::{Decision, Warmup};
use crate::transport::types::{EncodedSample, VideoCodec};
use crate::transport::webrtc_session::{self, Codecs, PeerOptions};

/// Non-trickle ICE gathering limit (the seeds' 20 s).
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(20);
/// Connection limit after the answer (the seeds' 45 s).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// The playback URL header of the WHIP answer.
pub(crate) const PLAYBACK_HEADER: &str = "livepeer-playback-url";
/// Redirects followed per offer POST (the media host may move a session; the API host never).
pub(crate) const MAX_REDIRECTS: u32 = 3;

/// Which hosts WHIP/WHEP may talk to (redirect targets and `Location`s are checked against it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostPolicy {
    /// Base domains (subdomains included).
    pub allowed: Vec<String>,
    /// Plain HTTP on loopback hosts (local development, tests).
    pub allow_local_dev: bool,
}

impl HostPolicy {
    /// The URL if it may be contacted, else why not (naming the host, never the path).
    pub(crate) fn check(&self, raw: &str) -> Result<url::Url, String> {
        allowlist::check_media_url(raw, &self.allowed, self.allow_local_dev)
    }
}

/// How the peer connections are built.
#[derive(Debug, Clone, PartialEq)]
pub struct RtcOptions {
    /// STUN/TURN URLs (empty: host candidates only).
    pub ice_servers: Vec<String>,
    /// Loopback-only candidates (local development / tests).
    pub loopback: bool,
    /// ICE gathering limit.
    pub gather_timeout: Duration,
    /// Connection limit.
    pub connect_timeout: Duration,
    /// Where redirects may lead and `Location` DELETEs may go.
    pub hosts: HostPolicy,
}

/// Why WHIP/WHEP failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MediaError {
    /// The HTTP offer/answer failed.
    #[error("{0}")]
    Http(HttpFail),
    /// The WebRTC stack failed.
    #[error("{what}: WebRTC: {why}")]
    Rtc {
        /// WHIP or WHEP.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// No connection within the limit.
    #[error("{0}: connection timed out after {1:?}")]
    Timeout(&'static str, Duration),
}

/// Per-packet counters of the received video (shared with the Scope transport).
pub(crate) use webrtc_session::VideoCounters as RxCounters;

/// A connected WHIP or WHEP session.
pub struct MediaLink {
    /// The peer connection.
    pub(crate) pc: Arc<RTCPeerConnection>,
    /// The WHIP/WHEP resource (`Location`) for the goodbye DELETE.
    pub(crate) resource: Option<url::Url>,
    /// WHIP: the playback URL header, if any.
    pub(crate) playback_url: Option<String>,
    /// Peer state changes after connecting.
    pub(crate) states: mpsc::Receiver<RTCPeerConnectionState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn rtc_err(what: &'static str) -> impl Fn(webrtc::Error) -> MediaError {
    move |e| MediaError::Rtc {
        what,
        why: e.to_string(),
    }
}

async fn peer(
    what: &'static str,
    opts: &RtcOptions,
) -> Result<
    (
        Arc<RTCPeerConnection>,
        mpsc::Receiver<RTCPeerConnectionState>,
    ),
    MediaError,
> {
    // H.264 only: the gateway's media engine registers nothing else for video.
    let ice = if opts.ice_servers.is_empty() {
        Vec::new()
    } else {
        vec![crate::transport::protocol::IceServer {
            urls: opts.ice_servers.clone(),
            username: None,
            credential: None,
        }]
    };
    let pc = webrtc_session::peer_connection(&PeerOptions {
        codecs: Codecs::HostedH264,
        ice,
        loopback: opts.loopback,
    })
    .await
    .map_err(|e| MediaError::Rtc { what, why: e.0 })?;
    let (tx, rx) = mpsc::channel(16);
    pc.on_peer_connection_state_change(Box::new(move |s| {
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.try_send(s);
        })
    }));
    Ok((pc, rx))
}

/// Creates the offer and waits for ICE gathering (non-trickle).
async fn offer(
    what: &'static str,
    pc: &RTCPeerConnection,
    opts: &RtcOptions,
) -> Result<String, MediaError> {
    webrtc_session::offer_sdp(pc, Some(opts.gather_timeout))
        .await
        .map_err(|e| MediaError::Rtc { what, why: e.0 })
}

/// The answer of one offer POST.
struct Answer {
    sdp: String,
    location: Option<url::Url>,
    playback: Option<String>,
}

/// What one offer POST came to: an answer, a redirect to follow, or a failure.
enum Posted {
    Answer(Answer),
    Redirect(url::Url),
}

async fn post_offer(
    http: &reqwest::Client,
    what: &'static str,
    url: &url::Url,
    sdp: &str,
    hosts: &HostPolicy,
) -> Result<Posted, HttpFail> {
    let endpoint = format!("POST {what} {}", redact_url(url.as_str()));
    // No Authorization header: the URL is pre-signed.
    let resp = http
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .header(reqwest::header::ACCEPT, "application/sdp")
        .body(sdp.to_string())
        .send()
        .await
        .map_err(|e| HttpFail {
            retry_after: None,
            endpoint: endpoint.clone(),
            status: None,
            detail: without_url(&e),
        })?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let location = header("location").and_then(|l| url.join(&l).ok());
    let retry_after_hdr = retry_after(Some(resp.headers()));
    if matches!(status, 307 | 308) {
        let Some(target) = location else {
            return Err(HttpFail {
                retry_after: None,
                endpoint,
                status: Some(status),
                detail: "redirect without a Location".into(),
            });
        };
        return match hosts.check(target.as_str()) {
            Ok(t) => Ok(Posted::Redirect(t)),
            Err(why) => Err(HttpFail {
                retry_after: None,
                endpoint,
                status: Some(status),
                detail: format!("redirect refused: {why}"),
            }),
        };
    }
    // The WHIP/WHEP resource is DELETEd on close only where a media URL may go (the gateway's
    // Location can be plain http behind TLS termination).
    let location = location.and_then(|l| match hosts.check(l.as_str()) {
        Ok(l) => Some(l),
        Err(why) => {
            tracing::debug!("{what}: the answer's Location will not be contacted: {why}");
            None
        }
    });
    let playback = header(PLAYBACK_HEADER);
    let text = resp.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        let detail: String = text.replace(url.path(), "/***").chars().take(160).collect();
        return Err(HttpFail {
            retry_after: retry_after_hdr,
            endpoint,
            status: Some(status),
            detail,
        });
    }
    Ok(Posted::Answer(Answer {
        sdp: text,
        location,
        playback,
    }))
}

/// POSTs the offer, following checked redirects (the last target is kept for retries, like the
/// browser SDK's redirect cache) and retrying not-ready answers while `retry` allows.
async fn negotiate(
    http: &reqwest::Client,
    what: &'static str,
    url: &url::Url,
    sdp: &str,
    retry: &Warmup,
    clock: Instant,
    hosts: &HostPolicy,
) -> Result<Answer, MediaError> {
    let mut attempt = 0;
    let mut url = url.clone();
    let mut redirects = 0;
    loop {
        match post_offer(http, what, &url, sdp, hosts).await {
            Ok(Posted::Answer(a)) => return Ok(a),
            Ok(Posted::Redirect(to)) => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(MediaError::Http(HttpFail {
                        retry_after: None,
                        endpoint: format!("POST {what} {}", redact_url(url.as_str())),
                        status: None,
                        detail: format!("more than {MAX_REDIRECTS} redirects"),
                    }));
                }
                tracing::debug!("{what} redirected to {}", redact_url(to.as_str()));
                url = to;
            }
            Err(f) => match retry.after_failure(f.outcome(), attempt, clock.elapsed()) {
                Decision::RetryAfter(d) => {
                    let d = f.pace(d);
                    tracing::debug!("{what} not ready ({f}); retry in {d:?}");
                    attempt += 1;
                    tokio::time::sleep(d).await;
                }
                Decision::GiveUp => return Err(MediaError::Http(f)),
            },
        }
    }
}

async fn connect(
    what: &'static str,
    pc: &RTCPeerConnection,
    states: &mut mpsc::Receiver<RTCPeerConnectionState>,
    answer: String,
    opts: &RtcOptions,
) -> Result<(), MediaError> {
    let desc = RTCSessionDescription::answer(answer).map_err(rtc_err(what))?;
    pc.set_remote_description(desc)
        .await
        .map_err(rtc_err(what))?;
    let wait = async {
        while let Some(s) = states.recv().await {
            match s {
                RTCPeerConnectionState::Connected => return Ok(()),
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    return Err(MediaError::Rtc {
                        what,
                        why: format!("peer connection {s}"),
                    });
                }
                _ => {}
            }
        }
        Err(MediaError::Rtc {
            what,
            why: "peer connection gone".into(),
        })
    };
    match tokio::time::timeout(opts.connect_timeout, wait).await {
        Ok(r) => r,
        Err(_) => Err(MediaError::Timeout(what, opts.connect_timeout)),
    }
}

/// WHIP: sends the video input (`samples`, H.264) to `url`; the server's PLI/FIR and the
/// connection itself ask `keyframes` for a key frame. Returns once connected.
pub async fn whip(
    http: &reqwest::Client,
    url: &url::Url,
    opts: &RtcOptions,
    samples: Option<Arc<Mutex<mpsc::Receiver<EncodedSample>>>>,
    keyframes: Option<webrtc_session::KeyframeRequests>,
    warmup: &Warmup,
    clock: Instant,
) -> Result<MediaLink, MediaError> {
    const W: &str = "WHIP";
    let (pc, mut states) = peer(W, opts).await?;
    let track =
        webrtc_session::sample_track(MIME_TYPE_H264, crate::transport::sdp::HOSTED_H264_FMTP);
    let transceiver = pc
        .add_transceiver_from_track(
            Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                send_encodings: vec![],
            }),
        )
        .await
        .map_err(rtc_err(W))?;
    let rtcp = webrtc_session::spawn_rtcp_reader(transceiver.sender().await, keyframes.clone());
    let result = async {
        let sdp = offer(W, &pc, opts).await?;
        let answer = negotiate(http, W, url, &sdp, warmup, clock, &opts.hosts).await?;
        connect(W, &pc, &mut states, answer.sdp.clone(), opts).await?;
        Ok::<_, MediaError>(answer)
    }
    .await;
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            rtcp.abort();
            let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
            return Err(e);
        }
    };
    // Connected: the gateway's decoder (and its segmenter, which cuts at IDRs) needs a key
    // frame now, not at the next periodic one.
    if let Some(k) = &keyframes {
        k.request();
    }
    let mut tasks = vec![rtcp];
    if let Some(samples) = samples {
        tasks.push(webrtc_session::spawn_sample_writer(track, samples));
    }
    Ok(MediaLink {
        pc,
        resource: answer.location,
        playback_url: answer.playback,
        states,
        tasks,
    })
}

/// WHEP: receives the generated video from `url` into `rtp_out`. Returns once connected.
/// `warmup` paces the offer retries: WHEP answers 404 until the first output exists, which on a
/// cold worker takes minutes, so the caller passes the playback wait, not the create window.
pub(crate) async fn whep(
    http: &reqwest::Client,
    url: &url::Url,
    opts: &RtcOptions,
    video: crate::transport::VideoPorts,
    counters: Arc<RxCounters>,
    warmup: &Warmup,
    clock: Instant,
) -> Result<MediaLink, MediaError> {
    const W: &str = "WHEP";
    let (pc, mut states) = peer(W, opts).await?;
    pc.add_transceiver_from_kind(
        RTPCodecType::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            send_encodings: vec![],
        }),
    )
    .await
    .map_err(rtc_err(W))?;
    let weak_pc = Arc::downgrade(&pc);
    let (rtp_out, keyframes) = (video.rtp_out, video.keyframe_requests);
    pc.on_track(Box::new(move |track, _r, _t| {
        if let Some(kf) = keyframes.clone() {
            webrtc_session::spawn_pli(weak_pc.clone(), track.ssrc(), kf);
        }
        let codec = crate::transport::sdp::codec_of(&track.codec().capability.mime_type)
            .unwrap_or(VideoCodec::H264);
        webrtc_session::forward_track(track, codec, Arc::clone(&counters), rtp_out.clone());
        Box::pin(async {})
    }));
    let result = async {
        let sdp = offer(W, &pc, opts).await?;
        let answer = negotiate(http, W, url, &sdp, warmup, clock, &opts.hosts).await?;
        connect(W, &pc, &mut states, answer.sdp.clone(), opts).await?;
        Ok::<_, MediaError>(answer)
    }
    .await;
    match result {
        Ok(answer) => Ok(MediaLink {
            pc,
            resource: answer.location,
            playback_url: None,
            states,
            tasks: Vec::new(),
        }),
        Err(e) => {
            let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
            Err(e)
        }
    }
}

impl MediaLink {
    /// Closes the connection and DELETEs the resource (bounded; no key).
    pub async fn close(self, http: &reqwest::Client) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.pc.close()).await;
        if let Some(r) = self.resource {
            let _ = tokio::time::timeout(Duration::from_secs(2), http.delete(r).send()).await;
        }
    }
}
