"""Export: mesh to OBJ (+ MTL + UV texture PNG) or PLY (trimesh), PNG images, landmark overlays,
landmark files (ibug ``.pts``, named JSON) and the head pose of a fit.

Every file is written atomically: to a temporary file in the target folder, then ``os.replace``
(a reader never sees a half-written file; an interrupted export leaves the old file intact).
OBJ texture coordinates follow the OBJ convention (v up), i.e. ``vt = (u, 1 - v)`` of the model's
v-down texture coordinates. Vertices are written in model space (mm, x to the subject's left, y up,
z toward the viewer).

Landmarks: ``.pts`` is the ibug / 300-W format (``version: 1``, ``n_points: N``, ``{``, one ``x y``
line per point, ``}``) with **1-based** pixel coordinates, as the 300-W annotations (and
``tests/fixtures/*.pts``) are, i.e. the project's 0-based pixel coordinates + 1; :func:`read_pts`
undoes it. The named JSON (:func:`landmarks_json`) keeps the project's 0-based coordinates (x right,
y down, origin at the centre of the top-left pixel) and the AFLW-19 point names
(:data:`pipeline.types.AFLW19_NAMES`).

Head pose (:func:`head_pose`): (yaw, pitch, roll) in degrees from the fitted rotation, in the
convention of :mod:`recon3d.camera` (``R = Rx(pitch) Ry(yaw) Rz(roll)``, the AFLW2000-3D / 3DDFA
``Pose_Para`` convention): **yaw > 0** turns the nose towards image-LEFT (the subject turns to
his / her own right), **pitch > 0** turns the nose up (the face looks up), **roll > 0** is a
clockwise in-plane rotation as seen in the image (the image-right side of the face goes down).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline.atomic import atomic_write_bytes  # noqa: F401 - re-exported for the data factory (facedata)
from pipeline.overlay import draw_landmarks  # noqa: F401 - the landmark drawer, re-exported here
from pipeline.types import AFLW19_AFLW_IDS, AFLW19_NAMES, Fit3D, Landmarks, UVTexture
from recon3d.camera import rotation_to_euler
from recon3d.model import MorphableModel, load_model

log = logging.getLogger(__name__)


def encode_png(image: np.ndarray, palette: int | None = None) -> bytes:
    """PNG bytes of an RGB (H, W, 3) / gray (H, W) uint8 image; ``palette``: quantise to that many
    colours (smaller files for figures)."""
    from PIL import Image

    img = np.ascontiguousarray(np.asarray(image))
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    pil = Image.fromarray(img)
    if palette:
        pil = pil.quantize(colors=int(palette), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray, palette: int | None = None) -> Path:
    """Save an RGB / gray uint8 image as PNG, atomically."""
    return atomic_write_bytes(path, encode_png(image, palette))


def save_landmark_overlay(
    path: str | os.PathLike, image: np.ndarray, points: np.ndarray, visible: np.ndarray | None = None, box=None
) -> Path:
    """Save :func:`pipeline.overlay.draw_landmarks` (visible green, occluded red hollow, box yellow)
    as a PNG, atomically."""
    return save_png(path, draw_landmarks(image, points, visible, box))


def _texture_image(texture) -> np.ndarray | None:
    if texture is None:
        return None
    img = texture.image if isinstance(texture, UVTexture) else np.asarray(texture)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)


def to_trimesh(vertices: np.ndarray, texture=None, model: MorphableModel | None = None):
    """A ``trimesh.Trimesh`` of the model topology with ``vertices`` (N, 3) mm; with a UV ``texture``
    (UVTexture or (S, S, 3) uint8) it carries TextureVisuals (uv in the OBJ v-up convention)."""
    import trimesh
    from PIL import Image

    model = model or load_model()
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, dtype=np.float64), faces=model.triangles, process=False)
    tex = _texture_image(texture)
    if tex is not None:
        uv = np.column_stack([model.texcoords[:, 0], 1.0 - model.texcoords[:, 1]])
        material = trimesh.visual.material.SimpleMaterial(
            image=Image.fromarray(tex),
            diffuse=(255, 255, 255, 255),
            ambient=(255, 255, 255, 255),
            specular=(0, 0, 0, 255),
        )
        mesh.visual = trimesh.visual.texture.TextureVisuals(uv=uv, material=material)
    return mesh


#: Colour (RGB) of the PLY vertices the UV texture's visibility mask marks as not seen.
UNSEEN_COLOUR: tuple[int, int, int] = (128, 128, 128)


def export_obj(
    path: str | os.PathLike,
    vertices: np.ndarray,
    texture=None,
    model: MorphableModel | None = None,
    texture_name: str | None = None,
) -> list[Path]:
    """Write the mesh (``vertices`` (N, 3) mm, the model's triangles) as a Wavefront OBJ; with a
    ``texture`` (UVTexture or (S, S, 3) uint8 in the model's UV layout) also ``vt`` lines (the
    model's texture coordinates, v up), the ``.mtl`` beside it (``<stem>.mtl``) and the texture PNG
    (``texture_name``, default ``<stem>.png``), referenced by name. Returns the written paths
    (``.mtl``, texture, ``.obj``: the OBJ last, so a reader never finds it without its material)."""
    import trimesh

    p = Path(path)
    model = model or load_model()
    mesh = to_trimesh(vertices, texture, model)
    tex = _texture_image(texture)
    if tex is None:
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False)
        return [atomic_write_bytes(p, text.encode())]
    text, files = trimesh.exchange.obj.export_obj(
        mesh,
        include_normals=False,
        include_texture=True,
        return_texture=True,
        write_texture=False,
        mtl_name=p.stem + ".mtl",
    )
    tex_name = texture_name or p.stem + ".png"
    if Path(tex_name).name != tex_name or not tex_name.lower().endswith(".png"):
        raise ValueError(f"texture_name must be a bare .png file name, got {tex_name!r}")
    # name the texture after the mesh (trimesh calls it material_0.png) and fix the reference; the
    # texture is re-encoded here (trimesh's PNG is not optimised)
    images = [n for n in files if not n.endswith(".mtl")]
    out = []
    for name, data in files.items():
        if name.endswith(".mtl"):
            txt = data.decode()
            for old in images:
                txt = txt.replace(f"map_Kd {old}", f"map_Kd {tex_name}")
            out.append(atomic_write_bytes(p.parent / name, txt.encode()))
    if images:
        out.append(save_png(p.parent / tex_name, tex))
    out.append(atomic_write_bytes(p, text.encode()))
    return out


def vertex_colours(
    texture, model: MorphableModel | None = None, unseen: tuple[int, int, int] | None = UNSEEN_COLOUR
) -> np.ndarray:
    """(N, 3) uint8 colour of every model vertex, sampled (bilinear) from the UV ``texture`` at the
    vertex's texture coordinates. With a :class:`UVTexture` and ``unseen`` set, vertices where the
    texture's visibility mask is 0 (not seen in the image: the texture holds no colour there) get
    the colour ``unseen``; ``unseen=None`` or a plain image: every vertex keeps its sample."""
    from recon3d.raster import sample_bilinear

    model = model or load_model()
    tex = _texture_image(texture)
    if tex is None:
        raise ValueError("vertex_colours needs a texture")
    s_h, s_w = tex.shape[:2]
    x = model.texcoords[:, 0] * s_w - 0.5
    y = model.texcoords[:, 1] * s_h - 0.5
    col = np.asarray(sample_bilinear(tex, x, y), dtype=np.uint8).reshape(-1, 3).copy()
    if unseen is not None and isinstance(texture, UVTexture):
        mask = np.ascontiguousarray(np.asarray(texture.mask, dtype=np.float32))
        if mask.shape != (s_h, s_w):
            raise ValueError(f"texture mask {mask.shape} does not match the image {tex.shape[:2]}")
        seen = np.asarray(sample_bilinear(mask, x, y)).reshape(-1) > 0
        col[~seen] = np.asarray(unseen, dtype=np.uint8)
    return col


def export_ply(
    path: str | os.PathLike,
    vertices: np.ndarray,
    texture=None,
    model: MorphableModel | None = None,
    binary: bool = True,
    unseen: tuple[int, int, int] | None = UNSEEN_COLOUR,
) -> list[Path]:
    """Write the mesh as PLY (binary little-endian, or ASCII with ``binary=False``); with a
    ``texture``, per-vertex RGBA colours from :func:`vertex_colours` (alpha 255; vertices not seen
    in the image in :data:`UNSEEN_COLOUR` when the texture is a UVTexture). Returns ``[path]``."""
    import trimesh

    model = model or load_model()
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, dtype=np.float64), faces=model.triangles, process=False)
    if texture is not None:
        col = vertex_colours(texture, model, unseen)
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.column_stack([col, np.full(len(col), 255, np.uint8)])
        )
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary" if binary else "ascii")
    return [atomic_write_bytes(path, data)]


def export_mesh(
    path: str | os.PathLike, vertices: np.ndarray, texture=None, model: MorphableModel | None = None
) -> list[Path]:
    """Write the mesh to ``path``: ``.obj`` (:func:`export_obj`; with ``texture``: also the ``.mtl``
    and the texture PNG ``<stem>.png`` beside it, referenced by name) or ``.ply`` (:func:`export_ply`,
    binary; with ``texture``: per-vertex colours sampled at the vertices' texture coordinates, every
    vertex, seen or not). Returns the written paths."""
    suffix = Path(path).suffix.lower()
    if suffix == ".obj":
        return export_obj(path, vertices, texture, model)
    if suffix == ".ply":
        return export_ply(path, vertices, texture, model, binary=True, unseen=None)
    raise ValueError(f"unsupported mesh format {suffix!r}: use .obj or .ply")


def save_uv(path: str | os.PathLike, uv: UVTexture, mask_path: str | os.PathLike | None = None) -> list[Path]:
    """Save the UV texture ``uv.image`` as an RGB PNG at ``path`` and, with ``mask_path``, its
    visibility mask as an 8-bit gray PNG (``round(255 * mask)``: 0 not seen, 255 seen head-on).
    Returns the written paths."""
    tex = _texture_image(uv)
    if tex is None:
        raise ValueError("save_uv needs a UV texture")
    out = [save_png(path, tex)]
    if mask_path is not None:
        out.append(save_png(mask_path, mask_to_u8(uv.mask)))
    return out


def mask_to_u8(mask: np.ndarray) -> np.ndarray:
    """(S, S) float mask in [0, 1] -> (S, S) uint8 (``round(255 * clip(mask, 0, 1))``; NaN -> 0)."""
    m = np.nan_to_num(np.asarray(mask, dtype=np.float64), nan=0.0)
    return np.rint(np.clip(m, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- landmarks ----------------------------------------------------------------------------------------------


def _points(points) -> np.ndarray:
    pts = np.asarray(points.points if isinstance(points, Landmarks) else points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"expected (n, 2) landmark points, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("landmark points must be finite")
    return pts


def pts_text(points, decimals: int = 3) -> str:
    """The ibug / 300-W ``.pts`` text of (n, 2) 0-based pixel points (or a :class:`Landmarks`):
    ``version: 1``, ``n_points: n``, ``{``, ``x y`` per point (1-based: the value + 1), ``}``."""
    pts = _points(points) + 1.0
    lines = ["version: 1", f"n_points: {len(pts)}", "{"]
    lines += [f"{x:.{decimals}f} {y:.{decimals}f}" for x, y in pts]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_pts(path: str | os.PathLike, points, decimals: int = 3) -> Path:
    """Write :func:`pts_text` to ``path`` atomically."""
    return atomic_write_bytes(path, pts_text(points, decimals).encode("ascii"))


def read_pts(path: str | os.PathLike) -> np.ndarray:
    """Read an ibug ``.pts`` file -> (n, 2) float points in the project's 0-based pixels (the file's
    1-based values - 1). Raises ValueError for a malformed file (no braces, a count that differs)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    try:
        start, end = lines.index("{") + 1, lines.index("}")
    except ValueError:
        raise ValueError(f"{path}: not an ibug .pts file (no '{{' ... '}}' block)") from None
    try:
        pts = np.array([[float(v) for v in ln.split()] for ln in lines[start:end] if ln], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{path}: bad point line: {e}") from None
    pts = pts.reshape(-1, 2) if pts.size else np.zeros((0, 2))
    header = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[: start - 1] if ":" in ln)}
    if "n_points" in header and int(header["n_points"]) != len(pts):
        raise ValueError(f"{path}: n_points says {header['n_points']} but the file holds {len(pts)} points")
    return pts - 1.0


def named_landmarks(
    points,
    visible: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    names: Sequence[str] = AFLW19_NAMES,
    decimals: int = 3,
) -> list[dict[str, Any]]:
    """The landmarks as a list of ``{"name", "aflw_id", "x", "y", "visible", "score"}`` records in
    the AFLW-19 order (0-based pixels; ``aflw_id``: the AFLW-21 id, only with the AFLW-19 names;
    ``visible`` / ``score`` omitted when not given). ``points``: (n, 2) or a :class:`Landmarks`
    (its visibility and scores are used)."""
    if isinstance(points, Landmarks):
        visible = points.visible if visible is None else visible
        scores = points.scores if scores is None else scores
    pts = _points(points)
    names = tuple(names)
    if len(names) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(names)} names")
    vis = None if visible is None else np.asarray(visible, dtype=bool).reshape(-1)
    sc = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    for what, arr in (("visibility flags", vis), ("scores", sc)):
        if arr is not None and len(arr) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(arr)} {what}")
    aflw = names == AFLW19_NAMES
    out: list[dict[str, Any]] = []
    for k, (name, (x, y)) in enumerate(zip(names, pts)):
        rec: dict[str, Any] = {"name": name}
        if aflw:
            rec["aflw_id"] = AFLW19_AFLW_IDS[k]
        rec.update(x=round(float(x), decimals), y=round(float(y), decimals))
        if vis is not None:
            rec["visible"] = bool(vis[k])
        if sc is not None:
            rec["score"] = round(float(sc[k]), 4)
        out.append(rec)
    return out


def landmarks_json(
    points,
    visible: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    names: Sequence[str] = AFLW19_NAMES,
    **extra: Any,
) -> dict[str, Any]:
    """The landmark JSON document: ``{"scheme": "aflw19", "coordinates": ..., "n_points",
    "points": named_landmarks(...), **extra}`` (``scheme`` is ``"custom"`` for other names)."""
    pts = named_landmarks(points, visible, scores, names)
    return {
        "scheme": "aflw19" if tuple(names) == AFLW19_NAMES else "custom",
        "coordinates": "pixels, 0-based: x right, y down, origin at the centre of the top-left pixel",
        "n_points": len(pts),
        "points": pts,
        **extra,
    }


def write_landmarks_json(
    path: str | os.PathLike,
    points,
    visible: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    names: Sequence[str] = AFLW19_NAMES,
    **extra: Any,
) -> Path:
    """Write :func:`landmarks_json` (indented, UTF-8) to ``path`` atomically."""
    doc = landmarks_json(points, visible, scores, names, **extra)
    return atomic_write_bytes(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


# --- head pose ----------------------------------------------------------------------------------------------


def head_pose(fit: Fit3D | np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a :class:`Fit3D` (from its ``camera["R"]``) or a (3, 3)
    model-to-camera rotation, in the convention of the module docstring (yaw > 0: nose towards
    image-left; pitch > 0: looking up; roll > 0: clockwise in the image); yaw in [-90, 90],
    pitch and roll in (-180, 180]. Raises ValueError when the fit has no rotation."""
    if isinstance(fit, Fit3D):
        if "R" not in fit.camera:
            raise ValueError("the fit's camera has no rotation R")
        R = np.asarray(fit.camera["R"], dtype=np.float64)
    else:
        R = np.asarray(fit, dtype=np.float64)
    if R.shape != (3, 3) or not np.isfinite(R).all():
        raise ValueError(f"expected a finite (3, 3) rotation, got shape {R.shape}")
    return rotation_to_euler(R)


def pose_json(fit: Fit3D | None, decimals: int = 2) -> dict[str, float] | None:
    """``{"yaw", "pitch", "roll"}`` in degrees (:func:`head_pose`, rounded), or ``None`` without a fit."""
    if fit is None:
        return None
    yaw, pitch, roll = head_pose(fit)
    return {"yaw": round(yaw, decimals), "pitch": round(pitch, decimals), "roll": round(roll, decimals)}
