"""The ``dpm`` multi-view detector and the ``bbox-cnn`` refiner: box maths, shipped models,
bad input (empty result, never an exception), tampered model files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import FIXTURES, face_box, fixture_image

from pipeline.detection.bbox_cnn import decode, encode
from pipeline.detection.boxes import iou, square_of
from pipeline.detection.dpm import MODEL_DIR, VIEWS, base_view, components, load_manifest, upsample_levels
from pipeline.errors import ModelFileError
from pipeline.imageio import load_image
from pipeline.registry import DETECTORS, REFINERS
from pipeline.types import Detection


@pytest.mark.parametrize("gt", [(10, 20, 110, 140), (50, 50, 90, 70), (0, 0, 33.3, 33.3)])
def test_box_encode_decode_round_trip(gt):
    det = (12.0, 15.0, 100.0, 103.0)
    t = encode(det, gt)
    assert np.allclose(decode(det, t), gt, atol=1e-4)
    assert np.allclose(encode(det, det)[:3], [0, 0, 0])  # a square box maps onto itself
    assert square_of(gt)[2] == pytest.approx(max(gt[2] - gt[0], gt[3] - gt[1]))


def test_upsample_levels():
    assert upsample_levels((400, 400), 80, 80) == 0
    assert upsample_levels((400, 400), 40, 80) == 1
    assert upsample_levels((400, 400), 20, 80) == 2
    assert upsample_levels((4000, 4000), 20, 80) == 0  # capped by the pixel budget


@pytest.fixture(scope="module")
def dpm():
    return DETECTORS.create("dpm", min_face=40)


@pytest.mark.parametrize("name", ["takeo", "einstein"])
def test_dpm_finds_the_face_and_refines_towards_it(dpm, name):
    img = load_image(fixture_image(name))
    gt = face_box(name)
    dets = dpm.detect(img)
    assert dets and all(d.view in components(load_manifest()) and base_view(d.view) in VIEWS for d in dets)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    best = max(dets, key=lambda d: iou(d.box, gt))
    assert iou(best.box, gt) > 0.4
    ref = REFINERS.create("bbox-cnn").refine(img, best)
    assert np.isfinite(ref.box).all() and ref.view == best.view and ref.score == best.score
    assert iou(ref.box, gt) > 0.5


def test_dpm_mirrored_profile_views_are_symmetric(dpm):
    """The same face mirrored is found in the mirror place (the *_right templates are trained on
    the mirror images of the *_left data)."""
    img = load_image(FIXTURES / "takeo.png")
    a, b = dpm.detect(img), dpm.detect(np.ascontiguousarray(img[:, ::-1]))
    w = img.shape[1]
    assert a and b
    ba = a[0].box
    mirrored = (w - ba[2], ba[1], w - ba[0], ba[3])
    assert max(iou(mirrored, d.box) for d in b) > 0.6


@pytest.mark.parametrize("shape", [(30, 30, 3), (10, 10000, 3), (200, 200, 3), (1, 1, 3)])
def test_dpm_empty_or_tiny_images_give_no_faces(dpm, shape):
    assert dpm.detect(np.zeros(shape, np.uint8)) == []


def tampered_copy(tmp_path, filename):
    """A copy of the detector model folder with one byte of ``filename`` flipped."""
    bad = tmp_path / "models"
    shutil.copytree(MODEL_DIR, bad)
    f = bad / filename
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    return bad


def test_tampered_detector_file_is_refused(tmp_path):
    from pipeline.detection.dpm import DpmDetector

    bad = tampered_copy(tmp_path, "frontal.svm")
    with pytest.raises(ModelFileError, match="sha256"):
        DpmDetector(model_dir=bad)
    (bad / "MANIFEST.json").unlink()
    with pytest.raises(ModelFileError, match="training.dpm"):
        DpmDetector(model_dir=bad)


def test_tampered_refiner_file_is_refused(tmp_path):
    from pipeline.detection.bbox_cnn import BboxCnnRefiner

    bad = tmp_path / "models"
    shutil.copytree(MODEL_DIR, bad)
    f = bad / "bbox_cnn.safetensors"
    f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelFileError, match="sha256"):
        BboxCnnRefiner(model_dir=bad)


def test_identity_refiner_is_a_no_op():
    d = Detection((1.0, 2.0, 3.0, 4.0), 0.5, "frontal")
    assert REFINERS.create("none").refine(np.zeros((8, 8, 3), np.uint8), d) == d


def test_tampered_landmark_box_regressor_is_refused(tmp_path):
    from pipeline.detection.verify import load_regressor

    with pytest.raises(ModelFileError, match="sha256"):
        load_regressor(tampered_copy(tmp_path, "landmark_box.npz"))


def test_shipped_manifest_lists_every_template_it_loads(dpm):
    """The manifest's components are what the detector loads, each verified; every view is covered
    and the split profile templates come in mirrored left / right twins."""
    man = load_manifest()
    comps = components(man)
    assert dpm.views == comps and all(c in man["files"] for c in comps)
    assert {base_view(c) for c in comps} == set(VIEWS)
    left = sorted(c.split("#")[-1] for c in comps if base_view(c) == "profile_left")
    assert left == sorted(c.split("#")[-1] for c in comps if base_view(c) == "profile_right")


def test_a_manifest_without_components_reads_as_the_five_views():
    assert components({"files": {}}) == list(VIEWS)
    assert base_view("profile_left#2") == "profile_left" and base_view("frontal") == "frontal"


def test_split_arguments_and_component_names():
    from training.dpm import component_names, parse_splits

    assert parse_splits("profile=3, half=2") == {"profile": 3, "half": 2} and parse_splits("") == {}
    for bad in ("profile", "side=2", "profile=0", "profile=x", "profile=9"):
        with pytest.raises(ValueError, match="VIEW=K"):
            parse_splits(bad)
    prev = [
        "frontal",
        "half_left",
        "half_right",
        "profile_left#1",
        "profile_left#2",
        "profile_right#1",
        "profile_right#2",
    ]
    # retraining the half views split in 2 keeps the profile split it had
    assert (
        component_names({"half": 2}, prev, ["half_left", "half_right"])
        == ["frontal", "half_left#1", "half_left#2", "half_right#1", "half_right#2"] + prev[3:]
    )
    # retraining the profiles unsplit merges them back
    assert component_names({}, prev, ["profile_left", "profile_right"]) == list(VIEWS)


def test_hog_clusters_separate_two_kinds_of_window_and_mirror_round_trips():
    """Windows of vertical vs horizontal stripes (random phase and noise) fall into two clusters;
    mirroring a positive twice gives it back."""
    import dlib

    from training.dpm import DpmTrainConfig, hog_clusters, mirror_positive, window_hog

    rng = np.random.default_rng(0)
    imgs, boxes, kind = [], [], []
    for i in range(24):
        k = i % 2
        x = np.arange(120)
        wave = (np.sin(x / 3.0 + rng.uniform(0, 6)) > 0) * 200.0
        img = (wave[None, :] if k else wave[:, None]) * np.ones((120, 120))
        img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
        imgs.append(img)
        boxes.append([dlib.rectangle(10, 15, 99, 104)])
        kind.append(k)
    assert window_hog(imgs[0], boxes[0][0], 80).shape == (10 * 10 * 9,)
    lab = hog_clusters(imgs, boxes, 2, DpmTrainConfig())
    assert len(set(lab)) == 2 and all((lab == lab[0]) == (np.array(kind) == kind[0]))
    img2, r2 = mirror_positive(*mirror_positive(imgs[1], boxes[1]))
    assert np.array_equal(img2, imgs[1]) and r2[0] == boxes[1][0]
    _, r1 = mirror_positive(imgs[1], boxes[1])
    assert (r1[0].left(), r1[0].right()) == (120 - 1 - 99, 120 - 1 - 10)
