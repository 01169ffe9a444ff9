"""Fit the landmarks -> face-box regressor of the ``lm-verify`` refiner (``pipeline/detection/landmark_box.py``).

    python -m training.landmark_box            # writes models/landmark_box.npz + manifest entry

Data: ``--n`` random AFLW *training* crops (the fixed validation 10 % excluded; the evaluation sets are never
used). Each crop is the 3DDFA square ROI of its face, so the true ROI is the whole crop. GoDP (the
shipped weights, one unperturbed ROI) is run on a jittered version of that ROI (centre +-10 %,
scale +-15 %, as a detector box would be off) and the ridge regressor maps its 19 predicted points
to the true ROI. 20 % of the crops (every fifth) are held out to report the centre error (fraction
of the ROI side) and the log-scale error; the shipped ``W`` is then refitted on all crops.
The regressor depends on the GoDP weights: refit it when they change (the manifest records their
sha256 and the refiner warns on a mismatch). Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

log = logging.getLogger("training.landmark_box")


def collect(aflw: Path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """GoDP points (n, 19, 2) on jittered ROIs of AFLW training crops and the true ROIs (n, 3)."""
    from facedata.splits import aflw_validation_images
    from landmarks.godp.infer import GodpLandmarker
    from pipeline.imageio import load_image

    val = aflw_validation_images()
    rows = [json.loads(line) for line in open(aflw / "annotations.jsonl")]
    rows = [r for r in rows if r["image"] not in val]
    rng = np.random.default_rng(seed)
    rows = [rows[i] for i in rng.permutation(len(rows))[:n]]
    godp = GodpLandmarker(n_rois=1)
    X, Y = [], []
    for r in tqdm(rows, desc="GoDP on training crops", unit="img"):
        img = load_image(aflw / r["image"])
        h, w = img.shape[:2]
        cx, cy, side = (w - 1) / 2.0, (h - 1) / 2.0, float(max(w, h))
        j = rng.uniform(-0.1, 0.1, 2) * side
        half = side * np.exp(rng.uniform(-0.15, 0.15)) / np.sqrt(2.0) / 2.0
        lm = godp.predict(img, (cx + j[0] - half, cy + j[1] - half, cx + j[0] + half, cy + j[1] + half))
        X.append(lm.points)
        Y.append((cx, cy, side))
    return np.asarray(X), np.asarray(Y)


def main(argv: list[str] | None = None) -> int:
    from pipeline.atomic import atomic_write_bytes
    from pipeline.detection.dpm import MODEL_DIR, load_manifest
    from pipeline.detection.landmark_box import fit_box_regressor, roi_error, roi_from_landmarks
    from pipeline.manifest import write_manifest
    from training.loaders import SHARED

    ap = argparse.ArgumentParser(
        prog="python -m training.landmark_box",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--aflw-dir", type=Path, default=SHARED / "aflw_crops", help="AFLW crops (SPEC landmark set)")
    ap.add_argument("--models", type=Path, default=MODEL_DIR, help="detector model folder to write into")
    ap.add_argument("--n", type=int, default=1500, help="training crops to use [1500]")
    ap.add_argument("--ridge", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not (a.aflw_dir / "annotations.jsonl").exists():
        log.error("no AFLW crops at %s: pass --aflw-dir DIR", a.aflw_dir)
        return 2
    import torch

    from landmarks.godp.weights import load_model
    from pipeline.manifest import sha256_file

    torch.set_num_threads(a.threads)
    t0 = time.time()
    X, Y = collect(a.aflw_dir, a.n, a.seed)
    hold = np.arange(len(Y)) % 5 == 0
    err = roi_error(roi_from_landmarks(X[hold], fit_box_regressor(X[~hold], Y[~hold], a.ridge)), Y[hold])
    W = fit_box_regressor(X, Y, a.ridge)
    buf = io.BytesIO()
    np.savez(buf, W=W)
    dest = a.models / "landmark_box.npz"
    atomic_write_bytes(dest, buf.getvalue())
    man = load_manifest(a.models)
    man["landmark_box"] = {
        "file": dest.name,
        "sha256": sha256_file(dest),
        "godp_sha256": load_model(None).weights_sha256,
        "n": int(len(Y)),
        "ridge": a.ridge,
        "seed": a.seed,
        "holdout_centre_error": round(err["centre"], 4),
        "holdout_log_scale_error": round(err["log_scale"], 4),
        "holdout_n": err["n"],
        "seconds": round(time.time() - t0, 1),
        "command": "python -m training.landmark_box " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    write_manifest(a.models, man)
    log.info(
        "wrote %s: held-out centre error %.4f of the ROI side, log-scale error %.4f (n=%d)",
        dest,
        err["centre"],
        err["log_scale"],
        err["n"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
