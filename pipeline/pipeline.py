"""The pipeline: composes the registered stages from a :class:`PipelineConfig`.

    detect -> refine -> landmark -> fit 3D -> lift UV -> describe        (-> match, pipeline/gallery/)

Stages are built on first use, so a run that stops after landmarks never loads a descriptor.
Which face is used when an image holds several: with a verifying refiner (``lm-verify``, the
default) the **most confident** face (landmark confidence), otherwise the **largest** detection
(box area); with ``all_faces`` every face is processed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError, NoFaceFoundError
from pipeline.registry import DESCRIPTORS, DETECTORS, FITTERS, LANDMARKERS, REFINERS
from pipeline.types import Descriptor, Detection, FaceResult, VerifyingRefiner, as_box

log = logging.getLogger(__name__)

STEPS = ("detect", "landmarks", "fit", "lift", "describe")


class Pipeline:
    """Compose stages by name; ``run(image)`` returns one :class:`FaceResult` per face."""

    def __init__(self, config: PipelineConfig | None = None, **overrides: Any):
        cfg = config or PipelineConfig()
        if overrides:
            cfg = PipelineConfig(**{**cfg.to_dict(), **overrides})
        self.config = cfg
        self._stages: dict[str, Any] = {}

    # -- stage objects -------------------------------------------------------------------
    def _stage(self, kind: str) -> Any:
        if kind not in self._stages:
            c = self.config
            if kind == "detector":
                opts: dict[str, Any] = {"min_face": c.min_face}
                # a verifying refiner re-scores the candidates itself: let the detector propose more
                # (Refiner.ranks_by_score / Detector.proposal_threshold: class attributes, pipeline.types)
                if REFINERS.factory(c.refiner).ranks_by_score:
                    prop = DETECTORS.factory(c.detector).proposal_threshold
                    if prop is not None:
                        opts["threshold"] = prop
                self._stages[kind] = DETECTORS.create(c.detector, **opts)
            elif kind == "refiner":
                opts = {}
                verifying = REFINERS.factory(c.refiner).ranks_by_score
                if c.face_floor is not None and verifying:
                    opts["floor"] = c.face_floor
                if c.part_veto:
                    if not verifying:
                        raise ConfigError(f"--part-veto needs the lm-verify refiner, not '{c.refiner}'")
                    opts["part_veto"] = True
                self._stages[kind] = REFINERS.create(c.refiner, **opts)
            elif kind == "landmarker":
                self._stages[kind] = LANDMARKERS.create(c.landmarker)
            elif kind == "fitter":
                self._stages[kind] = FITTERS.create(c.fitter)
            elif kind == "descriptor":
                self._stages[kind] = DESCRIPTORS.create(c.descriptor)
            else:
                raise KeyError(kind)
        return self._stages[kind]

    @property
    def landmarker(self):
        return self._stage("landmarker")

    @property
    def descriptor(self):
        return self._stage("descriptor")

    # -- steps -----------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces to process, best first: the whole image with ``cropped``, else the detector's
        refined boxes (most confident first with a verifying refiner, else largest first; only the
        first unless ``all_faces``)."""
        if self.config.cropped:
            h, w = image.shape[:2]
            return [Detection((0.0, 0.0, float(w), float(h)), 1.0, "cropped")]
        dets = self._stage("detector").detect(image)
        if not dets:
            raise NoFaceFoundError("no face found (try --cropped for tightly cropped faces, or another --detector)")
        dets = self.refine(image, dets)
        if not dets:
            raise NoFaceFoundError(
                "no face found: the detector's candidates were rejected by the landmark "
                "check (try --refiner bbox-cnn, --cropped for tight face crops, or --box)"
            )
        return dets if self.config.all_faces else dets[:1]

    def refine(self, image: np.ndarray, dets: list[Detection]) -> list[Detection]:
        """Detector boxes -> refined faces, best first: a verifying refiner (``lm-verify``) re-centres,
        ranks by confidence and may reject candidates; any other refiner maps each box, largest first."""
        refiner = self._stage("refiner")
        if isinstance(refiner, VerifyingRefiner) and refiner.ranks_by_score:
            return refiner.verify(image, dets)
        return sorted((refiner.refine(image, d) for d in dets), key=lambda d: -d.area)

    def run(self, image: np.ndarray, until: str = "describe", box=None) -> list[FaceResult]:
        """Run the stages up to ``until`` (one of :data:`STEPS`) on every face to process.
        ``box``: skip detection and use this face box."""
        if until not in STEPS:
            raise ValueError(f"until must be one of {STEPS}")
        t0 = time.perf_counter()
        dets = [Detection(as_box(box), 1.0, "given")] if box is not None else self.detect(image)
        t_det = time.perf_counter() - t0
        results = []
        describer: Descriptor | None = self.descriptor if until == "describe" else None
        needs_landmarks = until in ("landmarks", "fit", "lift") or describer is None or describer.needs_landmarks
        needs_3d = until in ("fit", "lift") or (describer is not None and describer.needs_3d)
        for det in dets:
            timings = {"detect": t_det / len(dets)}
            face = FaceResult(detection=det, timings=timings)
            if until != "detect" and needs_landmarks:
                t = time.perf_counter()
                lm = self.landmarker.predict(image, det.box)
                timings["landmarks"] = time.perf_counter() - t
                face = FaceResult(det, lm, timings=timings)
            if needs_3d:
                t = time.perf_counter()
                fit = self._stage("fitter").fit(image, face.landmarks)
                timings["fit"] = time.perf_counter() - t
                face = FaceResult(det, face.landmarks, fit, None, timings=timings)
                if until != "fit":
                    from recon3d.uv import lift_texture

                    t = time.perf_counter()
                    uv = lift_texture(image, fit, size=self.config.uv_size, mirror_fill=self.config.mirror_fill)
                    timings["lift"] = time.perf_counter() - t
                    face = FaceResult(det, face.landmarks, fit, uv, timings=timings)
            if until == "describe":
                t = time.perf_counter()
                sig = self.descriptor.describe(image, face)
                timings["describe"] = time.perf_counter() - t
                face = FaceResult(det, face.landmarks, face.fit, face.uv, sig, timings=timings)
            results.append(face)
        return results
