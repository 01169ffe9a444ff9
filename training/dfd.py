"""Learn the DFD descriptor's filters, codebooks and PCA template from training identities only.

    python -m training.dfd [--cfp ../shared/data/cfp_dev] [--grey ../shared/data/faces]
                                    [--landmarker dlib] [--out descriptors/data/dfd_v1.npz]

Training identities (``splits/splits.json``): CFP subjects 001-125 (every photo the pipeline can
fit: detect -> landmarks -> 3D fit -> UV lift) and, with ``--grey``, the grey sets (ORL, Yale,
...), never the evaluation subjects. The lifted UV textures are cached in
``data_cache/dfd_uv_<landmarker>.npz`` (not committed) so re-learning is quick. The learned
parameters are written as ``.npz`` (no pickle) and recorded, with their sha256, the command and
the training-set figures, in ``descriptors/data/MANIFEST.json`` (the shipped default).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from descriptors.dfd import DATA_DIR, EMPTY_MANIFEST, DfdConfig, learn_dfd
from facedata.paths import REPO, data_root
from facedata.splits import cfp_subjects
from pipeline.config import PipelineConfig
from pipeline.errors import FaceError
from pipeline.imageio import load_image
from pipeline.manifest import read_manifest, record, write_manifest
from pipeline.pipeline import Pipeline

log = logging.getLogger("training.dfd")
SHARED = data_root()


def training_images(cfp: Path | None, grey: Path | None, views: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(identity, path) of the training identities' photos."""
    items: list[tuple[str, Path]] = []
    if cfp is not None:
        train = set(cfp_subjects("train"))
        with open(cfp / "manifest.csv") as f:
            for r in csv.DictReader(f):
                view = "profile" if "/profile/" in r["path"] else "frontal"
                if r["subject"] in train and view in views:
                    items.append((f"cfp{r['subject']}", cfp / r["path"]))
    if grey is not None:
        for set_name in ("orl", "yale", "gt", "imm", "ar_ii"):
            lab = grey / set_name / "labels.csv"
            if lab.exists():
                with open(lab) as f:
                    for r in csv.DictReader(f):
                        items.append((f"{set_name}{r['subject']}", grey / set_name / r["file"]))
    return items


def lift_all(items, pipe: Pipeline, cropped_sets: tuple[str, ...] = ("orl", "yale", "gt", "imm", "ar_ii")):
    """Run detect -> landmarks -> fit -> lift on every image; returns (uv images, masks, labels, failures)."""
    uvs, masks, labels, failed = [], [], [], 0
    for ident, path in tqdm(items, desc="lifting UV textures", unit="img"):
        try:
            img = load_image(path)
            # tight crops (grey sets): the whole image is the face box, as with --cropped
            box = (0.0, 0.0, float(img.shape[1]), float(img.shape[0])) if ident.startswith(cropped_sets) else None
            face = pipe.run(img, until="lift", box=box)[0]
        except FaceError as e:
            failed += 1
            log.debug("skipped %s: %s", path, e)
            continue
        uvs.append(face.uv.image)
        masks.append(face.uv.mask.astype(np.float16))
        labels.append(ident)
    return uvs, masks, labels, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.dfd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cfp", type=Path, default=SHARED / "cfp_dev", help="CFP folder with manifest.csv")
    ap.add_argument("--grey", type=Path, default=None, help="grey sets folder (../shared/data/faces) to add")
    ap.add_argument("--views", default="frontal,profile", help="CFP views to use [frontal,profile]")
    ap.add_argument("--landmarker", default="dlib", help="landmarker used to fit the training faces [dlib]")
    ap.add_argument("--detector", default=PipelineConfig.detector)
    ap.add_argument(
        "--min-face", type=int, default=80, help="smallest face side (px) to detect [80: CFP faces are large]"
    )
    ap.add_argument("--out", type=Path, default=DATA_DIR / "dfd_v1.npz")
    ap.add_argument("--compact-dim", type=int, default=128, help="PCA + whitening template size [128]")
    ap.add_argument("--n-codes", type=int, default=DfdConfig.n_codes)
    ap.add_argument("--grid", type=int, default=DfdConfig.grid)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None, help="UV cache file [data_cache/dfd_uv_<landmarker>.npz]")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cache = (
        a.cache
        or REPO / "data_cache" / f"dfd_uv_{a.landmarker}_{a.views.replace(',', '-')}{'_grey' if a.grey else ''}.npz"
    )
    t0 = time.time()
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            uvs, masks, labels, failed = list(z["uv"]), list(z["mask"]), [str(x) for x in z["labels"]], int(z["failed"])
        log.info("loaded %d cached UV textures from %s", len(uvs), cache)
    else:
        if not (a.cfp / "manifest.csv").exists():
            print(f"error: no CFP manifest at {a.cfp}; pass --cfp DIR", file=sys.stderr)
            return 2
        items = training_images(a.cfp, a.grey, tuple(a.views.split(",")))
        pipe = Pipeline(
            PipelineConfig(detector=a.detector, landmarker=a.landmarker, descriptor="lbp", min_face=a.min_face)
        )
        uvs, masks, labels, failed = lift_all(items, pipe)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache) + ".tmp.npz")
        np.savez(tmp, uv=np.stack(uvs), mask=np.stack(masks), labels=np.array(labels), failed=failed)
        os.replace(tmp, cache)
    t_lift = time.time() - t0
    labels_arr = np.array(labels)
    ids, counts = np.unique(labels_arr, return_counts=True)
    keep = np.isin(labels_arr, ids[counts >= 2])  # Fisher classes need >= 2 images
    uvs = [u for u, k in zip(uvs, keep) if k]
    masks = [m.astype(np.float32) for m, k in zip(masks, keep) if k]
    labels_arr = labels_arr[keep]
    cfg = DfdConfig(n_codes=a.n_codes, grid=a.grid)
    log.info(
        "learning DFD on %d textures of %d identities (%d images failed to fit)",
        len(uvs),
        len(np.unique(labels_arr)),
        failed,
    )
    t1 = time.time()
    model = learn_dfd(uvs, masks, labels_arr, cfg, compact_dim=a.compact_dim, seed=a.seed)
    t_learn = time.time() - t1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(a.out)
    man = read_manifest(a.out.parent, what="DFD parameters", empty=EMPTY_MANIFEST)
    man["files"][a.out.name] = record(
        a.out,
        config=asdict(cfg),
        command="python -m training.dfd " + " ".join(argv if argv is not None else sys.argv[1:]),
        data={
            "textures": len(uvs),
            "identities": int(len(np.unique(labels_arr))),
            "failed_to_fit": failed,
            "landmarker": a.landmarker,
            "views": a.views,
            "grey_sets": bool(a.grey),
        },
        figures={"lift_seconds": round(t_lift, 1), "learn_seconds": round(t_learn, 1)},
        compact_dim=a.compact_dim,
        bytes=a.out.stat().st_size,
    )
    man["default"] = a.out.name
    write_manifest(a.out.parent, man)
    log.info("wrote %s (%d bytes) in %.0f s", a.out, a.out.stat().st_size, time.time() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
