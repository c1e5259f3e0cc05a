"""Scoring with mir_eval's definitions, written here (no mir_eval dependency).

- F-measure: one-to-one matching of estimated to reference events within +-70 ms (maximum
  matching; for 1-D events with a window shorter than half the spacing, greedy in time order is
  maximal), P = matched / estimated, R = matched / reference, F = 2PR / (P + R); 0 when either list
  is empty. Unlike mir_eval's default, no beats are trimmed: all beats from the start count.
- Tempo: 60 / median inter-beat interval over the last half of the file, for the reference and
  for each tracker's beats; a tracker's reported BPM is compared too. Right = within 4 %, no
  octave forgiveness.
"""
import numpy as np

WIN = 0.07


def match(ref, est, win=WIN):
    """Pairs (i_ref, i_est) of a maximum one-to-one matching within `win`."""
    ref, est = np.sort(np.asarray(ref, float)), np.sort(np.asarray(est, float))
    pairs, i, j = [], 0, 0
    while i < len(ref) and j < len(est):
        d = est[j] - ref[i]
        if abs(d) <= win:
            pairs.append((i, j))
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return pairs


def f_measure(ref, est, win=WIN):
    if len(ref) == 0 or len(est) == 0:
        return 0.0
    m = len(match(ref, est, win))
    p, r = m / len(est), m / len(ref)
    return 0.0 if m == 0 else 2 * p * r / (p + r)


def ibi_tempo(beats, start):
    """60 / median interval of the beats at or after `start` (None with < 3 such beats)."""
    b = np.sort(np.asarray(beats, float))
    b = b[b >= start]
    if len(b) < 3:
        return None
    return 60.0 / float(np.median(np.diff(b)))


def within(a, b, tol=0.04):
    return a is not None and b is not None and abs(a - b) <= tol * b


def lock_time(ref, est, start, win=WIN):
    """Seconds from `start` to the first of 4 estimated beats in a row that each match
    consecutive reference beats at or after `start`; None if that never happens."""
    ref, est = np.sort(np.asarray(ref, float)), np.sort(np.asarray(est, float))
    pairs = match(ref, est, win)
    ref_of = {j: i for i, j in pairs}
    for j in range(len(est) - 3):
        if est[j] < start - win:
            continue
        run = [ref_of.get(j + k) for k in range(4)]
        if None in run:
            continue
        if all(run[k + 1] == run[k] + 1 for k in range(3)):
            return max(0.0, float(est[j] - start))
    return None


def score_file(meta, ref_beats, ref_down, duration, res):
    """All figures for one tracker on one file (res is the tracker's output, None = failed)."""
    s = {"negative": bool(meta.get("negative"))}
    if res is None:
        s["failed"] = True
        return s
    beats = np.asarray(res["beats"], float)
    if s["negative"]:
        s["neg_beats"] = int(len(beats))
        s["neg_onsets"] = None if res.get("onsets") is None else int(len(res["onsets"]))
        return s
    s["beat_f"] = f_measure(ref_beats, beats)
    s["down_f"] = None if res.get("downbeats") is None else f_measure(ref_down, res["downbeats"])
    half = duration / 2
    ref_tempo = ibi_tempo(ref_beats, half)
    end = meta.get("music_end_s")
    if end is not None and end < duration - 1.0 and ref_tempo is None:
        ref_tempo = ibi_tempo(ref_beats, 0.0)
    # Where the music stops before the end, "the last half" is taken of the music, not the file.
    if end is not None and end < duration - 1.0:
        ref_tempo = ibi_tempo(np.asarray(ref_beats)[np.asarray(ref_beats) <= end], end / 2) \
            or ref_tempo
        est_tempo = ibi_tempo(beats[beats <= end], end / 2)
    else:
        est_tempo = ibi_tempo(beats, half)
    s["ref_tempo"] = ref_tempo
    s["beats_tempo"] = est_tempo
    s["tempo_ok_beats"] = within(est_tempo, ref_tempo)
    rep = res.get("tempo")
    s["reported_tempo"] = rep
    s["tempo_ok_reported"] = None if rep is None else within(rep, ref_tempo)
    s["reported_agrees_beats"] = None if rep is None else within(rep, est_tempo)
    # The same against the beats around the moment the readout was taken (scope-deck reports
    # its readout at the last beat it sent): over the whole last half, a tempo change or a
    # switch between half and double tempo near the end makes the two differ though the readout
    # follows the beats (round 12: all 17 disagreements of the 498 files were such).
    tail = ibi_tempo(beats[-5:], -np.inf) if len(beats) >= 5 else None
    s["reported_agrees_last_beats"] = None if rep is None else within(rep, tail)
    ds = meta.get("drums_start_s")
    s["has_drums"] = ds is not None
    s["lock_s"] = lock_time(ref_beats, beats, ds if ds is not None else 0.0)
    if end is not None and end < duration - 1.0 and len(ref_beats) >= 2:
        rb = np.asarray(ref_beats)
        before = rb[rb <= end + 1e-6]
        period = float(np.median(np.diff(before[-5:]))) if len(before) >= 2 else 60 / ref_tempo
        s["stops"] = True
        # The same ±70 ms tolerance as every beat figure: a beat one period after the end, on
        # time, is the last one the goal allows.
        s["late_beat"] = bool((beats > end + period + WIN).any())
        s["last_beat_after_end_s"] = float(beats.max() - end) if len(beats) else None
    else:
        s["stops"] = False
    return s
