"""The dlib ResNet family in torch: dlib's face-recognition network (:mod:`descriptors.dlib_torch`) with
its shipped weights (``dlib-resnet-torch``: the same embedding as ``dlib-resnet``, batched); other
weights of the same network (e.g. a fine-tune from :mod:`training.pose_resnet`) through ``weights=``.

The chip is dlib's 150x150 chip on the five points built from the 19 AFLW landmarks
(:func:`descriptors.chips.chip_from_landmarks`). ``flip=True`` adds the embedding of the mirrored
chip before normalising (test-time mirror averaging). Signature: (128,) float32, unit L2 norm.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from pipeline.types import FaceResult, Signature

if TYPE_CHECKING:
    from descriptors.dlib_torch import DlibResNet

_NETS: dict[str, DlibResNet] = {}
_LOCK = threading.Lock()


def _net(weights: str) -> DlibResNet:
    from descriptors.dlib_torch import DATA_DIR, load_dlib_torch

    with _LOCK:
        if weights not in _NETS:
            _NETS[weights] = load_dlib_torch(DATA_DIR / weights)
        return _NETS[weights]


class TorchResnetDescriptor:
    """128-d L2-normalised embedding of a dlib ResNet (torch) on the landmark-aligned chip."""

    name = "dlib-resnet-torch"
    needs_3d = False
    needs_landmarks = True
    weights = "dlib_resnet_v1.safetensors"
    command: str | None = None  # how to make the weights, for the error when they are missing

    def __init__(self, flip: bool = False, weights: str | None = None):
        self.flip = bool(flip)
        if weights is not None:
            self.weights = weights
        self.net = _net(self.weights)
        from descriptors.dlib_torch import CONVERT_COMMAND, DATA_DIR
        from pipeline import manifest

        cmd = self.command or CONVERT_COMMAND
        sha = manifest.entry(DATA_DIR, self.weights, what="dlib ResNet weights", command=cmd)["sha256"]
        #: gallery caches key on it: other weights or another flip setting mean other signatures
        self.cache_token = f"{self.weights}:{sha[:16]}:flip={int(self.flip)}"

    def chip(self, image: np.ndarray, face: FaceResult) -> np.ndarray:
        from descriptors.chips import chip_from_landmarks

        lm = face.landmarks
        return chip_from_landmarks(image, face.detection.box, None if lm is None else lm.points)

    def embed(self, image: np.ndarray, box, points: np.ndarray | None = None) -> np.ndarray:
        """(128,) unit embedding of the face in ``box`` (x0, y0, x1, y1) px, aligned on the 19 AFLW
        ``points`` (19, 2) px when given (the interface of :meth:`DlibResnetDescriptor.embed`)."""
        from descriptors.chips import chip_from_landmarks

        return self.embed_chips(chip_from_landmarks(image, box, points)[None])[0]

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 chips -> (N, 128) float32 unit vectors."""
        from descriptors.dlib_torch import embed_chips

        v = embed_chips(chips, self.net)
        if self.flip:
            v = v + embed_chips(np.ascontiguousarray(chips[:, :, ::-1]), self.net)
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature:
        vec = self.embed_chips(self.chip(image, face)[None])[0]
        return Signature(vector=vec, mask=None, kind=self.name)
