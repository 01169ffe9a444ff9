"""``dpm``: a multi-view mixture of HOG templates for heads from frontal to full profile.

The seed paper detects heads with a DPM "head hunter" (Mathias et al., ECCV 2014): a mixture of
view-specific HOG models covering frontal, half-profile and profile faces. This module is the
root-filter part of that design (no deformable parts): one linear template on Felzenszwalb HOG
(fHOG, 31-d cells of 8 px) per view, trained here with dlib's structural SVM (max-margin object
detection, King 2015) on the face-profiling renders and the real AFLW training crops
(``python -m training.dpm``, which also writes the model manifest).

Components (``Detection.view``; left/right name where the nose points in the image, so
``*_left`` is yaw > 0 in the project convention):

* ``frontal``: abs(yaw) < 22.5 deg, trained with left-right flips;
* ``half_left`` / ``half_right``: 22.5 <= abs(yaw) < 60, one side trained on the mirror
  images of the other's data;
* ``profile_left`` / ``profile_right``: abs(yaw) >= 60; the shipped model splits each into three
  templates (below), because one linear template covers full profiles from pitch -40 to +40
  poorly (dlib's training recall 0.76-0.78 with one template per side, 0.92-0.98 with three).

A view may be split into sub-components (``python -m training.dpm --split profile=3``): its positives are
clustered by their HOG appearance (k-means) and each cluster gets its own template, named
``<view>#<k>`` (e.g. ``profile_left#2``), like the component initialisation of the DPM
(Felzenszwalb et al., PAMI 2010), which groups the positives by box aspect ratio -- by appearance
here, since every window is square. The manifest's ``components`` list names the templates of a model;
``Detection.view`` reports the component, :func:`base_view` its view.

All components are scanned in one image pyramid and their detections share one
non-maximum suppression (dlib ``run_multiple``), so one face gives one box, labelled with
the view whose template scored highest. The box is the square template window; the
``bbox-cnn`` refiner maps it to the AFLW-style face box GoDP expects.

Scale: the template window is ``window`` px (80). Faces of ``window`` px and more are found in a
pass over the image at its own resolution; when ``min_face`` is smaller, a second pass scans the
image up-sampled (at most 2 doublings, capped at ~4 Mpx) so that faces of ``min_face`` px reach
the window. The two passes are merged by IoU-only non-maximum suppression (:func:`nms`). They are
kept apart because dlib's suppression inside one pass also drops a box that *contains* a
higher-scoring one: in a single up-sampled pass, small spurious windows on an eye or the nose of
a large face suppress the face itself (on AFLW2000-3D dev, with one up-sampled pass the best of 12
candidates is a usable face box for 70 % of faces, without up-sampling for 84 %).
Images smaller than ``min_face`` give no faces.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.errors import ModelFileError
from pipeline.manifest import entry, read_manifest, verified_path
from pipeline.manifest import write_manifest as write_manifest  # re-exported for the training scripts
from pipeline.types import Detection

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent / "models"
VIEWS = ("frontal", "half_left", "half_right", "profile_left", "profile_right")


def base_view(component: str) -> str:
    """The view of a component name: ``"profile_left#2"`` -> ``"profile_left"``."""
    return component.split("#", 1)[0]


def components(manifest: dict) -> list[str]:
    """The template names of a detector manifest (older manifests: the five views)."""
    return list(manifest.get("components", VIEWS))


def load_manifest(model_dir: Path = MODEL_DIR) -> dict:
    """The detector manifest of ``model_dir`` (:func:`pipeline.manifest.read_manifest`; a missing
    one names ``python -m training.dpm``). Written with :func:`pipeline.manifest.write_manifest`,
    re-exported here as ``write_manifest``."""
    return read_manifest(Path(model_dir), what="detector", command="python -m training.dpm")


def nms(dets: list[Detection], max_iou: float = 0.5) -> list[Detection]:
    """Greedy non-maximum suppression by IoU only, best score first."""
    from pipeline.detection.boxes import iou

    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) <= max_iou for k in keep):
            keep.append(d)
    return keep


def upsample_levels(shape: tuple[int, int], min_face: int, window: int, max_pixels: float = 4e6) -> int:
    """Pyramid doublings so faces of ``min_face`` px reach the ``window`` size (<= 2, capped)."""
    up = 0
    size = float(max(min_face, 1))
    while size < window * 0.95 and up < 2:
        size *= 2
        up += 1
    while up > 0 and shape[0] * shape[1] * 4**up > max_pixels:
        up -= 1
    return up


class DpmDetector:
    """Multi-view fHOG mixture (see the module docstring).

    min_face: smallest face side (px) looked for; threshold: added to every component's
    learned bias (negative finds more faces, with more false positives); pad: fraction of
    the image size added as replicated border when nothing is found (tight crops); nms_iou:
    overlap above which the weaker of two boxes from different passes is dropped."""

    name = "dpm"
    #: threshold used when a verifying refiner (``lm-verify``) re-ranks the candidates: more
    #: proposals, the false ones rejected by the landmark check (see ``pipeline.detection.verify``)
    proposal_threshold: float | None = -0.6

    def __init__(
        self,
        min_face: int = 40,
        threshold: float = 0.0,
        pad: float = 0.25,
        model_dir: str | Path = MODEL_DIR,
        nms_iou: float = 0.5,
    ):
        import dlib

        self.min_face, self.threshold, self.pad = int(min_face), float(threshold), float(pad)
        self.nms_iou = float(nms_iou)
        man = load_manifest(Path(model_dir))
        self.window = int(man.get("window", 80))
        self.views: list[str] = []
        self._dets = []
        for view in components(man):
            if view not in man["files"]:
                raise ModelFileError(f"detector manifest lacks the '{view}' component; retrain the detector")
            path = verified_path(model_dir, entry(model_dir, view, manifest=man), f"dpm {view} template")
            self._dets.append(dlib.fhog_object_detector(str(path)))
            self.views.append(view)
        # gallery caches key on this: retrained templates invalidate cached signatures
        self.cache_token = (
            "-".join(man["files"][v]["sha256"][:8] for v in self.views) + f"-t{self.threshold:g}-n{self.nms_iou:g}"
        )

    def _run(self, gray: np.ndarray) -> list[Detection]:
        import dlib

        h, w = gray.shape[:2]
        if min(h, w) < self.min_face:
            return []
        up = upsample_levels((h, w), self.min_face, self.window)
        found = []
        for level in sorted({0, up}):
            rects, scores, idx = dlib.fhog_object_detector.run_multiple(
                self._dets, gray, upsample_num_times=level, adjust_threshold=self.threshold
            )
            found += [
                Detection(
                    (float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1)),
                    float(s),
                    self.views[int(i)],
                )
                for r, s, i in zip(rects, scores, idx)
            ]
        return nms(found, self.nms_iou)

    def detect(self, image: np.ndarray) -> list[Detection]:
        from pipeline.detection.dlib_detectors import pad_image
        from pipeline.imageio import to_gray_u8

        gray = np.ascontiguousarray(to_gray_u8(image))
        found = self._run(gray)
        if not found and self.pad > 0 and min(gray.shape) >= self.min_face:
            img, dx, dy = pad_image(gray, self.pad)
            found = [
                Detection((d.box[0] - dx, d.box[1] - dy, d.box[2] - dx, d.box[3] - dy), d.score, d.view)
                for d in self._run(np.ascontiguousarray(img))
            ]
        return sorted(found, key=lambda d: -d.score)
