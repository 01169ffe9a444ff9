"""Distance-aware softmax loss (DSL), its degraded form (SL), and the paper's schedule.

Eq. 7 of the GoDP paper, per score-map tensor ``Psi`` of ``K*L+1`` channels::

    loss = - sum_{x,y} m(x,y) * w(x,y) * log softmax(Psi)_{t(x,y)}(x,y)

* ``t(x,y)`` is the class of the pixel: ``k*L + l`` at the (rounded) score-map position of
  landmark ``l`` whose yaw subspace is ``k``; background (``K*L``, the last channel) elsewhere.
* ``m(x,y)`` is a binary sampling mask: every key-point pixel, and background pixels sampled
  at random with probability ``near_ratio`` when they lie within ``near_thresh`` (3 px on the
  score map) of a key-point, and ``far_ratio`` otherwise (Tables 2-6).
* ``w`` (Eq. 7a/7b): ``alpha`` at key-point pixels; at background pixels ``beta`` (SL, the
  degraded form) or ``beta * log10(d + 1)`` (DSL), where ``d`` is the distance from the pixel
  to the ground-truth position of the landmark whose class has the highest score among the
  ``K*L`` foreground channels at that pixel (the "most misleading" key-point). When that
  landmark has no ground truth in the image, ``d`` falls back to the nearest labelled one.

The sum is divided by the batch size (a per-image sum, as Caffe's un-normalised loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossParams:
    """One row of Tables 2-6."""

    far_ratio: float
    near_ratio: float
    alpha: float
    beta: float
    kind: str  # "SL" or "DSL"
    all_points: bool = False  # supervise occluded points too (GoDP(A), stage 3 last two losses)


#: Tables 2-6, indexed [stage][loss] with the loss order of GoDP.forward:
#: stage 1: SL, P-DSL1, P-DSL2; stages 2-3: SL, P-DSL1, R-DSL1, P-DSL2, R-DSL2.
PAPER_SCHEDULE: dict[int, list[LossParams]] = {
    1: [
        LossParams(0.005, 0.1, 1, 0.2, "SL"),
        LossParams(0.005, 0.1, 1, 0.2, "SL"),
        LossParams(0.005, 0.1, 1, 0.2, "SL"),
    ],
    2: [
        LossParams(0.005, 0.1, 1, 0.2, "SL"),
        LossParams(0.001, 0.2, 3, 0.1, "SL"),
        LossParams(0.01, 0.05, 1, 0.3, "SL"),
        LossParams(0.001, 0.2, 3, 0.1, "SL"),
        LossParams(0.01, 0.05, 1, 0.3, "SL"),
    ],
    3: [
        LossParams(0.005, 0.1, 1, 0.2, "SL"),
        LossParams(0.001, 0.15, 3, 0.6, "DSL"),
        LossParams(0.01, 0.05, 1.5, 1.0, "DSL"),
        LossParams(0.001, 0.15, 3, 0.6, "DSL", all_points=True),
        LossParams(0.01, 0.05, 1.5, 1.0, "DSL", all_points=True),
    ],
}


@dataclass
class Targets:
    """Ground truth on the score map for a batch.

    points: (B, L, 2) float, score-map pixels (x, y); visible: (B, L) bool (annotated and not
    occluded); known: (B, L) bool (coordinates known, occluded or not); subspace: (B,) long.
    """

    points: torch.Tensor
    visible: torch.Tensor
    known: torch.Tensor
    subspace: torch.Tensor


def keypoint_pixels(
    points: torch.Tensor, labelled: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rounded integer pixel of each labelled point inside the map: (ix, iy, ok)."""
    H, W = size
    ix = torch.round(points[..., 0]).long()
    iy = torch.round(points[..., 1]).long()
    ok = labelled & (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H) & torch.isfinite(points).all(-1)
    return ix.clamp(0, W - 1), iy.clamp(0, H - 1), ok


def distance_maps(ix: torch.Tensor, iy: torch.Tensor, ok: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, L, H, W) Euclidean pixel distance to each key-point pixel (inf where not labelled)."""
    H, W = size
    ys = torch.arange(H, dtype=torch.float32, device=ix.device).view(1, 1, H, 1)
    xs = torch.arange(W, dtype=torch.float32, device=ix.device).view(1, 1, 1, W)
    d = torch.sqrt((xs - ix[..., None, None].float()) ** 2 + (ys - iy[..., None, None].float()) ** 2)
    return torch.where(ok[..., None, None], d, torch.full_like(d, math.inf))


def class_targets(ix, iy, ok, subspace, L: int, num_classes: int, size) -> torch.Tensor:
    """(B, H, W) long class map: ``k*L + l`` at key-point pixels, background elsewhere."""
    B = ix.shape[0]
    H, W = size
    tgt = torch.full((B, H, W), num_classes - 1, dtype=torch.long, device=ix.device)
    b, lm = torch.nonzero(ok, as_tuple=True)  # batch index, landmark index
    tgt[b, iy[b, lm], ix[b, lm]] = subspace[b] * L + lm
    return tgt


def pixel_weights(
    logits: torch.Tensor,
    t: Targets,
    p: LossParams,
    L: int,
    near_thresh: float = 3.0,
    generator: torch.Generator | None = None,
):
    """The mask-times-weight map ``m * w`` of Eq. 7 and the class targets, both (B, H, W)."""
    B, C, H, W = logits.shape
    size = (H, W)
    labelled = t.known if p.all_points else t.visible
    ix, iy, ok = keypoint_pixels(t.points, labelled, size)
    tgt = class_targets(ix, iy, ok, t.subspace, L, C, size)
    is_kp = tgt != C - 1
    dist = distance_maps(ix, iy, ok, size)  # (B, L, H, W)
    d_near = dist.min(1).values  # (B, H, W), inf if none
    near = (d_near <= near_thresh) & ~is_kp
    far = ~near & ~is_kp
    r = torch.rand((B, H, W), generator=generator, device=logits.device)
    sampled = (near & (r < p.near_ratio)) | (far & (r < p.far_ratio))
    if p.kind == "SL":
        w_bg = torch.full((B, H, W), p.beta, device=logits.device)
    elif p.kind == "DSL":
        # distance to the key-point of the highest-scoring foreground class at each pixel
        top = logits[:, : C - 1].argmax(1) % L  # (B, H, W) landmark index
        # distance to *any* labelled position of that landmark: use all known coordinates so
        # that an occluded point with known position still anchors the distance
        if p.all_points:  # the labelled points are the known ones: reuse their distances
            dist_k = dist
        else:
            dist_k = distance_maps(*keypoint_pixels(t.points, t.known, size), size)
        d = dist_k.gather(1, top[:, None]).squeeze(1)
        d = torch.where(torch.isfinite(d), d, d_near)
        d = torch.where(torch.isfinite(d), d, torch.full_like(d, float(max(H, W))))
        w_bg = p.beta * torch.log10(d + 1.0)
    else:
        raise ValueError(f"unknown loss kind {p.kind!r}")
    w = torch.where(is_kp, torch.full_like(w_bg, p.alpha), torch.where(sampled, w_bg, torch.zeros_like(w_bg)))
    return w, tgt


def dsl_loss(
    logits: torch.Tensor,
    t: Targets,
    p: LossParams,
    L: int,
    near_thresh: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 7 on one score-map tensor ``logits`` (B, K*L+1, H, W); a scalar (per-image sum, batch mean)."""
    with torch.no_grad():
        w, tgt = pixel_weights(logits.detach(), t, p, L, near_thresh, generator)
    nll = F.cross_entropy(logits, tgt, reduction="none")  # (B, H, W)
    return (w * nll).sum() / logits.shape[0]


@torch.no_grad()
def mpk_mpb(logits: torch.Tensor, t: Targets, L: int, K: int) -> tuple[float, float]:
    """Table 7's MPK / MPB: mean probability (percent) at key-point pixels of the landmark's
    summed K maps, and mean background probability at non-key-point pixels."""
    B, C, H, W = logits.shape
    prob = logits.softmax(1)
    lm = prob[:, : K * L].view(B, K, L, H, W).sum(1)  # (B, L, H, W)
    ix, iy, ok = keypoint_pixels(t.points, t.visible, (H, W))
    b, li = torch.nonzero(ok, as_tuple=True)  # batch index, landmark index
    mpk = lm[b, li, iy[b, li], ix[b, li]].mean().item() if len(b) else float("nan")
    tgt = class_targets(ix, iy, ok, t.subspace, L, C, (H, W))
    bg = tgt == C - 1
    mpb = prob[:, C - 1][bg].mean().item()
    return 100 * mpk, 100 * mpb
