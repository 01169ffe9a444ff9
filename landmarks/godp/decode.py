"""Score maps -> landmark positions (SPEC section 3, inference).

The K subspace maps of each landmark are summed (section 3.3) to one probability map
``P_l = sum_k softmax(Psi)_{k*L+l}``; the location is its argmax, refined to sub-pixel
precision by the probability-weighted centroid of the ``(2r+1)^2`` window around the peak.
The peak probability is the point's score; the subspace with the most mass is the face's
predicted yaw subspace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def decode(logits: torch.Tensor, K: int, L: int, radius: int = 1):
    """logits (B, K*L+1, H, W) -> points (B, L, 2) in map pixels (x, y), scores (B, L),
    subspace (B,) long."""
    B, C, H, W = logits.shape
    prob = logits.softmax(1)
    per = prob[:, : K * L].view(B, K, L, H, W)
    lm = per.sum(1)  # (B, L, H, W)
    subspace = per.sum((2, 3, 4)).argmax(1)
    flat = lm.view(B, L, H * W)
    score, idx = flat.max(-1)
    py, px = (idx // W).float(), (idx % W).float()
    k = 2 * radius + 1
    # probability-weighted centroid of the window around the peak
    padded = F.pad(lm, (radius, radius, radius, radius))
    win = padded.unfold(2, k, 1).unfold(3, k, 1)  # (B, L, H, W, k, k)
    bi = torch.arange(B)[:, None].expand(B, L)
    li = torch.arange(L)[None, :].expand(B, L)
    w = win[bi, li, py.long(), px.long()]  # (B, L, k, k)
    offs = torch.arange(-radius, radius + 1, dtype=torch.float32)
    tot = w.sum((-1, -2)).clamp_min(1e-12)
    dx = (w.sum(-2) * offs).sum(-1) / tot
    dy = (w.sum(-1) * offs).sum(-1) / tot
    pts = torch.stack([px + dx, py + dy], -1)
    return pts, score, subspace
