"""Caches the raw 110-value features of every data file as data/cache/<split>/<name>.npy."""

import glob
import os
import sys
from multiprocessing import Pool

import numpy as np
import soundfile as sf

import frontend

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("BEAT_DATA", os.path.join(HERE, "data"))


def one(path):
    split = path.split(os.sep)[-3]
    out = os.path.join(DATA, "cache", split, os.path.basename(path)[:-5] + ".npy")
    if os.path.exists(out):
        return
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    f = frontend.features(x.mean(axis=1), sr)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    np.save(out, f)


if __name__ == "__main__":
    files = sorted(glob.glob(os.path.join(DATA, "*", "*", "*.flac")))
    splits = sys.argv[1:] or ["train", "valid", "heldout"]
    files = [f for f in files if f.split(os.sep)[-3] in splits]
    with Pool(2) as p:
        p.map(one, files, chunksize=4)
    print(f"cached {len(files)} files", file=sys.stderr)
