"""Region-of-interest geometry shared by training and inference.

The AFLW crops GoDP is trained on were cut with the 3DDFA rule: a square of side
``sqrt(2) * max(w, h)`` of the face box, centred on the box centre (SPEC section 6). At
inference the same rule turns an AFLW-style box into the square ROI that is warped to the
network's 160x160 input, so the network sees the framing it was trained on.

Coordinates use the pixel-centre convention (SPEC section 1): a square ROI ``(cx, cy, side)``
covers ``[cx - side/2, cx + side/2]`` in continuous coordinates and maps onto
``[-0.5, S - 0.5]`` of an ``S x S`` crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ROI_SCALE = math.sqrt(2.0)


@dataclass(frozen=True)
class Roi:
    """A square region: centre (cx, cy), side (px) and in-plane rotation (degrees, CCW)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def matrix(self, size: int) -> np.ndarray:
        """2x3 affine matrix mapping image pixels to ``size x size`` crop pixels."""
        a = size / self.side
        t = math.radians(self.angle)
        c, s = math.cos(t) * a, math.sin(t) * a
        o = size / 2.0 - 0.5
        return np.array(
            [[c, s, o - c * self.cx - s * self.cy], [-s, c, o + s * self.cx - c * self.cy]], dtype=np.float64
        )


def roi_from_box(box, scale: float = ROI_SCALE) -> Roi:
    """The 3DDFA square ROI of an ``(x0, y0, x1, y1)`` box."""
    x0, y0, x1, y1 = box
    return Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0, scale * max(x1 - x0, y1 - y0))


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points."""
    return pts @ m[:, :2].T + m[:, 2]


def warp(image: np.ndarray, m: np.ndarray, size: int, border_value: float = 0.0) -> np.ndarray:
    """Crop with a 2x3 matrix (bilinear, constant border)."""
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value
    )


def perturbed_rois(
    roi: Roi, n: int, scale_jitter: float = 0.05, shift_jitter: float = 0.03, seed: int = 0
) -> list[Roi]:
    """``n`` ROIs around ``roi``: the first is ``roi`` itself, the others jittered in scale
    (``side * (1 + U(-s, s))``) and centre (``U(-t, t) * side``), deterministically seeded."""
    rng = np.random.default_rng(seed)
    out = [roi]
    for _ in range(n - 1):
        ds = 1.0 + rng.uniform(-scale_jitter, scale_jitter)
        dx, dy = rng.uniform(-shift_jitter, shift_jitter, 2) * roi.side
        out.append(Roi(roi.cx + dx, roi.cy + dy, roi.side * ds, roi.angle))
    return out
