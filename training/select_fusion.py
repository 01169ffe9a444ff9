"""Select the 2D / frontalised fusion of ``resnet-3d`` on CFP training subjects (validation 101-125).

    python -m training.pose_chips --subjects 101-125 --frontal --out runs/pose_chips/cfp_101-125_frontal.npz
    python -m training.select_fusion --val runs/pose_chips/cfp_101-125_frontal.npz \\
        [--train runs/pose_chips/cfp_001-125.npz] [--json F]

Gallery: each validation subject's frontal/01 chip; probes: the other frontal and the profile chips.
Every template is made from the shipped dlib ResNet (torch port) on the aligned 2D chip ``e_2d`` and the
chip of the face frontalised through the 3D fit ``e_f`` (what ``resnet-3d`` embeds), optionally
averaged with the embedding of the mirrored chip (``flip``), fused as ``[sqrt(w) e_2d, sqrt(1-w) e_f]``.
Prints rank-1 of profile and frontal probes for each (flip 2D, flip frontal, w). With ``--train``
(chips of subjects outside the validation set) also a baseline for learning pose in embedding
space: a ridge map from the training subjects' profile embeddings to their frontal prototype,
applied to the validation profiles (``mix`` = share of the mapped embedding).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from pipeline.cli import guarded_main, write_json
from pipeline.errors import ConfigError

log = logging.getLogger("training.select_fusion")
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _embed(chips: np.ndarray, net) -> tuple[np.ndarray, np.ndarray]:
    """(plain, mirrored) unit embeddings (N, 128) of (N, 150, 150, 3) uint8 chips."""
    from descriptors.dlib_torch import embed_chips

    return _unit(embed_chips(chips, net)), _unit(embed_chips(np.ascontiguousarray(chips[:, :, ::-1]), net))


def rank1(v: np.ndarray, subject: np.ndarray, gallery: np.ndarray, probes: np.ndarray) -> float:
    """Rank-1 (%) of the ``probes`` rows against the ``gallery`` rows (boolean masks) by dot product."""
    best = (v[probes] @ v[gallery].T).argmax(1)
    return 100.0 * float(np.mean(subject[gallery][best] == subject[probes]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.select_fusion",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--val", type=Path, required=True, help="chips of the validation subjects, with frontal chips")
    ap.add_argument("--train", type=Path, default=None, help="chips of other training subjects (ridge baseline)")
    ap.add_argument("--json", default=None, help="write the table here")
    ap.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    import torch

    from descriptors.dlib_torch import load_dlib_torch
    from facedata.splits import cfp_subjects

    torch.set_num_threads(a.threads)
    z = dict(np.load(a.val))
    if "frontal_chips" not in z:
        raise ConfigError(f"{a.val} has no frontal chips: make it with python -m training.pose_chips --frontal")
    subject, view, paths = z["subject"].astype(str), z["view"].astype(str), z["path"].astype(str)
    if set(subject) - set(cfp_subjects("train")):
        raise ConfigError(f"{a.val} holds CFP evaluation subjects: never select on them")
    net = load_dlib_torch()
    e2, e2m = _embed(z["chips"], net)
    ef, efm = _embed(z["frontal_chips"], net)
    ef, efm = ef * z["frontal_ok"][:, None], efm * z["frontal_ok"][:, None]
    gal = np.array(["/frontal/01." in p for p in paths])
    prof, front = (view == "profile") & ~gal, (view == "frontal") & ~gal
    rows = []
    print(f"{'flip 2d':>8}{'flip fr':>8}{'w':>5}{'profile':>9}{'frontal':>9}")
    for f2 in (False, True):
        for ff in (False, True):
            a2 = _unit(e2 + e2m) if f2 else e2
            af = _unit(efm + ef) if ff else ef
            for w in WEIGHTS:
                v = np.concatenate([np.sqrt(w) * a2, np.sqrt(1 - w) * af], axis=1)
                r = {"flip_2d": f2, "flip_frontal": ff, "w": w}
                r.update(profile=rank1(v, subject, gal, prof), frontal=rank1(v, subject, gal, front))
                rows.append(r)
                print(f"{f2!s:>8}{ff!s:>8}{w:>5}{r['profile']:>8.1f}%{r['frontal']:>8.1f}%")
    out: dict = {
        "val": str(a.val),
        "gallery": int(gal.sum()),
        "profile_probes": int(prof.sum()),
        "frontal_probes": int(front.sum()),
        "fusion": rows,
        "2d_only": {"profile": rank1(e2, subject, gal, prof), "frontal": rank1(e2, subject, gal, front)},
    }
    if a.train is not None:
        t = dict(np.load(a.train))
        ts, tv = t["subject"].astype(str), t["view"].astype(str)
        keep = ~np.isin(ts, sorted(set(subject)))
        if set(ts[keep]) - set(cfp_subjects("train")):
            raise ConfigError(f"{a.train} holds CFP evaluation subjects")
        te, tem = _embed(t["chips"][keep], net)
        ts, tv = ts[keep], tv[keep]
        protos = {s: _unit(te[(ts == s) & (tv == "frontal")].mean(0, keepdims=True))[0] for s in set(ts)}
        p = tv == "profile"
        x = np.concatenate([te[p], tem[p]])
        y = np.concatenate([np.stack([protos[s] for s in ts[p]])] * 2)
        out["ridge"] = []
        for lam in (0.01, 0.1, 1.0, 10.0):
            m = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
            for mix in (1.0, 0.5):
                v = e2.copy()
                v[prof] = _unit(mix * _unit(e2[prof] @ m) + (1 - mix) * e2[prof])
                r = {"lambda": lam, "mix": mix, "profile": rank1(v, subject, gal, prof)}
                out["ridge"].append(r)
                base = out["2d_only"]["profile"]
                print(f"ridge lambda {lam:g} mix {mix:g}: profile {r['profile']:.1f}% (2D only {base:.1f}%)")
    if a.json:
        write_json(out, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(guarded_main(main))
