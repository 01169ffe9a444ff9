"""Stage contracts (pipeline.types): every registered stage class declares its kind's protocol, and
the pipeline reads those declarations as plain attributes (no getattr probes with defaults).

The registered classes are checked from ``Registry.factory(name)`` without building them, so no
model is loaded; entries whose optional extra is not installed are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import types as T
from pipeline.errors import ConfigError
from pipeline.registry import DESCRIPTORS, DETECTORS, FITTERS, LANDMARKERS, REFINERS, _not_built
from pipeline.types import Detection, FaceResult, Signature

REGISTRIES = (DETECTORS, REFINERS, LANDMARKERS, FITTERS, DESCRIPTORS)
ENTRIES = [(r, n) for r in REGISTRIES for n in r.names() if not n.startswith("test-")]


def _cls(registry, name):
    try:
        return registry.factory(name)
    except ConfigError as e:
        if "not installed" in str(e):
            pytest.skip(f"{registry.stage} {name!r}: optional extra not installed ({e})")
        raise


def test_each_registry_names_its_protocol():
    assert [r.protocol for r in REGISTRIES] == [T.Detector, T.Refiner, T.Landmarker, T.Fitter, T.Descriptor]
    assert T.Describer is T.Descriptor  # the earlier name


@pytest.mark.parametrize("registry,name", ENTRIES, ids=[f"{r.stage}-{n}" for r, n in ENTRIES])
def test_every_registered_class_declares_its_protocol(registry, name):
    cls = _cls(registry, name)
    assert isinstance(cls, type), f"{registry.stage} {name!r} is registered as a class"
    # isinstance on the class object: its members exist on the class itself, not only on instances
    assert isinstance(cls, registry.protocol), f"{cls.__qualname__} does not declare {registry.protocol.__name__}"
    if registry is DETECTORS:
        t = cls.proposal_threshold
        assert t is None or isinstance(t, float), f"{cls.__qualname__}.proposal_threshold = {t!r}"
    elif registry is REFINERS:
        assert isinstance(cls.ranks_by_score, bool)
        assert cls.ranks_by_score == isinstance(cls, T.VerifyingRefiner), (
            f"{cls.__qualname__}: ranks_by_score is True exactly for a refiner with verify()"
        )
    elif registry is DESCRIPTORS:
        assert isinstance(cls.needs_landmarks, bool) and isinstance(cls.needs_3d, bool)
        assert cls.needs_landmarks or not cls.needs_3d, "a 3D fit needs landmarks"


def test_the_check_catches_an_undeclared_attribute():
    class NoThreshold:
        def detect(self, image):
            return []

    class PlainWithoutFlag:
        def refine(self, image, detection):
            return detection

    class DescriberWithoutFlags:
        def describe(self, image, face):
            return None

    assert not isinstance(NoThreshold, T.Detector) and not isinstance(NoThreshold(), T.Detector)
    assert not isinstance(PlainWithoutFlag, T.Refiner)
    assert not isinstance(DescriberWithoutFlags, T.Descriptor)


def test_a_not_built_placeholder_declares_the_neutral_attributes():
    f = _not_built("refiner", 1, "later")
    assert f.ranks_by_score is False and f.proposal_threshold is None and f.needs_landmarks and f.needs_3d


@pytest.mark.parametrize(
    "refiner,detector,threshold",
    [("lm-verify", "dpm", -0.6), ("none", "dpm", 0.0), ("bbox-cnn", "dpm", 0.0), ("lm-verify", "dlib-hog", 0.0)],
)
def test_a_verifying_refiner_gets_the_detectors_proposal_threshold(refiner, detector, threshold):
    """The detector is built with its proposal_threshold exactly when the refiner ranks by score."""
    from pipeline.pipeline import Pipeline

    assert Pipeline(detector=detector, refiner=refiner)._stage("detector").threshold == threshold


class _Plain:
    ranks_by_score = False

    def refine(self, image, detection):
        return detection


class _Verifying(_Plain):
    ranks_by_score = True

    def verify(self, image, dets):
        return [Detection(d.box, d.score * 10, d.view) for d in dets[:1]]


class _Dets:
    proposal_threshold = None

    def detect(self, image):
        return [Detection((0, 0, 10, 10), 2.0), Detection((0, 0, 50, 50), 1.0)]


def test_the_pipeline_verifies_with_a_verifying_refiner_and_sorts_by_area_otherwise():
    from pipeline.pipeline import Pipeline

    img = np.zeros((64, 64, 3), np.uint8)
    plain, verifying = Pipeline(all_faces=True), Pipeline(all_faces=True)
    for pipe, ref in ((plain, _Plain()), (verifying, _Verifying())):
        pipe._stages.update(detector=_Dets(), refiner=ref)
    assert isinstance(_Verifying(), T.VerifyingRefiner) and not isinstance(_Plain(), T.VerifyingRefiner)
    assert [d.area for d in plain.detect(img)] == [2500.0, 100.0]  # largest first
    assert [d.score for d in verifying.detect(img)] == [20.0]  # verify() decided


class _NoLandmarks:
    needs_landmarks = False
    needs_3d = False

    def describe(self, image, face: FaceResult) -> Signature:
        assert face.landmarks is None and face.fit is None
        return Signature(np.ones(4, np.float32) / 2, None, "test")


def test_a_descriptor_that_needs_no_landmarks_skips_the_landmark_and_3d_stages():
    from pipeline.pipeline import Pipeline

    pipe = Pipeline(cropped=True)
    pipe._stages["descriptor"] = _NoLandmarks()
    pipe._stages["landmarker"] = pipe._stages["fitter"] = None  # would fail if used
    (face,) = pipe.run(np.zeros((40, 40, 3), np.uint8))
    assert face.signature.kind == "test" and face.landmarks is None
