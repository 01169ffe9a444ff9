"""GoDP inference: 16 perturbed ROIs around the face box, one batched forward pass, the
median of the 16 predictions (SPEC section 3).

With ``flip`` every second ROI is mirrored (x -> 159 - x in the crop, the left/right points
swapped back with :data:`pipeline.types.AFLW19_MIRROR`), so the median fuses 8 plain and 8
mirrored views at the cost of 16 ROIs. Off by default: on 300 faces of the AFLW-crops validation
split it changed NME-vis from 5.16 to 5.13 % overall and balanced from 5.326 to 5.329 (no gain).

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
from pipeline.types import AFLW19_MIRROR, Box, Landmarks

_FLIP = np.array([[-1.0, 0.0, INPUT - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


class GodpLandmarker:
    """The ``godp`` landmarker (default). n_rois: ROIs fused by the median (16 in the paper);
    flip: mirror every second ROI (test-time flip; no effect with one ROI); model: a built GoDP
    to use instead of loading the shipped ``weights``."""

    name = "godp"

    def __init__(
        self,
        weights: str | None = None,
        n_rois: int = 16,
        scale_jitter: float = 0.05,
        shift_jitter: float = 0.03,
        visibility_threshold: float | None = None,
        threads: int | None = None,
        flip: bool = False,
        model=None,
    ):
        if threads:
            torch.set_num_threads(threads)
        # ``model``: an already built GoDP (e.g. a training run's checkpoint) instead of shipped weights
        self.model = load_model(weights) if model is None else model.eval()
        if visibility_threshold is None:  # calibrated on the AFLW-crops validation split at export
            visibility_threshold = float(getattr(self.model, "visibility_threshold", 0.05))
        self.n_rois = n_rois
        self.flip = bool(flip) and n_rois > 1
        self.scale_jitter, self.shift_jitter = scale_jitter, shift_jitter
        self.visibility_threshold = visibility_threshold
        # gallery caches key on this: retrained weights invalidate cached signatures
        self.cache_token = (
            f"{getattr(self.model, 'weights_sha256', 'unshipped')[:16]}-r{n_rois}-v{visibility_threshold:.4f}"
            + ("-flip" if self.flip else "")
        )

    @torch.no_grad()
    def predict_rois(self, image: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GoDP on the ``n_rois`` perturbed ROIs of every box, one batched forward pass, before any
        fusion: points (B, n_rois, L, 2) in image pixels, peak probabilities (B, n_rois, L) and yaw
        subspaces (B, n_rois), a mirrored ROI's already mapped back to the face's own point order."""
        gray = to_gray(image)
        cfg = self.model.cfg
        crops, mats = [], []
        flipped = np.array([self.flip and j % 2 == 1 for j in range(self.n_rois)] * len(boxes), bool)
        for box in boxes:
            for j, roi in enumerate(
                perturbed_rois(roi_from_box(box), self.n_rois, self.scale_jitter, self.shift_jitter)
            ):
                m = roi.matrix(INPUT)
                if self.flip and j % 2 == 1:
                    m = (_FLIP @ np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
                crops.append(warp(gray, m, INPUT))
                mats.append(m)
        x = torch.from_numpy(np.stack(crops).astype(np.float32)[:, None] / 255.0)
        out = self.model(x)[-1]
        pts, score, sub = decode(out, cfg.K, cfg.L)
        pts_in = map_to_input(pts.numpy().astype(np.float64))
        score, sub = score.numpy(), sub.numpy()
        if flipped.any():  # a mirrored view's point i is the face's point AFLW19_MIRROR[i]
            perm = np.asarray(AFLW19_MIRROR)
            pts_in[flipped] = pts_in[flipped][:, perm]
            score[flipped] = score[flipped][:, perm]
            sub[flipped] = cfg.K - 1 - sub[flipped]
        img_pts = np.stack([apply_affine(invert_affine(m), p) for m, p in zip(mats, pts_in)])
        n, L = self.n_rois, cfg.L
        return img_pts.reshape(len(boxes), n, L, 2), score.reshape(len(boxes), n, L), sub.reshape(len(boxes), n)

    def predict_batch(self, image: np.ndarray, boxes: list[Box]) -> list[Landmarks]:
        """19 landmarks per box: the median over the perturbed ROIs of points and peak probabilities
        (the paper's fusion), the majority yaw subspace."""
        pts, score, sub = self.predict_rois(image, boxes)
        res = []
        for p_r, s_r, k_r, box in zip(pts, score, sub, boxes):
            s = np.median(s_r, axis=0).astype(np.float64)
            k = int(np.bincount(k_r, minlength=self.model.cfg.K).argmax())
            res.append(
                Landmarks(
                    points=np.median(p_r, axis=0),
                    visible=s >= self.visibility_threshold,
                    scores=s,
                    yaw_subspace=k,
                    box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                )
            )
        return res

    def predict(self, image: np.ndarray, box: Box) -> Landmarks:
        return self.predict_batch(image, [box])[0]


class GodpLandmarker1Roi(GodpLandmarker):
    """GoDP on the single unperturbed ROI (no median fusion)."""

    name = "godp-1roi"

    def __init__(self, **kw):
        kw.setdefault("n_rois", 1)
        super().__init__(**kw)
