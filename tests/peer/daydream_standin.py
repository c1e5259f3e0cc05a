#!/usr/bin/env python3
"""A LOCAL STAND-IN for Daydream's hosted StreamDiffusion API, for scope-deck's tests.

This is NOT the real service (which cannot be reached from the test machines). It is built only
from the contract summarised in docs/daydream-api.md (shared/docs/daydream-api.md) and the seeds'
description of the production web client:

- POST /v1/streams -> 201 {id, whip_url, output_playback_id}
- GET /v1/streams/{id}/status -> {success, error, data: {inference_status, gateway_status}}
- PATCH /v1/streams/{id} -> 200 (must carry pipeline and the creating model_id)
- DELETE /v1/streams?id={id}
- WHIP (POST SDP offer to whip_url, answered by aiortc, receiving the ingest video) with a
  `livepeer-playback-url` header giving a WHEP URL; WHEP (POST SDP offer, aiortc sends generated
  video whose top 32 rows carry a frame counter in 32 cells, MSB first, white = 1).

Failure modes for tests: not-ready answers (404/409/429/5xx, cycling) from status and PATCH
during a configurable warm-up after creation, failing creates, failing PATCHes after warm-up, a
whip_url on a foreign host. Every request (method, path, query, headers, body) is appended to a
JSON-lines log so tests can check what was sent where (e.g. that the key never reached WHIP).

Loopback only: aioice is patched to gather 127.0.0.1 (as tests/peer/scope_peer.py does) and every
RTCPeerConnection gets an empty ICE server list.
"""

import argparse
import asyncio
import fractions
import json
import time
import uuid

import aioice.ice
import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

import media_probe  # gates decoders until a key frame, logs PLIs and key frames

# Loopback only: aioice never offers 127.0.0.1 by itself.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

VIDEO_CLOCK = 90000


def render(counter, width, height):
    """Top 32 rows: the frame counter in 32 cells, MSB first, white = 1 (tests/peer/README.md)."""
    img = np.full((height, width, 3), 96, dtype=np.uint8)
    cell = width // 32
    for i in range(32):
        bit = (counter >> (31 - i)) & 1
        img[0:32, i * cell:(i + 1) * cell, :] = 255 if bit else 0
    x = (counter * 4) % width
    img[32:, x:x + 4, :] = 200
    return img


class CounterTrack(VideoStreamTrack):
    kind = "video"

    def __init__(self, st):
        super().__init__()
        self.st = st
        self.counter = 0
        self.start = None

    async def recv(self):
        st = self.st
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.counter / st.args.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = VideoFrame.from_ndarray(render(self.counter, st.width, st.height), format="rgb24")
        frame.pts = int(self.counter * VIDEO_CLOCK / st.args.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.counter += 1
        st.whep_frames_out += 1
        return frame


class State:
    def __init__(self, args):
        self.args = args
        self.width, self.height = (int(x) for x in args.size.split("x"))
        self.streams = {}  # id -> dict(created, model_id, params, deleted)
        self.creates = 0
        self.codes = [int(c) for c in args.warmup_codes.split(",") if c]
        self.code_i = 0
        self.pcs = {}
        self.whip_frames_in = 0
        self.whep_frames_out = 0
        # Media events (offer, refusals, key frames, PLIs, first frame) for `/_state`.
        self.media = []
        self.log = open(args.log, "a", buffering=1)

    def not_ready_code(self):
        c = self.codes[self.code_i % len(self.codes)]
        self.code_i += 1
        return c

    def warming(self, s):
        return time.monotonic() - s["created"] < self.args.warmup

    def patch_warming(self, s):
        w = self.args.patch_warmup if self.args.patch_warmup >= 0 else self.args.warmup
        return time.monotonic() - s["created"] < w


@web.middleware
async def record(request, handler):
    st = request.app["st"]
    if request.path.startswith("/_"):
        return await handler(request)
    raw = await request.read()
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = text
    resp = await handler(request)
    st.log.write(json.dumps({
        "ts": time.time(),
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "headers": {k: v for k, v in request.headers.items()},
        "body": body,
        "status": resp.status,
    }) + "\n")
    return resp


def authorized(request):
    return request.headers.get("Authorization") == "Bearer " + request.app["st"].args.key


def base(request):
    return f"http://127.0.0.1:{request.app['st'].args.port}"


async def create(request):
    st = request.app["st"]
    if not authorized(request):
        return web.json_response({"error": "unauthorized"}, status=401)
    st.creates += 1
    if st.creates <= st.args.create_fail:
        return web.json_response({"error": "gateway busy"}, status=503)
    body = await request.json()
    params = body.get("params") or {}
    if body.get("pipeline") != "streamdiffusion" or not params.get("model_id"):
        return web.json_response({"error": "pipeline and params.model_id required"}, status=400)
    sid = "str_" + uuid.uuid4().hex[:12]
    st.streams[sid] = {"created": time.monotonic(), "model_id": params["model_id"],
                       "params": params, "deleted": False}
    host = st.args.whip_host or f"127.0.0.1:{st.args.port}"
    scheme = "https" if st.args.whip_host else "http"
    return web.json_response({
        "id": sid,
        "whip_url": f"{scheme}://{host}/whip/{sid}?token=presigned",
        "output_playback_id": "pb_" + sid,
        "created_at": time.time(),
    }, status=201)


async def status(request):
    st = request.app["st"]
    if not authorized(request):
        return web.json_response({"error": "unauthorized"}, status=401)
    s = st.streams.get(request.match_info["id"])
    if s is None or s["deleted"]:
        return web.json_response({"success": False, "error": "not found"}, status=404)
    if st.warming(s):
        code = st.not_ready_code()
        return web.json_response({"success": False, "error": "stream not ready"}, status=code)
    return web.json_response({"success": True, "error": None, "data": {
        "inference_status": {"input_fps": 29.8, "output_fps": 24.5, "restart_count": 1,
                             "last_error": "", "status": "ready"},
        "gateway_status": {"whep_url": f"{base(request)}/whep/{request.match_info['id']}",
                           "ingest_metrics": {"stats": {"jitter": 0.003, "packets_lost": 2,
                                                        "rtt": 12.5}}},
    }})


async def patch(request):
    st = request.app["st"]
    if not authorized(request):
        return web.json_response({"error": "unauthorized"}, status=401)
    s = st.streams.get(request.match_info["id"])
    if s is None or s["deleted"]:
        return web.json_response({"error": "not found"}, status=404)
    if st.patch_warming(s):
        return web.json_response({"error": "not ready"}, status=st.not_ready_code())
    if st.args.patch_fail:
        return web.json_response({"error": "injected failure"}, status=st.args.patch_fail)
    body = await request.json()
    params = body.get("params") or {}
    if body.get("pipeline") != "streamdiffusion" or params.get("model_id") != s["model_id"]:
        return web.json_response({"error": "model_id must match the stream"}, status=400)
    s["params"].update(params)
    return web.json_response({"success": True})


async def delete(request):
    st = request.app["st"]
    if not authorized(request):
        return web.json_response({"error": "unauthorized"}, status=401)
    s = st.streams.get(request.query.get("id", ""))
    if s is None:
        return web.json_response({"error": "not found"}, status=404)
    s["deleted"] = True
    return web.json_response({"success": True})


def new_pc():
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def whip(request):
    st = request.app["st"]
    sid = request.match_info["id"]
    # The real WHIP URL is pre-signed; an Authorization header conflicts (401/403).
    if "Authorization" in request.headers:
        return web.Response(status=401, text="auth conflict: whip_url is pre-signed")
    if request.query.get("token") != "presigned":
        return web.Response(status=403, text="bad token")
    offer = await request.text()
    pc = new_pc()
    st.pcs["whip-" + sid] = pc
    ingest = watch_ingest(st, sid, pc, offer)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    if ingest["refusal"] is None:
        keep_only_gateway_h264(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    headers = {"Location": f"/whip/{sid}/session", "Content-Type": "application/sdp"}
    answer = pc.localDescription.sdp
    if st.args.unreachable_media:
        answer = unreachable(answer)
    if not st.args.no_playback_header:
        headers["livepeer-playback-url"] = f"{base(request)}/whep/{sid}"
    return web.Response(status=201, text=answer, headers=headers)


# ---- media: what the gateway's WHIP accepts ---------------------------------------------------
# From livepeer/go-livepeer `media/whip_server.go` as summarised in docs/daydream-api.md: the WHIP
# media engine registers only H.264 (profile-level-id 42001f, packetization-mode 1 and 0) and
# Opus; a session without acceptable video is closed ("non-h264 video"), and one where no video
# arrives within 5 s is closed ("missing video"). Profile matching follows pion's H.264 fmtp
# rule (profile_idc and profile_iop must be equal; the level may differ), so a 42e01f-only
# offer does not match. The gateway sends PLI and cuts segments at IDRs: the ingest decoder is
# gated until a key frame (tests/peer/media_probe.py).
MISSING_VIDEO_AFTER_S = 5.0


def h264_refusal(offer_sdp):
    """Why the gateway would close this WHIP offer's session, or None when its video m-line has
    an H.264 format the gateway registers."""
    video = None
    for section in offer_sdp.replace("\r\n", "\n").split("\nm=")[1:]:
        if section.startswith("video "):
            video = section
            break
    if video is None:
        return "missing video"
    h264 = set()
    fmtp = {}
    for line in video.split("\n"):
        if line.startswith("a=rtpmap:"):
            pt, _, enc = line[len("a=rtpmap:"):].partition(" ")
            if enc.lower().startswith("h264/"):
                h264.add(pt)
        elif line.startswith("a=fmtp:"):
            pt, _, params = line[len("a=fmtp:"):].partition(" ")
            fmtp[pt] = dict(kv.split("=", 1) for kv in params.strip().split(";") if "=" in kv)
    for pt in h264:
        f = fmtp.get(pt, {})
        if (f.get("profile-level-id", "").lower().startswith("4200")
                and f.get("packetization-mode", "0") in ("0", "1")):
            return None
    return "non-h264 video"


def keep_only_gateway_h264(pc):
    """Answers H.264 42001f only on every video transceiver (and RTX for it)."""
    for t in pc.getTransceivers():
        if t.kind != "video":
            continue
        kept = [c for c in t._codecs if c.mimeType.lower() == "video/h264"
                and str(c.parameters.get("profile-level-id", "")).lower().startswith("4200")]
        pts = {c.payloadType for c in kept}
        kept += [c for c in t._codecs if c.mimeType.lower() == "video/rtx"
                 and c.parameters.get("apt") in pts]
        if kept:
            t._codecs = kept


def watch_ingest(st, sid, pc, offer_sdp):
    """The WHIP session as the gateway runs it: refuses non-H.264 offers (closed once connected,
    or after 5 s), closes a session without video after 5 s, gates the decoder until a key
    frame, logs PLIs, key frames and the first decoded frame to `st.media`."""
    started = time.monotonic()
    ingest = {"refusal": h264_refusal(offer_sdp), "gate": None, "closed": None}

    def record(kind, data):
        st.media.append({"ts": time.time(), "stream": sid, "kind": kind, "data": data})

    record("whip_offer", {"refusal": ingest["refusal"]})

    async def close(reason):
        if ingest["closed"] is None:
            ingest["closed"] = reason
            record("whip_closed", {"reason": reason})
            await pc.close()

    @pc.on("track")
    def on_track(track):
        if track.kind != "video":
            return
        gate = media_probe.watch(pc, track, asyncio.get_event_loop(), record)
        ingest["gate"] = gate

        async def consume():
            n = 0
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                n += 1
                st.whip_frames_in += 1
                if n == 1:
                    record("first_frame_in", {
                        "after_offer_s": round(time.monotonic() - started, 4),
                        "decode_waits": gate.decode_waits, "plis": gate.plis})
        asyncio.ensure_future(consume())

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState == "connected" and ingest["refusal"]:
            await close(ingest["refusal"])

    async def missing_video():
        await asyncio.sleep(MISSING_VIDEO_AFTER_S)
        g = ingest["gate"]
        if ingest["refusal"]:
            await close(ingest["refusal"])
        elif g is None or (g.keyframes + g.decode_waits) == 0:
            await close("missing video")

    asyncio.ensure_future(missing_video())
    return ingest


def unreachable(sdp):
    """The answer with every ICE candidate moved to the discard port: the HTTP exchange succeeds
    but media never connects (tests the client's connection timeout)."""
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            f = line.split(" ")
            if len(f) > 5:
                f[5] = "9"
            line = " ".join(f)
        out.append(line)
    return "\r\n".join(out)


async def whep(request):
    st = request.app["st"]
    sid = request.match_info["id"]
    if "Authorization" in request.headers:
        return web.Response(status=401, text="auth conflict")
    offer = await request.text()
    pc = new_pc()
    st.pcs["whep-" + sid] = pc
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    pc.addTrack(CounterTrack(st))
    # The gateway's output is H.264 (docs/daydream-api.md); an offer without it gets no video.
    keep_only_gateway_h264(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    return web.Response(status=201, text=pc.localDescription.sdp,
                        headers={"Location": f"/whep/{sid}/session",
                                 "Content-Type": "application/sdp"})


async def media_delete(request):
    st = request.app["st"]
    pc = st.pcs.pop(f"{request.match_info['kind']}-{request.match_info['id']}", None)
    if pc:
        await pc.close()
    return web.Response(status=200)


async def health(request):
    return web.json_response({"ok": True})


async def state(request):
    st = request.app["st"]
    return web.json_response({
        "whip_frames_in": st.whip_frames_in,
        "whep_frames_out": st.whep_frames_out,
        "media": st.media,
        "streams": {k: {"deleted": v["deleted"], "params": v["params"]}
                    for k, v in st.streams.items()},
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--unreachable-media", action="store_true",
                    help="WHIP answers carry candidates on the discard port (never connects)")
    ap.add_argument("--log", required=True)
    ap.add_argument("--key", required=True, help="the API key the stand-in accepts")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of not-ready answers")
    ap.add_argument("--warmup-codes", default="404,409,503,429")
    ap.add_argument("--patch-warmup", type=float, default=-1.0,
                    help="seconds of not-ready PATCH answers (default: --warmup)")
    ap.add_argument("--create-fail", type=int, default=0, help="first N creates answer 503")
    ap.add_argument("--patch-fail", type=int, default=0, help="after warm-up PATCH answers this")
    ap.add_argument("--whip-host", default="", help="put whip_url on this https host instead")
    ap.add_argument("--no-playback-header", action="store_true")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--size", default="128x64")
    args = ap.parse_args()
    app = web.Application(middlewares=[record])
    app["st"] = State(args)
    app.router.add_get("/_health", health)
    app.router.add_get("/_state", state)
    app.router.add_post("/v1/streams", create)
    app.router.add_delete("/v1/streams", delete)
    app.router.add_get("/v1/streams/{id}/status", status)
    app.router.add_patch("/v1/streams/{id}", patch)
    app.router.add_post("/whip/{id}", whip)
    app.router.add_post("/whep/{id}", whep)
    app.router.add_delete("/{kind}/{id}/session", media_delete)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
