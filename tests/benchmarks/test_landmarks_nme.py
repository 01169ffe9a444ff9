"""benchmarks/landmarks_nme.py on a tiny landmark set made from the fixtures: the JSON the
independent checks read (summary + per-face predictions) and recomputable NME."""

import json
import shutil
import subprocess
import sys

import numpy as np
from conftest import FIXTURES, REPO, read_pts

from pipeline.types import ibug68_to_aflw19


def tiny_landmark_set(root):
    """Two fixture faces as a SPEC landmark set (annotations.jsonl + images/) in ``root``."""
    (root / "images").mkdir(parents=True)
    lines = []
    for name, ext, yaw in (("einstein", "jpg", 5.0), ("takeo", "png", -40.0)):
        shutil.copy(FIXTURES / f"{name}.{ext}", root / "images" / f"{name}.{ext}")
        p68 = read_pts(FIXTURES / f"{name}.pts")
        lines.append(
            {
                "image": f"images/{name}.{ext}",
                "box": [*p68.min(0).tolist(), *p68.max(0).tolist()],
                "landmarks": ibug68_to_aflw19(p68).tolist(),
                "visible": [1] * 19,
                "yaw": yaw,
            }
        )
    (root / "annotations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return lines


def test_landmarks_nme_json(tmp_path):
    lines = tiny_landmark_set(tmp_path)
    out = tmp_path / "r.json"
    r = subprocess.run(
        [
            sys.executable,
            "benchmarks/landmarks_nme.py",
            "--data",
            str(tmp_path),
            "--landmarker",
            "dlib",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "ced.png"),
            "--noise-levels",
            "0,0.1",
            "--noise-faces",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    res = json.loads(out.read_text())
    s = res["summary"]["landmarkers"]["dlib"]
    assert s["faces"] == 2 and s["failures"] == 0
    faces = res["faces"]
    assert {f["image"] for f in faces} == {x["image"] for x in lines}
    # recompute NME from the per-face predictions
    errs = []
    for f, gt in zip(faces, lines):
        x0, y0, x1, y1 = gt["box"]
        e = np.linalg.norm(np.array(f["landmarks"]) - np.array(gt["landmarks"]), axis=1).mean()
        errs.append(e / np.sqrt((x1 - x0) * (y1 - y0)) * 100)
    assert np.isclose(np.mean(errs), s["nme_vis"], atol=0.01)
    assert (tmp_path / "ced.png").stat().st_size > 1000
    assert "robustness" in res["summary"] and len(res["summary"]["robustness"]["levels"]) == 2


def test_godp_ablation_on_two_run_folders(tmp_path):
    """benchmarks/godp_ablation.py evaluates run folders (config.json + last.pt): an untrained plain
    network and the shipped GoDP weights; the trained one must be far better (the test can fail)."""
    import torch
    from safetensors.torch import load_file

    from landmarks.godp.network import GoDP, GodpConfig
    from landmarks.godp.weights import WEIGHTS_DIR, read_manifest

    data = tmp_path / "data"
    tiny_landmark_set(data)
    man = read_manifest()
    entry = man["files"][man["default"]]
    runs = []
    for name, variant, state in (
        ("untrained", "plain", None),
        ("shipped", "godp", load_file(str(WEIGHTS_DIR / man["default"]))),
    ):
        run = tmp_path / name
        run.mkdir()
        cfg = {**entry["config"], "variant": variant, "batch": 32}
        torch.manual_seed(0)
        model = GoDP(GodpConfig(width=cfg["width"], K=cfg["K"], variant=variant))
        if state is not None:
            model.load_state_dict(state, strict=False)
        torch.save({"model": model.state_dict(), "epoch": 0, "iter": 7}, run / "last.pt")
        (run / "config.json").write_text(json.dumps(cfg))
        runs.append(str(run))
    out = tmp_path / "abl.json"
    r = subprocess.run(
        [sys.executable, "benchmarks/godp_ablation.py", *runs, "--data", str(data), "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    res = json.loads(out.read_text())["runs"]
    untrained, shipped = res[runs[0]], res[runs[1]]
    assert untrained["faces"] == shipped["faces"] == 2
    assert shipped["all"] < 10 < untrained["all"]
    assert 0 <= shipped["mpb"] <= 100 and shipped["mpk"] > untrained["mpk"]
    bad = subprocess.run(
        [sys.executable, "benchmarks/godp_ablation.py", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert bad.returncode == 2 and "not a training run folder" in bad.stderr and "Traceback" not in bad.stderr
