"""An independent Ableton Link peer for tests (aalink wraps the official Link library).

Joins the session at --bpm with --quantum beats per bar and prints one JSON line per beat on
stdout: the beat's time on Link's clock (`t_us`, microseconds), its beat number and phase in
the bar, the session tempo, peers and transport. Runs until stdin closes or --seconds pass.
"""
import argparse
import asyncio
import json
import sys

from aalink import Link


async def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bpm", type=float, default=128.0)
    ap.add_argument("--quantum", type=float, default=4.0)
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    link = Link(args.bpm)
    link.quantum = args.quantum
    link.start_stop_sync_enabled = True
    link.enabled = True
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    end = loop.time() + args.seconds
    while loop.time() < end and not stdin_closed.done():
        await link.sync(1)
        # The beat's own time: now, less the part of a beat already gone.
        now_us = link.time.total_seconds() * 1e6 if hasattr(link.time, "total_seconds") else float(link.time)
        beat = link.beat
        whole = round(beat)
        tempo = link.tempo
        t_us = now_us - (beat - whole) * 60e6 / tempo
        print(json.dumps({
            "beat": whole,
            "t_us": t_us,
            "phase": whole % args.quantum,
            "tempo": tempo,
            "peers": link.num_peers,
            "playing": link.playing,
        }), flush=True)
    link.enabled = False


if __name__ == "__main__":
    asyncio.run(main())
