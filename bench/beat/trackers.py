"""The beat trackers under test, each run on the same decoded files.

Every tracker returns a dict: beats (s), downbeats (s, or None when it has no downbeat output),
tempo (its own reported BPM, or None), onsets (s, or None), cpu (CPU seconds spent, including
decoding and resampling, so speed figures compare whole pipelines).
"""
import json
import os
import resource
import subprocess
import sys
import time
import types

import numpy as np


def _child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load_mono(path, sr=None):
    """Decodes a file to mono float32, resampled to `sr` when given (soxr, as librosa does)."""
    import soundfile as sf
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr is not None and rate != sr:
        import soxr
        x = soxr.resample(x, rate, sr).astype(np.float32)
        rate = sr
    return x, rate


class ScopeDeck:
    """`scope-deck analyze --json`: batches of files per process (basenames unique per batch,
    because older builds key the JSON by basename)."""
    name = "scope-deck"
    online = True

    def __init__(self, binary, tracker=None, beat_model=None):
        self.binary = binary
        # `analyze --beat-model FILE`: the learned tracker with a candidate's weights.
        self.beat_model = beat_model
        self.version = None
        # `--beat-tracker dsp|learned` (builds before it ran the configured tracker only).
        self.tracker = tracker
        if tracker:
            self.name = f"scope-deck {tracker}"

    def run_all(self, files):
        out = {}
        batches = []
        for f in files:
            for b in batches:
                if f.name not in {g.name for g in b} and len(b) < 64:
                    b.append(f)
                    break
            else:
                batches.append([f])
        for b in batches:
            c0 = _child_cpu()
            opt = ["--beat-tracker", self.tracker] if self.tracker else []
            if self.beat_model:
                opt += ["--beat-model", str(self.beat_model)]
            p = subprocess.run([self.binary, "analyze", "--json", *opt, *map(str, b)],
                               capture_output=True, text=True)
            cpu = _child_cpu() - c0
            try:
                doc = json.loads(p.stdout)
            except json.JSONDecodeError:
                sys.stderr.write(f"scope-deck: no JSON (exit {p.returncode}): {p.stderr[-500:]}\n")
                doc = {}
            entries = doc.values() if isinstance(doc, dict) else doc
            by_key = {}
            for k, v in (doc.items() if isinstance(doc, dict) else []):
                by_key[k] = v
            for v in entries:
                if isinstance(v, dict) and "path" in v:
                    by_key[v["path"]] = v
            for f in b:
                v = by_key.get(str(f)) or by_key.get(f.name)
                if v is None or "error" in v:
                    err = v.get("error") if v else p.stderr[-300:]
                    sys.stderr.write(f"scope-deck: {f}: {err}\n")
                    out[f] = None
                    continue
                if self.version is None:
                    mv = v.get("model_version")
                    self.version = v.get("tracker", "dsp (pre-tracker-field build)") + (f" ({mv})" if mv else "")
                down = v.get("downbeats")
                out[f] = {
                    "beats": list(v.get("beats", [])),
                    "downbeats": list(down) if down is not None else None,
                    "tempo": v.get("bpm") or None,
                    "onsets": list(v.get("onsets", [])),
                    "cpu": cpu / len(b),
                }
        return out


class MadmomOnline:
    """madmom 0.16.1 online: unidirectional-LSTM beat activation on causal frames
    (origin='online', as madmom's own `DBNBeatTracker online` sets it) + the forward-algorithm
    DBN. madmom has no online downbeat tracker, so no downbeats."""
    name = "madmom online"
    online = True

    def __init__(self):
        from madmom.features.beats import RNNBeatProcessor, DBNBeatTrackingProcessor
        self.rnn = RNNBeatProcessor(online=True, origin="online")
        self.dbn = DBNBeatTrackingProcessor(fps=100, online=True)

    def run(self, path):
        from madmom.audio.signal import Signal
        c0 = time.process_time()
        x, sr = load_mono(path, 44100)
        act = self.rnn(Signal(x, sample_rate=sr))
        beats = self.dbn.process_online(act, reset=True)
        tempo = float(self.dbn.tempo) or None
        return {"beats": list(map(float, beats)), "downbeats": None, "tempo": tempo,
                "onsets": None, "cpu": time.process_time() - c0}


class BeatNetPF:
    """BeatNet 1.1.3, model 1, mode 'online' + particle filter (causal decoder; the features use
    madmom's centred frames, i.e. 32 ms of look-ahead). Seeded for repeatable runs."""
    name = "BeatNet online (PF)"
    online = True

    def __init__(self, seed=0):
        # BeatNet imports pyaudio (microphone mode only) and matplotlib (plots only) at import
        # time; neither is used here, so stand-ins keep them out of the venv.
        sys.modules.setdefault("pyaudio", types.ModuleType("pyaudio"))
        if "matplotlib" not in sys.modules:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                mpl = types.ModuleType("matplotlib")
                mpl.pyplot = types.ModuleType("matplotlib.pyplot")
                sys.modules["matplotlib"] = mpl
                sys.modules["matplotlib.pyplot"] = mpl.pyplot
        import torch
        torch.set_num_threads(1)
        from BeatNet.BeatNet import BeatNet
        import BeatNet.particle_filtering_cascade as pfc
        self.BeatNet, self.pfc, self.seed = BeatNet, pfc, seed
        self.tracker = None

    def run(self, path):
        import contextlib, io
        c0 = time.process_time()
        np.random.seed(self.seed)
        self.pfc.rng = np.random.default_rng(self.seed)
        # A fresh estimator per file: the particle filter keeps its state between calls.
        bn = self.BeatNet(1, mode="online", inference_model="PF", plot=[], thread=False)
        x, sr = load_mono(path, 22050)
        with contextlib.redirect_stdout(io.StringIO()):
            out = bn.process(x)
        out = np.asarray(out).reshape(-1, 2)
        beats = [float(t) for t, _ in out]
        downs = [float(t) for t, k in out if int(k) == 1]
        return {"beats": beats, "downbeats": downs, "tempo": None, "onsets": None,
                "cpu": time.process_time() - c0}


class Aubio:
    """Debian aubio-tools `aubio beat` (causal)."""
    name = "aubio"
    online = True

    def run(self, path):
        c0 = _child_cpu()
        p = subprocess.run(["aubio", "beat", "-i", str(path)], capture_output=True, text=True)
        cpu = _child_cpu() - c0
        beats = [float(l.split()[0]) for l in p.stdout.splitlines() if l.strip()]
        return {"beats": beats, "downbeats": None, "tempo": None, "onsets": None, "cpu": cpu}


class LibrosaOffline:
    """librosa.beat.beat_track: offline (global tempo, dynamic programming over the whole file)."""
    name = "librosa (offline)"
    online = False

    def run(self, path):
        import librosa
        c0 = time.process_time()
        x, sr = load_mono(path, 22050)
        tempo, frames = librosa.beat.beat_track(y=x, sr=sr, units="frames")
        beats = librosa.frames_to_time(frames, sr=sr)
        tempo = float(np.atleast_1d(tempo)[0]) or None
        return {"beats": list(map(float, beats)), "downbeats": None, "tempo": tempo,
                "onsets": None, "cpu": time.process_time() - c0}
