"""The face / non-face check of ``lm-verify``: the fusion and the floor rule on synthetic scores
(round trips that a wrong implementation fails), the convention-free box match, and the shipped model
on real and non-face crops."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import face_box, fixture_image

from pipeline.detection.boxes import box_matches
from pipeline.detection.face_check import fuse
from training.face_check import auc, choose_floor, fit_fusion, noise_image


def test_fit_fusion_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    z, c = rng.normal(0, 2, 20000), rng.uniform(0, 1, 20000)
    true = (1.5, 4.0, -3.0)
    y = (rng.random(20000) < fuse(z, c, true)).astype(float)
    a, b, d = fit_fusion(z, c, y)
    assert a == pytest.approx(1.5, abs=0.1) and b == pytest.approx(4.0, abs=0.4) and d == pytest.approx(-3.0, abs=0.3)
    # a wrong sign is far away
    assert abs(a + 1.5) > 1.0


def test_fuse_is_a_probability_and_monotone():
    z = np.linspace(-30, 30, 61)
    p = fuse(z, np.full_like(z, 0.5), (1.0, 2.0, -1.0))
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) > 0)
    assert fuse([0.0], [0.5], (1.0, 2.0, -1.0))[0] == pytest.approx(0.5)


def test_choose_floor_keeps_the_recall_and_caps_false_positives():
    rng = np.random.default_rng(1)
    faces = rng.uniform(0.5, 1.0, 1000)
    nonfaces = rng.uniform(0.0, 0.6, 1000)
    p = np.r_[faces, nonfaces]
    y = np.r_[np.ones(1000), np.zeros(1000)]
    src = np.array([f"f{i}" for i in range(1000)] + [f"n{i // 10}" for i in range(1000)])  # 100 non-face images
    neg = np.r_[np.zeros(1000, bool), np.ones(1000, bool)]
    floor, st = choose_floor(p, y, src, neg, recall=0.99, max_fp=1.0)
    assert st["val_face_recall_at_floor"] >= 0.99 and floor == pytest.approx(np.sort(faces)[10])
    strict, st2 = choose_floor(p, y, src, neg, recall=0.99, max_fp=0.01)
    assert strict > floor and st2["val_nonface_images_passing"] <= 0.01


def test_auc_of_perfect_and_random_scores():
    y = np.r_[np.ones(50), np.zeros(50)]
    assert auc(np.r_[np.ones(50), np.zeros(50)], y) == 1.0
    assert auc(np.r_[np.zeros(50), np.ones(50)], y) == 0.0
    assert auc(np.random.default_rng(0).random(100), y) == pytest.approx(0.5, abs=0.15)


def test_box_matches_is_convention_free():
    gt = (10, 10, 110, 130)
    assert box_matches((0, 0, 120, 140), gt) and box_matches((30, 30, 90, 110), gt)
    assert not box_matches((120, 10, 220, 130), gt)  # centre outside
    assert not box_matches((55, 65, 65, 75), gt)  # 10x smaller
    assert not box_matches((-200, -200, 320, 340), gt)  # 5x larger


def test_noise_images_are_deterministic():
    a = noise_image(np.random.default_rng([0, 3]))
    b = noise_image(np.random.default_rng([0, 3]))
    assert a.dtype == np.uint8 and a.shape == (200, 200) and np.array_equal(a, b)


@pytest.fixture(scope="module")
def check():
    from pipeline.detection.face_check import FaceCheck

    return FaceCheck()


def test_shipped_check_tells_a_face_from_noise(check):
    """The shipped model on a real face box vs. uniform noise and a flat field, at equal landmark
    confidence (so the CNN alone has to separate them)."""
    from pipeline.imageio import load_image, to_gray

    gray = to_gray(load_image(fixture_image("takeo")))
    face = check.probability(gray, [face_box("takeo")], [0.7])[0]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (240, 240), dtype=np.uint8)
    flat = np.full((240, 240), 120, np.uint8)
    box = (60, 60, 180, 180)
    p_noise = check.probability(noise, [box], [0.7])[0]
    p_flat = check.probability(flat, [box], [0.7])[0]
    assert face >= check.floor > max(p_noise, p_flat)
    assert 0.0 <= check.floor <= 1.0 and len(check.coef) == 3


def test_altered_face_check_weights_are_refused(tmp_path):
    import shutil

    from pipeline.detection.dpm import MODEL_DIR
    from pipeline.detection.face_check import FaceCheck
    from pipeline.errors import ModelFileError

    for f in ("MANIFEST.json", "face_check.safetensors"):
        shutil.copy(MODEL_DIR / f, tmp_path / f)
    data = bytearray((tmp_path / "face_check.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "face_check.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        FaceCheck(tmp_path)


def test_save_state_dict_is_atomic_and_returns_the_file_sha256(tmp_path):
    import torch
    from safetensors.torch import load_file

    from pipeline.detection.bbox_cnn import BoxNet
    from pipeline.modelfiles import save_state_dict, sha256_file

    net = BoxNet(4, outputs=1)
    dest = tmp_path / "w.safetensors"
    digest = save_state_dict(net, dest)
    assert digest == sha256_file(dest) and not list(tmp_path.glob(".*.tmp"))
    back = BoxNet(4, outputs=1)
    back.load_state_dict(load_file(str(dest)))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), back.state_dict().values()))


def _render_set(root, n, yaw):
    import json

    root.mkdir(parents=True)
    rows = [{"image": f"images/r{k}.jpg", "box": [10, 10, 60 + k, 60], "yaw": yaw} for k in range(n)]
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_extra_render_sets_are_appended_without_changing_the_default_draws(tmp_path):
    import json

    from training.face_check import FaceCheckTrainConfig, jobs_for

    renders = _render_set(tmp_path / "prof", 6, 20.0)
    hard = _render_set(tmp_path / "hard", 3, -80.0)
    aflw = tmp_path / "aflw"
    aflw.mkdir()
    (aflw / "annotations.jsonl").write_text(
        "".join(json.dumps({"image": f"images/a{k}.jpg", "yaw": 5.0}) + "\n" for k in range(4))
    )
    cfg = FaceCheckTrainConfig(renders=4, aflw=2, cfp_negatives=0, noise=2)
    base = jobs_for(cfg, renders, aflw, tmp_path / "cfp")
    more = jobs_for(cfg, renders, aflw, tmp_path / "cfp", (hard,))
    assert more[: len(base)] == base  # same sources, scales and validation flags
    extra = more[len(base) :]
    assert [j["kind"] for j in extra] == ["render"] * 3
    assert all(j["path"].startswith(str(hard)) and j["yaw"] == -80.0 and 0.4 <= j["scale"] <= 1.0 for j in extra)
    assert [j["kind"] for j in base].count("render") == 4 and [j["kind"] for j in base].count("noise") == 2


def test_candidates_are_labelled_face_background_part_around_or_offcentre():
    from training.face_check import FaceCheckTrainConfig, label_candidate

    cfg = FaceCheckTrainConfig()
    gt = (100.0, 100.0, 200.0, 200.0)
    assert label_candidate((95, 98, 205, 206), gt, cfg) == "face"
    assert label_candidate((0, 0, 50, 50), gt, cfg) == "background"  # off the face
    assert label_candidate((120, 150, 160, 190), gt, cfg) == "part"  # a mouth box: side 0.4
    assert label_candidate((40, 40, 260, 260), gt, cfg) == "around"  # side 2.2, covers the face
    assert label_candidate((160, 100, 260, 200), gt, cfg) == "offcentre"  # centre off the face, IoU 0.25
    assert label_candidate((110, 100, 210, 200), gt, cfg) == "face"
    assert label_candidate((120, 150, 160, 190), None, cfg) == "background"  # a non-face image
    # a part only counts when it lies on the face; half of it outside is 'between'
    assert label_candidate((180, 150, 220, 190), gt, cfg) == "between"


def test_parts_become_non_faces_only_when_asked():
    from training.face_check import labels_to_targets

    labels = np.array(["face", "background", "part", "around", "offcentre", "between"])
    assert labels_to_targets(labels, True, True).tolist() == [1, 0, 0, 0, 0, -1]
    assert labels_to_targets(labels, True, False).tolist() == [1, 0, 0, 0, -1, -1]
    assert labels_to_targets(labels, False, False).tolist() == [1, 0, -1, -1, -1, -1]


def test_sampled_part_boxes_are_parts_or_boxes_around_the_face():
    from training.face_check import FaceCheckTrainConfig, label_candidate, sample_part_boxes

    cfg = FaceCheckTrainConfig(sampled_parts=3, sampled_around=1.0)
    rng = np.random.default_rng(0)
    for gt in [(100.0, 100.0, 200.0, 200.0), (20.0, 40.0, 115.0, 175.0), (0.0, 0.0, 30.0, 60.0)]:
        boxes = sample_part_boxes(gt, rng, cfg)
        assert len(boxes) == 4
        assert [label_candidate(b, gt, cfg) for b in boxes[:3]] == ["part"] * 3
        assert label_candidate(boxes[3], gt, cfg) == "around"
        assert all(abs((b[2] - b[0]) - (b[3] - b[1])) < 1e-9 for b in boxes)  # squares, as the candidates


def test_crops_at_several_contexts_and_their_mirrors():
    from pipeline.detection.bbox_cnn import crop_for, crops_for, to_input
    from training.loaders import mirrored_batches

    img = (np.arange(200 * 200) % 251).astype(np.uint8).reshape(200, 200)
    box = (80.0, 70.0, 120.0, 110.0)
    c = crops_for(img, box, (1.5, 3.0))
    assert c.shape == (2, 64, 64) and np.array_equal(c[0], crop_for(img, box))
    assert not np.array_equal(c[0], c[1])
    assert tuple(to_input(c[None]).shape) == (1, 2, 64, 64) and tuple(to_input(c[:1]).shape) == (1, 1, 64, 64)
    stack = np.stack([c, c[:, ::-1]])  # (2, 2, 64, 64)
    for idx, out, flip in mirrored_batches(stack, 2, np.random.default_rng(3)):
        for k, i in enumerate(idx):  # a mirrored sample has every channel flipped left-right, nothing else
            assert np.array_equal(out[k], stack[i][..., ::-1] if flip[k] else stack[i])


def test_cached_candidates_are_cropped_again_at_other_contexts(tmp_path):
    import cv2

    from pipeline.detection.bbox_cnn import crops_for
    from training.face_check import recrop

    img = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    jobs = [{"kind": "render", "path": str(tmp_path / "a.png"), "gt": [40, 30, 100, 90], "scale": 1.0}]
    data = {
        "src": np.array([str(tmp_path / "a.png")] * 2),
        "box": np.array([[40, 30, 100, 90], [10, 10, 30, 30]], np.float32),
    }
    out = recrop(data, jobs, tmp_path, (1.5, 3.0))
    assert out.shape == (2, 2, 64, 64)
    assert np.array_equal(out[1], crops_for(img, data["box"][1], (1.5, 3.0)))
    with pytest.raises(ValueError, match="collect again"):
        recrop({"src": np.array(["elsewhere.png"]), "box": data["box"][:1]}, jobs, tmp_path, (1.5,))


def test_the_part_check_is_a_second_manifest_entry_with_two_contexts():
    from pipeline.detection.face_check import FaceCheck
    from pipeline.errors import ModelFileError

    part = FaceCheck(entry="part_check")
    assert part.contexts == (1.5, 3.0) and 0.0 < part.floor < 1.0
    with pytest.raises(ModelFileError, match="--entry nothing"):
        FaceCheck(entry="nothing")
