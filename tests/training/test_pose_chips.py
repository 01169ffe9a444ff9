"""training/pose_chips.py: chip files round-trip, merge (a path in several files: the last wins; frontal
chips kept only when every row has them), and evaluation subjects are refused."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ConfigError


def _row(path: str, value: int, frontal: bool) -> dict:
    r = {
        "chip": np.full((150, 150, 3), value, np.uint8),
        "subject": path.split("/")[1],
        "view": "frontal",
        "path": path,
        "points": np.zeros((19, 2), np.float32),
        "confidence": 0.5,
        "visible": np.ones(19, bool),
        "yaw_subspace": 1,
    }
    if frontal:
        r.update(frontal_chip=np.full((150, 150, 3), value + 1, np.uint8), frontal_ok=True)
    return r


def test_merge_dedupes_by_path_and_keeps_frontal_only_when_complete(tmp_path):
    from training.pose_chips import _load, _save, merge

    a, b, out = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "m.npz"
    _save(a, [_row("images/001/frontal/01.jpg", 10, False), _row("images/002/frontal/01.jpg", 20, False)])
    _save(b, [_row("images/002/frontal/01.jpg", 30, True)])
    assert merge([a, b], out) == 2
    rows = {r["path"]: r for r in _load(out)}
    assert int(rows["images/002/frontal/01.jpg"]["chip"][0, 0, 0]) == 30  # the later file wins
    assert "frontal_chip" not in rows["images/001/frontal/01.jpg"]
    assert merge([b], out) == 1 and _load(out)[0]["frontal_ok"] is True
    assert int(_load(out)[0]["frontal_chip"][0, 0, 0]) == 31


def test_merge_of_a_missing_file_is_a_config_error(tmp_path):
    from training.pose_chips import merge

    with pytest.raises(ConfigError):
        merge([tmp_path / "nope.npz"], tmp_path / "m.npz")


def test_evaluation_subjects_are_refused(tmp_path):
    cfp = tmp_path / "cfp"
    (cfp / "images/130/frontal").mkdir(parents=True)
    (cfp / "manifest.csv").write_text("path,subject,yaw,pitch\nimages/130/frontal/01.jpg,130,0,0\n")
    from training.pose_chips import main

    with pytest.raises(ConfigError, match="evaluation subjects"):
        main(["--data", str(cfp), "--subjects", "126-130", "--out", str(tmp_path / "o.npz")])
