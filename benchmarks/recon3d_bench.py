"""Speed of the 3D stage: renderer images/s, fit time per face, UV lifting time, each beside a
baseline measured in the same run.

    python benchmarks/recon3d_bench.py [--n 200] [--json FILE]

- render: ``recon3d.render.render_pose`` (z-buffer rasteriser, texture, Lambertian shading,
  19 landmarks + visibility + 68-point face box) at random poses (yaw -90..90, pitch -30..30,
  roll -15..15), at 256x306 and 128x153 (W x H), in images/s; baseline: the painter's algorithm
  (triangles sorted by depth and drawn one by one with ``cv2.fillConvexPoly``), triangle ids only;
- fit: ``SfmFitter`` (pose + 63 shape + 6 expression coefficients, 5 iterations), with and without
  17 jaw-contour points, against the ``MeanShapeFitter`` baseline (camera only), on synthetic
  landmarks of random faces (ms/face; pose error vs the truth);
- lift: ``lift_texture`` at 256 and 128 texels (with mirror filling), baseline: per-vertex colour
  sampling (project + bilinear lookup, no UV raster and no visibility).

BLAS is pinned to one thread (``OPENBLAS_NUM_THREADS=1`` unless already set): the stage does small
matrix products for which threading only adds overhead, and a data factory runs one process per core.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.types import Fit3D
from recon3d.camera import Camera
from recon3d.fit import FitConfig, MeanShapeFitter, SfmFitter
from recon3d.model import aflw19_points, ibug68_points, load_model
from recon3d.raster import sample_bilinear
from recon3d.render import frame_camera, render_pose
from recon3d.uv import lift_texture


def painter_tri_ids(xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray, width: int, height: int) -> np.ndarray:
    """Baseline rasteriser: back-face cull, sort by mean depth (far first), fillConvexPoly per triangle."""
    a, b, c = xy[triangles[:, 0]], xy[triangles[:, 1]], xy[triangles[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.flatnonzero(area < 0)
    order = keep[np.argsort(depth[triangles[keep]].mean(1))]
    ids = np.zeros((height, width), np.int32)
    pts = np.rint(xy * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    for t in order:
        cv2.fillConvexPoly(ids, pts[triangles[t]], int(t) + 1, lineType=cv2.LINE_8, shift=4)
    return ids - 1


def timed(fn, n: int) -> float:
    """Seconds per call (median of 3 runs of n calls)."""
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - t) / n)
    return float(np.median(runs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument("--n", type=int, default=100, help="items per timing run (each timing is the median of 3 runs)")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    model = load_model()
    n = max(1, args.n)
    res: dict = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        }
    }

    # a textured random face
    tex = cv2.resize(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
    faces = [model.shape(rng.normal(0, 1, 63)) for _ in range(8)]
    poses = np.column_stack([rng.uniform(-90, 90, 64), rng.uniform(-30, 30, 64), rng.uniform(-15, 15, 64)])

    # --- render ------------------------------------------------------------------------------------
    for w, h in ((256, 306), (128, 153)):

        def ours(i, w=w, h=h):
            y, p, r = poses[i % len(poses)]
            render_pose(faces[i % len(faces)], tex, y, p, r, w, h, background=(60, 60, 60), model=model)

        def painter(i, w=w, h=h):
            y, p, r = poses[i % len(poses)]
            V = faces[i % len(faces)]
            cam = frame_camera(V, y, p, r, w, h, model=model)
            painter_tri_ids(cam.project(V), cam.depth(V), model.triangles, w, h)

        ours(0)
        t_ours, t_paint = timed(ours, n), timed(painter, n)
        res[f"render_{w}x{h}"] = {
            "images_per_s": 1 / t_ours,
            "ms": 1000 * t_ours,
            "baseline_painter_tri_ids_images_per_s": 1 / t_paint,
            "baseline_painter_tri_ids_ms": 1000 * t_paint,
        }

    # --- fit ----------------------------------------------------------------------------------------
    cases = []
    for _ in range(64):
        V = model.shape(rng.normal(0, 1, 63))
        y, p, r = rng.uniform(-75, 75), rng.uniform(-25, 25), rng.uniform(-15, 15)
        cam = Camera.from_pose(y, p, r, rng.uniform(1.5, 3.0), rng.uniform(150, 350, 2))
        x = cam.project(aflw19_points(model, V)) + rng.normal(0, 1.0, (19, 2))
        c68 = cam.project(ibug68_points(model, V, cam.R)) + rng.normal(0, 1.0, (68, 2))
        contour = c68[:17].copy()
        contour[8] = np.nan
        vis = np.ones(19, bool)
        if y > 45:
            vis[[0, 1, 6, 7, 15]] = False
        if y < -45:
            vis[[4, 5, 10, 11, 17]] = False
        cases.append((x, vis, contour, (y, p, r)))
    sfm, mean = SfmFitter(), MeanShapeFitter()
    fitters = {
        "sfm": (sfm, False),
        "sfm+contour": (sfm, True),
        "mean (baseline)": (mean, False),
        "sfm n_shape=20, no expression": (SfmFitter(FitConfig(n_shape=20, expression=False)), False),
    }
    res["fit"] = {}
    for name, (f, use_c) in fitters.items():
        errs = []

        def run(i, f=f, use_c=use_c, errs=errs):
            x, vis, contour, truth = cases[i % len(cases)]
            out = f.fit_points(x, vis, None, contour=contour if use_c else None)
            if len(errs) < len(cases):
                errs.append(abs(out.camera["yaw"] - truth[0]))

        t = timed(run, n)
        res["fit"][name] = {"ms": 1000 * t, "yaw_abs_err_mean_deg": float(np.mean(errs))}

    # --- lift ---------------------------------------------------------------------------------------
    V = faces[0]
    cam = frame_camera(V, 30, 10, 0, 640, 480, face_size=0.6, model=model)
    img = render_pose(V, tex, 30, 10, 0, 640, 480, face_size=0.6, model=model).image
    fit = Fit3D(V, cam.to_dict(), np.zeros(63), 0.0)
    res["lift"] = {}
    lift_texture(img, fit, 256, model=model)
    for size, mirror in ((256, False), (256, True), (128, False)):
        t = timed(lambda i, s=size, m=mirror: lift_texture(img, fit, s, mirror_fill=m, model=model), n)
        res["lift"][f"uv{size}{'+mirror' if mirror else ''}"] = {"ms": 1000 * t}

    def per_vertex(i):
        xy = cam.project(V)
        sample_bilinear(img, xy[:, 0], xy[:, 1])

    res["lift"]["baseline per-vertex colours (no UV raster, no visibility)"] = {"ms": 1000 * timed(per_vertex, n)}

    # --- report -------------------------------------------------------------------------------------
    print(
        f"recon3d benchmark (n={n} per timing, median of 3; {os.cpu_count()} CPUs; "
        f"OPENBLAS_NUM_THREADS={res['machine']['OPENBLAS_NUM_THREADS']})"
    )
    print(f"{'what':52s} {'ours':>14s} {'baseline':>14s}")
    for w, h in ((256, 306), (128, 153)):
        r = res[f"render_{w}x{h}"]
        print(
            f"{f'render {w}x{h} (images/s)':52s} {r['images_per_s']:14.1f} "
            f"{r['baseline_painter_tri_ids_images_per_s']:14.1f}"
            f"   (baseline: painter's fillConvexPoly, triangle ids only)"
        )
    base = res["fit"]["mean (baseline)"]
    for name, r in res["fit"].items():
        if name == "mean (baseline)":
            continue
        print(
            f"{f'fit {name} (ms/face; yaw err deg)':52s} {r['ms']:8.1f};{r['yaw_abs_err_mean_deg']:5.2f} "
            f"{base['ms']:8.1f};{base['yaw_abs_err_mean_deg']:5.2f}   (baseline: mean shape, camera only)"
        )
    bl = res["lift"]["baseline per-vertex colours (no UV raster, no visibility)"]["ms"]
    for name, r in res["lift"].items():
        if name.startswith("baseline"):
            continue
        print(f"{f'lift {name} (ms, 640x480 image)':52s} {r['ms']:14.1f} {bl:14.2f}   (baseline: per-vertex colours)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
