#!/usr/bin/env python3
"""The reference client for the first-frame benchmark (benches/first_frame.rs): a plain aiortc
client, the stack Scope's own Python client uses, against scope_peer.py. It loads the pipeline,
offers VP8 first with a 30 fps generated video track and the `parameters` data channel, and prints
one JSON line: the wall-clock time (`time.time()`) its first returned frame was decoded and the
session id, so the benchmark can compare it with the peer's `initial` (offer arrived) entry.
Loopback only (aioice patched to 127.0.0.1, no ICE servers).
"""

import argparse
import asyncio
import json
import time

import aiohttp
import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from av import VideoFrame

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


class Pattern(VideoStreamTrack):
    """A changing grey picture at aiortc's default 30 fps."""

    def __init__(self, width, height):
        super().__init__()
        self.width, self.height, self.n = width, height, 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        img = np.full((self.height, self.width, 3), (self.n * 3) % 256, dtype=np.uint8)
        self.n += 1
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def run(url, width, height, pipeline):
    async with aiohttp.ClientSession() as http:
        await http.post(f"{url}/api/v1/pipeline/load", json={"pipeline_ids": [pipeline]})
        while True:
            async with http.get(f"{url}/api/v1/pipeline/status") as r:
                if (await r.json())["status"] == "loaded":
                    break
            await asyncio.sleep(0.05)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("parameters")
        pc.addTransceiver(Pattern(width, height), direction="sendrecv")
        first = asyncio.get_event_loop().create_future()

        @pc.on("track")
        def on_track(track):
            async def take():
                await track.recv()
                if not first.done():
                    first.set_result(time.time())
            asyncio.ensure_future(take())

        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer",
                "initialParameters": {"pipeline_ids": [pipeline]}}
        async with http.post(f"{url}/api/v1/webrtc/offer", json=body) as r:
            answer = await r.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        at = await asyncio.wait_for(first, 30)
        print(json.dumps({"first_frame_at": at, "session": answer["sessionId"]}), flush=True)
        await http.delete(f"{url}/api/v1/webrtc/offer/{answer['sessionId']}")
        await pc.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--size", default="256x256")
    ap.add_argument("--pipeline", default="longlive")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    asyncio.run(run(args.url, w, h, args.pipeline))


if __name__ == "__main__":
    main()
