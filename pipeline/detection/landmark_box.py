"""Face box from 19 predicted landmarks: a linear regressor on the normalised point layout.

GoDP is trained on the 3DDFA square ROI of the AFLW-style face box (``landmarks/roi.py``). Given
the 19 points it predicts inside some ROI, this module estimates the ROI the face *should* have had,
so a rough or off-centre detector box can be re-centred on the face and the landmarks predicted
again (a fixed-point iteration, :func:`pipeline.detection.verify`).

Model (pure maths, no I/O). With the points ``P`` (19, 2), their centroid ``c`` and RMS radius
``s = sqrt(mean ||P_i - c||^2)``, the features are ``f = [vec((P - c) / s), 1]`` (39,) and

    [(cx - c_x) / s, (cy - c_y) / s, log(side / s)] = f @ W          (W: (39, 3))

where ``(cx, cy, side)`` is the square ROI (pixels). Normalising by ``c`` and ``s`` makes the map
equivariant to translation and scale; the layout ``(P - c) / s`` carries the pose (a profile face's
points crowd to one side of its head box). ``W`` is fitted by ridge regression
(:func:`fit_box_regressor`) on GoDP predictions for AFLW training crops whose ROI is known
(``python -m training.landmark_box``). The returned box is the square of side
``side / sqrt(2)`` about ``(cx, cy)``, i.e. the AFLW-style box whose 3DDFA ROI is that square.
"""

from __future__ import annotations

import numpy as np

from landmarks.roi import ROI_SCALE

N_FEATURES = 19 * 2 + 1


def layout_features(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """points (..., 19, 2) -> features (..., 39), centroid (..., 2), RMS radius (...,)."""
    p = np.asarray(points, dtype=np.float64)
    c = p.mean(-2)
    s = np.sqrt(((p - c[..., None, :]) ** 2).sum(-1).mean(-1))
    s = np.maximum(s, 1e-6)
    f = ((p - c[..., None, :]) / s[..., None, None]).reshape(*p.shape[:-2], -1)
    return np.concatenate([f, np.ones((*f.shape[:-1], 1))], -1), c, s


def fit_box_regressor(points: np.ndarray, rois: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """Ridge fit of ``W`` (39, 3) from points (N, 19, 2) and their true ROIs (N, 3) = (cx, cy, side)."""
    f, c, s = layout_features(points)
    rois = np.asarray(rois, dtype=np.float64)
    y = np.stack([(rois[:, 0] - c[:, 0]) / s, (rois[:, 1] - c[:, 1]) / s, np.log(rois[:, 2] / s)], -1)
    reg = ridge * np.eye(f.shape[1])
    reg[-1, -1] = 0.0  # no shrinkage of the bias
    return np.linalg.solve(f.T @ f + reg, f.T @ y)


def roi_from_landmarks(points: np.ndarray, W: np.ndarray) -> np.ndarray:
    """points (..., 19, 2) -> ROI (..., 3) = (cx, cy, side) in pixels."""
    f, c, s = layout_features(points)
    y = f @ W
    return np.stack([c[..., 0] + y[..., 0] * s, c[..., 1] + y[..., 1] * s, np.exp(y[..., 2]) * s], -1)


def box_from_landmarks(points: np.ndarray, W: np.ndarray) -> tuple[float, float, float, float]:
    """The AFLW-style square face box (x0, y0, x1, y1) whose 3DDFA ROI the regressor predicts."""
    cx, cy, side = roi_from_landmarks(points, W)
    h = side / ROI_SCALE / 2.0
    return float(cx - h), float(cy - h), float(cx + h), float(cy + h)


def roi_error(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Mean centre error (fraction of the true side) and mean abs log-scale error of ROIs (N, 3)."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    centre = np.linalg.norm(pred[:, :2] - true[:, :2], axis=1) / true[:, 2]
    return {
        "centre": float(centre.mean()),
        "log_scale": float(np.abs(np.log(pred[:, 2] / true[:, 2])).mean()),
        "n": int(len(true)),
    }


__all__ = [
    "N_FEATURES",
    "layout_features",
    "fit_box_regressor",
    "roi_from_landmarks",
    "box_from_landmarks",
    "roi_error",
]
