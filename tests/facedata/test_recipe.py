"""Face profiling (facedata.recipe): ground truth lands on the rendered features, visibility follows
the yaw sign, the 3DDFA ROI of the box stays inside the image, and generation is deterministic per
(seed, source, sample). Packaged model only (no ../shared)."""

import hashlib
import json

import cv2
import numpy as np
import pytest

from facedata.recipe import (
    ROI_SCALE,
    DonorPool,
    NuisanceConfig,
    ProfilingConfig,
    ProfilingSource,
    RenderSpec,
    annotation,
    border_patch,
    contact_sheet,
    encode_sample,
    fill_mouth,
    prepare_source,
    profile_source,
    roi_inside,
    sample_rng,
    sample_spec,
    similarity_transform,
    synthesize,
)
from pipeline.errors import ConfigError, FitError
from pipeline.types import AFLW19_MIRROR, NUM_LANDMARKS, Fit3D
from recon3d.camera import Camera
from recon3d.model import aflw19_vertex_groups, load_model

FAR_LEFT = [0, 6, 15]  # image-left brow outer, eye outer, mouth corner
FAR_RIGHT = [5, 11, 17]
MARK = (255, 0, 0)
CHIN = 18


@pytest.fixture(scope="module")
def model():
    return load_model()


def marked_texture(model, size=256, radius=3):
    """Grey UV texture with a red disc at the UV position of each of the 19 landmarks, plus a
    blue-green pattern elsewhere so the fit / lift round trip has something to lift."""
    yy, xx = np.mgrid[0:size, 0:size]
    tex = np.zeros((size, size, 3), np.uint8)
    tex[..., 0] = 150
    tex[..., 1] = 140 + (((xx // 16) + (yy // 16)) % 2) * 30
    tex[..., 2] = 130
    for g in aflw19_vertex_groups(model):
        u, v = model.texcoords[list(g)].mean(0)
        cv2.circle(tex, (int(round(u * size - 0.5)), int(round(v * size - 0.5))), radius, MARK, -1)
    return tex


def clean_spec(yaw, pitch=0.0, roll=0.0, size=200, face=130.0, **kw):
    c = (size - 1) / 2
    return RenderSpec(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        width=size,
        height=size,
        face_px=face,
        center=(c, c),
        ambient=1.0,
        diffuse=0.0,
        background="flat",
        bg_seed=1,
        jpeg=95,
        **kw,
    )


def synthetic_source(model, key="synthetic/mean", texture=None, yaw=0.0) -> ProfilingSource:
    """The mean face with a known texture as a 'source photo' (exact fit, given texture)."""
    cam = Camera.from_pose(yaw, 0, 0, 1.0)
    fit = Fit3D(
        vertices=model.mean.copy(),
        camera={**cam.to_dict()},
        coeffs=np.zeros(model.n_shape),
        residual=0.0,
        expression=np.zeros(model.n_expression),
    )
    img = np.full((64, 64, 3), 128, np.uint8)
    return ProfilingSource(
        key=key,
        image=img,
        points=np.zeros((19, 2)),
        visible=np.ones(19, bool),
        box=(0.0, 0.0, 63.0, 63.0),
        fit=fit,
        texture=texture if texture is not None else marked_texture(model),
        grey=False,
        meta={"source_set": "synthetic", "identity": key, "licence": "test"},
    )


def red_mask(img):
    i = img.astype(int)
    return (i[..., 0] > 170) & (i[..., 1] < 90) & (i[..., 2] < 90)


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (30, 10, 8), (-40, -15, -10), (60, 0, 5)])
def test_ground_truth_lands_on_the_rendered_marks(model, yaw, pitch, roll):
    src = synthetic_source(model)
    s = synthesize(src, clean_spec(yaw, pitch, roll), model=model)
    red = red_mask(s.image)
    ys, xs = np.nonzero(red)
    assert s.visible.sum() >= 12
    errs = []
    for k, (p, v) in enumerate(zip(s.landmarks, s.visible)):
        if not v:
            continue
        if k == CHIN:  # the chin vertex lies on the mesh's lower rim: its mark is cut in half
            ring = cv2.dilate(s.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            assert ring[int(round(p[1])), int(round(p[0]))]
            continue
        near = (np.abs(xs - p[0]) <= 4) & (np.abs(ys - p[1]) <= 4)
        assert near.sum() >= 3, f"no rendered mark at visible landmark {p}"
        errs.append(np.hypot(xs[near].mean() - p[0], ys[near].mean() - p[1]))
    assert max(errs) < 1.6 and np.mean(errs) < 0.8, errs


def test_visibility_flips_sides_with_the_yaw_sign(model):
    src = synthetic_source(model)
    for yaw in (30, 50, 70, 85):
        pos = synthesize(src, clean_spec(yaw), model=model)
        neg = synthesize(src, clean_spec(-yaw), model=model)
        # yaw > 0: the nose points to image-left, so the image-left side is the far side
        assert pos.visible[FAR_RIGHT].all() and neg.visible[FAR_LEFT].all()
        if yaw >= 65:
            assert not pos.visible[FAR_LEFT].any() and not neg.visible[FAR_RIGHT].any()
        assert np.array_equal(pos.visible, neg.visible[list(AFLW19_MIRROR)])
        # the landmarks mirror about the face box centre line (nearly)
        cx = (pos.box[0] + pos.box[2]) / 2
        cxn = (neg.box[0] + neg.box[2]) / 2
        mir = neg.landmarks[list(AFLW19_MIRROR)]
        assert np.allclose(pos.landmarks[:, 0] - cx, -(mir[:, 0] - cxn), atol=3.0)  # the mean is 2 mm asymmetric
    assert synthesize(src, clean_spec(0), model=model).visible.all()


def test_box_convention_roi_inside_and_face_size(model):
    cfg = ProfilingConfig()
    src = synthetic_source(model)
    for k in range(40):
        spec = sample_spec(sample_rng(7, "box", k), cfg, src, 0, model)
        s = synthesize(src, spec, model=model)
        x0, y0, x1, y1 = s.box
        assert cfg.face_px[0] - 1e-6 <= max(x1 - x0, y1 - y0) <= cfg.face_px[1] + 1e-6
        assert roi_inside(s.box, cfg.size, cfg.size)
        assert -90 <= spec.yaw <= 90 and -40 <= spec.pitch <= 40 and -20 <= spec.roll <= 20
        # every landmark (occluded ones too) lies inside the image
        assert (s.landmarks >= -0.5).all() and (s.landmarks <= cfg.size - 0.5).all()
    assert roi_inside((50, 50, 110, 110), 160, 160)
    assert not roi_inside((10, 50, 120, 110), 160, 160)
    with pytest.raises(ValueError):
        ProfilingConfig(size=100, face_px=(60, 80))
    assert ROI_SCALE * 110 <= 160


def _digest(samples):
    h = hashlib.sha256()
    for k, s in enumerate(samples):
        h.update(encode_sample(s))
        h.update(json.dumps(annotation(s, f"{k}.jpg"), sort_keys=True).encode())
    return h.hexdigest()


def test_generation_is_deterministic_per_seed_and_subset(model):
    tex = marked_texture(model, 128)
    a, b = synthetic_source(model, "syn/a", tex), synthetic_source(model, "syn/b", tex[:, ::-1].copy(), yaw=60)
    rng = np.random.default_rng(3)
    donor = (rng.uniform(0, 255, (90, 120, 3))).astype(np.uint8)
    pool = DonorPool([("d0", [(40.0, 30.0, 60.0, 50.0)])], lambda name: donor)

    def run(src, n, seed):
        return profile_source(src, n, seed, ProfilingConfig(), pool, model)

    first = _digest(run(a, 3, 0) + run(b, 3, 0))
    assert first == _digest(run(a, 3, 0) + run(b, 3, 0))  # same seed: identical bytes
    assert first != _digest(run(a, 3, 1) + run(b, 3, 1))  # another seed differs
    assert _digest(run(b, 2, 0)) == _digest(run(b, 3, 0)[:2])  # fewer per source: a prefix
    # a profile source (fitted yaw 60 > 45) is only rendered on its own side
    assert all(s.spec.yaw >= 0 for s in run(b, 6, 0))


def test_prepare_source_round_trip(model):
    """Render the marked mean face, fit it from its own landmarks, lift and re-render: the landmarks of
    the re-render land on the marks of the lifted texture."""
    spec = clean_spec(10, 5, 0, size=220, face=150.0)
    photo = synthesize(synthetic_source(model), spec, model=model)
    src = prepare_source(
        "syn/photo", photo.image, photo.landmarks, photo.visible, {"source_set": "synthetic"}, uv_size=256
    )
    assert src.fit.residual < 1.0 and abs(src.fit.camera["yaw"] - 10) < 4
    assert src.texture.shape == (256, 256, 3) and not src.grey
    again = synthesize(src, clean_spec(-20), model=model)
    red = red_mask(again.image)
    ys, xs = np.nonzero(red)
    hits = 0
    for p, v in zip(again.landmarks, again.visible):
        near = (np.abs(xs - p[0]) <= 4) & (np.abs(ys - p[1]) <= 4)
        if v and near.sum() >= 3 and np.hypot(xs[near].mean() - p[0], ys[near].mean() - p[1]) < 2.5:
            hits += 1
    assert hits >= 14, hits
    with pytest.raises(FitError):
        prepare_source(
            "bad",
            photo.image,
            photo.landmarks + np.random.default_rng(0).normal(0, 25, (19, 2)),
            photo.visible,
            max_residual=0.01,
        )


def test_annotation_line_format(model):
    src = synthetic_source(model)
    s = profile_source(src, 1, 0, ProfilingConfig(), None, model)[0]
    line = json.loads(json.dumps(annotation(s, "images/x.jpg")))
    assert set(line) >= {
        "image",
        "box",
        "landmarks",
        "visible",
        "known",
        "yaw",
        "pitch",
        "roll",
        "source_set",
        "identity",
        "render",
        "licence",
    }
    assert len(line["landmarks"]) == NUM_LANDMARKS and line["known"] == [1] * NUM_LANDMARKS
    assert set(line["visible"]) <= {0, 1}
    assert line["render"]["jpeg"] == s.spec.jpeg
    assert cv2.imdecode(np.frombuffer(encode_sample(s), np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == (160, 160)


def test_fill_mouth_only_fills_enclosed_holes():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    mask[15:20, 15:25] = False  # enclosed hole
    mask[25:30, 0:12] = False  # notch open to the border
    img = np.full((40, 40, 3), 200, np.uint8)
    img[~mask] = (0, 0, 255)
    out, m = fill_mouth(img, mask)
    assert m[15:20, 15:25].all() and not m[25:30, 0:5].any()
    assert (out[15:20, 15:25] < 100).all() and (out[27, 2] == (0, 0, 255)).all()


def test_backgrounds_and_helpers():
    rng = np.random.default_rng(0)
    img = np.zeros((200, 200, 3), np.uint8)
    img[:, :] = (10, 200, 10)
    img[30:70, 30:70] = (255, 0, 0)  # the "face"
    for _ in range(10):
        p = border_patch(rng, img, [(30, 30, 70, 70)], 50, 50, head=(0, 0, 0, 0))
        assert p.shape == (50, 50, 3) and (p[..., 0] < 50).all()  # nothing of the face
    assert border_patch(rng, img, [(0, 0, 200, 200)], 50, 50) is None
    src = np.array([[0, 0], [10, 0], [0, 10], [5, 7]], float)
    ang = np.radians(20)
    R = 1.5 * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    M = similarity_transform(src, src @ R.T + [3, 4])
    assert np.allclose(M[:, :2], R) and np.allclose(M[:, 2], [3, 4])
    sheet = contact_sheet([np.zeros((10, 12, 3), np.uint8), np.zeros((8, 8), np.uint8)] * 3, ncols=4)
    assert sheet.shape == (2 * 12 + 2, 4 * 14 + 2, 3)
    assert NuisanceConfig().jpeg[0] < NuisanceConfig().jpeg[1]


def test_make_profiling_cli_is_deterministic(tmp_path):
    """The CLI end to end on a stand-in data folder (two openly licensed fixture photos posing as a grey
    set): a subset (--limit-sources 1) reproduces the full run's files byte for byte, another seed
    gives other files."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    fixtures = repo / "tests" / "fixtures"
    import facedata.profiling as make_profiling

    orl = tmp_path / "data" / "faces" / "orl"
    orl.mkdir(parents=True)
    for src, dst in (("einstein.jpg", "s001_00.jpg"), ("takeo.png", "s002_00.png")):
        img = cv2.imread(str(fixtures / src))
        k = 200 / max(img.shape[:2])
        cv2.imwrite(str(orl / dst), cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else img)
    (orl / "labels.csv").write_text("file,subject,index_in_subject\ns001_00.jpg,1,0\ns002_00.png,2,0\n")
    common = ["--data", str(tmp_path / "data"), "--sets", "grey", "--grey-sets", "orl", "--per-source", "2"]
    outs = {}
    for name, extra in (("a", []), ("b", ["--limit-sources", "1"]), ("c", ["--limit-sources", "1", "--seed", "1"])):
        outs[name] = tmp_path / name
        assert make_profiling.main(common + ["--out", str(outs[name])] + extra) == 0
    lines = [json.loads(x) for x in (outs["a"] / "annotations.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(roi_inside(r["box"], 160, 160) and r["known"] == [1] * 19 for r in lines)
    sub = sorted(p.relative_to(outs["b"]) for p in (outs["b"] / "images").rglob("*.jpg"))
    assert len(sub) == 2 and all((outs["a"] / p).read_bytes() == (outs["b"] / p).read_bytes() for p in sub)
    b_lines = (outs["b"] / "annotations.jsonl").read_text().splitlines()
    assert b_lines == (outs["a"] / "annotations.jsonl").read_text().splitlines()[:2]
    assert all((outs["c"] / p).read_bytes() != (outs["b"] / p).read_bytes() for p in sub)
    with pytest.raises(ConfigError):
        make_profiling.main(common + ["--out", str(outs["a"])])  # exists: needs --overwrite


def test_pose_band_draws_only_hard_poses_and_leaves_default_draws_alone(model):
    src = synthetic_source(model)  # fitted frontal: may be shown on both sides
    band = ProfilingConfig(min_abs_yaw=65.0, min_abs_pitch=15.0)
    specs = [sample_spec(sample_rng(3, "band", k), band, src, 0, model) for k in range(60)]
    yaw = np.array([s.yaw for s in specs])
    pitch = np.array([s.pitch for s in specs])
    assert (np.abs(yaw) >= 65).all() and (np.abs(yaw) <= 90).all()
    assert (np.abs(pitch) >= 15).all() and (np.abs(pitch) <= 40).all()
    assert (yaw > 0).any() and (yaw < 0).any() and (pitch > 0).any() and (pitch < 0).any()
    side = synthetic_source(model, key="synthetic/right", yaw=60.0)  # a profile source: its own side only
    own = [sample_spec(sample_rng(3, "side", k), band, side, 0, model).yaw for k in range(30)]
    assert all(65 <= y <= 90 for y in own)
    # off (the default): the same draws as a config without the fields set
    a = sample_spec(sample_rng(3, "band", 0), ProfilingConfig(), src, 0, model)
    b = sample_spec(sample_rng(3, "band", 0), ProfilingConfig(min_abs_yaw=0.0, min_abs_pitch=0.0), src, 0, model)
    assert a == b and abs(a.pitch) < 40
    for bad in ({"min_abs_yaw": 90.0}, {"min_abs_pitch": -1.0}, {"min_abs_pitch": 45.0}):
        with pytest.raises(ValueError):
            ProfilingConfig(**bad)


def test_pitch_range_restricts_the_band_to_one_side(model):
    src = synthetic_source(model)
    up = ProfilingConfig(min_abs_yaw=65.0, min_abs_pitch=15.0, pitch=(15.0, 40.0))
    pitch = np.array([sample_spec(sample_rng(4, "up", k), up, src, 0, model).pitch for k in range(40)])
    assert (pitch >= 15).all() and (pitch <= 40).all() and np.ptp(pitch) > 10
    for bad in ({"pitch": (10.0, -10.0)}, {"pitch": (-200.0, 0.0)}, {"pitch": (0.0, 10.0), "min_abs_pitch": 15.0}):
        with pytest.raises(ValueError):
            ProfilingConfig(**bad)
