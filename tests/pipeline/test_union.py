"""``dpm+mmod``: dpm proposals joined by MMOD boxes, ranked first, on real fixture photos and bad input."""

import numpy as np
import pytest
from conftest import face_box, fixture_image

from pipeline.detection.boxes import iou
from pipeline.imageio import load_image
from pipeline.registry import DETECTORS


@pytest.fixture(scope="module")
def union():
    return DETECTORS.create("dpm+mmod", min_face=40, threshold=-0.6)


@pytest.fixture(scope="module")
def portrait():
    """The einstein photo cropped around its face (300 x 300 px, under MMOD's pixel cap) and its face box."""
    img = load_image(fixture_image("einstein"))
    x0, y0, x1, y1 = face_box("einstein")
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
    ox, oy = cx - 150, cy - 150
    return np.ascontiguousarray(img[oy : oy + 300, ox : ox + 300]), (x0 - ox, y0 - oy, x1 - ox, y1 - oy)


def test_mmod_boxes_come_first_and_dpm_proposals_follow(union, portrait):
    img, box = portrait
    dets = union.detect(img)
    dpm_only = union.dpm.detect(img)
    mmod = [d for d in dets if d.view == "mmod"]
    assert mmod and dets[: len(mmod)] == mmod  # MMOD boxes lead the score order
    assert len(dets) == len(mmod) + len(dpm_only)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    assert max(iou(d.box, box) for d in mmod) > 0.5
    assert "+mmod-250000-upfallback" in union.cache_token and union.cache_token.startswith(union.dpm.cache_token)


def test_mmod_scales_shrink_large_images_and_enlarge_small_ones_as_a_fallback(union):
    assert union.mmod_scales(128, 128) == (1.0, pytest.approx(80 / 40))  # a 40 px face fills the window
    assert union.mmod_scales(450, 450) == (1.0, pytest.approx((250_000 / 450**2) ** 0.5))  # up to the cap
    first, up = union.mmod_scales(2000, 3000)
    assert first == pytest.approx((250_000 / 6e6) ** 0.5) and up is None  # large: shrunk, no fallback
    plain = DETECTORS.create("dpm+mmod", min_face=40, mmod_enlarge=False)
    assert plain.mmod_scales(128, 128) == (1.0, None) and plain.cache_token != union.cache_token


def test_small_face_is_proposed_by_mmod_on_an_enlarged_copy(union, portrait):
    """A ~55 px face in a 128 px image: below MMOD's 80 px window, found on the 2x copy."""
    import cv2

    img, box = portrait
    k = 128 / img.shape[0]
    small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    sbox = tuple(v * k for v in box)
    assert sbox[2] - sbox[0] < 80
    mmod = [d for d in union.detect(small) if d.view == "mmod"]
    assert mmod and max(iou(d.box, sbox) for d in mmod) > 0.5
    plain = DETECTORS.create("dpm+mmod", min_face=40, threshold=-0.6, mmod_enlarge=False)
    assert not [d for d in plain.detect(small) if d.view == "mmod"]


def test_bad_input_gives_an_empty_list(union):
    assert union.detect(np.zeros((30, 30, 3), np.uint8)) == []
    assert union.detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_large_photo_is_searched_on_a_shrunk_copy(union, portrait):
    img, _ = portrait
    big = np.ascontiguousarray(np.repeat(np.repeat(img, 3, axis=0), 3, axis=1))  # 9x the pixels
    assert big.shape[0] * big.shape[1] > union.mmod_max_pixels
    small = [d for d in union.detect(img) if d.view == "mmod"]
    large = [d for d in union.detect(big) if d.view == "mmod"]
    assert small and large  # found on the shrunk copy, mapped back to the big photo's pixels
    assert iou(tuple(v / 3 for v in large[0].box), small[0].box) > 0.6


@pytest.mark.parametrize("shape", [(10, 10000, 3), (10000, 10, 3), (60, 60, 3)])
def test_thin_and_tiny_images_give_no_face_not_a_crash(union, shape):
    assert union.detect(np.full(shape, 90, np.uint8)) == []
    assert DETECTORS.create("dlib-mmod").detect(np.full(shape, 90, np.uint8)) == []
