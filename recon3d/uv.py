"""UV texture lifting (the UR2D "texture lifting" step): the image colour of every UV texel of the
fitted 3D face, with a visibility / confidence mask and optional mirror filling.

For a UV map of S x S texels (texel (i, j) has its centre at u = (j + 0.5) / S, v = (i + 0.5) / S;
u right, v down, the SFM texture layout):

1. the model's triangles are rasterised once in UV space (cached per S), giving each texel a
   triangle and barycentric coordinates, hence a 3D point on the fitted mesh;
2. the point is projected with the fitted camera and the image is sampled there (bilinear,
   ``cv2.remap``);
3. visibility (self-occlusion): the texel's depth is compared with a z-buffer of the fitted mesh
   rendered in the image (:func:`recon3d.raster.rasterize`), with a tolerance of ``depth_tol_mm``;
   texels projecting outside the image are not seen;
4. confidence: the cosine of the angle between the surface normal and the direction to the camera
   (0 at grazing angles, 1 facing the camera), clipped to [0, 1]; mask = visible x confidence;
5. mirror filling (optional): the SFM texture layout is exactly mirror-symmetric (u -> 1 - u maps
   every vertex to its symmetric vertex, see :mod:`recon3d.make_data`), so the symmetric texel of
   (i, j) is (i, S - 1 - j); texels whose own confidence is below ``mirror_below`` take the
   symmetric texel's colour when that one is better seen; their mask value is the source
   confidence x ``mirror_weight`` (< 1) and they are flagged in :attr:`LiftedTexture.mirrored`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pipeline.errors import FitError
from pipeline.types import Fit3D, UVTexture
from recon3d.camera import Camera
from recon3d.model import MorphableModel, load_model, vertex_normals
from recon3d.raster import rasterize, sample_bilinear
from recon3d.render import face_box

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiftConfig:
    """size: UV map side S (texels); depth_tol_mm: z-buffer tolerance (mm) of the visibility test;
    zbuffer_face_px: the z-buffer is rendered at a scale where the face box is about this many pixels
    (at most the image's own scale); mirror_fill: fill poorly seen texels from their mirror texel;
    mirror_below: confidence under which a texel is filled; mirror_weight: mask factor of filled
    texels."""

    size: int = 256
    depth_tol_mm: float = 3.0
    zbuffer_face_px: int = 192
    mirror_fill: bool = False
    mirror_below: float = 0.05
    mirror_weight: float = 0.5


@dataclass(frozen=True, eq=False)
class LiftedTexture(UVTexture):
    """A :class:`pipeline.types.UVTexture` (image (S, S, 3) uint8, mask (S, S) float in [0, 1]) plus
    mirrored: (S, S) bool, texels filled from their mirror texel (their mask is scaled by
    ``mirror_weight``), and valid: (S, S) bool, texels that lie on the mesh at all."""

    mirrored: np.ndarray | None = None
    valid: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class UVRaster:
    """Per-texel triangle id (S, S) int32 (-1 = off the mesh) and barycentrics (S, S, 3)."""

    tri: np.ndarray
    bary: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.tri >= 0


@lru_cache(maxsize=8)
def uv_raster(model: MorphableModel, size: int) -> UVRaster:
    """Rasterise the model's triangles in UV space at size x size texels (cached)."""
    xy = model.texcoords * size - 0.5
    r = rasterize(xy, None, model.triangles, size, size, cull="none")
    tri = r.tri.copy()
    tri.setflags(write=False)
    bary = r.bary.copy()
    bary.setflags(write=False)
    return UVRaster(tri, bary)


def texel_attributes(model: MorphableModel, size: int, per_vertex: np.ndarray) -> np.ndarray:
    """Interpolate a per-vertex attribute (N, C) to the valid texels: returns (M, C) in the order
    of ``np.flatnonzero(uv_raster(model, size).valid)``."""
    uvr = uv_raster(model, size)
    flat = np.flatnonzero(uvr.tri.reshape(-1) >= 0)
    tv = model.triangles[uvr.tri.reshape(-1)[flat]]
    bc = uvr.bary.reshape(-1, 3)[flat].astype(np.float64)
    return np.einsum("mk,mkd->md", bc, np.asarray(per_vertex, dtype=np.float64)[tv])


def _zbuffer(model: MorphableModel, vertices: np.ndarray, camera: Camera, face_px: int) -> tuple[np.ndarray, Camera]:
    """Depth buffer of the mesh over its own bounding box, at a scale where the face box is at most
    ``face_px`` pixels. Returns the buffer and the camera that maps model points to its pixels."""
    box, _ = face_box(model, vertices, camera)
    side = max(box[2] - box[0], box[3] - box[1], 1e-6)
    k = min(1.0, face_px / side)
    xy = camera.project(vertices)
    lo = xy.min(0) - 1.0
    hi = xy.max(0) + 1.0
    cam = Camera(camera.R, camera.s * k, (camera.t - lo) * k)
    w = max(1, int(np.ceil((hi[0] - lo[0]) * k)) + 1)
    h = max(1, int(np.ceil((hi[1] - lo[1]) * k)) + 1)
    ras = rasterize(cam.project(vertices), cam.depth(vertices), model.triangles, w, h, cull="back", with_bary=False)
    return ras.depth, cam


def lift_texture(
    image: np.ndarray,
    fit: Fit3D,
    size: int = 256,
    mirror_fill: bool = False,
    config: LiftConfig | None = None,
    model: MorphableModel | None = None,
) -> LiftedTexture:
    """Lift the face texture of ``image`` (H, W, 3) uint8 RGB or (H, W) gray into the model's UV
    layout using ``fit`` (vertices (N, 3) mm and its scaled-orthographic camera).

    Returns a :class:`LiftedTexture` (a UVTexture): image (size, size, 3) uint8, mask (size, size)
    float in [0, 1] = visibility x cos(angle to the camera), plus the ``mirrored`` and ``valid``
    flags. ``config`` overrides size / mirror_fill when given."""
    cfg = config or LiftConfig(size=int(size), mirror_fill=bool(mirror_fill))
    model = model or load_model()
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3 or img.size == 0:
        raise FitError(f"lift_texture needs an (H, W, 3) or (H, W) image, got shape {img.shape}")
    img = np.ascontiguousarray(img[:, :, :3])
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    V = np.asarray(fit.vertices, dtype=np.float64)
    if V.shape != model.mean.shape or not np.isfinite(V).all():
        raise FitError(f"fit vertices must be a finite {model.mean.shape} array, got {V.shape}")
    cam = Camera.from_dict(fit.camera)
    S = int(cfg.size)
    H, W = img.shape[:2]

    uvr = uv_raster(model, S)
    flat = np.flatnonzero(uvr.tri.reshape(-1) >= 0)
    normals = vertex_normals(V, model.triangles)
    attrs = texel_attributes(model, S, np.hstack([V, normals]))  # (M, 6)
    P3, nrm = attrs[:, :3], attrs[:, 3:]
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    xy = cam.project(P3)

    # visibility: inside the image, facing the camera, and passing the z-buffer test
    zbuf, zcam = _zbuffer(model, V, cam, cfg.zbuffer_face_px)
    zxy = zcam.project(P3)
    zd = zcam.depth(P3)
    zb = sample_bilinear(
        np.where(np.isfinite(zbuf), zbuf, -1e9).astype(np.float32), zxy[:, 0], zxy[:, 1], border=cv2.BORDER_CONSTANT
    )
    # nearest-pixel depth as well: bilinear mixes silhouette pixels with the background
    ix = np.clip(np.rint(zxy[:, 0]).astype(int), 0, zbuf.shape[1] - 1)
    iy = np.clip(np.rint(zxy[:, 1]).astype(int), 0, zbuf.shape[0] - 1)
    zn = zbuf[iy, ix]
    tol = cfg.depth_tol_mm * zcam.s
    depth_ok = zd >= np.minimum(zb, np.where(np.isfinite(zn), zn, -1e9)) - tol
    cosang = np.clip(nrm @ cam.R[2], 0.0, 1.0)
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] <= W - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= H - 0.5)
    conf = np.where(inside & depth_ok, cosang, 0.0)

    colours = sample_bilinear(img, xy[:, 0], xy[:, 1], border=cv2.BORDER_REPLICATE)
    tex: np.ndarray = np.zeros((S * S, 3), np.uint8)
    mask: np.ndarray = np.zeros(S * S, np.float64)
    seen = conf > 0
    tex[flat[seen]] = colours[seen]
    mask[flat] = conf
    tex = tex.reshape(S, S, 3)
    mask = mask.reshape(S, S)
    valid = uvr.tri >= 0
    mirrored = np.zeros((S, S), bool)
    if cfg.mirror_fill:
        tex, mask, mirrored = mirror_fill_texture(tex, mask, valid, cfg.mirror_below, cfg.mirror_weight)
    return LiftedTexture(image=tex, mask=mask.astype(np.float32), mirrored=mirrored, valid=valid.copy())


def mirror_fill_texture(
    tex: np.ndarray, mask: np.ndarray, valid: np.ndarray, below: float = 0.05, weight: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill texels with confidence < ``below`` from their mirror texel (i, S-1-j) when that one is
    seen better; returns (texture, mask, mirrored flags). Filled texels get mask = weight x the
    mirror texel's confidence. Pure function on (S, S, 3) / (S, S) arrays."""
    mt = tex[:, ::-1]
    mm = mask[:, ::-1]
    take = valid & (mask < below) & (mm > mask) & (mm > 0)
    out_t = tex.copy()
    out_m = mask.copy()
    out_t[take] = mt[take]
    out_m[take] = weight * mm[take]
    return out_t, out_m, take


def complete_texture(
    texture: UVTexture, mirror: bool = True, min_conf: float = 0.1, inpaint_radius: int = 5
) -> np.ndarray:
    """A hole-free (S, S, 3) uint8 texture for re-rendering (face profiling): texels seen with a
    confidence below ``min_conf`` (grazing angles smear the image) take their mirror texel when
    that one is seen well enough, the rest (and the texels off the mesh, so that bilinear lookups
    at the UV seams stay clean) are inpainted (Telea 2004, ``cv2.inpaint``). Not for recognition:
    the filled texels are guesses."""
    tex = np.asarray(texture.image).copy()
    mask = np.asarray(texture.mask, dtype=np.float64)
    poor = mask < min_conf
    if mirror:
        take = poor & (mask[:, ::-1] >= min_conf)
        tex[take] = tex[:, ::-1][take]
        poor &= ~take
    if poor.any() and (~poor).any():
        tex = cv2.inpaint(tex, poor.astype(np.uint8), inpaint_radius, cv2.INPAINT_TELEA)
    return tex
