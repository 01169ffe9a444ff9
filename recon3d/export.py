"""Export: mesh to OBJ (+ MTL + UV texture PNG) or PLY (trimesh), PNG images, landmark overlays.

Every file is written atomically: to a temporary file in the target folder, then ``os.replace``
(a reader never sees a half-written file; an interrupted export leaves the old file intact).
OBJ texture coordinates follow the OBJ convention (v up), i.e. ``vt = (u, 1 - v)`` of the model's
v-down texture coordinates. Vertices are written in model space (mm, x to the subject's left, y up,
z toward the viewer).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_write_bytes  # noqa: F401 - re-exported for the data factory (facedata)
from pipeline.overlay import draw_landmarks  # noqa: F401 - the landmark drawer, re-exported here
from pipeline.types import UVTexture
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


def export_mesh(
    path: str | os.PathLike, vertices: np.ndarray, texture=None, model: MorphableModel | None = None
) -> list[Path]:
    """Write the mesh to ``path``: ``.obj`` (with ``texture``: also the ``.mtl`` and the texture
    PNG beside it, referenced by name) or ``.ply`` (binary; with ``texture``: per-vertex colours
    sampled at the vertices' texture coordinates). Returns the written paths."""
    import trimesh

    p = Path(path)
    suffix = p.suffix.lower()
    model = model or load_model()
    if suffix == ".obj":
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
        # name the texture after the mesh (trimesh calls it material_0.png) and fix the reference
        renames = {n: p.stem + Path(n).suffix for n in files if not n.endswith(".mtl")}
        out = []
        for name, data in files.items():
            if name.endswith(".mtl"):
                txt = data.decode()
                for old, new in renames.items():
                    txt = txt.replace(f"map_Kd {old}", f"map_Kd {new}")
                out.append(atomic_write_bytes(p.parent / name, txt.encode()))
            else:
                out.append(atomic_write_bytes(p.parent / renames[name], data))
        out.append(atomic_write_bytes(p, text.encode()))
        return out
    if suffix == ".ply":
        mesh = trimesh.Trimesh(vertices=np.asarray(vertices, dtype=np.float64), faces=model.triangles, process=False)
        tex = _texture_image(texture)
        if tex is not None:
            from recon3d.raster import sample_bilinear

            s_h, s_w = tex.shape[:2]
            col = sample_bilinear(tex, model.texcoords[:, 0] * s_w - 0.5, model.texcoords[:, 1] * s_h - 0.5)
            mesh.visual = trimesh.visual.ColorVisuals(
                mesh, vertex_colors=np.column_stack([col, np.full(len(col), 255, np.uint8)])
            )
        data = trimesh.exchange.ply.export_ply(mesh, encoding="binary")
        return [atomic_write_bytes(p, data)]
    raise ValueError(f"unsupported mesh format {suffix!r}: use .obj or .ply")
