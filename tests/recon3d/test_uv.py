"""UV texture lifting: render -> lift -> re-render round trips, visibility mask, mirror filling."""

import cv2
import numpy as np
import pytest

from pipeline.errors import FitError
from pipeline.types import Fit3D, UVTexture
from recon3d.model import load_model
from recon3d.render import Lighting, render, render_pose
from recon3d.uv import LiftConfig, LiftedTexture, complete_texture, lift_texture, uv_raster

FLAT = Lighting(ambient=1.0, diffuse=0.0)  # no shading: rendered colour = texture colour


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def texture():
    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 255, (16, 16, 3)).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)


def fit_of(rendered, vertices):
    return Fit3D(vertices, rendered.camera.to_dict(), np.zeros(63), 0.0)


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (40, 10), (-70, -5)])
def test_render_lift_rerender_round_trip(model, texture, yaw, pitch):
    r = render_pose(model.mean, texture, yaw, pitch, 5, 320, 360, lighting=FLAT)
    lifted = lift_texture(r.image, fit_of(r, model.mean), 256)
    assert isinstance(lifted, UVTexture) and lifted.image.shape == (256, 256, 3) and lifted.mask.shape == (256, 256)
    assert lifted.mask.min() >= 0 and lifted.mask.max() <= 1
    seen = lifted.mask > 0.3
    assert seen.mean() > 0.3
    err = np.abs(lifted.image[seen].astype(float) - texture[seen].astype(float))
    assert err.mean() < 3.0  # grey levels
    again = render(model.mean, lifted.image, r.camera, 320, 360, lighting=FLAT)
    diff = np.abs(again.image[r.mask].astype(float) - r.image[r.mask].astype(float))
    assert np.median(diff) <= 1.0 and diff.mean() < 3.0


def test_occluded_half_is_masked_and_mirror_filled(model, texture):
    r = render_pose(model.mean, texture, 70, 0, 0, 320, 360, lighting=FLAT)  # image-left half is far
    plain = lift_texture(r.image, fit_of(r, model.mean), 128)
    valid = uv_raster(model, 128).valid
    left, right = valid[:, :50], valid[:, 78:]  # u < 0.4: subject's right (far side); u > 0.6: near side
    assert plain.mask[:, :50][left].mean() < 0.05 < plain.mask[:, 78:][right].mean()
    assert not plain.mirrored.any()
    filled = lift_texture(r.image, fit_of(r, model.mean), 128, mirror_fill=True)
    assert isinstance(filled, LiftedTexture) and filled.mirrored[:, :50].mean() > 0.3
    assert not filled.mirrored[:, 78:].any()
    m = filled.mirrored
    assert np.array_equal(filled.image[m], plain.image[:, ::-1][m])  # copied from the mirror texel
    assert (filled.mask[m] <= 0.5 * plain.mask[:, ::-1][m] + 1e-6).all()  # marked by a lower weight
    done = complete_texture(filled)
    assert done.shape == (128, 128, 3) and done[valid].min(axis=1).max() > 0


def test_uv_layout_is_mirror_symmetric(model):
    uvr = uv_raster(model, 64)
    assert uvr.valid.mean() > 0.6
    # the texel grid mirrors exactly: (i, j) <-> (i, S-1-j)
    assert (uvr.valid == uvr.valid[:, ::-1]).mean() > 0.98


def test_gray_input_config_and_errors(model, texture):
    r = render_pose(model.mean, texture, 10, 0, 0, 200, 240, lighting=FLAT)
    gray = cv2.cvtColor(r.image, cv2.COLOR_RGB2GRAY)
    lifted = lift_texture(gray, fit_of(r, model.mean), config=LiftConfig(size=64))
    assert lifted.image.shape == (64, 64, 3) and (lifted.image[..., 0] == lifted.image[..., 1]).all()
    with pytest.raises(FitError):
        lift_texture(np.zeros((0, 0, 3), np.uint8), fit_of(r, model.mean))
    with pytest.raises(FitError):
        lift_texture(r.image, Fit3D(np.zeros((10, 3)), r.camera.to_dict(), np.zeros(63), 0.0))
