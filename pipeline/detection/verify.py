"""``lm-verify``: re-centre detector boxes on the face with GoDP landmarks, rank them by landmark confidence.

The HOG mixture (``dpm``) proposes boxes; on real in-the-wild photos its best-scoring box is often a
face part or a background patch, and the true face is a weaker, off-centre candidate. This refiner
treats the detector as a *proposal* stage and lets the landmark network decide, in the spirit of the
seed paper's detect -> refine -> landmark cascade:

1. the ``bbox-cnn`` regressor maps each of the ``candidates`` (4) best detector boxes (plus the
   ``largest`` (3) biggest ones, so a big face is never crowded out by small high-scoring windows) to an
   AFLW-style box;
2. GoDP on the single unperturbed ROI of each box (one batched forward pass) predicts the 19 points;
   the box is replaced by the one the point layout implies (:mod:`pipeline.detection.landmark_box`)
   and step 2 repeats ``iterations`` (2) times (a fixed-point iteration: an off-centre box moves onto
   the face, a box on the face stays);
3. each candidate's landmark confidence is the mean of its 10 highest landmark peak probabilities
   (softmax probabilities in [0, 1]); with ``face_check`` (the default) a small CNN looks at the
   re-centred box and its logit is fused with that confidence into p(face)
   (:mod:`pipeline.detection.face_check`), and a candidate below the check's trained floor is not a
   face (without the check: a landmark confidence below ``min_confidence``, 0.65); ``floor``
   overrides the threshold (0 keeps the best candidate of every image that has one);
4. the faces are ranked by landmark confidence and merged when they converged onto the same face
   (IoU > ``merge_iou``, 0.5). Optionally (``resolve_nested=True``, off by default) two faces that
   *nest* (the smaller one at least 80 % inside the bigger one with at most 0.4 of its area: a mouth
   box inside the face, or the face inside a box twice its side) are resolved to the one with the
   higher p(face). Off by default because it costs real faces: on the 300 AFLW2000-3D dev faces of
   ``check_detection.py`` 95.0 % instead of 96.3 % (``docs/detection/RESULTS.md``).
5. optionally (``part_veto=True``, off by default), a **part veto**: while the first face sits
   *nested* inside a bigger surviving face (:func:`pipeline.detection.boxes.nested`: an eye, nose or
   mouth box inside the face) and a second check, trained with face parts as non-faces and a crop
   with twice the context (``part_check`` in the manifest), scores it below that check's floor, it is
   dropped and the next face moves up (:func:`veto_parts`). Faces that are not nested in a bigger
   one are never touched, so the veto cannot add a false positive. Off by default: it finds more
   pitched full profiles of the synthetic UHDB31-protocol set at 256 px but 2 fewer of the 300 real
   AFLW2000-3D faces of ``check_detection.py`` (95.7 % instead of 96.3 %, ``docs/detection/RESULTS.md``).

The check *gates* and the landmark network *ranks*: the CNN logit saturates (p > 0.99) on face-like
parts, so ranking by p(face) picks a wrong box on more real profile faces (89 instead of 92 of 100
AFLW2000-3D faces at 60-90 degrees, ``docs/detection/RESULTS.md``).

``Detection.score`` of the result is the landmark confidence; ``Detection.view`` stays the detector's
component (e.g. the dpm view) of the candidate it came from. The pipeline then takes the *most
confident* face instead of the largest. Models: ``pipeline/detection/models/MANIFEST.json``
(``landmark_box``, ``face_check``, ``part_check``; each records the GoDP sha256 it was fitted for).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.detection.boxes import iou, nested
from pipeline.imageio import to_gray_u8
from pipeline.types import Box, Detection

log = logging.getLogger(__name__)


def landmark_confidence(scores: np.ndarray, top: int = 10) -> float:
    """Mean of the ``top`` highest per-landmark peak probabilities (19,) -> [0, 1]."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    return float(s[-min(top, len(s)) :].mean())


def load_regressor(model_dir: Path | None = None) -> tuple[np.ndarray, dict]:
    """The landmarks -> box regressor ``W`` (39, 3) and its manifest entry, sha256-verified."""
    from pipeline.detection.dpm import MODEL_DIR, load_manifest
    from pipeline.errors import ModelFileError
    from pipeline.manifest import entry as manifest_entry
    from pipeline.manifest import verified_path

    model_dir = Path(MODEL_DIR if model_dir is None else model_dir)
    entry = manifest_entry(
        model_dir,
        "landmark_box",
        manifest=load_manifest(model_dir),
        what="detector",
        command="python -m training.landmark_box",
    )
    path = verified_path(model_dir, entry, "landmark-box regressor")
    with np.load(path, allow_pickle=False) as z:
        W = np.asarray(z["W"], dtype=np.float64)
    if W.shape != (39, 3):
        raise ModelFileError(f"{path}: regressor has shape {W.shape}, expected (39, 3); refit it")
    return W, entry


class LandmarkVerifyRefiner:
    """Registered refiner ``lm-verify`` (the default); see the module docstring."""

    name = "lm-verify"
    #: a verifying refiner (:class:`pipeline.types.VerifyingRefiner`): the pipeline calls :meth:`verify`
    #: and keeps the most confident face, not the largest
    ranks_by_score = True

    def __init__(
        self,
        candidates: int = 4,
        largest: int = 3,
        iterations: int = 2,
        min_confidence: float = 0.65,
        merge_iou: float = 0.5,
        model_dir=None,
        landmarker=None,
        face_check: bool = True,
        floor: float | None = None,
        resolve_nested: bool = False,
        part_veto: bool = False,
    ):
        from landmarks.godp.infer import GodpLandmarker
        from pipeline.detection.bbox_cnn import BboxCnnRefiner
        from pipeline.detection.face_check import FaceCheck

        self.candidates, self.largest, self.iterations = int(candidates), int(largest), int(iterations)
        self.min_confidence, self.merge_iou = float(min_confidence), float(merge_iou)
        self.resolve_nested = bool(resolve_nested)
        self.boxnet = BboxCnnRefiner(model_dir)
        self.W, entry = load_regressor(model_dir)
        self.godp = landmarker or GodpLandmarker(n_rois=1)
        self.check = FaceCheck(model_dir) if face_check else None
        # opt-in, so a manifest without 'part_check' is an error that says how to train it
        self.part = FaceCheck(model_dir, entry="part_check") if part_veto else None
        for sha, fix in (
            (
                entry.get("godp_sha256"),
                "the landmark-box regressor was fitted for other GoDP weights; "
                "refit it with 'python -m training.landmark_box'",
            ),
            (
                self.check and self.check.godp_sha256,
                "the face check was trained with other GoDP weights; retrain it with 'python -m training.face_check'",
            ),
            (
                self.part and self.part.godp_sha256,
                "the part check was trained with other GoDP "
                "weights; retrain it with 'python -m training.face_check --entry "
                "part_check ...' (training/face_check.py)",
            ),
        ):
            if sha and sha != self.godp.model.weights_sha256:
                log.warning(fix)
        if floor is not None:  # overrides the check's trained floor (or min_confidence without the check)
            self.floor = float(floor)
        else:
            self.floor = self.min_confidence if self.check is None else self.check.floor
        check = "none" if self.check is None else self.check.cache_token
        self.cache_token = (
            f"c{self.candidates}l{self.largest}i{self.iterations}f{self.floor:g}"
            f"{'n' if self.resolve_nested else ''}-"
            f"{entry['sha256'][:12]}-{self.boxnet.cache_token[:12]}-{self.godp.model.weights_sha256[:12]}"
            f"-check{check}" + ("" if self.part is None else f"-part{self.part.cache_token}")
        )

    def _pool(self, dets: list[Detection]) -> list[Detection]:
        best = sorted(dets, key=lambda d: -d.score)[: self.candidates]
        big = sorted(dets, key=lambda d: -d.area)[: self.largest]
        return best + [d for d in big if not any(d is b for b in best)]

    def converge(self, gray: np.ndarray, pool: list[Detection]) -> tuple[list, list]:
        """Steps 1-2 of the module docstring for every candidate of ``pool`` on the uint8 ``gray``
        image: bbox-cnn boxes re-centred ``iterations`` times on GoDP's 1-ROI landmarks. Returns
        (boxes, landmarks), one each per candidate, in pool order."""
        from pipeline.detection.landmark_box import box_from_landmarks

        boxes = self.boxnet.predict(gray, [d.box for d in pool])
        lms = self.godp.predict_batch(gray, boxes)
        for _ in range(self.iterations):
            boxes = [box_from_landmarks(lm.points, self.W) for lm in lms]
            lms = self.godp.predict_batch(gray, boxes)
        return boxes, lms

    def scored(self, image: np.ndarray, dets: list[Detection]) -> list[tuple[float, float, Box, str | None]]:
        """Every pooled candidate re-centred and scored: ``(landmark confidence, p(face), box, view)``,
        most confident first (p(face) is the landmark confidence itself without the check)."""
        pool = self._pool(dets)
        if not pool:
            return []
        gray = to_gray_u8(image)
        boxes, lms = self.converge(gray, pool)
        conf = np.array([landmark_confidence(lm.scores) for lm in lms])
        prob = conf if self.check is None else self.check.probability(gray, boxes, conf)
        out: list[tuple[float, float, Box, str | None]] = [
            (float(c), float(p), (float(b[0]), float(b[1]), float(b[2]), float(b[3])), d.view)
            for c, p, b, d in zip(conf, prob, boxes, pool)
        ]
        return sorted(out, key=lambda t: -t[0])

    def verify(self, image: np.ndarray, dets: list[Detection], min_confidence: float | None = None) -> list[Detection]:
        """Candidates -> verified faces, most confident first (possibly empty): the candidates whose
        p(face) reaches the floor, ranked by landmark confidence (``Detection.score``).
        ``min_confidence`` overrides the floor (on p(face), or on the landmark confidence without
        the check)."""
        return self.veto(image, self.select(self.scored(image, dets), min_confidence))

    def veto(self, image: np.ndarray, faces: list[Detection]) -> list[Detection]:
        """Step 5 of the module docstring on :meth:`select`'s ``faces`` (unchanged without ``part_veto``)."""
        if self.part is None or len(faces) < 2:
            return faces
        gray = to_gray_u8(image)
        prob = self.part.probability(gray, [d.box for d in faces], np.array([d.score for d in faces]))
        return veto_parts(faces, prob, self.part.floor)

    def select(
        self, scored: list[tuple[float, float, Box, str | None]], min_confidence: float | None = None
    ) -> list[Detection]:
        """The faces among :meth:`scored` candidates: p(face) >= the floor (or ``min_confidence``),
        in their landmark-confidence order, a candidate dropped when it overlaps a kept one by IoU >
        ``merge_iou``; with ``resolve_nested``, a candidate nested with a kept face
        (:func:`pipeline.detection.boxes.nested`) replaces it, in its place, when its p(face) is
        higher, and is dropped otherwise."""
        floor = self.floor if min_confidence is None else min_confidence
        out: list[tuple[Detection, float]] = []
        for conf, prob, box, view in scored:
            if prob < floor or any(iou(box, o.box) > self.merge_iou for o, _ in out):
                continue
            k = next((k for k, (o, _) in enumerate(out) if nested(box, o.box)), None) if self.resolve_nested else None
            if k is None:
                out.append((Detection(box, conf, view), prob))
            elif prob > out[k][1]:
                out[k] = (Detection(box, conf, view), prob)
        return [d for d, _ in out]

    def refine(self, image: np.ndarray, detection: Detection) -> Detection:
        """One detection re-centred (its confidence as score, even when below ``min_confidence``)."""
        return self.verify(image, [detection], min_confidence=-1.0)[0]


def veto_parts(faces: list[Detection], part_prob, floor: float) -> list[Detection]:
    """Step 5 of the module docstring: ``faces`` (best first) with their part-check probabilities
    ``part_prob`` (N,); while the first face is nested inside a *bigger* later face
    (:func:`pipeline.detection.boxes.nested`) and its probability is below ``floor``, it is dropped.
    Returns the remaining faces, in order."""
    pairs = list(zip(faces, (float(p) for p in part_prob)))
    while (
        len(pairs) > 1
        and pairs[0][1] < floor
        and any(nested(pairs[0][0].box, o.box) and pairs[0][0].area < o.area for o, _ in pairs[1:])
    ):
        pairs = pairs[1:]
    return [d for d, _ in pairs]
