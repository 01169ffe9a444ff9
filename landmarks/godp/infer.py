"""GoDP inference: 16 perturbed ROIs around the face box, one batched forward pass, the
median of the 16 predictions (SPEC section 3).

The box is turned into the 3DDFA square ROI the training crops were cut with
(:func:`landmarks.roi.roi_from_box`), jittered in scale and shift, warped to 160x160 gray;
the K maps of each landmark are summed, the argmax refined to sub-pixel precision
(:func:`landmarks.godp.decode.decode`), mapped back to image pixels, and the per-coordinate
median taken over the ROIs. A point is reported visible when its median peak probability is
at least ``visibility_threshold``.
"""
from __future__ import annotations

import numpy as np
import torch

from landmarks.godp.data import INPUT, map_to_input
from landmarks.godp.decode import decode
from landmarks.godp.weights import load_model
from landmarks.roi import apply_affine, invert_affine, perturbed_rois, roi_from_box, warp
from pipeline.imageio import to_gray
from pipeline.types import Box, Landmarks


class GodpLandmarker:
    """The ``godp`` landmarker (default). n_rois: ROIs fused by the median (16 in the paper)."""

    name = "godp"

    def __init__(self, weights: str | None = None, n_rois: int = 16, scale_jitter: float = 0.05,
                 shift_jitter: float = 0.03, visibility_threshold: float | None = None, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.model = load_model(weights)
        if visibility_threshold is None:  # calibrated on the AFLW-crops validation split at export
            visibility_threshold = float(getattr(self.model, "visibility_threshold", 0.05))
        self.n_rois = n_rois
        self.scale_jitter, self.shift_jitter = scale_jitter, shift_jitter
        self.visibility_threshold = visibility_threshold
        # gallery caches key on this: retrained weights invalidate cached signatures
        self.cache_token = f"{self.model.weights_sha256[:16]}-r{n_rois}-v{visibility_threshold:.4f}"

    @torch.no_grad()
    def predict_batch(self, image: np.ndarray, boxes: list[Box]) -> list[Landmarks]:
        gray = to_gray(image)
        cfg = self.model.cfg
        crops, mats = [], []
        for box in boxes:
            for roi in perturbed_rois(roi_from_box(box), self.n_rois, self.scale_jitter, self.shift_jitter):
                m = roi.matrix(INPUT)
                crops.append(warp(gray, m, INPUT))
                mats.append(m)
        x = torch.from_numpy(np.stack(crops).astype(np.float32)[:, None] / 255.0)
        out = self.model(x)[-1]
        pts, score, sub = decode(out, cfg.K, cfg.L)
        pts_in = map_to_input(pts.numpy().astype(np.float64))
        img_pts = np.stack([apply_affine(invert_affine(m), p) for m, p in zip(mats, pts_in)])
        res = []
        n = self.n_rois
        for i, box in enumerate(boxes):
            sl = slice(i * n, (i + 1) * n)
            p = np.median(img_pts[sl], axis=0)
            s = np.median(score[sl].numpy(), axis=0).astype(np.float64)
            k = int(np.bincount(sub[sl].numpy(), minlength=cfg.K).argmax())
            res.append(Landmarks(points=p, visible=s >= self.visibility_threshold, scores=s, yaw_subspace=k,
                                 box=tuple(map(float, box))))
        return res

    def predict(self, image: np.ndarray, box: Box) -> Landmarks:
        return self.predict_batch(image, [box])[0]


class GodpLandmarker1Roi(GodpLandmarker):
    """GoDP on the single unperturbed ROI (no median fusion)."""

    name = "godp-1roi"

    def __init__(self, **kw):
        kw.setdefault("n_rois", 1)
        super().__init__(**kw)
