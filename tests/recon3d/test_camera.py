"""Scaled-orthographic camera: Euler convention (binding signs), projection, estimation."""

import numpy as np
import pytest

from pipeline.errors import FitError
from recon3d.camera import (
    Camera,
    estimate_affine_camera,
    estimate_camera,
    euler_to_rotation,
    project,
    rotation_to_euler,
)

NOSE = np.array([[0.0, 0.0, 100.0]])  # a point toward the viewer
RIGHT = np.array([[100.0, 0.0, 0.0]])  # toward the subject's left = image right


def test_sign_conventions():
    c = Camera.from_pose(0, 0, 0, 1.0, (0, 0))
    assert project(RIGHT, c)[0, 0] > 0 and project(np.array([[0, 100.0, 0]]), c)[0, 1] < 0  # y up -> image up
    assert Camera.from_pose(30, 0, 0).project(NOSE)[0, 0] < 0  # yaw > 0: nose towards image-left
    assert Camera.from_pose(-30, 0, 0).project(NOSE)[0, 0] > 0
    assert Camera.from_pose(0, 20, 0).project(NOSE)[0, 1] < 0  # pitch > 0: nose up
    assert Camera.from_pose(0, 0, 20).project(RIGHT)[0, 1] > 0  # roll > 0: image-right side goes down


def test_matches_3ddfa_rotation_matrix():
    p, y, r = np.radians([10.0, 20.0, 30.0])
    rx = [[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]]
    ry = [[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]]
    rz = [[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]]
    assert np.allclose(euler_to_rotation(20, 10, 30), np.array(rx) @ ry @ rz)


def test_euler_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = (rng.uniform(-89, 89), rng.uniform(-80, 80), rng.uniform(-80, 80))
        R = euler_to_rotation(*a)
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
        assert np.allclose(rotation_to_euler(R), a, atol=1e-6)


def test_camera_dict_and_projection_matrix():
    c = Camera.from_pose(10, -5, 3, 2.5, (100, 50))
    d = c.to_dict()
    assert set(d) >= {"R", "t", "s", "yaw", "pitch", "roll", "P"}
    X = np.random.default_rng(1).normal(0, 50, (10, 3))
    assert np.allclose(project(X, d), np.hstack([X, np.ones((10, 1))]) @ d["P"].T)
    assert np.isclose(d["yaw"], 10) and np.isclose(d["roll"], 3)


def test_gold_standard_affine_is_exact_on_noise_free_data():
    rng = np.random.default_rng(2)
    P = rng.normal(0, 1, (2, 4))
    X = rng.normal(0, 40, (12, 3))
    x = np.hstack([X, np.ones((12, 1))]) @ P.T
    assert np.allclose(estimate_affine_camera(x, X), P, atol=1e-8)


@pytest.mark.parametrize("refine", [False, True])
def test_scaled_orthographic_recovery(refine):
    rng = np.random.default_rng(3)
    for _ in range(20):
        truth = Camera.from_pose(
            rng.uniform(-85, 85),
            rng.uniform(-40, 40),
            rng.uniform(-30, 30),
            rng.uniform(0.5, 4),
            rng.uniform(0, 500, 2),
        )
        X = rng.normal(0, 40, (15, 3))
        est = estimate_camera(truth.project(X), X, refine=refine)
        assert np.allclose(est.R, truth.R, atol=1e-6) and np.isclose(est.s, truth.s) and np.allclose(est.t, truth.t)


def test_refinement_reduces_the_weighted_error():
    rng = np.random.default_rng(4)
    truth = Camera.from_pose(40, 10, -5, 2.0, (200, 200))
    X = rng.normal(0, 40, (19, 3))
    x = truth.project(X) + rng.normal(0, 2.0, (19, 2))
    lin = estimate_camera(x, X, refine=False)
    ref = estimate_camera(x, X, refine=True)

    def err(c):
        return np.sum((c.project(X) - x) ** 2)

    assert err(ref) <= err(lin) + 1e-9
    assert abs(ref.yaw - 40) < 3


def test_degenerate_input_raises_fit_error():
    rng = np.random.default_rng(5)
    X = rng.normal(0, 40, (8, 3))
    x = Camera.from_pose(0, 0, 0, 1.0).project(X)
    with pytest.raises(FitError, match="at least 4"):
        estimate_camera(x[:3], X[:3])
    with pytest.raises(FitError, match="NaN"):
        estimate_camera(np.where(np.arange(16).reshape(8, 2) == 3, np.nan, x), X)
    flat = X.copy()
    flat[:, 2] = 0.0
    with pytest.raises(FitError, match="coplanar"):
        estimate_camera(x, flat)
    with pytest.raises(FitError, match="coincident"):
        estimate_camera(np.zeros((8, 2)), X)
