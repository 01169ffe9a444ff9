"""Face profiling (the 300W-LP / 3DDFA recipe of Zhu et al., "Face Alignment Across Large Poses: A 3D
Solution", CVPR 2016): re-render a real face, fitted with the 3D morphable model and textured from
its own photo, at a new head pose, with exact 19-point ground truth.

One algorithm, in pure functions (no file I/O; the CLIs ``facedata/profiling.py`` and
``facedata/uhdb31.py`` read the photos and write the sets):

1. :func:`prepare_source`: fit the model to the photo's 19 landmarks (:class:`recon3d.fit.SfmFitter`,
   visible points only), reject poor fits (mean reprojection error above ``max_residual`` x the
   landmark box size), lift the texture into the UV map (:func:`recon3d.uv.lift_texture`) and make it
   hole-free (:func:`recon3d.uv.complete_texture`: mirror texels, then inpainting);
2. :func:`sample_spec` draws every parameter of one render from a NumPy ``Generator`` into a
   :class:`RenderSpec` (pose, framing, lighting, background, photometric nuisance, shape and
   expression perturbation); the spec alone determines the output (it carries the seed of its
   random background), so a spec written to ``annotations.jsonl`` reproduces the image;
3. :func:`synthesize` renders the (perturbed) mesh with :func:`recon3d.render.render` over the
   background, paints the mesh's open mouth dark (:func:`fill_mouth`) and applies the photometric
   nuisance; the 19 landmarks are the projected model points
   (occluded ones included), ``visible`` is the renderer's self-occlusion test (z-buffer + surface
   normal, calibrated on AFLW) and ``box`` is the AFLW-convention box (68-point extent, hidden side
   included);
4. :func:`sample_rng` seeds one generator per (seed, source key, sample index) from a hash of the
   key, so any subset of sources (or the first k samples of a source) reproduces exactly.

Units: angles in degrees (yaw > 0: nose towards image-left; pitch > 0: looking up; roll > 0:
clockwise in the image), image coordinates in pixels (x right, y down, origin at the top-left pixel's
centre), model coordinates in mm, shape coefficients in standard deviations.

What it cannot do: the Surrey Face Model is a face mask (forehead to chin, cheeks to the ears), so a
render has no hair, ears, neck or back of the head; the side of the face the photo does not show is
filled from its mirror texel or inpainted; the camera is scaled orthographic.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from pipeline.errors import FitError
from pipeline.types import NUM_LANDMARKS, Box, Fit3D
from recon3d.camera import Camera
from recon3d.model import MorphableModel, aflw19_points, load_model
from recon3d.render import Lighting, frame_camera, render
from recon3d.repose import downsample2, fill_mouth, frame_photo, mouth_loop  # noqa: F401  (part of the recipe's API)

log = logging.getLogger(__name__)

#: The 3DDFA ROI factor: GoDP crops a square of side ROI_SCALE x max(w, h) of the face box.
ROI_SCALE = math.sqrt(2.0)

BACKGROUND_KINDS = ("border", "noise", "gradient", "flat", "source")


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NuisanceConfig:
    """Photometric and shape nuisance of a render (all draws are uniform in the given ranges).

    Lighting: ``I = ambient + diffuse * max(0, n . l)``; brightness: the frontal intensity
    ambient + 0.75 diffuse; diffuse: the directional share; light_min_z: smallest z (towards the
    viewer) of the unit light direction.
    background: (kind, weight) pairs: "border" (a face-free patch of a donor photo, away from every
    annotated head, :func:`border_patch`), "noise" (multi-scale coloured noise), "gradient"
    (two-colour linear ramp), "flat" (one colour + sensor noise), "source" (the source photo itself,
    aligned so its face lies under the render; only when the render's pose is within
    ``source_bg_max_dpose`` degrees of the fitted source pose in yaw and pitch, else "border": the
    photo's own face would otherwise show beside the render).
    colour_gain: per-channel gain in [1 - g, 1 + g] (white balance); p_grey: chance of a grey
    output (grey sources are always grey); lowres: down-up sampling factor range (p_lowres);
    blur: Gaussian sigma range in px (p_blur); noise: Gaussian sensor noise sigma in grey levels
    (p_noise); jpeg: JPEG quality range (inclusive).
    Shape: with p_shape, N(0, shape_sigma) is added to the first shape_n fitted coefficients (std
    devs); expression: with p_expression one random blendshape gets an extra weight whose largest
    vertex displacement is at most expression_max_mm.
    """

    brightness: tuple[float, float] = (0.8, 1.15)
    diffuse: tuple[float, float] = (0.0, 0.6)
    light_min_z: float = 0.3
    background: tuple[tuple[str, float], ...] = (
        ("border", 0.35),
        ("noise", 0.2),
        ("gradient", 0.15),
        ("flat", 0.1),
        ("source", 0.2),
    )
    source_bg_max_dpose: float = 20.0
    colour_gain: float = 0.08
    p_grey: float = 0.25
    p_lowres: float = 0.15
    lowres: tuple[float, float] = (0.35, 0.7)
    p_blur: float = 0.3
    blur: tuple[float, float] = (0.4, 1.5)
    p_noise: float = 0.2
    noise: tuple[float, float] = (2.0, 8.0)
    jpeg: tuple[int, int] = (35, 95)
    p_shape: float = 0.5
    shape_n: int = 20
    shape_sigma: float = 0.5
    p_expression: float = 0.3
    expression_max_mm: float = 8.0


@dataclass(frozen=True)
class ProfilingConfig:
    """Face-profiling augmentation (square images for landmark training).

    size: output image side (px); face_px: range of max(w, h) of the rendered AFLW box (px);
    yaw: uniform range; pitch / roll: truncated normal (sigma) within their range (degrees);
    shift: fraction of the free margin by which the face centre may move off the image centre; the
    3DDFA ROI (side sqrt(2) x max(w, h), centred on the box) always stays inside the image.
    same_side_above: a source whose fitted abs(yaw) exceeds this (degrees) is rendered only on its own
    side (yaw of the same sign): its far side was never seen, and a mirrored, smeared half would
    then face the camera.
    min_abs_yaw / min_abs_pitch: a pose band for hard-pose sets (both 0 = off, the default draws):
    with min_abs_yaw > 0 the yaw is drawn uniformly from the part of ``yaw`` with abs(yaw) >=
    min_abs_yaw (both sides, or the source's own side); with min_abs_pitch > 0 the pitch is drawn
    uniformly from the part of ``pitch`` with abs(pitch) >= min_abs_pitch (e.g. 65 and 15: the
    pitched full profiles of the UHDB31 protocol's yaw +-90 x pitch +-30 poses).
    uv_size: UV texture side (texels); min_conf: texels seen at a confidence below this are filled
    (mirror, then inpainting); max_residual: sources whose fit error exceeds this fraction of
    sqrt(w * h) of their landmark box are rejected; nuisance: :class:`NuisanceConfig`.
    """

    size: int = 160
    face_px: tuple[float, float] = (90.0, 110.0)
    yaw: tuple[float, float] = (-90.0, 90.0)
    pitch: tuple[float, float] = (-40.0, 40.0)
    pitch_sigma: float = 15.0
    roll: tuple[float, float] = (-20.0, 20.0)
    roll_sigma: float = 8.0
    shift: float = 1.0
    same_side_above: float = 45.0
    min_abs_yaw: float = 0.0
    min_abs_pitch: float = 0.0
    uv_size: int = 128
    min_conf: float = 0.25
    max_residual: float = 0.05
    nuisance: NuisanceConfig = field(default_factory=NuisanceConfig)

    def __post_init__(self) -> None:
        if ROI_SCALE * self.face_px[1] > self.size:
            raise ValueError(
                f"face_px up to {self.face_px[1]} does not fit: the 3DDFA ROI "
                f"({ROI_SCALE:.3f} x face) must lie inside the {self.size} px image"
            )
        for name, (lo, hi) in (("yaw", self.yaw), ("pitch", self.pitch), ("roll", self.roll)):
            if not -180.0 <= lo <= hi <= 180.0:
                raise ValueError(f"{name} range ({lo:g}, {hi:g}) must satisfy -180 <= lo <= hi <= 180")
        for name, band, rng in (
            ("min_abs_yaw", self.min_abs_yaw, self.yaw),
            ("min_abs_pitch", self.min_abs_pitch, self.pitch),
        ):
            if band < 0 or (band > 0 and band >= max(abs(rng[0]), abs(rng[1]))):
                raise ValueError(f"{name} = {band:g} leaves no angle in the range {rng}")


# --- sources ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ProfilingSource:
    """A real face ready for re-rendering.

    key: unique, stable id (seeds its renders); image: (H, W, 3) uint8 RGB source photo (as fitted);
    points: (19, 2) px the landmarks fitted to; visible: (19,) bool; box: (x0, y0, x1, y1) px the
    extent of the visible landmarks; fit: the :class:`pipeline.types.Fit3D`; texture: (S, S, 3) uint8
    hole-free UV texture; grey: the photo has no colour; meta: provenance (``source_set``,
    ``source_image``, ``identity``, ``licence``, ...), copied into every annotation.
    """

    key: str
    image: np.ndarray
    points: np.ndarray
    visible: np.ndarray
    box: Box
    fit: Fit3D
    texture: np.ndarray
    grey: bool
    meta: Mapping[str, Any]


def is_grey(image: np.ndarray, tol: float = 2.0) -> bool:
    """True when an (H, W) image or an (H, W, 3) image with (nearly) equal channels."""
    img = np.asarray(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    a = img.astype(np.int16)
    return bool(np.abs(a[:, :, 0] - a[:, :, 1]).mean() < tol and np.abs(a[:, :, 1] - a[:, :, 2]).mean() < tol)


def landmark_box(points: np.ndarray, visible: np.ndarray | None = None) -> Box:
    """(x0, y0, x1, y1) extent of the (visible) points (19, 2)."""
    p = np.asarray(points, dtype=np.float64)
    if visible is not None:
        p = p[np.asarray(visible, bool)]
    if len(p) == 0:
        raise FitError("no visible landmark to frame the face")
    return (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))


def prepare_source(
    key: str,
    image: np.ndarray,
    points: np.ndarray,
    visible: np.ndarray | None = None,
    meta: Mapping[str, Any] | None = None,
    fitter=None,
    uv_size: int = 128,
    min_conf: float = 0.25,
    max_residual: float = 0.05,
    scores: np.ndarray | None = None,
    contour: np.ndarray | None = None,
) -> ProfilingSource:
    """Fit, check, lift and complete one real face.

    image: (H, W, 3) uint8 RGB or (H, W) grey; points: (19, 2) px AFLW-19 landmarks; visible: (19,)
    (only visible points constrain the fit); fitter: an :class:`recon3d.fit.SfmFitter` (created when
    None); contour: optional (17, 2) iBUG 1-17 jaw points (NaN = missing; e.g. from dlib): they pull
    the mesh's silhouette onto the face outline, so less background is lifted at the cheeks.
    Raises :class:`pipeline.errors.FitError` when the fit fails or its mean reprojection error exceeds
    ``max_residual`` x sqrt(w * h) of the visible landmarks' box."""
    from recon3d.fit import SfmFitter
    from recon3d.uv import complete_texture, lift_texture

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)
    pts = np.asarray(points, dtype=np.float64).reshape(NUM_LANDMARKS, 2)
    vis = np.ones(NUM_LANDMARKS, bool) if visible is None else np.asarray(visible, bool).reshape(NUM_LANDMARKS)
    fitter = fitter or SfmFitter()
    fit = fitter.fit_points(pts, vis, scores, contour=contour, image_size=(img.shape[1], img.shape[0]))
    box = landmark_box(pts, vis)
    size = math.sqrt(max(box[2] - box[0], 1.0) * max(box[3] - box[1], 1.0))
    if fit.residual > max_residual * size:
        raise FitError(f"fit residual {fit.residual:.2f} px exceeds {max_residual:g} x the face size ({size:.1f} px)")
    tex = lift_texture(img, fit, size=uv_size, mirror_fill=False)
    full = complete_texture(tex, mirror=True, min_conf=min_conf)
    return ProfilingSource(
        key=key,
        image=img,
        points=pts,
        visible=vis,
        box=box,
        fit=fit,
        texture=full,
        grey=is_grey(img),
        meta=dict(meta or {}),
    )


# --- random streams --------------------------------------------------------------------------------------


def key_hash(key: str) -> int:
    """Stable 64-bit integer of a string (sha1; Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "little")


def sample_rng(seed: int, key: str, index: int = 0) -> np.random.Generator:
    """The generator of sample ``index`` of source ``key`` under ``seed`` (independent of any other
    source, so subsets reproduce)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, key_hash(key), int(index)])


# --- the render spec -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderSpec:
    """Every parameter of one render (JSON-serialisable via :meth:`to_json`).

    Pose: yaw, pitch, roll (degrees). Framing: width, height (px); face_px: max(w, h) of the AFLW box
    at this pose (constant_scale False) or at the frontal pose (constant_scale True: the head keeps
    its size over poses, as a fixed camera); center: (x, y) px of the box centre.
    Lighting: ambient, diffuse, light (3,) unit direction (camera frame, x right, y up, z to the
    viewer). Background: kind (:data:`BACKGROUND_KINDS`), bg_seed (its random stream), donor (index
    into the donor pool, -1: none). Photometric: colour_gain (3,), grey, lowres (1 = none), blur
    (sigma px, 0 = none), noise (sigma, 0 = none), jpeg (quality). Shape: shape_delta (k,) std devs
    added to the first k fitted coefficients; expression_delta (E,) added blendshape weights.
    """

    yaw: float
    pitch: float
    roll: float
    width: int
    height: int
    face_px: float
    center: tuple[float, float]
    constant_scale: bool = False
    ambient: float = 0.9
    diffuse: float = 0.0
    light: tuple[float, float, float] = (0.0, 0.0, 1.0)
    background: str = "flat"
    bg_seed: int = 0
    donor: int = -1
    colour_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    grey: bool = False
    lowres: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int = 95
    shape_delta: tuple[float, ...] = ()
    expression_delta: tuple[float, ...] = ()

    def to_json(self, ndigits: int = 4) -> dict[str, Any]:
        """Plain dict with rounded floats (for annotation files)."""

        def rnd(v):
            if isinstance(v, float):
                return round(v, ndigits)
            if isinstance(v, (tuple, list)):
                return [rnd(x) for x in v]
            return v

        return {k: rnd(v) for k, v in asdict(self).items()}


def _trunc_normal(rng: np.random.Generator, sigma: float, lo: float, hi: float) -> float:
    """N(0, sigma) restricted to [lo, hi] (rejection; uniform when sigma <= 0)."""
    if sigma <= 0:
        return float(rng.uniform(lo, hi))
    for _ in range(1000):
        v = float(rng.normal(0.0, sigma))
        if lo <= v <= hi:
            return v
    return float(np.clip(0.0, lo, hi))


def _band(rng: np.random.Generator, lo: float, hi: float, min_abs: float) -> float:
    """Uniform on the part of [lo, hi] with abs(value) >= min_abs (lo <= hi; degrees)."""
    parts = [(a, b) for a, b in ((lo, min(hi, -min_abs)), (max(lo, min_abs), hi)) if b > a]
    if not parts:  # the range lies inside the band's gap: its end farthest from 0
        return float(lo if abs(lo) >= abs(hi) else hi)
    total = sum(b - a for a, b in parts)
    u = float(rng.uniform(0.0, total))
    for a, b in parts:
        if u <= b - a:
            return a + u
        u -= b - a
    return parts[-1][1]


def _choice_weighted(rng: np.random.Generator, items: Sequence[tuple[str, float]]) -> str:
    names = [n for n, _ in items]
    w = np.array([max(0.0, float(x)) for _, x in items])
    if w.sum() <= 0:
        return names[0]
    return names[int(rng.choice(len(names), p=w / w.sum()))]


@lru_cache(maxsize=4)
def _expression_reach(model: MorphableModel) -> np.ndarray:
    """(E,) largest vertex displacement (mm) of each blendshape at weight 1."""
    e = model.expressions.reshape(model.n_expression, -1, 3)
    return np.linalg.norm(e, axis=2).max(1)


def sample_nuisance(
    rng: np.random.Generator,
    cfg: NuisanceConfig,
    *,
    yaw: float,
    pitch: float,
    source: ProfilingSource | None,
    n_donors: int,
    model: MorphableModel,
    allow_grey: bool = True,
) -> dict[str, Any]:
    """Draw the lighting, background, photometric and shape fields of a :class:`RenderSpec`."""
    out: dict[str, Any] = {}
    bright = float(rng.uniform(*cfg.brightness))
    diffuse = float(rng.uniform(*cfg.diffuse)) * bright
    out["ambient"] = bright - 0.75 * diffuse
    out["diffuse"] = diffuse
    while True:
        d = rng.normal(size=3)
        d /= max(float(np.linalg.norm(d)), 1e-12)
        if d[2] >= cfg.light_min_z:
            break
    out["light"] = tuple(float(v) for v in d)
    kind = _choice_weighted(rng, cfg.background)
    if kind == "source":
        src_ok = source is not None
        if src_ok:
            sy, sp = float(source.fit.camera["yaw"]), float(source.fit.camera["pitch"])
            src_ok = abs(yaw - sy) <= cfg.source_bg_max_dpose and abs(pitch - sp) <= cfg.source_bg_max_dpose
        if not src_ok:
            kind = "border"
    if kind == "border" and n_donors <= 0:
        kind = "noise"
    out["background"] = kind
    out["bg_seed"] = int(rng.integers(0, 2**31 - 1))
    out["donor"] = int(rng.integers(0, n_donors)) if kind == "border" else -1
    out["colour_gain"] = tuple(float(v) for v in rng.uniform(1 - cfg.colour_gain, 1 + cfg.colour_gain, 3))
    grey_src = source is not None and source.grey
    out["grey"] = bool(grey_src or (allow_grey and rng.random() < cfg.p_grey))
    out["lowres"] = float(rng.uniform(*cfg.lowres)) if rng.random() < cfg.p_lowres else 1.0
    out["blur"] = float(rng.uniform(*cfg.blur)) if rng.random() < cfg.p_blur else 0.0
    out["noise"] = float(rng.uniform(*cfg.noise)) if rng.random() < cfg.p_noise else 0.0
    out["jpeg"] = int(rng.integers(cfg.jpeg[0], cfg.jpeg[1] + 1))
    if rng.random() < cfg.p_shape and cfg.shape_n > 0:
        out["shape_delta"] = tuple(float(v) for v in rng.normal(0.0, cfg.shape_sigma, min(cfg.shape_n, model.n_shape)))
    else:
        out["shape_delta"] = ()
    if rng.random() < cfg.p_expression and model.n_expression:
        e = np.zeros(model.n_expression)
        k = int(rng.integers(model.n_expression))
        e[k] = float(rng.uniform(0.0, 1.0)) * cfg.expression_max_mm / max(float(_expression_reach(model)[k]), 1e-6)
        out["expression_delta"] = tuple(float(v) for v in e)
    else:
        out["expression_delta"] = ()
    return out


def sample_spec(
    rng: np.random.Generator,
    cfg: ProfilingConfig,
    source: ProfilingSource | None = None,
    n_donors: int = 0,
    model: MorphableModel | None = None,
) -> RenderSpec:
    """Draw one profiling render (square ``cfg.size`` image) for ``source``."""
    model = model or load_model()
    lo, hi = cfg.yaw
    if source is not None and abs(float(source.fit.camera["yaw"])) > cfg.same_side_above:
        lo, hi = (max(lo, 0.0), hi) if float(source.fit.camera["yaw"]) > 0 else (lo, min(hi, 0.0))
    yaw = _band(rng, lo, hi, cfg.min_abs_yaw) if cfg.min_abs_yaw > 0 else float(rng.uniform(lo, hi))
    if cfg.min_abs_pitch > 0:
        pitch = _band(rng, *cfg.pitch, cfg.min_abs_pitch)
    else:
        pitch = _trunc_normal(rng, cfg.pitch_sigma, *cfg.pitch)
    roll = _trunc_normal(rng, cfg.roll_sigma, *cfg.roll)
    face = float(rng.uniform(*cfg.face_px))
    slack = max(0.0, (cfg.size - ROI_SCALE * face) / 2.0) * float(np.clip(cfg.shift, 0.0, 1.0))
    c0 = (cfg.size - 1) / 2.0
    center = (c0 + float(rng.uniform(-slack, slack)), c0 + float(rng.uniform(-slack, slack)))
    nz = sample_nuisance(rng, cfg.nuisance, yaw=yaw, pitch=pitch, source=source, n_donors=n_donors, model=model)
    return RenderSpec(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        width=cfg.size,
        height=cfg.size,
        face_px=face,
        center=center,
        constant_scale=False,
        **nz,
    )


# --- backgrounds -----------------------------------------------------------------------------------------


class DonorPool:
    """Photos whose face-free parts serve as backgrounds: items (name, face boxes ((x0, y0, x1, y1),
    ...) px), loaded on demand by ``loader(name) -> (H, W, 3) uint8`` (a small LRU cache keeps recent
    ones). The pool's order must not depend on which sources are generated (it is indexed by seeded
    draws)."""

    def __init__(
        self, items: Sequence[tuple[str, Sequence[Box]]], loader: Callable[[str], np.ndarray], cache: int = 32
    ):
        self.items = [(name, tuple(tuple(float(v) for v in b) for b in boxes)) for name, boxes in items]
        self._load = lru_cache(maxsize=cache)(loader)

    def __len__(self) -> int:
        return len(self.items)

    def image(self, i: int) -> tuple[np.ndarray, tuple[Box, ...]]:
        name, boxes = self.items[i]
        return self._load(name), boxes


def _noise_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    acc = np.zeros((h, w, 3), np.float32)
    corr = float(rng.uniform(0.3, 1.0))  # share of the grey component
    for cells, amp in ((3, 1.0), (9, 0.6), (27, 0.35), (81, 0.15)):
        g = rng.normal(size=(cells, cells, 1))
        c = rng.normal(size=(cells, cells, 3))
        small = (corr * g + (1 - corr) * c).astype(np.float32)
        acc += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    base = rng.uniform(30, 220, 3).astype(np.float32)
    return np.clip(base + float(rng.uniform(10, 45)) * acc, 0, 255).astype(np.uint8)


def _gradient_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    img = c0[None, None] + t[:, :, None] * (c1 - c0)[None, None] + rng.normal(0, 2.0, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def _flat_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    img = rng.uniform(0, 255, 3)[None, None] + rng.normal(0, 2.0, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def border_patch(
    rng: np.random.Generator,
    image: np.ndarray,
    boxes: Sequence[Box],
    w: int,
    h: int,
    side: tuple[float, float] = (0.15, 0.6),
    head: tuple[float, float, float, float] = (0.5, 0.8, 0.5, 0.4),
    min_side: int = 16,
    tries: int = 50,
) -> np.ndarray | None:
    """A (h, w, 3) face-free patch of ``image``: a random square (side a uniform fraction ``side`` of
    min(H, W), at least ``min_side`` px) that misses every face box enlarged to the head (``head`` =
    fractions of the box width / height added left, above, right, below), resized and randomly
    flipped. None when ``tries`` draws all hit a head."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    H, W = img.shape[:2]
    heads = []
    for x0, y0, x1, y1 in boxes:
        bw, bh = x1 - x0, y1 - y0
        heads.append((x0 - head[0] * bw, y0 - head[1] * bh, x1 + head[2] * bw, y1 + head[3] * bh))
    lo = max(min_side, int(side[0] * min(H, W)))
    hi = max(lo, int(side[1] * min(H, W)))
    if lo > min(H, W):
        return None
    for _ in range(tries):
        s = int(rng.integers(lo, min(hi, H, W) + 1))
        px, py = int(rng.integers(0, W - s + 1)), int(rng.integers(0, H - s + 1))
        if any(px < hx1 and px + s > hx0 and py < hy1 and py + s > hy0 for hx0, hy0, hx1, hy1 in heads):
            continue
        patch = np.ascontiguousarray(img[py : py + s, px : px + s, :3])
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        return np.ascontiguousarray(
            cv2.resize(np.ascontiguousarray(patch), (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8
        )
    return None


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) mapping points src (n, 2) to dst (n, 2); returns a
    2x3 matrix (no RANSAC: deterministic)."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = s.mean(0), d.mean(0)
    sc, dc = s - ms, d - md
    cov = dc.T @ sc / len(s)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1
    R = U @ D @ Vt
    var = (sc**2).sum() / len(s)
    k = float(np.trace(np.diag(S) @ D) / max(var, 1e-12))
    M = np.zeros((2, 3))
    M[:, :2] = k * R
    M[:, 2] = md - k * R @ ms
    return M


def make_background(
    spec: RenderSpec,
    source: ProfilingSource | None = None,
    pool: DonorPool | None = None,
    target_points: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 background of ``spec`` (deterministic from ``spec.bg_seed``). "source" needs the
    render's 19 landmarks ``target_points`` to align the source photo (falls back to "noise")."""
    rng = np.random.default_rng(spec.bg_seed)
    w, h = spec.width, spec.height
    kind = spec.background
    if kind == "border" and pool is not None and 0 <= spec.donor < len(pool):
        img, boxes = pool.image(spec.donor)
        patch = border_patch(rng, img, boxes, w, h)
        if patch is not None:
            return patch
        kind = "noise"
    if kind == "source" and source is not None and target_points is not None:
        vis = source.visible
        M = similarity_transform(source.points[vis], np.asarray(target_points)[vis])
        return cv2.warpAffine(source.image, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if kind == "gradient":
        return _gradient_background(rng, w, h)
    if kind == "flat":
        return _flat_background(rng, w, h)
    return _noise_background(rng, w, h)


# --- rendering -------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Sample:
    """One render: image (H, W, 3) uint8 RGB after all nuisance, before JPEG (grey images have equal
    channels); landmarks (19, 2) px (every point's true position, occluded ones included); visible
    (19,) bool; box (x0, y0, x1, y1) AFLW convention; spec; source meta; mask (H, W) bool face pixels."""

    image: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    box: Box
    spec: RenderSpec
    meta: Mapping[str, Any]
    mask: np.ndarray


def posed_vertices(fit: Fit3D, spec: RenderSpec, model: MorphableModel) -> np.ndarray:
    """The fitted mesh with the spec's shape / expression perturbation, (N, 3) mm."""
    if not spec.shape_delta and not spec.expression_delta:
        return np.asarray(fit.vertices, dtype=np.float64)
    c = np.zeros(model.n_shape)
    fc = np.asarray(fit.coeffs if fit.coeffs is not None else [], np.float64)
    c[: len(fc)] = fc
    d = np.asarray(spec.shape_delta, np.float64)
    c[: len(d)] += d
    e = np.zeros(model.n_expression)
    if fit.expression is not None:
        fe = np.asarray(fit.expression, np.float64)
        e[: len(fe)] = fe
    de = np.asarray(spec.expression_delta, np.float64)
    e[: len(de)] += de
    return model.shape(c, np.clip(e, 0.0, None))


def spec_camera(vertices: np.ndarray, spec: RenderSpec, model: MorphableModel) -> Camera:
    """The camera that frames ``vertices`` as ``spec`` says (box max side face_px, centred at center)."""
    fx = spec.center[0] / max(spec.width - 1, 1)
    fy = spec.center[1] / max(spec.height - 1, 1)
    return frame_camera(
        vertices,
        spec.yaw,
        spec.pitch,
        spec.roll,
        spec.width,
        spec.height,
        face_size=spec.face_px / min(spec.width, spec.height),
        center=(fx, fy),
        model=model,
        constant_scale=spec.constant_scale,
    )


def apply_photometric(image: np.ndarray, spec: RenderSpec) -> np.ndarray:
    """Colour gain, grey, low resolution, blur and sensor noise of ``spec`` (noise from bg_seed + 1)."""
    img = image.astype(np.float32) * np.asarray(spec.colour_gain, np.float32)[None, None]
    if spec.grey:
        g = img @ np.array([0.299, 0.587, 0.114], np.float32)
        img = np.repeat(g[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    if spec.lowres < 1.0:
        sw, sh = max(8, int(round(w * spec.lowres))), max(8, int(round(h * spec.lowres)))
        img = cv2.resize(
            cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR
        )
    if spec.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), spec.blur)
    if spec.noise > 0:
        rng = np.random.default_rng(spec.bg_seed + 1)
        n = rng.normal(0.0, spec.noise, (h, w, 1 if spec.grey else 3)).astype(np.float32)
        img = img + n
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def synthesize(
    source: ProfilingSource, spec: RenderSpec, pool: DonorPool | None = None, model: MorphableModel | None = None
) -> Sample:
    """Render ``source`` as ``spec`` says; returns a :class:`Sample` (see the module docstring)."""
    model = model or load_model()
    V = posed_vertices(source.fit, spec, model)
    cam = spec_camera(V, spec, model)
    target = cam.project(aflw19_points(model, V)) if spec.background == "source" else None
    bg = make_background(spec, source, pool, target)
    light = Lighting(ambient=spec.ambient, diffuse=spec.diffuse, direction=tuple(spec.light))
    r = render(V, source.texture, cam, spec.width, spec.height, lighting=light, background=bg, model=model)
    loop = mouth_loop(model)
    img, mask = fill_mouth(r.image, r.mask, cam.project(V[loop]) if len(loop) else None)
    img = apply_photometric(img, spec)
    return Sample(
        image=img,
        landmarks=np.asarray(r.landmarks, np.float64),
        visible=np.asarray(r.visible, bool),
        box=tuple(float(v) for v in r.box),
        spec=spec,
        meta=dict(source.meta),
        mask=mask,
    )


def profile_source(
    source: ProfilingSource,
    n: int,
    seed: int,
    cfg: ProfilingConfig = ProfilingConfig(),
    pool: DonorPool | None = None,
    model: MorphableModel | None = None,
) -> list[Sample]:
    """``n`` profiling renders of ``source``; sample k uses :func:`sample_rng` (seed, source.key, k)."""
    model = model or load_model()
    out = []
    for k in range(int(n)):
        rng = sample_rng(seed, source.key, k)
        spec = sample_spec(rng, cfg, source, len(pool) if pool is not None else 0, model)
        out.append(synthesize(source, spec, pool, model))
    return out


# --- encoding and annotations ----------------------------------------------------------------------------


def encode_jpeg(image: np.ndarray, quality: int, grey: bool = False) -> bytes:
    """JPEG bytes (OpenCV/libjpeg, deterministic) of an RGB image; ``grey``: one channel."""
    img = np.asarray(image)
    if grey:
        img = img if img.ndim == 2 else img[:, :, 0]
    else:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_sample(sample: Sample) -> bytes:
    """The sample's JPEG bytes at its spec's quality."""
    return encode_jpeg(sample.image, sample.spec.jpeg, sample.spec.grey)


def roi_inside(box: Sequence[float], width: int, height: int, scale: float = ROI_SCALE) -> bool:
    """Whether the 3DDFA square ROI of ``box`` (side scale x max(w, h), centred on the box) lies inside
    a width x height image (continuous extent [-0.5, W - 0.5] x [-0.5, H - 0.5])."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = scale * max(x1 - x0, y1 - y0) / 2
    eps = 1e-6
    return (
        cx - half >= -0.5 - eps
        and cy - half >= -0.5 - eps
        and cx + half <= width - 0.5 + eps
        and cy + half <= height - 0.5 + eps
    )


def annotation(sample: Sample, image_path: str, ndigits: int = 3) -> dict[str, Any]:
    """One ``annotations.jsonl`` line (SPEC section 5 landmark set + render provenance)."""
    s = sample.spec
    meta = dict(sample.meta)
    line = {
        "image": image_path,
        "box": [round(float(v), ndigits) for v in sample.box],
        "landmarks": [[round(float(x), ndigits), round(float(y), ndigits)] for x, y in sample.landmarks],
        "visible": [int(v) for v in sample.visible],
        "known": [1] * len(sample.landmarks),
        "yaw": round(s.yaw, ndigits),
        "pitch": round(s.pitch, ndigits),
        "roll": round(s.roll, ndigits),
    }
    for k in ("source_set", "source_image", "identity"):
        if k in meta:
            line[k] = meta.pop(k)
    licence = meta.pop("licence", None)
    line["render"] = {**s.to_json(), **meta}
    if licence is not None:
        line["licence"] = licence
    return line


# --- figures ---------------------------------------------------------------------------------------------


def contact_sheet(
    images: Sequence[np.ndarray], ncols: int, pad: int = 2, fill: int = 255, labels: Sequence[str] | None = None
) -> np.ndarray:
    """Tile RGB / grey images (padded to the largest size) into one RGB sheet, row-major; optional
    small text labels at each tile's top-left corner."""
    tiles = [
        np.repeat(np.asarray(t)[:, :, None], 3, 2) if np.asarray(t).ndim == 2 else np.asarray(t)[:, :, :3]
        for t in images
    ]
    if not tiles:
        raise ValueError("contact_sheet needs at least one image")
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    nrows = -(-len(tiles) // ncols)
    sheet = np.full((nrows * (th + pad) + pad, ncols * (tw + pad) + pad, 3), fill, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
        if labels is not None and i < len(labels) and labels[i]:
            cv2.putText(sheet, labels[i], (x + 2, y + 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
            cv2.putText(sheet, labels[i], (x + 2, y + 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 0), 1, cv2.LINE_AA)
    return sheet
