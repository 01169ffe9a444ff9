"""Loaders and batching helpers shared by the trainers (detection models, face check, landmark box).

The data come through :mod:`facedata` (paths, splits, readers); nothing here is used at run time.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from facedata.paths import data_root, generated_path

#: The data root of this process (``$GODP_DATA`` or ``../shared/data``).
SHARED = data_root()
#: The default face-profiling render set (``python -m facedata.profiling``).
DEFAULT_RENDERS = generated_path("profiling")


def training_renders(renders: Path) -> list[dict]:
    """Annotation rows of the face-profiling renders usable for training (the ORL and Georgia Tech
    sources serve evaluation)."""
    rows = [json.loads(line) for line in open(renders / "annotations.jsonl")]
    return [r for r in rows if "/orl/" not in f"/{r['image']}" and "/gt/" not in f"/{r['image']}"]


def padded_aflw_crop(img: np.ndarray) -> tuple[np.ndarray, tuple]:
    """An AFLW training crop (the 3DDFA square ROI of its face, side sqrt(2) max(w, h) of the face
    box) padded by 25 % with replicated borders, and the face's square box in the padded image."""
    import cv2

    h, w = img.shape[:2]
    p = int(round(0.25 * max(h, w)))
    img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REPLICATE)
    side = max(h, w) / math.sqrt(2.0)
    c = ((w - 1) / 2.0 + p, (h - 1) / 2.0 + p)
    return img, (c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2)


def mirrored_batches(crops: np.ndarray, batch: int, rng: np.random.Generator):
    """One epoch of shuffled minibatches of (N, H, W) or (N, C, H, W) ``crops``: yields (indices, the
    crops with a random half mirrored left-right, the mirror flags)."""
    perm = rng.permutation(len(crops))
    for a in range(0, len(perm), batch):
        idx = perm[a:a + batch]
        flip = rng.random(len(idx)) < 0.5
        mask = flip.reshape(-1, *([1] * (crops.ndim - 1)))
        yield idx, np.ascontiguousarray(np.where(mask, crops[idx][..., ::-1], crops[idx])), flip


def load_gray(path: Path) -> np.ndarray | None:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
