"""pipeline.reconstruct on a bundled ORL example: every output file is there and valid, the JSON has
the pose; bad inputs give one clear line and a non-zero exit. Also the pose keys of landmarks.predict
(--pose) and pipeline.identify, and the pose axes of the overlay drawer."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from pipeline.types import AFLW19_NAMES

EX = REPO / "examples"
PROBE = EX / "probes" / "orl_s01_3.png"
PER_FACE = (
    "{t}.obj",
    "{t}.mtl",
    "{t}_uv.png",
    "{t}.ply",
    "{t}_uv_mask.png",
    "{t}_frontal.png",
    "{t}.pts",
    "{t}_landmarks.json",
)


def _one_error_line(r, name):
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and name in lines[0], r.stderr


@pytest.fixture(scope="module")
def reconstructed(tmp_path_factory):
    """One run over the probe (copied under a name with a space) and a broken file: --all, --json."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("rec")
    inp = root / "in"
    inp.mkdir()
    shutil.copy(PROBE, inp / "my probe.png")
    (inp / "zz_broken.png").write_text("not an image")
    out, js = root / "out", root / "rec.json"
    r = subprocess.run(
        [sys.executable, "-m", "pipeline.reconstruct", str(inp), "--out", str(out), "--all", "--json", str(js)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    return r, out, json.loads(js.read_text()) if js.exists() else None


def test_all_outputs_exist_and_are_valid(reconstructed):
    import trimesh

    from recon3d.export import read_pts

    r, out, res = reconstructed
    assert r.returncode == 0, r.stderr  # one image worked: exit 0, the broken one reported
    assert "zz_broken.png" in r.stderr and "Traceback" not in r.stderr
    assert [x["status"] for x in res] == ["ok", "error"]
    ok = res[0]
    t = "my_probe_0"
    expected = {f.format(t=t) for f in PER_FACE} | {"my_probe_overlay.png"}
    assert {p.name for p in out.iterdir()} == expected
    assert sorted(ok["files"]) == sorted(str(out / n) for n in expected)
    # mesh: OBJ with its UV coordinates and texture, PLY with vertex colours
    mesh = trimesh.load(out / f"{t}.obj", process=False)
    assert mesh.vertices.shape == (3448, 3) and mesh.faces.shape == (6736, 3) and mesh.visual.uv.shape == (3448, 2)
    assert f"map_Kd {t}_uv.png" in (out / f"{t}.mtl").read_text()
    ply = trimesh.load(out / f"{t}.ply", process=False)
    assert ply.vertices.shape == (3448, 3) and np.allclose(ply.vertices, mesh.vertices, atol=1e-4)
    assert ply.visual.vertex_colors[:, :3].std() > 5  # photo colours, not a flat colour
    # UV texture + 8-bit mask, frontal render, overlay (ORL is 92 x 112: drawn 3x larger)
    uv, mask = Image.open(out / f"{t}_uv.png"), Image.open(out / f"{t}_uv_mask.png")
    assert uv.mode == "RGB" and uv.size == (256, 256) and mask.mode == "L" and mask.size == (256, 256)
    m = np.asarray(mask)
    assert m.max() == 255 and 0.2 < (m > 0).mean() < 0.9
    front = np.asarray(Image.open(out / f"{t}_frontal.png"))
    assert front.shape == (306, 256, 3) and front.std() > 5
    ov = np.asarray(Image.open(out / "my_probe_overlay.png"))
    assert ov.shape == (336, 276, 3)
    colours = {tuple(c) for c in ov.reshape(-1, 3)}
    assert {(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 220, 0)} <= colours  # axes, landmarks, box
    # landmarks: .pts (1-based) and the named JSON agree with the record
    xy = np.array([[q["x"], q["y"]] for q in ok["landmarks"]])
    np.testing.assert_allclose(read_pts(out / f"{t}.pts"), xy, atol=2e-3)
    doc = json.loads((out / f"{t}_landmarks.json").read_text())
    assert [q["name"] for q in doc["points"]] == list(AFLW19_NAMES) == [q["name"] for q in ok["landmarks"]]
    # the record: image, face, box, pose
    assert ok["image"].endswith("my probe.png") and ok["face"] == 0 and len(ok["box"]) == 4
    assert set(ok["pose"]) == {"yaw", "pitch", "roll"} and all(isinstance(v, float) for v in ok["pose"].values())
    assert abs(ok["pose"]["yaw"]) < 45 and abs(ok["pose"]["roll"]) < 30  # a near-frontal, upright ORL face
    bad = res[1]
    assert bad["face"] is None and bad["pose"] is None and bad["files"] == [] and "zz_broken.png" in bad["message"]


def test_bad_image_is_one_line_and_exit_1(run_cli, tmp_path):
    p = tmp_path / "text.jpg"
    p.write_text("hello")
    r = run_cli("pipeline.reconstruct", p, "--out", tmp_path / "o")
    _one_error_line(r, p.name)
    assert r.returncode == 1
    r = run_cli("pipeline.reconstruct", tmp_path / "missing.png", "--out", tmp_path / "o")
    _one_error_line(r, "missing.png")


def test_out_is_a_file_is_a_usage_error(run_cli, tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    r = run_cli("pipeline.reconstruct", PROBE, "--out", f)
    _one_error_line(r, "--out")
    assert r.returncode == 2 and "not a folder" in r.stderr
    r = run_cli("pipeline.reconstruct", PROBE)
    assert r.returncode == 2 and "--out" in r.stderr
    r = run_cli("pipeline.reconstruct", "--version")
    assert r.returncode == 0 and r.stdout.startswith("godp-face ")


def test_only_landmarks_json_to_stdout(run_cli, tmp_path):
    out = tmp_path / "o"
    r = run_cli("pipeline.reconstruct", PROBE, "--out", out, "--pts", "--json", "-", "--landmarker", "dlib")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["orl_s01_3_0.pts", "orl_s01_3_0_landmarks.json"]
    rec = json.loads(r.stdout)[0]
    assert rec["status"] == "ok" and set(rec["pose"]) == {"yaw", "pitch", "roll"}  # the fit runs for the pose


def test_image_stems_are_safe_and_unique():
    from pipeline.reconstruct import image_stems

    paths = [Path("a/x y.png"), Path("b/x y.jpg"), Path("c/x_y.png"), Path("d/%%.png")]
    assert image_stems(paths) == ["x_y", "x_y-2", "x_y-3", "image"]


def test_landmarks_predict_pose_flag(run_cli, tmp_path):
    r = run_cli("landmarks.predict", PROBE, tmp_path / "nope.png", "--landmarker", "dlib", "--pose", "--json", "-")
    assert r.returncode == 0, r.stderr
    ok, bad = json.loads(r.stdout)
    assert set(ok["pose"]) == {"yaw", "pitch", "roll"} and bad["pose"] is None
    for key in ("image", "box", "landmarks", "visible", "scores", "status", "message"):  # the keys as before
        assert key in ok and key in bad
    r = run_cli("landmarks.predict", PROBE, "--landmarker", "dlib", "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["pose"] is None  # no fit without --pose


def test_identify_face_pose():
    from pipeline.identify import face_pose
    from pipeline.types import Detection, FaceResult, Fit3D
    from recon3d.camera import euler_to_rotation

    det = Detection((0.0, 0.0, 10.0, 10.0), 1.0)
    assert face_pose(FaceResult(det)) is None
    fit = Fit3D(np.zeros((3448, 3)), {"R": euler_to_rotation(20, -5, 3)}, np.zeros(63), 0.0)
    assert face_pose(FaceResult(det, fit=fit)) == {"yaw": 20.0, "pitch": -5.0, "roll": 3.0}


def test_overlay_pose_axes():
    from pipeline.overlay import AXIS_COLOURS, draw_faces, draw_pose_axes
    from recon3d.camera import euler_to_rotation

    img = np.zeros((100, 100, 3), np.uint8)
    box, pts = (20.0, 20.0, 80.0, 80.0), np.array([[50.0, 60.0]])
    plain = draw_faces(img, [box], [pts], radius=2)
    np.testing.assert_array_equal(draw_faces(img, [box], [pts], radius=2, rotations=[None]), plain)
    out = draw_faces(img, [box], [pts], radius=2, rotations=[np.eye(3)], axis_length=20)
    red, green, blue = AXIS_COLOURS
    assert tuple(out[50, 65]) == red  # x (the subject's left) points image-right from the box centre
    assert tuple(out[35, 50]) == green  # y points up
    assert tuple(out[50, 50]) == blue  # z points at the viewer: a dot at the origin
    # given origin; a yawed head (nose towards image-left) draws z to the left
    yawed = draw_pose_axes(img, euler_to_rotation(60, 0, 0), (50, 50), 20, thickness=1)
    assert tuple(yawed[50, 40]) == blue and tuple(yawed[50, 55]) == red  # z: 17 px left, x: 10 px right
    with pytest.raises(ValueError, match="rotations"):
        draw_faces(img, [box], [pts], rotations=[None, None])


def test_committed_examples_are_complete_and_small():
    """docs/examples/reconstruct: made by the CLI (its JSON record lists them), under 2 MB."""
    import trimesh

    folder = REPO / "docs" / "examples" / "reconstruct"
    (rec,) = json.loads((folder / "orl_s01_3.json").read_text())
    assert rec["status"] == "ok" and rec["image"] == "examples/probes/orl_s01_3.png"
    assert set(rec["pose"]) == {"yaw", "pitch", "roll"}
    names = {Path(f).name for f in rec["files"]}
    assert names | {"orl_s01_3.json", "README.md"} == {p.name for p in folder.iterdir()}
    assert all((REPO / f).is_file() for f in rec["files"])
    assert sum(p.stat().st_size for p in folder.iterdir()) < 2_000_000
    assert trimesh.load(folder / "orl_s01_3_0.obj", process=False).vertices.shape == (3448, 3)
