"""Merges the results.json of several bench runs (e.g. the peers measured once, scope-deck
re-measured per build) into one set of per-split tables, as run.py prints them.

    python merge.py OUT_A/results.json OUT_B/results.json [--splits final,heldout]

A tracker measured by several runs keeps the last run's figures (list the newest last).
Files are matched by split and file name (runs may name the data folder differently); a split's
table has the trackers every run measured on it.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--splits", default="")
    a = ap.parse_args()
    merged = {}
    for p in a.results:
        for split, files in json.loads(Path(p).read_text()).items():
            for f, v in files.items():
                m = merged.setdefault(split, {}).setdefault(Path(f).name, {
                    "genre": v["genre"], "path": f, "scores": {}, "raw": {}})
                m["scores"].update(v["scores"])
                m["raw"].update(v["raw"])
    want = a.splits.split(",") if a.splits else list(merged)
    md = []
    for split in want:
        files = merged.get(split, {})
        if not files:
            continue
        names = [n for n in next(iter(files.values()))["scores"]
                 if all(n in v["scores"] for v in files.values())]
        rows = [(v["genre"], f, v["scores"]) for f, v in sorted(files.items())]
        durations = {f: run.load_ref(Path(v["path"]))[3] for f, v in files.items()}
        md += run.tables(split, rows, names, durations) + [""]
        speed = []
        for n in names:
            a_s = sum(durations[f] for f, v in files.items() if v["raw"].get(n))
            c_s = sum(v["raw"][n]["cpu"] for v in files.values() if v["raw"].get(n))
            speed.append(f"{n} {a_s / c_s:.0f}×" if c_s else f"{n} —")
        md += ["Speed on this split (× real time per CPU second): " + ", ".join(speed) + ".", ""]
    print("\n".join(md))


if __name__ == "__main__":
    main()
