"""landmarks.predict: output format and one clear line + non-zero exit for bad inputs."""

import json

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image


def _check_clean_failure(r, name):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and name in lines[0], r.stderr


def test_dlib_json_output(run_cli, tmp_path):
    out = tmp_path / "o.json"
    r = run_cli("landmarks.predict", FIXTURES / "einstein.jpg", "--landmarker", "dlib", "--json", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert len(res) == 1 and res[0]["status"] == "ok"
    assert np.array(res[0]["landmarks"]).shape == (19, 2) and len(res[0]["visible"]) == 19
    assert len(res[0]["box"]) == 4


def test_given_box_is_used(run_cli):
    r = run_cli(
        "landmarks.predict",
        FIXTURES / "takeo.png",
        "--landmarker",
        "dlib",
        "--box",
        "20",
        "60",
        "130",
        "190",
        "--json",
        "-",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["box"] == [20, 60, 130, 190]


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "tiny", "noface"])
def test_bad_inputs(run_cli, tmp_path, case):
    p = tmp_path / f"{case}.jpg"
    if case == "text":
        p.write_text("hello")
    elif case == "truncated":
        data = (FIXTURES / "einstein.jpg").read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif case == "tiny":
        Image.new("RGB", (1, 1), (128, 128, 128)).save(p)
    elif case == "noface":
        Image.fromarray(np.full((200, 240, 3), 90, np.uint8)).save(p)
    r = run_cli("landmarks.predict", p, "--landmarker", "dlib")
    _check_clean_failure(r, p.name)


def test_partial_failure_still_writes_json(run_cli, tmp_path):
    out = tmp_path / "o.json"
    r = run_cli(
        "landmarks.predict", FIXTURES / "einstein.jpg", tmp_path / "nope.jpg", "--landmarker", "dlib", "--json", out
    )
    assert r.returncode == 0
    res = json.loads(out.read_text())
    assert [x["status"] for x in res] == ["ok", "error"]


def test_unknown_stage_is_usage_error(run_cli):
    r = run_cli("landmarks.predict", FIXTURES / "einstein.jpg", "--landmarker", "nope")
    assert r.returncode == 2 and "unknown landmarker" in r.stderr and "Traceback" not in r.stderr
