"""Operating points: threshold_at_far on synthetic scores, operating_point's errors, and a round trip
of the thresholds section through a temporary copy of the descriptor manifest (the shipped
descriptors/data/MANIFEST.json is never written here)."""

from __future__ import annotations

import doctest
import json
import shutil

import numpy as np
import pytest

import descriptors.thresholds as th
import descriptors.verification as verification
from descriptors.thresholds import operating_point, read_thresholds, threshold_record, write_thresholds
from descriptors.verification import threshold_at_far
from pipeline import manifest
from pipeline.errors import ConfigError


@pytest.fixture
def models(tmp_path):
    """A temporary copy of the descriptor manifest folder (the manifest only: no loader reads here)."""
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(th.DATA_DIR / manifest.MANIFEST_NAME, d / manifest.MANIFEST_NAME)
    return d


@pytest.fixture(autouse=True)
def shipped_manifest_untouched():
    path = th.DATA_DIR / manifest.MANIFEST_NAME
    before = path.read_bytes()
    yield
    assert path.read_bytes() == before, "a test changed descriptors/data/MANIFEST.json"


def test_doctests():
    for mod in (th, verification):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, mod.__name__


@pytest.mark.parametrize("far", [0.0, 0.001, 0.01, 0.1, 0.5])
def test_threshold_at_far_is_the_smallest_threshold_meeting_the_far(far):
    rng = np.random.default_rng(3)
    imp = rng.normal(0.2, 0.1, 5000)
    t = threshold_at_far(imp, far)
    assert (imp >= t).mean() <= far
    assert (imp >= np.nextafter(t, -np.inf)).mean() > far  # any smaller threshold accepts too many


def test_threshold_at_far_with_ties_and_the_named_points():
    imp = np.r_[np.full(5, 0.9), np.linspace(0.0, 0.5, 995)]  # 5 tied impostors at the top
    t1 = threshold_at_far(imp, 0.01)  # 10 may be accepted: the 5 tied ones and 5 more
    assert (imp >= t1).sum() == 10
    t01 = threshold_at_far(imp, 0.001)  # 1 may be accepted, but the top 5 are tied: none is
    assert (imp >= t01).sum() == 0 and 0.9 < t01 < 0.9 + 1e-9
    assert th.NAMED_FARS == {"far1": 0.01, "far0.1": 0.001}


def test_operating_point_numbers_and_bad_specs(models):
    assert operating_point("lbp", "0.35", folder=models) == (0.35, "manual")
    assert operating_point("lbp", "-1", folder=models) == (-1.0, "manual")
    for bad in ("far5", "high", ""):
        with pytest.raises(ConfigError, match="far1 or far0.1"):
            operating_point("lbp", bad, folder=models)
    for bad in ("1.5", "-2", "nan", "inf"):
        with pytest.raises(ConfigError, match="between -1 and 1"):
            operating_point("lbp", bad, folder=models)


def test_missing_calibration_says_how_to_calibrate(models):
    assert read_thresholds(models) == json.loads((models / "MANIFEST.json").read_text()).get("thresholds", {})
    with pytest.raises(ConfigError) as e:
        operating_point("never-calibrated", "far1", folder=models)
    msg = str(e.value)
    assert "python -m training.calibrate --descriptor never-calibrated" in msg and "pass a number" in msg
    assert "\n" not in msg and e.value.exit_code == 2


def test_round_trip_through_a_manifest_copy(models):
    old = json.loads((models / "MANIFEST.json").read_text())
    rec = threshold_record(
        {"far1": 0.61, "far0.1": 0.72},
        data="toy",
        command="python -m training.calibrate --descriptor toy",
        genuine=12,
        impostor=3400,
        cache_token="w:abc",
    )
    path = write_thresholds({"toy": rec}, models)
    assert path == models / "MANIFEST.json"
    new = json.loads(path.read_text())
    assert new["thresholds"]["toy"] == {
        "far1": 0.61,
        "far0.1": 0.72,
        "data": "toy",
        "command": "python -m training.calibrate --descriptor toy",
        "pairs": {"genuine": 12, "impostor": 3400},
        "cache_token": "w:abc",
    }
    rest = {k: v for k, v in old.items() if k != "thresholds"}
    assert {k: v for k, v in new.items() if k != "thresholds"} == rest  # the rest is kept as it was
    assert {k: v for k, v in new["thresholds"].items() if k != "toy"} == old.get("thresholds", {})
    assert path.read_bytes() == manifest.dumps(new)  # the manifest byte layout
    # the manifest machinery accepts the section and does not take it for a model-file record
    manifest.check_manifest(new)
    assert [n for n, _ in manifest.records(new)] == [n for n, _ in manifest.records(old)]
    assert manifest.entry(models, "dfd_v1.npz")["sha256"] == old["files"]["dfd_v1.npz"]["sha256"]
    assert operating_point("toy", "far1", folder=models) == (0.61, "far1")
    assert operating_point("toy", "far0.1", cache_token="w:abc", folder=models) == (0.72, "far0.1")
    # a second descriptor is merged in; recalibrating one replaces only its entry
    write_thresholds({"other": {**rec, "far1": 0.4}}, models)
    write_thresholds({"toy": {**rec, "far1": 0.65}}, models)
    assert operating_point("toy", "far1", folder=models)[0] == 0.65
    assert operating_point("other", "far1", folder=models)[0] == 0.4
    assert no_tmp_files(models)


def no_tmp_files(folder):
    return sorted(p.name for p in folder.iterdir()) == ["MANIFEST.json"]


def test_stale_or_malformed_calibrations_are_refused(models):
    rec = threshold_record({"far1": 0.5, "far0.1": 0.6}, data="d", command="c", genuine=1, impostor=1, cache_token="a")
    write_thresholds({"toy": rec, "broken": {**rec, "far1": "high"}, "untokened": {**rec, "cache_token": None}}, models)
    with pytest.raises(ConfigError, match="calibrated for other weights"):
        operating_point("toy", "far1", cache_token="b", folder=models)
    assert operating_point("toy", "far1", cache_token=None, folder=models) == (0.5, "far1")
    assert operating_point("untokened", "far1", cache_token="b", folder=models) == (0.5, "far1")
    with pytest.raises(ConfigError, match="no valid 'far1'"):
        operating_point("broken", "far1", folder=models)
    assert operating_point("broken", "0.3", folder=models) == (0.3, "manual")  # a number needs no calibration
    man = json.loads((models / "MANIFEST.json").read_text())
    man["thresholds"] = [1, 2]
    (models / "MANIFEST.json").write_text(json.dumps(man))
    with pytest.raises(ConfigError, match="not an object"):
        operating_point("toy", "far1", folder=models)


def test_threshold_record_checks_its_values():
    with pytest.raises(ValueError, match="lack"):
        threshold_record({"far1": 0.5}, data="d", command="c", genuine=1, impostor=1)
    with pytest.raises(ValueError, match="non-finite"):
        threshold_record({"far1": 0.5, "far0.1": float("nan")}, data="d", command="c", genuine=1, impostor=1)
