"""A smoke test for every registered stage that is built: it loads and runs on a fixture."""

import numpy as np
import pytest
from conftest import FIXTURES

from pipeline.errors import NotBuiltError
from pipeline.imageio import load_image
from pipeline.registry import DESCRIPTORS, DETECTORS, LANDMARKERS, REFINERS
from pipeline.types import Detection, FaceResult, Landmarks, Signature

EINSTEIN_FACE = (362.0, 285.0, 448.0, 371.0)  # dlib HOG box of the main face


def _built(registry, name):
    try:
        return registry.create(name)
    except NotBuiltError:
        pytest.skip(f"{registry.stage} {name!r} is not built yet")
    except Exception as e:  # optional extras / missing weights
        if "not installed" in str(e) or "no trained" in str(e):
            pytest.skip(str(e))
        raise


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detectors(name):
    det = _built(DETECTORS, name)
    img = load_image(FIXTURES / "takeo.png")
    found = det.detect(img)
    assert found and all(isinstance(d, Detection) for d in found)
    x0, y0, x1, y1 = found[0].box
    assert 0 <= (x0 + x1) / 2 <= img.shape[1] and 0 <= (y0 + y1) / 2 <= img.shape[0]
    assert det.detect(np.zeros((120, 100, 3), np.uint8)) == []


@pytest.mark.parametrize("name", REFINERS.names())
def test_refiners(name):
    ref = _built(REFINERS, name)
    d = Detection((10.0, 10.0, 60.0, 60.0), 1.0)
    out = ref.refine(load_image(FIXTURES / "takeo.png"), d)
    assert isinstance(out, Detection)


@pytest.mark.parametrize("name", LANDMARKERS.names())
def test_landmarkers(name):
    lm = _built(LANDMARKERS, name)
    out = lm.predict(load_image(FIXTURES / "einstein.jpg"), EINSTEIN_FACE)
    assert isinstance(out, Landmarks) and np.isfinite(out.points).all()
    cx, cy = out.points.mean(0)
    assert 362 < cx < 448 and 285 < cy < 380


@pytest.mark.parametrize("name", DESCRIPTORS.names())
def test_descriptors(name):
    desc = _built(DESCRIPTORS, name)
    img = load_image(FIXTURES / "einstein.jpg")
    face = FaceResult(Detection(EINSTEIN_FACE, 1.0))
    if desc.needs_landmarks:  # declared by every descriptor (pipeline.types.Descriptor)
        pytest.skip("needs the landmark/3D stages; covered by the pipeline tests")
    sig = desc.describe(img, face)
    assert isinstance(sig, Signature) and np.isclose(np.linalg.norm(sig.vector), 1.0, atol=1e-4)
