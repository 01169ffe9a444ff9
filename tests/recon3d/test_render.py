"""CPU renderer: rasteriser, sign conventions, landmark visibility, face box."""

import cv2
import numpy as np
import pytest

from recon3d.camera import Camera
from recon3d.model import load_model
from recon3d.raster import rasterize
from recon3d.render import Lighting, face_box, frame_camera, landmark_visibility, render, render_pose

FAR_LEFT = [0, 6, 15]  # image-left brow outer, eye outer, mouth corner
FAR_RIGHT = [5, 11, 17]


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_rasterize_matches_opencv_fill_and_depth_order():
    xy = np.array([[10.2, 10.7], [50.3, 12.1], [30.6, 40.2], [20.0, 5.0], [45.0, 45.0], [5.0, 45.0]])
    tri = np.array([[0, 1, 2]])
    r = rasterize(xy, np.zeros(6), tri, 64, 64)
    # reference: brute-force point-in-triangle test of every pixel centre
    gy, gx = np.mgrid[0:64, 0:64]
    a, b, c = xy[0], xy[1], xy[2]

    def cross(p, q):
        return (q[0] - p[0]) * (gy - p[1]) - (q[1] - p[1]) * (gx - p[0])

    e = np.stack([cross(a, b), cross(b, c), cross(c, a)])
    ref = (e >= 0).all(0) | (e <= 0).all(0)
    assert np.array_equal(r.mask, ref)
    filled = np.zeros((64, 64), np.uint8)  # OpenCV's (conservative) fill covers the same pixels and more
    cv2.fillConvexPoly(filled, np.rint(xy[:3] * 256).astype(np.int32), 1, shift=8)
    assert (filled[r.mask] == 1).mean() > 0.97
    assert np.allclose(r.bary[r.mask].sum(1), 1) and (r.bary[r.mask] >= 0).all()
    # two overlapping triangles: the closer one (larger depth) wins
    two = np.array([[0, 1, 2], [3, 4, 5]])
    near_second = rasterize(xy, np.array([0, 0, 0, 1.0, 1.0, 1.0]), two, 64, 64)
    near_first = rasterize(xy, np.array([1.0, 1.0, 1.0, 0, 0, 0]), two, 64, 64)
    both = ref & rasterize(xy, np.zeros(6), two[1:], 64, 64).mask  # covered by both triangles
    assert both.sum() > 100
    assert (near_second.tri[both] == 1).all() and (near_first.tri[both] == 0).all()


def test_yaw_positive_puts_the_nose_left_of_the_face_centre(model):
    for yaw, side in ((40, -1), (-40, 1)):
        r = render_pose(model.mean, None, yaw, 0, 0, 256, 306)
        ys, xs = np.nonzero(r.mask)
        nose_x = r.landmarks[13, 0]
        assert np.sign(nose_x - xs.mean()) == side
        assert np.sign(nose_x - (r.box[0] + r.box[2]) / 2) == side
    up = render_pose(model.mean, None, 0, 25, 0, 256, 306)
    down = render_pose(model.mean, None, 0, -25, 0, 256, 306)

    # pitch > 0 (looking up): the nose tip moves up relative to the eyes
    def rel(r):
        return r.landmarks[13, 1] - r.landmarks[[7, 10], 1].mean()

    assert rel(up) < rel(down)


def test_visibility_frontal_and_profile(model):
    assert render_pose(model.mean, None, 0, 0, 0).visible.all()
    r = render_pose(model.mean, None, 75, 0, 0)  # nose towards image-left: the image-left side is far
    assert not r.visible[FAR_LEFT].any() and r.visible[FAR_RIGHT].all() and r.visible[[13, 18]].all()
    r = render_pose(model.mean, None, -75, 0, 0)
    assert not r.visible[FAR_RIGHT].any() and r.visible[FAR_LEFT].all()
    for yaw in (90, -90):  # full profile: midline points on the silhouette stay visible, as in AFLW
        r = render_pose(model.mean, None, yaw, 0, 0)
        far = FAR_LEFT + [1, 7, 8, 12] if yaw > 0 else FAR_RIGHT + [4, 9, 10, 14]
        assert r.visible[[13, 16, 18]].all() and not r.visible[far].any()
    # without a z-buffer the same test renders a small one itself
    cam = frame_camera(model.mean, 75, 0, 0, 256, 306)
    assert np.array_equal(landmark_visibility(model, model.mean, cam), render(model.mean, None, cam).visible)


def test_face_box_is_the_68_point_extent(model):
    r = render_pose(model.mean, None, 0, 0, 0, 256, 306, face_size=0.5)
    x0, y0, x1, y1 = r.box
    assert np.isclose(max(x1 - x0, y1 - y0), 0.5 * 256, rtol=1e-6)
    assert np.isclose((x0 + x1) / 2, 127.5) and np.isclose((y0 + y1) / 2, 152.5)
    assert (r.points68[:, 0] >= x0 - 1e-9).all() and (r.landmarks[:, 1] <= y1 + 1e-9).all()
    assert abs(r.landmarks[18, 1] - y1) < 2.0  # the chin is (about) the bottom of the box
    # constant scale over poses: the frontal box sets the size
    assert np.isclose(render_pose(model.mean, None, 60, 0, 0, face_size=0.5).camera.s, r.camera.s)


def test_texture_lighting_and_background(model):
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:, :32] = (255, 0, 0)  # u < 0.5: the subject's right = image-left in a frontal view
    tex[:, 32:] = (0, 0, 255)
    bg = np.full((50, 40, 3), 7, np.uint8)
    r = render_pose(model.mean, tex, 0, 0, 0, 128, 153, lighting=Lighting(1.0, 0.0), background=bg)
    assert r.image.shape == (153, 128, 3) and r.image.dtype == np.uint8
    assert (r.image[~r.mask] == 7).all()
    row = r.image[int(r.landmarks[7, 1])]
    assert row[int(r.landmarks[7, 0])][0] > 200 and row[int(r.landmarks[10, 0])][2] > 200
    dark = render_pose(model.mean, tex, 0, 0, 0, 128, 153, lighting=Lighting(0.2, 0.0), background=(0, 0, 0))
    assert dark.image[dark.mask].mean() < 0.3 * r.image[r.mask].mean()


def test_explicit_scale_and_translation(model):
    r = render_pose(model.mean, None, 10, 0, 0, 200, 200, scale=0.5, translation=(100, 100))
    assert r.camera.s == 0.5 and np.allclose(r.camera.t, (100, 100))
    box, _ = face_box(model, model.mean, Camera.from_pose(10, 0, 0, 0.5, (100, 100)))
    assert np.allclose(box, r.box)
