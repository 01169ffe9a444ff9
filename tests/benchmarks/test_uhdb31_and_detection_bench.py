"""benchmarks/uhdb31_rank1.py on a two-subject manifest made from the fixtures (the JSON fields
the report relies on, recomputable rank-1), and the detection benchmark's matching rule."""

import csv
import json
import subprocess
import sys

from conftest import FIXTURES, REPO
from PIL import Image


def test_uhdb31_rank1_json_on_a_tiny_manifest(tmp_path):
    rows = []
    for subj, name in (("001", "einstein.jpg"), ("002", "takeo.png")):
        img = Image.open(FIXTURES / name).convert("RGB")
        (tmp_path / subj).mkdir()
        img.save(tmp_path / subj / "gallery.png")
        img.transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / subj / "probe.png")
        rows += [
            {"path": f"{subj}/gallery.png", "subject": subj, "yaw": 0, "pitch": 0, "role": "gallery"},
            {"path": f"{subj}/probe.png", "subject": subj, "yaw": 30, "pitch": 0, "role": "probe"},
        ]
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "r.json"
    r = subprocess.run(
        [
            sys.executable,
            "benchmarks/uhdb31_rank1.py",
            "--data",
            str(tmp_path),
            "--landmarker",
            "dlib",
            "--descriptor",
            "lbp",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    res = json.loads(out.read_text())
    s = res["summary"]
    assert s["gallery"] == 2 and s["probes"] == 2 and not s["synthetic_uhdb31_protocol"]
    assert s["gallery_subjects"] == ["001", "002"]  # what a paired comparison of two runs checks
    v = s["variants"]["dlib+lbp+masked"]
    assert v["center8"] is None and v["all20"] is None  # only one pose here
    probes = [p for p in res["probes"] if p["variant"] == "dlib+lbp+masked"]
    hits = [p["hit"] for p in probes if p["status"] == "ok"]
    assert v["all"] == 100.0 * sum(hits) / 2  # recomputable from the per-probe records
    assert v["detection"]["30,0"] == 100.0 * sum(p["status"] == "ok" for p in probes) / 2
    assert "rank-1" in r.stdout


def test_detection_match_rule():
    from pipeline.detection.boxes import box_matches as matches  # the rule detection_bench scores with

    gt = (100.0, 100.0, 200.0, 220.0)
    assert matches((110.0, 110.0, 190.0, 200.0), gt)
    assert not matches((300.0, 300.0, 400.0, 400.0), gt)  # centre outside
    assert not matches((145.0, 155.0, 155.0, 165.0), gt)  # far too small
    assert not matches((0.0, 0.0, 330.0, 330.0), gt)  # far too large


def test_detector_names_with_a_verifying_refiner_build_the_front_end():
    from benchmarks.detection_bench import FrontEnd, build_detectors, main

    dets = build_detectors(["dpm+mmod+lm-verify", "dpm+mmod", "dpm"], 40)
    assert isinstance(dets["dpm+mmod+lm-verify"], FrontEnd) and dets["dpm+mmod+lm-verify"].top_only
    assert dets["dpm+mmod+lm-verify"].pipe.config.detector == "dpm+mmod"
    assert not isinstance(dets["dpm+mmod"], FrontEnd) and dets["dpm+mmod"].name == "dpm+mmod"
    assert main(["--detectors", "no-such-detector", "--parts", "negatives"]) == 2


def test_uhdb31_detection_at_the_annotated_box():
    """'detection' counts a returned face, 'detection_at_box' only a face at the annotated box; a probe
    with no face is a miss in both."""
    from benchmarks.uhdb31_rank1 import pose_table, summarise

    rows = [{"role": "probe", "yaw": 90, "pitch": -30}] * 4 + [{"role": "gallery", "yaw": 0, "pitch": 0}]
    status = ["ok", "ok", "ok", "no_face", "ok"]
    errors = [{"box_hit": True}, {"box_hit": False}, {"box_hit": True}, {}, {}]
    hits = [(True, "a", 0.9), (False, "b", 0.5), (False, "c", 0.4), None, None]
    s = summarise(pose_table(rows, hits, status, errors))
    assert s["detection"]["90,-30"] == 75.0
    assert s["detection_at_box"]["90,-30"] == 50.0
    assert s["rank1"]["90,-30"] == 25.0
    s = summarise(pose_table(rows, hits, status, [{}] * 5))  # a set without boxes: no strict figure
    assert s["detection_at_box"] == {}


def test_front_end_floor_sweep_matches_the_pipeline():
    """faces_by_floor(None) is what the pipeline reports; no floor keeps at least the best candidate."""
    from benchmarks.detection_bench import FrontEnd
    from pipeline.imageio import load_image

    img = load_image(FIXTURES / "einstein.jpg")
    fe = FrontEnd("dpm+mmod", "lm-verify", 40)
    trained, none, low = fe.faces_by_floor(img, [None, -1.0, 0.3])
    assert [d.box for d in trained] == [d.box for d in fe.detect(img)]
    assert trained and none and low  # a clear frontal face passes every floor
    assert none[0].score >= max(d.score for d in trained)
