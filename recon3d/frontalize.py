"""3D-aided pose normalisation ("frontalisation"): the fitted, UV-textured face rendered at yaw =
pitch = roll = 0.

The paper's pipeline (UR2D, the system GoDP serves) matches faces in a pose-normalised space: the
3D model fitted to the landmarks carries the image texture into a pose-independent frame, so a
profile probe and a frontal gallery image are compared where they overlap. Here the lifted texture
(:func:`recon3d.uv.lift_texture`) is completed by soft symmetry -- self-occluded texels take the
colour of their mirror texel when that one was seen, the rest is inpainted
(:func:`recon3d.uv.complete_texture`; the symmetry prior as in Hassner et al., "Effective Face
Frontalization in Unconstrained Images", CVPR 2015) -- and the fitted mesh is rendered frontally
with albedo only (no shading, the lighting of the photo is in the texture) over a background of the
face's mean colour (a grey background leaves a hard face outline and the mouth opening of the
mesh as strong, identity-free edges; on 239 CFP training-subject profiles the mean colour gave
56.5 % rank-1 against 51.9 % with grey, see ``docs/descriptors/RESULTS.md``).

Shapes and units: the render is ``width`` x ``height`` px RGB uint8, the face box (68-point extent)
``face_size`` x min(W, H) px, centred; landmarks (19, 2) px of the frontal pose (all visible).
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import FitError
from pipeline.types import Fit3D, UVTexture
from recon3d.model import MorphableModel, load_model
from recon3d.render import Lighting, Rendered, render_pose
from recon3d.uv import complete_texture

#: Albedo-only lighting: ambient 1, no directional term.
ALBEDO = Lighting(ambient=1.0, diffuse=0.0)


def mean_face_colour(uv: UVTexture, min_conf: float = 0.3, default=(128.0, 128.0, 128.0)) -> tuple[float, float, float]:
    """Mean RGB of the texels seen with confidence > ``min_conf`` (``default`` when none is)."""
    sel = np.asarray(uv.mask) > min_conf
    if not sel.any():
        return (float(default[0]), float(default[1]), float(default[2]))
    mean = np.asarray(uv.image)[sel].reshape(-1, 3).mean(0)
    return (float(mean[0]), float(mean[1]), float(mean[2]))


def frontalize(
    fit: Fit3D,
    uv: UVTexture,
    width: int = 256,
    height: int = 306,
    face_size: float = 0.55,
    min_conf: float = 0.1,
    background=None,
    model: MorphableModel | None = None,
) -> Rendered:
    """Render the fitted face ``fit`` (vertices (N, 3) mm) with its lifted texture ``uv`` (S, S)
    at the frontal pose. Texels seen with confidence < ``min_conf`` are filled from their mirror
    texel or inpainted. ``background``: an RGB colour, or None for :func:`mean_face_colour`.
    Returns a :class:`~recon3d.render.Rendered` (image, 19 landmarks, box)."""
    model = model or load_model()
    V = np.asarray(fit.vertices, dtype=np.float64)
    if V.shape != model.mean.shape or not np.isfinite(V).all():
        raise FitError(f"frontalize needs a finite {model.mean.shape} vertex array, got {V.shape}")
    if not (np.asarray(uv.mask) > 0).any():
        raise FitError("the lifted texture has no visible texel: nothing to frontalise")
    texture = complete_texture(uv, mirror=True, min_conf=min_conf)
    return render_pose(
        V,
        texture,
        0.0,
        0.0,
        0.0,
        width=width,
        height=height,
        face_size=face_size,
        lighting=ALBEDO,
        background=mean_face_colour(uv) if background is None else background,
        model=model,
    )
