"""Uniform LBP histograms on the UV map -- the classic baseline (Ojala et al., TPAMI 2002;
Ahonen et al., TPAMI 2006, "Face description with local binary patterns").

``LBP^{u2}_{8,R}``: 8 neighbours on a circle of radius R (bilinear), thresholded at the centre;
the 58 uniform patterns (at most two 0/1 transitions) keep their own bin, all others share one
(59 bins). Histograms are counted per region of a ``grid x grid`` partition of the UV map over
the visible texels only, made unit-mass and square-rooted (Hellinger), concatenated:
``grid^2 * 59`` dimensions (16 x 16 -> 15,104). The signature's mask is the per-region
visibility, so matching can compare only regions both faces show.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from descriptors.uvprep import hellinger_blocks, region_histograms, region_visibility, to_gray_float
from pipeline.errors import FaceError
from pipeline.types import FaceResult, Signature


def uniform_table(P: int = 8) -> np.ndarray:
    """(2^P,) map from LBP code to its uniform-pattern bin (P*(P-1)+2 uniform bins + 1 other)."""
    table = np.full(2**P, P * (P - 1) + 2, np.int64)
    nxt = 0
    for code in range(2**P):
        bits = [(code >> i) & 1 for i in range(P)]
        trans = sum(bits[i] != bits[(i + 1) % P] for i in range(P))
        if trans <= 2:
            table[code] = nxt
            nxt += 1
    return table


_TABLE = uniform_table(8)
N_BINS = 59


def lbp_codes(gray: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """Uniform LBP(8, R) bin of every pixel of a float gray ``(H, W)`` image -> int ``(H, W)``."""
    h, w = gray.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    code = np.zeros((h, w), np.int64)
    for i in range(8):
        a = 2 * np.pi * i / 8
        mx = (xs + radius * np.cos(a)).astype(np.float32)
        my = (ys - radius * np.sin(a)).astype(np.float32)
        nb = cv2.remap(gray, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        code |= (nb >= gray).astype(np.int64) << i
    return _TABLE[code]


@dataclass(frozen=True)
class LbpConfig:
    size: int = 128  # UV map is resized to size x size
    grid: int = 16  # regions per side
    radius: float = 2.0
    min_visible: float = 0.5  # a region counts as visible when this fraction of it is seen


def lbp_describe(uv_image: np.ndarray, uv_mask: np.ndarray, cfg: LbpConfig = LbpConfig()) -> Signature:
    """Signature of a UV texture: ``vector`` (grid^2 * 59,) unit norm, ``mask`` (grid^2,) bool."""
    g = cv2.resize(to_gray_float(uv_image), (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
    m = cv2.resize(uv_mask.astype(np.float32), (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
    codes = lbp_codes(g, cfg.radius)
    vis = region_visibility(m, cfg.grid) >= cfg.min_visible
    hist = region_histograms(codes, (m > 0.5).astype(np.float32), cfg.grid, N_BINS)
    blocks = hellinger_blocks(hist) * vis[:, None]
    v = blocks.ravel()
    n = float(np.linalg.norm(v))
    if n == 0:
        raise FaceError("no visible texture to describe (the UV mask is empty)")
    return Signature(vector=(v / n).astype(np.float32), mask=vis, kind="lbp")


class LbpDescriptor:
    """The ``lbp`` descriptor stage: uniform LBP histograms of the lifted UV texture."""

    name = "lbp"
    needs_3d = True
    needs_landmarks = True

    def __init__(self, **cfg):
        self.cfg = LbpConfig(**cfg)

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature:
        if face.uv is None:
            raise FaceError("the lbp descriptor needs the UV texture (fit + lift stages)")
        return lbp_describe(face.uv.image, face.uv.mask, self.cfg)
