#!/usr/bin/env python3
"""A small Scope-compatible server for scope-deck's integration tests.

Real WebRTC (aiortc, the stack Scope itself runs) and the HTTP API of Scope 0.2.4 as described in
docs/scope-protocol.md, plus a control API under /_control for fault injection. Loopback only:
aioice is patched to gather 127.0.0.1 and every RTCPeerConnection gets an empty ICE server list.

See tests/peer/README.md for the frame-counter pixel encoding, the message log format and the
control API.
"""

import argparse
import asyncio
import fractions
import json
import os
import sys
import tempfile
import time
import uuid

import aioice.ice
import numpy as np
from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

import media_probe  # gates the decoders until a key frame and logs PLIs (tests/peer/README.md)

# Loopback only: aioice never offers 127.0.0.1 by itself.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

VERSION = "0.2.4-peer"
VIDEO_CLOCK = 90000
KNOWN_PIPELINES = {"longlive", "passthrough", "gray", "streamdiffusionv2", "krea-realtime-video"}


def config_schema(overrides=None):
    """Runtime parameters with ranges, JSON Schema as Pydantic writes it (anyOf/null, $defs).
    `overrides` replaces properties (/_control/schema: a newer pipeline with other ranges)."""
    schema = {
        "type": "object",
        "title": "PipelineConfig",
        "$defs": {
            "InterpolationMethod": {"enum": ["linear", "slerp"], "type": "string"},
        },
        "properties": {
            "noise_scale": {"type": "number", "minimum": 0.0, "maximum": 0.8, "default": 0.7},
            "noise_controller": {"type": "boolean", "default": True},
            "manage_cache": {"type": "boolean", "default": True},
            "reset_cache": {"type": "boolean", "default": False},
            "paused": {"type": "boolean", "default": False},
            "denoising_step_list": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 1000},
                "default": [1000, 750, 500, 250],
            },
            "vace_context_scale": {
                "anyOf": [{"type": "number", "minimum": 0.0, "maximum": 2.0}, {"type": "null"}],
                "default": None,
            },
            "prompt_interpolation_method": {"$ref": "#/$defs/InterpolationMethod"},
            "height": {"type": "integer", "minimum": 64, "maximum": 2048, "default": 512},
            "width": {"type": "integer", "minimum": 64, "maximum": 2048, "default": 512},
            "seed": {"type": "integer", "default": 42},
            "beat_cache_reset_rate": {"type": "integer", "exclusiveMinimum": -1, "maximum": 16},
            "prompts": {"type": "array", "items": {"type": "object"}},
            "quantize_mode": {"type": "string", "enum": ["none", "beat", "bar", "2_bar", "4_bar"]},
        },
    }
    schema["properties"].update(overrides or {})
    return schema


class Peer:
    """All server state. One asyncio loop owns it."""

    def __init__(self, args):
        self.args = args
        self.width, self.height = args.width, args.height
        self.fps = args.fps
        self.warmup_s = args.warmup
        self.start_time = time.time()
        self.pipeline_ids = []
        self.load_params = {}
        self.status = "not_loaded"
        self.load_started = None
        self.error_once = None
        self.sessions = {}  # id -> dict(pc, channel, frames_out, frames_in, pipeline_ok)
        self.deleted = []
        self.frames_sent = 0
        self.frames_received = 0
        self.stall = False
        self.schema_overrides = {}
        self.storm = None  # dict(status, remaining, prefix)
        self.slow_ms = 0
        self.malformed = None  # dict(prefix, remaining)
        self.models_missing = set(args.missing_models)
        self.download = None  # dict(pipeline_id, started, duration)
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.request_log = []
        # /api/v1/hardware/info: which server-side outputs exist (--hardware, /_control/hardware).
        avail = set(args.hardware)
        self.hardware = {
            "vram_gb": 0,
            "ndi_available": "ndi" in avail,
            "spout_available": "spout" in avail,
            "syphon_available": "syphon" in avail,
        }
        # Uploaded assets (/api/v1/assets) land here, under the name given.
        self.assets_dir = args.assets_dir or tempfile.mkdtemp(prefix="scope-peer-assets-")
        os.makedirs(self.assets_dir, exist_ok=True)
        self.uploads = []

    # ---- logging -------------------------------------------------------------------------
    def record(self, session, kind, data=None, raw=None):
        entry = {"ts": time.time(), "session": session, "kind": kind, "data": data}
        if raw is not None:
            entry["raw"] = raw
        if self.log:
            self.log.write(json.dumps(entry) + "\n")

    # ---- pipeline ------------------------------------------------------------------------
    def refresh_status(self):
        if self.status == "loading" and time.monotonic() - self.load_started >= self.warmup_s:
            self.status = "loaded"
            # --load-fail: like real Scope without a pipeline's GPU dependencies, the load ends
            # in `error` with an empty error field (the cause only in the server's log).
            if set(self.pipeline_ids) & set(self.args.load_fail):
                self.status = "load_failed"

    def loading_stage(self):
        if self.status != "loading":
            return None
        frac = (time.monotonic() - self.load_started) / max(self.warmup_s, 1e-6)
        if frac < 0.34:
            return "initializing"
        if frac < 0.67:
            return "loading_weights"
        return "warming_up"

    async def restart(self):
        """Like a process restart: new start time, pipeline unloaded, sessions gone silently."""
        self.start_time = time.time()
        self.status = "not_loaded"
        self.pipeline_ids = []
        sessions, self.sessions = self.sessions, {}
        for s in sessions.values():
            await s["pc"].close()


class CounterTrack(VideoStreamTrack):
    """Generated video: the top 32 rows carry the frame counter in 32 cells, MSB first."""

    kind = "video"

    def __init__(self, peer, session):
        super().__init__()
        self.peer = peer
        self.session = session
        self.counter = 0
        self.start = None
        self.marker = None

    def paint_marker(self, img):
        """--marker-param / --video-delay-ms: a pipeline that shows a parameter change a known
        time after it arrives. The lower part of the picture (under the frame counter, the moving
        bar drawn over it) is as bright as the value the parameter had `video_delay_ms` ago
        (0..1), as a prompt change repaints most of a generated picture; each frame that first
        shows a new value is logged as a `marker` entry with its send time."""
        p = self.peer
        seen = time.monotonic() - p.args.video_delay_ms / 1000.0
        value = None
        for t, v in self.session["marker_hist"]:
            if t <= seen:
                value = v
            else:
                break
        if value is None:
            return
        img[36:, :, :] = int(max(0.0, min(1.0, value)) * 255)
        x = (self.counter * 4) % img.shape[1]
        img[36:, x:x + 4, :] = 200
        if value != self.marker:
            self.marker = value
            p.record(self.session["id"], "marker", {"value": value, "frame": self.counter})

    async def recv(self):
        p = self.peer
        # No frames without pipeline_ids, while stalled, or until the pipeline is loaded.
        while (p.stall or not self.session.get("pipeline_ok") or p.status != "loaded"
               or waits_for_input(p, self.session)):
            await asyncio.sleep(0.02)
            if self.start is not None:
                self.start = None
        if self.start is None:
            self.start = time.monotonic() - self.counter / p.fps
        due = self.start + self.counter / p.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        img = render(self.counter, p.width, p.height)
        if p.args.marker_param:
            self.paint_marker(img)
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(self.counter * VIDEO_CLOCK / p.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.counter += 1
        p.frames_sent += 1
        self.session["frames_out"] += 1
        return frame


def waits_for_input(p, session):
    """With `--output-follows-input` (Scope in video mode: every output frame is made from an
    input frame) nothing is generated before the client's first input frame is decoded."""
    return p.args.output_follows_input and session.get("frames_in", 0) == 0


def render(counter, width, height):
    img = np.full((height, width, 3), 96, dtype=np.uint8)
    cell = width // 32
    for i in range(32):
        bit = (counter >> (31 - i)) & 1
        img[0:32, i * cell:(i + 1) * cell, :] = 255 if bit else 0
    # A moving bar below the counter band, so the picture visibly changes.
    x = (counter * 4) % width
    img[32:, x:x + 4, :] = 200
    return img


# ---- HTTP helpers ----------------------------------------------------------------------------
def jerr(status, detail):
    return web.json_response({"detail": detail}, status=status)


@web.middleware
async def faults(request, handler):
    peer = request.app["peer"]
    path = request.path
    if path.startswith("/_control"):
        return await handler(request)
    peer.request_log.append({"ts": time.time(), "method": request.method, "path": path})
    if peer.slow_ms:
        await asyncio.sleep(peer.slow_ms / 1000)
    def hit(f):
        return (f and f["remaining"] != 0 and path.startswith(f["prefix"])
                and f.get("method") in (None, request.method))

    st = peer.storm
    if hit(st):
        st["remaining"] -= 1
        return web.Response(status=st["status"], text="storm")
    mf = peer.malformed
    if hit(mf):
        mf["remaining"] -= 1
        return web.Response(status=200, text='{"status": "heal', content_type="application/json")
    return await handler(request)


async def health(request):
    p = request.app["peer"]
    return web.json_response({
        "status": "healthy",
        "timestamp": time.time(),
        "server_start_time": p.start_time,
        "version": VERSION,
        "git_commit": "peer",
    })


async def pipeline_load(request):
    p = request.app["peer"]
    try:
        body = await request.json()
    except Exception:
        return jerr(422, "body is not JSON")
    ids = body.get("pipeline_ids")
    if not isinstance(ids, list) or not ids:
        return jerr(422, [{"loc": ["body", "pipeline_ids"], "msg": "field required"}])
    p.pipeline_ids = ids
    p.load_params = body.get("load_params") or {}
    unknown = [i for i in ids if i not in KNOWN_PIPELINES]
    missing = [i for i in ids if i in p.models_missing]
    if unknown:
        p.status = "not_loaded"
        p.error_once = f"Unknown pipeline: {unknown[0]}"
    elif missing:
        p.status = "not_loaded"
        p.error_once = f"Models for {missing[0]} are not downloaded"
    else:
        p.status = "loading"
        p.load_started = time.monotonic()
    return web.json_response({"message": "Pipeline loading started"})


async def pipeline_status(request):
    p = request.app["peer"]
    p.refresh_status()
    status, error = p.status, None
    if status == "load_failed":
        status, error = "error", ""
    if p.error_once:
        status, error, p.error_once = "error", p.error_once, None
    return web.json_response({
        "status": status,
        "pipeline_id": p.pipeline_ids[0] if p.pipeline_ids else None,
        "load_params": p.load_params,
        "error": error,
        "loading_stage": p.loading_stage(),
        "produces_video": True,
        "produces_audio": False,
    })


async def schemas(request):
    out = {}
    for pid in sorted(KNOWN_PIPELINES):
        out[pid] = {
            "supports_prompts": True,
            "supported_modes": ["text", "video"],
            "default_mode": "text",
            "config_schema": config_schema(request.app["peer"].schema_overrides),
        }
    return web.json_response({"pipelines": out})


async def ice_servers(request):
    return web.json_response({"iceServers": []})


async def offer(request):
    p = request.app["peer"]
    p.refresh_status()
    try:
        body = await request.json()
    except Exception:
        return jerr(422, "body is not JSON")
    if p.status != "loaded":
        return jerr(400, "No pipeline loaded")
    if body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
        return jerr(422, [{"loc": ["body", "sdp"], "msg": "field required"}])
    initial = body.get("initialParameters") or {}
    sid = uuid.uuid4().hex
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sess = {
        "pc": pc,
        "channel": None,
        "frames_out": 0,
        "frames_in": 0,
        "pipeline_ok": bool(initial.get("pipeline_ids")),
        # (monotonic time, value) of --marker-param as received, for the delayed marker.
        "marker_hist": [],
        "started": time.monotonic(),
        "id": sid,
    }
    p.record(sid, "initial", initial)
    if isinstance(initial.get(p.args.marker_param), (int, float)):
        sess["marker_hist"].append((time.monotonic(), float(initial[p.args.marker_param])))

    @pc.on("datachannel")
    def on_dc(channel):
        sess["channel"] = channel
        p.record(sid, "channel_open", {"label": channel.label})

        @channel.on("message")
        def on_msg(msg):
            ts = time.time()
            try:
                data = json.loads(msg)
            except Exception:
                p.record(sid, "bad_message", None, raw=str(msg)[:200])
                return
            entry = {"ts": ts, "session": sid, "kind": "message", "data": data}
            if p.log:
                p.log.write(json.dumps(entry) + "\n")
            key = p.args.marker_param
            if key and isinstance(data, dict) and isinstance(data.get(key), (int, float)):
                sess["marker_hist"].append((time.monotonic(), float(data[key])))
            if isinstance(data, dict) and "pipeline_ids" in data:
                sess["pipeline_ok"] = bool(data["pipeline_ids"])

    @pc.on("track")
    def on_track(track):
        if track.kind != "video":
            return
        watch_input(p, sid, sess, pc, track)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
    if p.args.codec != "any":
        # Answer with one codec only (Scope speaks VP8 and H264; clients must accept both).
        want = "video/" + p.args.codec
        for t in pc.getTransceivers():
            if t.kind == "video":
                kept = [c for c in t._codecs if c.mimeType.lower() == want]
                if not kept:
                    return jerr(422, f"offer has no {p.args.codec} codec")
                t._codecs = kept
    pc.addTrack(CounterTrack(p, sess))
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)
    p.sessions[sid] = sess
    return web.json_response({
        "sdp": pc.localDescription.sdp,
        "type": pc.localDescription.type,
        "sessionId": sid,
    })


def watch_input(p, sid, sess, pc, track):
    """The client's video as Scope receives it: no decoding before a key frame (decode waits
    counted, PLI sent, as Scope's aiortc does after its "VP8 decode errors"), every PLI and key
    frame logged, and the first decoded frame logged as `first_frame_in` (its `ts` minus the
    `initial` entry's is the first-frame time after the offer)."""
    gate = media_probe.watch(pc, track, asyncio.get_event_loop(),
                             lambda kind, data: p.record(sid, kind, data))
    sess["gate"] = gate

    async def consume():
        while True:
            try:
                await track.recv()
            except Exception:
                return
            p.frames_received += 1
            sess["frames_in"] += 1
            if sess["frames_in"] == 1:
                p.record(sid, "first_frame_in", {
                    "after_offer_s": round(time.monotonic() - sess["started"], 4),
                    "decode_waits": gate.decode_waits, "plis": gate.plis})

    asyncio.ensure_future(consume())


async def c_pli(request):
    """Sends one RTCP PLI on every session's incoming video (as Scope's receiver does after a
    loss), or a FIR with `{"fir": true}`; replies `{"sent": n}`. The client must answer with a
    key frame."""
    p = request.app["peer"]
    try:
        fir = bool((await request.json()).get("fir"))
    except Exception:
        fir = False
    n = 0
    for s in p.sessions.values():
        if s.get("gate") is not None:
            n += await media_probe.send_pli(s["gate"], fir=fir)
    return web.json_response({"sent": n})


def media_stats(p):
    """Key-frame counters over every session (for `/_control/stats`)."""
    gates = [s["gate"] for s in p.sessions.values() if s.get("gate") is not None]
    return {
        "decode_waits": sum(g.decode_waits for g in gates),
        "keyframes_in": sum(g.keyframes for g in gates),
        "plis_sent": sum(g.plis for g in gates),
    }


async def offer_patch(request):
    p = request.app["peer"]
    sid = request.match_info["sid"]
    sess = p.sessions.get(sid)
    if sess is None:
        return jerr(404, "Session not found")
    body = await request.json()
    for c in body.get("candidates", []):
        text = c.get("candidate", "")
        if text.startswith("candidate:"):
            text = text[len("candidate:"):]
        if not text:
            continue
        cand = candidate_from_sdp(text)
        cand.sdpMid = c.get("sdpMid")
        cand.sdpMLineIndex = c.get("sdpMLineIndex")
        await sess["pc"].addIceCandidate(cand)
    return web.Response(status=204)


async def offer_delete(request):
    p = request.app["peer"]
    sid = request.match_info["sid"]
    sess = p.sessions.pop(sid, None)
    p.record(sid, "deleted", {"known": sess is not None})
    p.deleted.append(sid)
    if sess is None:
        return jerr(404, "Session not found")
    ch = sess["channel"]
    if ch is not None and ch.readyState == "open":
        ch.send(json.dumps({"type": "stream_stopped"}))
        await asyncio.sleep(0.05)
    await sess["pc"].close()
    return web.Response(status=204)


async def models_status(request):
    p = request.app["peer"]
    pid = request.query.get("pipeline_id", "")
    d = p.download
    if d and d["pipeline_id"] == pid:
        frac = (time.monotonic() - d["started"]) / d["duration"]
        if frac >= 1.0:
            p.models_missing.discard(pid)
            p.download = None
        else:
            return web.json_response({
                "downloaded": False,
                "progress": {"is_downloading": True, "percentage": round(frac * 100, 1),
                             "current_artifact": f"{pid}/model.safetensors"},
            })
    return web.json_response({"downloaded": pid not in p.models_missing, "progress": None})


async def models_download(request):
    p = request.app["peer"]
    body = await request.json()
    pid = body.get("pipeline_id")
    if p.download is not None:
        return jerr(409, "A download is already in progress")
    p.download = {"pipeline_id": pid, "started": time.monotonic(), "duration": p.args.download}
    return web.json_response({"message": f"Download started for {pid}"})


async def session_metrics(request):
    p = request.app["peer"]
    out = {}
    for sid, s in p.sessions.items():
        el = max(time.monotonic() - s["started"], 1e-3)
        out[sid] = {
            "frames_in": s["frames_in"],
            "frames_out": s["frames_out"],
            "fps_in": s["frames_in"] / el,
            "fps_out": s["frames_out"] / el,
            "pipeline_fps": float(p.fps),
        }
    return web.json_response({"sessions": out, "gpu": {"name": "none", "memory_used_gb": 0.0}})


async def hardware_info(request):
    return web.json_response(request.app["peer"].hardware)


async def assets_upload(request):
    """`POST /api/v1/assets?filename=NAME`, raw bytes (application/octet-stream), as Scope's
    docs/api/vace.md shows; answers with the stored file's server path."""
    p = request.app["peer"]
    name = os.path.basename(request.query.get("filename", ""))
    if not name:
        return jerr(422, [{"loc": ["query", "filename"], "msg": "field required"}])
    body = await request.read()
    if not body:
        return jerr(400, "empty upload")
    path = os.path.join(p.assets_dir, name)
    with open(path, "wb") as f:
        f.write(body)
    p.uploads.append({"name": name, "path": path, "size_bytes": len(body)})
    p.record(None, "asset", {"name": name, "path": path, "size_bytes": len(body)})
    return web.json_response({
        "name": os.path.splitext(name)[0], "path": path, "size_bytes": len(body),
        "type": "image", "created_at": time.time(),
    })


async def assets_list(request):
    p = request.app["peer"]
    return web.json_response({"assets": [
        {"name": os.path.splitext(u["name"])[0], "path": u["path"], "size_bytes": u["size_bytes"],
         "type": "image"} for u in p.uploads]})


# ---- control API -----------------------------------------------------------------------------
async def c_restart(request):
    await request.app["peer"].restart()
    return web.json_response({"server_start_time": request.app["peer"].start_time})


async def c_drop_channel(request):
    p = request.app["peer"]
    n = 0
    for s in p.sessions.values():
        if s["channel"] is not None:
            s["channel"].close()
            n += 1
    return web.json_response({"closed": n})


async def c_stall(request):
    body = await request.json()
    request.app["peer"].stall = bool(body.get("on", True))
    return web.json_response({"stall": request.app["peer"].stall})


async def c_faults(request):
    p = request.app["peer"]
    body = await request.json()
    if "storm" in body:
        s = body["storm"]
        p.storm = None if s is None else {
            "status": int(s.get("status", 503)),
            "remaining": int(s.get("count", -1)),
            "prefix": s.get("prefix", "/"),
            "method": s.get("method"),
        }
    if "slow_ms" in body:
        p.slow_ms = int(body["slow_ms"])
    if "malformed" in body:
        m = body["malformed"]
        p.malformed = None if m is None else {
            "prefix": m.get("prefix", "/"), "remaining": int(m.get("count", -1)),
            "method": m.get("method"),
        }
    if "warmup" in body:
        p.warmup_s = float(body["warmup"])
    if "missing_models" in body:
        p.models_missing = set(body["missing_models"])
    return web.json_response({"ok": True})


async def c_schema(request):
    """Replaces properties of every pipeline's config schema (body: {key: JSON Schema})."""
    p = request.app["peer"]
    p.schema_overrides.update(await request.json())
    return web.json_response(p.schema_overrides)


async def c_hardware(request):
    """Merges the body into the /api/v1/hardware/info answer (e.g. {"ndi_available": true})."""
    p = request.app["peer"]
    p.hardware.update(await request.json())
    return web.json_response(p.hardware)


async def c_uploads(request):
    return web.json_response(request.app["peer"].uploads)


async def c_send(request):
    """Sends a JSON message to every open data channel (server → client messages)."""
    p = request.app["peer"]
    body = await request.text()
    n = 0
    for s in p.sessions.values():
        ch = s["channel"]
        if ch is not None and ch.readyState == "open":
            ch.send(body)
            n += 1
    return web.json_response({"sent": n})


async def c_stats(request):
    p = request.app["peer"]
    return web.json_response({
        "frames_sent": p.frames_sent,
        "frames_received": p.frames_received,
        "sessions": list(p.sessions.keys()),
        "open_channels": sum(
            1 for s in p.sessions.values()
            if s["channel"] is not None and s["channel"].readyState == "open"),
        "deleted": p.deleted,
        "status": p.status,
        "server_start_time": p.start_time,
        "requests": len(p.request_log),
        **media_stats(p),
    })


async def c_requests(request):
    return web.json_response(request.app["peer"].request_log)


# ---- OSC (--osc): like Scope's always-on UDP listener on the HTTP port number ---------------
# Scope's runtime OSC keys (its osc_docs.py `_RUNTIME_PARAMS`); pipeline runtime keys are added
# from the config schema. Anything else Scope logs as "OSC UNKNOWN" and drops.
OSC_RUNTIME_KEYS = [
    "prompt", "input_mode", "transition_steps", "interpolation_method",
    "temporal_interpolation_method", "denoising_step_list", "noise_scale", "noise_controller",
    "kv_cache_attention_bias", "manage_cache", "reset_cache", "vace_context_scale", "paused",
]
OSC_LOAD_ONLY = {"height", "width", "seed"}


def osc_string(data, i):
    end = data.index(b"\0", i)
    return data[i:end].decode(), (end + 4) & ~3


def parse_osc(data):
    """One OSC message -> (address, [args]); int, float, string, true/false only."""
    import struct
    address, i = osc_string(data, 0)
    tags, i = osc_string(data, i)
    args = []
    for t in tags.lstrip(","):
        if t == "i":
            args.append(struct.unpack(">i", data[i:i + 4])[0])
            i += 4
        elif t == "f":
            args.append(struct.unpack(">f", data[i:i + 4])[0])
            i += 4
        elif t == "s":
            v, i = osc_string(data, i)
            args.append(v)
        elif t == "T":
            args.append(True)
        elif t == "F":
            args.append(False)
        else:
            raise ValueError(f"unsupported OSC type tag {t}")
    return address, args


class OscListener(asyncio.DatagramProtocol):
    """Logs every OSC message as kind `osc` ({address, args}) while answering is on."""

    def __init__(self, peer):
        self.peer = peer

    def datagram_received(self, data, addr):
        if not self.peer.osc_on:
            return
        try:
            address, args = parse_osc(data)
        except Exception as e:  # noqa: BLE001 - a test peer logs, never crashes
            self.peer.record(None, "osc_bad", {"error": str(e)})
            return
        self.peer.osc_count += 1
        self.peer.record(None, "osc", {"address": address, "args": args})


async def osc_status(request):
    p = request.app["peer"]
    on = p.osc_on
    return web.json_response({
        "enabled": on, "listening": on,
        "port": p.args.port if on else None, "host": p.args.host if on else None,
    })


async def osc_paths(request):
    p = request.app["peer"]
    runtime = [{"key": k, "osc_address": f"/scope/{k}"} for k in OSC_RUNTIME_KEYS]
    props = config_schema(p.schema_overrides)["properties"]
    loaded = [k for k in props if k not in OSC_LOAD_ONLY and k not in OSC_RUNTIME_KEYS]
    return web.json_response({
        "active": {"Runtime": runtime,
                   **({p.pipeline_ids[0]: [{"key": k, "osc_address": f"/scope/{k}"}
                                           for k in loaded]} if p.pipeline_ids else {})},
        "available": {},
        "active_pipeline_ids": p.pipeline_ids,
    })


async def c_osc(request):
    """`{"on": bool}`: start or stop answering OSC (the status endpoint follows)."""
    p = request.app["peer"]
    body = await request.json()
    p.osc_on = bool(body.get("on"))
    return web.json_response({"on": p.osc_on, "received": p.osc_count})


def add_osc(app, args):
    """Routes and (with --osc or /_control/osc) the UDP listener on the HTTP port number."""
    peer = app["peer"]
    peer.osc_on = bool(args.osc)
    peer.osc_count = 0
    app.router.add_get("/api/v1/osc/status", osc_status)
    app.router.add_get("/api/v1/osc/paths", osc_paths)
    app.router.add_post("/_control/osc", c_osc)

    async def start_udp(app):
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: OscListener(peer), local_addr=(args.host, args.port))
        app["osc_transport"] = transport

    async def stop_udp(app):
        t = app.get("osc_transport")
        if t:
            t.close()

    app.on_startup.append(start_udp)
    app.on_cleanup.append(stop_udp)


def make_app(args):
    app = web.Application(middlewares=[faults])
    app["peer"] = Peer(args)
    r = app.router
    r.add_get("/health", health)
    r.add_post("/api/v1/pipeline/load", pipeline_load)
    r.add_get("/api/v1/pipeline/status", pipeline_status)
    r.add_get("/api/v1/pipelines/schemas", schemas)
    r.add_get("/api/v1/webrtc/ice-servers", ice_servers)
    r.add_post("/api/v1/webrtc/offer", offer)
    r.add_patch("/api/v1/webrtc/offer/{sid}", offer_patch)
    r.add_delete("/api/v1/webrtc/offer/{sid}", offer_delete)
    r.add_get("/api/v1/models/status", models_status)
    r.add_post("/api/v1/models/download", models_download)
    r.add_get("/api/v1/session/metrics", session_metrics)
    r.add_get("/api/v1/hardware/info", hardware_info)
    r.add_post("/api/v1/assets", assets_upload)
    r.add_get("/api/v1/assets", assets_list)
    r.add_post("/_control/restart", c_restart)
    r.add_post("/_control/drop_channel", c_drop_channel)
    r.add_post("/_control/stall", c_stall)
    r.add_post("/_control/faults", c_faults)
    r.add_post("/_control/send", c_send)
    r.add_post("/_control/hardware", c_hardware)
    r.add_post("/_control/schema", c_schema)
    r.add_get("/_control/uploads", c_uploads)
    r.add_get("/_control/stats", c_stats)
    r.add_get("/_control/requests", c_requests)
    r.add_post("/_control/pli", c_pli)

    async def on_shutdown(app):
        for s in list(app["peer"].sessions.values()):
            await s["pc"].close()

    app.on_shutdown.append(on_shutdown)
    add_osc(app, args)
    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--size", default="512x512", help="generated video WxH")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=0.5, help="pipeline load delay, seconds")
    ap.add_argument("--download", type=float, default=1.0, help="model download time, seconds")
    ap.add_argument("--missing-models", nargs="*", default=[], help="pipelines without models")
    ap.add_argument("--log", default="", help="JSON-lines data-channel message log")
    ap.add_argument("--codec", default="any", choices=["any", "vp8", "h264"],
                    help="answer with this video codec only (default: the offer's order)")
    ap.add_argument("--hardware", nargs="*", default=[], choices=["ndi", "spout", "syphon"],
                    help="server-side outputs /api/v1/hardware/info reports as available")
    ap.add_argument("--assets-dir", default="", help="where uploaded assets are stored")
    ap.add_argument("--output-follows-input", action="store_true",
                    help="generate no video before the client's first input frame is decoded")
    ap.add_argument("--osc", action="store_true",
                    help="answer OSC (UDP, the HTTP port number) from the start; see /_control/osc")
    ap.add_argument("--video-delay-ms", type=float, default=0.0,
                    help="the marker shows a parameter change this long after it arrives")
    ap.add_argument("--marker-param", default="",
                    help="parameter whose value (0..1) is painted as a block in every frame")
    ap.add_argument("--load-fail", nargs="*", default=[],
                    help="pipelines whose load ends in status error with an empty error field")
    args = ap.parse_args()
    w, h = args.size.lower().split("x")
    args.width, args.height = int(w), int(h)
    if args.width < 32 or args.width % 2 or args.height < 33 or args.height % 2:
        sys.exit("--size: width >= 32, height >= 34, both even")
    web.run_app(make_app(args), host=args.host, port=args.port, print=None,
                handle_signals=True)


if __name__ == "__main__":
    main()
