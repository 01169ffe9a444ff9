import pytest
import torch

from landmarks.godp.network import GoDP, GodpConfig, count_parameters


@pytest.mark.parametrize("K", [3, 1])
def test_shapes(K):
    cfg = GodpConfig(width=0.125, K=K)
    m = GoDP(cfg).eval()
    with torch.no_grad():
        outs = m(torch.rand(2, 1, 160, 160))
        outs1 = m(torch.rand(2, 1, 160, 160), stage=1)
    assert len(outs) == 5 and len(outs1) == 3
    for o in outs:
        assert o.shape == (2, K * 19 + 1, 80, 80)


def test_default_config_is_the_paper_layout():
    cfg = GodpConfig()
    assert cfg.num_classes == 58 and cfg.input_size == 160
    assert count_parameters(GoDP(cfg)) > 1e6


def test_refiners_start_as_identity_updates():
    m = GoDP(GodpConfig(width=0.125)).eval()
    with torch.no_grad():
        outs = m(torch.rand(1, 1, 160, 160))
    assert torch.allclose(outs[1], outs[2]) and torch.allclose(outs[3], outs[4])


def test_plain_ablation_variant():
    m = GoDP(GodpConfig(width=0.125, variant="plain")).eval()
    with torch.no_grad():
        outs = m(torch.rand(1, 1, 160, 160))
    assert len(outs) == 1 and outs[0].shape == (1, 58, 80, 80)
    assert count_parameters(m) < count_parameters(GoDP(GodpConfig(width=0.125)))
    with pytest.raises(ValueError):
        GoDP(GodpConfig(variant="nope"))
