"""Model-file manifests: the one module that reads, verifies and writes them.

Every model file the project ships lives in a folder next to a ``MANIFEST.json`` that records its
sha256, so a changed or corrupted file is a clear :class:`~pipeline.errors.ModelFileError`, not a
crash or a silently different model. Three folders are shipped (:data:`SHIPPED`):

* ``pipeline/detection/models/`` -- the ``dpm`` templates, the ``bbox-cnn`` refiner, the
  landmark-box regressor and the face / part checks (``python -m training.dpm``, ``.bbox_cnn``,
  ``.landmark_box``, ``.face_check``);
* ``landmarks/godp/weights/`` -- the GoDP weights (``python -m training.godp export``);
* ``descriptors/data/`` -- the DFD parameters (``python -m training.dfd``).

dlib's model files come from the ``face_recognition_models`` PyPI package (version 0.3.0), located
with ``importlib.util.find_spec`` because its ``__init__`` imports ``pkg_resources``; their sha256
are the table :data:`DLIB_MODELS`.

Manifest layout
---------------
A manifest is a JSON object. Its ``files`` object maps a name to a *record*; a manifest may also
hold records as top-level values (the detector manifest keeps its refiner and checks as
``refiner``, ``landmark_box``, ``face_check`` and ``part_check``) next to other settings
(``default``: the record a loader uses when none is named; ``components``, ``window``, ``config``,
``command``, ``history``, ``note``, ...). :func:`records` lists every record of a manifest.

Record schema (one record per shipped file; :func:`record` builds a new one):

``file``
    the file's name inside the folder; optional when the record's key in ``files`` is the file
    name (the GoDP and DFD manifests key their records by file name, the detector manifest by
    component name);
``sha256`` (required)
    hex digest of the file, checked by :func:`verified_path` before every load;
``config``
    the settings the file was made with that its loader needs (architecture, descriptor
    parameters, training hyper-parameters);
``command``
    the ``python -m training.<name> ...`` command line that reproduces the file;
``data``
    what it was trained on: training-set sizes and sources (and the full training configuration
    when ``config`` holds only what the loader needs); an object (a free-text string, as for a
    converted file, reads as ``{"description": text}``);
``figures``
    what was measured on it: validation / training figures and timings (an object);

plus loader parameters of that file (``width``, ``fusion``, ``floor``, ``contexts``,
``visibility_threshold``, ``godp_sha256``, ``bytes``, ``note``, ...).

The records committed before this schema keep their key names (the files are not rewritten, so
their bytes and history stay as they are); :func:`record_data` and :func:`record_figures` read both
layouts. The older keys that map to ``data`` and ``figures``:

* nested: ``train_config`` (GoDP) and ``training`` (DFD) are ``data``; ``validation`` (GoDP) is
  ``figures``;
* flat, in the detector manifest: :data:`LEGACY_DATA_KEYS` (``positives``, ``negative_images``,
  ``samples``, ``faces_matched``, ``n``, ``renders_in_set``, ``train_candidates``, ...) are
  ``data``; :data:`LEGACY_FIGURE_KEYS` (``train_precision``, ``train_recall``, ``val_mae_*``,
  ``holdout_*_error``, ``val_auc_*``, ``recall_floor``, the ``*_seconds`` timings, ...) are
  ``figures``.

Manifests are written by :func:`write_manifest`: JSON, ``indent=2``, a trailing newline (the byte
layout of the committed files), through :func:`pipeline.atomic.atomic_write_bytes`, so a reader
sees the old manifest or the new one, never a partial one.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

from pipeline.atomic import atomic_write_bytes
from pipeline.errors import ModelFileError

MANIFEST_NAME = "MANIFEST.json"

_ROOT = Path(__file__).resolve().parent.parent
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ShippedManifest:
    """A shipped model folder: where it is, what it holds (for messages), the command that makes it."""

    folder: Path
    what: str
    command: str


#: The three shipped model folders, by short name.
SHIPPED: dict[str, ShippedManifest] = {
    "detector": ShippedManifest(_ROOT / "pipeline" / "detection" / "models", "detector", "python -m training.dpm"),
    "godp": ShippedManifest(
        _ROOT / "landmarks" / "godp" / "weights", "GoDP weights", "python -m training.godp export --out RUN"
    ),
    "dfd": ShippedManifest(_ROOT / "descriptors" / "data", "DFD parameters", "python -m training.dfd"),
}

#: Keys of the records written before the schema whose values are ``data`` (flat keys).
LEGACY_DATA_KEYS: tuple[str, ...] = (
    "positives",
    "negative_images",  # dpm templates
    "samples",
    "faces_matched",
    "faces_tried",
    "val_samples",  # bbox-cnn refiner
    "n",
    "holdout_n",  # landmark-box regressor
    "renders_in_set",
    "extra_renders",
    "train_candidates",
    "train_faces",
    "candidate_labels",
    "sampled_nonfaces",
    "val_face_candidates",
    "val_nonface_candidates",
    "val_nonface_images_with_candidates",  # face / part checks
)
#: Nested keys of older records whose (object) value is the record's ``data``.
LEGACY_DATA_OBJECTS: tuple[str, ...] = ("train_config", "training")
#: Keys of the records written before the schema whose values are ``figures`` (flat keys).
LEGACY_FIGURE_KEYS: tuple[str, ...] = (
    "train_seconds",
    "train_precision",
    "train_recall",
    "train_ap",  # dpm templates
    "collect_seconds",
    "val_mae_center_raw_box",
    "val_mae_center_if_unrefined",
    "val_mae_logscale_raw_box",
    "val_mae_logscale_if_unrefined",  # bbox-cnn refiner
    "holdout_centre_error",
    "holdout_log_scale_error",
    "seconds",  # landmark-box regressor
    "val_face_recall_at_floor",
    "val_nonface_pass_at_floor",
    "val_nonface_images_passing",
    "recall_floor",
    "val_auc_fused",
    "val_auc_cnn",
    "val_auc_landmark_confidence",
    "val_sampled_nonfaces_cnn_negative",  # face / part checks
    "visibility_balanced_accuracy_val",  # GoDP
)
#: Nested keys of older records whose (object) value is the record's ``figures``.
LEGACY_FIGURE_OBJECTS: tuple[str, ...] = ("validation",)

#: sha256 of the dlib model files in face_recognition_models 0.3.0.
DLIB_MODELS: dict[str, str] = {
    "shape_predictor_68_face_landmarks.dat": "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "mmod_human_face_detector.dat": "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
}


# -- sha256 --------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file at ``path``."""
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
            f"corrupted. Restore it (git checkout / reinstall) or retrain it with its recorded command"
        )
    return p


def dlib_model_path(name: str) -> Path:
    """Path of a verified dlib model file from the ``face_recognition_models`` package."""
    if name not in DLIB_MODELS:
        raise ModelFileError(f"unknown dlib model file {name!r}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "the package face_recognition_models is not installed; run: pip install face_recognition_models==0.3.0"
        )
    base = Path(list(spec.submodule_search_locations)[0]) / "models"
    return verify_file(base / name, DLIB_MODELS[name], "dlib model file")


def save_state_dict(module: Any, dest: str | os.PathLike) -> str:
    """Write a torch module's parameters to ``dest`` as safetensors, atomically (temporary file +
    rename); returns the file's sha256 for a manifest record."""
    from safetensors.torch import save_file

    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))
    tmp.replace(dest)
    return sha256_file(dest)


# -- reading -------------------------------------------------------------------------------------


def _shipped(folder: Path) -> ShippedManifest | None:
    try:
        here = folder.resolve()
    except OSError:
        return None
    return next((s for s in SHIPPED.values() if s.folder == here), None)


def _describe(folder: Path, what: str | None, command: str | None) -> tuple[str, str | None]:
    known = _shipped(folder)
    return (what or (known.what if known else "model"), command or (known.command if known else None))


def read_manifest(
    folder: str | os.PathLike,
    *,
    what: str | None = None,
    command: str | None = None,
    empty: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of the model folder ``folder`` (its ``MANIFEST.json``), as a new dict.

    what: what the folder holds, for messages ("detector", "GoDP weights"); command: the command
    that makes the manifest, named in the error (both default to the :data:`SHIPPED` entry of the
    folder, when it is one). empty: returned (a deep copy) when there is no manifest yet, for the
    training scripts that create one; without it a missing manifest is a ModelFileError.
    Unreadable JSON, or JSON that is not an object, is a ModelFileError."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    what, command = _describe(folder, what, command)
    if not path.exists():
        if empty is not None:
            return copy.deepcopy(dict(empty))
        how = f"make it with '{command}'" if command else "retrain its files"
        raise ModelFileError(f"no {what} manifest at {path}: {how} or reinstall the package (pip install -e .)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"unreadable {what} manifest {path}: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        raise ModelFileError(f"unreadable {what} manifest {path}: expected a JSON object with a 'files' object")
    return manifest


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and "sha256" in value


def records(manifest: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, record)`` for every record of ``manifest``: those in ``files`` (in order), then the
    top-level ones (objects with a ``sha256``). Each record is a copy with ``file`` filled in."""
    for name, rec in manifest.get("files", {}).items():
        yield name, {"file": name, **rec}
    for name, rec in manifest.items():
        if name != "files" and _is_record(rec):
            yield name, {"file": name, **rec}


def entry(
    folder: str | os.PathLike,
    name: str,
    *,
    manifest: Mapping[str, Any] | None = None,
    what: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The record ``name`` of the manifest of ``folder`` (read unless ``manifest`` is given): from
    ``files`` first, else a top-level record. A copy, with ``file`` filled in (the key, when the
    record has none). A missing record is a ModelFileError naming ``command`` (what makes it)."""
    folder = Path(folder)
    man = read_manifest(folder, what=what, command=command) if manifest is None else manifest
    rec = man.get("files", {}).get(name)
    if rec is None and name != "files" and isinstance(man.get(name), dict):
        rec = man[name]
    if rec is None:
        what, _ = _describe(folder, what, None)
        how = f": train it with '{command}'" if command else ""
        raise ModelFileError(f"the {what} manifest {folder / MANIFEST_NAME} has no '{name}' entry{how}")
    return {"file": name, **rec}


def verified_path(folder: str | os.PathLike, rec: Mapping[str, Any], what: str = "model file") -> Path:
    """The path of the file of record ``rec`` (from :func:`entry`) in ``folder``, once its sha256
    matches the record (ModelFileError otherwise, or when the record lacks ``file`` / ``sha256``)."""
    file, sha = rec.get("file"), rec.get("sha256")
    if not isinstance(file, str) or not isinstance(sha, str):
        raise ModelFileError(f"the manifest record of the {what} in {folder} lacks its 'file' or 'sha256'")
    return verify_file(Path(folder) / file, sha, what)


def _as_object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else {"description": value}


def record_data(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record's ``data`` (what it was trained on), from either layout (module docstring)."""
    if "data" in rec:
        return _as_object(rec["data"])
    out: dict[str, Any] = {}
    for key in LEGACY_DATA_OBJECTS:
        out.update(rec.get(key) or {})
    out.update({k: rec[k] for k in LEGACY_DATA_KEYS if k in rec})
    return out


def record_figures(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record's ``figures`` (what was measured on it), from either layout (module docstring)."""
    if "figures" in rec:
        return _as_object(rec["figures"])
    out: dict[str, Any] = {}
    for key in LEGACY_FIGURE_OBJECTS:
        out.update(rec.get(key) or {})
    out.update({k: rec[k] for k in LEGACY_FIGURE_KEYS if k in rec})
    return out


# -- writing -------------------------------------------------------------------------------------


def record(
    path: str | os.PathLike,
    *,
    command: str,
    config: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
    sha256: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A new manifest record for the file at ``path`` (schema in the module docstring).

    command: the command line that made the file; config / data / figures: its settings, training
    data and measured figures; sha256: the file's digest when the caller has it (computed here
    otherwise); extra: loader parameters of the file (``width``, ``visibility_threshold``, ...)."""
    p = Path(path)
    rec: dict[str, Any] = {
        "file": p.name,
        "sha256": sha256 or sha256_file(p),
        "config": dict(config or {}),
        "command": command.strip(),
        "data": dict(data or {}),
        "figures": dict(figures or {}),
    }
    clash = set(extra) & set(rec)
    if clash:
        raise ValueError(f"extra record keys {sorted(clash)} are schema keys; pass them by name")
    rec.update(extra)
    return rec


def check_manifest(manifest: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``manifest`` is an object whose records each have a file name and a
    64-digit hex sha256 (what every loader needs)."""
    if not isinstance(manifest, Mapping) or not isinstance(manifest.get("files", {}), Mapping):
        raise ValueError("a manifest is a JSON object with a 'files' object")
    for name, rec in manifest.get("files", {}).items():
        if not isinstance(rec, Mapping):
            raise ValueError(f"manifest record {name!r} is not an object")
    for name, rec in manifest.items():  # a top-level object naming a file is a record too
        if name != "files" and isinstance(rec, Mapping) and "file" in rec and "sha256" not in rec:
            raise ValueError(f"manifest record {name!r} has no valid sha256")
    for name, rec in records(manifest):
        if not isinstance(rec.get("sha256"), str) or not _SHA256.fullmatch(rec["sha256"]):
            raise ValueError(f"manifest record {name!r} has no valid sha256")
        if not isinstance(rec.get("file"), str) or not rec["file"] or Path(rec["file"]).name != rec["file"]:
            raise ValueError(f"manifest record {name!r}: 'file' must be a file name inside the folder")


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """The bytes :func:`write_manifest` writes: JSON, indent 2, a trailing newline."""
    return (json.dumps(manifest, indent=2) + "\n").encode("utf-8")


def write_manifest(folder: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as ``folder/MANIFEST.json`` atomically (the folder is created) and return
    its path. It is checked (:func:`check_manifest`) and serialised before anything is written, so
    a manifest that cannot be written leaves the existing file as it was."""
    check_manifest(manifest)
    data = dumps(manifest)
    return atomic_write_bytes(Path(folder) / MANIFEST_NAME, data)
