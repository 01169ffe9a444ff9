"""Face box + landmark overlays: the one drawer behind every debug image, figure and contact sheet.

Colours (RGB, exact: drawn without anti-aliasing, so a palette can keep them): visible landmarks
are filled green discs, occluded ones red rings (hollow), face boxes yellow. Coordinates follow
:mod:`pipeline.types`: pixels, x right, y down, origin at the centre of the top-left pixel.
Pure functions: the input image is never modified.

Pose axes (optional, ``rotations=``): the model axes of a fitted head -- x (the subject's left) red,
y (up) green, z (toward the viewer) blue -- projected with the fit's (3, 3) model-to-camera rotation
``R`` (``pipeline.types.Fit3D.camera["R"]``; scaled orthographic, model y up, image y down: axis k is
drawn along ``(R[0, k], -R[1, k])``), as arrows from the nose tip or the box centre.
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
#: pose axes x (the subject's left), y (up), z (toward the viewer)
AXIS_COLOURS: tuple[Colour, Colour, Colour] = ((255, 0, 0), (0, 255, 0), (0, 0, 255))

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
    *,
    rotations: Sequence[np.ndarray | None] | None = None,
    axis_origins: Sequence[Sequence[float] | None] | None = None,
    axis_length: float | None = None,
) -> np.ndarray:
    """Copy of ``image`` with several faces drawn: each face's box and landmarks (and pose axes).

    image: (H, W, 3|4) RGB(A) or (H, W) gray, uint8 (other dtypes are clipped to 0..255).
    boxes[j]: face j's box (x0, y0, x1, y1) in pixels, or None (no box). points_list[j]: its
    landmarks, (K, 2) float pixels (x, y), or None (box only); non-finite points are skipped.
    visible_list[j]: (K,) bool visibility, or None (all visible); ``visible_list`` None: all
    visible. radius: landmark radius in pixels (None or 0: :func:`default_radius`); box and ring
    lines are drawn with cv2 thickness ``max(1, radius // 3)``.

    Returns an (H, W, 3) uint8 RGB image: boxes in :data:`BOX_COLOUR` (yellow), visible
    landmarks as filled :data:`VISIBLE_COLOUR` (green) discs, occluded ones as
    :data:`OCCLUDED_COLOUR` (red) rings; landmarks are drawn over boxes, later faces over earlier ones.

    Pose axes (keyword-only; nothing is drawn without ``rotations``): ``rotations[j]``: face j's
    (3, 3) model-to-camera rotation (``Fit3D.camera["R"]``) or None (no axes); ``axis_origins[j]``:
    the (x, y) pixel the axes start from (e.g. the nose tip), or None / ``axis_origins`` None: the
    box centre (no box: the mean of the finite landmarks; neither: no axes); ``axis_length``: a
    unit axis's length in pixels (default: half the box's larger side, else a quarter of the
    image's smaller side). See :func:`draw_pose_axes`; axes are drawn over the landmarks.
    Raises ValueError when the lists differ in length or a face's points and visibility do.
    """
    img = _rgb_copy(image)
    if len(boxes) != len(points_list) or (visible_list is not None and len(visible_list) != len(points_list)):
        raise ValueError(
            f"{len(boxes)} boxes, {len(points_list)} point sets and "
            f"{'no' if visible_list is None else len(visible_list)} visibility sets: one each per face"
        )
    for what, seq in (("rotations", rotations), ("axis origins", axis_origins)):
        if seq is not None and len(seq) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(seq)} {what}: one each per face")
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
    if rotations is not None:
        for j, (box, points, R) in enumerate(zip(boxes, points_list, rotations)):
            if R is None:
                continue
            given = axis_origins[j] if axis_origins is not None else None
            origin = _axis_origin(box, points) if given is None else np.asarray(given, np.float64).reshape(2)
            if origin is None:
                continue
            length = axis_length if axis_length else _axis_length(box, img.shape)
            _draw_axes(img, np.asarray(R, dtype=np.float64), origin, float(length), max(1, (r + 1) // 2))
    return img


def _axis_origin(box: Box | None, points: np.ndarray | None) -> np.ndarray | None:
    """The box centre, else the mean of the finite points, else None."""
    if box is not None:
        b = np.asarray(box, dtype=np.float64).reshape(4)
        if np.isfinite(b).all():
            return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts):
            return pts.mean(0)
    return None


def _axis_length(box: Box | None, shape: Sequence[int]) -> float:
    if box is not None:
        b = np.asarray(box, dtype=np.float64).reshape(4)
        if np.isfinite(b).all() and max(b[2] - b[0], b[3] - b[1]) > 0:
            return 0.5 * float(max(b[2] - b[0], b[3] - b[1]))
    return 0.25 * float(min(shape[0], shape[1]))


def _draw_axes(img: np.ndarray, R: np.ndarray, origin: np.ndarray, length: float, thickness: int) -> None:
    """Draw the three pose axes in place (farthest from the viewer first, so nearer axes stay on top)."""
    if R.shape != (3, 3) or not np.isfinite(R).all():
        raise ValueError(f"a pose rotation must be a finite (3, 3) matrix, got shape {R.shape}")
    if not np.isfinite(origin).all() or not np.isfinite(length):
        return
    o = np.clip(origin, -_FAR, _FAR)
    start = tuple(int(u) for u in np.rint(o))
    for k in np.argsort(R[2]):  # depth of each axis' tip: most negative (away from the viewer) first
        d = np.array([R[0, k], -R[1, k]]) * length
        tip = tuple(int(u) for u in np.rint(np.clip(o + d, -_FAR, _FAR)))
        if tip == start:  # an axis pointing at the viewer: a dot
            cv2.circle(img, start, thickness, AXIS_COLOURS[k], -1)
            continue
        cv2.arrowedLine(img, start, tip, AXIS_COLOURS[k], thickness, cv2.LINE_8, tipLength=0.2)


def draw_pose_axes(
    image: np.ndarray,
    rotation: np.ndarray,
    origin: Sequence[float],
    length: float,
    thickness: int | None = None,
) -> np.ndarray:
    """Copy of ``image`` (RGB / gray) with the pose axes of ``rotation`` ((3, 3) model-to-camera, as
    ``Fit3D.camera["R"]``) drawn as arrows from ``origin`` (x, y) pixels: x (the subject's left)
    red, y (up) green, z (toward the viewer) blue (:data:`AXIS_COLOURS`), each ``length`` pixels
    for an axis parallel to the image (shorter when it points into or out of the image).
    thickness: line width in pixels (default ``max(1, (default_radius + 1) // 2)``). Returns an
    (H, W, 3) uint8 RGB image."""
    img = _rgb_copy(image)
    t = int(thickness) if thickness else max(1, (default_radius(img.shape) + 1) // 2)
    _draw_axes(img, np.asarray(rotation, dtype=np.float64), np.asarray(origin, np.float64).reshape(2), float(length), t)
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
