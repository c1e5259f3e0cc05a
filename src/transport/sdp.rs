//! Codec preference and SDP inspection.
//!
//! Scope speaks VP8 and H264 only and its own web UI forces VP8, so the offer lists exactly
//! those two, VP8 first. The answer's first payload type on the video m-line is what the server
//! will send; the video edge needs to know which depayloader to use.
//!
//! The hosted (Daydream) gateway is different: H.264 only, constrained baseline
//! `profile-level-id=42001f` with packetization-mode 1 ([`hosted_video_codecs`]).

use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_VP8};
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTCRtpCodecParameters};

use crate::transport::types::VideoCodec;

fn feedback() -> Vec<RTCPFeedback> {
    ["goog-remb", "ccm", "nack", "nack"]
        .iter()
        .zip(["", "fir", "", "pli"])
        .map(|(t, p)| RTCPFeedback {
            typ: (*t).to_string(),
            parameter: p.to_string(),
        })
        .collect()
}

/// The video codecs to register, in preference order (VP8 first, H264 accepted).
pub fn video_codecs() -> Vec<RTCRtpCodecParameters> {
    vec![
        RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: feedback(),
            },
            payload_type: 96,
            ..Default::default()
        },
        RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: MIME_TYPE_H264.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line:
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                        .to_owned(),
                rtcp_feedback: feedback(),
            },
            payload_type: 102,
            ..Default::default()
        },
    ]
}

/// The H.264 format the hosted gateway registers (livepeer/go-livepeer `media/whip_server.go`,
/// docs/daydream-api.md): constrained baseline 3.1; a 42e01f-only offer may not match it.
pub(crate) const HOSTED_H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f";

/// The video codecs of the hosted backend's WHIP/WHEP offers: H.264 42001f only.
pub(crate) fn hosted_video_codecs() -> Vec<RTCRtpCodecParameters> {
    vec![RTCRtpCodecParameters {
        capability: RTCRtpCodecCapability {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: HOSTED_H264_FMTP.to_owned(),
            rtcp_feedback: feedback(),
        },
        payload_type: 102,
        ..Default::default()
    }]
}

/// Maps a MIME type or rtpmap encoding name to our codec.
pub(crate) fn codec_of(name: &str) -> Option<VideoCodec> {
    let n = name.rsplit('/').next().unwrap_or(name);
    let n = n.split('/').next().unwrap_or(n);
    if n.eq_ignore_ascii_case("vp8") {
        Some(VideoCodec::Vp8)
    } else if n.eq_ignore_ascii_case("h264") {
        Some(VideoCodec::H264)
    } else {
        None
    }
}

/// The codec and payload type the answer chose for the first video m-line (its first listed
/// payload type that is VP8 or H264). Parsed with webrtc-rs's own SDP types (the same parser
/// the peer connection used on this answer), so a malformed answer reads as `None`.
pub(crate) fn negotiated_video(sdp: &str) -> Option<(VideoCodec, u8)> {
    let desc =
        webrtc::sdp::SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp.as_bytes()))
            .ok()?;
    let video = desc
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "video")?;
    let rtpmap = |pt: u8| {
        video.attributes.iter().find_map(|a| {
            let v = a.value.as_deref().filter(|_| a.key == "rtpmap")?;
            let (p, enc) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then(|| codec_of(enc.split('/').next()?))?
        })
    };
    video
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .find_map(|pt| rtpmap(pt).map(|c| (c, pt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_is_offered_first_and_h264_accepted() {
        let c = video_codecs();
        assert_eq!(c.len(), 2);
        assert_eq!(codec_of(&c[0].capability.mime_type), Some(VideoCodec::Vp8));
        assert_eq!(codec_of(&c[1].capability.mime_type), Some(VideoCodec::H264));
        assert!(
            c[1].capability
                .sdp_fmtp_line
                .contains("packetization-mode=1")
        );
    }

    #[test]
    fn the_hosted_offer_is_h264_42001f_packetization_mode_1_only() {
        let c = hosted_video_codecs();
        assert_eq!(c.len(), 1);
        assert_eq!(codec_of(&c[0].capability.mime_type), Some(VideoCodec::H264));
        let fmtp = &c[0].capability.sdp_fmtp_line;
        assert!(fmtp.contains("profile-level-id=42001f"), "{fmtp}");
        assert!(fmtp.contains("packetization-mode=1"), "{fmtp}");
        // PLI and FIR are offered, so the gateway may ask us for key frames.
        let fb = &c[0].capability.rtcp_feedback;
        assert!(fb.iter().any(|f| f.typ == "nack" && f.parameter == "pli"));
        assert!(fb.iter().any(|f| f.typ == "ccm" && f.parameter == "fir"));
    }

    /// A session head webrtc-rs accepts (`v=`, `o=`, `s=`, `t=`) before the media sections.
    fn answer(media: &str) -> String {
        format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{media}")
    }

    #[test]
    fn reads_the_chosen_codec_from_an_answer() {
        let sdp = answer(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 102 96 97\r\na=rtpmap:96 VP8/90000\r\n\
             a=rtpmap:97 rtx/90000\r\na=rtpmap:102 H264/90000\r\n\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        );
        assert_eq!(negotiated_video(&sdp), Some((VideoCodec::H264, 102)));
        let vp8 = answer(
            "m=video 9 UDP/TLS/RTP/SAVPF 97 96\r\na=rtpmap:97 rtx/90000\r\n\
             a=rtpmap:96 VP8/90000\r\n",
        );
        assert_eq!(negotiated_video(&vp8), Some((VideoCodec::Vp8, 96)));
        // An audio section with the same payload type does not lend its codec to video.
        let shared = answer(
            "m=audio 9 RTP 96\r\na=rtpmap:96 VP8/90000\r\n\
             m=video 9 RTP 96\r\na=rtpmap:96 AV1/90000\r\n",
        );
        assert_eq!(negotiated_video(&shared), None);
        assert_eq!(
            negotiated_video(&answer("m=application 9 UDP/DTLS/SCTP x\r\n")),
            None
        );
        assert_eq!(
            negotiated_video(&answer("m=video 9 RTP 100\r\na=rtpmap:100 AV1/90000\r\n")),
            None
        );
        // Not SDP at all.
        assert_eq!(
            negotiated_video("m=video 9 RTP 96\na=rtpmap:96 VP8/90000\n"),
            None
        );
    }
}
