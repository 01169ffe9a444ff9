"""Stage results (frozen dataclasses), stage protocols and the AFLW-19 landmark order.

Conventions (SPEC section 1): images are ``uint8`` arrays, ``H x W x 3`` **RGB** (or ``H x W``
gray); coordinates are pixels with x to the right, y down and the origin at the centre of
the top-left pixel; boxes are ``(x0, y0, x1, y1)`` floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

#: The 19 AFLW landmarks (the 21 AFLW points without the ear lobes 13 and 17), in order.
#: "left" is image-left in a frontal view (the subject's right side).
AFLW19_NAMES: tuple[str, ...] = (
    "left_brow_outer",  # AFLW 1
    "left_brow_center",  # AFLW 2
    "left_brow_inner",  # AFLW 3
    "right_brow_inner",  # AFLW 4
    "right_brow_center",  # AFLW 5
    "right_brow_outer",  # AFLW 6
    "left_eye_outer",  # AFLW 7
    "left_eye_center",  # AFLW 8
    "left_eye_inner",  # AFLW 9
    "right_eye_inner",  # AFLW 10
    "right_eye_center",  # AFLW 11
    "right_eye_outer",  # AFLW 12
    "nose_left_wing",  # AFLW 14
    "nose_tip",  # AFLW 15
    "nose_right_wing",  # AFLW 16
    "mouth_left_corner",  # AFLW 18
    "mouth_center",  # AFLW 19
    "mouth_right_corner",  # AFLW 20
    "chin",  # AFLW 21
)
#: AFLW-21 ids (1-based) of the 19 points, same order as :data:`AFLW19_NAMES`.
AFLW19_AFLW_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 18, 19, 20, 21)
NUM_LANDMARKS = len(AFLW19_NAMES)

#: Index of each point's mirror partner (image-left <-> image-right) for flip augmentation.
AFLW19_MIRROR: tuple[int, ...] = (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 14, 13, 12, 17, 16, 15, 18)

#: The 9 points used by the paper's UHDB31 landmark table (AFLW ids 7, 9, 10, 12, 14-16, 18, 20).
UHDB31_NINE: tuple[int, ...] = tuple(AFLW19_AFLW_IDS.index(i) for i in (7, 9, 10, 12, 14, 15, 16, 18, 20))

#: iBUG-68 (1-based) ids whose mean gives each AFLW-19 point, in AFLW-19 order (SPEC section 1):
#: brows 18, 20, 22, 23, 25, 27; eyes 37, mean(37-42), 40, 43, mean(43-48), 46; nose 32, 31, 36;
#: mouth 49, mean(63, 67), 55; chin 9.
IBUG68_TO_AFLW19: tuple[tuple[int, ...], ...] = (
    (18,),
    (20,),
    (22,),
    (23,),
    (25,),
    (27,),  # brows
    (37,),
    (37, 38, 39, 40, 41, 42),
    (40,),  # image-left eye: outer, centre, inner
    (43,),
    (43, 44, 45, 46, 47, 48),
    (46,),  # image-right eye: inner, centre, outer
    (32,),
    (31,),
    (36,),  # nose: left wing, tip, right wing
    (49,),
    (63, 67),
    (55,),  # mouth: left corner, centre, right corner
    (9,),  # chin
)


def ibug68_to_aflw19(pts68: np.ndarray) -> np.ndarray:
    """(68, k) iBUG points -> (19, k) AFLW points (means per :data:`IBUG68_TO_AFLW19`)."""
    pts68 = np.asarray(pts68, dtype=np.float64)
    if pts68.ndim != 2 or pts68.shape[0] != 68:
        raise ValueError(f"expected (68, k) iBUG points, got {pts68.shape}")
    return np.stack([pts68[[i - 1 for i in ids]].mean(0) for ids in IBUG68_TO_AFLW19])


Box = tuple[float, float, float, float]


def as_box(box: Sequence[float]) -> Box:
    """Validate and convert to a ``(x0, y0, x1, y1)`` float tuple."""
    from pipeline.errors import ConfigError

    try:
        b = tuple(float(v) for v in box)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"a box needs 4 numbers x0 y0 x1 y1, got {box!r}") from e
    if len(b) != 4 or not all(np.isfinite(b)):
        raise ConfigError(f"a box needs 4 finite numbers x0 y0 x1 y1, got {box!r}")
    if b[2] <= b[0] or b[3] <= b[1]:
        raise ConfigError(f"box {b} is empty: need x1 > x0 and y1 > y0")
    return b


@dataclass(frozen=True)
class Detection:
    """A face found by a detector (or refined by a box regressor).

    box: (x0, y0, x1, y1) in image pixels; score: detector confidence (higher is better,
    scale depends on the detector); view: mixture component / view label (e.g.
    ``"frontal"``, ``"profile_left#2"``: the second profile template of ``dpm``) or ``None``
    when the detector has no views.
    """

    box: Box
    score: float
    view: str | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True)
class Landmarks:
    """19 AFLW landmarks of one face.

    points: (19, 2) float, pixels; visible: (19,) bool (self-occlusion); scores: (19,) float
    confidence in [0, 1]; yaw_subspace: index of the pose subspace (GoDP, 0..K-1) or ``None``.
    """

    points: np.ndarray
    visible: np.ndarray
    scores: np.ndarray
    yaw_subspace: int | None = None
    box: Box | None = None

    def __post_init__(self) -> None:
        if self.points.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"points must be ({NUM_LANDMARKS}, 2), got {self.points.shape}")
        if self.visible.shape != (NUM_LANDMARKS,) or self.scores.shape != (NUM_LANDMARKS,):
            raise ValueError("visible and scores must have shape (19,)")

    def to_json(self) -> dict[str, Any]:
        return {
            "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in self.points],
            "visible": [bool(v) for v in self.visible],
            "scores": [round(float(s), 4) for s in self.scores],
        }


@dataclass(frozen=True)
class Fit3D:
    """A fitted 3D morphable model.

    vertices: (N, 3) model-space vertices (mm); camera: dict of camera parameters (scaled
    orthographic: R (3, 3), t (2,), s, yaw/pitch/roll in degrees); coeffs: (S,) shape
    coefficients (in units of standard deviations); residual: mean 2D reprojection error (px).
    """

    vertices: np.ndarray
    camera: dict[str, Any]
    coeffs: np.ndarray
    residual: float
    expression: np.ndarray | None = None


@dataclass(frozen=True)
class UVTexture:
    """A texture lifted into UV space: image (S, S, 3) uint8 and mask (S, S) float in [0, 1]
    (0 = not seen, values between give the confidence from the viewing angle)."""

    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Signature:
    """A face template: vector (D,) float32 (L2-normalised) and an optional per-region
    visibility mask (R,) used by masked matching."""

    vector: np.ndarray
    mask: np.ndarray | None = None
    kind: str = ""


@dataclass(frozen=True)
class FaceResult:
    """Everything the pipeline produced for one face (stages not run are ``None``)."""

    detection: Detection
    landmarks: Landmarks | None = None
    fit: Fit3D | None = None
    uv: UVTexture | None = None
    signature: Signature | None = None
    timings: dict[str, float] = field(default_factory=dict)


# -- stage protocols -------------------------------------------------------------------------------
#
# One protocol per stage kind (runtime_checkable): every class registered in pipeline.registry
# declares the attributes of its kind's protocol explicitly (tests/pipeline/test_protocols.py), so the
# pipeline reads them as plain attributes. ``isinstance`` on a runtime-checkable protocol checks
# that the members exist, not their types or values.


@runtime_checkable
class Detector(Protocol):
    """Finds faces: ``detect(image) -> list[Detection]`` sorted by score, best first.

    proposal_threshold: the ``threshold`` option the pipeline builds the detector with when the
    refiner verifies and re-ranks the candidates itself (a :class:`VerifyingRefiner`): lower, so
    that more, weaker candidates are proposed; ``None`` (detectors without such a setting): the
    detector's own default is kept. A class attribute, read from the registered class before
    the detector is built."""

    proposal_threshold: float | None

    def detect(self, image: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class Refiner(Protocol):
    """Maps a detector box to the AFLW-style box GoDP was trained on.

    ranks_by_score: ``False`` for a plain refiner (the pipeline maps every box with
    :meth:`refine` and keeps the largest faces first); ``True`` only for a
    :class:`VerifyingRefiner`. A class attribute."""

    ranks_by_score: bool

    def refine(self, image: np.ndarray, detection: Detection) -> Detection: ...


@runtime_checkable
class VerifyingRefiner(Refiner, Protocol):
    """A refiner that also checks and re-ranks the detector's candidates (``lm-verify``):
    ``verify(image, dets) -> list[Detection]`` returns the faces it accepts, refined, most
    confident first (possibly none). Its class attribute ``ranks_by_score`` is ``True``: the
    pipeline then calls :meth:`verify` instead of :meth:`refine` and builds the detector with its
    :attr:`Detector.proposal_threshold`."""

    ranks_by_score: bool

    def verify(self, image: np.ndarray, dets: list[Detection]) -> list[Detection]: ...


@runtime_checkable
class Landmarker(Protocol):
    """Predicts the 19 AFLW landmarks of the face in ``box``."""

    def predict(self, image: np.ndarray, box: Box) -> Landmarks: ...


@runtime_checkable
class Fitter(Protocol):
    """Fits the 3D morphable model to a face's landmarks: ``fit(image, landmarks) -> Fit3D``
    (``image`` may only give the image size)."""

    def fit(self, image: np.ndarray, landmarks: Landmarks) -> Fit3D: ...


@runtime_checkable
class Descriptor(Protocol):
    """Computes a face template from the image and the earlier stage results.

    needs_landmarks: the landmark stage must run before :meth:`describe`; needs_3d: the 3D fit
    and the UV lift must run too. Declared on the class (an instance may narrow them from its
    options, e.g. ``dlib-resnet`` with ``align="dlib"`` needs no landmarks)."""

    needs_3d: bool
    needs_landmarks: bool

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature: ...


#: The earlier name of :class:`Descriptor`.
Describer = Descriptor
