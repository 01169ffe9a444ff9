"""Landmark-aligned chips (descriptors/chips.py) and the torch dlib-ResNet descriptors
(descriptors/resnet_torch.py): the chip is the one dlib's own descriptor describes, and
``dlib-resnet-torch`` gives dlib-resnet's embedding."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO

from descriptors.chips import CHIP_SIZE, chip_from_landmarks, five_points
from pipeline.imageio import load_image
from pipeline.types import Detection, FaceResult, Landmarks

ORL = REPO / "examples" / "gallery" / "orl_s01.png"


def _face(img: np.ndarray) -> FaceResult:
    """An ORL face with hand-placed AFLW-19 landmarks (frontal, 92x112 image)."""
    h, w = img.shape[:2]
    pts = np.zeros((19, 2))
    # brows 0-5, eyes 6-11 (6/8 image-left outer/inner, 9/11 image-right inner/outer), nose 12-14, mouth 15-17, chin 18
    pts[0:3] = [(22, 38), (30, 35), (38, 37)]
    pts[3:6] = [(54, 37), (62, 35), (70, 38)]
    pts[6:9] = [(26, 47), (32, 46), (39, 47)]
    pts[9:12] = [(53, 47), (60, 46), (66, 47)]
    pts[12:15] = [(39, 66), (46, 68), (53, 66)]
    pts[15:18] = [(36, 80), (46, 82), (56, 80)]
    pts[18] = (46, 100)
    lm = Landmarks(pts.astype(float), np.ones(19, bool), np.ones(19))
    return FaceResult(detection=Detection((10.0, 20.0, 82.0, 108.0), 1.0, "test"), landmarks=lm)


def test_five_points_groups_and_shape_check():
    pts = np.arange(38, dtype=float).reshape(19, 2)
    five = five_points(pts)
    assert five.shape == (5, 2)
    assert five[0].tolist() == pts[11].tolist() and five[3].tolist() == pts[8].tolist()
    assert five[4].tolist() == ((pts[12] + pts[14]) / 2).tolist()
    with pytest.raises(ValueError):
        five_points(np.zeros((5, 2)))


def test_chip_is_dlibs_chip_and_rejects_bad_images():
    dlib = pytest.importorskip("dlib")
    img = load_image(ORL)
    face = _face(img)
    chip = chip_from_landmarks(img, face.detection.box, face.landmarks.points)
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3) and chip.dtype == np.uint8
    assert chip.std() > 10  # a face, not a flat fill
    from descriptors.chips import dlib_shape

    ref = np.asarray(dlib.get_face_chip(img, dlib_shape(img, face.detection.box, face.landmarks.points), 150, 0.25))
    assert np.array_equal(chip, ref)
    with pytest.raises(ValueError):
        chip_from_landmarks(img[..., 0], face.detection.box, face.landmarks.points)


def test_dlib_resnet_torch_matches_dlib_resnet():
    pytest.importorskip("dlib")
    from descriptors.dlib_resnet import DlibResnetDescriptor
    from descriptors.resnet_torch import TorchResnetDescriptor

    img = load_image(ORL)
    face = _face(img)
    ref = DlibResnetDescriptor().describe(img, face).vector
    sig = TorchResnetDescriptor().describe(img, face)
    assert sig.vector.shape == (128,) and sig.vector.dtype == np.float32
    assert abs(float(np.linalg.norm(sig.vector)) - 1) < 1e-5
    assert float(sig.vector @ ref) > 0.9999
    flipped = TorchResnetDescriptor(flip=True)
    v = flipped.describe(img, face).vector
    assert 0.8 < float(v @ ref) < 0.99999  # mirror averaging changes the vector, not the identity
    assert flipped.cache_token != TorchResnetDescriptor().cache_token
