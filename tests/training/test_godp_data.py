"""make_sample's augmentations on a synthetic face: geometry and the low-resolution copy."""

import dataclasses

import numpy as np

from landmarks.godp.data import INPUT
from training.godp_data import AugmentConfig, LandmarkSet, make_sample

L = 19


def _set() -> LandmarkSet:
    yy, xx = np.mgrid[:200, :200]
    img = (((xx // 2 + yy // 2) % 2) * 200 + 20).astype(np.uint8)  # 2 px checkerboard: only fine detail
    pts = np.stack([np.linspace(60, 140, L), np.linspace(70, 130, L)], 1)[None]
    return LandmarkSet(
        images=[img],
        rois=np.array([[100.0, 100.0, 120.0]]),
        points=pts,
        visible=np.ones((1, L), bool),
        known=np.ones((1, L), bool),
        yaw=np.zeros(1),
        names=["a"],
    )


def _still(**kw) -> AugmentConfig:
    """No augmentation except what ``kw`` turns on."""
    off = dict(scale=0.0, shift=0.0, p_rotate=0.0, p_mirror=0.0, p_blur=0.0, p_noise=0.0, contrast=0.0, brightness=0.0)
    return dataclasses.replace(AugmentConfig(), **{**off, **kw})


def _detail(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=1)).mean())


def test_lowres_copy_removes_detail_and_keeps_the_points():
    ds = _set()
    plain = make_sample(ds, 0, np.random.default_rng(0), _still(), K=3)
    low = make_sample(ds, 0, np.random.default_rng(0), _still(p_lowres=1.0, lowres=(0.4, 0.4)), K=3)
    assert plain[0].shape == low[0].shape == (INPUT, INPUT)
    assert _detail(low[0]) < 0.5 * _detail(plain[0])
    np.testing.assert_allclose(low[1], plain[1])


class _Counting:
    """A numpy Generator that counts the draws made from it."""

    def __init__(self, seed):
        self.rng, self.calls = np.random.default_rng(seed), 0

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.rng, name)


def test_lowres_off_draws_no_random_numbers():
    """p_lowres = 0 (the default) must leave older runs' random stream, hence their batches, unchanged:
    the low-resolution branch draws only when it can fire."""
    ds = _set()
    off, tiny = _Counting(3), _Counting(3)
    fixed = dict(p_rotate=0.0, p_blur=0.0, p_noise=0.0)  # branches that would draw a varying number of times
    make_sample(ds, 0, off, dataclasses.replace(AugmentConfig(), **fixed), K=3)
    make_sample(ds, 0, tiny, dataclasses.replace(AugmentConfig(), p_lowres=1e-12, **fixed), K=3)
    assert tiny.calls == off.calls + 1
