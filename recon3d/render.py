"""CPU renderer: a textured morphable-model mesh at a given pose, with its 19 AFLW landmarks, their
self-occlusion visibility and the AFLW-convention face box.

Pipeline per image (all NumPy / OpenCV, no OpenGL):

1. project the vertices with a scaled-orthographic :class:`~recon3d.camera.Camera`
   (yaw / pitch / roll in degrees, s px/mm, t px; see :mod:`recon3d.camera` for the convention);
2. rasterise triangle ids with a z-buffer (:func:`recon3d.raster.rasterize`, back faces culled);
3. per covered pixel: barycentric interpolation of the texture coordinates and the vertex normals;
   albedo = bilinear lookup in the UV texture (``cv2.remap``); shading = ambient + Lambertian
   directional light, ``I = ka + kd max(0, n . l)`` (Phong 1975 without the specular term);
4. composite over the background (a colour or an image);
5. landmarks: the 19 AFLW points (:func:`recon3d.model.aflw19_points`) projected; a point is
   visible when it passes the depth test against the z-buffer (within ``depth_tol_mm``) and its
   surface normal faces the camera (``n . view > min_facing``), so in profile views the far-side
   eye, brow and mouth points turn invisible, as AFLW marks them;
6. face box: min / max of the projected iBUG-68 points, whose jaw points 1-8 / 10-17 are the
   silhouette ("landmark marching") vertices of the cheek rows (:func:`recon3d.model.ibug68_points`),
   i.e. the extent of the 68-point face as in AFLW2000-3D (``pt3d_68``), hidden side included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.types import Box, UVTexture
from recon3d.camera import Camera
from recon3d.model import MorphableModel, aflw19_matrix, ibug68_points, load_model, vertex_normals
from recon3d.raster import Raster, rasterize, sample_bilinear

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lighting:
    """Ambient + one directional light. direction: (3,) toward the light in the camera frame (x right,
    y up, z toward the viewer); colour multipliers are scalars (grey light)."""

    ambient: float = 0.55
    diffuse: float = 0.5
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class VisibilityConfig:
    """Landmark self-occlusion test: depth_tol_mm: how far (mm) behind the z-buffer surface a point
    may lie and still count as visible; min_facing: the smallest cosine between the point's surface
    normal and the direction to the camera; midline_min_facing: the same for points on the face's
    midline (nose tip, mouth centre, chin), which lie on the silhouette in profile and stay visible
    (AFLW annotates them) until the depth test hides them. Defaults chosen on the AFLW training crops
    (fit to the visible points, predicted vs annotated visibility; docs/recon3d/RESULTS.md)."""

    depth_tol_mm: float = 4.0
    min_facing: float = 0.2
    midline_min_facing: float = -0.5


@dataclass(frozen=True, eq=False)
class Rendered:
    """A rendered face: image (H, W, 3) uint8 RGB; landmarks (19, 2) px; visible (19,) bool
    (self-occlusion); box (x0, y0, x1, y1) the AFLW-convention face box (68-point extent);
    points68 (68, 2) px; mask (H, W) bool (face pixels); camera used."""

    image: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    box: Box
    points68: np.ndarray
    mask: np.ndarray
    camera: Camera


# --- geometry helpers -------------------------------------------------------------------------------


def face_box(model: MorphableModel, vertices: np.ndarray, camera: Camera) -> tuple[Box, np.ndarray]:
    """AFLW-convention face box: min / max of the projected iBUG-68 points (silhouette jaw contour,
    hidden side included). Returns (box, (68, 2) points)."""
    p68 = camera.project(ibug68_points(model, vertices, camera.R))
    x0, y0 = p68.min(0)
    x1, y1 = p68.max(0)
    return (float(x0), float(y0), float(x1), float(y1)), p68


def frame_camera(
    vertices: np.ndarray,
    yaw: float,
    pitch: float = 0.0,
    roll: float = 0.0,
    width: int = 256,
    height: int = 306,
    face_size: float = 0.55,
    center: tuple[float, float] = (0.5, 0.5),
    model: MorphableModel | None = None,
    constant_scale: bool = True,
) -> Camera:
    """A camera that frames the face: the 68-point box has max(w, h) = face_size * min(W, H) and its
    centre at ``center`` (fractions of W, H). constant_scale: take s from the frontal (0, 0, 0) box so
    the head keeps its size over poses (as a physical camera would); else from this pose's box."""
    model = model or load_model()
    ref = Camera.from_pose(0.0, 0.0, 0.0, 1.0) if constant_scale else Camera.from_pose(yaw, pitch, roll, 1.0)
    (x0, y0, x1, y1), _ = face_box(model, vertices, ref)
    s = face_size * min(width, height) / max(x1 - x0, y1 - y0)
    cam = Camera.from_pose(yaw, pitch, roll, s)
    (x0, y0, x1, y1), _ = face_box(model, vertices, cam)
    t = np.array([center[0] * (width - 1) - (x0 + x1) / 2, center[1] * (height - 1) - (y0 + y1) / 2])
    return Camera(cam.R, cam.s, t)


def landmark_visibility(
    model: MorphableModel,
    vertices: np.ndarray,
    camera: Camera,
    depth: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    config: VisibilityConfig = VisibilityConfig(),
) -> np.ndarray:
    """(19,) bool self-occlusion visibility of the AFLW landmarks: a point is visible when it passes
    the depth test against the z-buffer ``depth`` (H, W) (rendered here at a small size when None)
    within ``depth_tol_mm`` or lies on the silhouette (next to a background pixel), and its
    (group-averaged) vertex normal has cos(angle to the camera) > ``min_facing`` (midline points:
    ``midline_min_facing``). Points outside the z-buffer are judged by the normal alone."""
    W19 = aflw19_matrix(model)
    pts3 = W19 @ vertices
    n = W19 @ (normals if normals is not None else vertex_normals(vertices, model.triangles))
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    midline = np.abs(W19 @ model.mean[:, 0]) < 3.0  # nose tip, mouth centre, chin
    facing = n @ camera.R[2] > np.where(midline, config.midline_min_facing, config.min_facing)
    cam = camera
    if depth is None:  # render a small depth buffer of the face (~160 px)
        box, _ = face_box(model, vertices, camera)
        k = 160.0 / max(box[2] - box[0], box[3] - box[1], 1e-6)
        cam = Camera(camera.R, camera.s * k, (camera.t - np.array(box[:2])) * k)
        xy = cam.project(vertices)
        depth = rasterize(xy, cam.depth(vertices), model.triangles, 170, 170, cull="back", with_bary=False).depth
    H, W = depth.shape
    xy = cam.project(pts3)
    d = cam.depth(pts3)
    ix = np.rint(xy[:, 0]).astype(int)
    iy = np.rint(xy[:, 1]).astype(int)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    ok = np.ones(len(pts3), bool)
    if inside.any():
        # 3x3 neighbourhood of each point: the nearest surface there (robust to rounding), and
        # whether the point sits on the silhouette (a background pixel next to it)
        zs = np.stack(
            [depth[np.clip(iy + dy, 0, H - 1), np.clip(ix + dx, 0, W - 1)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        )
        on_edge = ~np.isfinite(zs).all(0)
        zmin = np.where(np.isfinite(zs), zs, np.inf).min(0)
        passes = on_edge | (d >= zmin - config.depth_tol_mm * cam.s)
        ok[inside] = passes[inside]
    return ok & facing


# --- shading ------------------------------------------------------------------------------------------


def _as_texture(texture) -> np.ndarray:
    if texture is None:
        return np.full((8, 8, 3), 180, np.uint8)
    img = texture.image if isinstance(texture, UVTexture) else np.asarray(texture)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def _background(background, width: int, height: int) -> np.ndarray:
    if isinstance(background, np.ndarray) and background.ndim >= 2:
        bg = background
        if bg.ndim == 2:
            bg = np.repeat(bg[:, :, None], 3, axis=2)
        if bg.shape[:2] != (height, width):
            bg = cv2.resize(bg, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(bg[:, :, :3], dtype=np.uint8).copy()
    col = np.broadcast_to(np.asarray(background, dtype=np.float64).reshape(-1), (3,))
    return np.full((height, width, 3), np.clip(col, 0, 255), np.uint8)


def shade(
    raster: Raster,
    triangles: np.ndarray,
    texcoords: np.ndarray,
    normals_cam: np.ndarray,
    texture: np.ndarray,
    lighting: Lighting,
) -> tuple[np.ndarray, np.ndarray]:
    """Colour of the covered pixels: returns (flat pixel indices (M,), colours (M, 3) float 0..255).

    texcoords (N, 2) in [0, 1] (v down); normals_cam (N, 3) unit normals in the camera frame;
    texture (S_h, S_w, 3) uint8."""
    H, W = raster.tri.shape
    flat = np.flatnonzero(raster.tri.reshape(-1) >= 0)
    tv = triangles[raster.tri.reshape(-1)[flat]]  # (M, 3)
    bc = raster.bary.reshape(-1, 3)[flat].astype(np.float64)  # (M, 3)
    uv = np.einsum("mk,mkd->md", bc, texcoords[tv])
    th, tw = texture.shape[:2]
    albedo = sample_bilinear(texture, uv[:, 0] * tw - 0.5, uv[:, 1] * th - 0.5)
    n = np.einsum("mk,mkd->md", bc, normals_cam[tv])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    ldir = np.asarray(lighting.direction, dtype=np.float64)
    ldir = ldir / max(float(np.linalg.norm(ldir)), 1e-12)
    inten = lighting.ambient + lighting.diffuse * np.clip(n @ ldir, 0.0, None)
    return flat, albedo.astype(np.float64) * inten[:, None]


# --- rendering ----------------------------------------------------------------------------------------


def render(
    vertices: np.ndarray,
    texture: UVTexture | np.ndarray | None,
    camera: Camera,
    width: int = 256,
    height: int = 306,
    lighting: Lighting = Lighting(),
    background=(0, 0, 0),
    model: MorphableModel | None = None,
    visibility: VisibilityConfig = VisibilityConfig(),
) -> Rendered:
    """Render the mesh ``vertices`` (N, 3) mm with a UV ``texture`` (a :class:`UVTexture`, an
    (S, S, 3) uint8 image in the model's UV layout, or None for plain grey) through ``camera`` into a
    ``width`` x ``height`` image over ``background`` (an RGB colour or an image, resized to fit).
    Returns a :class:`Rendered` with the 19 landmarks, their visibility and the face box."""
    model = model or load_model()
    V = np.asarray(vertices, dtype=np.float64)
    xy = camera.project(V)
    z = camera.depth(V)
    ras = rasterize(xy, z, model.triangles, width, height, cull="back")
    normals = vertex_normals(V, model.triangles)
    img = _background(background, width, height)
    flat, col = shade(ras, model.triangles, model.texcoords, normals @ camera.R.T, _as_texture(texture), lighting)
    img.reshape(-1, 3)[flat] = np.clip(col + 0.5, 0, 255).astype(np.uint8)
    pts = camera.project(aflw19_matrix(model) @ V)
    vis = landmark_visibility(model, V, camera, depth=ras.depth, normals=normals, config=visibility)
    box, p68 = face_box(model, V, camera)
    return Rendered(image=img, landmarks=pts, visible=vis, box=box, points68=p68, mask=ras.tri >= 0, camera=camera)


def render_pose(
    vertices: np.ndarray,
    texture: UVTexture | np.ndarray | None,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    width: int = 256,
    height: int = 306,
    scale: float | None = None,
    translation: tuple[float, float] | None = None,
    face_size: float = 0.55,
    lighting: Lighting = Lighting(),
    background=(0, 0, 0),
    model: MorphableModel | None = None,
    visibility: VisibilityConfig = VisibilityConfig(),
) -> Rendered:
    """Render at a pose given in degrees (yaw > 0: nose towards image-left; pitch > 0: looking up;
    roll > 0: clockwise in the image). scale (px/mm) and translation (px position of the model origin)
    default to :func:`frame_camera` (face box = face_size x min(W, H), centred, size constant over
    poses)."""
    model = model or load_model()
    cam = frame_camera(vertices, yaw, pitch, roll, width, height, face_size, model=model)
    if scale is not None or translation is not None:
        cam = Camera(
            cam.R,
            float(scale) if scale is not None else cam.s,
            np.asarray(translation, dtype=np.float64) if translation is not None else cam.t,
        )
    return render(vertices, texture, cam, width, height, lighting, background, model, visibility)
