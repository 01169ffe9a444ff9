"""resnet-3d: the fused 2D + frontalised dlib ResNet template on a real photo."""

import numpy as np
import pytest
from conftest import face_box, fixture_image

from pipeline.errors import FitError
from pipeline.imageio import load_image
from pipeline.pipeline import Pipeline
from pipeline.registry import DESCRIPTORS
from pipeline.types import FaceResult


@pytest.fixture(scope="module")
def face_and_image():
    img = load_image(fixture_image("einstein"))
    pipe = Pipeline(descriptor="resnet-3d")
    face = pipe.run(img, until="lift", box=face_box("einstein"))[0]
    return pipe, face, img


def test_template_is_the_weighted_concatenation(face_and_image):
    pipe, face, img = face_and_image
    sig = pipe.descriptor.describe(img, face)
    assert sig.vector.shape == (256,) and sig.vector.dtype == np.float32 and sig.kind == "resnet-3d"
    assert abs(float(np.linalg.norm(sig.vector)) - 1) < 1e-5
    plain = DESCRIPTORS.create("dlib-resnet").describe(img, face).vector
    np.testing.assert_allclose(sig.vector[:128], np.sqrt(0.5) * plain, atol=1e-5)
    # the second half is the embedding of the frontal render (cosine = w cos(2D) + (1 - w) cos(frontal))
    r = pipe.descriptor.frontal(face)
    assert r.image.shape == (306, 256, 3) and r.visible.all()
    front = pipe.descriptor._resnet.embed(r.image, r.box, r.landmarks)
    np.testing.assert_allclose(sig.vector[128:], np.sqrt(0.5) * front, atol=1e-5)


def test_weight_option_and_errors(face_and_image):
    _, face, img = face_and_image
    only_2d = DESCRIPTORS.create("resnet-3d", weight_2d=1.0).describe(img, face).vector
    assert np.allclose(only_2d[128:], 0) and abs(np.linalg.norm(only_2d[:128]) - 1) < 1e-5
    with pytest.raises(ValueError):
        DESCRIPTORS.create("resnet-3d", weight_2d=1.5)
    with pytest.raises(FitError):
        DESCRIPTORS.create("resnet-3d").describe(img, FaceResult(face.detection, face.landmarks))


def test_flip_variant_averages_mirrored_chips_with_the_torch_backbone(face_and_image):
    """resnet-3d-flip = [sqrt(0.3) e_2d, sqrt(0.7) e_front] with each e the unit mean of a chip and its mirror."""
    _, face, img = face_and_image
    d = DESCRIPTORS.create("resnet-3d-flip")
    sig = d.describe(img, face)
    assert sig.vector.shape == (256,) and sig.kind == "resnet-3d-flip" and d.weight_2d == 0.3
    torch_flip = DESCRIPTORS.create("dlib-resnet-torch", flip=True)
    e2d = torch_flip.embed(img, face.detection.box, face.landmarks.points)
    np.testing.assert_allclose(sig.vector[:128], np.sqrt(0.3) * e2d, atol=1e-5)
    plain = DESCRIPTORS.create("dlib-resnet").describe(img, face).vector
    assert 0.9 < float(e2d @ plain) < 0.99999  # the mirror changes the embedding, a little
    assert "flip=1" in d.cache_token and d.cache_token != DESCRIPTORS.create("resnet-3d").cache_token
    with pytest.raises(ValueError):
        DESCRIPTORS.create("resnet-3d", flip=True)  # dlib's own network has no mirror option here
