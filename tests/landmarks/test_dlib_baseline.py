"""Golden tests of the iBUG-68 -> AFLW-19 mapping and the dlib landmarker on fixtures."""

import json

import numpy as np
import pytest
from conftest import FIXTURES, read_pts

from landmarks.dlib_ert import IBUG68_TO_AFLW19, DlibLandmarker, ibug68_to_aflw19
from landmarks.metrics import nme
from pipeline.imageio import load_image
from pipeline.types import AFLW19_NAMES

NAMES = ["einstein", "takeo"]


@pytest.mark.parametrize("name", NAMES)
def test_mapping_matches_golden_file(name):
    golden = np.array(json.loads((FIXTURES / "aflw19_golden.json").read_text())[name])
    assert np.allclose(ibug68_to_aflw19(read_pts(FIXTURES / f"{name}.pts")), golden, atol=1e-3)


def test_mapping_geometry_on_a_frontal_face():
    p = ibug68_to_aflw19(read_pts(FIXTURES / "einstein.pts"))
    ix = {n: i for i, n in enumerate(AFLW19_NAMES)}
    x, y = p[:, 0], p[:, 1]
    assert x[ix["left_brow_outer"]] < x[ix["left_brow_inner"]] < x[ix["right_brow_inner"]] < x[ix["right_brow_outer"]]
    assert x[ix["left_eye_outer"]] < x[ix["left_eye_center"]] < x[ix["left_eye_inner"]]
    assert (
        y[ix["left_brow_center"]] < y[ix["left_eye_center"]] < y[ix["nose_tip"]] < y[ix["mouth_center"]] < y[ix["chin"]]
    )
    assert len(IBUG68_TO_AFLW19) == 19


@pytest.mark.parametrize("name", NAMES)
def test_dlib_landmarker_on_annotated_photo(name):
    img = load_image(FIXTURES / f"{name}.png" if (FIXTURES / f"{name}.png").exists() else FIXTURES / f"{name}.jpg")
    gt68 = read_pts(FIXTURES / f"{name}.pts")
    gt = ibug68_to_aflw19(gt68)
    x0, y0 = gt68.min(0)
    x1, y1 = gt68.max(0)
    box = (x0, y0, x1, y1)
    lm = DlibLandmarker().predict(img, box)
    e = nme(lm.points, gt, np.ones(19, bool), box)
    assert e < 8.0, f"dlib NME {e:.2f}% on {name}"
    assert lm.visible.all()
