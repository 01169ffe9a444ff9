"""Name -> implementation registries, one per stage.

Entries are registered lazily as ``"module:attribute"`` strings so that choosing a stage
imports only what it needs (dlib, torch, ... are imported on first use). A registry entry
is a factory: calling it with keyword options returns a ready stage object. Each registry names
the protocol of its stage kind (:mod:`pipeline.types`: ``Detector``, ``Refiner``, ``Landmarker``,
``Fitter``, ``Descriptor``); a registered factory (in practice the stage class) declares that
protocol's attributes itself (``proposal_threshold``, ``ranks_by_score``, ``needs_landmarks``,
``needs_3d``), because the pipeline reads them from :meth:`Registry.factory` before it builds the
stage (tests/pipeline/test_protocols.py checks every entry).

>>> from pipeline.registry import LANDMARKERS
>>> LANDMARKERS.names()            # doctest: +SKIP
['dlib', 'godp', 'mediapipe']
>>> lm = LANDMARKERS.create("dlib")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from pipeline.errors import ConfigError, NotBuiltError
from pipeline.types import Descriptor, Detector, Fitter, Landmarker, Refiner


class Registry:
    """A named collection of stage factories; ``protocol``: the stage kind's protocol (or None)."""

    def __init__(self, stage: str, protocol: type | None = None):
        self.stage = stage
        self.protocol = protocol
        self._entries: dict[str, str | Callable[..., Any]] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, target: str | Callable[..., Any], help: str = "") -> None:
        """Register ``target`` (a factory or a lazy ``"module:attr"`` string) under ``name``."""
        self._entries[name] = target
        self._help[name] = help

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self) -> str:
        """One line per entry, for ``--help`` texts."""
        return "; ".join(f"{n}: {self._help[n]}" if self._help[n] else n for n in self.names())

    def factory(self, name: str) -> Any:
        """The factory registered as ``name`` (imported on first use): a stage class, or a callable
        that declares the stage attributes of the registry's protocol like a class does."""
        if name not in self._entries:
            raise ConfigError(f"unknown {self.stage} {name!r}; choose one of: {', '.join(self.names())}")
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            try:
                mod = importlib.import_module(module)
            except ImportError as e:  # an optional extra that is not installed
                raise ConfigError(
                    f"{self.stage} {name!r} needs a package that is not installed ({e.name or e}); "
                    f"see the README section 'Optional extras'"
                ) from e
            target = getattr(mod, attr)
            self._entries[name] = target
        return target

    def create(self, name: str, **options: Any) -> Any:
        """Build the stage registered as ``name`` with ``options``."""
        factory = self.factory(name)
        try:
            return factory(**options)
        except ImportError as e:  # an optional dependency imported by the constructor
            raise ConfigError(
                f"{self.stage} {name!r} needs a package that is not installed ({e.name or e}); "
                f"see the README section 'Optional extras'"
            ) from e


def _not_built(stage: str, issue: int, what: str) -> Callable[..., Any]:
    """A placeholder factory that raises NotBuiltError; it declares the neutral stage attributes
    (no proposal threshold, a plain refiner, needs landmarks and 3D) so the pipeline reaches it
    and reports the missing stage."""

    def factory(**_: Any) -> Any:
        raise NotBuiltError(
            f"the {stage} stage '{what}' is not built yet (issue #{issue}); "
            f"choose another with --{stage} or see the README status table"
        )

    factory.proposal_threshold = None  # type: ignore[attr-defined]
    factory.ranks_by_score = False  # type: ignore[attr-defined]
    factory.needs_landmarks = True  # type: ignore[attr-defined]
    factory.needs_3d = True  # type: ignore[attr-defined]
    return factory


DETECTORS = Registry("detector", Detector)
REFINERS = Registry("refiner", Refiner)
LANDMARKERS = Registry("landmarker", Landmarker)
FITTERS = Registry("fitter", Fitter)
DESCRIPTORS = Registry("descriptor", Descriptor)

DETECTORS.register(
    "dlib-hog",
    "pipeline.detection.dlib_detectors:DlibHogDetector",
    "dlib's frontal HOG + linear SVM detector (5 views, frontal to ~45 deg)",
)
DETECTORS.register(
    "dlib-mmod", "pipeline.detection.dlib_detectors:DlibMmodDetector", "dlib's MMOD CNN face detector (slow on CPU)"
)
DETECTORS.register(
    "dpm+mmod",
    "pipeline.detection.union:DpmMmodDetector",
    "dpm proposals plus dlib's MMOD CNN boxes (the default; better on profiles, several times slower)",
)
DETECTORS.register(
    "dpm",
    "pipeline.detection.dpm:DpmDetector",
    "multi-view fHOG mixture, frontal / half / full profile on both sides (the fast front end)",
)

REFINERS.register("none", "pipeline.detection.refine:IdentityRefiner", "use the detector box as is")
REFINERS.register(
    "bbox-cnn", "pipeline.detection.bbox_cnn:BboxCnnRefiner", "small CNN: detector box -> AFLW-style face box"
)
REFINERS.register(
    "lm-verify",
    "pipeline.detection.verify:LandmarkVerifyRefiner",
    "bbox-cnn, then re-centring on GoDP landmarks, a face / non-face check "
    "and ranking by landmark confidence (the default)",
)

LANDMARKERS.register(
    "dlib",
    "landmarks.dlib_ert:DlibLandmarker",
    "dlib ERT 68-point shape predictor mapped to AFLW-19, visibility all true",
)
LANDMARKERS.register(
    "godp", "landmarks.godp.infer:GodpLandmarker", "GoDP dual-pathway DeconvNet, 16-ROI median (the default)"
)
LANDMARKERS.register(
    "mediapipe",
    "landmarks.mediapipe_mesh:MediapipeLandmarker",
    "MediaPipe face mesh 468 -> AFLW-19 (optional extra .[mediapipe])",
)
LANDMARKERS.register("godp-1roi", "landmarks.godp.infer:GodpLandmarker1Roi", "GoDP on the single unperturbed ROI")

FITTERS.register(
    "sfm",
    "recon3d.fit:SfmFitter",
    "Surrey Face Model: scaled-orthographic pose + regularised linear shape/expression fit",
)
FITTERS.register("mean", "recon3d.fit:MeanShapeFitter", "baseline: camera only, mean shape")

DESCRIPTORS.register(
    "dlib-resnet", "descriptors.dlib_resnet:DlibResnetDescriptor", "dlib ResNet 128-d on the 2D aligned crop (no 3D)"
)
DESCRIPTORS.register(
    "dlib-resnet-torch",
    "descriptors.resnet_torch:TorchResnetDescriptor",
    "dlib-resnet's network ported to torch (same 128-d embedding, landmark-aligned chip, batched)",
)
DESCRIPTORS.register(
    "resnet-3d",
    "descriptors.resnet3d:Resnet3dDescriptor",
    "dlib ResNet on the 2D crop fused with the face frontalised through the 3D fit (the default)",
)
DESCRIPTORS.register(
    "resnet-3d-flip",
    "descriptors.resnet3d:Resnet3dFlipDescriptor",
    "resnet-3d with mirrored chips averaged in both halves and the 2D weight 0.3 (torch backbone)",
)
DESCRIPTORS.register(
    "dfd", "descriptors.dfd:DfdDescriptor", "DFD-style learned descriptor on the UV texture, 65,536-d, region-masked"
)
DESCRIPTORS.register("dfd-pca", "descriptors.dfd:DfdCompactDescriptor", "DFD compressed by PCA + whitening (128-d)")
DESCRIPTORS.register("lbp", "descriptors.lbp:LbpDescriptor", "uniform LBP histograms on the UV texture")
