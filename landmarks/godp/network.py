"""GoDP: Globally optimized Dual-Pathway DeconvNet (Wu, Shah, Kakadiaris; section 3.5, Fig. 2).

Shapes: input ``(B, 1, 160, 160)`` gray in [0, 1] (normalised inside); output score maps
``(B, K*L+1, 80, 80)`` (logits; softmax over channels gives per-pixel class probabilities,
channel ``k*L + l`` = landmark ``l`` in yaw subspace ``k``, the last channel = background).

Layout (our reading of Fig. 2, fixed in SPEC section 3):

* **Information pathway** -- a DeconvNet of ten groups. Encoder G1..G5: 2, 2, 3, 3, 3 conv +
  BN + ReLU, then 2x2 max-pool with indices (160 -> 80 -> 40 -> 20 -> 10 -> 5). Decoder
  G6..G10: 3, 3, 3, 2, 2 conv + BN + ReLU, then max-unpool with the mirrored encoder indices
  (G6: 5 -> 10, G7: 10 -> 20, G8: 20 -> 40, G9: 40 -> 80, G10 has no unpool; 80x80 out).
  The **hyperlink** concatenates G4's last features (20x20, before its pool) into G8's input.
* **Decision pathway** -- tensors of exactly ``K*L+1`` channels, updated by error feedback
  (Eq. 3-6): ``Psi_0 = F_o(I)`` (Eq. 3) from G8 *before* its unpool (converter G14, 1x1), brought
  to 80x80 by the bilinear upsamplings U1 (20 -> 40) and U2 (40 -> 80). Then four feedback steps
  ``Psi_t = Psi_{t-1} + F_c(F_a(I) (+) Psi_{t-1})`` (Eq. 4-6, (+) = channel concatenation):

  ======  =========================================  =========================  =========
  step    features F_a (information pathway)         converter F_c              loss
  ======  =========================================  =========================  =========
  Psi_0   G8 (20x20) -> G14 -> U1, U2                1x1 conv                   SL
  Psi_1   G10 (80x80, shallow)                       G12: 3x(3x3 conv) + 1x1    P-DSL1
  Psi_2   G7 (10x10, deep), upsampled               G15: 1x1 conv              R-DSL1
  Psi_3   G9 (40x40, shallow)                       G13: 3x(3x3 conv) + 1x1    P-DSL2
  Psi_4   G6 (5x5, deepest), upsampled              G16: 1x1 conv              R-DSL2
  ======  =========================================  =========================  =========

  Shallow (high-resolution) features *propose* candidates, deep features *refine* them
  (section 3.5). Our CPU economy: G13, G15 and G16 work at their features' own resolution
  (40x40, 10x10, 5x5) on an average-pooled copy of Psi, and their update ``dPsi`` is
  bilinearly upsampled to 80x80 before Eq. 6; only G12 works at full 80x80 resolution.

The ``stage`` argument of :meth:`GoDP.forward` mirrors the training schedule: in stage 1 only
the shallow proposals exist (3 losses), from stage 2 on all five outputs are produced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GodpConfig:
    """Architecture hyper-parameters.

    width: channel multiplier on the VGG widths (64, 128, 256, 512, 512); the paper is 1.0.
    K: yaw subspaces; L: landmarks; converter_width: hidden channels of G12/G13 at width 1.
    variant: ``"godp"`` (both pathways) or ``"plain"`` (Table 7's ablation: the same DeconvNet
    without the hyperlink and the decision pathway, one 1x1 conv from G10 to the score maps).
    """

    width: float = 0.25
    K: int = 3
    L: int = 19
    converter_width: int = 64
    input_size: int = 160
    variant: str = "godp"  # "plain": the ablation baseline, a DeconvNet with one 1x1 score layer

    @property
    def num_classes(self) -> int:
        return self.K * self.L + 1

    def to_dict(self) -> dict:
        return asdict(self)


def _ch(c: int, width: float) -> int:
    return max(8, int(round(c * width)))


class ConvGroup(nn.Sequential):
    """``n`` x (3x3 conv, BN, ReLU)."""

    def __init__(self, cin: int, cout: int, n: int):
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [
                nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class ProposalConverter(nn.Module):
    """G12 / G13: three 3x3 conv layers (two with BN + ReLU) and a 1x1 converter to K*L+1."""

    def __init__(self, cin: int, hidden: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.convert = nn.Conv2d(hidden, cout, 1)
        nn.init.zeros_(self.convert.weight)  # start as the identity update Psi_t = Psi_{t-1}
        assert self.convert.bias is not None  # nn.Conv2d's default bias=True
        nn.init.zeros_(self.convert.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convert(self.body(x))


class RefineConverter(nn.Module):
    """G15 / G16: a single 1x1 conv on (deep features (+) Psi). It runs at the deep features'
    resolution on ``avgpool(Psi)`` and the update is bilinearly upsampled to Psi's size: deep
    features carry no finer detail, and this keeps the 58-channel 80x80 work out of the step."""

    def __init__(self, cfeat: int, cpsi: int):
        super().__init__()
        self.conv = nn.Conv2d(cfeat + cpsi, cpsi, 1)
        nn.init.zeros_(self.conv.weight)  # start as the identity update Psi_t = Psi_{t-1}
        assert self.conv.bias is not None  # nn.Conv2d's default bias=True
        nn.init.zeros_(self.conv.bias)

    def forward(self, feat: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        small = F.adaptive_avg_pool2d(psi, (feat.shape[-2], feat.shape[-1]))
        delta = self.conv(torch.cat([feat, small], 1))
        return F.interpolate(delta, size=psi.shape[-2:], mode="bilinear", align_corners=False)


class GoDP(nn.Module):
    """The GoDP network (see module docstring)."""

    mean: torch.Tensor  # input normalisation buffers (register_buffer in __init__)
    std: torch.Tensor
    # set by landmarks.godp.weights.load_model on shipped weights (absent on a fresh network)
    weights_sha256: str
    visibility_threshold: float

    def __init__(self, cfg: GodpConfig = GodpConfig()):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        c1, c2, c3, c4 = _ch(64, w), _ch(128, w), _ch(256, w), _ch(512, w)
        C = cfg.num_classes
        self.register_buffer("mean", torch.tensor(0.5))
        self.register_buffer("std", torch.tensor(0.25))
        # encoder
        self.g1, self.g2 = ConvGroup(1, c1, 2), ConvGroup(c1, c2, 2)
        self.g3, self.g4, self.g5 = ConvGroup(c2, c3, 3), ConvGroup(c3, c4, 3), ConvGroup(c4, c4, 3)
        # decoder
        self.g6 = ConvGroup(c4, c4, 3)  # 5x5 -> unpool(idx5) -> 10
        self.g7 = ConvGroup(c4, c4, 3)  # 10 -> unpool(idx4) -> 20
        self.plain = cfg.variant == "plain"
        if cfg.variant not in ("godp", "plain"):
            raise ValueError(f"unknown GoDP variant {cfg.variant!r}")
        self.g8 = ConvGroup(c4 if self.plain else c4 + c4, c3, 3)  # 20 (+ G4 hyperlink) -> unpool -> 40
        self.g9 = ConvGroup(c3, c2, 2)  # 40 -> unpool(idx2) -> 80
        self.g10 = ConvGroup(c2, c1, 2)  # 80 (no unpool)
        if self.plain:
            self.score = nn.Conv2d(c1, C, 1)
            return
        # decision pathway converters
        hidden = _ch(cfg.converter_width, w)
        self.g14 = nn.Conv2d(c3, C, 1)
        self.g12 = ProposalConverter(c1 + C, hidden, C)
        self.g13 = ProposalConverter(c2 + C, hidden, C)
        self.g15 = RefineConverter(c4, C)
        self.g16 = RefineConverter(c4, C)

    def forward(self, x: torch.Tensor, stage: int = 3) -> list[torch.Tensor]:
        """Return the decision-pathway score maps, each ``(B, K*L+1, 80, 80)`` logits.

        stage 1: ``[Psi_0, Psi_1, Psi_3]`` (shallow proposals only, 3 losses);
        stage >= 2: ``[Psi_0, Psi_1, Psi_2, Psi_3, Psi_4]`` (5 losses). The last is the output.
        The ``plain`` variant returns one map at every stage.
        """
        x = (x - self.mean) / self.std
        f1 = self.g1(x)
        p1, i1 = F.max_pool2d(f1, 2, return_indices=True)
        f2 = self.g2(p1)
        p2, i2 = F.max_pool2d(f2, 2, return_indices=True)
        f3 = self.g3(p2)
        p3, i3 = F.max_pool2d(f3, 2, return_indices=True)
        f4 = self.g4(p3)
        p4, i4 = F.max_pool2d(f4, 2, return_indices=True)
        f5 = self.g5(p4)
        p5, i5 = F.max_pool2d(f5, 2, return_indices=True)

        f6 = self.g6(p5)  # 5x5 (deepest)
        f7 = self.g7(F.max_unpool2d(f6, i5, (2, 2), output_size=f5.shape[-2:]))  # 10x10 (deep)
        u7 = F.max_unpool2d(f7, i4, (2, 2), output_size=f4.shape[-2:])
        f8 = self.g8(u7 if self.plain else torch.cat([u7, f4], 1))  # 20x20, hyperlink G4
        f9 = self.g9(F.max_unpool2d(f8, i3, (2, 2), output_size=f3.shape[-2:]))  # 40x40 (shallow)
        f10 = self.g10(F.max_unpool2d(f9, i2, (2, 2), output_size=f2.shape[-2:]))  # 80x80 (shallow)

        if self.plain:
            return [self.score(f10)]
        size = f10.shape[-2:]
        psi = self.g14(f8)  # Eq. 3
        psi = F.interpolate(psi, scale_factor=2, mode="bilinear", align_corners=False)  # U1
        psi0 = F.interpolate(psi, size=size, mode="bilinear", align_corners=False)  # U2
        psi1 = psi0 + self.g12(torch.cat([f10, psi0], 1))  # Eq. 4-6
        if stage >= 2:
            psi2 = psi1 + self.g15(f7, psi1)
        else:
            psi2 = psi1
        d3 = self.g13(torch.cat([f9, F.avg_pool2d(psi2, 2)], 1))
        psi3 = psi2 + F.interpolate(d3, size=size, mode="bilinear", align_corners=False)
        if stage == 1:
            return [psi0, psi1, psi3]
        psi4 = psi3 + self.g16(f6, psi3)
        return [psi0, psi1, psi2, psi3, psi4]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
