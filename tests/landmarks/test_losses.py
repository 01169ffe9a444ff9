"""Eq. 7 weights and sampling on tiny hand-made maps."""

import math

import torch

from landmarks.godp.losses import PAPER_SCHEDULE, LossParams, Targets, dsl_loss, pixel_weights

L, K = 2, 1
C = K * L + 1


def targets(points, visible, known=None):
    p = torch.tensor([points], dtype=torch.float32)
    v = torch.tensor([visible])
    k = torch.tensor([known if known is not None else visible])
    return Targets(p, v, k, torch.tensor([0]))


def test_keypoint_pixels_get_alpha_and_their_class():
    logits = torch.zeros(1, C, 8, 8)
    t = targets([[1.2, 2.0], [6.0, 5.4]], [True, True])
    w, tgt = pixel_weights(logits, t, LossParams(0.0, 0.0, 2.5, 0.2, "SL"), L)
    assert tgt[0, 2, 1] == 0 and tgt[0, 5, 6] == 1
    assert w[0, 2, 1] == 2.5 and w[0, 5, 6] == 2.5
    assert (tgt == C - 1).sum() == 64 - 2
    assert (w > 0).sum() == 2  # ratios 0: no background sampled


def test_sl_background_weight_is_beta():
    logits = torch.zeros(1, C, 8, 8)
    t = targets([[1.0, 1.0], [6.0, 6.0]], [True, True])
    w, tgt = pixel_weights(logits, t, LossParams(1.0, 1.0, 1.0, 0.3, "SL"), L)
    bg = tgt == C - 1
    assert torch.allclose(w[bg], torch.tensor(0.3))


def test_dsl_weight_uses_distance_to_most_likely_keypoint():
    logits = torch.zeros(1, C, 8, 8)
    logits[0, 1] = 5.0  # landmark 1 is the highest-scoring foreground class everywhere
    t = targets([[1.0, 1.0], [6.0, 6.0]], [True, True])
    w, tgt = pixel_weights(logits, t, LossParams(1.0, 1.0, 1.0, 0.6, "DSL"), L)
    y, x = 0, 0
    d = math.hypot(6 - x, 6 - y)
    assert math.isclose(float(w[0, y, x]), 0.6 * math.log10(d + 1), rel_tol=1e-5)
    # pixel right next to landmark 1: small weight
    assert math.isclose(float(w[0, 6, 7]), 0.6 * math.log10(2), rel_tol=1e-5)


def test_sampling_ratios_near_and_far():
    H = W = 80
    logits = torch.zeros(1, C, H, W)
    t = targets([[40.0, 40.0], [41.0, 40.0]], [True, True])
    g = torch.Generator().manual_seed(0)
    w, tgt = pixel_weights(logits, t, LossParams(0.01, 0.5, 1.0, 1.0, "SL"), L, near_thresh=3.0, generator=g)
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    d = torch.minimum(torch.hypot(xs - 40.0, ys - 40.0), torch.hypot(xs - 41.0, ys - 40.0))
    near = (d <= 3) & (tgt[0] == C - 1)
    far = d > 3
    near_rate = (w[0][near] > 0).float().mean().item()
    far_rate = (w[0][far] > 0).float().mean().item()
    assert 0.3 < near_rate < 0.7
    assert 0.005 < far_rate < 0.02


def test_invisible_points_only_count_with_all_points():
    logits = torch.zeros(1, C, 8, 8)
    t = targets([[1.0, 1.0], [6.0, 6.0]], [True, False], known=[True, True])
    _, tgt = pixel_weights(logits, t, LossParams(0, 0, 1, 1, "SL"), L)
    assert tgt[0, 6, 6] == C - 1
    _, tgt = pixel_weights(logits, t, LossParams(0, 0, 1, 1, "SL", all_points=True), L)
    assert tgt[0, 6, 6] == 1


def test_loss_decreases_when_keypoint_scores_rise():
    t = targets([[2.0, 2.0], [5.0, 5.0]], [True, True])
    p = LossParams(0.0, 0.0, 1.0, 0.2, "SL")
    base = torch.zeros(1, C, 8, 8)
    better = base.clone()
    better[0, 0, 2, 2] = 4.0
    better[0, 1, 5, 5] = 4.0
    assert dsl_loss(better, t, p, L) < dsl_loss(base, t, p, L)


def test_paper_schedule_tables():
    assert [len(PAPER_SCHEDULE[s]) for s in (1, 2, 3)] == [3, 5, 5]
    assert PAPER_SCHEDULE[3][2] == LossParams(0.01, 0.05, 1.5, 1.0, "DSL")  # Table 4, stage 3
    assert [p.all_points for p in PAPER_SCHEDULE[3]] == [False, False, False, True, True]
