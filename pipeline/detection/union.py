"""``dpm+mmod``: the multi-view HOG mixture's proposals joined by dlib's MMOD CNN face boxes.

Why: the landmark-verified front end (``lm-verify``) can only pick among the candidates it is given,
and on real photos at 60-90 degrees of yaw a ``dpm`` proposal on the face is sometimes missing.
dlib's MMOD CNN, trained on a far larger face set, finds most of those faces but is several times
slower than ``dpm``; as extra proposals for the verifier it fills that gap (without its boxes the
real-photo check drops from 92 to 89 of 100 faces at 60-90 degrees, ``docs/detection/RESULTS.md``).

MMOD runs on the image itself, or on a copy shrunk to at most ``mmod_max_pixels`` (0.25 Mpx, ~1.3 s
on one core), so its cost stays bounded on large photos -- faces it cannot see there (< 80 px in
the copy) still come from dpm's up-sampled pass. When it finds nothing and the image is small, it
runs once more on a copy enlarged by ``min(80 / min_face, sqrt(mmod_max_pixels / (h w)))``, so that
a ``min_face`` face fills its ~80 px window (``mmod_enlarge``): on the 128 px UHDB31-protocol set,
whose faces are ~50-70 px, MMOD otherwise adds nothing. Only as a fallback: enlarging every image
that has room (e.g. the 256 px set) lets MMOD's boxes crowd dpm's out of the verifier's pool and
loses faces there. Its boxes (tight, dlib convention) are put first in the score order (score = best
dpm score + 1 + MMOD confidence, view ``"mmod"``), so a verifying refiner's pool of best-scoring
candidates always holds them; the refiner re-centres every candidate on its landmarks, so the box
convention does not matter there.
"""

from __future__ import annotations

from pipeline.detection.dpm import DpmDetector
from pipeline.types import Detection


class DpmMmodDetector:
    """Registered detector ``dpm+mmod``: dpm proposals plus MMOD boxes (see the module docstring)."""

    name = "dpm+mmod"
    #: a verifying refiner asks for weak candidates too (the dpm proposals')
    proposal_threshold: float | None = DpmDetector.proposal_threshold

    MMOD_WINDOW = 80  # px: the smallest face dlib's MMOD CNN finds without up-sampling

    def __init__(
        self,
        min_face: int = 40,
        threshold: float = 0.0,
        mmod_max_pixels: int = 250_000,
        mmod_enlarge: bool = True,
        model_dir=None,
    ):
        from pipeline.detection.dlib_detectors import DlibMmodDetector
        from pipeline.detection.dpm import MODEL_DIR

        self.dpm = DpmDetector(min_face=min_face, threshold=threshold, model_dir=model_dir or MODEL_DIR)
        self.mmod = DlibMmodDetector(min_face=self.MMOD_WINDOW, pad=0.0)
        self.min_face = int(min_face)
        self.mmod_max_pixels = int(mmod_max_pixels)
        self.mmod_enlarge = bool(mmod_enlarge)
        self.cache_token = f"{self.dpm.cache_token}+mmod-{self.mmod_max_pixels}" + (
            "-upfallback" if self.mmod_enlarge else ""
        )

    def mmod_scales(self, height: int, width: int) -> tuple[float, float | None]:
        """Factors MMOD's copies of a ``height`` x ``width`` image are resized by: the first pass
        (<= 1) and the enlarged fallback pass (> 1; None when there is none), module docstring."""
        room = (self.mmod_max_pixels / max(height * width, 1)) ** 0.5
        up = min(room, self.MMOD_WINDOW / max(self.min_face, 1)) if self.mmod_enlarge else 1.0
        return min(1.0, room), (up if up > 1.0 + 1e-3 else None)

    def _mmod_at(self, image, k: float) -> list[Detection]:
        import cv2

        if abs(k - 1.0) < 1e-3:
            return self.mmod.detect(image)
        h, w = image.shape[:2]
        interp = cv2.INTER_AREA if k < 1.0 else cv2.INTER_LINEAR
        copy = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=interp)
        return [
            Detection((d.box[0] / k, d.box[1] / k, d.box[2] / k, d.box[3] / k), d.score, d.view)
            for d in self.mmod.detect(copy)
        ]

    def _mmod(self, image) -> list[Detection]:
        first, up = self.mmod_scales(*image.shape[:2])
        found = self._mmod_at(image, first)
        return found if found or up is None else self._mmod_at(image, up)

    @staticmethod
    def join(dpm: list[Detection], mmod: list[Detection]) -> list[Detection]:
        """dpm proposals and MMOD boxes in one score order, every MMOD box ahead of every dpm box."""
        top = max((d.score for d in dpm), default=0.0)
        extra = [Detection(d.box, top + 1.0 + d.score, "mmod") for d in mmod]
        return sorted(extra + dpm, key=lambda d: -d.score)

    def detect(self, image) -> list[Detection]:
        return self.join(self.dpm.detect(image), self._mmod(image))
