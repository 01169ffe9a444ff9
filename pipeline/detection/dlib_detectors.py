"""dlib baselines for the detect stage: the HOG + linear SVM frontal detector (5 views, up to
about 45 degrees of yaw) and the MMOD CNN detector.

Tightly cropped faces (the face fills the frame) are common inputs; dlib's detectors need
context around the face, so when nothing is found on the image as given, it is padded by
``pad`` (fraction of its size) with the edge colour and searched again, and the boxes are
mapped back (SPEC section 2).
"""

from __future__ import annotations

import logging

import numpy as np

from pipeline.manifest import dlib_model_path
from pipeline.types import Detection

log = logging.getLogger(__name__)


def pad_image(image: np.ndarray, pad: float) -> tuple[np.ndarray, int, int]:
    """Pad by ``pad`` x (H, W) on every side (edge replication); returns (image, dx, dy)."""
    import cv2

    if pad <= 0:
        return image, 0, 0
    h, w = image.shape[:2]
    dy, dx = int(round(pad * h)), int(round(pad * w))
    return cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_REPLICATE), dx, dy


def _upsample_for(image: np.ndarray, min_face: int, native: int) -> int:
    """Pyramid up-samplings so that faces of ``min_face`` px reach the detector's ``native`` size."""
    up = 0
    size = float(min_face)
    while size < native and up < 3:
        size *= 2
        up += 1
    # never blow small images past ~4 Mpx
    while up > 0 and image.shape[0] * image.shape[1] * 4**up > 4e6:
        up -= 1
    return up


class _PaddedRetry:
    """detect(): run on the image; when nothing is found, run again on a padded copy."""

    pad: float

    def _run(self, img: np.ndarray) -> list[Detection]:
        raise NotImplementedError

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = np.ascontiguousarray(image)
        found = self._run(image)
        if not found and self.pad > 0:
            img, dx, dy = pad_image(image, self.pad)
            found = [
                Detection((d.box[0] - dx, d.box[1] - dy, d.box[2] - dx, d.box[3] - dy), d.score, d.view)
                for d in self._run(img)
            ]
        return sorted(found, key=lambda d: -d.score)


class DlibHogDetector(_PaddedRetry):
    """dlib's ``get_frontal_face_detector`` (HOG + linear SVM, 5 sub-detectors).

    min_face: smallest face side (px) to look for (controls up-sampling: dlib's native
    window is 80 px); pad: context padding for tight crops; threshold: SVM score cut-off.
    """

    name = "dlib-hog"
    proposal_threshold: float | None = None  # keeps its own threshold under a verifying refiner
    VIEWS = ("frontal", "left_look", "right_look", "frontal_rotated_left", "frontal_rotated_right")

    def __init__(self, min_face: int = 40, pad: float = 0.25, threshold: float = 0.0):
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.min_face, self.pad, self.threshold = min_face, pad, threshold

    def _run(self, img: np.ndarray) -> list[Detection]:
        up = _upsample_for(img, self.min_face, 80)
        rects, scores, idx = self._det.run(img, up, self.threshold)
        return [
            Detection(
                (r.left(), r.top(), r.right() + 1, r.bottom() + 1),
                float(s),
                self.VIEWS[int(i)] if 0 <= int(i) < len(self.VIEWS) else None,
            )
            for r, s, i in zip(rects, scores, idx)
        ]


class DlibMmodDetector(_PaddedRetry):
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``)."""

    name = "dlib-mmod"
    proposal_threshold: float | None = None  # keeps its own threshold under a verifying refiner

    def __init__(self, min_face: int = 40, pad: float = 0.25, threshold: float = 0.0):
        import dlib

        self._det = dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod_human_face_detector.dat")))
        self.min_face, self.pad, self.threshold = min_face, pad, threshold

    def _run(self, img: np.ndarray) -> list[Detection]:
        if min(img.shape[:2]) < self.min_face:
            return []  # no face of min_face px fits (and dlib's CNN refuses inputs smaller than its filters)
        up = _upsample_for(img, self.min_face, 80)
        return [
            Detection((d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1), float(d.confidence), None)
            for d in self._det(img, up)
            if d.confidence >= self.threshold
        ]
