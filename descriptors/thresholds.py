"""Operating points of the descriptors: the cosine thresholds at which a 1:1 comparison is a match.

A score is a cosine similarity in [-1, 1]; a pair is accepted as "same person" when its score is at
least the threshold. The shipped operating points are stored per descriptor name in
``descriptors/data/MANIFEST.json`` under the top-level key ``"thresholds"``::

    "thresholds": {
      "<descriptor>": {"far1": t, "far0.1": t, "data": "...", "command": "python -m training.calibrate ...",
                       "pairs": {"genuine": n, "impostor": n}, "cache_token": "<descriptor cache_token>" | null}
    }

``far1`` / ``far0.1`` are the smallest thresholds at which at most 1 % / 0.1 % of the impostor pairs
of the calibration set are accepted (:func:`descriptors.verification.threshold_at_far`). They are
made by ``python -m training.calibrate --descriptor NAME`` on CFP *training* subjects only
(001-125), never on the subjects the benchmarks measure. ``cache_token`` is the descriptor's
weights token at calibration time; a descriptor whose token has changed since (other weights) is
refused, because the thresholds of other weights mean nothing for it.

The section is not a model-file record (it has no ``file`` / ``sha256``), so
:func:`pipeline.manifest.check_manifest` and :func:`pipeline.manifest.records` leave it alone.

>>> operating_point("any-descriptor", "0.42")
(0.42, 'manual')
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from pipeline import manifest
from pipeline.errors import ConfigError

#: The folder whose MANIFEST.json holds the shipped operating points.
DATA_DIR = Path(__file__).resolve().parent / "data"
#: The manifest's top-level key of the operating points.
THRESHOLDS_KEY = "thresholds"
#: Named operating points -> the false accept rate they are calibrated at.
NAMED_FARS: dict[str, float] = {"far1": 0.01, "far0.1": 0.001}
#: The label of a threshold given as a number.
MANUAL_LABEL = "manual"
#: The command that calibrates a descriptor (``{name}``: its registry name).
CALIBRATE_COMMAND = "python -m training.calibrate --descriptor {name}"

_WHAT = "descriptor data"


def is_spec(spec: str) -> bool:
    """True when ``spec`` is a named operating point (:data:`NAMED_FARS`) or a number in [-1, 1].

    >>> [is_spec(s) for s in ("far1", "far0.1", "0.5", "-1", "far5", "1.5", "nan")]
    [True, True, True, True, False, False, False]
    """
    if spec in NAMED_FARS:
        return True
    try:
        v = float(spec)
    except ValueError:
        return False
    return math.isfinite(v) and -1.0 <= v <= 1.0


def read_thresholds(folder: str | os.PathLike = DATA_DIR) -> dict[str, dict[str, Any]]:
    """The ``thresholds`` section of ``folder/MANIFEST.json`` (a new dict; empty when there is none).
    A missing or unreadable manifest is a :class:`~pipeline.errors.ModelFileError`."""
    return _section(manifest.read_manifest(folder, what=_WHAT), folder)


def _section(man: Mapping[str, Any], folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    section = man.get(THRESHOLDS_KEY, {})
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"the '{THRESHOLDS_KEY}' section of {Path(folder) / manifest.MANIFEST_NAME} is not an object; "
            f"recalibrate with '{CALIBRATE_COMMAND.format(name='NAME')}'"
        )
    return {str(k): dict(v) if isinstance(v, Mapping) else v for k, v in section.items()}


def _calibrate_hint(name: str) -> str:
    return f"calibrate it with '{CALIBRATE_COMMAND.format(name=name)}' or pass a number (--threshold 0.5)"


def operating_point(
    descriptor_name: str,
    spec: str,
    *,
    cache_token: str | None = None,
    folder: str | os.PathLike = DATA_DIR,
) -> tuple[float, str]:
    """(threshold, label) of the operating point ``spec`` of the descriptor ``descriptor_name``.

    spec: ``"far1"`` / ``"far0.1"`` (the calibrated thresholds at a false accept rate of 1 % /
    0.1 %; label: the spec) or a number in [-1, 1] (used as is; label ``"manual"``). cache_token:
    the descriptor's current ``cache_token``; when both it and the calibration's are known and
    differ, the calibration belongs to other weights and is refused. folder: where the manifest
    is (default: the shipped ``descriptors/data``).

    Raises :class:`~pipeline.errors.ConfigError` (exit code 2) for an unknown spec, a descriptor
    without calibration, a malformed or stale calibration; the message says how to calibrate.
    """
    spec = str(spec).strip()
    if spec not in NAMED_FARS:
        try:
            value = float(spec)
        except ValueError:
            raise ConfigError(
                f"unknown operating point {spec!r}: use {' or '.join(NAMED_FARS)} (a calibrated threshold) "
                "or a cosine threshold between -1 and 1"
            ) from None
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise ConfigError(f"threshold {spec!r} is not a cosine similarity: give a number between -1 and 1")
        return value, MANUAL_LABEL
    where = Path(folder) / manifest.MANIFEST_NAME
    rec = read_thresholds(folder).get(descriptor_name)
    if rec is None:
        raise ConfigError(
            f"descriptor {descriptor_name!r} has no calibrated operating point {spec!r} in {where}: "
            + _calibrate_hint(descriptor_name)
        )
    raw = rec.get(spec) if isinstance(rec, Mapping) else None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ConfigError(
            f"the calibration of descriptor {descriptor_name!r} in {where} has no valid {spec!r} value: "
            + _calibrate_hint(descriptor_name)
        )
    assert isinstance(rec, Mapping)
    recorded = rec.get("cache_token")
    if cache_token is not None and recorded is not None and str(recorded) != str(cache_token):
        raise ConfigError(
            f"the operating points of descriptor {descriptor_name!r} in {where} were calibrated for other "
            f"weights ({recorded}, now {cache_token}): recalibrate with "
            f"'{CALIBRATE_COMMAND.format(name=descriptor_name)}' or pass a number (--threshold 0.5)"
        )
    return float(raw), spec


def threshold_record(
    thresholds: Mapping[str, float],
    *,
    data: str,
    command: str,
    genuine: int,
    impostor: int,
    cache_token: str | None = None,
) -> dict[str, Any]:
    """One descriptor's entry of the ``thresholds`` section (schema in the module docstring).

    thresholds: a value for every name of :data:`NAMED_FARS`.

    >>> r = threshold_record({"far1": 0.5, "far0.1": 0.6}, data="toy", command="c", genuine=3, impostor=9)
    >>> r["pairs"], r["cache_token"]
    ({'genuine': 3, 'impostor': 9}, None)
    """
    missing = [k for k in NAMED_FARS if k not in thresholds]
    if missing:
        raise ValueError(f"thresholds lack the operating points {missing}")
    rec: dict[str, Any] = {k: float(thresholds[k]) for k in NAMED_FARS}
    if not all(math.isfinite(v) for v in rec.values()):
        raise ValueError(f"non-finite thresholds {rec}")
    rec.update(
        data=str(data),
        command=command.strip(),
        pairs={"genuine": int(genuine), "impostor": int(impostor)},
        cache_token=None if cache_token is None else str(cache_token),
    )
    return rec


def write_thresholds(entries: Mapping[str, Mapping[str, Any]], folder: str | os.PathLike = DATA_DIR) -> Path:
    """Merge ``entries`` (descriptor name -> :func:`threshold_record`) into the ``thresholds``
    section of ``folder/MANIFEST.json`` (other descriptors' entries and the rest of the manifest
    are kept) and write it atomically (:func:`pipeline.manifest.write_manifest`). Returns its path."""
    man = manifest.read_manifest(folder, what=_WHAT)
    section = _section(man, folder)
    for name, rec in entries.items():
        section[str(name)] = dict(rec)
    man[THRESHOLDS_KEY] = dict(sorted(section.items()))
    return manifest.write_manifest(folder, man)
