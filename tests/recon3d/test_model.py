"""The packaged Surrey Face Model: loading, landmark correspondences, symmetry, contour."""

import numpy as np
import pytest

from recon3d.camera import Camera
from recon3d.model import (
    IBUG68_TO_AFLW19,
    NOSE_TIP_VERTEX,
    aflw19_points,
    aflw19_vertex_groups,
    ibug68_points,
    load_model,
    packaged_model_path,
    silhouette_vertices,
)


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_packaged_model_loads_and_is_cached(model):
    assert packaged_model_path().name == "sfm_3448.npz" and packaged_model_path().exists()
    assert load_model() is model
    assert model.mean.shape == (3448, 3) and model.basis.shape == (3 * 3448, 63)
    assert model.triangles.shape == (6736, 3) and model.texcoords.shape == (3448, 2)
    assert model.expressions.shape == (6, 3 * 3448) and model.expression_names[3] == "happiness"
    assert not model.mean.flags.writeable
    # shape(): mean + basis @ coeffs
    c = np.zeros(63)
    c[0] = 1.0
    d = model.shape(c) - model.mean
    assert np.allclose(d.reshape(-1), model.basis[:, 0])


def test_mapping_matches_the_dlib_baseline():
    from landmarks.dlib_ert import IBUG68_TO_AFLW19 as DLIB_MAP

    assert IBUG68_TO_AFLW19 == DLIB_MAP


def test_nose_tip_is_the_most_protruding_midline_vertex(model):
    mid = np.flatnonzero(np.abs(model.mean[:, 0]) < 3.0)
    assert mid[np.argmax(model.mean[mid, 2])] == NOSE_TIP_VERTEX
    assert aflw19_vertex_groups(model)[13] == (NOSE_TIP_VERTEX,)


def test_frontal_landmark_layout(model):
    p = Camera.from_pose(0, 0, 0, 2.0, (200, 200)).project(aflw19_points(model, model.mean))
    # image-left points have smaller x than their mirror partners; brows above eyes above nose, mouth, chin
    from pipeline.types import AFLW19_MIRROR

    for i, j in enumerate(AFLW19_MIRROR):
        if i < j:
            assert p[i, 0] < p[j, 0] - 10
    assert p[:6, 1].max() < p[6:12, 1].min() < p[12:15, 1].min()
    assert p[12:15, 1].max() < p[15:18, 1].min() and p[15:18, 1].max() < p[18, 1]
    assert abs(p[13, 0] - 200) < 2 and abs(p[18, 0] - 200) < 2  # nose tip and chin on the midline


def test_symmetry_is_a_mirror_involution(model):
    s = model.symmetry
    assert np.array_equal(s[s], np.arange(len(s)))
    mirrored = model.mean[s] * [-1, 1, 1]
    assert np.abs(mirrored - model.mean).max() < 3.0  # mm
    assert np.allclose(model.texcoords[s, 0], 1 - model.texcoords[:, 0], atol=1e-6)


def test_symmetry_matches_eos_reference_file(model, shared_data):
    from recon3d.make_data import read_symmetry_txt

    ref = read_symmetry_txt(shared_data / "sfm" / "sfm_reference_symmetry.txt")
    assert np.array_equal(model.symmetry[: len(ref)], ref)


def test_make_data_reproduces_the_packaged_file(tmp_path, shared_data, model):
    from recon3d.make_data import build

    out = build(shared_data / "sfm", tmp_path / "sfm.npz")
    other = load_model(out)
    assert np.array_equal(other.mean, model.mean) and np.array_equal(other.symmetry, model.symmetry)


def test_silhouette_contour_moves_with_yaw(model):
    V = model.mean
    front = Camera.from_pose(0, 0, 0, 1.0)
    p68 = front.project(ibug68_points(model, V, front.R))
    allx = front.project(V)[:, 0]
    # frontal: jaw points 1 and 17 are near the face's extreme x, chin (9) on the midline
    assert p68[0, 0] < allx.min() + 6 and p68[16, 0] > allx.max() - 6
    assert abs(p68[8, 0]) < 2
    # at yaw 50 the far (image-left = subject's right) jaw contour lies on the silhouette
    cam = Camera.from_pose(50, 0, 0, 1.0)
    ids = silhouette_vertices(model, V, cam.R, "right")
    assert not np.array_equal(ids, silhouette_vertices(model, V, front.R, "right"))
    from recon3d.model import _row_direction, contour_row_angles

    cam2 = V @ cam.R[:2].T
    for r, v, phi in zip(model.contour_rows["right"], ids, contour_row_angles()):
        out = cam2 @ (cam.R[:2] @ _row_direction(phi, "right"))  # outward along the row
        assert out[v] >= out[r].max() - 1e-9
    # sideways rows (phi = 90): the silhouette vertex is the row's image-leftmost point
    k = int(np.argmin(np.abs(contour_row_angles() - 90)))
    proj = cam.project(V)
    assert proj[ids[k], 0] <= proj[model.contour_rows["right"][k], 0].min() + 1e-9
