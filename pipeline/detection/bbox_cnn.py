"""``bbox-cnn``: a learned bounding-box regressor from a detector box to the AFLW-style face box.

The seed paper refines the head hunter's boxes with a deep regressor so that the landmark
network sees the framing it was trained on. Here a small CNN looks at the detector window
with context and predicts where the AFLW-style box (the extent of the 68 iBUG points incl.
the hidden side, the convention of ``aflw2000_3d_dev`` and the face-profiling renders) lies,
in the detector box's frame (the R-CNN box parametrisation, Girshick et al. 2014, Eq. C):

    detector square (cx, cy, s)  ->  crop of side CONTEXT * s, gray, SIZE x SIZE
    outputs t = (tx, ty, ts, tr):   cx' = cx + tx * s,  cy' = cy + ty * s,
                                    side' = s * exp(ts)  (side' = max(w', h')),
                                    h'/w' = exp(tr)

so the refined box is (cx' -+ w'/2, cy' -+ h'/2) with max(w', h') = side'. Training:
``python -m training.bbox_cnn`` (detector outputs on training images vs their
ground-truth boxes; parameters in ``models/bbox_cnn.safetensors`` with a sha256 in the manifest).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.detection.boxes import square_of
from pipeline.types import Detection

SIZE = 64  # crop side (px)
CONTEXT = 1.5  # crop side / detector box side


class BoxNet(nn.Module):
    """4 conv blocks (3x3 conv, BN, ReLU, 2x2 max-pool) + global average + 2 FC; ~0.1 M params.
    Input (B, ``in_channels``, 64, 64) float in [0, 1]-ish (x / 255 - 0.5): one crop, or the crops of
    one box at several context factors (:func:`crops_for`); output (B, ``outputs``): t for the box
    regressor (4), one face / non-face logit for ``pipeline.detection.face_check`` (1)."""

    def __init__(self, width: int = 16, outputs: int = 4, in_channels: int = 1):
        super().__init__()
        chans = [in_channels, width, 2 * width, 4 * width, 6 * width]
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [
                nn.Conv2d(a, b, 3, padding=1, bias=False),
                nn.BatchNorm2d(b),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(chans[-1] * 16, 128), nn.ReLU(inplace=True), nn.Linear(128, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, C, 4, 4)
        return self.head(f)


def crop_for(gray: np.ndarray, box, context: float = CONTEXT) -> np.ndarray:
    """The network input for a detector ``box``: (SIZE, SIZE) uint8, the square of side ``context`` x
    the box's side on its centre, border replicated."""
    import cv2

    from landmarks.roi import Roi

    cx, cy, s = square_of(box)
    m = Roi(cx, cy, context * max(s, 1.0)).matrix(SIZE)
    return cv2.warpAffine(
        gray,
        m,
        (SIZE, SIZE),
        flags=cv2.INTER_AREA if s * context > 2 * SIZE else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def crops_for(gray: np.ndarray, box, contexts=(CONTEXT,)) -> np.ndarray:
    """:func:`crop_for` at each context factor: (len(contexts), SIZE, SIZE) uint8."""
    return np.stack([crop_for(gray, box, c) for c in contexts])


def encode(det_box, gt_box) -> np.ndarray:
    """Targets t (4,) of ``gt_box`` relative to ``det_box`` (see the module docstring)."""
    cx, cy, s = square_of(det_box)
    x0, y0, x1, y1 = gt_box
    w, h = x1 - x0, y1 - y0
    return np.array(
        [((x0 + x1) / 2 - cx) / s, ((y0 + y1) / 2 - cy) / s, math.log(max(w, h) / s), math.log(h / w)], np.float32
    )


def decode(det_box, t) -> tuple[float, float, float, float]:
    """Inverse of :func:`encode`: the refined (x0, y0, x1, y1)."""
    cx, cy, s = square_of(det_box)
    tx, ty, ts, tr = (float(v) for v in t)
    side = s * math.exp(ts)
    r = math.exp(tr)
    w, h = (side / r, side) if r >= 1 else (side, side * r)
    cx, cy = cx + tx * s, cy + ty * s
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def to_input(crops: np.ndarray) -> torch.Tensor:
    """uint8 crops (N, H, W), or (N, C, H, W) with C context factors -> network input (N, C, H, W)."""
    x = crops.astype(np.float32)
    return torch.from_numpy((x[:, None] if x.ndim == 3 else x) / 255.0 - 0.5)


class BboxCnnRefiner:
    """Registered refiner ``bbox-cnn``: applies :class:`BoxNet` to each detection."""

    name = "bbox-cnn"
    ranks_by_score = False  # a plain refiner: the pipeline maps each box and keeps the largest face

    def __init__(self, model_dir=None):
        from pathlib import Path

        from pipeline.detection.dpm import MODEL_DIR, load_manifest
        from pipeline.manifest import entry as manifest_entry
        from pipeline.manifest import verified_path

        model_dir = Path(MODEL_DIR if model_dir is None else model_dir)
        entry = manifest_entry(
            model_dir,
            "refiner",
            manifest=load_manifest(model_dir),
            what="detector",
            command="python -m training.bbox_cnn",
        )
        path = verified_path(model_dir, entry, "bbox-cnn weights")
        from safetensors.torch import load_file

        self.net = BoxNet(int(entry.get("width", 16)))
        self.net.load_state_dict(load_file(str(path)))
        self.net.eval()
        self.cache_token = entry["sha256"][:16]

    @torch.no_grad()
    def predict(self, gray: np.ndarray, boxes: list) -> list[tuple[float, float, float, float]]:
        if not boxes:
            return []
        x = to_input(np.stack([crop_for(gray, b) for b in boxes]))
        t = self.net(x).numpy()
        return [decode(b, ti) for b, ti in zip(boxes, t)]

    def refine(self, image: np.ndarray, detection: Detection) -> Detection:
        from pipeline.imageio import to_gray_u8

        (box,) = self.predict(to_gray_u8(image), [detection.box])
        return Detection(box, detection.score, detection.view)
