"""GoDP's coordinate frames and yaw subspaces (SPEC section 3).

The network sees a 160x160 gray input (:data:`INPUT`) and outputs 80x80 score maps (:data:`MAP`):
``u = (x - 0.5) / 2`` maps input pixels to score-map pixels (a score-map pixel covers 2x2 input
pixels, centres aligned). The training loader (landmark sets, augmentation, batches) is
``training.godp_data``.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

INPUT = 160
MAP = 80


def input_to_map(pts: np.ndarray) -> np.ndarray:
    return (pts - 0.5) / 2.0


def map_to_input(pts: np.ndarray) -> np.ndarray:
    return pts * 2.0 + 0.5


def yaw_subspace(yaw: float | np.ndarray, K: int = 3, edge: float = 30.0):
    """Subspace index from yaw (degrees): K=3 -> 0: yaw < -edge, 1: frontal, 2: yaw > edge."""
    yaw = np.asarray(yaw, dtype=np.float64)
    if K == 1:
        return np.zeros_like(yaw, dtype=np.int64)
    if K == 3:
        return np.where(yaw < -edge, 0, np.where(yaw > edge, 2, 1)).astype(np.int64)
    edges = np.linspace(-90, 90, K + 1)[1:-1]
    return np.digitize(yaw, edges).astype(np.int64)
