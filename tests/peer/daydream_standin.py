#!/usr/bin/env python3
"""A LOCAL STAND-IN for Daydream's hosted StreamDiffusion API, for scope-deck's tests.

This is a FAKE, NOT the real service (which cannot be reached from the test machines). It is
built only from the documented contract in docs/daydream-api.md (shared/docs/daydream-api.md),
which was itself written from public sources; each behaviour below names the source it follows:

- POST /v1/streams -> 201 {id, stream_key, whip_url, output_playback_id, output_stream_url,
  created_at, pipeline, params, gateway_host} (OpenAPI description behind the official SDK).
  `params` is range-checked as the OpenAPI schema does (ControlNet conditioning_scale 0..1,
  t_index_list 1-4 entries non-decreasing within 0..num_inference_steps, num_inference_steps
  1..100, width/height 384-1024 multiples of 64, SDXL at most 3 enabled ControlNets, unique
  ControlNet ids); a failure is 400 with the API's error body {success:false, error, code,
  status, details} (OpenAPI / Daydream docs).
- GET /v1/streams/{id}/status -> 404 until WHIP ingest exists (go-livepeer
  server/ai_mediaserver.go: the status is keyed by the live stream the WHIP POST starts), then
  {success, error, data:{stream_id, pipeline_id, state, inference_status, gateway_status:{
  whep_url, error, ingest_metrics:{stats:{conn_quality, peer_conn_stats, track_stats:[...]}}}}}
  (gateway status shape; the per-track figures are in track_stats).
- PATCH /v1/streams/{id} -> 404 until WHIP ingest exists; body must carry pipeline and the
  stream's model_id (the discriminator) and pass the same range checks (OpenAPI).
- DELETE /v1/streams?id={id} (OpenAPI form) and DELETE /v1/streams/{id} (Unity plugin form).
- GET /v1/streams -> {data:[...]} the key's streams (older SDK's list operation), so a client
  can find streams a failed create left behind.
- WHIP: POST to whip_url = /live/video-to-video/<stream_key>/whip -- the stream key is in the
  path, there is no token and an Authorization header is ignored (go-livepeer
  media/whip_server.go; the browser SDK sends none). Content-Type must be application/sdp
  exactly (415 otherwise). 201 with the full answer, Location (the same path, plain http, as
  behind TLS termination), ETag, Link and Livepeer-Playback-URL. No PATCH/DELETE route on the
  resource (405). Optional: a 307 to another path first (--whip-redirect; the browser SDK's
  redirect cache and the OBS/Unity clients exist for this).
- WHEP: POST to /live/video-to-video/<stream_key>-<req>-out/whep -> 404 until the first output
  exists (--output-delay seconds after WHIP ingest; cold workers take over a minute), 429 above
  5 viewers per stream, no Location, 501 on PATCH (go-livepeer media/whep_server.go).

The aiortc media (what WHIP accepts and what WHEP sends: a frame counter in the top 32 rows, 32
cells, MSB first, white = 1) is unchanged by the REST strictness above.

Failure modes for tests: not-ready answers (404/409/429/5xx, cycling) from status and PATCH
during a configurable warm-up after ingest starts, failing creates (503 or 409, or 504 after creating the stream), failing PATCHes
after warm-up, a whip_url on a foreign host, a delayed first output. Every request (method,
path, query, headers, body) is appended to a JSON-lines log so tests can check what was sent
where. The control endpoints under /_ are not part of the API and are not logged.

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
        # id -> dict(created, key, model_id, params, deleted, ingest, viewers)
        self.streams = {}
        self.creates = 0
        self.codes = [int(c) for c in args.warmup_codes.split(",") if c]
        self.code_i = 0
        self.pcs = {}
        self.whip_frames_in = 0
        self.whep_frames_out = 0
        # Media events (offer, refusals, key frames, PLIs, first frame) for `/_state`.
        self.media = []
        self.redirected = set()
        self.output_delay = args.output_delay
        self.started_ms = int(time.time() * 1000)
        self.log = open(args.log, "a", buffering=1)

    def not_ready_code(self):
        c = self.codes[self.code_i % len(self.codes)]
        self.code_i += 1
        return c

    def by_key(self, key):
        for sid, s in self.streams.items():
            if s["key"] == key and not s["deleted"]:
                return sid, s
        return None, None

    def warming(self, s):
        return time.monotonic() - s["ingest"] < self.args.warmup

    def patch_warming(self, s):
        w = self.args.patch_warmup if self.args.patch_warmup >= 0 else self.args.warmup
        return time.monotonic() - s["ingest"] < w

    def output_ready(self, s):
        return s["ingest"] is not None and time.monotonic() - s["ingest"] >= self.output_delay


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
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        resp = e
    st.log.write(json.dumps({
        "ts": time.time(),
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "headers": {k: v for k, v in request.headers.items()},
        "body": body,
        "status": resp.status,
    }) + "\n")
    if isinstance(resp, web.HTTPException):
        raise resp
    return resp


def api_error(status, error, code, details=None):
    """The API's error body (OpenAPI): {success:false, error, code, status, details?}."""
    body = {"success": False, "error": error, "code": code, "status": status}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=status)


def unauthorized():
    return api_error(401, "Unauthorized", "AUTH/UNAUTHORIZED")


def not_found(what="Stream not found"):
    return api_error(404, what, "STREAMS/NOT_FOUND")


def authorized(request):
    return request.headers.get("Authorization") == "Bearer " + request.app["st"].args.key


def base(request):
    return f"http://127.0.0.1:{request.app['st'].args.port}"


def validate_params(params, partial=False):
    """The OpenAPI schema's ranges (docs/daydream-api.md, "Limits"). Returns problems as
    [{path, message}] like the API's `details`."""
    bad = []

    def num(k):
        v = params.get(k)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    steps = num("num_inference_steps")
    if steps is not None and not 1 <= steps <= 100:
        bad.append({"path": "params.num_inference_steps", "message": "must be >= 1 and <= 100"})
    for k in ("width", "height"):
        v = num(k)
        if k in params and (v is None or not 384 <= v <= 1024 or v % 64):
            bad.append({"path": f"params.{k}", "message": "must be 384..1024, a multiple of 64"})
    if "t_index_list" in params:
        t = params["t_index_list"]
        limit = steps if steps is not None else 100
        if (not isinstance(t, list) or not 1 <= len(t) <= 4
                or any(not isinstance(x, int) or x < 0 or x > limit for x in t)
                or any(b < a for a, b in zip(t, t[1:]))):
            bad.append({"path": "params.t_index_list",
                        "message": "must have 1 to 4 non-decreasing entries within "
                                   "0..num_inference_steps"})
    d = num("delta")
    if "delta" in params and (d is None or not 0 <= d <= 1):
        bad.append({"path": "params.delta", "message": "must be >= 0 and <= 1"})
    cns = params.get("controlnets")
    if cns is not None:
        if not isinstance(cns, list):
            bad.append({"path": "params.controlnets", "message": "must be an array"})
            cns = []
        ids = []
        for i, c in enumerate(cns):
            sc = c.get("conditioning_scale") if isinstance(c, dict) else None
            if not isinstance(sc, (int, float)) or not 0 <= sc <= 1:
                bad.append({"path": f"params.controlnets[{i}].conditioning_scale",
                            "message": "must be >= 0 and <= 1"})
            if isinstance(c, dict):
                ids.append(c.get("model_id"))
        if len(set(ids)) != len(ids):
            bad.append({"path": "params.controlnets", "message": "model_id must be unique"})
        model = str(params.get("model_id", ""))
        enabled = sum(1 for c in cns if isinstance(c, dict) and c.get("enabled", True))
        if "sdxl" in model and enabled > 3:
            bad.append({"path": "params.controlnets",
                        "message": "SDXL supports at most 3 enabled ControlNets"})
    return bad


def invalid(bad):
    return api_error(400, "Invalid request body", "VALIDATION_ERROR", bad)


async def create(request):
    st = request.app["st"]
    if not authorized(request):
        return unauthorized()
    st.creates += 1
    if st.creates <= st.args.create_fail:
        return api_error(503, "Service Unavailable", "INTERNAL/UNAVAILABLE")
    if st.creates <= st.args.create_conflict:
        return api_error(409, "Stream limit reached", "STREAMS/CONFLICT")
    body = await request.json()
    params = body.get("params") or {}
    if body.get("pipeline") != "streamdiffusion" or not params.get("model_id"):
        return invalid([{"path": "params.model_id", "message": "pipeline and params.model_id required"}])
    bad = validate_params(params)
    if bad:
        return invalid(bad)
    sid = "str_" + uuid.uuid4().hex[:12]
    key = "stk_" + uuid.uuid4().hex[:20]
    st.streams[sid] = {"created": time.monotonic(), "created_at": time.time(), "key": key,
                       "model_id": params["model_id"], "params": params, "deleted": False,
                       "ingest": None, "viewers": 0, "whep_posts": 0}
    host = st.args.whip_host or f"127.0.0.1:{st.args.port}"
    scheme = "https" if st.args.whip_host else "http"
    if st.creates <= st.args.create_fail + st.args.create_conflict + st.args.create_lost:
        # Created, but the answer is lost (a proxy timeout): the client cannot know the id.
        return api_error(504, "Gateway Timeout", "INTERNAL/TIMEOUT")
    return web.json_response(stream_object(st, sid, scheme, host), status=201)


def stream_object(st, sid, scheme="http", host=None):
    s = st.streams[sid]
    host = host or f"127.0.0.1:{st.args.port}"
    return {
        "id": sid,
        "stream_key": s["key"],
        "whip_url": f"{scheme}://{host}/live/video-to-video/{s['key']}/whip",
        "output_playback_id": "pb_" + sid,
        "output_stream_url": f"https://livepeercdn.example/hls/pb_{sid}/index.m3u8",
        "created_at": s["created_at"],
        "pipeline": "streamdiffusion",
        "params": s["params"],
        "gateway_host": host,
    }


async def list_streams(request):
    st = request.app["st"]
    if not authorized(request):
        return unauthorized()
    return web.json_response({"success": True, "data": [
        stream_object(st, sid) for sid, s in st.streams.items() if not s["deleted"]]})


def live_stream(st, sid):
    s = st.streams.get(sid)
    if s is None or s["deleted"]:
        return None
    return s


async def status(request):
    st = request.app["st"]
    if not authorized(request):
        return unauthorized()
    sid = request.match_info["id"]
    s = live_stream(st, sid)
    if s is None or s["ingest"] is None:
        return not_found()
    if st.warming(s):
        code = st.not_ready_code()
        return api_error(code, "stream not ready", "STREAMS/NOT_READY")
    ready = st.output_ready(s)
    gw_error = None
    if st.args.gateway_error:
        # One error, at one time: it is repeated by every status answer until another happens.
        gw_error = {"error_message": st.args.gateway_error, "error_time": st.started_ms}
    return web.json_response({"success": True, "error": None, "data": {
        "stream_id": sid,
        "pipeline_id": "pip_streamdiffusion",
        "state": "ONLINE" if ready else "LOADING",
        "inference_status": {"input_fps": 29.8, "output_fps": 24.5 if ready else 0.0,
                             "restart_count": 1, "last_error": "",
                             "last_output_time": int(time.time() * 1000) if ready else 0},
        "gateway_status": {
            "whep_url": f"{base(request)}/live/video-to-video/{s['key']}-req1-out/whep",
            "error": gw_error,
            "ingest_metrics": {"stats": {
                "conn_quality": "good",
                "peer_conn_stats": {"ID": "pc1", "BytesReceived": 123456, "BytesSent": 789},
                "track_stats": [
                    {"type": "audio", "jitter": 0.001, "packets_lost": 0,
                     "packet_loss_pct": 0.0, "rtt": 9.0},
                    {"type": "video", "jitter": 0.003, "packets_lost": 2,
                     "packet_loss_pct": 0.5, "rtt": 12.5, "packets_received": 398},
                ]}}},
    }})


async def patch(request):
    st = request.app["st"]
    if not authorized(request):
        return unauthorized()
    s = live_stream(st, request.match_info["id"])
    if s is None or s["ingest"] is None:
        return not_found()
    if st.patch_warming(s):
        return api_error(st.not_ready_code(), "stream not ready", "STREAMS/NOT_READY")
    if st.args.patch_fail:
        return api_error(st.args.patch_fail, "injected failure", "INTERNAL/INJECTED")
    body = await request.json()
    params = body.get("params") or {}
    if body.get("pipeline") != "streamdiffusion" or params.get("model_id") != s["model_id"]:
        return invalid([{"path": "params.model_id", "message": "must match the stream"}])
    merged = dict(s["params"])
    merged.update(params)
    bad = validate_params(merged)
    if bad:
        return invalid(bad)
    s["params"] = merged
    return web.json_response(stream_object(st, request.match_info["id"]))


async def delete(request):
    st = request.app["st"]
    if not authorized(request):
        return unauthorized()
    sid = request.match_info.get("id") or request.query.get("id", "")
    if st.args.no_query_delete and "id" not in request.match_info:
        return api_error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED")
    s = live_stream(st, sid)
    if s is None:
        return not_found()
    s["deleted"] = True
    return web.json_response({"success": True})


def new_pc():
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def whip(request):
    st = request.app["st"]
    key = request.match_info["key"]
    sid, s = st.by_key(key)
    if s is None:
        return web.Response(status=404, text="stream not found")
    # The gateway ignores an Authorization header on WHIP (the tests check it is never sent).
    if st.args.whip_redirect and not request.path.startswith("/redirected/") \
            and key not in st.redirected:
        st.redirected.add(key)
        target = (f"https://{st.args.whip_redirect_host}" if st.args.whip_redirect_host
                  else f"{base(request)}/redirected")
        raise web.HTTPTemporaryRedirect(f"{target}/live/video-to-video/{key}/whip")
    if request.headers.get("Content-Type") != "application/sdp":
        return web.Response(status=415, text="Content-Type must be application/sdp")
    offer = await request.text()
    pc = new_pc()
    st.pcs["whip-" + sid] = pc
    ingest = watch_ingest(st, sid, pc, offer)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    if ingest["refusal"] is None:
        keep_only_gateway_h264(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    if s["ingest"] is None:
        s["ingest"] = time.monotonic()
    # Behind TLS termination the gateway builds Location from the request: plain http, the
    # same path (go-livepeer media/whip_server.go).
    headers = {"Location": f"http://127.0.0.1:{st.args.port}{request.path}",
               "Content-Type": "application/sdp", "ETag": '"' + uuid.uuid4().hex[:8] + '"',
               "Link": '<stun:stun.l.google.com:19302>; rel="ice-server"'}
    answer = pc.localDescription.sdp
    if st.args.unreachable_media:
        answer = unreachable(answer)
    if not st.args.no_playback_header:
        headers["Livepeer-Playback-URL"] = f"{base(request)}/live/video-to-video/{key}-req1-out/whep"
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
async def whip_resource(request):
    """No PATCH or DELETE route on the WHIP resource (no trickle; the session ends with ICE)."""
    return web.Response(status=405, text="method not allowed")


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
    sid, s = st.by_key(request.match_info["key"])
    if s is None or not st.output_ready(s):
        # No output yet (or no such stream): the gateway answers 404 until the first output.
        return web.Response(status=404, text="stream not found")
    if s["viewers"] >= 5:
        return web.Response(status=429, text="too many viewers")
    offer = await request.text()
    pc = new_pc()
    s["viewers"] += 1
    s["whep_posts"] += 1
    st.pcs[f"whep-{sid}-{s['whep_posts']}"] = pc

    @pc.on("connectionstatechange")
    async def gone():
        if pc.connectionState in ("closed", "failed"):
            s["viewers"] = max(0, s["viewers"] - 1)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    pc.addTrack(CounterTrack(st))
    # The gateway's output is H.264 (docs/daydream-api.md); an offer without it gets no video.
    keep_only_gateway_h264(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    # No Location: the WHEP resource cannot be addressed afterwards.
    return web.Response(status=201, text=pc.localDescription.sdp,
                        headers={"Content-Type": "application/sdp"})


async def whep_patch(request):
    return web.Response(status=501, text="not implemented")


async def control(request):
    """Test control (not part of the API): change the output delay at run time."""
    st = request.app["st"]
    body = await request.json()
    if "output_delay" in body:
        st.output_delay = float(body["output_delay"])
    return web.json_response({"output_delay": st.output_delay})


async def health(request):
    return web.json_response({"ok": True})


async def state(request):
    st = request.app["st"]
    return web.json_response({
        "whip_frames_in": st.whip_frames_in,
        "whep_frames_out": st.whep_frames_out,
        "media": st.media,
        "streams": {k: {"deleted": v["deleted"], "params": v["params"], "key": v["key"],
                        "viewers": v["viewers"], "ingest": v["ingest"] is not None}
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
    ap.add_argument("--create-conflict", type=int, default=0,
                    help="after --create-fail, the next N creates answer 409 (quota)")
    ap.add_argument("--create-lost", type=int, default=0,
                    help="then N creates create the stream but answer 504 (the answer is lost)")
    ap.add_argument("--output-delay", type=float, default=0.0,
                    help="WHEP answers 404 until this many seconds after WHIP ingest")
    ap.add_argument("--whip-redirect", action="store_true",
                    help="the first WHIP POST per stream answers 307 to another path")
    ap.add_argument("--whip-redirect-host", default="",
                    help="with --whip-redirect: redirect to https://HOST/... instead")
    ap.add_argument("--gateway-error", default="", help="gateway_status.error message")
    ap.add_argument("--no-query-delete", action="store_true",
                    help="DELETE /v1/streams?id= answers 405 (only the path form works)")
    ap.add_argument("--whip-host", default="", help="put whip_url on this https host instead")
    ap.add_argument("--no-playback-header", action="store_true")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--size", default="128x64")
    args = ap.parse_args()
    app = web.Application(middlewares=[record])
    app["st"] = State(args)
    app.router.add_get("/_health", health)
    app.router.add_get("/_state", state)
    app.router.add_post("/_control", control)
    app.router.add_post("/v1/streams", create)
    app.router.add_get("/v1/streams", list_streams)
    app.router.add_delete("/v1/streams", delete)
    app.router.add_delete("/v1/streams/{id}", delete)
    app.router.add_get("/v1/streams/{id}/status", status)
    app.router.add_patch("/v1/streams/{id}", patch)
    for prefix in ("", "/redirected"):
        app.router.add_post(prefix + "/live/video-to-video/{key}/whip", whip)
        app.router.add_route("*", prefix + "/live/video-to-video/{key}/whip", whip_resource)
    app.router.add_post("/live/video-to-video/{key}-req1-out/whep", whep)
    app.router.add_patch("/live/video-to-video/{key}-req1-out/whep", whep_patch)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
