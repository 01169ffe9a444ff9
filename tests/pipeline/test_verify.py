"""The ``lm-verify`` refiner: the landmarks -> box regressor (round trip on synthetic layouts), the
shipped regressor, re-centring of an off-centre box on a real face, rejection of non-faces."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, face_box, fixture_image

from pipeline.detection.boxes import iou
from pipeline.detection.dpm import nms
from pipeline.detection.landmark_box import (
    box_from_landmarks,
    fit_box_regressor,
    layout_features,
    roi_error,
    roi_from_landmarks,
)
from pipeline.imageio import load_image
from pipeline.types import Detection


def synthetic_layouts(n, seed=0):
    """Random 19-point layouts (a base shape warped per sample) in random ROIs; the ROI centre is
    offset from the point centroid by an amount that depends on the layout (as a profile's points
    crowd to one side of its head box)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (19, 2))
    pts, rois = [], []
    for _ in range(n):
        a = rng.uniform(-0.3, 0.3)  # a "yaw" that shifts the layout sideways
        shape = base + np.array([a, 0.0]) * (1 + base[:, 1:2]) + rng.normal(0, 0.02, (19, 2))
        cx, cy = rng.uniform(50, 400, 2)
        side = rng.uniform(60, 300)
        # the ROI centre sits at the base-shape centre, not at the (shifted) centroid
        pts.append(np.array([cx, cy]) + shape * side / 4)
        rois.append((cx, cy, side))
    return np.asarray(pts), np.asarray(rois)


def test_layout_features_are_translation_and_scale_invariant():
    p, _ = synthetic_layouts(1)
    f1 = layout_features(p[0])[0]
    f2 = layout_features(p[0] * 3.0 + 17.0)[0]
    assert np.allclose(f1, f2)


def test_regressor_round_trip_recovers_rois():
    pts, rois = synthetic_layouts(400)
    W = fit_box_regressor(pts[:300], rois[:300], ridge=1e-4)
    err = roi_error(roi_from_landmarks(pts[300:], W), rois[300:])
    assert err["centre"] < 0.02 and err["log_scale"] < 0.02
    # a wrong model (all-zero W) must fail the same check
    bad = roi_error(roi_from_landmarks(pts[300:], np.zeros_like(W)), rois[300:])
    assert bad["log_scale"] > 0.5
    x0, y0, x1, y1 = box_from_landmarks(pts[300], W)
    cx, cy, side = roi_from_landmarks(pts[300], W)
    assert x1 - x0 == pytest.approx(side / np.sqrt(2)) and (x0 + x1) / 2 == pytest.approx(cx)


def test_nms_keeps_the_best_of_overlapping_boxes():
    dets = [
        Detection((0, 0, 10, 10), 0.2),
        Detection((1, 1, 11, 11), 0.9),
        Detection((50, 50, 60, 60), 0.1),
        Detection((2, 2, 5, 5), 0.5),
    ]  # contained in the first two but IoU < 0.5: kept
    kept = nms(dets, 0.5)
    assert [d.score for d in kept] == [0.9, 0.5, 0.1]


@pytest.fixture(scope="module")
def verifier():
    from pipeline.registry import REFINERS

    return REFINERS.create("lm-verify")


@pytest.mark.parametrize("name", ["takeo", "einstein"])
def test_off_centre_box_is_recentred_on_the_face(verifier, name):
    img = load_image(fixture_image(name))
    gt = face_box(name)
    w, h = gt[2] - gt[0], gt[3] - gt[1]
    off = (gt[0] + 0.3 * w, gt[1] - 0.2 * h, gt[2] + 0.3 * w, gt[3] - 0.2 * h)  # IoU ~0.4 with the face
    assert iou(off, gt) < 0.5
    out = verifier.verify(img, [Detection(off, 0.0, "frontal")])
    assert out and iou(out[0].box, gt) > 0.6
    assert 0.0 <= out[0].score <= 1.0 and out[0].view == "frontal"  # the detector's component is kept


def test_non_face_candidates_are_rejected(verifier):
    rng = np.random.default_rng(0)
    flat = np.full((240, 240, 3), 128, np.uint8)
    noise = rng.integers(0, 256, (240, 240, 3), dtype=np.uint8)
    for img in (flat, noise):
        assert verifier.verify(img, [Detection((60, 60, 180, 180), 1.0, "frontal")]) == []


def test_the_most_confident_face_wins_over_a_larger_false_box(verifier):
    from pipeline.pipeline import Pipeline

    img = load_image(FIXTURES / "einstein.jpg")
    gt = face_box("einstein")

    class FakeDetector:  # a large background box with a higher detector score than the face
        def detect(self, image):
            h, w = image.shape[:2]
            return [Detection((0, 0, w * 0.45, h * 0.45), 2.0, "frontal"), Detection(gt, 0.1, "frontal")]

    pipe = Pipeline(refiner="lm-verify")
    pipe._stages["detector"] = FakeDetector()
    pipe._stages["refiner"] = verifier
    (det,) = pipe.detect(img)
    assert iou(det.box, gt) > 0.6


def test_face_floor_zero_keeps_the_best_candidate_and_the_default_rejects_it():
    """``--face-floor 0`` (inputs known to hold a face): a candidate that the trained floor rejects is
    kept; the default pipeline reports no face for it."""
    from pipeline.errors import NoFaceFoundError
    from pipeline.pipeline import Pipeline

    flat = np.full((240, 240, 3), 128, np.uint8)

    class FakeDetector:
        def detect(self, image):
            return [Detection((60, 60, 180, 180), 1.0, "frontal")]

    strict, loose = Pipeline(refiner="lm-verify"), Pipeline(refiner="lm-verify", face_floor=0.0)
    for pipe in (strict, loose):
        pipe._stages["detector"] = FakeDetector()
    with pytest.raises(NoFaceFoundError):
        strict.detect(flat)
    (det,) = loose.detect(flat)
    ((conf, prob, box, view),) = loose._stage("refiner").scored(flat, FakeDetector().detect(flat))
    assert 0.0 <= prob < strict._stage("refiner").floor and det.score == conf and det.box == box
    assert (
        loose._stage("refiner").floor == 0.0
        and loose._stage("refiner").cache_token != strict._stage("refiner").cache_token
    )


def test_without_the_check_the_landmark_confidence_ranks():
    from pipeline.registry import REFINERS

    plain = REFINERS.create("lm-verify", face_check=False)
    assert plain.check is None and plain.floor == plain.min_confidence == 0.65
    img = load_image(fixture_image("takeo"))
    out = plain.verify(img, [Detection(face_box("takeo"), 0.0, "frontal")])
    assert out and plain.floor <= out[0].score <= 1.0


def test_nested_boxes():
    from pipeline.detection.boxes import nested

    face = (100, 100, 200, 200)
    assert nested(face, (130, 150, 170, 190)) and nested((130, 150, 170, 190), face)  # a mouth box: either order
    assert nested(face, (50, 50, 250, 250))  # the face inside a box twice its side
    assert not nested(face, (110, 110, 190, 190))  # 0.64 of the area: the same face, not a part
    assert not nested(face, (180, 150, 220, 190))  # half outside: a neighbour, not a part
    assert not nested(face, (300, 300, 330, 330)) and not nested(face, (0, 0, 0, 0))


def test_select_keeps_the_likelier_of_two_nested_faces(verifier):
    """Of two candidates above the floor that nest, the one with the higher p(face) takes the pair's
    place (however their landmark confidences rank them); without ``resolve_nested`` both stay."""
    from types import SimpleNamespace

    from pipeline.detection.verify import LandmarkVerifyRefiner

    face, mouth, other = (100, 100, 200, 200), (130, 150, 170, 190), (300, 100, 400, 200)
    scored = [(0.9, 0.7, mouth, "a"), (0.8, 0.99, face, "b"), (0.7, 0.95, other, "c")]  # confidence order
    cfg = dict(floor=0.5, merge_iou=0.5)
    on = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=True, **cfg), scored)
    assert [d.box for d in on] == [face, other] and on[0].score == 0.8
    off = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=False, **cfg), scored)
    assert [d.box for d in off] == [mouth, face, other]
    swapped = [(0.9, 0.99, mouth, "a"), (0.8, 0.7, face, "b")]  # the part is the likelier: it stays
    assert [d.box for d in LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=True, **cfg), swapped)] == [
        mouth
    ]
    below = [(0.9, 0.7, mouth, "a"), (0.8, 0.3, face, "b")]  # a candidate under the floor never replaces
    assert [d.box for d in LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=True, **cfg), below)] == [mouth]
    assert "n-" not in verifier.cache_token  # off by default (it lost real faces, session 8)
    from pipeline.registry import REFINERS

    assert "n-" in REFINERS.create("lm-verify", resolve_nested=True).cache_token


def test_part_veto_drops_a_nested_part_only_while_the_part_check_rejects_it():
    """Step 5 of lm-verify: the first face goes when it sits inside a bigger later face and the part
    check scores it below the floor; a part above the floor, a part inside nothing, a first face that
    is the bigger of a nested pair, and a lone face are left alone."""
    from pipeline.detection.verify import veto_parts

    face, mouth, eye, other = (100, 100, 200, 200), (130, 150, 170, 190), (110, 110, 140, 140), (300, 100, 400, 200)

    def D(b, s=0.5):
        return Detection(b, s, "v")

    assert [d.box for d in veto_parts([D(mouth), D(face), D(other)], [0.1, 0.9, 0.9], 0.6)] == [face, other]
    assert [d.box for d in veto_parts([D(mouth), D(eye), D(face)], [0.1, 0.2, 0.9], 0.6)] == [face]  # twice
    assert [d.box for d in veto_parts([D(mouth), D(face)], [0.7, 0.9], 0.6)] == [mouth, face]  # passes
    assert [d.box for d in veto_parts([D(mouth), D(other)], [0.1, 0.9], 0.6)] == [mouth, other]  # not nested
    big = (50, 50, 250, 250)
    assert [d.box for d in veto_parts([D(face), D(big)], [0.9, 0.1], 0.6)] == [
        face,
        big,
    ]  # a face the check passes stays
    assert [d.box for d in veto_parts([D(big), D(face)], [0.1, 0.9], 0.6)] == [
        big,
        face,
    ]  # only a smaller first face goes
    assert [d.box for d in veto_parts([D(mouth)], [0.0], 0.6)] == [mouth]  # never the only face


def test_the_part_veto_is_off_by_default_and_can_be_switched_on(verifier):
    from pipeline.registry import REFINERS

    assert verifier.part is None and "-part" not in verifier.cache_token  # it lost real faces (session 10)
    on = REFINERS.create("lm-verify", part_veto=True)
    assert on.part is not None and 0.0 < on.part.floor < 1.0 and len(on.part.contexts) == 2
    assert "-part" in on.cache_token


def test_the_detection_benchmark_scores_the_part_veto_when_it_is_on(monkeypatch):
    """detection_bench's FrontEnd selects at several floors from one scoring; the veto must run on each
    selection (it once bypassed it). A stub refiner records the calls."""
    import benchmarks.detection_bench as bench

    calls = []

    class Stub:
        def scored(self, image, dets):
            return ["s"]

        def select(self, scored, min_confidence=None):
            return [min_confidence]

        def veto(self, image, faces):
            calls.append(faces)
            return faces + ["vetoed"]

    fe = object.__new__(bench.FrontEnd)
    fe.pipe = type(
        "P",
        (),
        {"_stage": lambda self, k: Stub() if k == "refiner" else type("D", (), {"detect": lambda self, im: ["d"]})()},
    )()
    assert fe.faces_by_floor(None, (None, 0.3)) == [[None, "vetoed"], [0.3, "vetoed"]] and len(calls) == 2


def test_the_part_veto_without_its_model_is_a_clear_error(tmp_path):
    """Asked for explicitly, the veto needs its model: a manifest without 'part_check' says how to train it."""
    import json
    import shutil

    from pipeline.detection.dpm import MODEL_DIR
    from pipeline.errors import ModelFileError
    from pipeline.registry import REFINERS

    for f in MODEL_DIR.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    man = json.loads((tmp_path / "MANIFEST.json").read_text())
    del man["part_check"]
    (tmp_path / "MANIFEST.json").write_text(json.dumps(man))
    with pytest.raises(ModelFileError, match="--entry part_check"):
        REFINERS.create("lm-verify", model_dir=tmp_path, part_veto=True)


def test_the_part_veto_is_a_pipeline_option_and_needs_lm_verify():
    """``--part-veto`` (PipelineConfig.part_veto) reaches lm-verify; with another refiner it is a
    clear configuration error, not a silently ignored flag."""
    import argparse

    from pipeline.cli import add_stage_args, config_from_args
    from pipeline.errors import ConfigError
    from pipeline.pipeline import Pipeline

    ap = argparse.ArgumentParser()
    add_stage_args(ap)
    assert config_from_args(ap.parse_args([])).part_veto is False
    cfg = config_from_args(ap.parse_args(["--part-veto"]))
    assert cfg.part_veto is True
    assert Pipeline(cfg)._stage("refiner").part is not None
    with pytest.raises(ConfigError, match="part-veto needs the lm-verify"):
        Pipeline(refiner="bbox-cnn", part_veto=True)._stage("refiner")
