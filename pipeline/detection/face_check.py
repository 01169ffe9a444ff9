"""Face / non-face check of the ``lm-verify`` candidates: a small CNN on the re-centred box, fused
with the landmark confidence into one probability.

Why: GoDP's landmark confidence alone is a poor face / non-face test. It is what GoDP learned on
real AFLW faces; on faces it has seen little of -- full profiles with pitch, small (50-70 px) faces,
the face-mask renders of the UHDB31-protocol set -- it drops to 0.4-0.65, so a fixed floor on it
rejects the true face or lets an ear or a patch of hair through (``docs/detection/RESULTS.md``).
This stage is the last step of a cascade in the spirit of the seed paper's detect -> refine ->
landmark front end: after the landmark network has pulled each candidate onto what it takes for a
face, a classifier looks at that box and says whether it *is* one.

Model: :class:`pipeline.detection.bbox_cnn.BoxNet` with one output (a logit), on the same 64 x 64
gray crop with 1.5x context (:func:`pipeline.detection.bbox_cnn.crop_for`) of the candidate's
re-centred box. Its logit ``z`` and the candidate's landmark confidence ``c`` (mean of its 10 best
landmark peak probabilities) are fused by a logistic regression fitted on held-out candidates:

    p(face) = sigmoid(a * z + b * c + d)

A candidate with ``p`` below ``floor`` is not a face (the floor is chosen at training time on
held-out candidates; both in ``models/MANIFEST.json``); the faces that pass are ranked by the
landmark confidence (``pipeline.detection.verify``). Training: ``python -m
training.face_check`` (candidates of the shipped proposal + re-centring steps on
face-profiling renders, AFLW training crops and non-face images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.detection.bbox_cnn import CONTEXT, BoxNet, crops_for, to_input


def fuse(logit: np.ndarray, confidence: np.ndarray, coef) -> np.ndarray:
    """p(face) (N,) from the CNN logits (N,) and landmark confidences (N,); ``coef`` = (a, b, d)."""
    a, b, d = (float(v) for v in coef)
    z = a * np.asarray(logit, float) + b * np.asarray(confidence, float) + d
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


class FaceCheck:
    """The shipped face / non-face check (weights and fusion from the detector manifest)."""

    def __init__(self, model_dir: Path | None = None, entry: str = "face_check"):
        from safetensors.torch import load_file

        from pipeline.detection.dpm import MODEL_DIR, load_manifest
        from pipeline.manifest import entry as manifest_entry
        from pipeline.manifest import verified_path

        model_dir = MODEL_DIR if model_dir is None else Path(model_dir)
        spec = manifest_entry(
            model_dir,
            entry,
            manifest=load_manifest(model_dir),
            what="detector",
            command=f"python -m training.face_check --entry {entry}",
        )
        path = verified_path(model_dir, spec, "face-check weights")
        self.contexts = tuple(float(c) for c in spec.get("contexts", [CONTEXT]))
        self.net = BoxNet(int(spec.get("width", 16)), outputs=1, in_channels=len(self.contexts))
        self.net.load_state_dict(load_file(str(path)))
        self.net.eval()
        self.coef = tuple(float(v) for v in spec["fusion"])
        self.floor = float(spec["floor"])
        self.godp_sha256 = spec.get("godp_sha256")
        self.cache_token = f"{spec['sha256'][:12]}-{self.floor:g}"

    @torch.no_grad()
    def logits(self, gray: np.ndarray, boxes: list) -> np.ndarray:
        """CNN logits (N,) for boxes on a uint8 gray image."""
        if not boxes:
            return np.zeros(0)
        x = to_input(np.stack([crops_for(gray, b, self.contexts) for b in boxes]))
        return self.net(x)[:, 0].numpy().astype(float)

    def probability(self, gray: np.ndarray, boxes: list, confidences) -> np.ndarray:
        """p(face) (N,) of re-centred ``boxes`` with landmark ``confidences`` (module docstring)."""
        return fuse(self.logits(gray, boxes), confidences, self.coef)
