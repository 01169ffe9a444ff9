"""dlib baseline landmarker: the ERT 68-point shape predictor (Kazemi & Sullivan 2014, iBUG
300-W training), mapped to the 19 AFLW points (SPEC section 1). dlib has no notion of
self-occlusion, so every point is reported visible with score 1.
"""
from __future__ import annotations

import numpy as np

from pipeline.modelfiles import dlib_model_path
from pipeline.types import NUM_LANDMARKS, Box, Landmarks

#: iBUG-68 (1-based) ids whose mean gives each AFLW-19 point, in AFLW-19 order (SPEC section 1).
IBUG68_TO_AFLW19: tuple[tuple[int, ...], ...] = (
    (18,), (20,), (22,), (23,), (25,), (27,),          # brows
    (37,), (37, 38, 39, 40, 41, 42), (40,),            # image-left eye: outer, centre, inner
    (43,), (43, 44, 45, 46, 47, 48), (46,),            # image-right eye: inner, centre, outer
    (32,), (31,), (36,),                               # nose: left wing, tip, right wing
    (49,), (63, 67), (55,),                            # mouth: left corner, centre, right corner
    (9,),                                              # chin
)


def ibug68_to_aflw19(pts68: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG points -> (19, 2) AFLW points."""
    pts68 = np.asarray(pts68, dtype=np.float64)
    if pts68.shape != (68, 2):
        raise ValueError(f"expected (68, 2) iBUG points, got {pts68.shape}")
    return np.stack([pts68[[i - 1 for i in ids]].mean(0) for ids in IBUG68_TO_AFLW19])


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
        return Landmarks(points=pts, visible=np.ones(NUM_LANDMARKS, bool),
                         scores=np.ones(NUM_LANDMARKS), yaw_subspace=None, box=tuple(map(float, box)))
