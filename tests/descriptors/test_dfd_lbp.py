"""DFD and LBP on synthetic UV textures: shapes, masks, and identity discrimination."""

import numpy as np
import pytest

from descriptors.dfd import DfdConfig, DfdModel, fisher_filters, learn_dfd, pdv
from descriptors.lbp import lbp_describe, uniform_table
from descriptors.uvprep import region_visibility

S = 64


def _identity_textures(n_ids=6, per_id=4, seed=0):
    """Each identity = a fixed random smooth pattern; images = pattern + noise + gain."""
    import cv2

    rng = np.random.default_rng(seed)
    imgs, masks, labels = [], [], []
    for c in range(n_ids):
        base = cv2.GaussianBlur(rng.random((S, S)).astype(np.float32), (0, 0), 1.5)
        base = (base - base.min()) / (np.ptp(base) + 1e-6)
        for _ in range(per_id):
            img = np.clip(base * rng.uniform(0.8, 1.2) + rng.normal(0, 0.04, (S, S)), 0, 1)
            imgs.append(np.repeat((img * 255).astype(np.uint8)[..., None], 3, 2))
            masks.append(np.ones((S, S), np.float32))
            labels.append(c)
    return imgs, masks, np.array(labels)


def test_uniform_lbp_table_and_masking():
    t = uniform_table(8)
    assert len(np.unique(t)) == 59 and (t < 58).sum() == 58
    rng = np.random.default_rng(1)
    img = (rng.random((S, S, 3)) * 255).astype(np.uint8)
    m = np.ones((S, S), np.float32)
    m[:, : S // 2] = 0
    sig = lbp_describe(img, m)
    assert sig.vector.shape == (16 * 16 * 59,) and np.isclose(np.linalg.norm(sig.vector), 1)
    assert sig.mask.sum() == 128 and not sig.mask.reshape(16, 16)[:, :8].any()


def test_pdv_values():
    img = np.arange(25, dtype=np.float32).reshape(5, 5)
    d = pdv(img, 1)
    assert d.shape == (5, 5, 8)
    assert sorted(d[2, 2].tolist()) == sorted([-6, -5, -4, -1, 1, 4, 5, 6])


def test_fisher_filters_pick_the_discriminant_direction():
    rng = np.random.default_rng(0)
    N, P, D = 40, 30, 4
    labels = np.repeat(np.arange(10), 4)
    x = rng.normal(0, 1, (N, P, D))  # within-class noise in all dims
    x[..., 0] += labels[:, None] * 3.0  # identity only shows in dim 0
    W = fisher_filters(x, np.ones((N, P), bool), labels, 1)
    assert abs(W[0, 0]) > 0.95


def test_learned_dfd_separates_identities():
    imgs, masks, labels = _identity_textures()
    cfg = DfdConfig(size=S, n_codes=16, n_filters=4, grid=8, block_grid=2)
    model = learn_dfd(imgs, masks, labels, cfg, codebook_samples=3000, compact_dim=8, progress=False)
    V = np.stack([model.describe_uv(i, m).vector for i, m in zip(imgs, masks)])
    assert V.shape[1] == cfg.dim
    sim = V @ V.T
    same = labels[:, None] == labels[None]
    np.fill_diagonal(same, False)
    diff = labels[:, None] != labels[None]
    assert sim[same].mean() > sim[diff].mean() + 0.1
    # rank-1 of each image against the others
    np.fill_diagonal(sim, -1)
    assert (labels[sim.argmax(1)] == labels).mean() >= 0.9
    c = model.describe_uv(imgs[0], masks[0], compact=True)
    assert c.vector.shape == (8,)


def test_dfd_save_load_roundtrip(tmp_path):
    imgs, masks, labels = _identity_textures(n_ids=3, per_id=2)
    cfg = DfdConfig(size=S, n_codes=8, n_filters=3, grid=4, block_grid=2)
    model = learn_dfd(imgs, masks, labels, cfg, codebook_samples=1000, progress=False)
    p = tmp_path / "dfd.npz"
    model.save(p)
    back = DfdModel.load(p)
    assert back.cfg == cfg
    a = model.describe_uv(imgs[0], masks[0]).vector
    assert np.allclose(a, back.describe_uv(imgs[0], masks[0]).vector)


def test_region_visibility():
    m = np.zeros((S, S), np.float32)
    m[: S // 2] = 1
    v = region_visibility(m, 4)
    assert v.tolist() == [1.0] * 8 + [0.0] * 8


def test_shipped_dfd_parameters_load_and_describe(tmp_path, monkeypatch):
    from descriptors.dfd import DATA_DIR, DfdDescriptor
    from pipeline.errors import ModelFileError

    d = DfdDescriptor()
    rng = np.random.default_rng(3)
    uv = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    m = np.ones((256, 256), np.float32)
    m[:, :128] = 0
    sig = d.model.describe_uv(uv, m)
    assert sig.vector.shape == (65536,) and sig.mask.sum() == 128
    assert d.model.describe_uv(uv, m, compact=True).vector.shape == (128,)
    # a changed file is refused
    import shutil

    fake = tmp_path / "data"
    shutil.copytree(DATA_DIR, fake)
    with open(fake / "dfd_v1.npz", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    monkeypatch.setattr("descriptors.dfd.DATA_DIR", fake)
    with pytest.raises(ModelFileError, match="sha256"):
        DfdDescriptor()
