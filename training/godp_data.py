"""GoDP's training data: landmark sets loaded into memory, augmentation and batches of score-map targets.

A landmark set is a folder with ``annotations.jsonl`` (:func:`facedata.readers.read_annotations`):
the AFLW crops (pre-cropped, the image *is* the ROI) or face-profiling renders (the ROI is the
3DDFA square of each line's ``box``). Coordinates follow :mod:`landmarks.godp.data` (160 px input,
80 px score maps).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facedata.readers import read_annotations
from landmarks.godp.data import INPUT, MAP, input_to_map, yaw_subspace
from landmarks.roi import Roi, apply_affine, roi_from_box
from pipeline.types import AFLW19_MIRROR, NUM_LANDMARKS

log = logging.getLogger(__name__)


@dataclass
class LandmarkSet:
    """A landmark set in memory.

    images: list of (h, w) uint8 gray images; rois: (N, 3) square ROI (cx, cy, side) per face;
    points: (N, L, 2) float (NaN where unknown); visible: (N, L) bool; known: (N, L) bool;
    yaw: (N,) degrees; names: image paths relative to the set root.
    """

    images: list
    rois: np.ndarray
    points: np.ndarray
    visible: np.ndarray
    known: np.ndarray
    yaw: np.ndarray
    names: list

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, idx) -> "LandmarkSet":
        idx = np.asarray(idx)
        return LandmarkSet(
            [self.images[i] for i in idx],
            self.rois[idx],
            self.points[idx],
            self.visible[idx],
            self.known[idx],
            self.yaw[idx],
            [self.names[i] for i in idx],
        )


def load_landmark_set(
    root: str | Path,
    names: set[str] | None = None,
    exclude: set[str] | None = None,
    full_frame: bool = False,
    desc: str = "loading",
) -> LandmarkSet:
    """Load a SPEC landmark set. ``full_frame``: the image *is* the ROI (pre-cropped sets such
    as ``aflw_crops``); otherwise the ROI is the 3DDFA square of each line's ``box``.
    An optional ``known`` key per line lists which invisible points have true coordinates
    (face-profiling renders); without it only visible points are known."""
    root = Path(root)
    rows = read_annotations(root)
    if names is not None:
        rows = [r for r in rows if r["image"] in names]
    if exclude:
        rows = [r for r in rows if r["image"] not in exclude]
    images, rois, pts, vis, known, yaws, nm = [], [], [], [], [], [], []
    for r in tqdm(rows, desc=desc, unit="img", leave=False):
        img = cv2.imread(str(root / r["image"]), cv2.IMREAD_GRAYSCALE)
        if img is None:
            log.warning("skipping unreadable %s", root / r["image"])
            continue
        h, w = img.shape
        v = np.asarray(r["visible"], bool)
        p = np.asarray(r["landmarks"], np.float64)
        k = np.asarray(r.get("known", v), bool) | v
        p[~k] = np.nan
        if full_frame:
            roi = Roi((w - 1) / 2.0, (h - 1) / 2.0, float(max(w, h)))
        else:
            roi = roi_from_box(r["box"])
        images.append(img)
        rois.append((roi.cx, roi.cy, roi.side))
        pts.append(p)
        vis.append(v)
        known.append(k)
        yaws.append(np.nan if r.get("yaw") is None else float(r["yaw"]))
        nm.append(r["image"])
    return LandmarkSet(
        images,
        np.asarray(rois, np.float64).reshape(-1, 3),
        np.asarray(pts).reshape(-1, NUM_LANDMARKS, 2),
        np.asarray(vis).reshape(-1, NUM_LANDMARKS),
        np.asarray(known).reshape(-1, NUM_LANDMARKS),
        np.asarray(yaws, np.float64),
        nm,
    )


@dataclass(frozen=True)
class AugmentConfig:
    scale: float = 0.10  # ROI side * (1 + U(-s, s))
    shift: float = 0.06  # ROI centre + U(-t, t) * side
    rotate: float = 20.0  # degrees, applied with probability p_rotate
    p_rotate: float = 0.6
    p_mirror: float = 0.5
    p_blur: float = 0.25
    p_noise: float = 0.2
    contrast: float = 0.35  # gain in [1-c, 1+c]
    brightness: float = 25.0  # bias in [-b, b]
    p_lowres: float = 0.0  # probability of a low-resolution copy (0 keeps the random stream of runs without it)
    lowres: tuple[float, float] = (0.35, 0.8)  # the crop is shrunk to U(lo, hi) x 160 px and enlarged back


def make_sample(ds: LandmarkSet, i: int, rng: np.random.Generator | None, aug: AugmentConfig, K: int):
    """One (input 160x160 float32 in [0,1], map points (L,2), visible (L,), known (L,), subspace)."""
    img = ds.images[i]
    cx, cy, side = ds.rois[i]
    pts = ds.points[i].copy()
    vis = ds.visible[i].copy()
    known = ds.known[i].copy()
    yaw = ds.yaw[i] if np.isfinite(ds.yaw[i]) else 0.0
    angle = 0.0
    mirror = False
    if rng is not None:
        side = side * (1.0 + rng.uniform(-aug.scale, aug.scale))
        cx += rng.uniform(-aug.shift, aug.shift) * side
        cy += rng.uniform(-aug.shift, aug.shift) * side
        if rng.random() < aug.p_rotate:
            angle = rng.uniform(-aug.rotate, aug.rotate)
        mirror = rng.random() < aug.p_mirror
    m = Roi(cx, cy, side, angle).matrix(INPUT)
    if mirror:  # x -> INPUT-1-x in the crop frame, and swap left/right points
        m = np.array([[-1.0, 0.0, INPUT - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
        perm = np.asarray(AFLW19_MIRROR)
        pts, vis, known = pts[perm], vis[perm], known[perm]
        yaw = -yaw
    crop = cv2.warpAffine(img, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    x = crop.astype(np.float32)
    if rng is not None and aug.p_lowres > 0 and rng.random() < aug.p_lowres:
        # a small face (e.g. 50 px in a 128 px image) enlarged to the 160 px input: detail is lost
        side_px = max(8, int(round(INPUT * rng.uniform(*aug.lowres))))
        x = cv2.resize(
            cv2.resize(x, (side_px, side_px), interpolation=cv2.INTER_AREA),
            (INPUT, INPUT),
            interpolation=cv2.INTER_LINEAR,
        )
    if rng is not None:
        if rng.random() < aug.p_blur:
            x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.6))
        x = x * rng.uniform(1 - aug.contrast, 1 + aug.contrast) + rng.uniform(-aug.brightness, aug.brightness)
        if rng.random() < aug.p_noise:
            x = x + rng.normal(0, rng.uniform(2, 10), x.shape).astype(np.float32)
        x = np.clip(x, 0, 255)
    p_in = apply_affine(m, np.nan_to_num(pts, nan=-1e4))
    p_map = input_to_map(p_in)
    p_map[~known] = np.nan
    inside = np.all((p_map > -0.5) & (p_map < MAP - 0.5), axis=1)
    vis = vis & inside
    known = known & inside
    return x / 255.0, p_map.astype(np.float32), vis, known, int(yaw_subspace(yaw, K))


def make_batch(ds: LandmarkSet, idx, rng, aug: AugmentConfig, K: int):
    xs, ps, vs, ks, ss = zip(*(make_sample(ds, int(i), rng, aug, K) for i in idx))
    return (np.stack(xs)[:, None], np.stack(ps), np.stack(vs), np.stack(ks), np.asarray(ss, np.int64))


def nme_in_crop(pred: np.ndarray, gt: np.ndarray, vis: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Per-face NME (percent) over visible points, normalised by ``norm`` (N,)."""
    err = np.linalg.norm(pred - gt, axis=-1)
    err = np.where(vis, err, np.nan)
    with np.errstate(invalid="ignore"):
        return np.nanmean(err, axis=1) / norm * 100.0


def visible_box_size(pts: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """sqrt(w*h) of the box around the visible points (aflw_crops' ``box`` convention)."""
    out = np.full(len(pts), np.nan)
    for i, (p, v) in enumerate(zip(pts, vis)):
        if v.sum() >= 2:
            q = p[v]
            w, h = np.ptp(q[:, 0]), np.ptp(q[:, 1])
            out[i] = math.sqrt(max(w, 1e-3) * max(h, 1e-3))
    return out
