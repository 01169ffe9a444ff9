"""Export: OBJ (+ MTL + texture PNG), PLY, overlays; atomic writes."""

import numpy as np
import pytest

from pipeline import overlay
from pipeline.imageio import load_image
from recon3d.export import draw_landmarks, export_mesh, save_landmark_overlay, save_png
from recon3d.model import load_model


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
