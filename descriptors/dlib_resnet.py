"""The deep 2D baseline descriptor: dlib's ResNet face recognition model (128-d, trained by
Davis King on about 3 million faces; 99.38 % on LFW), on the 150x150 chip dlib aligns with its
5-point shape predictor. No 3D: this is the "2D deep descriptor" the paper compares against.
"""
from __future__ import annotations

import numpy as np

from pipeline.modelfiles import dlib_model_path
from pipeline.types import FaceResult, Signature


class DlibResnetDescriptor:
    """128-d L2-normalised dlib ResNet embedding of the face in ``face.detection.box``."""

    name = "dlib-resnet"
    needs_3d = False
    needs_landmarks = False  # dlib aligns the chip with its own 5-point shape predictor

    def __init__(self, jitter: int = 0):
        import dlib

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
        self._net = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))
        self.jitter = jitter

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature:
        x0, y0, x1, y1 = face.detection.box
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
        img = np.ascontiguousarray(image)
        shape = self._sp(img, rect)
        vec = np.asarray(self._net.compute_face_descriptor(img, shape, self.jitter), dtype=np.float32)
        vec /= max(float(np.linalg.norm(vec)), 1e-12)
        return Signature(vector=vec, mask=None, kind=self.name)
