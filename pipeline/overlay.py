"""Face box + landmark overlays: the one drawer behind every debug image, figure and contact sheet.

Colours (RGB, exact: drawn without anti-aliasing, so a palette can keep them): visible landmarks
are filled green discs, occluded ones red rings (hollow), face boxes yellow. Coordinates follow
:mod:`pipeline.types`: pixels, x right, y down, origin at the centre of the top-left pixel.
Pure functions: the input image is never modified.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from pipeline.types import Box

Colour = tuple[int, int, int]

#: filled disc of a visible landmark
VISIBLE_COLOUR: Colour = (0, 255, 0)
#: ring (hollow) of an occluded landmark
OCCLUDED_COLOUR: Colour = (255, 0, 0)
#: outline of a face box
BOX_COLOUR: Colour = (255, 220, 0)

_FAR = 1 << 20  # coordinates are clamped to +-this many pixels (cv2 draws with int32 fixed point)


def default_radius(shape: Sequence[int]) -> int:
    """Landmark radius (pixels) for an image of ``shape`` (H, W[, C]): ``max(1, round(min(H, W) / 150))``."""
    return max(1, int(round(min(shape[0], shape[1]) / 150)))


def _rgb_copy(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 contiguous copy of an RGB / RGBA / (H, W[, 1]) gray image (other dtypes are
    clipped to 0..255)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"expected an (H, W) gray or (H, W, 3|4) RGB image, got shape {img.shape}")
    img = img[:, :, :3]
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.array(img, dtype=np.uint8, order="C", copy=True)


def draw_faces(
    image: np.ndarray,
    boxes: Sequence[Box | None],
    points_list: Sequence[np.ndarray | None],
    visible_list: Sequence[np.ndarray | None] | None = None,
    radius: int | None = None,
) -> np.ndarray:
    """Copy of ``image`` with several faces drawn: each face's box and landmarks.

    image: (H, W, 3|4) RGB(A) or (H, W) gray, uint8 (other dtypes are clipped to 0..255).
    boxes[j]: face j's box (x0, y0, x1, y1) in pixels, or None (no box). points_list[j]: its
    landmarks, (K, 2) float pixels (x, y), or None (box only); non-finite points are skipped.
    visible_list[j]: (K,) bool visibility, or None (all visible); ``visible_list`` None: all
    visible. radius: landmark radius in pixels (None or 0: :func:`default_radius`); box and ring
    lines are drawn with cv2 thickness ``max(1, radius // 3)``.

    Returns an (H, W, 3) uint8 RGB image: boxes in :data:`BOX_COLOUR` (yellow), visible
    landmarks as filled :data:`VISIBLE_COLOUR` (green) discs, occluded ones as
    :data:`OCCLUDED_COLOUR` (red) rings; landmarks are drawn over boxes, later faces over earlier ones.
    Raises ValueError when the lists differ in length or a face's points and visibility do.
    """
    img = _rgb_copy(image)
    if len(boxes) != len(points_list) or (visible_list is not None and len(visible_list) != len(points_list)):
        raise ValueError(
            f"{len(boxes)} boxes, {len(points_list)} point sets and "
            f"{'no' if visible_list is None else len(visible_list)} visibility sets: one each per face"
        )
    r = int(radius) if radius else default_radius(img.shape)
    width = max(1, r // 3)
    for j, (box, points) in enumerate(zip(boxes, points_list)):
        if box is not None:
            b = np.asarray(box, dtype=np.float64).reshape(4)
            if np.isfinite(b).all():
                x0, y0, x1, y1 = (int(v) for v in np.rint(np.clip(b, -_FAR, _FAR)))
                cv2.rectangle(img, (x0, y0), (x1, y1), BOX_COLOUR, width)
        if points is None:
            continue
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        vis = visible_list[j] if visible_list is not None else None
        vis = np.ones(len(pts), bool) if vis is None else np.asarray(vis, dtype=bool).reshape(-1)
        if len(vis) != len(pts):
            raise ValueError(f"face {j}: {len(pts)} landmarks but {len(vis)} visibility flags")
        for p, v in zip(pts, vis):
            if not np.isfinite(p).all():
                continue
            c = tuple(int(u) for u in np.rint(np.clip(p, -_FAR, _FAR)))
            if v:
                cv2.circle(img, c, r, VISIBLE_COLOUR, -1)
            else:
                cv2.circle(img, c, r, OCCLUDED_COLOUR, width)
    return img


def draw_landmarks(
    image: np.ndarray,
    points: np.ndarray,
    visible: np.ndarray | None = None,
    box: Box | None = None,
    radius: int | None = None,
) -> np.ndarray:
    """Copy of ``image`` with one face drawn: :func:`draw_faces` with ``[box]``, ``[points]``,
    ``[visible]`` (same shapes, units and colours; returns (H, W, 3) uint8 RGB)."""
    return draw_faces(image, [box], [points], [visible], radius)
