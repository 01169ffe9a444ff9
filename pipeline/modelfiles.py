"""Compatibility re-export: the model-file helpers now live in :mod:`pipeline.manifest`."""
from __future__ import annotations

from pipeline.manifest import DLIB_MODELS, dlib_model_path, save_state_dict, sha256_file, verify_file  # noqa: F401
