"""pipeline.identify on the bundled examples (real dlib-resnet), its cache, flags and failure modes."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO
from pipeline.index import faiss_available

EX = REPO / "examples"


def test_examples_rank1_and_cache_reuse(run_cli, tmp_path):
    out = tmp_path / "r.json"
    cache = tmp_path / "cache" / "g.npz"  # not beside examples/gallery: the repository stays clean
    r = run_cli("pipeline.identify", EX / "probes", "--gallery", EX / "gallery", "--json", out, "--no-progress",
                "--cache", cache, "-v")
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
    r2 = run_cli("pipeline.identify", EX / "probes" / "orl_s02_3.png", "--gallery", EX / "gallery", "--json", "-",
                 "--no-progress", "--cache", cache, "--fusion", "mean", "--top-k", "2", "-v")
    assert r2.returncode == 0, r2.stderr
    assert "6 from the cache, 0 described" in r2.stderr
    res2 = json.loads(r2.stdout)
    ref = next(x for x in res if x["probe"].endswith("orl_s02_3.png"))
    assert res2[0]["candidates"] == ref["candidates"][:2]  # one image per identity: mean == max
    assert not (EX / "gallery" / ".godp-cache.npz").exists()


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
    r = run_cli("pipeline.identify", blank, EX / "probes" / "orl_s01_3.png", "--gallery", g, "--json", out,
                "--no-progress")
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
    r = run_cli("pipeline.identify", EX / "probes", "--gallery", EX / "gallery", "--cache", tmp_path / "c",
                "--no-cache")
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = run_cli("pipeline.identify", "--help")
    assert r.returncode == 0 and "exit codes" in r.stdout and "--save-debug" in r.stdout


def test_faiss_missing_is_one_line_exit_2(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "faiss.py").write_text("raise ImportError(\"No module named 'faiss'\", name='faiss')\n")
    env = {**os.environ, "PYTHONPATH": f"{shim}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "pipeline.identify", str(EX / "probes"), "--gallery",
                        str(EX / "gallery"), "--index", "faiss"], capture_output=True, text=True, cwd=REPO, env=env,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "faiss-cpu" in r.stderr


def test_faiss_index_same_results(run_cli, tmp_path):
    if not faiss_available():
        import pytest

        pytest.skip("faiss-cpu not installed (optional extra .[faiss])")
    cache = tmp_path / "c.npz"
    runs = [run_cli("pipeline.identify", EX / "probes", "--gallery", EX / "gallery", "--json", "-", "--cache", cache,
                    "--no-progress", "--index", kind) for kind in ("numpy", "faiss")]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    a, b = (json.loads(r.stdout) for r in runs)
    assert [[c["identity"] for c in x["candidates"]] for x in a] == [[c["identity"] for c in x["candidates"]] for x in b]
    assert np.allclose([[c["score"] for c in x["candidates"]] for x in a],
                       [[c["score"] for c in x["candidates"]] for x in b], atol=2e-4)


def test_save_debug(run_cli, tmp_path):
    dbg = tmp_path / "debug"
    r = run_cli("pipeline.identify", EX / "probes" / "orl_s03_7.png", "--gallery", EX / "gallery", "--no-progress",
                "--cache", tmp_path / "c.npz", "--landmarker", "dlib", "--save-debug", dbg)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in dbg.iterdir())
    assert files == ["0000_orl_s03_7_overlay.png"], files  # no 3D stage yet: no mesh / UV files
    im = np.asarray(Image.open(dbg / files[0]))
    assert im.shape == (112, 92, 3) and ((im[..., 1] == 255) & (im[..., 0] == 0)).any()  # the green box is drawn
