"""pipeline.identify on the bundled examples (real dlib-resnet), its cache, flags and failure modes."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from conftest import REPO
from PIL import Image

from pipeline.index import faiss_available

EX = REPO / "examples"


def test_examples_rank1_and_cache_reuse(run_cli, tmp_path):
    out = tmp_path / "r.json"
    cache = tmp_path / "cache" / "g.npz"  # not beside examples/gallery: the repository stays clean
    beside = EX / "gallery" / ".godp-cache.npz"  # the demo's default cache may already be there
    before = beside.stat().st_mtime_ns if beside.exists() else None
    r = run_cli(
        "pipeline.identify",
        EX / "probes",
        "--gallery",
        EX / "gallery",
        "--json",
        out,
        "--no-progress",
        "--cache",
        cache,
        "-v",
    )
    assert r.returncode == 0, r.stderr
    assert "0 from the cache, 6 described" in r.stderr and cache.exists()
    res = json.loads(out.read_text())
    assert len(res) == 12 and all(x["status"] == "ok" for x in res)
    hits = [x["candidates"][0]["identity"] == x["probe"].split("/")[-1].rsplit("_", 1)[0] for x in res]
    assert sum(hits) >= 10  # dlib-resnet on ORL: 12/12 when this test was written
    scores = [c["score"] for c in res[0]["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5
    assert all(len(x["box"]) == 4 for x in res)
    # second run: every signature comes from the cache; JSON to stdout; other fusion and top-k
    r2 = run_cli(
        "pipeline.identify",
        EX / "probes" / "orl_s02_3.png",
        "--gallery",
        EX / "gallery",
        "--json",
        "-",
        "--no-progress",
        "--cache",
        cache,
        "--fusion",
        "mean",
        "--top-k",
        "2",
        "-v",
    )
    assert r2.returncode == 0, r2.stderr
    assert "6 from the cache, 0 described" in r2.stderr
    res2 = json.loads(r2.stdout)
    ref = next(x for x in res if x["probe"].endswith("orl_s02_3.png"))
    assert res2[0]["candidates"] == ref["candidates"][:2]  # one image per identity: mean == max
    assert (beside.stat().st_mtime_ns if beside.exists() else None) == before  # --cache wrote elsewhere only


def test_no_face_probe_bad_gallery_file_and_names(run_cli, tmp_path):
    g = tmp_path / "gallery"
    (g / "Mary Ann").mkdir(parents=True)
    shutil.copy(EX / "gallery" / "orl_s01.png", g / "Mary Ann" / "one.png")
    shutil.copy(EX / "gallery" / "orl_s02.png", g / "J. R. R.png")
    (g / "broken.jpg").write_text("not an image")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 40, np.uint8)).save(blank)
    out = tmp_path / "r.json"
    # every probe fails -> exit 1; --no-cache writes nothing beside the gallery
    r = run_cli("pipeline.identify", blank, "--gallery", g, "--json", out, "--no-progress", "--no-cache")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "broken.jpg" in r.stderr  # skipped with a warning
    assert not (g / ".godp-cache.npz").exists()
    res = json.loads(out.read_text())
    assert res[0]["status"] == "no_face" and res[0]["candidates"] == [] and res[0]["message"]
    # one probe fails, one works -> exit 0; default cache beside the gallery
    r = run_cli(
        "pipeline.identify", blank, EX / "probes" / "orl_s01_3.png", "--gallery", g, "--json", out, "--no-progress"
    )
    assert r.returncode == 0, r.stderr
    assert "broken.jpg" in r.stderr and f"error: {blank}" in r.stderr
    res = json.loads(out.read_text())
    assert [x["status"] for x in res] == ["no_face", "ok"]
    assert [c["identity"] for c in res[1]["candidates"]] == ["Mary Ann", "J. R. R"]
    assert (g / ".godp-cache.npz").exists()
    # the failure is cached too and still reported on the next run
    r = run_cli("pipeline.identify", EX / "probes" / "orl_s02_3.png", "--gallery", g, "--no-progress", "-v")
    assert r.returncode == 0 and "broken.jpg" in r.stderr and "0 described" in r.stderr
    assert "J. R. R" in r.stdout.splitlines()[1]


def test_empty_gallery_is_clear_error(run_cli, tmp_path):
    (tmp_path / "g").mkdir()
    r = run_cli("pipeline.identify", EX / "probes", "--gallery", tmp_path / "g")
    assert r.returncode == 1 and "holds no images" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_exit_2(run_cli, tmp_path):
    r = run_cli("pipeline.identify", EX / "probes", "--gallery", EX / "gallery", "--top-k", "0")
    assert r.returncode == 2 and "--top-k" in r.stderr
    r = run_cli(
        "pipeline.identify", EX / "probes", "--gallery", EX / "gallery", "--cache", tmp_path / "c", "--no-cache"
    )
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = run_cli("pipeline.identify", "--help")
    assert r.returncode == 0 and "exit codes" in r.stdout and "--save-debug" in r.stdout


def test_faiss_missing_is_one_line_exit_2(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "faiss.py").write_text("raise ImportError(\"No module named 'faiss'\", name='faiss')\n")
    env = {**os.environ, "PYTHONPATH": f"{shim}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.identify",
            str(EX / "probes"),
            "--gallery",
            str(EX / "gallery"),
            "--index",
            "faiss",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "faiss-cpu" in r.stderr


def test_faiss_index_same_results(run_cli, tmp_path):
    if not faiss_available():
        import pytest

        pytest.skip("faiss-cpu not installed (optional extra .[faiss])")
    cache = tmp_path / "c.npz"
    runs = [
        run_cli(
            "pipeline.identify",
            EX / "probes",
            "--gallery",
            EX / "gallery",
            "--json",
            "-",
            "--cache",
            cache,
            "--no-progress",
            "--index",
            kind,
        )
        for kind in ("numpy", "faiss")
    ]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    a, b = (json.loads(r.stdout) for r in runs)
    ids = [[[c["identity"] for c in x["candidates"]] for x in res] for res in (a, b)]
    assert ids[0] == ids[1]
    assert np.allclose(
        [[c["score"] for c in x["candidates"]] for x in a],
        [[c["score"] for c in x["candidates"]] for x in b],
        atol=2e-4,
    )


def test_save_debug(run_cli, tmp_path):
    dbg = tmp_path / "debug"
    r = run_cli(
        "pipeline.identify",
        EX / "probes" / "orl_s03_7.png",
        "--gallery",
        EX / "gallery",
        "--no-progress",
        "--cache",
        tmp_path / "c.npz",
        "--landmarker",
        "dlib",
        "--descriptor",
        "dlib-resnet",
        "--save-debug",
        dbg,
    )
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in dbg.iterdir())
    assert files == ["0000_orl_s03_7_overlay.png"], files  # a 2D descriptor: no 3D stage, no mesh / UV files
    im = np.asarray(Image.open(dbg / files[0]))
    assert im.shape == (112, 92, 3) and ((im[..., 1] == 255) & (im[..., 0] == 0)).any()  # the green box is drawn


def test_save_debug_default_pipeline_writes_3d_files(run_cli, tmp_path):
    dbg = tmp_path / "debug"
    r = run_cli(
        "pipeline.identify",
        EX / "probes" / "orl_s03_7.png",
        "--gallery",
        EX / "gallery",
        "--no-progress",
        "--cache",
        tmp_path / "c.npz",
        "--save-debug",
        dbg,
    )
    assert r.returncode == 0, r.stderr
    files = {p.name for p in dbg.iterdir()}
    for suffix in ("overlay.png", "face0_mesh.obj", "face0_uv.png", "face0_frontal.png"):
        assert any(f.endswith(suffix) for f in files), (suffix, files)
    front = np.asarray(Image.open(next(dbg.glob("*_frontal.png"))))
    assert front.shape == (306, 256, 3) and front.std() > 5  # a rendered face, not a flat image


def test_debug_writer_mesh_and_uv(tmp_path):
    """In-process: a face with a 3D fit and a UV texture gets mesh + UV files (export stubbed)."""
    import types as pytypes

    from pipeline.identify import DebugWriter
    from pipeline.pipeline import Pipeline
    from pipeline.types import Detection, FaceResult, Fit3D, Landmarks, UVTexture

    lm = Landmarks(np.full((19, 2), 30.0), np.r_[np.ones(10, bool), np.zeros(9, bool)], np.ones(19))
    fit = Fit3D(np.zeros((5, 3)), {}, np.zeros(3), 0.5)
    uv = UVTexture(np.full((16, 16, 3), 128, np.uint8), np.tile(np.linspace(0, 1, 16, dtype=np.float32), (16, 1)))
    face = FaceResult(Detection((10.0, 10.0, 50.0, 60.0), 1.0), lm, fit, uv)
    calls = []

    def export_mesh(path, vertices, texture=None):
        calls.append((path, vertices.shape, texture is uv))
        path.write_text("o mesh\n")
        return [path]

    w = DebugWriter(tmp_path / "dbg", Pipeline())
    w._export = pytypes.SimpleNamespace(export_mesh=export_mesh)
    out = w.write(3, tmp_path / "my probe.jpg", np.zeros((80, 70, 3), np.uint8), [face])
    names = sorted(p.name for p in out)
    assert names == ["0003_my_probe_face0_mesh.obj", "0003_my_probe_face0_uv.png", "0003_my_probe_overlay.png"]
    assert calls and calls[0][1] == (5, 3) and calls[0][2]
    uvimg = np.asarray(Image.open(tmp_path / "dbg" / "0003_my_probe_face0_uv.png"))
    assert uvimg.shape == (16, 16, 4) and uvimg[0, 0, 3] == 0 and uvimg[0, -1, 3] == 255
    ov = np.asarray(Image.open(tmp_path / "dbg" / "0003_my_probe_overlay.png"))
    assert (ov[30, 30] == [0, 255, 0]).all()  # a visible landmark (pipeline.overlay.VISIBLE_COLOUR)
    # without recon3d.export: the mesh is skipped, the rest is written
    w._export, w._export_error = None, "missing"
    out = w.write(4, tmp_path / "p.jpg", np.zeros((80, 70, 3), np.uint8), [face])
    assert sorted(p.name for p in out) == ["0004_p_face0_uv.png", "0004_p_overlay.png"]
