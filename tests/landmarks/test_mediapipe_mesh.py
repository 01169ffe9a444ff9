"""MediaPipe baseline: mapping table sanity, and accuracy on a fixture when the extra is installed."""

import importlib.util

import numpy as np
import pytest
from conftest import FIXTURES, read_pts

from landmarks.dlib_ert import ibug68_to_aflw19
from landmarks.mediapipe_mesh import MESH_TO_AFLW19, mesh_to_aflw19
from landmarks.metrics import nme


def test_table_shape():
    assert len(MESH_TO_AFLW19) == 19
    assert all(0 <= i < 468 for ids in MESH_TO_AFLW19 for i in ids)
    mesh = np.arange(468 * 2, dtype=float).reshape(468, 2)
    assert mesh_to_aflw19(mesh).shape == (19, 2)


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="optional extra mediapipe not installed")
def test_mediapipe_on_einstein():
    from landmarks.mediapipe_mesh import MediapipeLandmarker
    from pipeline.imageio import load_image

    g68 = read_pts(FIXTURES / "einstein.pts")
    box = (*g68.min(0), *g68.max(0))
    out = MediapipeLandmarker().predict(load_image(FIXTURES / "einstein.jpg"), box)
    assert (
        nme(out.points, ibug68_to_aflw19(g68), np.ones(19, bool), box) < 10.0
    )  # 6.9 when written; a broken table gives > 20
