"""How a real server's receiver treats key frames, for the aiortc test peers.

Scope runs aiortc; the Daydream gateway runs pion and ffmpeg. Neither can decode until a key frame
arrives: Scope 0.2.4's log shows dozens of "VP8 decode errors" per session when the client's first
key frame is gone (issue 15), and the gateway cuts its segments at IDRs and sends PLI
(docs/daydream-api.md, from livepeer/go-livepeer `media/whip_server.go`). Plain aiortc hides part
of this (ffmpeg's H.264 decoder silently skips frames without SPS/PPS), so the peers gate their
decoders explicitly:

- every encoded video frame before the first key frame is dropped and counted as a decode wait
  (logged as `decode_wait`), and, as aiortc does after a failed decode (`rtcrtpreceiver.py`:
  `decode_error` → `_send_rtcp_pli`), it makes the receiver send RTCP PLI with its next packet;
- every key frame received is logged (`keyframe_in`, with the frame's RTP timestamp);
- every PLI the receiver sends is logged (`pli_sent`): the ones aiortc sends on its own (decode
  errors, jitter-buffer loss) and the ones asked for with `send_pli`; aiortc never sends FIR
  (RFC 5104 Full Intra Request), `send_pli(gate, fir=True)` does (logged as `fir_sent`);
- the first decoded frame is logged (`first_frame_in`) by the peers' track consumers.

Nothing here changes aiortc's files: `decoder_worker` is wrapped once at import, and only
receivers registered with `watch` are gated (keyed by their track's frame queue, which aiortc
hands to the decoder thread).
"""

import struct
import time

import aiortc.rtcrtpreceiver as _rx
from aiortc.rtp import RTCP_PSFB_FIR, RtcpPsfbPacket

_GATES = {}  # id(track._queue) -> (the queue, kept alive so its id is never reused; Gate)
_original_worker = _rx.decoder_worker


def is_keyframe(codec_name, data):
    """True when `data` (one depayloaded frame) starts a decodable picture: a VP8 key frame (bit 0
    of the first byte clear, RFC 6386 9.1) or an H.264 access unit with an IDR slice (NAL type 5;
    aiortc's depayloader writes Annex B start codes)."""
    if not data:
        return False
    name = codec_name.lower()
    if name == "vp8":
        return (data[0] & 0x01) == 0
    if name == "h264":
        i = 0
        n = len(data)
        while i + 3 < n:
            if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
                if (data[i + 3] & 0x1F) == 5:
                    return True
                i += 3
            else:
                i += 1
        return False
    return True


class Gate:
    """One receiver's key-frame state. `record(kind, data)` runs on the event loop."""

    def __init__(self, loop, record):
        self.loop = loop
        self.record = record
        self.waiting = True
        self.decode_waits = 0
        self.keyframes = 0
        self.plis = 0

    def note(self, kind, data):
        data = dict(data)
        data["t"] = time.time()
        self.loop.call_soon_threadsafe(self.record, kind, data)


class _GatedQueue:
    """The decoder thread's input queue, dropping frames until the first key frame."""

    def __init__(self, inner, gate, decode_error):
        self.inner = inner
        self.gate = gate
        self.decode_error = decode_error

    def get(self):
        while True:
            task = self.inner.get()
            if task is None:
                return None
            codec, frame = task
            key = is_keyframe(codec.name, frame.data)
            g = self.gate
            if key:
                g.keyframes += 1
                g.waiting = False
                g.note("keyframe_in", {"codec": codec.name, "rtp_ts": frame.timestamp,
                                       "bytes": len(frame.data), "n": g.keyframes})
                return task
            if g.waiting:
                g.decode_waits += 1
                g.note("decode_wait", {"codec": codec.name, "n": g.decode_waits})
                # What aiortc does after a failed decode: PLI with the next packet.
                self.decode_error.set()
                continue
            return task


def _gated_worker(loop, input_q, output_q, decode_error):
    gate = _GATES.get(id(output_q), (None, None))[1]
    if gate is not None:
        input_q = _GatedQueue(input_q, gate, decode_error)
    return _original_worker(loop, input_q, output_q, decode_error)


_rx.decoder_worker = _gated_worker


def watch(pc, track, loop, record):
    """Gates `track`'s decoder and logs its PLIs; call from the `track` event (before aiortc
    starts the receiver). Returns the Gate (its counters are live)."""
    gate = Gate(loop, record)
    _GATES[id(track._queue)] = (track._queue, gate)
    for t in pc.getTransceivers():
        r = t.receiver
        if r is not None and r.track is track:
            original = r._send_rtcp_pli

            async def logged(media_ssrc, original=original):
                gate.plis += 1
                gate.note("pli_sent", {"media_ssrc": media_ssrc, "n": gate.plis})
                await original(media_ssrc)

            r._send_rtcp_pli = logged
            gate.receiver = r
    return gate


async def send_pli(gate, fir=False):
    """Sends one RTCP PLI (or, with `fir`, one FIR) for every source the gated receiver heard
    from in the last 10 s (logged like the others). Returns how many were sent."""
    r = getattr(gate, "receiver", None)
    if r is None:
        return 0
    n = 0
    for s in r.getSynchronizationSources():
        if fir:
            sender_ssrc = r._RTCRtpReceiver__rtcp_ssrc
            if sender_ssrc is None:
                continue
            gate.fir_seq = (getattr(gate, "fir_seq", 0) + 1) % 256
            # RFC 5104 4.3.1: media SSRC 0, FCI = target SSRC, sequence number, 3 reserved.
            packet = RtcpPsfbPacket(fmt=RTCP_PSFB_FIR, ssrc=sender_ssrc, media_ssrc=0,
                                    fci=struct.pack("!LB3x", s.source, gate.fir_seq))
            gate.note("fir_sent", {"media_ssrc": s.source, "seq": gate.fir_seq})
            await r._send_rtcp(packet)
        else:
            await r._send_rtcp_pli(s.source)
        n += 1
    return n
