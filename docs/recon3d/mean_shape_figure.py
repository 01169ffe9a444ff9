"""The correspondence check figure: the mean shape rendered at yaw 0 / 45 / 90 with the 19 AFLW
landmarks (green visible, red hollow = self-occluded), the 68 iBUG points (blue, jaw = silhouette
contour) and the AFLW-convention face box (yellow).

    python docs/recon3d/mean_shape_figure.py [--out docs/recon3d/figures/mean_shape_landmarks.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from recon3d.export import draw_landmarks, save_png  # noqa: E402
from recon3d.model import load_model  # noqa: E402
from recon3d.render import render_pose  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "recon3d" / "figures" / "mean_shape_landmarks.png")
    args = ap.parse_args(argv)
    model = load_model()
    tiles = []
    for yaw in (0, 45, 90):
        r = render_pose(model.mean, None, yaw, 0, 0, 300, 340, face_size=0.75, background=(40, 40, 70))
        img = r.image.copy()
        for p in r.points68:
            cv2.circle(img, (int(round(p[0])), int(round(p[1]))), 1, (60, 120, 255), -1)
        img = draw_landmarks(img, r.landmarks, r.visible, r.box, radius=3)
        for i, p in enumerate(r.landmarks):
            cv2.putText(img, str(i), (int(p[0]) + 4, int(p[1]) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1)
        cv2.putText(img, f"yaw {yaw}", (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        tiles.append(img)
    save_png(args.out, np.hstack(tiles), palette=64)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
