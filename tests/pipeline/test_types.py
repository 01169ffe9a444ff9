import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.types import AFLW19_AFLW_IDS, AFLW19_MIRROR, AFLW19_NAMES, NUM_LANDMARKS, UHDB31_NINE, Landmarks, as_box


def test_aflw19_order():
    assert NUM_LANDMARKS == 19 == len(AFLW19_AFLW_IDS)
    assert 13 not in AFLW19_AFLW_IDS and 17 not in AFLW19_AFLW_IDS
    assert AFLW19_NAMES[0] == "left_brow_outer" and AFLW19_NAMES[-1] == "chin"
    assert [AFLW19_NAMES[i] for i in UHDB31_NINE][:2] == ["left_eye_outer", "left_eye_inner"]


def test_mirror_is_an_involution_swapping_sides():
    m = np.array(AFLW19_MIRROR)
    assert (m[m] == np.arange(19)).all()
    for i, j in enumerate(m):
        a, b = AFLW19_NAMES[i], AFLW19_NAMES[j]
        if i == j:
            assert "left" not in a and "right" not in a
        else:
            assert a.replace("left", "X").replace("right", "left").replace("X", "right") == b


def test_landmarks_shape_checked():
    with pytest.raises(ValueError):
        Landmarks(np.zeros((18, 2)), np.ones(19, bool), np.ones(19))


@pytest.mark.parametrize("bad", [(1, 2, 3), (0, 0, 0, 10), (0, 0, float("nan"), 3), ("a", 0, 1, 1)])
def test_bad_boxes(bad):
    with pytest.raises(ConfigError):
        as_box(bad)
