"""Train GoDP with the paper's 3-stage x 3-epoch schedule (section 4, Tables 2-6).

    python -m training.godp --out runs/godp            # start or resume
    python -m training.godp --out runs/godp --stages 1,2  # stop after stage 2
    python -m training.godp export --out runs/godp      # write the shipped weights

* Stage 1 (epochs 1-3): the three shallow losses SL, P-DSL1, P-DSL2 (Table 2, 3, 5).
* Stage 2 (epochs 4-6): all five losses, degraded DSL (SL form) everywhere.
* Stage 3 (epochs 7-9): DSL (Eq. 7b) for P-DSL1/R-DSL1/P-DSL2/R-DSL2; the last two losses
  supervise every landmark with known coordinates, occluded ones included (GoDP(A)).
* SGD with momentum; the learning rate decays from ``lr_start`` (1e-3) to ``lr_end`` (1e-7)
  along a cosine over the nine epochs. Yaw subspace from the ground-truth yaw.
* Data: ``aflw_crops`` minus the fixed validation 10 % (``splits/aflw_crops_val.txt``), plus
  any extra landmark sets given with ``--extra DIR`` (face-profiling renders). The evaluation
  sets (splits/splits.json) are never read here.

Checkpoints (``last.pt``, every ``--ckpt-every`` iterations and at each epoch end) hold the
model, the optimiser and the position in the schedule; runs resume exactly where they
stopped. Metrics go to ``metrics.jsonl`` and the log to ``train.log`` in the run folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from facedata.paths import data_root
from facedata.readers import read_annotations
from facedata.splits import aflw_validation_images
from landmarks.godp.data import map_to_input
from landmarks.godp.decode import decode
from landmarks.godp.losses import PAPER_SCHEDULE, Targets, dsl_loss, mpk_mpb
from landmarks.godp.network import GoDP, GodpConfig
from landmarks.godp.weights import WEIGHTS_DIR, read_manifest
from pipeline.manifest import record, write_manifest
from training.godp_data import AugmentConfig, LandmarkSet, load_landmark_set, make_batch, nme_in_crop, visible_box_size

log = logging.getLogger("training.godp")

DEFAULT_AFLW = data_root() / "aflw_crops"


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run folder)."""

    width: float = 0.1875
    K: int = 3
    variant: str = "godp"
    batch: int = 32
    epochs_per_stage: tuple[int, int, int] = (3, 3, 3)
    lr_start: float = 1e-3
    lr_end: float = 1e-7
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    threads: int = 2
    aflw_root: str = str(DEFAULT_AFLW)
    extra: list[str] = field(default_factory=list)
    extra_limit: int = 0  # at most this many faces from the extra sets (0: all), a fixed random subset
    extra_skip: list[str] = field(default_factory=lambda: ["orl", "gt"])  # render sources kept out (eval sets)
    val_limit: int = 1394
    ckpt_every: int = 100
    augment: dict = field(default_factory=lambda: asdict(AugmentConfig()))

    @property
    def total_epochs(self) -> int:
        return sum(self.epochs_per_stage)

    def stage_of(self, epoch: int) -> int:
        acc = 0
        for s, n in enumerate(self.epochs_per_stage, 1):
            acc += n
            if epoch < acc:
                return s
        return len(self.epochs_per_stage)


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Cosine decay from lr_start to lr_end over ``total`` steps."""
    t = min(step / max(total, 1), 1.0)
    return cfg.lr_end + 0.5 * (cfg.lr_start - cfg.lr_end) * (1 + math.cos(math.pi * t))


def to_targets(p, v, k, s) -> Targets:
    return Targets(torch.from_numpy(p), torch.from_numpy(v), torch.from_numpy(k), torch.from_numpy(s))


@torch.no_grad()
def evaluate(model: GoDP, ds: LandmarkSet, cfg: TrainConfig, batch: int = 64) -> dict:
    """NME-vis (percent of the visible-point box, the aflw_crops convention) per |yaw| bin on
    the unperturbed ROI, plus MPK/MPB of the final maps."""
    model.eval()
    aug = AugmentConfig(**cfg.augment)
    preds, gts, viss, mpks, mpbs = [], [], [], [], []
    for a in range(0, len(ds), batch):
        idx = np.arange(a, min(a + batch, len(ds)))
        x, p, v, k, s = make_batch(ds, idx, None, aug, cfg.K)
        out = model(torch.from_numpy(x), stage=3)[-1]
        pts, _, _ = decode(out, cfg.K, model.cfg.L)
        mk, mb = mpk_mpb(out, to_targets(p, v, k, s), model.cfg.L, cfg.K)
        mpks.append(mk)
        mpbs.append(mb)
        preds.append(map_to_input(pts.numpy()))
        gts.append(map_to_input(np.nan_to_num(p)))
        viss.append(v)
    pred, gt, vis = np.concatenate(preds), np.concatenate(gts), np.concatenate(viss)
    norm = visible_box_size(gt, vis)
    nme = nme_in_crop(pred, gt, vis, norm)
    ay = np.abs(ds.yaw)
    res = {"nme_vis": float(np.nanmean(nme)), "mpk": float(np.nanmean(mpks)), "mpb": float(np.nanmean(mpbs))}
    bins = []
    for lo, hi in ((0, 30), (30, 60), (60, 91)):
        sel = (ay >= lo) & (ay < hi)
        res[f"nme_vis_{lo}_{min(hi, 90)}"] = float(np.nanmean(nme[sel])) if sel.any() else float("nan")
        bins.append(res[f"nme_vis_{lo}_{min(hi, 90)}"])
    res["nme_vis_balanced"] = float(np.mean(bins))
    model.train()
    return res


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(
    cfg: TrainConfig,
    out: Path,
    stages: set[int],
    max_iters: int | None = None,
    schedule: tuple[int, int, int] | None = None,
    augment_update: dict | None = None,
) -> None:
    """Train (or resume) the run in ``out``. ``augment_update``: augmentation keys to set (e.g.
    ``p_lowres``), for a new run or a resumed one. A resumed run keeps its saved configuration except
    for ``cfg.extra``, ``cfg.threads``, ``schedule``, ``augment_update``, and ``cfg.aflw_root`` when the
    saved AFLW folder no longer exists (the data root moved)."""
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg_path = out / "config.json"
    if cfg_path.exists():  # a resumed run keeps the configuration it started with
        saved = json.loads(cfg_path.read_text())
        saved["epochs_per_stage"] = tuple(saved["epochs_per_stage"])
        changed = {}
        if cfg.extra and cfg.extra != saved.get("extra"):  # renders may join a resumed run
            changed.update(extra=list(cfg.extra), extra_limit=cfg.extra_limit)
        if augment_update and any(saved["augment"].get(k) != v for k, v in augment_update.items()):
            changed["augment"] = {**saved["augment"], **augment_update}  # e.g. --p-lowres on a resumed run
        if not Path(saved["aflw_root"], "annotations.jsonl").exists() and Path(cfg.aflw_root).exists():
            changed["aflw_root"] = cfg.aflw_root  # the same crops under another data root (--aflw / $GODP_DATA)
        if cfg.threads != saved.get("threads"):  # speed only
            changed["threads"] = cfg.threads
        if schedule is not None and tuple(schedule) != saved["epochs_per_stage"]:
            changed["epochs_per_stage"] = tuple(schedule)  # the cosine continues over the new total
        if changed:
            log.info("changing the resumed run's configuration: %s", changed)
            saved.update(changed)
            cfg_path.write_text(json.dumps(saved, indent=2))
        cfg = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__})
        log.info("using the saved configuration %s", cfg_path)
    else:
        cfg.augment = {**cfg.augment, **(augment_update or {})}
        cfg_path.write_text(json.dumps(asdict(cfg), indent=2))
    val_names = aflw_validation_images()
    train_sets = [load_landmark_set(cfg.aflw_root, exclude=val_names, full_frame=True, desc="aflw train")]
    for extra in cfg.extra:
        names = [
            r["image"]
            for r in read_annotations(Path(extra))
            if not any(f"/{s}/" in f"/{r['image']}" for s in cfg.extra_skip)
        ]
        if cfg.extra_limit and len(names) > cfg.extra_limit:
            names = list(np.random.default_rng(cfg.seed).choice(names, cfg.extra_limit, replace=False))
        log.info(
            "extra set %s: %d faces used (skipping sources %s, limit %s)",
            extra,
            len(names),
            cfg.extra_skip,
            cfg.extra_limit or "none",
        )
        train_sets.append(load_landmark_set(extra, names=set(names), full_frame=False, desc=f"extra {extra}"))
    val = load_landmark_set(cfg.aflw_root, names=val_names, full_frame=True, desc="aflw val")
    val = val.subset(np.arange(min(cfg.val_limit, len(val))))
    ds = concat_sets(train_sets)
    log.info(
        "train faces %d (aflw %d, extra %d), val faces %d",
        len(ds),
        len(train_sets[0]),
        len(ds) - len(train_sets[0]),
        len(val),
    )

    model = GoDP(GodpConfig(width=cfg.width, K=cfg.K, variant=cfg.variant))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr_start, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    iters_per_epoch = len(ds) // cfg.batch
    total = iters_per_epoch * cfg.total_epochs
    epoch, it = 0, 0
    ck = out / "last.pt"
    if ck.exists():
        state = torch.load(ck, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        epoch, it = int(state["epoch"]), int(state["iter"])
        log.info("resumed from %s at epoch %d iteration %d", ck, epoch + 1, it)
    aug = AugmentConfig(**cfg.augment)
    metrics = open(out / "metrics.jsonl", "a")
    model.train()
    n_done = 0
    while epoch < cfg.total_epochs:
        stage = cfg.stage_of(epoch)
        if stage not in stages:
            log.info("stage %d not requested; stopping before epoch %d", stage, epoch + 1)
            break
        # the plain ablation has one output, trained with SL (Table 2) in every stage
        params = PAPER_SCHEDULE[stage] if cfg.variant == "godp" else PAPER_SCHEDULE[1][:1]
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(ds))
        t0, seen, run_loss = time.time(), 0, []
        from tqdm import tqdm

        bar = tqdm(
            range(it, iters_per_epoch),
            desc=f"epoch {epoch + 1}/{cfg.total_epochs} (stage {stage})",
            unit="it",
            file=sys.stderr,
            mininterval=30,
        )
        for it in bar:
            step = epoch * iters_per_epoch + it
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step, total)
            rng = np.random.default_rng([cfg.seed, epoch, it])
            idx = perm[it * cfg.batch : (it + 1) * cfg.batch]
            x, p, v, k, s = make_batch(ds, idx, rng, aug, cfg.K)
            t = to_targets(p, v, k, s)
            outs = model(torch.from_numpy(x), stage=stage)
            gen = torch.Generator().manual_seed(int(step))
            losses = [dsl_loss(o, t, lp, model.cfg.L, generator=gen) for o, lp in zip(outs, params)]
            loss = sum(losses)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
            run_loss.append([float(loss.detach()) for loss in losses])
            n_done += 1
            if (it + 1) % 25 == 0:
                ml = np.mean(run_loss, 0)
                rate = seen / (time.time() - t0)
                bar.set_postfix(loss=f"{ml.sum():.2f}", ips=f"{rate:.1f}")
                metrics.write(
                    json.dumps(
                        {
                            "epoch": epoch + 1,
                            "iter": it + 1,
                            "stage": stage,
                            "lr": opt.param_groups[0]["lr"],
                            "losses": [round(x, 4) for x in ml],
                            "img_per_s": round(rate, 2),
                        }
                    )
                    + "\n"
                )
                metrics.flush()
                run_loss = []
            if (it + 1) % cfg.ckpt_every == 0:
                atomic_save(
                    {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch, "iter": it + 1}, ck
                )
            if max_iters is not None and n_done >= max_iters:
                atomic_save(
                    {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch, "iter": it + 1}, ck
                )
                log.info("stopping after %d iterations (--max-iters)", n_done)
                return
        epoch, it = epoch + 1, 0
        res = evaluate(model, val, cfg)
        res.update(epoch=epoch, stage=stage, minutes=round((time.time() - t0) / 60, 2))
        log.info("epoch %d done: %s", epoch, json.dumps(res))
        metrics.write(json.dumps({"val": res}) + "\n")
        metrics.flush()
        atomic_save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch, "iter": 0}, ck)
        atomic_save({"model": model.state_dict(), "epoch": epoch}, out / f"epoch{epoch}.pt")


def concat_sets(sets: list[LandmarkSet]) -> LandmarkSet:
    if len(sets) == 1:
        return sets[0]
    return LandmarkSet(
        sum((s.images for s in sets), []),
        np.concatenate([s.rois for s in sets]),
        np.concatenate([s.points for s in sets]),
        np.concatenate([s.visible for s in sets]),
        np.concatenate([s.known for s in sets]),
        np.concatenate([s.yaw for s in sets]),
        sum((s.names for s in sets), []),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.godp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "command",
        nargs="?",
        default="train",
        choices=["train", "export"],
        help="train (default; resumes from OUT/last.pt) or export the shipped weights",
    )
    ap.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, config)")
    ap.add_argument("--width", type=float, default=TrainConfig.width, help="channel multiplier (paper: 1.0)")
    ap.add_argument("--K", type=int, default=3, help="yaw subspaces (paper: 3)")
    ap.add_argument(
        "--variant",
        default="godp",
        choices=["godp", "plain"],
        help="godp (both pathways, DSL) or plain (Table 7 ablation: DeconvNet + SL)",
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--stages", default="1,2,3", help="stages to run, e.g. 1,2 to stop before stage 3")
    ap.add_argument("--extra", action="append", default=[], help="extra landmark set folder (renders); repeatable")
    ap.add_argument(
        "--extra-limit", type=int, default=0, help="use at most N faces of the extra sets (fixed random subset; 0: all)"
    )
    ap.add_argument(
        "--epochs-per-stage",
        default=None,
        help="e.g. 3,2,2: epochs of stages 1-3 (default 3,3,3 as in the paper); may shorten a "
        "resumed run, the learning-rate cosine then continues over the new total",
    )
    ap.add_argument("--aflw", default=str(DEFAULT_AFLW), help="aflw_crops folder")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (also changes a resumed run's)")
    ap.add_argument(
        "--p-lowres",
        type=float,
        default=None,
        help="probability of the low-resolution augmentation (shrink the 160 px crop to 35-80 %% and "
        "enlarge it back: small faces); also joins a resumed run (default: the run's own, 0 for new runs)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr_start, help="initial learning rate (paper: 1e-3)")
    ap.add_argument("--max-iters", type=int, default=None, help="stop after N iterations (pilot runs)")
    ap.add_argument("--epoch", type=int, default=None, help="export: which epoch checkpoint (default: last)")
    ap.add_argument("--dest", type=Path, default=None, help="export: weights file to write")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(a.out / "train.log")],
    )
    if a.command == "export":
        export_checkpoint(a.out, a.epoch, a.dest)
        return 0
    if not Path(a.aflw, "annotations.jsonl").exists():
        log.error("no AFLW crops at %s: pass --aflw DIR (a SPEC landmark set)", a.aflw)
        return 2
    cfg = TrainConfig(
        width=a.width,
        K=a.K,
        variant=a.variant,
        batch=a.batch,
        aflw_root=a.aflw,
        extra=a.extra,
        extra_limit=a.extra_limit,
        threads=a.threads,
        seed=a.seed,
        lr_start=a.lr,
    )
    if a.p_lowres is not None:
        if not 0.0 <= a.p_lowres <= 1.0:
            log.error("--p-lowres is a probability in [0, 1], got %s", a.p_lowres)
            return 2
    augment_update = None if a.p_lowres is None else {"p_lowres": a.p_lowres}
    schedule = tuple(int(x) for x in a.epochs_per_stage.split(",")) if a.epochs_per_stage else None
    if schedule is not None:
        if len(schedule) != 3 or min(schedule) < 1:
            log.error("--epochs-per-stage needs three positive integers, got %s", a.epochs_per_stage)
            return 2
        cfg.epochs_per_stage = schedule
    train(cfg, a.out, {int(s) for s in a.stages.split(",")}, a.max_iters, schedule, augment_update)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# -- export ----------------------------------------------------------------------------------
def calibrate_visibility(run: Path, state_dict: dict, arch: dict) -> tuple[float, float]:
    """Peak-probability threshold that best separates visible from occluded points (balanced
    accuracy) on the AFLW-crops validation split, from the unperturbed ROI."""
    import numpy as np

    from facedata.splits import aflw_validation_images
    from landmarks.godp.decode import decode

    cfg = json.loads((run / "config.json").read_text())
    model = GoDP(GodpConfig(**arch))
    model.load_state_dict(state_dict)
    model.eval()
    val = load_landmark_set(cfg["aflw_root"], names=aflw_validation_images(), full_frame=True, desc="calibrating")
    scores, vis = [], []
    with torch.no_grad():
        for a in range(0, len(val), 64):
            idx = np.arange(a, min(a + 64, len(val)))
            x, _, _, _, _ = make_batch(val, idx, None, AugmentConfig(), arch["K"])
            _, sc, _ = decode(model(torch.from_numpy(x))[-1], arch["K"], model.cfg.L)
            scores.append(sc.numpy())
            vis.append(val.visible[idx])
    s, v = np.concatenate(scores).ravel(), np.concatenate(vis).ravel()
    best = (0.0, 0.5)
    for t in np.quantile(s, np.linspace(0.01, 0.99, 99)):
        acc = 0.5 * ((s[v] >= t).mean() + (s[~v] < t).mean())
        if acc > best[0]:
            best = (float(acc), float(t))
    return best[1], best[0]


def export_checkpoint(run: Path, epoch: int | None = None, dest: Path | None = None) -> Path:
    """Write the model of ``run/last.pt`` (or ``run/epoch{N}.pt``) as safetensors into the
    weights folder (or as ``dest``) and record it in that folder's manifest (as the new default;
    a record of :func:`pipeline.manifest.record`: ``config`` the architecture, ``data`` the
    training configuration, ``figures`` the validation figures of the epoch)."""
    from safetensors.torch import save_file

    src = run / ("last.pt" if epoch is None else f"epoch{epoch}.pt")
    state = torch.load(src, map_location="cpu", weights_only=True)
    cfg = json.loads((run / "config.json").read_text())
    arch = {"width": cfg["width"], "K": cfg["K"], "variant": cfg.get("variant", "godp")}
    ep = int(state["epoch"])
    dest = dest or WEIGHTS_DIR / f"{arch['variant']}_w{cfg['width']}_k{cfg['K']}.safetensors"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in state["model"].items()}
    tmp = dest.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"epoch": str(ep)})
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)
    val = None
    mpath = run / "metrics.jsonl"
    if mpath.exists():
        for line in mpath.read_text().splitlines():
            rec = json.loads(line)
            if "val" in rec and rec["val"].get("epoch") == ep:
                val = rec["val"]
    vis_thr, vis_acc = calibrate_visibility(run, state["model"], arch)
    man = read_manifest(dest.parent)
    man["files"][dest.name] = record(
        dest,
        config=arch,
        command=f"python -m training.godp --out {run} --width {cfg['width']} --K {cfg['K']}",
        data=cfg,
        figures={**(val or {}), "visibility_balanced_accuracy_val": vis_acc},
        visibility_threshold=vis_thr,
        epoch=ep,
        iter_in_epoch=int(state.get("iter", 0)),
        bytes=dest.stat().st_size,
    )
    if arch["variant"] == "godp":
        man["default"] = dest.name
    write_manifest(dest.parent, man)
    log.info("exported epoch %d of %s to %s", ep, run, dest)
    return dest
