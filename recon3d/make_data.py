"""Build the packaged model file ``recon3d/data/sfm_3448.npz`` from the shared Surrey Face Model.

    python -m recon3d.make_data ../shared/data/sfm

Reads ``sfm_3448.npz`` (the eos ``sfm_shape_3448.bin`` + ``expression_blendshapes_3448.bin``
converted to NumPy) and ``sfm_reference_symmetry.txt`` from the given folder and writes a
compressed npz with only what the pipeline needs (the orthonormal basis is dropped: it equals
``shape_basis_rescaled / sqrt(eigenvalues)``), plus ``symmetry``: the 0-based mirror vertex of
every vertex. The eos file covers only the 845 vertices of the reference level; the SFM texture
coordinates are exactly mirror-symmetric (u -> 1 - u, v unchanged, checked to 1e-7), so the
symmetric vertex of all 3,448 vertices is the one with the mirrored texture coordinate; the result
is checked against the eos file on its 845 vertices.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

OUT = Path(__file__).resolve().parent / "data" / "sfm_3448.npz"
KEEP = (
    "mean",
    "shape_basis_rescaled",
    "eigenvalues",
    "triangles",
    "texcoords",
    "expression_blendshapes",
    "expression_names",
    "ibug_index",
    "ibug_vertex",
    "contour_right",
    "contour_left",
)


def read_symmetry_txt(path: Path) -> np.ndarray:
    """eos ``sfm_reference_symmetry.txt`` (one 1-based id per line, comments after '#') -> 0-based ids."""
    ids = [int(line.split("#")[0]) for line in Path(path).read_text().splitlines() if line.split("#")[0].strip()]
    return np.asarray(ids, dtype=np.int64) - 1


def symmetry_from_texcoords(texcoords: np.ndarray) -> np.ndarray:
    """(N, 2) texture coordinates -> (N,) index of the vertex whose (1 - u, v) is nearest."""
    from scipy.spatial import cKDTree

    mirrored = np.column_stack([1.0 - texcoords[:, 0], texcoords[:, 1]])
    dist, idx = cKDTree(texcoords).query(mirrored)
    if dist.max() > 1e-5:
        raise ValueError(f"texture coordinates are not mirror-symmetric (max gap {dist.max():.2e})")
    return idx.astype(np.int32)


def build(src: Path, out: Path = OUT) -> Path:
    d = np.load(Path(src) / "sfm_3448.npz", allow_pickle=False)
    arrays = {k: d[k] for k in KEEP}
    sym = symmetry_from_texcoords(d["texcoords"].astype(np.float64))
    ref = read_symmetry_txt(Path(src) / "sfm_reference_symmetry.txt")
    agree = float((sym[: len(ref)] == ref).mean())
    if agree < 1.0:
        raise ValueError(f"texcoord symmetry agrees with eos on only {agree:.1%} of the reference vertices")
    if not np.array_equal(sym[sym], np.arange(len(sym))):
        raise ValueError("symmetry is not an involution")
    arrays["symmetry"] = sym
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info(
        "wrote %s (%d bytes); symmetry agrees with eos on %d reference vertices", out, out.stat().st_size, len(ref)
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="folder with sfm_3448.npz and sfm_reference_symmetry.txt")
    ap.add_argument("--out", type=Path, default=OUT, help=f"output npz (default {OUT})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.src, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
