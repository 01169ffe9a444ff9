"""pipeline.identify on the bundled examples, and its failure modes."""
import json
import shutil

import numpy as np
from PIL import Image

from conftest import REPO

EX = REPO / "examples"


def test_examples_rank1(run_cli, tmp_path):
    out = tmp_path / "r.json"
    r = run_cli("pipeline.identify", EX / "probes", "--gallery", EX / "gallery", "--json", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert len(res) == 12 and all(x["status"] == "ok" for x in res)
    hits = [x["candidates"][0]["identity"] == x["probe"].split("/")[-1].rsplit("_", 1)[0] for x in res]
    assert sum(hits) >= 10  # dlib-resnet on ORL: 12/12 when this test was written
    scores = [c["score"] for c in res[0]["candidates"]]
    assert scores == sorted(scores, reverse=True)


def test_no_face_probe_and_bad_gallery(run_cli, tmp_path):
    g = tmp_path / "gallery"
    g.mkdir()
    shutil.copy(EX / "gallery" / "orl_s01.png", g / "alice.png")
    (g / "broken.jpg").write_text("not an image")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 40, np.uint8)).save(blank)
    out = tmp_path / "r.json"
    r = run_cli("pipeline.identify", blank, "--gallery", g, "--json", out, "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "broken.jpg" in r.stderr  # skipped with a warning
    res = json.loads(out.read_text())
    assert res[0]["status"] == "no_face" and res[0]["candidates"] == []


def test_empty_gallery_is_clear_error(run_cli, tmp_path):
    (tmp_path / "g").mkdir()
    r = run_cli("pipeline.identify", EX / "probes", "--gallery", tmp_path / "g")
    assert r.returncode == 1 and "holds no images" in r.stderr and "Traceback" not in r.stderr
