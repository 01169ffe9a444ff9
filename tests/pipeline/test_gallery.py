"""Gallery enrollment, the signature cache (reuse, incremental update, corruption, concurrent
writers, read-only locations) and the matching maths (masked cosine, fusion, indexes).

A tiny in-process descriptor (``test-fake``: an 8x8 thumbnail of the image) keeps these fast;
the pipeline runs with ``cropped=True`` so no detector is loaded.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from pipeline import gallery as G
from pipeline.errors import ConfigError, GalleryError
from pipeline.gallery import enrol as E
from pipeline.gallery import lock as L
from pipeline.index import (
    FaissIndex,
    NumpyIndex,
    cosine_scores,
    faiss_available,
    fuse_scores,
    make_index,
    masked_cosine_scores,
    top_k,
)
from pipeline.pipeline import Pipeline
from pipeline.registry import DESCRIPTORS
from pipeline.types import Signature

FAKE_SRC = '''
import numpy as np
from PIL import Image
from pipeline.errors import NoFaceFoundError
from pipeline.types import Signature

class FakeDescriptor:
    """8x8 gray thumbnail, centred and L2-normalised; a uniform image has 'no face'."""
    name = "test-fake"
    needs_3d = False
    needs_landmarks = False
    calls = 0
    delay = 0.0

    def describe(self, image, face):
        type(self).calls += 1
        if self.delay:
            import time
            time.sleep(self.delay)
        g = np.asarray(Image.fromarray(image).convert("L").resize((8, 8)), dtype=np.float32).ravel()
        g -= g.mean()
        n = np.linalg.norm(g)
        if n < 1e-6:
            raise NoFaceFoundError("no face found")
        return Signature(g / n, None, self.name)
'''
_fake_ns: dict = {"__name__": __name__}
exec(FAKE_SRC, _fake_ns)  # the concurrency test runs the same source in subprocesses
FakeDescriptor = _fake_ns["FakeDescriptor"]
DESCRIPTORS.register("test-fake", FakeDescriptor, "tests only")


@pytest.fixture
def fake():
    FakeDescriptor.calls = 0
    return FakeDescriptor


def pipe() -> Pipeline:
    return Pipeline(descriptor="test-fake", cropped=True)


def make_image(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def gal(tmp_path):
    """3 identities: 'Mary Ann' (2 images), 'J. R. R' (1), 'bob' (1)."""
    g = tmp_path / "gallery"
    make_image(g / "Mary Ann" / "a.png", 1)
    make_image(g / "Mary Ann" / "b.png", 2)
    make_image(g / "J. R. R.png", 3)
    make_image(g / "bob.png", 4)
    return g


def test_unicode_identity_roundtrip(tmp_path, fake):
    make_image(tmp_path / "g" / "Zoë Ñ.png", 1)
    make_image(tmp_path / "g" / "李.png", 2)
    G.enroll(pipe(), tmp_path / "g", progress=False)
    fake.calls = 0
    g = G.enroll(pipe(), tmp_path / "g", progress=False)
    assert fake.calls == 0 and sorted(g.identities) == sorted(["Zoë Ñ", "李"])


def cache_entries(path) -> list[dict]:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(z["meta"][0].decode())["entries"]


# -- enrollment and cache ------------------------------------------------------------------------
def test_names_with_spaces_and_dots(gal, fake):
    gl = G.enroll(pipe(), gal, progress=False)
    assert sorted(set(gl.identities)) == ["J. R. R", "Mary Ann", "bob"]
    probe = Image.open(gal / "J. R. R.png")
    v = FakeDescriptor().describe(np.asarray(probe), None).vector
    best = gl.match(v, top_k=3)
    assert best[0][0] == "J. R. R" and best[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in best] == sorted((s for _, s in best), reverse=True)


def test_a_gallery_one_level_too_high_is_warned_about(tmp_path, caplog):
    """``--gallery examples`` instead of ``examples/gallery``: the folders ``gallery`` and ``probes``
    would be enrolled as two identities; they still are (a user may mean it), with a warning."""
    for sub in ("gallery", "probes", "alice"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / sub / "a.png")
    with caplog.at_level(logging.WARNING):
        items = G.scan_gallery(tmp_path)
    assert sorted({i for i, _ in items}) == ["alice", "gallery", "probes"]
    warned = [r.getMessage() for r in caplog.records if "ONE identity" in r.getMessage()]
    assert len(warned) == 2 and not any("alice" in w for w in warned)


def test_empty_and_missing_gallery(tmp_path, fake):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(GalleryError, match="holds no images"):
        G.enroll(pipe(), tmp_path / "empty", progress=False)
    with pytest.raises(GalleryError, match="is not a folder"):
        G.enroll(pipe(), tmp_path / "nope", progress=False)


def test_cache_reused_on_second_run(gal, fake):
    g1 = G.enroll(pipe(), gal, progress=False)
    assert fake.calls == 4 and g1.stats["described"] == 4
    assert (gal / G.DEFAULT_CACHE_NAME).exists()
    mtime = (gal / G.DEFAULT_CACHE_NAME).stat().st_mtime_ns
    g2 = G.enroll(pipe(), gal, progress=False)
    assert fake.calls == 4 and g2.stats == {**g1.stats, "cached": 4, "described": 0}
    assert (gal / G.DEFAULT_CACHE_NAME).stat().st_mtime_ns == mtime  # nothing changed: not rewritten
    np.testing.assert_array_equal(g1.vectors, g2.vectors)
    assert g1.identities == g2.identities and g1.paths == g2.paths


def test_cache_updated_incrementally(gal, fake):
    G.enroll(pipe(), gal, progress=False)
    make_image(gal / "bob.png", 40)  # changed content
    make_image(gal / "carol" / "c1.png", 5)  # added
    (gal / "Mary Ann" / "b.png").unlink()  # removed
    fake.calls = 0
    g = G.enroll(pipe(), gal, progress=False)
    assert fake.calls == 2 and g.stats["described"] == 2 and g.stats["cached"] == 2 and g.stats["removed"] == 2
    ents = cache_entries(gal / G.DEFAULT_CACHE_NAME)
    assert sorted(e["path"] for e in ents) == ["J. R. R.png", "Mary Ann/a.png", "bob.png", "carol/c1.png"]
    assert {e["path"]: e["sha256"] for e in ents}["bob.png"] == G.file_sha256(gal / "bob.png")
    # a renamed file (same content) is not described again
    (gal / "carol" / "c1.png").rename(gal / "carol" / "renamed.png")
    fake.calls = 0
    g = G.enroll(pipe(), gal, progress=False)
    assert fake.calls == 0 and "carol" in g.identities


def test_unreadable_and_faceless_files_skipped_and_cached(gal, fake, caplog):
    (gal / "broken.jpg").write_text("not an image")
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(gal / "blank.png")  # fake: 'no face'
    with caplog.at_level(logging.WARNING, logger="pipeline.gallery"):
        g = G.enroll(pipe(), gal, progress=False)
    assert sorted(set(g.identities)) == ["J. R. R", "Mary Ann", "bob"]
    assert {p.rsplit("/", 1)[-1] for p, _ in g.failures} == {"broken.jpg", "blank.png"}
    text = caplog.text
    assert "broken.jpg" in text and "blank.png" in text and "no face" in text
    status = {e["path"]: e["status"] for e in cache_entries(gal / G.DEFAULT_CACHE_NAME)}
    assert status["broken.jpg"] == "failed" and status["blank.png"] == "failed"
    fake.calls = 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline.gallery"):
        g = G.enroll(pipe(), gal, progress=False)
    assert fake.calls == 0 and g.stats["described"] == 0  # failures are not retried while unchanged
    assert "broken.jpg" in caplog.text  # ... but still reported


class _Buggy(FakeDescriptor):
    """Raises an unexpected (non-FaceError) exception on one image."""

    attempts = 0

    def describe(self, image, face):
        type(self).attempts += 1
        if image.shape[0] == 30:
            raise RuntimeError("boom")
        return super().describe(image, face)


DESCRIPTORS.register("test-buggy", _Buggy, "tests only")


def test_internal_error_on_one_image_is_skipped_not_cached(gal, fake, caplog):
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(gal / "Zoë.png")
    p = Pipeline(descriptor="test-buggy", cropped=True)
    with caplog.at_level(logging.WARNING, logger="pipeline.gallery"):
        g = G.enroll(p, gal, progress=False)
    assert "Zoë.png" in caplog.text and "RuntimeError: boom" in caplog.text and len(g.identities) == 4
    paths = [e["path"] for e in cache_entries(gal / G.DEFAULT_CACHE_NAME)]
    assert "Zoë.png" not in paths and len(paths) == 4  # not cached: retried next time
    _Buggy.attempts = 0
    G.enroll(p, gal, progress=False)
    assert _Buggy.attempts == 1


class _Interrupted(FakeDescriptor):
    """Simulates Ctrl-C on the third image described."""

    def describe(self, image, face):
        if type(self).calls == 2:
            raise KeyboardInterrupt
        return super().describe(image, face)


DESCRIPTORS.register("test-interrupted", _Interrupted, "tests only")


def test_interrupted_enrollment_resumes_from_checkpoint(gal, fake, monkeypatch):
    monkeypatch.setattr(E, "CHECKPOINT_SECONDS", 0.0)  # read where it is used
    _Interrupted.calls = 0
    with pytest.raises(KeyboardInterrupt):
        G.enroll(Pipeline(descriptor="test-interrupted", cropped=True), gal, progress=False)
    assert len(G.read_cache(gal / G.DEFAULT_CACHE_NAME)) == 2  # the two images described before Ctrl-C
    _Interrupted.calls = 10
    g = G.enroll(Pipeline(descriptor="test-interrupted", cropped=True), gal, progress=False)
    assert g.stats["cached"] == 2 and g.stats["described"] == 2


def test_all_images_fail_is_clear_error(tmp_path, fake):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "x.jpg").write_text("nope")
    with pytest.raises(GalleryError, match="could be enrolled"):
        G.enroll(pipe(), tmp_path / "g", progress=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong_version", "bad_row", "stale"])
def test_corrupt_cache_is_rebuilt(gal, fake, caplog, damage):
    cp = gal / G.DEFAULT_CACHE_NAME
    G.enroll(pipe(), gal, progress=False)
    data = cp.read_bytes()
    if damage == "garbage":
        cp.write_bytes(b"\x00garbage\xff" * 50)
    elif damage == "truncated":
        cp.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        cp.write_bytes(b"")
    elif damage in ("wrong_version", "bad_row"):
        with np.load(cp, allow_pickle=False) as z:
            meta, vec, msk = json.loads(z["meta"][0].decode()), z["vectors"], z["masks"]
        if damage == "wrong_version":
            meta["version"] = 999
        else:
            meta["entries"][0]["row"] = 77
        with cp.open("wb") as f:
            np.savez(f, meta=np.array([json.dumps(meta).encode()]), vectors=vec, masks=msk)
    fake.calls = 0
    p = pipe() if damage != "stale" else Pipeline(descriptor="test-fake", cropped=True, min_face=41)
    with caplog.at_level(logging.WARNING, logger="pipeline.gallery"):
        g = G.enroll(p, gal, progress=False)
    assert "rebuilding" in caplog.text and fake.calls == 4 and len(g.identities) == 4
    assert len(G.read_cache(cp, G.pipeline_cache_key(p)[0])) == 4  # valid again
    fake.calls = 0
    G.enroll(p, gal, progress=False)
    assert fake.calls == 0


def test_explicit_cache_path_and_no_cache(gal, fake, tmp_path):
    cp = tmp_path / "elsewhere" / "c.npz"
    G.enroll(pipe(), gal, progress=False, cache=cp)
    assert cp.exists() and not (gal / G.DEFAULT_CACHE_NAME).exists()
    fake.calls = 0
    G.enroll(pipe(), gal, progress=False, cache=cp)
    assert fake.calls == 0
    G.enroll(pipe(), gal, progress=False, cache=None)
    assert fake.calls == 4 and not (gal / G.DEFAULT_CACHE_NAME).exists()


@pytest.mark.parametrize("how", ["denied", "occupied"])
def test_read_only_location_falls_back(gal, fake, monkeypatch, caplog, how):
    """The lock file cannot be made: 'denied' as in a read-only folder (what filelock raises
    there), 'occupied' by a folder of that name (the real filelock fails on it)."""
    G.enroll(pipe(), gal, progress=False)  # an existing cache is still read...
    make_image(gal / "dave.png", 6)

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    if how == "denied":
        monkeypatch.setattr(L, "_open_lock", denied)
    else:
        L.lock_path(gal / G.DEFAULT_CACHE_NAME).unlink()
        L.lock_path(gal / G.DEFAULT_CACHE_NAME).mkdir()
    fake.calls = 0
    with caplog.at_level(logging.WARNING, logger="pipeline.gallery"):
        g = G.enroll(pipe(), gal, progress=False)
    assert fake.calls == 1 and "dave" in g.identities  # ... and only the new image is described
    assert caplog.text.count("continuing without caching") == 1
    assert len(cache_entries(gal / G.DEFAULT_CACHE_NAME)) == 4  # not written


def test_two_processes_enrolling_at_once(gal, tmp_path):
    for i in range(12):
        make_image(gal / f"extra{i:02d}.png", 100 + i)
    script = tmp_path / "enroll.py"
    script.write_text(
        "import sys\n"
        + FAKE_SRC
        + textwrap.dedent("""
        from pipeline.gallery import enroll
        from pipeline.pipeline import Pipeline
        from pipeline.registry import DESCRIPTORS
        FakeDescriptor.delay = 0.03
        DESCRIPTORS.register("test-fake", FakeDescriptor)
        g = enroll(Pipeline(descriptor="test-fake", cropped=True), sys.argv[1], progress=False)
        print(len(g.identities), FakeDescriptor.calls)
    """)
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(gal)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    counts = [tuple(map(int, o[0].split())) for o in outs]
    assert all(n == 16 for n, _ in counts)
    assert sum(c for _, c in counts) == 16  # the lock serialises them: the second reuses the first's work
    recs = G.read_cache(gal / G.DEFAULT_CACHE_NAME)
    assert len(recs) == 16 and all(r.entry.status == "ok" for r in recs)
    assert not [p for p in gal.iterdir() if p.name.endswith(".tmp")]  # no temp files left


def test_lock_timeout_continues_without_saving(gal, fake, caplog):
    cp = gal / G.DEFAULT_CACHE_NAME
    with G.cache_lock(cp) as held:
        assert held
        with caplog.at_level(logging.WARNING, logger="pipeline.gallery"):
            g = G.enroll(pipe(), gal, progress=False, lock_timeout=0.2)
    assert len(g.identities) == 4 and "stayed locked" in caplog.text and not cp.exists()


def test_lock_waits_for_its_holder_then_is_held(tmp_path, caplog):
    """A second holder (another lock object: in this thread or another process alike) waits
    until the first one leaves, then gets the lock; the lock file stays, with umask permissions."""
    import os
    import threading

    cp = tmp_path / "new" / "c.npz"
    entered, leave = threading.Event(), threading.Event()

    def hold():
        with G.cache_lock(cp) as held:
            assert held
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(10)
    threading.Timer(0.3, leave.set).start()
    old = os.umask(0o022)
    try:
        with caplog.at_level(logging.WARNING, logger="pipeline.gallery"), G.cache_lock(cp, timeout=None) as held:
            assert held and leave.is_set()
    finally:
        os.umask(old)
        leave.set()
        t.join(10)
    assert "waiting for another process" in caplog.text and "stayed locked" not in caplog.text
    assert os.stat(L.lock_path(cp)).st_mode & 0o777 == 0o644
    with G.cache_lock(cp, timeout=0) as held:  # free again
        assert held


def test_cache_file_format(tmp_path):
    """The documented layout (so caches written by earlier versions keep working), written
    atomically with the permissions a plain open() gives."""
    import os

    recs = [
        G.CacheRecord(
            "a/1.png", "a", "0" * 64, G.CacheEntry("ok", "", np.ones(4, np.float32) / 2, np.array([1, 0], np.float32))
        ),
        G.CacheRecord("b.png", "b", "1" * 64, G.CacheEntry("failed", "no face found")),
        G.CacheRecord("c.png", "c", "2" * 64, G.CacheEntry("ok", "", np.full(4, 0.5, np.float32))),
    ]
    cp = tmp_path / "sub" / "c.npz"
    old = os.umask(0o022)
    try:
        G.write_cache(cp, "k", {"x": 1}, recs)
    finally:
        os.umask(old)
    assert os.stat(cp).st_mode & 0o777 == 0o644 and [p.name for p in cp.parent.iterdir()] == ["c.npz"]
    with np.load(cp, allow_pickle=False) as z:
        assert sorted(z.files) == ["masks", "meta", "vectors"]
        assert z["meta"].dtype.kind == "S" and z["meta"].shape == (1,)
        meta = json.loads(z["meta"][0].decode("utf-8"))
        assert z["vectors"].dtype == np.float32 and z["vectors"].shape == (2, 4)
        np.testing.assert_array_equal(z["masks"], [[1, 0], [1, 1]])
    assert sorted(meta) == ["dim", "entries", "format", "key", "n_regions", "pipeline", "version", "written"]
    assert (meta["format"], meta["version"], meta["key"], meta["dim"], meta["n_regions"]) == (
        "godp-face-gallery-cache",
        1,
        "k",
        4,
        2,
    )
    assert meta["entries"][1] == {
        "path": "b.png",
        "identity": "b",
        "sha256": "1" * 64,
        "status": "failed",
        "message": "no face found",
        "row": -1,
        "has_mask": False,
    }
    assert [(e["row"], e["has_mask"]) for e in meta["entries"]] == [(0, True), (-1, False), (1, False)]
    back = G.read_cache(cp, "k")
    assert [(r.path, r.entry.status, r.entry.mask is None) for r in back] == [
        ("a/1.png", "ok", False),
        ("b.png", "failed", True),
        ("c.png", "ok", True),
    ]
    with pytest.raises(G.CacheInvalid, match="another pipeline configuration"):
        G.read_cache(cp, "other")


# -- matching maths ------------------------------------------------------------------------------
def test_masked_cosine_on_hand_made_vectors():
    # 3 regions of 2 values each
    p = np.array([1, 0, 0, 1, 3, 4], np.float32)
    g = np.array([[1, 0, 0, -1, 3, 4], [2, 0, 0, 2, 0, 0]], np.float32)
    pm = np.array([True, True, False])
    gm = np.array([[True, False, True], [True, True, True]])
    s = masked_cosine_scores(p, pm, g, gm)
    # row 0: joint = {0}: <(1,0),(1,0)> / (1 * 1) = 1
    # row 1: joint = {0, 1}: (2 + 2) / (sqrt(2) * sqrt(8)) = 1
    np.testing.assert_allclose(s, [1.0, 1.0], atol=1e-6)
    gm2 = np.array([[True, True, False], [False, False, True]])
    s2 = masked_cosine_scores(p, pm, g, gm2)
    # row 0: joint = {0, 1}: (1 - 1) / (sqrt 2 sqrt 2) = 0; row 1: no joint region -> 0
    np.testing.assert_allclose(s2, [0.0, 0.0], atol=1e-6)
    # float visibility: >= 0.5 counts as visible
    s3 = masked_cosine_scores(p, np.array([0.9, 0.6, 0.1]), g, gm.astype(np.float32))
    np.testing.assert_allclose(s3, s, atol=1e-6)


def test_masked_equals_plain_cosine_when_all_visible():
    rng = np.random.default_rng(0)
    p, g = rng.normal(size=12).astype(np.float32), rng.normal(size=(5, 12)).astype(np.float32)
    plain = cosine_scores(p, g)
    ref = g @ p / (np.linalg.norm(g, axis=1) * np.linalg.norm(p))
    np.testing.assert_allclose(plain, ref, atol=1e-6)
    np.testing.assert_allclose(masked_cosine_scores(p, np.ones(4, bool), g, np.ones((5, 4), bool)), plain, atol=1e-6)
    np.testing.assert_allclose(masked_cosine_scores(p, None, g, np.zeros((5, 4), bool)), plain, atol=1e-6)
    with pytest.raises(ValueError):
        masked_cosine_scores(p, np.ones(5, bool), g, np.ones((5, 5), bool))  # 12 not divisible by 5


def test_numpy_index_masked_matches_pure_function():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(6, 12)).astype(np.float32)
    gm = rng.random((6, 4)) > 0.3
    p, pm = rng.normal(size=12).astype(np.float32), rng.random(4) > 0.3
    idx = NumpyIndex(g, np.arange(6), 6, gm)
    ref = masked_cosine_scores(p, pm, g, gm)
    np.testing.assert_allclose(idx.template_scores(p[None], [pm])[0], ref, atol=1e-6)
    np.testing.assert_allclose(idx.template_scores(p[None], [None])[0], cosine_scores(p, g), atol=1e-6)


def test_fusion_max_vs_mean():
    scores = np.array([0.9, 0.1, 0.6, 0.5, 0.55], np.float32)
    groups = np.array([0, 0, 1, 1, 2])
    np.testing.assert_allclose(fuse_scores(scores, groups, 3, "max"), [0.9, 0.6, 0.55])
    np.testing.assert_allclose(fuse_scores(scores, groups, 3, "mean"), [0.5, 0.55, 0.55])
    i, s = top_k(fuse_scores(scores, groups, 3, "mean"), 2)
    assert list(i) == [1, 2]  # tie 0.55: the lower index first
    with pytest.raises(ConfigError):
        fuse_scores(scores, groups, 3, "median")
    # the same through Gallery: identity A has one perfect and one poor template
    v = np.eye(3, dtype=np.float32)
    gl_max = G.Gallery(np.stack([v[0], v[1], 0.8 * v[0] + 0.6 * v[2]]), ["A", "A", "B"], ["a1", "a2", "b"])
    gl_mean = G.Gallery(gl_max.vectors, gl_max.identities, gl_max.paths, fusion="mean")
    assert gl_max.match(v[0])[0] == ("A", pytest.approx(1.0))
    assert gl_mean.match(v[0])[0] == ("B", pytest.approx(0.8))
    assert gl_mean.match(v[0])[1] == ("A", pytest.approx(0.5))


def test_top_k_batched_and_short():
    s = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])
    i, v = top_k(s, 2)
    assert i.tolist() == [[1, 2], [0, 2]] and v.shape == (2, 2)
    i, v = top_k(s[0], 10)
    assert i.tolist() == [1, 2, 0]


def test_faiss_missing_is_config_error(monkeypatch):
    if faiss_available():
        monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(ConfigError, match="faiss-cpu"):
        make_index("faiss", np.eye(3), np.arange(3), 3)


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed (optional extra .[faiss])")
@pytest.mark.parametrize("fusion", ["max", "mean"])
def test_faiss_agrees_with_numpy(fusion):
    rng = np.random.default_rng(2)
    v = rng.normal(size=(300, 32)).astype(np.float32)
    groups = rng.integers(0, 40, 300)
    groups[:40] = np.arange(40)
    q = rng.normal(size=(7, 32)).astype(np.float32)
    a = NumpyIndex(v, groups, 40, fusion=fusion).search(q, 5)
    b = FaissIndex(v, groups, 40, fusion=fusion).search(q, 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)
    # masks: falls back to numpy
    assert isinstance(make_index("faiss", v, groups, 40, np.ones((300, 4))), NumpyIndex)


def test_probe_signature_types_roundtrip():
    # a Signature with a mask goes through Gallery.match with jointly visible regions
    v = np.array([1, 0, 0, 1], np.float32)
    gl = G.Gallery(
        np.array([[1, 0, 0, -1], [0, 1, 1, 0]], np.float32) / np.sqrt(2),
        ["x", "y"],
        ["x", "y"],
        masks=np.array([[1, 1], [1, 1]], np.float32),
    )
    sig = Signature(v / np.sqrt(2), np.array([True, False]))
    assert gl.match(sig.vector, 2, sig.mask)[0] == ("x", pytest.approx(1.0))
    assert gl.match(sig.vector, 2)[0][1] == pytest.approx(0.0, abs=1e-6)  # unmasked: orthogonal to both


# -- file-system oddities and a hard kill (issue 11) ----------------------------------------------
def test_gallery_oddities_are_skipped_or_kept_apart(gal, fake, caplog):
    import os

    make_image(gal / "Alice" / "1.png", 20)
    make_image(gal / "alice" / "1.png", 21)  # differs by case only: two identities, a warning
    os.symlink(".", gal / "me")  # a folder symlink back into the gallery
    os.symlink("loop.png", gal / "loop.png")  # a symlink loop
    os.symlink("nowhere.png", gal / "dangling.png")  # a dangling link
    (gal / "folder.jpg").mkdir()  # a folder named like an image: an identity folder, empty
    (gal / "zero.png").write_bytes(b"")  # zero bytes: a failed entry
    with caplog.at_level(logging.WARNING):
        g = G.enroll(pipe(), gal, progress=False)
    assert sorted(set(g.identities)) == ["Alice", "J. R. R", "Mary Ann", "alice", "bob"]
    assert "differ only by letter case" in caplog.text and "symlink back into the gallery" in caplog.text
    assert "symlink loop" in caplog.text and "zero.png" in caplog.text
    assert fake.calls == 6  # nothing enrolled twice through the 'me' link


def test_enrollment_killed_half_way_loses_nothing(gal, tmp_path):
    """SIGKILL an enrolling process mid-way (after at least one checkpoint): the cache on disk is
    a valid earlier state, and the next run describes only what is missing."""
    import signal
    import time

    for i in range(30):
        make_image(gal / f"p{i:02d}.png", 200 + i)
    script = tmp_path / "enroll_slow.py"
    script.write_text(
        "import sys\n"
        + FAKE_SRC
        + textwrap.dedent("""
        from pipeline import gallery
        from pipeline.gallery import enrol
        from pipeline.pipeline import Pipeline
        from pipeline.registry import DESCRIPTORS
        FakeDescriptor.delay = float(sys.argv[2])
        enrol.CHECKPOINT_SECONDS = 0.0  # save after every image
        DESCRIPTORS.register("test-fake", FakeDescriptor)
        g = gallery.enroll(Pipeline(descriptor="test-fake", cropped=True), sys.argv[1], progress=False)
        print(len(set(g.identities)), FakeDescriptor.calls)
    """)
    )
    cp = gal / G.DEFAULT_CACHE_NAME
    p = subprocess.Popen(
        [sys.executable, str(script), str(gal), "0.2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until a few checkpoints are on disk
        try:
            if len(G.read_cache(cp)) >= 5:
                break
        except Exception:
            pass
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    done = len(G.read_cache(cp))  # still a valid cache
    assert 5 <= done < 34
    r = subprocess.run(
        [sys.executable, str(script), str(gal), "0"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    n_ids, described = map(int, r.stdout.split())
    assert n_ids == 33 and described == 34 - done  # only the missing images
    assert len(G.read_cache(cp)) == 34
    assert not [q for q in gal.iterdir() if ".tmp" in q.name]
