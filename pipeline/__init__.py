"""godp-face: 3D-aided face recognition at any head pose.

The composed API, imported lazily (``import pipeline.types`` from a stage loads none of it)::

    from pipeline import Pipeline, load_image
    face = Pipeline().run(load_image("examples/probes/orl_s01_3.png"))[0]
    face.landmarks.points, face.signature.vector

Layers: the core (:mod:`pipeline.types`, :mod:`pipeline.errors`, :mod:`pipeline.imageio`,
:mod:`pipeline.registry`, :mod:`pipeline.atomic`, the weight manifests) is used by the stage packages
(:mod:`pipeline.detection`, ``landmarks``, ``recon3d``, ``descriptors``); the composition
(:mod:`pipeline.pipeline`, :mod:`pipeline.gallery`, :mod:`pipeline.index`, the CLIs) sits on top.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("godp-face")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "Pipeline": "pipeline.pipeline",
    "PipelineConfig": "pipeline.config",
    "load_image": "pipeline.imageio",
    "FaceResult": "pipeline.types",
    "Gallery": "pipeline.gallery",
    "enroll": "pipeline.gallery",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
