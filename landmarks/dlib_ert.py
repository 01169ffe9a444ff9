"""dlib baseline landmarker: the ERT 68-point shape predictor (Kazemi & Sullivan 2014, iBUG
300-W training), mapped to the 19 AFLW points (SPEC section 1). dlib has no notion of
self-occlusion, so every point is reported visible with score 1.
"""

from __future__ import annotations

import numpy as np

from pipeline.manifest import dlib_model_path
from pipeline.types import IBUG68_TO_AFLW19, NUM_LANDMARKS, Box, Landmarks, ibug68_to_aflw19  # noqa: F401 - IBUG68_TO_AFLW19 re-exported


class DlibLandmarker:
    """dlib ``shape_predictor_68_face_landmarks`` on the given box, mapped to AFLW-19."""

    name = "dlib"

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))

    def predict68(self, image: np.ndarray, box: Box) -> np.ndarray:
        x0, y0, x1, y1 = box
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
        shape = self._sp(np.ascontiguousarray(image), rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def predict(self, image: np.ndarray, box: Box) -> Landmarks:
        pts = ibug68_to_aflw19(self.predict68(image, box))
        return Landmarks(
            points=pts,
            visible=np.ones(NUM_LANDMARKS, bool),
            scores=np.ones(NUM_LANDMARKS),
            yaw_subspace=None,
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )
