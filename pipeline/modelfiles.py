"""Locating and verifying model files.

Every model file the project uses is checked against a sha256 before it is loaded, so a
changed or corrupted file is a clear :class:`~pipeline.errors.ModelFileError`, not a crash or
a silently different model. dlib's model files come from the ``face_recognition_models``
PyPI package (version 0.3.0), located with ``importlib.util.find_spec`` because its
``__init__`` imports ``pkg_resources``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from pipeline.errors import ModelFileError

#: sha256 of the dlib model files in face_recognition_models 0.3.0.
DLIB_MODELS: dict[str, str] = {
    "shape_predictor_68_face_landmarks.dat": "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "mmod_human_face_detector.dat": "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=None)
def _verified(path: str, mtime_ns: int, size: int, expected: str) -> bool:
    return sha256_file(path) == expected


def verify_file(path: str | os.PathLike, expected: str, what: str = "model file") -> Path:
    """Return ``path`` if its sha256 is ``expected``; raise ModelFileError otherwise.

    The result is memoised per (path, mtime, size), so repeated loads cost one hash."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{what} {p} is missing; reinstall the package (pip install -e .)")
    st = p.stat()
    if not _verified(str(p), st.st_mtime_ns, st.st_size, expected):
        raise ModelFileError(
            f"{what} {p} does not match its recorded sha256 {expected[:12]}...; it was changed or "
            f"corrupted. Restore it (git checkout / reinstall) or retrain it with its recorded command")
    return p


def dlib_model_path(name: str) -> Path:
    """Path of a verified dlib model file from the ``face_recognition_models`` package."""
    if name not in DLIB_MODELS:
        raise ModelFileError(f"unknown dlib model file {name!r}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("the package face_recognition_models is not installed; "
                             "run: pip install face_recognition_models==0.3.0")
    base = Path(list(spec.submodule_search_locations)[0]) / "models"
    return verify_file(base / name, DLIB_MODELS[name], "dlib model file")


def save_state_dict(module, dest: str | os.PathLike) -> str:
    """Write a torch module's parameters to ``dest`` as safetensors, atomically (temporary file +
    rename); returns the file's sha256 for a manifest."""
    from safetensors.torch import save_file

    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
    tmp.replace(dest)
    return sha256_file(dest)
