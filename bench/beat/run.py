"""Runs every beat tracker on the same files in one run, scores them, prints markdown tables.

    python run.py [--bin target/release/scope-deck] [--splits heldout,valid]
                  [--trackers scope-deck-learned,scope-deck-dsp,madmom,beatnet,aubio,librosa] DATA_DIR...

DATA_DIR holds <split>/<genre>/<name>.flac with <name>.beats (`time_s beat_in_bar`) and
<name>.json (genre, bpm, drums_start_s, music_end_s, negative, sample_rate); a DATA_DIR without
split folders is itself one split. Raw outputs and scores go to bench/beat/out/.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import score  # noqa: E402
import trackers as T  # noqa: E402

AUDIO_EXT = (".flac", ".wav", ".ogg", ".mp3")


def discover(data_dirs, splits):
    """{split: [(genre, audio_path)]}"""
    out = {}
    for d in map(Path, data_dirs):
        found = [s for s in splits if (d / s).is_dir()]
        roots = [(s, d / s) for s in found] if found else [(d.name, d)]
        for split, root in roots:
            for f in sorted(root.rglob("*")):
                if f.suffix.lower() in AUDIO_EXT and f.with_suffix(".json").exists():
                    out.setdefault(split, []).append((f.parent.name, f))
    return out


def load_ref(f):
    meta = json.loads(f.with_suffix(".json").read_text())
    beats, down = [], []
    bf = f.with_suffix(".beats")
    if bf.exists():
        for line in bf.read_text().splitlines():
            p = line.split()
            if not p:
                continue
            beats.append(float(p[0]))
            if len(p) > 1 and int(float(p[1])) == 1:
                down.append(float(p[0]))
    import soundfile as sf
    duration = sf.info(str(f)).duration
    return meta, beats, down, duration


def make_trackers(names, binary, beat_model=None):
    made = []
    for n in names:
        try:
            if n == "scope-deck":
                made.append(T.ScopeDeck(binary))
            elif n in ("scope-deck-learned", "scope-deck-dsp"):
                kind = n.rsplit("-", 1)[1]
                made.append(T.ScopeDeck(binary, kind, beat_model if kind == "learned" else None))
            elif n == "madmom":
                made.append(T.MadmomOnline())
            elif n == "beatnet":
                made.append(T.BeatNetPF())
            elif n == "aubio":
                made.append(T.Aubio())
            elif n == "librosa":
                made.append(T.LibrosaOffline())
            else:
                sys.exit(f"unknown tracker {n}")
        except Exception as e:  # a peer that cannot load is reported, the others still run
            sys.stderr.write(f"bench-beat: {n} unavailable: {e!r}\n")
    return made


def run_tracker(tr, files):
    if hasattr(tr, "run_all"):
        return tr.run_all(files)
    out = {}
    for i, f in enumerate(files):
        try:
            out[f] = tr.run(f)
        except Exception as e:
            sys.stderr.write(f"{tr.name}: {f}: {e!r}\n")
            out[f] = None
        if (i + 1) % 10 == 0:
            sys.stderr.write(f"  {tr.name}: {i + 1}/{len(files)}\n")
    return out


def fmt(x, nd=3):
    return "—" if x is None else f"{x:.{nd}f}"


def frac(flags):
    flags = [f for f in flags if f is not None]
    return "—" if not flags else f"{sum(flags)}/{len(flags)}"


def mean(xs):
    xs = [x for x in xs if x is not None]
    return None if not xs else float(np.mean(xs))


def bf(row, n):
    """Beat F of one file; a file the tracker failed on counts as 0."""
    s = row[2][n]
    return 0.0 if s.get("failed") else s.get("beat_f")


def tables(split, rows, names, durations):
    """rows: [(genre, file, {tracker: score})] -> markdown."""
    md = [f"### split `{split}` ({len(rows)} files, "
          f"{sum(durations.values()) / 60:.1f} min of audio)", ""]
    pos = [r for r in rows if not r[2][names[0]].get("negative")]
    genres = sorted({g for g, _, _ in pos})
    hdr = "| genre | files | " + " | ".join(names) + " |"
    sep = "|---|---|" + "---|" * len(names)

    md += ["Beat F (±70 ms, all beats, mean per file):", "", hdr, sep]
    for g in genres + ["**overall**"]:
        rs = pos if g == "**overall**" else [r for r in pos if r[0] == g]
        cells = [fmt(mean([bf(r, n) for r in rs])) for n in names]
        md.append(f"| {g} | {len(rs)} | " + " | ".join(cells) + " |")

    md += ["", "Tempo within 4 % (from each tracker's beats over the last half of the music; "
           "files right / files):", "", hdr, sep]
    for g in genres + ["**overall**"]:
        rs = pos if g == "**overall**" else [r for r in pos if r[0] == g]
        cells = [frac([bool(r[2][n].get("tempo_ok_beats")) for r in rs]) for n in names]
        md.append(f"| {g} | {len(rs)} | " + " | ".join(cells) + " |")

    dnames = [n for n in names if any(r[2][n].get("down_f") is not None for r in pos)]
    if dnames:
        md += ["", "Downbeat F (±70 ms; trackers with downbeat output):", "",
               "| genre | files | " + " | ".join(dnames) + " |",
               "|---|---|" + "---|" * len(dnames)]
        for g in genres + ["**overall**"]:
            rs = pos if g == "**overall**" else [r for r in pos if r[0] == g]
            cells = [fmt(mean([r[2][n].get("down_f") for r in rs])) for n in dnames]
            md.append(f"| {g} | {len(rs)} | " + " | ".join(cells) + " |")

    md += ["", "Overall:", "", "| figure | " + " | ".join(names) + " |",
           "|---|" + "---|" * len(names)]

    def line(label, fn):
        md.append(f"| {label} | " + " | ".join(fn(n) for n in names) + " |")

    line("beat F, mean", lambda n: fmt(mean([bf(r, n) for r in pos])))
    line("tempo within 4 %, from its beats",
         lambda n: frac([bool(r[2][n].get("tempo_ok_beats")) for r in pos]))
    line("tempo within 4 %, reported BPM",
         lambda n: frac([r[2][n].get("tempo_ok_reported") for r in pos]))
    line("reported BPM agrees with its own beats (4 %)",
         lambda n: frac([r[2][n].get("reported_agrees_beats") for r in pos]))
    line("reported BPM agrees with its last 5 beats (4 %)",
         lambda n: frac([r[2][n].get("reported_agrees_last_beats") for r in pos]))
    line("downbeat F, mean", lambda n: fmt(mean([r[2][n].get("down_f") for r in pos])))

    def lock(n, drums):
        ls = [r[2][n].get("lock_s") for r in pos if r[2][n].get("has_drums") == drums]
        if not ls:
            return "—"
        never = sum(1 for x in ls if x is None)
        med = statistics.median([float("inf") if x is None else x for x in ls])
        within = sum(1 for x in ls if x is not None and x <= (1.0 if drums else 2.0))
        return (f"{'never' if med == float('inf') else f'{med:.2f} s'}; "
                f"{within}/{len(ls)} ≤ {1 if drums else 2} s; {never} never")

    line("first 4 right beats after the drums start: median; within goal; never",
         lambda n: lock(n, True))
    line("same, files without drums (from 0 s)", lambda n: lock(n, False))
    line("music stops: files with a beat > 1 period after the end",
         lambda n: frac([r[2][n].get("late_beat") for r in pos if r[2][n].get("stops")]))
    neg = [r for r in rows if r[2][names[0]].get("negative")]
    line(f"negatives ({len(neg)} files): beats / onsets",
         lambda n: (f"{sum(r[2][n].get('neg_beats') or 0 for r in neg)} / "
                    + (str(sum(r[2][n]['neg_onsets'] for r in neg))
                       if neg and all(r[2][n].get("neg_onsets") is not None for r in neg)
                       else "—")) if neg else "—")
    line("failed files", lambda n: str(sum(1 for r in rows if r[2][n].get("failed"))))
    return md


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+")
    ap.add_argument("--bin", default=str(HERE.parent.parent / "target/release/scope-deck"))
    ap.add_argument("--splits", default="heldout,valid")
    ap.add_argument("--trackers",
                    default="scope-deck-learned,scope-deck-dsp,madmom,beatnet,aubio,librosa")
    ap.add_argument("--beat-model", default=None,
                    help="weights for scope-deck-learned (analyze --beat-model): a training candidate")
    ap.add_argument("--limit", type=int, default=0, help="at most N files per split (0 = all)")
    ap.add_argument("--out", default=str(HERE / "out"))
    a = ap.parse_args()

    splits = a.splits.split(",")
    found = discover(a.data, splits)
    if not found:
        sys.exit(f"bench-beat: no <genre>/<name>.flac + .json under {a.data}")
    trs = make_trackers(a.trackers.split(","), a.bin, a.beat_model)
    names = [t.name for t in trs]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"## Beat tracking benchmark — {now}", "",
          f"Command: `scripts/bench-beat.sh {' '.join(a.data)}` (trackers: {a.trackers}; "
          f"scope-deck binary `{a.bin}`); machine: {os.cpu_count()} shared cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start.", ""]
    raw_all, speed = {}, {n: [0.0, 0.0] for n in names}
    order = [s for s in splits if s in found] + [s for s in found if s not in splits]
    for split in order:
        items = found[split]
        if a.limit:  # spread over the sorted list, so every genre keeps some files
            items = items[::max(1, len(items) // a.limit)][:a.limit]
        files = [f for _, f in items]
        refs = {f: load_ref(f) for f in files}
        durations = {f: refs[f][3] for f in files}
        results = {}
        for tr in trs:
            sys.stderr.write(f"bench-beat: {split}: {tr.name} on {len(files)} files\n")
            res = run_tracker(tr, files)
            results[tr.name] = res
            for f, r in res.items():
                if r is not None:
                    speed[tr.name][0] += durations[f]
                    speed[tr.name][1] += r["cpu"]
        rows = []
        for g, f in items:
            meta, rb, rd, dur = refs[f]
            rows.append((g, f, {n: score.score_file(meta, rb, rd, dur, results[n].get(f))
                                for n in names}))
        md += tables(split, rows, names, durations) + [""]
        raw_all[split] = {str(f): {"genre": g, "scores": s,
                                   "raw": {n: results[n].get(f) for n in names}}
                          for g, f, s in rows}
    md += ["Speed (audio seconds per CPU second, decoding included; all splits):", "",
           "| tracker | mode | × real time per CPU second |", "|---|---|---|"]
    for t in trs:
        a_s, c_s = speed[t.name]
        md.append(f"| {t.name} | {'online (causal)' if t.online else 'offline'} | "
                  f"{(a_s / c_s if c_s else float('nan')):.0f}× |")
    for sd in (t for t in trs if isinstance(t, T.ScopeDeck)):
        md += ["", f"{sd.name}: `{sd.version}`."]
    text = "\n".join(md) + "\n"
    (out / "report.md").write_text(text)
    (out / "results.json").write_text(json.dumps(raw_all, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
