"""Aligned face chips for the dlib ResNet family: dlib's 150x150 chip (``get_face_chip``, padding 0.25)
placed by dlib's five alignment points, built from the pipeline's 19 AFLW landmarks.

The five points (dlib's ``shape_predictor_5_face_landmarks`` order): image-right eye outer and inner
corner, image-left eye outer and inner corner, nose bottom. From AFLW-19 they are the eye corners 11,
9, 6, 8 and the mean of the nose wings 12 and 14 (0-based). dlib fits a similarity transform from
them to its template and cuts the chip with bilinear interpolation; this is the chip
``compute_face_descriptor(image, shape)`` describes.

>>> five_points(np.arange(38, dtype=float).reshape(19, 2))[4].tolist()
[26.0, 27.0]
"""

from __future__ import annotations

import numpy as np

from pipeline.manifest import dlib_model_path
from pipeline.types import NUM_LANDMARKS

CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: dlib's 5 alignment points as groups of AFLW-19 indices (each point is the mean of its group)
FIVE_FROM_AFLW = ((11,), (9,), (6,), (8,), (12, 14))

_SP = None


def five_points(points: np.ndarray) -> np.ndarray:
    """dlib's 5 alignment points (5, 2) px from the 19 AFLW landmarks ``points`` (19, 2) px."""
    points = np.asarray(points, dtype=float)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"points must be ({NUM_LANDMARKS}, 2), got {points.shape}")
    return np.stack([points[list(g)].mean(axis=0) for g in FIVE_FROM_AFLW])


def dlib_shape(image: np.ndarray, box, points: np.ndarray | None = None):
    """A ``dlib.full_object_detection`` for the face in ``box`` (x0, y0, x1, y1) px: the 5 points from
    the AFLW ``points`` when given and finite, else dlib's 5-point predictor run in the box."""
    import dlib

    global _SP
    x0, y0, x1, y1 = box
    rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
    if points is not None and np.isfinite(points).all():
        pts = [dlib.point(int(round(x)), int(round(y))) for x, y in five_points(points)]
        return dlib.full_object_detection(rect, pts)
    if _SP is None:
        _SP = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    return _SP(np.ascontiguousarray(image), rect)


def chip_from_landmarks(image: np.ndarray, box, points: np.ndarray | None = None) -> np.ndarray:
    """The (150, 150, 3) uint8 RGB chip of the face in ``box`` of the RGB ``image`` (H, W, 3) uint8,
    aligned on the AFLW ``points`` (19, 2) px (or dlib's predictor when ``points`` is None)."""
    import dlib

    img = np.ascontiguousarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    chip = dlib.get_face_chip(img, dlib_shape(img, box, points), size=CHIP_SIZE, padding=CHIP_PADDING)
    return np.asarray(chip, dtype=np.uint8)
