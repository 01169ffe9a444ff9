"""Shipped GoDP weights: verified loading (export from a training run: :mod:`training.godp`).

Weights live in ``landmarks/godp/weights/`` as safetensors files (no pickle), listed in
``MANIFEST.json`` with their sha256, the architecture config, the training command, the
epoch and the validation figures. :func:`load_model` refuses a file whose sha256 differs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path


from landmarks.godp.network import GoDP, GodpConfig
from pipeline.errors import ModelFileError
from pipeline.modelfiles import verify_file

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "MANIFEST.json"


def read_manifest() -> dict:
    if not MANIFEST.exists():
        return {"default": None, "files": {}}
    return json.loads(MANIFEST.read_text())


def load_model(name: str | None = None) -> GoDP:
    """Build GoDP and load the shipped weights ``name`` (default: the manifest's default)."""
    from safetensors.torch import load_file

    man = read_manifest()
    name = name or man.get("default")
    if not name or name not in man["files"]:
        raise ModelFileError(
            "no trained GoDP weights are shipped in landmarks/godp/weights (see MANIFEST.json); "
            "train them with `python -m training.godp` or use --landmarker dlib")
    entry = man["files"][name]
    path = verify_file(WEIGHTS_DIR / name, entry["sha256"], "GoDP weights")
    cfg = GodpConfig(**entry["config"])
    model = GoDP(cfg)
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(f"GoDP weights {path} do not fit the network (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    model.eval()
    model.visibility_threshold = entry.get("visibility_threshold", 0.05)
    model.weights_sha256 = entry["sha256"]
    return model
