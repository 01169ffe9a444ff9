import numpy as np
import torch

from landmarks.godp.data import input_to_map, map_to_input, yaw_subspace
from landmarks.godp.decode import decode
from landmarks.roi import Roi, apply_affine, invert_affine, perturbed_rois, roi_from_box


def test_heatmap_argmax_roundtrip_subpixel():
    K, L, H = 3, 19, 80
    rng = np.random.default_rng(0)
    true = rng.uniform(5, 75, (L, 2))
    ys, xs = np.mgrid[0:H, 0:H]
    logits = torch.full((1, K * L + 1, H, H), -20.0)
    logits[0, -1] = 0.0
    for j, (x, y) in enumerate(true):
        g = 12.0 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 0.8**2))
        logits[0, 1 * L + j] = torch.from_numpy(g - 6.0).float()  # subspace 1
    pts, score, sub = decode(logits, K, L)
    err = np.abs(pts[0].numpy() - true)
    assert err.max() < 0.25, err.max()
    assert int(sub[0]) == 1 and (score > 0.5).all()


def test_roi_matrix_maps_square_onto_crop():
    roi = Roi(100.0, 50.0, 40.0)
    m = roi.matrix(160)
    corners = np.array([[80.0, 30.0], [120.0, 70.0], [100.0, 50.0]])  # continuous edges and centre
    out = apply_affine(m, corners)
    assert np.allclose(out, [[-0.5, -0.5], [159.5, 159.5], [79.5, 79.5]])
    back = apply_affine(invert_affine(m), out)
    assert np.allclose(back, corners)


def test_rotated_roi_roundtrip_and_box_rule():
    roi = Roi(10.0, 20.0, 30.0, angle=17.0)
    m = roi.matrix(160)
    pts = np.random.default_rng(1).uniform(0, 40, (10, 2))
    assert np.allclose(apply_affine(invert_affine(m), apply_affine(m, pts)), pts)
    r = roi_from_box((0, 0, 10, 20))
    assert np.isclose(r.side, 20 * np.sqrt(2)) and (r.cx, r.cy) == (5.0, 10.0)
    rois = perturbed_rois(r, 16)
    assert len(rois) == 16 and rois[0] == r and len({(q.cx, q.side) for q in rois}) == 16


def test_map_input_conversion_and_yaw_subspace():
    p = np.array([[0.5, 159.5]])
    assert np.allclose(map_to_input(input_to_map(p)), p)
    assert list(yaw_subspace(np.array([-60, -10, 0, 45]))) == [0, 1, 1, 2]
    assert list(yaw_subspace(np.array([-60, 60]), K=1)) == [0, 0]
