"""pipeline.verify (1:1) on the bundled examples and identify --threshold (open set); --version.

The examples (examples/README.md): gallery/orl_sNN.png and probes/orl_sNN_K.png are photos of the
same ORL subject NN, so orl_s01_3 vs gallery orl_s01 is a genuine pair and orl_s01_3 vs orl_s02 an
impostor pair. The descriptor is dlib-resnet-torch (no 3D fit: fast); the calibrated default
(far1) is checked against whatever descriptors/data/MANIFEST.json ships.
(tests/pipeline/test_verify.py is the lm-verify refiner's test, hence this file's name.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from descriptors.thresholds import read_thresholds
from pipeline.types import Signature
from pipeline.verify import decide, similarity

EX = REPO / "examples"
PROBE = EX / "probes" / "orl_s01_3.png"
SAME = EX / "gallery" / "orl_s01.png"
OTHER = EX / "gallery" / "orl_s02.png"
DESC = ("--descriptor", "dlib-resnet-torch")
KEYS = {"a", "b", "status", "message", "descriptor", "score", "decision", "operating_point", "box_a", "box_b"}


def verify(run_cli, tmp_path, a, b, *args):
    out = tmp_path / "v.json"
    r = run_cli("pipeline.verify", a, b, *DESC, "--json", out, *args)
    return r, (json.loads(out.read_text()) if out.exists() else None)


def test_genuine_and_impostor_pairs(run_cli, tmp_path):
    r, gen = verify(run_cli, tmp_path, PROBE, SAME, "--threshold", "-1")
    assert r.returncode == 0, r.stderr
    assert set(gen) == KEYS and gen["status"] == "ok" and gen["message"] == ""
    assert gen["a"] == str(PROBE) and gen["b"] == str(SAME) and gen["descriptor"] == "dlib-resnet-torch"
    assert gen["operating_point"] == {"label": "manual", "value": -1.0} and gen["decision"] == "same"
    assert len(gen["box_a"]) == 4 and len(gen["box_b"]) == 4
    r, imp = verify(run_cli, tmp_path, PROBE, OTHER, "--threshold", "-1")
    assert r.returncode == 0, r.stderr
    assert -1.0 <= imp["score"] < gen["score"] <= 1.0
    # a threshold between the two scores separates them; the decision is score >= threshold
    mid = f"{(gen['score'] + imp['score']) / 2:.6f}"
    r, g2 = verify(run_cli, tmp_path, PROBE, SAME, "--threshold", mid)
    assert r.returncode == 0 and g2["decision"] == "same" and g2["operating_point"]["value"] == float(mid)
    r, i2 = verify(run_cli, tmp_path, PROBE, OTHER, "--threshold", mid)
    assert r.returncode == 0 and i2["decision"] == "different"  # "different" is a result, not a failure
    assert g2["score"] == gen["score"] and i2["score"] == imp["score"]
    # the table: one header line and one result line on stdout
    r = run_cli("pipeline.verify", PROBE, OTHER, *DESC, "--threshold", mid)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 2 and lines[1].endswith("different") and "(manual)" in lines[1]


def test_default_operating_point_is_the_calibrated_far1(run_cli, tmp_path):
    r, res = verify(run_cli, tmp_path, PROBE, SAME)
    if "dlib-resnet-torch" in read_thresholds():
        assert r.returncode == 0 and res["operating_point"]["label"] == "far1", r.stderr
    else:  # not calibrated yet: a configuration error that says how to calibrate, before any work
        assert r.returncode == 2 and res is None
        assert "python -m training.calibrate --descriptor dlib-resnet-torch" in r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_bad_inputs_are_one_line_errors(run_cli, tmp_path):
    r, res = verify(run_cli, tmp_path, tmp_path / "nope.png", SAME, "--threshold", "0.5")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.png'}: no such file"]
    assert res["status"] == "error" and res["score"] is None and res["decision"] is None
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 40, np.uint8)).save(blank)
    r, res = verify(run_cli, tmp_path, PROBE, blank, "--threshold", "0.5")
    assert r.returncode == 1 and res["status"] == "no_face" and str(blank) in res["message"]
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errs == [f"error: {res['message']}"] and "Traceback" not in r.stderr
    for bad in ("far5", "1.5", "x"):
        r = run_cli("pipeline.verify", PROBE, SAME, "--threshold", bad)
        assert r.returncode == 2 and "--threshold" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("pipeline.verify", PROBE)
    assert r.returncode == 2 and "usage" in r.stderr


def test_version_and_help(run_cli):
    from importlib.metadata import version

    for mod in ("pipeline.verify", "pipeline.identify", "landmarks.predict"):
        r = run_cli(mod, "--version")
        assert r.returncode == 0 and r.stdout.strip() == f"godp-face {version('godp-face')}", (mod, r.stderr)
    r = run_cli("pipeline.verify", "--help")
    assert r.returncode == 0 and "exit codes" in r.stdout and "far0.1" in r.stdout


def test_identify_open_set(run_cli, tmp_path):
    cache = tmp_path / "g.npz"
    probes = [EX / "probes" / "orl_s01_3.png", EX / "probes" / "orl_s02_7.png"]
    base = ["--gallery", EX / "gallery", "--cache", cache, "--no-progress", *DESC]
    closed = tmp_path / "closed.json"
    r = run_cli("pipeline.identify", *probes, *base, "--json", closed)
    assert r.returncode == 0, r.stderr
    ref = json.loads(closed.read_text())
    assert all(set(x) == {"probe", "status", "message", "candidates", "box", "pose"} for x in ref)  # + pose
    for thr, decision in (("0.999", "unknown"), ("-1", "match")):
        out = tmp_path / f"open{thr}.json"
        r = run_cli("pipeline.identify", *probes, *base, "--json", out, "--threshold", thr)
        assert r.returncode == 0, r.stderr
        res = json.loads(out.read_text())
        assert [x["candidates"] for x in res] == [x["candidates"] for x in ref]  # the ranking is unchanged
        for x, y in zip(res, ref):
            assert {k: x[k] for k in y} == y  # every existing key kept
            assert x["decision"] == decision and x["operating_point"] == {"label": "manual", "value": float(thr)}
            assert x["identity"] == ("unknown" if decision == "unknown" else y["candidates"][0]["identity"])
    r = run_cli("pipeline.identify", *probes, *base, "--threshold", "0.999")
    rows = r.stdout.strip().splitlines()
    assert r.returncode == 0 and "0.9990 (manual" in rows[0] and "identity" in rows[1]
    assert all(row.split()[2] == "unknown" for row in rows[2:]) and len(rows) == 4
    r = run_cli("pipeline.identify", *probes, *base, "--threshold", "far9")
    assert r.returncode == 2 and "--threshold" in r.stderr


def test_similarity_plain_and_masked():
    a = Signature(np.array([1.0, 0.0, 1.0, 0.0], np.float32))
    b = Signature(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
    assert similarity(a, b) == pytest.approx(0.5) and similarity(a, a) == pytest.approx(1.0)
    am = Signature(a.vector, np.array([1.0, 1.0], np.float32))
    bm = Signature(b.vector, np.array([1.0, 0.0], np.float32))  # region 1 not seen in b
    assert similarity(am, bm) == pytest.approx(1.0)  # compared on region 0 only
    assert similarity(am, b) == pytest.approx(0.5)  # one side unmasked: plain cosine
    with pytest.raises(ValueError, match="different lengths"):
        similarity(a, Signature(np.ones(3, np.float32)))
    assert decide(0.5, 0.5) == "same" and decide(0.4999, 0.5) == "different"
