"""training.calibrate on a synthetic chips file (a fake chip descriptor with known scores, and the real
dlib-resnet-torch on a few chips), on a tiny CFP-like folder made from the bundled example photos
(the pipeline source), and on ../shared/data/cfp_dev when present (2 images of 3 subjects). The
thresholds are written into temporary copies of the descriptor manifest only."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from conftest import REPO

import descriptors.thresholds as th
from descriptors.thresholds import operating_point
from descriptors.verification import threshold_at_far
from pipeline import manifest
from pipeline.registry import DESCRIPTORS
from training import calibrate


class FakeChipDescriptor:
    """Embeds a chip as its unit mean colour: chips of one subject share a colour."""

    name = "fake-chips"
    needs_3d = False
    needs_landmarks = True
    cache_token = "fake:v1"

    def embed_chips(self, chips):
        v = chips.reshape(len(chips), -1, 3).mean(axis=1).astype(np.float32) - 100.0
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def describe(self, image, face):  # pragma: no cover - the chips path never calls it
        raise AssertionError("not used")


class NoChipDescriptor:
    name = "no-chips"
    needs_3d = False
    needs_landmarks = True

    def describe(self, image, face):  # pragma: no cover
        raise AssertionError("not used")


@pytest.fixture
def fake_descriptors(monkeypatch):
    for name, cls in (("fake-chips", FakeChipDescriptor), ("no-chips", NoChipDescriptor)):
        monkeypatch.setitem(DESCRIPTORS._entries, name, cls)
        monkeypatch.setitem(DESCRIPTORS._help, name, "test only")


@pytest.fixture
def models(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(th.DATA_DIR / manifest.MANIFEST_NAME, d / manifest.MANIFEST_NAME)
    return d


@pytest.fixture(autouse=True)
def shipped_manifest_untouched():
    path = th.DATA_DIR / manifest.MANIFEST_NAME
    before = path.read_bytes()
    yield
    assert path.read_bytes() == before, "a test changed descriptors/data/MANIFEST.json"


def make_chips(path, subjects=("001", "002", "003", "004"), frontal=3, profile=2, seed=0):
    """Synthetic chips: one base colour per subject plus noise; ``frontal`` + ``profile`` per subject."""
    rng = np.random.default_rng(seed)
    chips, subj, view, paths = [], [], [], []
    for s in subjects:
        base = rng.uniform(0, 255, 3)
        for v, n in (("frontal", frontal), ("profile", profile)):
            for k in range(n):
                c = np.clip(base + rng.normal(0, 12, (150, 150, 3)) + rng.normal(0, 8, 3), 0, 255)
                chips.append(c.astype(np.uint8))
                subj.append(s)
                view.append(v)
                paths.append(f"images/{s}/{v}/{k + 1:02d}.jpg")
    np.savez(path, chips=np.stack(chips), subject=np.array(subj), view=np.array(view), path=np.array(paths))
    return path


def thresholds(models):
    return json.loads((models / "MANIFEST.json").read_text())["thresholds"]


def test_chips_with_a_fake_descriptor(tmp_path, models, fake_descriptors, capsys):
    chips = make_chips(tmp_path / "chips.npz")
    argv = ["--descriptor", "fake-chips", "--chips", str(chips), "--models", str(models), "--subjects", "001-010"]
    assert calibrate.main(argv) == 0
    out = capsys.readouterr().out
    assert "fake-chips" in out and "written to" in out
    rec = thresholds(models)["fake-chips"]
    # 4 subjects x (3 frontal + 2 profile) = 20 chips; every pair but the 4 x C(4..) profile-profile ones
    assert rec["pairs"] == {"genuine": 4 * (10 - 1), "impostor": 190 - 28 - 4 * (10 - 1)}
    assert rec["cache_token"] == "fake:v1" and rec["command"] == "python -m training.calibrate " + " ".join(argv)
    assert "CFP training subjects 001-010" in rec["data"] and "chips" in rec["data"]
    # the same thresholds as computed by hand from the same scores
    z = np.load(chips, allow_pickle=False)
    v = FakeChipDescriptor().embed_chips(z["chips"])
    g, i = calibrate.pair_scores(v, None, z["subject"], z["view"])
    assert len(g) == rec["pairs"]["genuine"] and len(i) == rec["pairs"]["impostor"]
    assert rec["far1"] == threshold_at_far(i, 0.01) and rec["far0.1"] == threshold_at_far(i, 0.001)
    assert g.mean() > i.mean()  # the subjects' colours separate them
    assert operating_point("fake-chips", "far1", cache_token="fake:v1", folder=models) == (rec["far1"], "far1")
    # --per-subject 1: one frontal and one profile chip per subject
    assert calibrate.main([*argv, "--per-subject", "1"]) == 0
    assert thresholds(models)["fake-chips"]["pairs"] == {"genuine": 4, "impostor": 28 - 6 - 4}


def test_refuses_evaluation_subjects(tmp_path, models, fake_descriptors, capsys):
    chips = make_chips(tmp_path / "chips.npz")
    before = (models / "MANIFEST.json").read_bytes()
    for rng in ("120-130", "126-250", "200-210"):
        rc = calibrate.main(
            ["--descriptor", "fake-chips", "--chips", str(chips), "--models", str(models), "--subjects", rng]
        )
        err = capsys.readouterr().err
        assert rc == 2 and "not CFP training subjects" in err and "Traceback" not in err
    # a chips file holding an evaluation subject is refused whatever --subjects says
    bad = make_chips(tmp_path / "bad.npz", subjects=("001", "002", "126"))
    rc = calibrate.main(["--descriptor", "fake-chips", "--chips", str(bad), "--models", str(models)])
    err = capsys.readouterr().err
    assert rc == 2 and "126" in err and err.count("\n") == 1
    assert (models / "MANIFEST.json").read_bytes() == before


def test_usage_errors_are_one_line(tmp_path, models, fake_descriptors, capsys):
    chips = make_chips(tmp_path / "chips.npz", subjects=("001", "002"))
    junk = tmp_path / "junk.npz"
    junk.write_text("not an npz")
    cases = [
        (["--descriptor", "no-chips", "--chips", str(chips)], "do not embed chips"),
        (["--descriptor", "nope", "--chips", str(chips)], "unknown descriptor"),
        (["--descriptor", "fake-chips", "--chips", str(junk)], "cannot read the chips file"),
        (["--descriptor", "fake-chips", "--chips", str(tmp_path / "missing.npz")], "cannot read the chips file"),
        (["--descriptor", "fake-chips", "--chips", str(chips), "--subjects", "1-x"], "expected a range"),
        (["--descriptor", "fake-chips", "--chips", str(chips), "--per-subject", "0"], "at least 1"),
        (["--descriptor", "fake-chips", "--chips", str(chips), "--subjects", "003-009"], "no chips of subjects"),
        (["--descriptor", "fake-chips", "--data", str(tmp_path)], "no manifest.csv"),
    ]
    for args, msg in cases:
        rc = calibrate.main([*args, "--models", str(models)])
        err = capsys.readouterr().err
        assert rc == 2, (args, err)
        assert msg in err and err.startswith("error: ") and err.count("\n") == 1, (args, err)
    # one subject only: no impostor pairs
    one = make_chips(tmp_path / "one.npz", subjects=("001",))
    assert calibrate.main(["--descriptor", "fake-chips", "--chips", str(one), "--models", str(models)]) == 2
    assert "impostor pairs" in capsys.readouterr().err
    assert "fake-chips" not in json.loads((models / "MANIFEST.json").read_text()).get("thresholds", {})


def test_dry_run_writes_nothing(tmp_path, models, fake_descriptors, capsys):
    chips = make_chips(tmp_path / "chips.npz")
    before = (models / "MANIFEST.json").read_bytes()
    assert (
        calibrate.main(["--descriptor", "fake-chips", "--chips", str(chips), "--models", str(models), "--dry-run"]) == 0
    )
    assert "nothing written" in capsys.readouterr().out
    assert (models / "MANIFEST.json").read_bytes() == before


def test_real_descriptor_on_a_few_chips(tmp_path, models, fake_descriptors):
    chips = make_chips(tmp_path / "chips.npz", subjects=("001", "002", "003"), frontal=2, profile=1)
    argv = ["--descriptor", "dlib-resnet-torch,fake-chips", "--chips", str(chips), "--models", str(models)]
    assert calibrate.main([*argv, "--threads", "1"]) == 0
    recs = thresholds(models)
    token = DESCRIPTORS.create("dlib-resnet-torch").cache_token
    assert recs["dlib-resnet-torch"]["cache_token"] == token and recs["fake-chips"]["cache_token"] == "fake:v1"
    assert recs["dlib-resnet-torch"]["pairs"] == {"genuine": 3 * 3, "impostor": 36 - 3 - 9}
    value, label = operating_point("dlib-resnet-torch", "far0.1", cache_token=token, folder=models)
    assert label == "far0.1" and -1.0 <= value <= 1.0 + 1e-6


def test_pair_scores_masked_and_view_rules():
    v = np.array([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]], np.float32)
    m = np.array([[1, 1], [1, 0], [1, 1]], np.float32)  # image 1 shows only region 0
    g, i = calibrate.pair_scores(v, m, ["a", "a", "b"], ["frontal", "frontal", "frontal"])
    assert g.tolist() == [pytest.approx(1.0)]  # compared on region 0 only: identical there
    assert sorted(i.round(3).tolist()) == [0.0, 0.5]
    g, i = calibrate.pair_scores(v, None, ["a", "a", "b"], ["profile", "profile", "frontal"])
    assert len(g) == 0 and len(i) == 2  # the profile-profile pair is not scored
    assert calibrate.view_of("images/001/profile/02.jpg") == "profile"
    assert calibrate.view_of("images/001/frontal/02.jpg") == "frontal"


def _cfp_like_folder(root):
    """CFP layout from the bundled ORL photos: subjects 001-003, two 'frontal' + one 'profile' each."""
    ex = REPO / "examples"
    rows = []
    for k, s in enumerate(("01", "02", "03")):
        sid = f"{k + 1:03d}"
        for view, name, src in (
            ("frontal", "01.png", ex / "gallery" / f"orl_s{s}.png"),
            ("frontal", "02.png", ex / "probes" / f"orl_s{s}_3.png"),
            ("profile", "01.png", ex / "probes" / f"orl_s{s}_7.png"),
        ):
            dst = root / "images" / sid / view / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
            rows.append(
                {"path": dst.relative_to(root).as_posix(), "subject": sid, "yaw": 0, "pitch": 0, "role": "probe"}
            )
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "subject", "yaw", "pitch", "role"])
        w.writeheader()
        w.writerows(rows)
    return root


def test_pipeline_source_on_example_photos(tmp_path, models, capsys):
    data = _cfp_like_folder(tmp_path / "cfp")
    argv = ["--descriptor", "dlib-resnet-torch", "--data", str(data), "--models", str(models), "--threads", "1"]
    assert calibrate.main(argv) == 0, capsys.readouterr().err
    rec = thresholds(models)["dlib-resnet-torch"]
    assert rec["pairs"]["genuine"] + rec["pairs"]["impostor"] <= 36 - 3  # 9 images, no profile-profile pair
    assert rec["pairs"]["genuine"] >= 1 and "through the default pipeline" in rec["data"]
    assert rec["far0.1"] >= rec["far1"]


def test_shared_cfp_two_images_of_three_subjects(shared_data, models, capsys):
    cfp = shared_data / "cfp_dev"
    if not (cfp / "manifest.csv").exists():
        pytest.skip("no cfp_dev in the data root")
    argv = ["--descriptor", "dlib-resnet-torch", "--data", str(cfp), "--subjects", "001-003", "--per-subject", "1"]
    assert calibrate.main([*argv, "--models", str(models), "--threads", "1"]) == 0, capsys.readouterr().err
    rec = thresholds(models)["dlib-resnet-torch"]
    assert 1 <= rec["pairs"]["genuine"] <= 3 and rec["pairs"]["impostor"] <= 12
