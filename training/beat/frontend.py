"""Beat-model front end, exactly as docs/beat-model.md specifies (the Rust side mirrors it).

100 frames/s at any sample rate; causal Hann window of ~46.44 ms; 55 log-spaced triangular bands;
log10(1 + 1000 b); positive first difference. Returns raw (unnormalised) 110-value frames.
"""

import math

import numpy as np

FPS = 100
B = 55
N_FEAT = 2 * B


def round_half_up(x: float) -> int:
    """Round half away from zero (Rust's f64::round) for the positive values used here."""
    return int(math.floor(x + 0.5))


def frame_end(k: int, sr: int) -> int:
    """End sample (exclusive) of frame k: round((k + 1) * sr / 100), in exact integer arithmetic."""
    return ((k + 1) * sr + 50) // 100


def window_len(sr: int) -> int:
    return round_half_up(0.04644 * sr)


def n_frames(n_samples: int, sr: int) -> int:
    """Number of frames whose end sample lies inside a stream of n_samples."""
    # largest k with ((k+1)*sr + 50)//100 <= n  <=>  (k+1)*sr + 50 < 100*(n+1)
    kp1 = (100 * (n_samples + 1) - 50 - 1) // sr
    return max(0, kp1)


def band_centres() -> np.ndarray:
    return 30.0 * 2.0 ** (np.arange(-1, B + 1) / 6.0)  # c_{-1} .. c_{55}


def filterbank(sr: int) -> np.ndarray:
    """[B, N/2+1] weights, each band normalised to sum 1 (or all zero above Nyquist)."""
    w = window_len(sr)
    n = 1 << (w - 1).bit_length()
    freqs = np.arange(n // 2 + 1) * sr / n
    c = band_centres()
    fb = np.zeros((B, n // 2 + 1))
    for i in range(B):
        lo, mid, hi = c[i], c[i + 1], c[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        tri = np.maximum(0.0, np.minimum(up, down))
        tri[freqs >= sr / 2] = 0.0
        if tri.sum() <= 0:
            j = int(np.argmin(np.abs(freqs - mid)))
            if freqs[j] >= sr / 2:
                continue
            tri[j] = 1.0
        fb[i] = tri / tri.sum()
    return fb


def hygiene(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    x[np.abs(x) < 1e-30] = 0.0
    return np.clip(x, -1.0, 1.0)


def features(x: np.ndarray, sr: int, chunk: int = 4096) -> np.ndarray:
    """Raw [K, 110] float32 features of a mono signal."""
    x = hygiene(x)
    w = window_len(sr)
    n = 1 << (w - 1).bit_length()
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(w) / w)
    scale = 2.0 / win.sum()
    fb = filterbank(sr)
    k_total = n_frames(len(x), sr)
    xp = np.concatenate([np.zeros(w), x])  # sample s of x is xp[s + w]
    ends = ((np.arange(k_total) + 1) * sr + 50) // 100  # exclusive end, in x
    y = np.zeros((k_total, B))
    idx = np.arange(w)
    for s in range(0, k_total, chunk):
        e = ends[s : s + chunk]
        frames = xp[(e[:, None] + idx[None, :])]  # xp[e + i] = x[e - w + i]
        spec = np.abs(np.fft.rfft(frames * win, n=n, axis=1)) * scale
        y[s : s + chunk] = np.log10(1.0 + 1000.0 * (spec @ fb.T))
    d = np.zeros_like(y)
    if k_total > 1:
        d[1:] = np.maximum(0.0, y[1:] - y[:-1])
    return np.concatenate([y, d], axis=1).astype(np.float32)
