"""The 3D-aided deep descriptor (``resnet-3d``): dlib's ResNet embedding of the 2D aligned face
fused with the embedding of the same face **frontalised** through the fitted 3D model.

The 2D embedding (:mod:`descriptors.dlib_resnet`) is strong on near-frontal faces and weak on
profiles, which it was not trained on; the frontal render of the fitted, UV-textured mesh
(:func:`recon3d.frontalize.frontalize`) brings a profile into the pose the network knows, at the
cost of a synthetic-looking face (mirrored half, no hair or ears). The template concatenates both
unit vectors, weighted::

    v = [sqrt(w) e_2d, sqrt(1 - w) e_front]          (256,) float32, ||v|| = 1
    cos(v_a, v_b) = w cos(e_2d_a, e_2d_b) + (1 - w) cos(e_front_a, e_front_b)

so plain cosine matching scores the weighted sum of the two similarities (``w`` =
``weight_2d``, 0.5 by default). On 239 real CFP profile probes of *training* subjects 001-060 against
a frontal gallery (the model-selection set; evaluation subjects 126-250 were not used), rank-1 was
45.6 % with the 2D embedding, 56.5 % with the frontal render alone and 62.8 % fused (w = 0.5;
0.3: 61.5, 0.7: 58.6), with frontal probes at 100 / 96.7 / 99.2 % (``docs/descriptors/RESULTS.md``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from descriptors.dlib_resnet import DlibResnetDescriptor
from pipeline.errors import FitError
from pipeline.types import FaceResult, Signature


class Resnet3dDescriptor:
    """256-d template: weighted concatenation of the 2D and the frontalised dlib ResNet embeddings."""

    name = "resnet-3d"
    needs_3d = True
    needs_landmarks = True

    #: the embedding network of both halves: dlib's own (``dlib``) or a torch descriptor's registry name
    backbone = "dlib"
    #: add the embedding of the mirrored chip in both halves (torch backbones only)
    flip = False

    def __init__(
        self,
        weight_2d: float = 0.5,
        jitter: int = 0,
        render_size: tuple[int, int] = (256, 306),
        backbone: str | None = None,
        flip: bool | None = None,
    ):
        if not 0.0 <= float(weight_2d) <= 1.0:
            raise ValueError(f"weight_2d must be in [0, 1], got {weight_2d!r}")
        self.weight_2d = float(weight_2d)
        self.render_size = (int(render_size[0]), int(render_size[1]))
        if backbone is not None:
            self.backbone = backbone
        if flip is not None:
            self.flip = bool(flip)
        token = f"{self.name}/v1/w{self.weight_2d:g}/j{jitter}/r{self.render_size[0]}x{self.render_size[1]}"
        if self.backbone == "dlib":
            if self.flip:
                raise ValueError("flip needs a torch backbone (e.g. backbone='dlib-resnet-torch')")
            self._resnet: Any = DlibResnetDescriptor(jitter=jitter, align="landmarks")
        else:
            if jitter:
                raise ValueError("jitter is available with the dlib backbone only")
            from pipeline.registry import DESCRIPTORS

            self._resnet = DESCRIPTORS.create(self.backbone, flip=self.flip)
            token += f"/{self.backbone}:{self._resnet.cache_token}"
        self.cache_token = token

    def frontal(self, face: FaceResult):
        """The frontal render (:class:`recon3d.render.Rendered`) of ``face`` (needs its fit and UV texture)."""
        from recon3d.frontalize import frontalize

        if face.fit is None or face.uv is None:
            raise FitError("resnet-3d needs the 3D fit and the lifted UV texture of the face")
        return frontalize(face.fit, face.uv, width=self.render_size[0], height=self.render_size[1])

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature:
        lm = face.landmarks
        e2d = self._resnet.embed(image, face.detection.box, None if lm is None else lm.points)
        r = self.frontal(face)
        efr = self._resnet.embed(r.image, r.box, r.landmarks)
        vec = np.concatenate([math.sqrt(self.weight_2d) * e2d, math.sqrt(1.0 - self.weight_2d) * efr])
        vec = (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)
        return Signature(vector=vec, mask=None, kind=self.name)


class Resnet3dFlipDescriptor(Resnet3dDescriptor):
    """``resnet-3d`` with test-time mirror averaging in both halves and the 2D weight 0.3.

    Selected on the CFP *training* subjects 101-125 (25 identities, gallery frontal/01, 100 profile
    probes; ``python -m training.pose_chips --subjects 101-125 --frontal``): profile rank-1 74 % for
    ``resnet-3d`` (w 0.5, no mirror), 76 % with w 0.3, 78 % with w 0.3 and mirrored chips; frontal
    probes 96.4 % for all three.
    """

    name = "resnet-3d-flip"
    backbone = "dlib-resnet-torch"
    flip = True

    def __init__(self, weight_2d: float = 0.3, **kw: Any):
        super().__init__(weight_2d=weight_2d, **kw)
