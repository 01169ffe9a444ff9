"""Landmark accuracy benchmark: every named landmarker, from each face's annotation box, in one run.

    python benchmarks/landmarks_nme.py --data ../shared/data/aflw2000_3d_dev --landmarker godp,godp-1roi,dlib \
        --json runs/bench/landmarks.json --plot runs/bench/ced.png

Prints, per landmarker: NME-vis and NME-all (percent of sqrt(w*h) of the annotation box) overall
and per |yaw| bin (0-30, 30-60, 60-90) with the balanced mean of the three bins, the number of
faces above 10 %, failures, ms per face; MPK/MPB (Table 7) for GoDP; and the box-noise robustness
curve (Fig. 6: NME-vis when the box is randomly shifted and scaled by a fraction of its size).
Writes a CED plot and a JSON ``{"summary": {...}, "faces": [{"image", "landmarker",
"landmarks" | null, "visible"}]}`` so anyone can recompute the metrics from the predictions.
NME-all counts every point whose ground truth is known (in AFLW2000-3D only the visible ones
are annotated, so there NME-all equals NME-vis).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.plotting import save_figure
from facedata.paths import data_root
from facedata.readers import balanced_subset, read_annotations
from landmarks.metrics import YAW_BINS, auc, ced, nme, yaw_bin_label
from pipeline.cli import write_json
from pipeline.errors import FaceError
from pipeline.imageio import load_image
from pipeline.registry import LANDMARKERS

log = logging.getLogger("landmarks_nme")
DEFAULT_DATA = data_root() / "aflw2000_3d_dev"


def load_annotations(root: Path, limit: int | None) -> list[dict]:
    """The faces of ``root/annotations.jsonl``; ``limit``: the first ``limit`` of each |yaw| bin."""
    return balanced_subset(read_annotations(root), limit, YAW_BINS)


def jitter_box(box, level: float, rng: np.random.Generator):
    """Shift the centre by N(0, level) x size and scale the size by (1 + N(0, level))."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2 + rng.normal(0, level) * w, (y0 + y1) / 2 + rng.normal(0, level) * h
    s = float(np.clip(1 + rng.normal(0, level), 0.5, 1.5))
    return (cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2)


def run_landmarker(lm, images, rows, boxes):
    preds, vis, times = [], [], []
    for img, r, box in zip(images, rows, boxes):
        t = time.perf_counter()
        try:
            out = lm.predict(img, box)
            preds.append(out.points)
            vis.append(out.visible)
        except FaceError as e:
            log.debug("%s failed on %s: %s", getattr(lm, "name", lm), r["image"], e)
            preds.append(None)
            vis.append(None)
        times.append(time.perf_counter() - t)
    return preds, vis, times


def face_errors(rows, preds):
    e_vis = []
    for r, p in zip(rows, preds):
        if p is None:
            e_vis.append(np.nan)
            continue
        gt = np.asarray(r["landmarks"], float)
        v = np.asarray(r["visible"], bool)
        e_vis.append(nme(p, gt, v, r["box"]))
    return np.asarray(e_vis)


def known_mask(r) -> np.ndarray:
    return np.asarray(r.get("known", r["visible"]), bool) | np.asarray(r["visible"], bool)


def summarise(rows, preds, times) -> dict:
    e = face_errors(rows, preds)
    e_all = np.asarray(
        [
            np.nan if p is None else nme(p, np.asarray(r["landmarks"], float), known_mask(r), r["box"])
            for r, p in zip(rows, preds)
        ]
    )
    ay = np.abs(np.asarray([r["yaw"] if r.get("yaw") is not None else np.nan for r in rows], float))
    s = {
        "faces": len(rows),
        "failures": int(sum(p is None for p in preds)),
        "nme_vis": float(np.nanmean(e)) if np.isfinite(e).any() else None,
        "nme_all": float(np.nanmean(e_all)) if np.isfinite(e_all).any() else None,
        "faces_over_10": int(np.sum(np.nan_to_num(e, nan=0) > 10)),
        "auc_10": auc(e, 10.0),
        "ms_per_face": 1000 * float(np.mean(times)),
    }
    bins = []
    for lo, hi in YAW_BINS:
        sel = (ay >= lo) & (ay < hi)
        v = float(np.nanmean(e[sel])) if np.isfinite(e[sel]).any() else float("nan")
        s[f"nme_vis_{yaw_bin_label(lo, hi)}"] = v
        s[f"n_{yaw_bin_label(lo, hi)}"] = int(sel.sum())
        bins.append(v)
    s["nme_vis_balanced"] = float(np.mean(bins))
    return s


def godp_mpk_mpb(model, images, rows) -> dict:
    """Table 7's MPK/MPB of a GoDP ``model``'s final maps on the unperturbed ROI of each face."""
    import torch

    from landmarks.godp.data import INPUT, input_to_map, yaw_subspace
    from landmarks.godp.losses import Targets, mpk_mpb
    from landmarks.roi import apply_affine, roi_from_box, warp
    from pipeline.imageio import to_gray

    cfg = model.cfg
    mk, mb = [], []
    for i in range(0, len(rows), 32):
        xs, ps, vs, ss = [], [], [], []
        for img, r in zip(images[i : i + 32], rows[i : i + 32]):
            m = roi_from_box(r["box"]).matrix(INPUT)
            xs.append(warp(to_gray(img), m, INPUT))
            ps.append(input_to_map(apply_affine(m, np.asarray(r["landmarks"], float))))
            vs.append(np.asarray(r["visible"], bool))
            ss.append(int(yaw_subspace(r.get("yaw") or 0.0, cfg.K)))
        x = torch.from_numpy(np.stack(xs).astype(np.float32)[:, None] / 255.0)
        with torch.no_grad():
            out = model(x)[-1]
        t = Targets(
            torch.from_numpy(np.stack(ps).astype(np.float32)),
            torch.from_numpy(np.stack(vs)),
            torch.from_numpy(np.stack(vs)),
            torch.from_numpy(np.asarray(ss)),
        )
        a, b = mpk_mpb(out, t, cfg.L, cfg.K)
        mk.append(a * len(xs))
        mb.append(b * len(xs))
    return {"mpk": float(np.sum(mk) / len(rows)), "mpb": float(np.sum(mb) / len(rows))}


def print_table(summary: dict) -> None:
    cols = ["0-30", "30-60", "60-90"]
    print(
        f"\n{'landmarker':<12} {'NME-vis':>8} {'NME-all':>8} "
        + " ".join(f"{c:>7}" for c in cols)
        + f" {'balanced':>9} {'>10%':>5} {'fail':>5} {'ms/face':>8}"
    )
    for name, s in summary["landmarkers"].items():

        def fmt(v):
            return f"{v:8.2f}" if v is not None and np.isfinite(v) else f"{'-':>8}"

        print(
            f"{name:<12} {fmt(s['nme_vis'])} {fmt(s['nme_all'])} "
            + " ".join(f"{s['nme_vis_' + c]:7.2f}" for c in cols)
            + f" {s['nme_vis_balanced']:9.2f} {s['faces_over_10']:5d} {s['failures']:5d} {s['ms_per_face']:8.1f}"
        )
    for name, s in summary["landmarkers"].items():
        if "mpk" in s:
            print(f"{name}: MPK {s['mpk']:.2f} %  MPB {s['mpb']:.2f} %")
    if summary.get("robustness"):
        levels = summary["robustness"]["levels"]
        print(
            f"\nbox-noise robustness (NME-vis %, {summary['robustness']['faces']} faces; noise = std of shift/scale "
            f"as a fraction of the box)"
        )
        print(f"{'landmarker':<12} " + " ".join(f"{lv:>7.2f}" for lv in levels))
        for name, vals in summary["robustness"]["nme_vis"].items():
            print(f"{name:<12} " + " ".join(f"{v:7.2f}" for v in vals))


def plot(summary: dict, errors: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if summary.get("robustness") else 1, figsize=(11, 4.2), squeeze=False)
    t = np.linspace(0, 15, 301)
    ax = axes[0, 0]
    for name, e in errors.items():
        ax.plot(t, 100 * ced(e, t), label=f"{name} (AUC@10 {summary['landmarkers'][name]['auc_10']:.3f})")
    ax.set_xlabel("NME-vis (%)")
    ax.set_ylabel("faces (%)")
    ax.set_title(f"CED on {summary['data_name']} ({summary['faces']} faces)")
    ax.grid(alpha=0.3)
    ax.legend()
    if summary.get("robustness"):
        ax = axes[0, 1]
        rb = summary["robustness"]
        for name, vals in rb["nme_vis"].items():
            ax.plot(rb["levels"], vals, marker="o", label=name)
        ax.set_xlabel("box noise (std, fraction of box size)")
        ax.set_ylabel("NME-vis (%)")
        ax.set_title("robustness to box noise (Fig. 6)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder with annotations.jsonl [{DEFAULT_DATA}]")
    ap.add_argument(
        "--landmarker",
        default="godp,dlib",
        help=f"comma-separated landmarkers to compare (registered: {', '.join(LANDMARKERS.names())})",
    )
    ap.add_argument("--json", type=Path, help="write summary + per-face predictions here")
    ap.add_argument("--plot", type=Path, help="write the CED (+ robustness) plot here (PNG)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N faces of each |yaw| bin")
    ap.add_argument(
        "--noise-levels",
        default="0,0.05,0.1,0.15,0.2",
        help="box-noise levels for the robustness curve ('' to skip) [0,0.05,0.1,0.15,0.2]",
    )
    ap.add_argument("--noise-faces", type=int, default=30, help="faces per |yaw| bin for the robustness curve [30]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not (a.data / "annotations.jsonl").exists():
        print(f"error: {a.data}/annotations.jsonl not found: pass --data DIR (a SPEC landmark set)", file=sys.stderr)
        return 2
    names = [n.strip() for n in a.landmarker.split(",") if n.strip()]
    try:
        models = {n: LANDMARKERS.create(n) for n in names}
    except FaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = load_annotations(a.data, a.limit)
    images = [load_image(a.data / r["image"]) for r in tqdm(rows, desc="loading images", unit="img")]
    boxes = [tuple(r["box"]) for r in rows]
    summary = {
        "data": str(a.data),
        "data_name": a.data.name,
        "faces": len(rows),
        "landmarkers": {},
        "command": " ".join(["python benchmarks/landmarks_nme.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    faces, errors = [], {}
    for n, lm in models.items():
        t0 = time.perf_counter()
        preds, vis, times = run_landmarker(lm, tqdm(images, desc=n, unit="face"), rows, boxes)
        s = summarise(rows, preds, times)
        s["seconds"] = time.perf_counter() - t0
        if hasattr(lm, "model"):
            s.update(godp_mpk_mpb(lm.model, images, rows))
        summary["landmarkers"][n] = s
        errors[n] = face_errors(rows, preds)
        for r, p, v in zip(rows, preds, vis):
            faces.append(
                {
                    "image": r["image"],
                    "landmarker": n,
                    "landmarks": None if p is None else np.round(p, 3).tolist(),
                    "visible": None if v is None else [bool(x) for x in v],
                }
            )
    levels = [float(x) for x in a.noise_levels.split(",") if x.strip()]
    if levels:
        sub = load_annotations(a.data, a.noise_faces)
        sub_imgs = [load_image(a.data / r["image"]) for r in sub]
        rb = {"levels": levels, "faces": len(sub), "nme_vis": {}}
        for n, lm in models.items():
            vals = []
            for lv in levels:
                rng = np.random.default_rng([a.seed, int(lv * 1000)])
                nb = [jitter_box(r["box"], lv, rng) if lv > 0 else tuple(r["box"]) for r in sub]
                preds, _, _ = run_landmarker(lm, sub_imgs, sub, nb)
                vals.append(float(np.nanmean(face_errors(sub, preds))))
            rb["nme_vis"][n] = vals
        summary["robustness"] = rb
    print_table(summary)
    if a.json:
        write_json({"summary": summary, "faces": faces}, str(a.json))
    if a.plot:
        plot(summary, errors, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
