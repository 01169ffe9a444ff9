"""Measure the 3D fit on AFLW-style annotations (numbers only; no image is read or saved).

    python benchmarks/recon3d_aflw.py --data ../shared/data/aflw2000_3d_dev [--limit 0] [--json FILE]
    python benchmarks/recon3d_aflw.py --data ../shared/data/aflw_crops --calibrate [--limit 700]

For every face, SfmFitter and MeanShapeFitter are fitted to the ground-truth *visible* 19 points
(scores 1). Reported per |yaw| bin (0-30, 30-60, 60-90) of the annotation:

- yaw error (fitted - annotated): mean |error|, median |error|, mean signed error (bias) and the
  fraction of faces with |yaw| >= 10 whose fitted yaw has the annotated sign;
- with ``mats/`` (AFLW2000-3D): pitch and roll errors against ``Pose_Para`` (the same Euler
  convention, R = Rx(pitch) Ry(yaw) Rz(roll), decomposed with yaw in [-90, 90]);
- the face box of the fit (extent of the 68 projected iBUG points, silhouette contour) against
  the annotation box (AFLW2000-3D: extent of ``pt3d_68``): IoU and size ratio sqrt(w h) / sqrt(w0 h0);
- landmark visibility predicted from the fitted pose (:func:`recon3d.render.landmark_visibility`)
  against the annotated visibility: accuracy, and the recall of invisible points.

``--calibrate`` (use on the training set aflw_crops only) also scores a grid of visibility
settings (min_facing x depth_tol_mm) and prints the best by balanced accuracy.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from facedata.paths import data_root
from pipeline.detection.boxes import iou
from pipeline.errors import FitError
from recon3d.camera import Camera, rotation_to_euler
from recon3d.fit import MeanShapeFitter, SfmFitter
from recon3d.render import VisibilityConfig, face_box, landmark_visibility

log = logging.getLogger("recon3d_aflw")
BINS = ((0, 30), (30, 60), (60, 91))


def load_rows(root: Path, limit: int) -> list[dict]:
    rows = [json.loads(line) for line in open(root / "annotations.jsonl") if line.strip()]
    rows = [r for r in rows if r.get("yaw") is not None]
    if limit:
        out = []
        for lo, hi in BINS:  # balanced: the first `limit` faces of each |yaw| bin, by name
            out += sorted((r for r in rows if lo <= abs(r["yaw"]) < hi), key=lambda r: r["image"])[:limit]
        rows = out
    return rows


def gt_pose(root: Path, image: str):
    """(yaw, pitch, roll) in degrees from AFLW2000-3D Pose_Para, or None."""
    mat = root / "mats" / (Path(image).stem + ".mat")
    if not mat.exists():
        return None
    from scipy.io import loadmat

    pp = loadmat(mat)["Pose_Para"].reshape(-1)
    p, y, r = np.degrees(pp[:3])
    R = Camera.from_pose(y, p, r).R
    return rotation_to_euler(R)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=data_root() / "aflw2000_3d_dev")
    ap.add_argument("--limit", type=int, default=0, help="faces per |yaw| bin (0 = all)")
    ap.add_argument("--calibrate", action="store_true", help="score a grid of visibility settings")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    rows = load_rows(args.data, args.limit)
    sfm, mean = SfmFitter(), MeanShapeFitter()
    model = sfm.model
    grid = [(f, d) for f in (0.0, 0.1, 0.2, 0.3, 0.4) for d in (2.0, 4.0, 1e6)] if args.calibrate else []
    recs = []
    t0 = time.perf_counter()
    for r in rows:
        pts = np.asarray(r["landmarks"], dtype=np.float64)
        vis = np.asarray(r["visible"], dtype=bool)
        rec = {"image": r["image"], "yaw": float(r["yaw"])}
        try:
            fs = sfm.fit_points(pts, vis, None)
            fm = mean.fit_points(pts, vis, None)
        except FitError as e:
            rec["error"] = str(e)
            recs.append(rec)
            continue
        cam = Camera.from_dict(fs.camera)
        rec.update(
            sfm=[fs.camera["yaw"], fs.camera["pitch"], fs.camera["roll"]],
            mean=[fm.camera["yaw"], fm.camera["pitch"], fm.camera["roll"]],
            residual=fs.residual,
            residual_mean=fm.residual,
        )
        gp = gt_pose(args.data, r["image"])
        if gp is not None:
            rec["gt_pose"] = list(gp)
        box, _ = face_box(model, fs.vertices, cam)
        gb = r["box"]
        rec["iou"] = iou(box, gb)
        rec["size_ratio"] = float(np.sqrt((box[2] - box[0]) * (box[3] - box[1]) / ((gb[2] - gb[0]) * (gb[3] - gb[1]))))
        pv = landmark_visibility(model, fs.vertices, cam)
        rec["vis_pred"] = pv.astype(int).tolist()
        rec["vis_gt"] = vis.astype(int).tolist()
        if grid:
            rec["grid"] = [
                landmark_visibility(model, fs.vertices, cam, config=VisibilityConfig(d, f)).astype(int).tolist()
                for f, d in grid
            ]
        recs.append(rec)
    dt = time.perf_counter() - t0
    ok = [x for x in recs if "sfm" in x]
    print(
        f"{args.data.name}: {len(recs)} faces, {len(ok)} fitted, {len(recs) - len(ok)} FitError "
        f"({1000 * dt / max(len(recs), 1):.1f} ms/face for both fits + box + visibility)"
    )

    summary = {"data": args.data.name, "faces": len(recs), "fitted": len(ok), "bins": {}}
    hdr = (
        f"{'|yaw| bin':>9s} {'n':>4s} | {'sfm yaw |err| mean/med':>22s} {'bias':>6s} {'sign ok':>7s} | "
        f"{'mean-shape |err|':>16s} | {'pitch/roll |err| (sfm)':>22s} | {'box IoU':>7s} {'size':>5s} | "
        f"{'vis acc':>7s} {'inv recall':>10s}"
    )
    print(hdr)
    for lo, hi in BINS + ((0, 91),):
        sel = [x for x in ok if lo <= abs(x["yaw"]) < hi]
        if not sel:
            continue
        gy = np.array([x["yaw"] for x in sel])
        ey = np.array([x["sfm"][0] for x in sel]) - gy
        em = np.array([x["mean"][0] for x in sel]) - gy
        big = np.abs(gy) >= 10
        sign_ok = (
            float(np.mean(np.sign(np.array([x["sfm"][0] for x in sel])[big]) == np.sign(gy[big])))
            if big.any()
            else float("nan")
        )
        gp = [x for x in sel if "gt_pose" in x]
        ep = np.array([abs(x["sfm"][1] - x["gt_pose"][1]) for x in gp]) if gp else np.array([np.nan])
        er = np.array([abs(x["sfm"][2] - x["gt_pose"][2]) for x in gp]) if gp else np.array([np.nan])
        ious = np.array([x["iou"] for x in sel])
        size = np.array([x["size_ratio"] for x in sel])
        vp = np.array([x["vis_pred"] for x in sel], bool)
        vg = np.array([x["vis_gt"] for x in sel], bool)
        acc = float((vp == vg).mean())
        inv_recall = float((~vp & ~vg).sum() / max((~vg).sum(), 1))
        key = f"{lo}-{min(hi, 90)}" if (lo, hi) != (0, 91) else "all"
        summary["bins"][key] = {
            "n": len(sel),
            "yaw_abs_err_mean": float(np.abs(ey).mean()),
            "yaw_abs_err_median": float(np.median(np.abs(ey))),
            "yaw_bias": float(ey.mean()),
            "yaw_sign_ok": sign_ok,
            "mean_shape_yaw_abs_err_mean": float(np.abs(em).mean()),
            "pitch_abs_err_mean": float(np.nanmean(ep)),
            "roll_abs_err_mean": float(np.nanmean(er)),
            "pitch_abs_err_median": float(np.nanmedian(ep)),
            "roll_abs_err_median": float(np.nanmedian(er)),
            "box_iou_mean": float(ious.mean()),
            "box_size_ratio_median": float(np.median(size)),
            "visibility_accuracy": acc,
            "invisible_recall": inv_recall,
            "residual_px_mean": float(np.mean([x["residual"] for x in sel])),
        }
        s = summary["bins"][key]
        print(
            f"{key:>9s} {len(sel):4d} | {s['yaw_abs_err_mean']:10.2f} / "
            f"{s['yaw_abs_err_median']:9.2f} {s['yaw_bias']:6.2f} "
            f"{sign_ok:7.3f} | {s['mean_shape_yaw_abs_err_mean']:16.2f} | {s['pitch_abs_err_mean']:10.2f} / "
            f"{s['roll_abs_err_mean']:9.2f} | {s['box_iou_mean']:7.3f} {s['box_size_ratio_median']:5.2f} | "
            f"{acc:7.3f} {inv_recall:10.3f}"
        )
    if grid:
        vg = np.array([x["vis_gt"] for x in ok], bool)
        yawbin = np.array([min(int(abs(x["yaw"]) // 30), 2) for x in ok])
        print(
            "visibility grid (min_facing, depth_tol_mm): accuracy, "
            "balanced accuracy (mean of visible / invisible recall)"
        )
        scores = []
        for k, (f, d) in enumerate(grid):
            vp = np.array([x["grid"][k] for x in ok], bool)
            acc = float((vp == vg).mean())
            bal = 0.5 * float((vp & vg).sum() / vg.sum()) + 0.5 * float((~vp & ~vg).sum() / max((~vg).sum(), 1))
            per_bin = [float((vp[yawbin == b] == vg[yawbin == b]).mean()) for b in range(3)]
            scores.append((bal, acc, f, d, per_bin))
            print(
                f"  facing {f:5.2f} tol {d:8.1f}: acc {acc:.4f} balanced {bal:.4f} "
                f"per bin {np.round(per_bin, 3).tolist()}"
            )
        best = max(scores, key=lambda x: (x[1], x[0]))
        bal = max(scores)
        print(
            f"best accuracy: facing {best[2]} tol {best[3]} (acc {best[1]:.4f}, balanced {best[0]:.4f}); "
            f"best balanced: facing {bal[2]} tol {bal[3]} (acc {bal[1]:.4f}, balanced {bal[0]:.4f})"
        )
        summary["visibility_grid"] = [
            {"min_facing": f, "depth_tol_mm": d, "accuracy": a, "balanced_accuracy": b, "accuracy_per_bin": pb}
            for b, a, f, d, pb in scores
        ]
        summary["visibility_grid_best_accuracy"] = {"min_facing": best[2], "depth_tol_mm": best[3]}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
