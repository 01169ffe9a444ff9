"""Teach the dlib ResNet (torch port) pose: fine-tune its last blocks so that a profile view of a face
maps next to the frontal views of the same person, while frontal embeddings stay where they were.

    python -m training.pose_chips                           # chips of CFP 001-125 (~30 min, once)
    python -m training.pose_resnet --out runs/pose_resnet   # model selection on held-out subjects 101-125
    python -m training.pose_resnet --out runs/pose_resnet_final --val-subjects none --epochs E \\
        --export descriptors/data/dlib_resnet_pose_v1.safetensors

Data: the aligned chips of :mod:`training.pose_chips` (CFP training subjects only; evaluation subjects
126-250 are refused) and their mirror images. The network is split at block ``--cut`` (of 14): the
frozen part (stem and blocks before the cut) is run once per chip; blocks ``cut..13`` and the final
fc layer are trained. With the frozen teacher ``T`` (the shipped dlib ResNet), the student ``S``, the
L2-normalised embeddings ``s = S(x) / |S(x)|`` and the per-subject teacher prototype ``p_j`` (the
normalised mean of ``T`` over subject j's frontal chips), the loss of a batch is

    L = w_ce * CE(scale * (cos(s, W) - m * onehot))        (CosFace [Wang et al. 2018], W init. = p)
      + w_pull * mean_profile(1 - cos(s, p_subject))         (profile -> the subject's frontal prototype)
      + w_keep * mean_frontal(1 - cos(s, T(x) / |T(x)|))     (frontal embeddings keep their place)

The validation subjects (``--val-subjects``, default 101-125, excluded from training) give, after
every epoch, rank-1 of their profile chips against a gallery of one frontal chip each (frontal/01), for
the student and the teacher. Writes ``metrics.jsonl``, ``train.log``, ``config.json`` and the full
network's weights (``last.safetensors``) in ``--out``; ``--export`` also writes them to the
descriptor data folder with a manifest record (sha256, config, command, data, figures).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facedata.paths import runs_path
from facedata.splits import cfp_subjects
from pipeline.cli import guarded_main
from pipeline.errors import ConfigError

log = logging.getLogger("training.pose_resnet")


@dataclass
class PoseTrainConfig:
    chips: str = str(runs_path("pose_chips", "cfp_001-125.npz"))
    val_subjects: str = "101-125"  # "none": train on every subject of the chips
    cut: int = 10  # first trained block (0..13); 10 = the 256-filter blocks
    epochs: int = 20
    batch: int = 64
    lr: float = 1e-3  # relative: a step moves each tensor by about lr x its RMS
    weight_decay: float = 5e-4
    scale: float = 16.0
    margin: float = 0.2
    w_ce: float = 1.0
    w_pull: float = 1.0
    w_keep: float = 1.0
    seed: int = 0
    threads: int = 2
    #: chips of the validation subjects made with ``pose_chips --frontal``: also validate the
    #: resnet-3d-style fusion of the 2D and the frontalised embeddings ("" = none)
    val_frontal: str = ""


class Head(nn.Module):
    """Blocks ``cut..`` and the fc layer of a :class:`descriptors.dlib_torch.DlibResNet`."""

    def __init__(self, net, cut: int):
        super().__init__()
        self.blocks = nn.ModuleList(copy.deepcopy(list(net.blocks[cut:])))
        self.fc = copy.deepcopy(net.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean(dim=(2, 3)))


@torch.no_grad()
def frozen_features(net, chips: np.ndarray, cut: int, batch: int = 64) -> torch.Tensor:
    """The input of block ``cut`` for (N, 150, 150, 3) uint8 chips: (N, C, H, W) float32."""
    out = []
    for i in range(0, len(chips), batch):
        x = torch.from_numpy(np.ascontiguousarray(chips[i : i + batch])).permute(0, 3, 1, 2).float()
        x = F.max_pool2d(F.relu(net.stem(net.normalise(x))), 3, 2)
        for b in net.blocks[:cut]:
            x = b(x)
        out.append(x)
    return torch.cat(out)


@torch.no_grad()
def embed(head: Head, feats: torch.Tensor, batch: int = 256) -> torch.Tensor:
    head.eval()
    return F.normalize(torch.cat([head(feats[i : i + batch]) for i in range(0, len(feats), batch)]), dim=1)


def rank1(emb: torch.Tensor, subject: np.ndarray, view: np.ndarray, paths: np.ndarray) -> dict:
    """Rank-1 (%) of profile and frontal probes against a gallery of each subject's frontal/01 chip."""
    gal = np.array(["/frontal/01." in p for p in paths])
    if not gal.any():
        return {}
    g_emb, g_sub = emb[torch.from_numpy(gal)], subject[gal]
    out = {}
    for v in ("profile", "frontal"):
        m = (view == v) & ~gal & np.isin(subject, g_sub)
        if m.any():
            best = (emb[torch.from_numpy(m)] @ g_emb.T).argmax(1).numpy()
            out[f"rank1_{v}"] = round(100.0 * float(np.mean(g_sub[best] == subject[m])), 2)
    out["gallery"] = int(gal.sum())
    return out


def subject_range(spec: str) -> set[str]:
    if spec == "none":
        return set()
    lo, hi = spec.split("-")
    return {f"{i:03d}" for i in range(int(lo), int(hi) + 1)}


def train(cfg: PoseTrainConfig, out: Path, export: Path | None = None) -> dict:
    from descriptors.dlib_torch import load_dlib_torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    z = np.load(cfg.chips)
    chips, subject, view, paths = z["chips"], z["subject"].astype(str), z["view"].astype(str), z["path"].astype(str)
    bad = sorted(set(subject) - set(cfp_subjects("train")))
    if bad:
        raise ConfigError(f"{cfg.chips} holds CFP evaluation subjects ({bad[0]}..): never train on them")
    val_ids = subject_range(cfg.val_subjects)
    va = np.isin(subject, sorted(val_ids))
    tr = ~va
    log.info("%d chips: %d train (%d subjects), %d validation", len(chips), tr.sum(), len(set(subject[tr])), va.sum())
    teacher = load_dlib_torch()
    t0 = time.perf_counter()
    mirrored = np.ascontiguousarray(chips[:, :, ::-1])
    feats = frozen_features(teacher, chips, cfg.cut)
    feats_m = frozen_features(teacher, mirrored, cfg.cut)
    head = Head(teacher, cfg.cut).requires_grad_(True)
    t_emb = embed(head, feats)
    t_emb_m = embed(head, feats_m)
    log.info("frozen features %s in %.0f s", tuple(feats.shape), time.perf_counter() - t0)

    # training arrays: every chip and its mirror image
    idx_tr = np.flatnonzero(tr)
    X = torch.cat([feats[idx_tr], feats_m[idx_tr]])
    T = torch.cat([t_emb[idx_tr], t_emb_m[idx_tr]])
    subs = sorted(set(subject[tr]))
    lab = torch.from_numpy(np.searchsorted(subs, np.concatenate([subject[idx_tr], subject[idx_tr]])))
    is_prof = torch.from_numpy(np.concatenate([view[idx_tr], view[idx_tr]]) == "profile")
    protos = torch.zeros(len(subs), 128)
    protos.index_add_(0, lab[~is_prof], T[~is_prof])
    protos = F.normalize(protos, dim=1)
    W = nn.Parameter(protos.clone())
    # dlib's weights differ in scale by orders of magnitude (conv weights ~1e-3, affine gains ~10):
    # Adam's steps are scaled per tensor by its RMS, so ``lr`` is a relative step size
    groups = [
        {"params": [q], "lr": cfg.lr * max(float(q.detach().pow(2).mean().sqrt()), 1e-6)}
        for q in list(head.parameters()) + [W]
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * int(np.ceil(len(X) / cfg.batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    metrics_path = out / "metrics.jsonl"
    metrics_path.write_text("")

    vf = None
    if cfg.val_frontal:
        zf = np.load(cfg.val_frontal)
        if "frontal_chips" not in zf:
            raise ConfigError(f"{cfg.val_frontal} has no frontal chips: make it with pose_chips --frontal")
        pos = {p: i for i, p in enumerate(paths)}
        rows_f = [i for i, p in enumerate(zf["path"].astype(str)) if p in pos and va[pos[p]]]
        idx = np.array([pos[str(zf["path"][i])] for i in rows_f], int)
        ok = torch.from_numpy(zf["frontal_ok"][rows_f].astype(np.float32))[:, None]
        vf = (idx, frozen_features(teacher, zf["frontal_chips"][rows_f], cfg.cut), ok)
        log.info("fusion validation on %d chips with a frontal render (%d fits failed)", len(idx), int((ok == 0).sum()))

    def fused_rank1(h: Head, tag: str, row: dict) -> None:
        assert vf is not None
        idx, ffeat, ok = vf
        e2d, efr = embed(h, feats[idx]), embed(h, ffeat) * ok
        for w in (0.3, 0.5, 0.7):
            v = torch.cat([w**0.5 * e2d, (1 - w) ** 0.5 * efr], dim=1)
            row[f"{tag}_fused_w{w:g}"] = rank1(v, subject[idx], view[idx], paths[idx])
        row[f"{tag}_frontalised"] = rank1(efr, subject[idx], view[idx], paths[idx])

    def evaluate(epoch: int, tot: dict) -> dict:
        row: dict = {"epoch": epoch, **{k: round(v, 5) for k, v in tot.items()}}
        if vf is not None:
            if epoch == 0:
                fused_rank1(Head(teacher, cfg.cut), "teacher", row)
            fused_rank1(head, "student", row)
        if va.any():
            s = embed(head, feats[va])
            s_flip = F.normalize(s + embed(head, feats_m[va]), dim=1)
            row["student"] = rank1(s, subject[va], view[va], paths[va])
            row["student_flip"] = rank1(s_flip, subject[va], view[va], paths[va])
            if epoch == 0:
                row["teacher"] = rank1(t_emb[va], subject[va], view[va], paths[va])
                t_flip = F.normalize(t_emb[va] + t_emb_m[va], dim=1)
                row["teacher_flip"] = rank1(t_flip, subject[va], view[va], paths[va])
            keep = float((s * t_emb[va]).sum(1)[torch.from_numpy(view[va] == "frontal")].mean())
            row["val_frontal_cos_to_teacher"] = round(keep, 4)
        with open(metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("%s", row)
        return row

    evaluate(0, {})
    g = torch.Generator().manual_seed(cfg.seed)
    row: dict = {}
    for ep in range(cfg.epochs):
        head.train()
        tot = {"loss": 0.0, "ce": 0.0, "pull": 0.0, "keep": 0.0}
        perm = torch.randperm(len(X), generator=g)
        for a in range(0, len(perm), cfg.batch):
            i = perm[a : a + cfg.batch]
            s = F.normalize(head(X[i]), dim=1)
            cos = s @ F.normalize(W, dim=1).T
            y = lab[i]
            ce = F.cross_entropy(cfg.scale * (cos - cfg.margin * F.one_hot(y, len(subs))), y)
            p = is_prof[i]
            pull = (1 - (s[p] * protos[y[p]]).sum(1)).mean() if p.any() else s.sum() * 0
            keep = (1 - (s[~p] * T[i][~p]).sum(1)).mean() if (~p).any() else s.sum() * 0
            loss = cfg.w_ce * ce + cfg.w_pull * pull + cfg.w_keep * keep
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            n = len(i) / len(X)
            for k, v in (("loss", loss), ("ce", ce), ("pull", pull), ("keep", keep)):
                tot[k] += float(v.detach()) * n
        row = evaluate(ep + 1, tot)
    net = copy.deepcopy(teacher)
    for k, b in enumerate(head.blocks):
        net.blocks[cfg.cut + k] = b
    net.fc = head.fc
    from pipeline import manifest

    sha = manifest.save_state_dict(net, out / "last.safetensors")
    log.info("wrote %s (sha256 %s)", out / "last.safetensors", sha)
    if export is not None:
        _export(net, cfg, export, row)
    return row


def _export(net, cfg: PoseTrainConfig, dest: Path, last: dict) -> None:
    from pipeline import manifest

    sha = manifest.save_state_dict(net, dest)
    folder = dest.parent
    man = manifest.read_manifest(folder, what="descriptor parameters", empty={"default": None, "files": {}})
    cmd = " ".join(["python -m training.pose_resnet", *sys.argv[1:]])
    rec = manifest.record(dest, command=cmd, config=asdict(cfg), figures=last, sha256=sha, bytes=dest.stat().st_size)
    del rec["file"]
    rec["data"] = "aligned chips of CFP training subjects 001-125 (python -m training.pose_chips) and their mirrors"
    man["files"][dest.name] = rec
    manifest.write_manifest(folder, man)
    log.info("exported %s (sha256 %s)", dest, sha)


def main(argv: list[str] | None = None) -> int:
    d = PoseTrainConfig()
    ap = argparse.ArgumentParser(
        prog="python -m training.pose_resnet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=runs_path("pose_resnet"), help="run folder [runs/pose_resnet]")
    ap.add_argument("--export", type=Path, default=None, help="also write the weights here, with a manifest record")
    for f, v in asdict(d).items():
        ap.add_argument("--" + f.replace("_", "-"), type=type(v), default=v, help=f"[{v}]")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(a.out / "train.log")],
    )
    cfg = PoseTrainConfig(**{f: getattr(a, f) for f in asdict(d)})
    if not Path(cfg.chips).exists():
        raise ConfigError(f"no chips at {cfg.chips}: run python -m training.pose_chips first")
    if not 0 <= cfg.cut <= 13:
        raise ConfigError("--cut must be in 0..13")
    train(cfg, a.out, a.export)
    return 0


if __name__ == "__main__":
    sys.exit(guarded_main(main))
