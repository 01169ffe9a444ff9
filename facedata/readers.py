"""Readers of the data formats the project trains and evaluates on (no image decoding here).

Formats (``../shared/data/README.md`` and SPEC section 5):

- ``annotations.jsonl`` (AFLW crops, AFLW2000-3D, face-profiling renders): one JSON object per
  line with ``image`` (path relative to the folder), ``landmarks`` (19 x 2 px), ``visible``
  (19 bools), ``box`` (x0, y0, x1, y1) and ``yaw`` (degrees, > 0: nose towards image-left);
- ``manifest.csv`` (CFP, the UHDB31-protocol sets): ``path,subject,yaw,pitch[,role]``;
- ``protocol_pairs.csv`` (CFP verification): ``fold,protocol,same,a,b``;
- CFP fiducials ``fiducials/<id>/<view>/NN.txt``: one ``x,y`` per line, pixels.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: |yaw| bins (degrees) of the balanced landmark subsets.
YAW_BINS: tuple[tuple[float, float], ...] = ((0, 30), (30, 60), (60, 90.001))


def read_annotations(root: str | Path) -> list[dict]:
    """The rows of ``root/annotations.jsonl`` (blank lines skipped)."""
    with open(Path(root) / "annotations.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def balanced_subset(
    rows: Sequence[dict], per_bin: int | None, bins: Sequence[tuple[float, float]] = YAW_BINS
) -> list[dict]:
    """The first ``per_bin`` rows (by image name) of each |yaw| bin; all rows when ``per_bin`` is falsy.

    >>> rows = [{"image": f"{i}.jpg", "yaw": y} for i, y in enumerate([5, 40, 70, 10, 80])]
    >>> [r["image"] for r in balanced_subset(rows, 1)]
    ['0.jpg', '1.jpg', '2.jpg']
    """
    if not per_bin:
        return list(rows)
    out: list[dict] = []
    for lo, hi in bins:
        sel = sorted(
            (r for r in rows if r.get("yaw") is not None and lo <= abs(r["yaw"]) < hi), key=lambda r: r["image"]
        )
        out += sel[:per_bin]
    return out


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a CSV file with a header, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_manifest(root: str | Path, subjects: str | None = None) -> list[dict]:
    """Gallery and probe rows of ``root/manifest.csv`` with float ``yaw`` / ``pitch``.

    ``subjects``: ``"LO-HI"`` keeps subject ids in that range (string compare). Without a ``role``
    column the first yaw 0 / pitch 0 image of each subject is its gallery image, the rest probes.
    """
    rows = read_csv(Path(root) / "manifest.csv")
    if subjects:
        lo, hi = subjects.split("-")
        rows = [r for r in rows if lo <= r["subject"] <= hi]
    has_role = bool(rows) and "role" in rows[0] and rows[0]["role"] not in (None, "")
    seen: set[str] = set()
    for r in rows:
        r["yaw"], r["pitch"] = float(r["yaw"]), float(r.get("pitch") or 0.0)
        if not has_role:
            if r["yaw"] == 0 and r["pitch"] == 0 and r["subject"] not in seen:
                r["role"] = "gallery"
                seen.add(r["subject"])
            else:
                r["role"] = "probe"
    return [r for r in rows if r["role"] in ("gallery", "probe")]


@dataclass(frozen=True)
class Pair:
    """One CFP verification pair: fold (1-10), protocol (``FF`` / ``FP``), same identity, two paths
    relative to the CFP folder."""

    fold: int
    protocol: str
    same: bool
    a: str
    b: str


def read_pairs(path: str | Path, protocol: str | None = None, folds: Sequence[int] | None = None) -> list[Pair]:
    """The pairs of a ``protocol_pairs.csv`` file, optionally of one protocol and some folds."""
    out = []
    for r in read_csv(path):
        p = Pair(int(r["fold"]), r["protocol"], r["same"] in ("1", "true", "True"), r["a"], r["b"])
        if (protocol is None or p.protocol == protocol) and (folds is None or p.fold in folds):
            out.append(p)
    return out


def cfp_fiducials_path(cfp: str | Path, image: str | Path) -> Path:
    """The fiducial file of a CFP image ``.../images/<id>/<view>/NN.jpg``."""
    image = Path(image)
    return Path(cfp) / "fiducials" / image.parts[-3] / image.parts[-2] / (image.stem + ".txt")


def read_fiducials(path: str | Path) -> np.ndarray:
    """A CFP fiducial file -> (N, 2) float array of pixel coordinates."""
    pts = [
        tuple(float(v) for v in line.replace(",", " ").split()[:2])
        for line in Path(path).read_text().splitlines()
        if line.strip()
    ]
    return np.asarray(pts, np.float64).reshape(-1, 2)


def paint_out_head(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """A copy of ``img`` (gray or colour) with the square of side 2.2x the extent of the fiducials
    ``pts`` (N, 2), on their mean, filled with the image's mean colour."""
    out = img.copy()
    c, half = pts.mean(0), (pts.max(0) - pts.min(0)).max()
    x0, y0 = np.floor(c - 1.1 * half).astype(int)
    x1, y1 = np.ceil(c + 1.1 * half).astype(int)
    h, w = out.shape[:2]
    fill = out.reshape(-1, *out.shape[2:]).mean(0).astype(out.dtype)
    out[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] = fill
    return out
