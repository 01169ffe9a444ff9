"""Ablation of GoDP training runs (Table 7 / Table 8 style): several run folders, one table.

    python -m training.godp --out runs/abl_plain --variant plain --width 0.125 --max-iters 400 --threads 1
    python -m training.godp --out runs/abl_godp  --variant godp  --width 0.125 --max-iters 400 --threads 1
    python benchmarks/godp_ablation.py runs/abl_plain runs/abl_godp --json runs/bench/ablation.json

Each run folder's ``last.pt`` (the same training budget: iterations x batch) is evaluated from the
annotation boxes of a SPEC landmark set (default: the AFLW2000-3D dev half, 1,000 real faces) on the
single unperturbed ROI (``GodpLandmarker`` with one ROI), with the metrics of
``benchmarks/landmarks_nme.py``: NME-vis per abs(yaw) bin, balanced, faces above 10 %, and MPK / MPB
(mean probability at the key-point pixels of a landmark's summed maps / of the background class at
the other pixels, Table 7).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.landmarks_nme import godp_mpk_mpb, load_annotations, run_landmarker, summarise
from facedata.paths import data_root
from landmarks.godp.infer import GodpLandmarker
from landmarks.godp.network import GoDP, GodpConfig
from landmarks.metrics import YAW_BINS, yaw_bin_label
from pipeline.cli import write_json
from pipeline.imageio import load_image

DEFAULT_DATA = data_root() / "aflw2000_3d_dev"


def load_run(run: Path) -> tuple[GoDP, dict]:
    cfg = json.loads((run / "config.json").read_text())
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    model = GoDP(GodpConfig(width=cfg["width"], K=cfg["K"], variant=cfg.get("variant", "godp")))
    model.load_state_dict(state["model"])
    model.eval()
    info = {
        "variant": cfg.get("variant", "godp"),
        "width": cfg["width"],
        "K": cfg["K"],
        "batch": cfg["batch"],
        "epoch": int(state["epoch"]),
        "iter": int(state["iter"]),
        "params": int(sum(p.numel() for p in model.parameters())),
    }
    return model, info


def evaluate(model: GoDP, rows: list[dict], images: list) -> dict:
    """NME-vis per yaw bin, balanced, all, faces > 10 % and MPK / MPB of ``model`` on one ROI per face."""
    lm = GodpLandmarker(model=model, n_rois=1)
    preds, _, times = run_landmarker(lm, tqdm(images, desc="faces", unit="face"), rows, [tuple(r["box"]) for r in rows])
    s = summarise(rows, preds, times)
    bins = {yaw_bin_label(lo, hi): s[f"nme_vis_{yaw_bin_label(lo, hi)}"] for lo, hi in YAW_BINS}
    return {
        "nme_vis": bins,
        "balanced": s["nme_vis_balanced"],
        "all": s["nme_vis"],
        "over10": s["faces_over_10"],
        "faces": s["faces"],
        **godp_mpk_mpb(model, images, rows),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="training run folders (config.json + last.pt)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SPEC landmark set [aflw2000_3d_dev]")
    ap.add_argument("--limit", type=int, default=0, help="only the first N faces of each abs(yaw) bin (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    for run in a.runs:
        if not (run / "last.pt").exists() or not (run / "config.json").exists():
            print(f"error: {run}: no last.pt/config.json (not a training run folder)", file=sys.stderr)
            return 2
    if not (a.data / "annotations.jsonl").exists():
        print(f"error: {a.data}/annotations.jsonl not found; pass --data DIR", file=sys.stderr)
        return 2
    rows = [r for r in load_annotations(a.data, a.limit or None) if r.get("yaw") is not None]
    images = [load_image(a.data / r["image"]) for r in tqdm(rows, desc="loading images", unit="img")]
    results = {}
    for run in a.runs:
        model, info = load_run(run)
        results[str(run)] = {**info, **evaluate(model, rows, images)}
    print(
        f"\n{'run':<28} {'variant':>7} {'params':>8} {'iters':>6} {'0-30':>6} {'30-60':>6} {'60-90':>6} "
        f"{'bal.':>6} {'>10%':>5} {'MPK':>6} {'MPB':>6}"
    )
    for name, r in results.items():
        b = r["nme_vis"]
        iters = f"{r['epoch']}ep+{r['iter']}"
        print(
            f"{name:<28} {r['variant']:>7} {r['params']:>8} {iters:>6} {b['0-30']:6.2f} {b['30-60']:6.2f} "
            f"{b['60-90']:6.2f} {r['balanced']:6.2f} {r['over10']:5d} {r['mpk']:6.1f} {r['mpb']:6.1f}"
        )
    if a.json:
        write_json({"data": str(a.data), "runs": results}, str(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
