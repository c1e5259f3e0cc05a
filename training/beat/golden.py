"""Writes assets/beat/golden.json: raw features and softmax outputs of the committed weights on two
deterministic 0.5 s signals (44.1 kHz and 8 kHz), computed with numpy only (no torch), so the Rust
side checks its front end and network against an implementation written straight from the contract.
"""

import json
import os

import numpy as np
from safetensors.numpy import load_file

import frontend

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def signal(sr):
    """A 0.5 s click at 0.1 s, a 440 Hz tone from 0.2 s and a second click at 0.35 s, as f32."""
    n = sr // 2
    t = np.arange(n) / sr
    x = np.zeros(n)
    for tc in (0.1, 0.35):
        s = int(round(tc * sr))
        k = np.arange(min(n - s, int(0.005 * sr)))
        x[s : s + len(k)] += 0.8 * np.exp(-k / (0.001 * sr)) * np.where(k % 2 == 0, 1.0, -1.0)
    x += np.where(t >= 0.2, 0.3 * np.sin(2 * np.pi * 440 * t), 0.0)
    return np.clip(x, -1, 1).astype(np.float32)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def run_net(w, feats):
    """The contract's GRU step by step in float64."""
    x = (feats.astype(np.float64) - w["norm.mean"]) / w["norm.std"]
    layers = sum(1 for k in w if k.startswith("gru.weight_ih_l"))
    for n in range(layers):
        wih, whh = w[f"gru.weight_ih_l{n}"].astype(np.float64), w[f"gru.weight_hh_l{n}"].astype(np.float64)
        bih, bhh = w[f"gru.bias_ih_l{n}"].astype(np.float64), w[f"gru.bias_hh_l{n}"].astype(np.float64)
        h_dim = whh.shape[1]
        h = np.zeros(h_dim)
        out = []
        for v in x:
            gi = wih @ v + bih
            gh = whh @ h + bhh
            r = sigmoid(gi[:h_dim] + gh[:h_dim])
            z = sigmoid(gi[h_dim : 2 * h_dim] + gh[h_dim : 2 * h_dim])
            nn_ = np.tanh(gi[2 * h_dim :] + r * gh[2 * h_dim :])
            h = (1 - z) * nn_ + z * h
            out.append(h)
        x = np.array(out)
    logits = x @ w["head.weight"].astype(np.float64).T + w["head.bias"]
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def main():
    path = os.path.join(ROOT, "assets", "beat", "model.safetensors")
    w = load_file(path)
    with open(path, "rb") as f:
        hlen = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(hlen))["__metadata__"]
    cases = []
    for sr in (44100, 8000):
        x = signal(sr)
        feats = frontend.features(x.astype(np.float64), sr)
        probs = run_net(w, feats)
        cases.append({
            "description": "0.5 s: alternating-sign click 0.8 decaying 1 ms at 0.1 s and 0.35 s, "
                           "+ 0.3 * sin(2 pi 440 t) from 0.2 s; samples are the f32 values below",
            "sample_rate": sr,
            "samples": [float(v) for v in x],
            "window": frontend.window_len(sr),
            "fft_size": 1 << (frontend.window_len(sr) - 1).bit_length(),
            "n_frames": len(feats),
            "features": [[round(float(v), 7) for v in row] for row in feats],
            "probs": [[round(float(v), 7) for v in row] for row in probs],
        })
    out = {
        "model_version": meta["model_version"],
        "frontend": meta["frontend"],
        "tolerance": 1e-4,
        "note": "features are raw (before norm.mean/std); probs are softmax [none, beat, downbeat] "
                "per frame with h = 0 at the first frame; written by training/beat/golden.py",
        "cases": cases,
    }
    with open(os.path.join(ROOT, "assets", "beat", "golden.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("golden:", [(c["sample_rate"], c["n_frames"]) for c in cases])


if __name__ == "__main__":
    main()
