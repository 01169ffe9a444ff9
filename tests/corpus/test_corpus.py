"""Every bad-input corpus item through the CLI and the Python API: no traceback, a documented
status, one line naming the file for each failure."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from make_corpus import make


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return out, make(out)


def test_corpus_is_large_enough(corpus):
    _, items = corpus
    assert len(items) >= 50


def test_cli_landmarks_predict(corpus):
    out, items = corpus
    names = sorted(items)
    js = out.parent / "predict.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "landmarks.predict",
            *[os.fsdecode(out / n) for n in names],
            "--landmarker",
            "dlib",
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        errors="replace",
    )
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(js.read_text())
    by = {}
    for rec in res:
        by.setdefault(os.path.basename(rec["image"]), []).append(rec)
    err_lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    failures = 0
    for n in names:
        recs = by.get(n)
        assert recs, f"no result for {n!r}"
        status = recs[0]["status"]
        assert status in items[n]["outcomes"], (
            f"{n!r}: {status} ({recs[0]['message']}), expected {items[n]['outcomes']}"
        )
        if items[n]["face"]:
            assert status == "ok", n
        if status != "ok":
            failures += 1
            assert recs[0]["message"], n
    assert len(err_lines) == failures
    assert all(len(ln) < 400 for ln in err_lines)


def test_api_load_and_run(corpus):
    from pipeline.errors import FaceError
    from pipeline.imageio import load_image
    from pipeline.pipeline import Pipeline

    out, items = corpus
    pipe = Pipeline(landmarker="dlib")
    for n, exp in items.items():
        try:
            pipe.run(load_image(out / n), until="landmarks")
            status = "ok"
        except FaceError as e:
            status = "no_face" if type(e).__name__ == "NoFaceFoundError" else "error"
            assert str(e)
        assert status in exp["outcomes"], f"{n!r}: {status}"


def test_cli_identify_every_item_as_a_probe_cache_intact(corpus, tmp_path):
    """Every corpus item as a probe of ``pipeline.identify`` (the Dlib landmarker keeps it quick):
    no traceback, exit 0 (some probes succeed), one JSON record per probe with a documented
    status, one ``error:`` line per failed probe, and the gallery cache byte-identical afterwards."""
    import hashlib
    import shutil

    out, items = corpus
    gal = tmp_path / "gallery"
    shutil.copytree(REPO / "examples" / "gallery", gal)
    cache = tmp_path / "cache.npz"
    base = [
        sys.executable,
        "-m",
        "pipeline.identify",
        "--gallery",
        str(gal),
        "--cache",
        str(cache),
        "--landmarker",
        "dlib",
        "--no-progress",
    ]
    r0 = subprocess.run(
        base + [str(REPO / "examples" / "probes" / "orl_s01_3.png")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert r0.returncode == 0, r0.stderr[-2000:]
    before = hashlib.sha256(cache.read_bytes()).hexdigest()
    names = sorted(items)
    js = tmp_path / "id.json"
    r = subprocess.run(
        base + [os.fsdecode(out / n) for n in names] + ["--json", str(js)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
        errors="replace",
    )
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(js.read_text())
    by = {}
    for rec in res:
        by.setdefault(os.path.basename(rec["probe"]), []).append(rec)
    failed = 0
    for n in names:
        assert by.get(n), f"no record for {n!r}"
        st = by[n][0]["status"]
        assert st in items[n]["outcomes"], f"{n!r}: {st} ({by[n][0]['message']}), expected {items[n]['outcomes']}"
        failed += st != "ok"
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error:")]) == failed
    assert hashlib.sha256(cache.read_bytes()).hexdigest() == before
