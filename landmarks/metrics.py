"""Landmark accuracy metrics (SPEC section 1).

NME = mean point-to-point error / box size, box size = sqrt(w * h) of the annotation's face
box (AFLW convention), in percent, over the visible points (NME-vis) or all points with
known ground truth (NME-all). CED = cumulative error distribution.
"""

from __future__ import annotations

import numpy as np


def box_size(box) -> float:
    """sqrt(w * h) of an (x0, y0, x1, y1) box."""
    x0, y0, x1, y1 = box
    return float(np.sqrt(max(x1 - x0, 0.0) * max(y1 - y0, 0.0)))


def nme(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, box) -> float:
    """NME in percent of ``box_size(box)`` over the points where ``mask`` is true (NaN if none)."""
    pred, gt, mask = np.asarray(pred, float), np.asarray(gt, float), np.asarray(mask, bool)
    if not mask.any():
        return float("nan")
    err = np.linalg.norm(pred[mask] - gt[mask], axis=1).mean()
    return float(err / box_size(box) * 100.0)


def ced(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of faces with error <= each threshold (failures as NaN count as above all)."""
    e = np.asarray(errors, float)
    e = np.where(np.isfinite(e), e, np.inf)
    return np.array([(e <= t).mean() for t in thresholds])


def auc(errors: np.ndarray, limit: float = 10.0, steps: int = 1000) -> float:
    """Area under the CED curve up to ``limit`` percent, normalised to [0, 1]."""
    t = np.linspace(0, limit, steps)
    if hasattr(np, "trapezoid"):  # numpy >= 2.0
        return float(np.trapezoid(ced(errors, t), t) / limit)
    # numpy 1.24-1.26 (allowed by pyproject) only has the old name, which numpy >= 2.4 stubs lack
    return float(np.trapz(ced(errors, t), t) / limit)  # type: ignore[attr-defined]  # numpy < 2.0 only


YAW_BINS = ((0, 30), (30, 60), (60, 91))


def yaw_bin_label(lo: int, hi: int) -> str:
    return f"{lo}-{min(hi, 90)}"
