"""The deep 2D baseline descriptor: dlib's ResNet face recognition model (128-d, trained by
Davis King on about 3 million faces; 99.38 % on LFW), on the 150x150 chip dlib aligns with its
5-point shape predictor. No 3D: this is the "2D deep descriptor" the paper compares against.

Alignment (``align``): ``"landmarks"`` (default) builds dlib's 5 alignment points from the
pipeline's 19 AFLW landmarks (eye corners, and the nose bottom as the midpoint of the nose
wings), so the chip does not depend on the detector's box convention (dlib's 5-point predictor
was trained on dlib-HOG boxes, which are smaller than the AFLW-style boxes of ``dpm`` +
``bbox-cnn``); ``"dlib"`` runs dlib's 5-point predictor in the detection box, as dlib does.
Without landmarks (``--landmarker`` not run) the ``dlib`` alignment is used.
"""

from __future__ import annotations

import numpy as np

from pipeline.manifest import dlib_model_path
from pipeline.types import FaceResult, Signature


class DlibResnetDescriptor:
    """128-d L2-normalised dlib ResNet embedding of the face in ``face.detection.box``."""

    name = "dlib-resnet"
    needs_3d = False
    #: with the default ``align="landmarks"``; an instance built with ``align="dlib"`` sets it False
    needs_landmarks = True
    #: dlib's 5 alignment points from the AFLW-19 landmarks: image-right eye outer / inner corner,
    #: image-left eye outer / inner corner (dlib's part order), nose bottom = mean of the nose wings.
    FIVE_FROM_AFLW = ((11,), (9,), (6,), (8,), (12, 14))

    def __init__(self, jitter: int = 0, align: str = "landmarks"):
        import dlib

        if align not in ("landmarks", "dlib"):
            raise ValueError(f"align must be 'landmarks' or 'dlib', got {align!r}")
        self.align = align
        self.needs_landmarks = align == "landmarks"

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
        self._net = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))
        self.jitter = jitter

    def embed(self, image: np.ndarray, box, points: np.ndarray | None = None) -> np.ndarray:
        """(128,) unit-norm embedding of the face in ``box`` (x0, y0, x1, y1) of ``image``, aligned
        on the 19 AFLW ``points`` (19, 2) px when given (and ``align == "landmarks"``), else on
        dlib's 5-point predictor in the box."""
        x0, y0, x1, y1 = box
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
        img = np.ascontiguousarray(image)
        if self.align == "landmarks" and points is not None and np.isfinite(points).all():
            pts = [np.mean([points[i] for i in group], axis=0) for group in self.FIVE_FROM_AFLW]
            shape = self._dlib.full_object_detection(
                rect, [self._dlib.point(int(round(x)), int(round(y))) for x, y in pts]
            )
        else:
            shape = self._sp(img, rect)
        vec = np.asarray(self._net.compute_face_descriptor(img, shape, self.jitter), dtype=np.float32)
        vec /= max(float(np.linalg.norm(vec)), 1e-12)
        return vec

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature:
        lm = face.landmarks
        vec = self.embed(image, face.detection.box, None if lm is None else lm.points)
        return Signature(vector=vec, mask=None, kind=self.name)
