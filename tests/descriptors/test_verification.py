"""Verification metrics on synthetic scores with known answers, and the CFP benchmark's pair scoring."""

from __future__ import annotations

import numpy as np
import pytest

from descriptors.verification import (
    accuracy,
    best_threshold,
    cross_fold_accuracy,
    roc_auc,
    roc_curve,
    tar_at_far,
    threshold_at_far,
)


def test_auc_of_separated_random_and_reversed_scores():
    y = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    assert roc_auc(np.r_[np.ones(50), np.zeros(50)], y) == 1.0
    assert roc_auc(np.r_[np.zeros(50), np.ones(50)], y) == 0.0
    assert roc_auc(np.full(100, 0.3), y) == pytest.approx(0.5)  # all tied: the diagonal
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(1, 1, 4000), rng.normal(0, 1, 4000)]
    y = np.r_[np.ones(4000, bool), np.zeros(4000, bool)]
    # two unit Gaussians one sigma apart: AUC = Phi(1 / sqrt(2)) = 0.7602
    assert roc_auc(s, y) == pytest.approx(0.7602, abs=0.01)


def test_roc_curve_ends_at_one_one_and_is_monotone():
    rng = np.random.default_rng(1)
    s, y = rng.random(200), rng.random(200) < 0.5
    far, tar, thr = roc_curve(s, y)
    assert far[0] == tar[0] == 0 and far[-1] == tar[-1] == 1
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0) and np.all(np.diff(thr) < 0)


def test_threshold_at_far_accepts_at_most_that_share_of_impostors():
    imp = np.linspace(0, 1, 1000)
    for far in (0.0, 0.001, 0.01, 0.1):
        t = threshold_at_far(imp, far)
        assert (imp >= t).mean() <= far + 1e-12
    gen = np.full(10, 0.995)
    tar, t = tar_at_far(np.r_[gen, imp], np.r_[np.ones(10, bool), np.zeros(1000, bool)], 0.01)
    assert tar == 1.0 and (imp >= t).mean() <= 0.01


def test_best_threshold_and_cross_fold_accuracy():
    s = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.85, 0.75, 0.35, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0, 1, 1, 0, 0], bool)
    t, acc = best_threshold(s, y)
    assert acc == 1.0 and 0.4 < t < 0.7 and accuracy(s, y, t) == 1.0
    folds = np.array([1, 1, 1, 1, 1, 1, 2, 2, 2, 2])
    cv = cross_fold_accuracy(s, y, folds)
    assert cv["mean"] == 1.0 and set(cv["per_fold"]) == {1, 2}
    with pytest.raises(ValueError, match="two folds"):
        cross_fold_accuracy(s, y, np.ones(10, int))
    with pytest.raises(ValueError, match="genuine and impostor"):
        roc_auc(s, np.ones(10, bool))


def test_cfp_pair_scores_mark_failed_images_as_rejections():
    from benchmarks.cfp_verify import FAILED_SCORE, pair_scores, summarise
    from facedata.readers import Pair

    v = np.eye(3, dtype=np.float32)
    sigs = [(v[0], None), (v[0], None), (v[1], None), None]
    index = {"a": 0, "b": 1, "c": 2, "d": 3}
    pairs = [
        Pair(4, "FP", True, "a", "b"),
        Pair(4, "FP", False, "a", "c"),
        Pair(5, "FP", True, "a", "d"),
        Pair(5, "FP", False, "b", "c"),
    ]
    sc, failed = pair_scores(pairs, index, sigs, masked=False)
    assert sc.tolist() == [1.0, 0.0, FAILED_SCORE, 0.0] and failed.tolist() == [False, False, True, False]
    res = summarise(sc, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]), failed)
    assert res["failed_pairs"] == 1 and res["pairs"] == 4 and 0 <= res["auc"] <= 1


def test_cfp_calibrated_rates_at_a_training_threshold():
    from benchmarks.cfp_verify import calibrated_rates

    sc = np.array([0.9, 0.8, 0.5, 0.95, 0.4, 0.3])
    same = np.array([True, True, True, False, False, False])
    r = calibrated_rates(sc, same, {"far1": 0.7, "far0.1": 0.99, "data": "x"})
    assert r["far1"] == {"threshold": 0.7, "tar": 2 / 3, "far": 1 / 3}
    assert r["far0.1"]["tar"] == 0.0 and r["far0.1"]["far"] == 0.0
    assert calibrated_rates(sc, same, None) == {}


def test_cfp_rescore_recomputes_from_saved_pair_scores(tmp_path, capsys):
    import json

    from benchmarks.cfp_verify import main

    cfp = tmp_path / "cfp"
    cfp.mkdir()
    rows = ["fold,protocol,same,a,b"] + [f"{f},FP,{s},x{f}{s}a,x{f}{s}b" for f in (4, 5) for s in (1, 0)]
    (cfp / "protocol_pairs.csv").write_text("\n".join(rows) + "\n")
    recs = [
        {"descriptor": "lbp", "protocol": "FP", "fold": f, "same": s, "a": "a", "b": "b", "score": 0.9 if s else 0.1}
        for f in (4, 5)
        for s in (True, False)
    ]
    summary = {"folds": [4, 5], "images": 8, "images_without_face": 0, "results": {"lbp": {"FP": {}}}}
    (tmp_path / "old.json").write_text(json.dumps({"summary": summary, "pairs": recs}))
    out = tmp_path / "new.json"
    assert main(["--data", str(cfp), "--rescore", str(tmp_path / "old.json"), "--json", str(out)]) == 0
    res = json.loads(out.read_text())["summary"]["results"]["lbp"]["FP"]
    assert res["accuracy_mean"] == 1.0 and res["auc"] == 1.0 and res["pairs"] == 4
    assert main(["--data", str(cfp), "--rescore", str(tmp_path / "missing.json")]) == 2
    assert "cannot read pair scores" in capsys.readouterr().err
