"""pipeline.overlay: the one box + landmark drawer (colours at known pixels, inputs, shapes)."""

import numpy as np
import pytest

from pipeline.overlay import BOX_COLOUR, OCCLUDED_COLOUR, VISIBLE_COLOUR, default_radius, draw_faces, draw_landmarks


def px(img, x, y):
    return tuple(int(c) for c in img[y, x])


def test_colours_at_known_pixels_and_input_untouched():
    img = np.full((60, 80, 3), 100, np.uint8)
    before = img.copy()
    pts = np.array([[10.0, 10.0], [40.0, 30.0], [np.nan, 1.0], [1e30, 5.0]])
    out = draw_landmarks(img, pts, np.array([True, False, True, True]), box=(5, 5, 50, 40), radius=3)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(img, before)  # pure: a copy is drawn on
    assert px(out, 10, 10) == px(out, 12, 10) == VISIBLE_COLOUR == (0, 255, 0)  # filled disc
    assert px(out, 43, 30) == px(out, 40, 27) == OCCLUDED_COLOUR == (255, 0, 0)  # ring of radius 3 ...
    assert px(out, 40, 30) == (100, 100, 100)  # ... hollow
    assert px(out, 30, 5) == px(out, 5, 20) == px(out, 50, 40) == BOX_COLOUR == (255, 220, 0)
    assert px(out, 30, 20) == px(out, 70, 50) == (100, 100, 100)  # inside the box, outside it
    # exactly four colours: no anti-aliasing (the contact sheets' palette keeps them)
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert colours == {(100, 100, 100), VISIBLE_COLOUR, OCCLUDED_COLOUR, BOX_COLOUR}


def test_gray_rgba_and_float_inputs_give_rgb():
    gray = np.full((30, 40), 7, np.uint8)
    out = draw_landmarks(gray, np.array([[20.0, 15.0]]))
    assert out.shape == (30, 40, 3) and px(out, 20, 15) == VISIBLE_COLOUR and px(out, 0, 0) == (7, 7, 7)
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 3] = 255
    assert draw_landmarks(rgba, np.zeros((0, 2))).shape == (30, 40, 3)
    assert draw_landmarks(np.full((30, 40, 1), 300.0), np.zeros((0, 2)))[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="image"):
        draw_landmarks(np.zeros((4, 4, 2), np.uint8), np.zeros((0, 2)))


def test_several_faces_box_only_and_lengths():
    img = np.zeros((100, 100, 3), np.uint8)
    out = draw_faces(
        img,
        [(10, 10, 40, 40), None, (60, 60, 90, 90)],
        [np.array([[20.0, 20.0]]), np.array([[75.0, 20.0]]), None],
        [np.array([False]), None, None],
        radius=2,
    )
    assert px(out, 22, 20) == OCCLUDED_COLOUR and px(out, 20, 20) == (0, 0, 0)  # face 0: occluded
    assert px(out, 75, 20) == VISIBLE_COLOUR  # face 1: no box, visible
    assert px(out, 60, 75) == BOX_COLOUR and px(out, 75, 75) == (0, 0, 0)  # face 2: box only
    assert px(out, 10, 25) == BOX_COLOUR
    np.testing.assert_array_equal(draw_faces(img, [], []), img)
    with pytest.raises(ValueError, match="one each per face"):
        draw_faces(img, [None], [None, None])
    with pytest.raises(ValueError, match="visibility"):
        draw_landmarks(img, np.zeros((3, 2)), np.ones(2, bool))


def test_default_radius_and_line_width_scale_with_the_image():
    assert default_radius((60, 80)) == 1 and default_radius((480, 640, 3)) == 3 and default_radius((1200, 900)) == 6
    big = draw_landmarks(
        np.zeros((900, 1200, 3), np.uint8), np.array([[600.0, 450.0]]), np.array([False]), box=(100, 100, 800, 800)
    )
    assert px(big, 606, 450) == px(big, 605, 450) == OCCLUDED_COLOUR  # radius 6, ring 2 px wide
    assert px(big, 600, 450) == (0, 0, 0)
    assert px(big, 400, 100) == px(big, 400, 101) == BOX_COLOUR
