"""``dpm+mmod``: the multi-view HOG mixture's proposals joined by dlib's MMOD CNN face boxes.

Why: on real AFLW2000-3D photos the landmark-verified front end (``lm-verify``) picks within 0.7
point of the best candidate it is given; its misses at 60-90 degrees of yaw are faces that no
``dpm`` proposal reaches (``docs/detection/RESULTS.md``, session 4). dlib's MMOD CNN, trained on a
far larger face set, matches 96.7 % of the 60-90 degree faces in the same benchmark (dpm 76.7 %)
but is ~10x slower; as extra proposals for the verifier it fills exactly that gap.

MMOD runs without up-sampling, so it adds faces of at least ``mmod_min_face`` px (its window is
~80 px), and on a copy shrunk to at most ``mmod_max_pixels`` (0.25 Mpx, ~1.3 s on one core; the
AFLW2000-3D photos, 450 x 450, run at full size), so its cost stays bounded on large photos; faces
it cannot see there still come from dpm's up-sampled pass. Its boxes (tight, dlib convention)
are put first in the score order (score = best dpm score + 1 + MMOD confidence, view ``"mmod"``),
so a verifying refiner's pool of best-scoring candidates always holds them; the refiner re-centres
every candidate on its landmarks, so the box convention does not matter there.
"""
from __future__ import annotations

from pipeline.detection.dpm import DpmDetector
from pipeline.types import Detection


class DpmMmodDetector:
    """Registered detector ``dpm+mmod``: dpm proposals plus MMOD boxes (see the module docstring)."""

    name = "dpm+mmod"
    proposal_threshold = DpmDetector.proposal_threshold  # a verifying refiner asks for weak candidates too

    def __init__(self, min_face: int = 40, threshold: float = 0.0, mmod_min_face: int = 80,
                 mmod_max_pixels: int = 250_000):
        from pipeline.detection.dlib_detectors import DlibMmodDetector

        self.dpm = DpmDetector(min_face=min_face, threshold=threshold)
        self.mmod = DlibMmodDetector(min_face=max(int(mmod_min_face), int(min_face)), pad=0.0)
        self.mmod_max_pixels = int(mmod_max_pixels)
        self.cache_token = f"{self.dpm.cache_token}+mmod{self.mmod.min_face}-{self.mmod_max_pixels}"

    def _mmod(self, image) -> list[Detection]:
        import cv2

        h, w = image.shape[:2]
        k = min(1.0, (self.mmod_max_pixels / max(h * w, 1)) ** 0.5)
        if k >= 1.0:
            return self.mmod.detect(image)
        small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        return [Detection(tuple(v / k for v in d.box), d.score, d.view) for d in self.mmod.detect(small)]

    def detect(self, image) -> list[Detection]:
        dets = self.dpm.detect(image)
        top = max((d.score for d in dets), default=0.0)
        extra = [Detection(d.box, top + 1.0 + d.score, "mmod") for d in self._mmod(image)]
        return sorted(extra + dets, key=lambda d: -d.score)
