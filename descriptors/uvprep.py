"""Photometric normalisation of a UV texture before description, and the region grid.

* :func:`tan_triggs` -- the illumination normalisation chain of Tan & Triggs (IEEE TIP 2010,
  "Enhanced local texture feature sets for face recognition under difficult lighting", sec. II):
  gamma correction (gamma = 0.2), difference of Gaussians (sigma0 = 1, sigma1 = 2), two-stage
  contrast equalisation (alpha = 0.1, tau = 10) and a final ``tau * tanh(I / tau)``. Texels
  outside the visibility mask are excluded from the equalisation statistics and set to 0.
* :func:`region_grid` -- the ``G x G`` grid of square regions over the UV map and the visible
  fraction of each region.

Arrays: UV images ``(S, S, 3)`` uint8 or ``(S, S)``; masks ``(S, S)`` float in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """uint8 RGB/gray -> float32 gray in [0, 255]."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image.astype(np.float32)


def tan_triggs(
    gray: np.ndarray,
    mask: np.ndarray | None = None,
    gamma: float = 0.2,
    sigma0: float = 1.0,
    sigma1: float = 2.0,
    alpha: float = 0.1,
    tau: float = 10.0,
) -> np.ndarray:
    """Tan-Triggs normalisation of a float gray image ``(H, W)``; returns float32 ``(H, W)``."""
    x = np.power(np.maximum(gray, 0.0) / 255.0 + 1e-3, gamma)
    x = cv2.GaussianBlur(x, (0, 0), sigma0) - cv2.GaussianBlur(x, (0, 0), sigma1)
    m = np.ones_like(x, bool) if mask is None else mask > 0.5
    if not m.any():
        return np.zeros_like(x, np.float32)
    v = np.abs(x[m])
    x = x / (np.mean(v**alpha) ** (1 / alpha) + 1e-8)
    v = np.abs(x[m])
    x = x / (np.mean(np.minimum(tau, v) ** alpha) ** (1 / alpha) + 1e-8)
    x = tau * np.tanh(x / tau)
    x[~m] = 0.0
    return x.astype(np.float32)


def region_grid(size: int, grid: int) -> np.ndarray:
    """``(size, size)`` int map of region ids (row-major, ``grid x grid`` square regions)."""
    cell = np.minimum(np.arange(size) * grid // size, grid - 1)
    return (cell[:, None] * grid + cell[None, :]).astype(np.int64)


def region_visibility(mask: np.ndarray, grid: int) -> np.ndarray:
    """Mean mask value of each of the ``grid * grid`` regions, ``(grid*grid,)`` in [0, 1]."""
    ids = region_grid(mask.shape[0], grid)
    tot = np.bincount(ids.ravel(), weights=mask.ravel().astype(np.float64), minlength=grid * grid)
    cnt = np.bincount(ids.ravel(), minlength=grid * grid)
    return (tot / np.maximum(cnt, 1)).astype(np.float32)


def region_histograms(codes: np.ndarray, weights: np.ndarray, grid: int, n_codes: int) -> np.ndarray:
    """Per-region weighted code histograms ``(grid*grid, n_codes)`` of a ``(H, W)`` code map."""
    ids = region_grid(codes.shape[0], grid)
    flat = ids.ravel() * n_codes + codes.ravel()
    h = np.bincount(flat, weights=weights.ravel().astype(np.float64), minlength=grid * grid * n_codes)
    return h.reshape(grid * grid, n_codes).astype(np.float32)


def hellinger_blocks(hist: np.ndarray) -> np.ndarray:
    """Normalise each region histogram to unit mass and take the square root (Hellinger kernel
    -> cosine), so each visible region block has unit L2 norm; empty regions stay 0."""
    s = hist.sum(1, keepdims=True)
    return np.sqrt(np.where(s > 0, hist / np.maximum(s, 1e-12), 0.0)).astype(np.float32)
