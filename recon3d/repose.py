"""Renderer helpers for re-posed faces: the mesh's mouth opening, framing a real photo like a render,
and exact 2x downsampling.

Pure functions over :mod:`recon3d.model` / :mod:`recon3d.render`; the face-profiling recipe that uses
them (pose sampling, nuisance, backgrounds) lives in the data factory (``facedata.recipe``).
Units: pixels (x right, y down, origin at the top-left pixel's centre), model coordinates in mm.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from pipeline.types import Box, Fit3D
from recon3d.camera import Camera
from recon3d.model import MorphableModel, load_model


@lru_cache(maxsize=4)
def mouth_loop(model: MorphableModel) -> np.ndarray:
    """Vertex ids (in order) of the mesh's inner boundary loop: the Surrey Face Model's mouth opening
    (the mesh has two boundary loops, its outer rim and the slit between the lips). Empty when the
    mesh has no inner loop."""
    tri = np.asarray(model.triangles)
    e = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(e, axis=0, return_counts=True)
    border = uniq[counts == 1]
    adj: dict[int, list[int]] = {}
    for a, b in border:
        adj.setdefault(int(a), []).append(int(b))
        adj.setdefault(int(b), []).append(int(a))
    loops, seen = [], set()
    for start in sorted(adj):
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            nxt = [v for v in adj[cur] if v != prev and v not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    if len(loops) < 2:
        return np.zeros(0, np.int64)
    loops.sort(key=len)
    return np.asarray(loops[0], np.int64)


def fill_mouth(
    image: np.ndarray, mask: np.ndarray, mouth_polygon: np.ndarray | None = None, darken: float = 0.35
) -> tuple[np.ndarray, np.ndarray]:
    """Paint the mesh's mouth opening. The Surrey Face Model has an open mouth (a boundary loop between
    the lips); when a fitted or added expression parts the lips, the background shows through it.
    Painted: pixels off the mesh that the mesh encloses (not connected to the image border), and
    pixels off the mesh inside ``mouth_polygon`` (the projected mouth loop, (n, 2) px; it covers the
    parted lips in profile, where the gap opens onto the silhouette). Their colour is ``darken`` x
    the mean colour of the face pixels around them (a dark mouth interior). Returns the image and the
    face mask including the painted pixels. Pure function."""
    m = np.asarray(mask, bool)
    if not m.any():
        return image, m
    off = np.pad(~m, 1, constant_values=True).astype(np.uint8)
    _, lab = cv2.connectedComponents(off, connectivity=4)
    holes = ((lab != lab[0, 0]) & (off > 0))[1:-1, 1:-1]
    if mouth_polygon is not None and len(mouth_polygon) >= 3:
        poly = np.zeros(m.shape, np.uint8)
        cv2.fillPoly(poly, [np.rint(np.asarray(mouth_polygon) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        holes |= (poly > 0) & ~m
    if not holes.any():
        return image, m
    ring = cv2.dilate(holes.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & m
    img = image.copy()
    col = img[ring].mean(0) if ring.any() else np.array([60.0, 30.0, 30.0])
    img[holes] = np.clip(col * darken, 0, 255).astype(np.uint8)
    return img, m | holes


def frame_photo(
    image: np.ndarray,
    fit: Fit3D,
    width: int,
    height: int,
    face_px: float,
    center: tuple[float, float] | None = None,
    model: MorphableModel | None = None,
) -> tuple[np.ndarray, np.ndarray, Box]:
    """Crop and scale a real photo so that its face is framed like a render of the fitted face with
    ``constant_scale`` framing: the scale makes the face's frontal-pose AFLW box ``face_px`` wide (max
    side), and the box at the fitted pose is centred on ``center`` (default: the image centre).

    image: (H, W, 3) uint8; fit: its :class:`Fit3D` (vertices, camera in the photo's pixels).
    Returns (out (height, width, 3) uint8, M (2, 3) affine photo px -> out px, the fitted face box in
    out px). Downscaling is anti-aliased (Gaussian pre-blur); outside the photo the frame is filled with
    the median colour of the photo's outer two-pixel frame (replicating the border would draw streaks,
    mirroring it would add partial faces)."""
    from recon3d.render import face_box

    model = model or load_model()
    V = np.asarray(fit.vertices, np.float64)
    cam = Camera.from_dict(fit.camera)
    (fx0, fy0, fx1, fy1), _ = face_box(model, V, Camera.from_pose(0.0, 0.0, 0.0, 1.0))
    k = face_px / max(fx1 - fx0, fy1 - fy0) / cam.s
    box, _ = face_box(model, V, cam)
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    tgt = np.array(center if center is not None else ((width - 1) / 2, (height - 1) / 2), np.float64)
    M = np.array([[k, 0.0, tgt[0] - k * c[0]], [0.0, k, tgt[1] - k * c[1]]])
    img = np.asarray(image)
    if k < 1.0:
        img = cv2.GaussianBlur(img, (0, 0), 0.5 * math.sqrt(1.0 / k**2 - 1.0))
    frame = np.concatenate(
        [
            img[:2].reshape(-1, img.shape[-1] if img.ndim == 3 else 1),
            img[-2:].reshape(-1, img.shape[-1] if img.ndim == 3 else 1),
            img[:, :2].reshape(-1, img.shape[-1] if img.ndim == 3 else 1),
            img[:, -2:].reshape(-1, img.shape[-1] if img.ndim == 3 else 1),
        ]
    )
    fill = tuple(float(v) for v in np.median(frame, axis=0))
    out = cv2.warpAffine(
        img, M, (int(width), int(height)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
    )
    b = (k * box[0] + M[0, 2], k * box[1] + M[1, 2], k * box[2] + M[0, 2], k * box[3] + M[1, 2])
    return out, M, (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def downsample2(image: np.ndarray) -> np.ndarray:
    """Exact 2x area downsampling (W x H -> W/2 x H/2, e.g. 256x306 -> 128x153); coordinates map as
    ``x' = (x + 0.5) / 2 - 0.5``."""
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
