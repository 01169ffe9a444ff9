"""The committed data splits (``splits/splits.json``): which subjects/images train and which evaluate."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SPLITS_DIR = Path(__file__).resolve().parents[1] / "splits"


@lru_cache(maxsize=1)
def load_splits() -> dict:
    return json.loads((SPLITS_DIR / "splits.json").read_text())


def _range(spec: str) -> list[str]:
    lo, hi = spec.split("-")
    width = len(lo)
    return [f"{i:0{width}d}" for i in range(int(lo), int(hi) + 1)]


def cfp_subjects(part: str) -> list[str]:
    """CFP subject ids (zero-padded strings) of ``part``: ``train``, ``eval`` or ``uhdb31``."""
    s = load_splits()
    if part == "uhdb31":
        return _range(s["uhdb31_protocol"]["subjects"])
    return _range(s["cfp_dev"][f"{part}_subjects"])


def aflw_validation_images() -> set[str]:
    path = SPLITS_DIR / load_splits()["aflw_crops"]["validation_file"]
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
