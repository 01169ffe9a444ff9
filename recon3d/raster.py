"""Vectorised triangle rasteriser with a z-buffer (NumPy only, no OpenGL).

For every triangle, the pixel centres inside its bounding box are enumerated at once (``np.repeat``
over the boxes), tested with the edge functions (barycentric coordinates, Pineda 1988), and the
closest candidate per pixel is kept with ``np.maximum.at`` on a depth buffer (the z-buffer test,
Catmull 1974). Pixel (i, j) has its centre at (x, y) = (j, i), the project's convention.

This is the shared kernel of :mod:`recon3d.render` (image-space rendering) and :mod:`recon3d.uv`
(UV-space rasterisation and the visibility z-buffer).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Candidate pixels processed per chunk (bounds memory for large triangles / images).
CHUNK = 2_000_000


@dataclass(frozen=True, eq=False)
class Raster:
    """Rasteriser output for an H x W grid.

    tri: (H, W) int32 triangle id per pixel (-1 = empty); bary: (H, W, 3) float32 barycentric
    coordinates of the pixel centre in that triangle (0 where empty); depth: (H, W) float32
    interpolated depth (larger = closer; -inf where empty).
    """

    tri: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels covered by a triangle."""
        return self.tri >= 0


def rasterize(
    xy: np.ndarray,
    depth: np.ndarray | None,
    triangles: np.ndarray,
    width: int,
    height: int,
    cull: str = "none",
    with_bary: bool = True,
) -> Raster:
    """Rasterise triangles with a z-buffer.

    xy: (N, 2) vertex positions in pixels (x right, y down); depth: (N,) (larger = closer) or None
    (no depth test: any covering triangle wins; for non-overlapping meshes like a UV layout);
    triangles: (T, 3) vertex ids; cull: "none", "back" (drop triangles that are clockwise in a
    y-up frame, i.e. counter-clockwise on the y-down image: the back faces of a mesh whose front
    faces are counter-clockwise seen from the viewer) or "front".
    Returns a :class:`Raster`.
    """
    W, H = int(width), int(height)
    xy = np.asarray(xy, dtype=np.float64)
    z = np.zeros(len(xy)) if depth is None else np.asarray(depth, dtype=np.float64)
    tris = np.asarray(triangles, dtype=np.int64)
    a, b, c = xy[tris[:, 0]], xy[tris[:, 1]], xy[tris[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.abs(area) > 1e-12
    if cull == "back":
        keep &= area < 0  # front faces (CCW with y up) are CW on the y-down image: area < 0
    elif cull == "front":
        keep &= area > 0
    lo = np.minimum(np.minimum(a, b), c)
    hi = np.maximum(np.maximum(a, b), c)
    x0 = np.maximum(np.ceil(lo[:, 0]), 0).astype(np.int64)
    y0 = np.maximum(np.ceil(lo[:, 1]), 0).astype(np.int64)
    x1 = np.minimum(np.floor(hi[:, 0]), W - 1).astype(np.int64)
    y1 = np.minimum(np.floor(hi[:, 1]), H - 1).astype(np.int64)
    keep &= (x1 >= x0) & (y1 >= y0) & np.isfinite(area)
    ids = np.flatnonzero(keep)

    zbuf = np.full(H * W, -np.inf)
    tbuf = np.full(H * W, -1, dtype=np.int64)
    b0buf = np.zeros(H * W)
    b1buf = np.zeros(H * W)
    if len(ids):
        # per-triangle planes: l0, l1 and depth are affine in (x, y): q = qa * x + qb * y + qc
        inv = 1.0 / area[ids]
        aa, bb, cc = a[ids], b[ids], c[ids]
        planes = np.empty((len(ids), 9))
        planes[:, 0] = (bb[:, 1] - cc[:, 1]) * inv
        planes[:, 1] = (cc[:, 0] - bb[:, 0]) * inv
        planes[:, 2] = (bb[:, 0] * cc[:, 1] - bb[:, 1] * cc[:, 0]) * inv
        planes[:, 3] = (cc[:, 1] - aa[:, 1]) * inv
        planes[:, 4] = (aa[:, 0] - cc[:, 0]) * inv
        planes[:, 5] = (cc[:, 0] * aa[:, 1] - cc[:, 1] * aa[:, 0]) * inv
        t3 = tris[ids]
        z0, z1, z2 = z[t3[:, 0]], z[t3[:, 1]], z[t3[:, 2]]
        planes[:, 6] = planes[:, 0] * (z0 - z2) + planes[:, 3] * (z1 - z2)
        planes[:, 7] = planes[:, 1] * (z0 - z2) + planes[:, 4] * (z1 - z2)
        planes[:, 8] = planes[:, 2] * (z0 - z2) + planes[:, 5] * (z1 - z2) + z2
        bw = x1[ids] - x0[ids] + 1
        counts = bw * (y1[ids] - y0[ids] + 1)
        # planes relative to each triangle's box corner: small numbers, safe in float32
        ox, oy = x0[ids].astype(np.float64), y0[ids].astype(np.float64)
        for k in (0, 3, 6):
            planes[:, k + 2] += planes[:, k] * ox + planes[:, k + 1] * oy
        planes = planes.astype(np.float32)
        ends = np.cumsum(counts)
        starts = ends - counts
        # chunk boundaries over triangles so that each chunk has at most CHUNK candidates
        cuts = [0]
        while cuts[-1] < len(ids):
            nxt = int(np.searchsorted(ends, starts[cuts[-1]] + CHUNK, side="right"))
            cuts.append(max(nxt, cuts[-1] + 1))
        for i, j in zip(cuts[:-1], cuts[1:]):
            _raster_chunk(
                ids[i:j],
                counts[i:j],
                bw[i:j],
                x0[ids[i:j]],
                y0[ids[i:j]],
                planes[i:j],
                W,
                zbuf,
                tbuf,
                b0buf,
                b1buf,
                depth is not None,
            )
    tri = tbuf.reshape(H, W).astype(np.int32)
    zimg = zbuf.reshape(H, W).astype(np.float32)
    bary: np.ndarray = np.zeros((H * W, 3), np.float32)
    if with_bary:
        hit = np.flatnonzero(tbuf >= 0)
        lam = np.empty((len(hit), 3))
        lam[:, 0] = b0buf[hit]
        lam[:, 1] = b1buf[hit]
        lam[:, 2] = 1.0 - lam[:, 0] - lam[:, 1]
        np.clip(lam, 0.0, 1.0, out=lam)
        lam /= np.maximum(lam.sum(1, keepdims=True), 1e-12)
        bary[hit] = lam
    bary = bary.reshape(H, W, 3)
    return Raster(tri=tri, bary=bary, depth=zimg)


def _raster_chunk(ids, counts, bw, x0, y0, planes, W, zbuf, tbuf, b0buf, b1buf, use_depth):
    n = int(counts.sum())
    local = np.repeat(np.arange(len(ids)), counts)  # triangle of each candidate (index into this chunk)
    off = np.arange(n) - (np.cumsum(counts) - counts)[local]
    dy, dx = np.divmod(off, bw[local])
    fx = dx.astype(np.float32)
    fy = dy.astype(np.float32)
    pl = planes[local]
    l0 = pl[:, 0] * fx + pl[:, 1] * fy + pl[:, 2]
    l1 = pl[:, 3] * fx + pl[:, 4] * fy + pl[:, 5]
    eps = np.float32(-1e-5)
    inside = (l0 >= eps) & (l1 >= eps) & (l0 + l1 <= 1 - eps)
    sel = np.flatnonzero(inside)
    if len(sel) == 0:
        return
    lt = local[sel]
    pix = (y0[lt] + dy[sel]) * W + (x0[lt] + dx[sel])
    tid = ids[lt]
    cand = np.full(len(zbuf), -1, dtype=np.int64)
    if use_depth:
        zc = (pl[sel, 6] * fx[sel] + pl[sel, 7] * fy[sel] + pl[sel, 8]).astype(np.float64)
        np.maximum.at(zbuf, pix, zc)
        win = np.flatnonzero(zc >= zbuf[pix])
        cand[pix[win]] = win  # one assignment: the tri id and barycentrics come from the same winner
    else:
        zbuf[pix] = 0.0
        cand[pix] = np.arange(len(sel))
    hit = np.flatnonzero(cand >= 0)
    k = cand[hit]
    tbuf[hit] = tid[k]
    b0buf[hit] = l0[sel[k]]
    b1buf[hit] = l1[sel[k]]


def barycentric(tri: np.ndarray, xy: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 barycentric coordinates of each pixel centre in its triangle ``tri`` (H, W)
    (-1 = none -> zeros); xy (N, 2) vertex pixels, triangles (T, 3)."""
    H, W = tri.shape
    out = np.zeros((H, W, 3), np.float32)
    iy, ix = np.nonzero(tri >= 0)
    if len(iy) == 0:
        return out
    t3 = np.asarray(triangles)[tri[iy, ix]]
    a, b, c = xy[t3[:, 0]], xy[t3[:, 1]], xy[t3[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    l0 = ((b[:, 0] - ix) * (c[:, 1] - iy) - (b[:, 1] - iy) * (c[:, 0] - ix)) / area
    l1 = ((c[:, 0] - ix) * (a[:, 1] - iy) - (c[:, 1] - iy) * (a[:, 0] - ix)) / area
    lam = np.clip(np.stack([l0, l1, 1.0 - l0 - l1], axis=1), 0.0, 1.0)
    lam /= lam.sum(1, keepdims=True)
    out[iy, ix] = lam
    return out


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Bilinear lookup of ``image`` (H, W[, C]) at M pixel positions x, y (M,) (pixel centres at
    integers) with ``cv2.remap``; returns (M, C) (or (M,)) in the image dtype."""
    m = len(x)
    cols = 1024
    rows = max(1, -(-m // cols))
    mx = np.full(rows * cols, -1.0, np.float32)
    my = np.full(rows * cols, -1.0, np.float32)
    mx[:m] = x
    my[:m] = y
    out = cv2.remap(image, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR, borderMode=border)
    return out.reshape(rows * cols, *image.shape[2:])[:m]
