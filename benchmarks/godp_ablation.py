"""Ablation of GoDP training runs (Table 7 / Table 8 style): several run folders, one table.

    python -m landmarks.godp.train --out runs/abl_plain --variant plain --width 0.125 --max-iters 400 --threads 1
    python -m landmarks.godp.train --out runs/abl_godp  --variant godp  --width 0.125 --max-iters 400 --threads 1
    python benchmarks/godp_ablation.py runs/abl_plain runs/abl_godp --json runs/bench/ablation.json

Each run folder's ``last.pt`` (the same training budget: iterations x batch) is evaluated from the
annotation boxes of a SPEC landmark set (default: the AFLW2000-3D dev half, 1,000 real faces) on the
single unperturbed ROI: NME-vis per abs(yaw) bin, balanced, faces above 10 %, and MPK / MPB (mean
probability of the key-point pixels / of the background pixels of the final maps, Table 7).
Only the final output is used; for GoDP the K subspace maps of a landmark are summed as at
inference (``landmarks.godp.decode``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from landmarks.godp.data import INPUT, input_to_map, map_to_input  # noqa: E402
from landmarks.godp.decode import decode  # noqa: E402
from landmarks.godp.network import GoDP, GodpConfig  # noqa: E402
from landmarks.metrics import YAW_BINS, nme  # noqa: E402
from landmarks.roi import apply_affine, invert_affine, roi_from_box, warp  # noqa: E402
from pipeline.cli import write_json  # noqa: E402
from pipeline.imageio import load_image, to_gray  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "aflw2000_3d_dev"


def load_run(run: Path) -> tuple[GoDP, dict]:
    cfg = json.loads((run / "config.json").read_text())
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    model = GoDP(GodpConfig(width=cfg["width"], K=cfg["K"], variant=cfg.get("variant", "godp")))
    model.load_state_dict(state["model"])
    model.eval()
    info = {"variant": cfg.get("variant", "godp"), "width": cfg["width"], "K": cfg["K"], "batch": cfg["batch"],
            "epoch": int(state["epoch"]), "iter": int(state["iter"]),
            "params": int(sum(p.numel() for p in model.parameters()))}
    return model, info


@torch.no_grad()
def evaluate(model: GoDP, rows: list[dict], root: Path, batch: int = 32) -> dict:
    K, L = model.cfg.K, model.cfg.L
    errs, yaws, mpk, mpb = [], [], [], []
    for a in tqdm(range(0, len(rows), batch), desc="faces", unit="batch"):
        chunk = rows[a:a + batch]
        crops, mats = [], []
        for r in chunk:
            m = roi_from_box(r["box"]).matrix(INPUT)
            crops.append(warp(to_gray(load_image(root / r["image"])), m, INPUT))
            mats.append(m)
        out = model(torch.from_numpy(np.stack(crops).astype(np.float32)[:, None] / 255.0))[-1]
        pts, _, _ = decode(out, K, L)
        prob = out.softmax(1)
        per = prob[:, : K * L].view(len(chunk), K, L, *prob.shape[-2:]).sum(1)   # (B, L, H, W)
        bg = prob[:, -1]
        pin = map_to_input(pts.numpy().astype(np.float64))
        for i, r in enumerate(chunk):
            p = apply_affine(invert_affine(mats[i]), pin[i])
            g, v = np.asarray(r["landmarks"], float), np.asarray(r["visible"], bool)
            errs.append(nme(p, g, v, r["box"]))
            yaws.append(abs(r["yaw"]))
            # MPK: probability of each visible key-point's own map at its ground-truth pixel; MPB: mean
            # background probability away (> 3 map px) from every visible key-point
            gm = input_to_map(apply_affine(mats[i], g[v]))        # map pixels
            H, W = per.shape[-2:]
            xi = np.clip(np.round(gm[:, 0]).astype(int), 0, W - 1)
            yi = np.clip(np.round(gm[:, 1]).astype(int), 0, H - 1)
            li = np.nonzero(v)[0]
            mpk.append(float(per[i, li, yi, xi].mean()))
            yy, xx = np.mgrid[0:H, 0:W]
            far = np.ones((H, W), bool)
            for x, y in zip(gm[:, 0], gm[:, 1]):
                far &= (xx - x) ** 2 + (yy - y) ** 2 > 9
            mpb.append(float(bg[i].numpy()[far].mean()))
    errs, yaws = np.asarray(errs), np.asarray(yaws)
    bins = {f"{lo}-{min(hi, 90)}": float(np.nanmean(errs[(yaws >= lo) & (yaws < hi)])) for lo, hi in YAW_BINS}
    return {"nme_vis": bins, "balanced": float(np.mean(list(bins.values()))), "all": float(np.nanmean(errs)),
            "over10": int((errs > 10).sum()), "faces": int(len(errs)),
            "mpk": 100 * float(np.mean(mpk)), "mpb": 100 * float(np.mean(mpb))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="training run folders (config.json + last.pt)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SPEC landmark set [aflw2000_3d_dev]")
    ap.add_argument("--limit", type=int, default=0, help="first N faces only (0: all)")
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
    rows = [json.loads(line) for line in open(a.data / "annotations.jsonl") if line.strip()]
    rows = [r for r in rows if r.get("yaw") is not None][: a.limit or None]
    results = {}
    for run in a.runs:
        model, info = load_run(run)
        results[str(run)] = {**info, **evaluate(model, rows, a.data)}
    print(f"\n{'run':<28} {'variant':>7} {'params':>8} {'iters':>6} {'0-30':>6} {'30-60':>6} {'60-90':>6} "
          f"{'bal.':>6} {'>10%':>5} {'MPK':>6} {'MPB':>6}")
    for name, r in results.items():
        b = r["nme_vis"]
        iters = f"{r['epoch']}ep+{r['iter']}"
        print(f"{name:<28} {r['variant']:>7} {r['params']:>8} {iters!s:>6} {b['0-30']:6.2f} {b['30-60']:6.2f} "
              f"{b['60-90']:6.2f} {r['balanced']:6.2f} {r['over10']:5d} {r['mpk']:6.1f} {r['mpb']:6.1f}")
    if a.json:
        write_json({"data": str(a.data), "runs": results}, str(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
