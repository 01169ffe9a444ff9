"""Loaders and batching helpers shared by the trainers (detection models, face check, landmark box).

The data come through :mod:`facedata` (paths, splits, readers); nothing here is used at run time.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facedata.paths import data_root, generated_path

if TYPE_CHECKING:
    import torch

log = logging.getLogger("training.loaders")

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
        idx = perm[a : a + batch]
        flip = rng.random(len(idx)) < 0.5
        mask = flip.reshape(-1, *([1] * (crops.ndim - 1)))
        yield idx, np.ascontiguousarray(np.where(mask, crops[idx][..., ::-1], crops[idx])), flip


@dataclass
class CropCnnConfig:
    """What the crop CNN trainers (:mod:`training.bbox_cnn`, :mod:`training.face_check`) share: the
    training schedule of :func:`train_crop_cnn` and the width of
    :class:`pipeline.detection.bbox_cnn.BoxNet`. Each trainer's config adds its own fields."""

    renders: int = 6000  # face-profiling renders sampled
    aflw: int = 4000  # real AFLW training crops sampled
    epochs: int = 6
    batch: int = 128
    lr: float = 2e-3  # Adam, weight decay 1e-4, cosine schedule over all steps
    width: int = 16  # BoxNet channel width
    seed: int = 0


def train_crop_cnn(
    net: torch.nn.Module,
    crops: np.ndarray,
    loss_of: Callable[[np.ndarray, np.ndarray, np.ndarray], torch.Tensor],
    cfg: CropCnnConfig,
    name: str = "train",
) -> None:
    """Train ``net`` in place on ``crops`` (N, ...) for ``cfg.epochs`` epochs of
    :func:`mirrored_batches`: Adam (``cfg.lr``, weight decay 1e-4) with a cosine learning rate
    over all steps; ``loss_of(indices, mirrored crops, mirror flags)`` returns the batch's scalar
    loss tensor. The shuffling is seeded by ``cfg.seed`` (call ``torch.manual_seed`` before
    building ``net`` for a deterministic run). Leaves ``net`` in eval mode."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * math.ceil(len(crops) / cfg.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(cfg.seed)
    for ep in range(cfg.epochs):
        net.train()
        tot = 0.0
        for idx, batch, flip in mirrored_batches(crops, cfg.batch, rng):
            loss = loss_of(idx, batch, flip)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        log.info("%s: epoch %d/%d loss %.4f", name, ep + 1, cfg.epochs, tot / max(len(crops), 1))
    net.eval()


def load_gray(path: Path) -> np.ndarray | None:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
