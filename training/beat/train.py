"""Trains the causal beat/downbeat GRU of docs/beat-model.md on the cached generated data.

python train.py --steps 6000 --seed 1 [--out ../../assets/beat/model.safetensors]
Keeps the weights with the best valid beat F; reports valid and heldout separately.
`--steps` makes a run repeatable (same seed, same batches, same learning-rate schedule on any
machine); `--minutes` instead runs the schedule on wall-clock time (a quick look, not repeatable).
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.numpy import save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DATA = os.environ.get("BEAT_DATA", os.path.join(HERE, "data"))
# The causal window tapers its newest samples, so an onset shows most clearly 1-2 frames after
# the frame the contract's label rule names; the network is trained to answer one frame later.
LABEL_OFFSET = 1
FRONTEND = "fps100-w46ms-b55-log1000-posdiff"


def load_split(split):
    items = []
    for f in sorted(glob.glob(os.path.join(DATA, "cache", split, "*.npy"))):
        name = os.path.basename(f)[:-4]
        meta_glob = glob.glob(os.path.join(DATA, split, "*", name + ".json"))
        if not meta_glob:
            continue
        base = meta_glob[0][:-5]
        with open(base + ".json") as fh:
            meta = json.load(fh)
        feats = np.load(f)
        beats = np.loadtxt(base + ".beats", ndmin=2) if os.path.getsize(base + ".beats") else np.zeros((0, 2))
        items.append({"name": name, "genre": meta["genre"], "x": feats, "beats": beats, "meta": meta})
    return items


def targets(n, beats, down_weight=1.0):
    """Soft 3-class targets [n, 3] and per-frame loss weights (downbeat frames `down_weight` times
    a beat frame's)."""
    y = np.zeros((n, 3), np.float32)
    y[:, 0] = 1.0
    for t, b in beats:
        k = int(np.ceil(100 * t - 1e-9)) - 1 + LABEL_OFFSET
        c = 2 if int(b) == 1 else 1
        for dk, v in ((0, 1.0), (-1, 0.5), (1, 0.5)):
            j = k + dk
            if 0 <= j < n and y[j, c] < v:
                y[j] = 0
                y[j, c] = v
                y[j, 0] = 1 - v
    w = np.where(y[:, 0] < 1, 4.0, 1.0).astype(np.float32)
    w[y[:, 2] > 0] *= down_weight
    return y, w


def phase_targets(n, beats):
    """Training-only auxiliary target: (cos, sin) of the position in the beat for every frame
    between the first and last labelled beat, and a 0/1 mask. Knowing where it is in the beat
    (not only "a beat is here") is what tells a kick on the beat from a hat or bass between
    kicks, the techno failure of issue 23."""
    ph = np.zeros((n, 2), np.float32)
    m = np.zeros(n, np.float32)
    if len(beats) < 2:
        return ph, m
    t = (np.arange(n) + 1 - LABEL_OFFSET) / 100.0
    bt = beats[:, 0]
    inside = (t >= bt[0]) & (t < bt[-1])
    i = np.clip(np.searchsorted(bt, t, side="right") - 1, 0, len(bt) - 2)
    frac = (t - bt[i]) / np.maximum(bt[i + 1] - bt[i], 1e-6)
    ph[:, 0] = np.cos(2 * np.pi * frac)
    ph[:, 1] = np.sin(2 * np.pi * frac)
    m[inside] = 1.0
    ph[~inside] = 0.0
    return ph, m


class Net(nn.Module):
    def __init__(self, layers, hidden, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.gru = nn.GRU(110, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, 3)
        # Training only (not exported, not in the contract): beat phase as (cos, sin).
        self.aux = nn.Linear(hidden, 2)

    def forward(self, x, with_aux=False):
        h, _ = self.gru((x - self.mean) / self.std)
        if with_aux:
            return self.head(h), self.aux(h)
        return self.head(h)


def peaks(act, thr=0.3, radius=7):
    """Causal-agnostic simple peak picking: local maxima above thr, at least radius apart."""
    out = []
    last = -10**9
    n = len(act)
    for k in range(n):
        a = act[k]
        if a < thr:
            continue
        lo, hi = max(0, k - radius), min(n, k + radius + 1)
        if a >= act[lo:hi].max() and k - last > radius:
            out.append(k)
            last = k
    return np.array(out, int)


def f_measure(est, ref, tol=0.07):
    if len(ref) == 0 and len(est) == 0:
        return 1.0
    if len(ref) == 0 or len(est) == 0:
        return 0.0
    used = np.zeros(len(est), bool)
    hit = 0
    for r in ref:
        d = np.abs(est - r)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= tol:
            used[j] = True
            hit += 1
    p, r = hit / len(est), hit / len(ref)
    return 0.0 if hit == 0 else 2 * p * r / (p + r)


@torch.no_grad()
def evaluate(net, items):
    net.eval()
    res = {}
    # One padded batch: the network is causal, so padding at the end changes no earlier output,
    # and one batched pass is many times faster than one pass per file on one thread.
    n_max = max(len(it["x"]) for it in items)
    xb = np.stack([np.pad(it["x"], ((0, n_max - len(it["x"])), (0, 0))) for it in items])
    pb = torch.softmax(net(torch.from_numpy(xb)), -1).numpy()
    for it, pall in zip(items, pb):
        p = pall[: len(it["x"])]
        beat_act = p[:, 1] + p[:, 2]
        y, _ = targets(len(p), it["beats"])
        tgt = (y[:, 0] < 1)
        pred = beat_act > 0.5
        tp = (pred & tgt).sum()
        # frame F: frames with beat activation > 0.5 against the (widened) target frames
        frame_f = 2 * tp / (pred.sum() + tgt.sum()) if tgt.any() or pred.any() else 1.0
        est = (peaks(beat_act) + 1 - LABEL_OFFSET) / 100.0
        ref = it["beats"][:, 0] if len(it["beats"]) else np.zeros(0)
        bf = f_measure(est, ref)
        dest = (peaks(p[:, 2]) + 1 - LABEL_OFFSET) / 100.0
        dref = it["beats"][it["beats"][:, 1] == 1, 0] if len(it["beats"]) else np.zeros(0)
        df = f_measure(dest, dref)
        g = it["genre"]
        res.setdefault(g, []).append((frame_f, bf, df, len(est) / (len(p) / 6000)))
    net.train()
    out = {}
    for g, v in res.items():
        a = np.array(v)
        out[g] = {"n": len(v), "frame_f": a[:, 0].mean(), "beat_f": a[:, 1].mean(),
                  "downbeat_f": a[:, 2].mean(), "beats_per_min": a[:, 3].mean()}
    allv = np.array([x for v in res.values() for x in v])
    music = np.array([x for g, v in res.items() if g != "negative" for x in v])
    out["ALL_MUSIC"] = {"n": len(music), "frame_f": music[:, 0].mean(), "beat_f": music[:, 1].mean(),
                        "downbeat_f": music[:, 2].mean(), "beats_per_min": music[:, 3].mean()}
    out["ALL"] = {"n": len(allv), "frame_f": allv[:, 0].mean(), "beat_f": allv[:, 1].mean(),
                  "downbeat_f": allv[:, 2].mean(), "beats_per_min": allv[:, 3].mean()}
    return out


def table(title, r):
    lines = [f"{title}: genre n frame_F beat_F downbeat_F peaks/min"]
    for g in sorted(r):
        v = r[g]
        lines.append(f"  {g:14s} {v['n']:3d} {v['frame_f']:.3f} {v['beat_f']:.3f} {v['downbeat_f']:.3f} {v['beats_per_min']:.1f}")
    return "\n".join(lines)


def export(net, path, meta):
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    t = {"norm.mean": sd["mean"], "norm.std": sd["std"], "head.weight": sd["head.weight"],
         "head.bias": sd["head.bias"]}
    for k, v in sd.items():
        if k.startswith("gru."):
            t[k] = v
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, path, metadata=meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=25)
    ap.add_argument("--steps", type=int, default=0, help="train exactly this many steps (0 = use --minutes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--chunk", type=int, default=600, help="frames per training sequence")
    ap.add_argument("--start-p", type=float, default=0.2,
                    help="how often a sequence starts at its file's first frame (intros, drum entries)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "assets", "beat", "model.safetensors"))
    ap.add_argument("--train-split", default="train", help="comma-separated splits, e.g. train,trainx")
    ap.add_argument("--init", default="", help="start from these weights (fine-tune; keeps their norm)")
    ap.add_argument("--aux-weight", type=float, default=0.0,
                    help="weight of the training-only beat-phase target (0 = off)")
    ap.add_argument("--down-weight", type=float, default=1.0,
                    help="loss weight of downbeat frames relative to other beat frames")
    ap.add_argument("--snapshots", action="store_true",
                    help="also write every evaluated step's weights to OUT.stepN (candidates to score with the decoder)")
    ap.add_argument("--select", default="beat", choices=["beat", "beat+down"],
                    help="checkpoint chosen by valid beat F, or by beat F + downbeat F (music)")
    ap.add_argument("--recipe", default="training/beat/make-data.sh (gen.py seed 1: train 400, valid 70, heldout 70 files)")
    ap.add_argument("--version", default="beatgru-2x48-2026-12-05")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    train = [it for sp in a.train_split.split(",") for it in load_split(sp)]
    valid, held = load_split("valid"), load_split("heldout")
    print(f"loaded train {len(train)} valid {len(valid)} heldout {len(held)} files in {time.time() - t0:.0f}s", flush=True)
    if a.init:
        from safetensors.numpy import load_file
        init = load_file(a.init)
        mean, std = init["norm.mean"], init["norm.std"]
    else:
        allx = np.concatenate([it["x"] for it in train])
        mean = allx.mean(0).astype(np.float32)
        std = np.maximum(allx.std(0), 1e-2).astype(np.float32)
        del allx
    for it in train:
        it["y"], it["w"] = targets(len(it["x"]), it["beats"], a.down_weight)
        it["ph"], it["pm"] = phase_targets(len(it["x"]), it["beats"])
    lens = np.array([len(it["x"]) for it in train], float)
    prob = lens / lens.sum()
    net = Net(a.layers, a.hidden, mean, std)
    if a.init:
        sd = {k: torch.from_numpy(v) for k, v in init.items() if k.startswith(("gru.", "head."))}
        net.load_state_dict(sd, strict=False)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    budget = a.minutes * 60
    best, best_state, step = -1.0, None, 0
    def score(r):
        return r["ALL"]["beat_f"] + (r["ALL_MUSIC"]["downbeat_f"] if a.select == "beat+down" else 0.0)

    if a.init:  # the starting point is the one to beat
        best = score(evaluate(net, valid))
        best_state = {k: v.clone() for k, v in net.state_dict().items()}
        print(f"init {a.init}: valid score {best:.3f}", flush=True)
    tstart = time.time()
    meta = {
        "model_version": a.version,
        "frontend": FRONTEND,
        "data_recipe": a.recipe,
        "train_command": "training/beat/train.sh (" + " ".join(sys.argv[1:]) + ")",
        "classes": "none,beat,downbeat",
        "label_offset_frames": str(LABEL_OFFSET),
    }
    while True:
        el = time.time() - tstart
        if (a.steps and step >= a.steps) or (not a.steps and el > budget):
            break
        done = step / a.steps if a.steps else el / budget
        lr = a.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, done))))
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb, wb, pb, mb = [], [], [], [], []
        for i in rng.choice(len(train), a.batch, p=prob):
            it = train[i]
            n = len(it["x"])
            s = 0 if (rng.random() < a.start_p or n <= a.chunk) else int(rng.integers(0, n - a.chunk))
            e = min(n, s + a.chunk)
            pad = a.chunk - (e - s)
            xx = np.pad(it["x"][s:e], ((0, pad), (0, 0)))
            yy = np.pad(it["y"][s:e], ((0, pad), (0, 0)))
            ww = np.pad(it["w"][s:e], (0, pad))
            xb.append(xx)
            yb.append(yy)
            wb.append(ww)
            pb.append(np.pad(it["ph"][s:e], ((0, pad), (0, 0))))
            mb.append(np.pad(it["pm"][s:e], (0, pad)))
        x = torch.from_numpy(np.stack(xb))
        x = x + 0.02 * torch.randn_like(x) * x.std()  # light feature noise
        y = torch.from_numpy(np.stack(yb))
        w = torch.from_numpy(np.stack(wb))
        logits, aux = net(x, with_aux=True)
        logp = torch.log_softmax(logits, -1)
        loss = -((y * logp).sum(-1) * w).sum() / w.sum()
        if a.aux_weight > 0:
            pm = torch.from_numpy(np.stack(mb))
            pt = torch.from_numpy(np.stack(pb))
            se = ((aux - pt) ** 2).sum(-1)
            loss = loss + a.aux_weight * (se * pm).sum() / pm.sum().clamp(min=1.0)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % a.eval_every == 0:
            r = evaluate(net, valid)
            f = r["ALL"]["beat_f"]
            sc = score(r)
            print(f"step {step} {time.time() - tstart:.0f}s lr {lr:.5f} loss {loss.item():.4f} valid beat F {f:.3f} "
                  f"music {r['ALL_MUSIC']['beat_f']:.3f} downbeat {r['ALL_MUSIC']['downbeat_f']:.3f}", flush=True)
            if a.snapshots:
                export(net, f"{a.out}.step{step}", meta)
            if sc > best:
                best = sc
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
                export(net, a.out, meta)
    if best_state is not None:
        net.load_state_dict(best_state)
    export(net, a.out, meta)
    print(f"trained {step} steps in {(time.time() - tstart) / 60:.1f} min; best valid score ({a.select}) {best:.3f}")
    print(table("valid", evaluate(net, valid)))
    print(table("heldout", evaluate(net, held)))


if __name__ == "__main__":
    main()
