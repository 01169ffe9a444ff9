"""Shipped GoDP weights: export from a training run, and verified loading.

Weights live in ``landmarks/godp/weights/`` as safetensors files (no pickle), listed in
``MANIFEST.json`` with their sha256, the architecture config, the training command, the
epoch and the validation figures. :func:`load_model` refuses a file whose sha256 differs.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from landmarks.godp.network import GoDP, GodpConfig
from pipeline.errors import ModelFileError
from pipeline.modelfiles import sha256_file, verify_file

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "MANIFEST.json"


def read_manifest() -> dict:
    if not MANIFEST.exists():
        return {"default": None, "files": {}}
    return json.loads(MANIFEST.read_text())


def load_model(name: str | None = None) -> GoDP:
    """Build GoDP and load the shipped weights ``name`` (default: the manifest's default)."""
    from safetensors.torch import load_file

    man = read_manifest()
    name = name or man.get("default")
    if not name or name not in man["files"]:
        raise ModelFileError(
            "no trained GoDP weights are shipped in landmarks/godp/weights (see MANIFEST.json); "
            "train them with `python -m landmarks.godp.train` or use --landmarker dlib")
    entry = man["files"][name]
    path = verify_file(WEIGHTS_DIR / name, entry["sha256"], "GoDP weights")
    cfg = GodpConfig(**entry["config"])
    model = GoDP(cfg)
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(f"GoDP weights {path} do not fit the network (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    model.eval()
    model.visibility_threshold = entry.get("visibility_threshold", 0.05)
    model.weights_sha256 = entry["sha256"]
    return model


def calibrate_visibility(run: Path, state_dict: dict, arch: dict) -> tuple[float, float]:
    """Peak-probability threshold that best separates visible from occluded points (balanced
    accuracy) on the AFLW-crops validation split, from the unperturbed ROI."""
    import numpy as np

    from landmarks.godp.data import AugmentConfig, load_landmark_set, make_batch
    from landmarks.godp.decode import decode
    from pipeline.splits import aflw_validation_images

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
    weights folder and record it in the manifest (as the new default)."""
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
    man = read_manifest()
    man["files"][dest.name] = {
        "visibility_threshold": vis_thr, "visibility_balanced_accuracy_val": vis_acc,
        "sha256": sha256_file(dest), "config": arch, "epoch": ep, "iter_in_epoch": int(state.get("iter", 0)),
        "train_config": cfg,
        "command": f"python -m landmarks.godp.train --out {run} --width {cfg['width']} --K {cfg['K']}",
        "validation": val, "bytes": dest.stat().st_size,
    }
    if arch["variant"] == "godp":
        man["default"] = dest.name
    tmpm = MANIFEST.with_suffix(".tmp")
    tmpm.write_text(json.dumps(man, indent=2) + "\n")
    os.replace(tmpm, MANIFEST)
    log.info("exported epoch %d of %s to %s", ep, run, dest)
    return dest
