"""Shipped GoDP weights: verified loading (export from a training run: :mod:`training.godp`).

Weights live in ``landmarks/godp/weights/`` as safetensors files (no pickle), listed in
``MANIFEST.json`` (:mod:`pipeline.manifest`) with their sha256, the architecture config, the
training command, the epoch and the validation figures. :func:`load_model` refuses a file whose
sha256 differs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from landmarks.godp.network import GoDP, GodpConfig
from pipeline import manifest as manifests
from pipeline.errors import ModelFileError

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / manifests.MANIFEST_NAME
#: the manifest of a weights folder that has none yet
EMPTY_MANIFEST: dict[str, Any] = {"default": None, "files": {}}


def read_manifest(folder: Path | None = None) -> dict:
    """The GoDP weights manifest of ``folder`` (default :data:`WEIGHTS_DIR`); an empty one
    (no default, no files) when the folder has none yet."""
    return manifests.read_manifest(
        WEIGHTS_DIR if folder is None else folder,
        what="GoDP weights",
        command="python -m training.godp export --out RUN",
        empty=EMPTY_MANIFEST,
    )


def load_model(name: str | None = None) -> GoDP:
    """Build GoDP and load the shipped weights ``name`` (default: the manifest's default)."""
    from safetensors.torch import load_file

    folder = WEIGHTS_DIR
    man = read_manifest(folder)
    name = name or man.get("default")
    if not name or name not in man["files"]:
        raise ModelFileError(
            "no trained GoDP weights are shipped in landmarks/godp/weights (see MANIFEST.json); "
            "train them with `python -m training.godp` or use --landmarker dlib"
        )
    entry = manifests.entry(folder, name, manifest=man)
    path = manifests.verified_path(folder, entry, "GoDP weights")
    cfg = GodpConfig(**entry["config"])
    model = GoDP(cfg)
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(
            f"GoDP weights {path} do not fit the network (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.eval()
    model.visibility_threshold = entry.get("visibility_threshold", 0.05)
    model.weights_sha256 = entry["sha256"]
    return model
