"""Re-exports the model-file helpers of :mod:`pipeline.manifest` under this module's name."""

from __future__ import annotations

from pipeline.manifest import DLIB_MODELS, dlib_model_path, save_state_dict, sha256_file, verify_file  # noqa: F401 - re-exports
