"""Frontalisation: a face rendered at a pose, lifted and frontalised looks like its frontal render."""

import cv2
import numpy as np
import pytest

from pipeline.errors import FitError
from pipeline.types import Fit3D, UVTexture
from recon3d.frontalize import frontalize, mean_face_colour
from recon3d.model import load_model
from recon3d.render import Lighting, render_pose
from recon3d.uv import lift_texture

FLAT = Lighting(ambient=1.0, diffuse=0.0)


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def texture():
    rng = np.random.default_rng(1)
    return cv2.resize(rng.integers(0, 255, (12, 12, 3)).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)


def lifted_at(model, texture, yaw, vertices=None):
    V = model.mean if vertices is None else vertices
    r = render_pose(V, texture, yaw, 0, 0, 320, 360, lighting=FLAT)
    return lift_texture(r.image, Fit3D(V, r.camera.to_dict(), np.zeros(63), 0.0), 256)


@pytest.mark.parametrize("yaw", [0, 45, -75])
def test_frontalised_view_matches_the_frontal_render(model, texture, yaw):
    truth = render_pose(model.mean, texture, 0, 0, 0, 256, 306, lighting=FLAT)
    uv = lifted_at(model, texture, yaw)
    f = frontalize(Fit3D(model.mean, {}, np.zeros(63), 0.0), uv)
    assert f.image.shape == (306, 256, 3) and f.visible.all()
    np.testing.assert_allclose(f.landmarks, truth.landmarks, atol=1e-6)  # same frontal framing
    # the half of the face the camera saw is reproduced; the other half comes from the mirror texel
    seen_side = truth.mask & ((np.arange(256)[None, :] > 128) if yaw > 0 else (np.arange(256)[None, :] < 128))
    if yaw == 0:
        seen_side = truth.mask
    diff = np.abs(f.image[seen_side].astype(float) - truth.image[seen_side].astype(float))
    assert np.median(diff) < 3.0
    # a wrong texture (another random face) is far off: the test can fail
    other = lifted_at(model, np.roll(texture, 64, axis=1), yaw)
    bad = frontalize(Fit3D(model.mean, {}, np.zeros(63), 0.0), other)
    bad_diff = np.abs(bad.image[seen_side].astype(float) - truth.image[seen_side].astype(float))
    assert np.median(bad_diff) > 3 * np.median(diff) + 5


def test_background_is_the_mean_face_colour(model, texture):
    uv = lifted_at(model, texture, 30)
    f = frontalize(Fit3D(model.mean, {}, np.zeros(63), 0.0), uv)
    bg = f.image[~f.mask]
    np.testing.assert_allclose(bg.mean(0), mean_face_colour(uv), atol=1.0)
    grey = frontalize(Fit3D(model.mean, {}, np.zeros(63), 0.0), uv, background=(10, 20, 30))
    assert (grey.image[~grey.mask] == (10, 20, 30)).all()
    assert np.array_equal(grey.image[grey.mask], f.image[f.mask])  # the face itself is unchanged
    empty = UVTexture(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32))
    assert mean_face_colour(empty) == (128.0, 128.0, 128.0)


def test_errors(model, texture):
    uv = lifted_at(model, texture, 0)
    with pytest.raises(FitError):
        frontalize(Fit3D(np.zeros((5, 3)), {}, np.zeros(63), 0.0), uv)
    with pytest.raises(FitError):
        frontalize(Fit3D(model.mean, {}, np.zeros(63), 0.0), UVTexture(uv.image, np.zeros_like(uv.mask)))
