"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a torch module.

The network is ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp`` at test time (batch norm
folded into per-channel ``affine`` layers): input 150x150 RGB, ``(x - mean) / 256`` with dlib's
channel means; con 7x7/2 (32, no padding) + affine + relu, max pool 3x3/2 (no padding); 14 residual
blocks (3 of 32 filters, 4 of 64, 3 of 128, 4 of 256; the first block of each of 64, 128, 256,
256 is a down block: 3x3/2 convolution without padding, shortcut = 2x2/2 average pool); mean over
the remaining 2x2 positions; fc 256 -> 128 without bias. As in dlib, a residual sum whose operands
differ in size (the shortcut has fewer channels; at 8 -> 4 px the shortcut is 4x4, the block 3x3)
is taken over the larger size with the smaller operand zero-padded at the end (channels, bottom,
right). The output is what ``dlib.face_recognition_model_v1.compute_face_descriptor`` returns: the
raw 128-d vector, *not* L2-normalised (its norm is about 1.4 on real faces).

Weights: ``descriptors/data/dlib_resnet_v1.safetensors``, converted from dlib's ``.dat`` by
``python -m training.convert_dlib_resnet`` and verified against its sha256 in
``descriptors/data/MANIFEST.json`` before loading.

>>> net = load_dlib_torch()                       # doctest: +SKIP
>>> vecs = embed_chips(chips)                     # (N, 150, 150, 3) uint8 RGB -> (N, 128)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA_DIR = Path(__file__).resolve().parent / "data"
WEIGHTS = "dlib_resnet_v1.safetensors"
CHIP_SIZE = 150

#: (filters, number of blocks, first block is a down block) per stage, input side first
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class Affine(nn.Module):
    """dlib's ``affine_`` in CONV_MODE: y = gamma[c] * x + beta[c] (batch norm at test time)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta[:, None, None], x, self.gamma[:, None, None])


class ConvAffine(nn.Module):
    """dlib ``affine<con<...>>``; padding is dlib's default: k // 2 at stride 1, 0 otherwise."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0, bias=True)
        self.affine = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(self.conv(x))


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``tt::add`` of two tensors of different sizes: the sum over the larger extent of each
    dimension, a missing value counting as 0 (operands aligned at channel 0 and the top-left pixel)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Block(nn.Module):
    """``ares`` (stride 1, identity shortcut) or ``ares_down`` (stride 2, 2x2/2 average-pool shortcut):
    relu(shortcut(x) + affine(con(relu(affine(con(x))))))."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.a = ConvAffine(cin, cout, 3, 2 if down else 1)
        self.b = ConvAffine(cout, cout, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(F.relu(self.a(x)))
        short = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_padded(y, short))


class DlibResNet(nn.Module):
    """dlib's 29-convolution face-recognition ResNet; (N, 3, 150, 150) float RGB in 0..255 -> (N, 128).

    ``mean`` (a buffer read from the ``.dat``) is dlib's per-channel input mean; the input scale is
    1/256 as in dlib's ``input_rgb_image_sized``. Use :meth:`forward_normalised` to feed an already
    normalised tensor."""

    mean: torch.Tensor

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([122.782, 117.001, 104.298]))
        self.stem = ConvAffine(3, 32, 7, 2)
        blocks, cin = [], 32
        for cout, n, down in STAGES:
            for i in range(n):
                blocks.append(Block(cin, cout, down and i == 0))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, 128, bias=False)
        self.eval()

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:, None, None]) / 256.0

    def forward_normalised(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        for blk in self.blocks:
            x = blk(x)
        return self.fc(x.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_normalised(self.normalise(x))


CONVERT_COMMAND = "python -m training.convert_dlib_resnet"


def load_dlib_torch(path: str | Path | None = None, sha256: str | None = None) -> DlibResNet:
    """The converted dlib ResNet in eval mode, its weights verified by sha256 first: against the record
    of the file's name in ``descriptors/data/MANIFEST.json`` (unless ``sha256`` is given). A changed,
    missing or unrecorded file raises :class:`~pipeline.errors.ModelFileError`."""
    from safetensors.torch import load_file

    from pipeline import manifest

    path = Path(path) if path is not None else DATA_DIR / WEIGHTS
    what = "dlib ResNet weights"
    if sha256 is None:
        sha256 = manifest.entry(DATA_DIR, path.name, what=what, command=CONVERT_COMMAND)["sha256"]
    manifest.verify_file(path, sha256, what)
    net = DlibResNet()
    net.load_state_dict(load_file(str(path)), strict=True)
    net.requires_grad_(False)
    return net.eval()


_NET: DlibResNet | None = None


def embed_chips(chips: np.ndarray, net: DlibResNet | None = None, batch: int = 64) -> np.ndarray:
    """dlib face descriptors of aligned 150x150 chips: (N, 150, 150, 3) uint8 RGB -> (N, 128) float32,
    the raw (not L2-normalised) vectors dlib's ``compute_face_descriptor(chip)`` returns."""
    global _NET
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) RGB, got {chips.shape}")
    if chips.dtype != np.uint8:
        raise ValueError(f"chips must be uint8, got {chips.dtype}")
    if net is None:
        if _NET is None:
            _NET = load_dlib_torch()
        net = _NET
    out = np.empty((len(chips), 128), np.float32)
    with torch.inference_mode():
        for i in range(0, len(chips), batch):
            x = torch.from_numpy(np.ascontiguousarray(chips[i : i + batch])).permute(0, 3, 1, 2).float()
            out[i : i + batch] = net(x).numpy()
    return out
