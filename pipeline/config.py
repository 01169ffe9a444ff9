"""Typed pipeline configuration with defaults (every CLI flag maps onto a field)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pipeline.imageio import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class PipelineConfig:
    """Which implementation runs each stage, and the knobs shared by the CLIs.

    detector / refiner / landmarker / fitter / descriptor: registry names (see
    ``pipeline.registry``). ``cropped``: skip detection, the whole image is the face box.
    ``all_faces``: process every detected face instead of the best one (most confident with the
    ``lm-verify`` refiner, else largest). ``min_face``: smallest
    face side (px) the detector looks for. ``max_pixels``: refuse larger images. ``uv_size``: side of
    the lifted UV texture; ``mirror_fill``: fill self-occluded texels from the symmetric side.
    ``face_floor``: rejection floor of a verifying refiner (``lm-verify``: on p(face); None = its
    trained floor; 0 keeps the best candidate of every image that has one, for inputs known to hold
    a face). ``part_veto``: ``lm-verify``'s optional part veto (a first face nested inside a bigger
    face is dropped when a second check, trained with face parts as non-faces, rejects it; off by
    default: it costs real AFLW2000-3D faces, see ``docs/detection/RESULTS.md``).
    """

    detector: str = "dpm+mmod"
    refiner: str = "lm-verify"
    landmarker: str = "godp"
    fitter: str = "sfm"
    descriptor: str = "resnet-3d"
    cropped: bool = False
    all_faces: bool = False
    min_face: int = 40
    face_floor: float | None = None
    part_veto: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    uv_size: int = 256
    mirror_fill: bool = False
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
