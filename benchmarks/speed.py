"""Per-stage latency of the identification pipeline at both UHDB31-protocol resolutions.

    python benchmarks/speed.py                       # 10 probes per resolution, both resolutions
    python benchmarks/speed.py --res 256 --probes 20 --json speed.json

Stages, each timed on its own (median over the probes, ms, single process, models loaded and
warmed up before timing): detect, refine (``lm-verify``: bbox-cnn + GoDP re-centring and ranking of
the candidates), landmarks (16-ROI GoDP; and the Dlib ERT baseline in
the same run), fit (3D), lift (UV texture), describe (descriptor), match (one probe against the
gallery of the set: 77 subjects for the synthetic UHDB31-protocol set). ``end-to-end`` is the
wall time of ``pipeline.identify``'s work for one probe: every stage on the image plus matching
(the gallery enrolled beforehand). The ``x dlib`` column states the GoDP-landmark pipeline's time
relative to the Dlib-landmark one measured in the same run (these machines are noisy: compare
ratios, not absolute times). Probes: the first ``--probes`` probe renders of the set, spread
over the poses (every k-th row of the manifest).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from facedata.paths import REPO
from pipeline.cli import write_json
from pipeline.errors import FaceError
from pipeline.imageio import load_image
from pipeline.pipeline import Pipeline
from recon3d.uv import lift_texture

log = logging.getLogger("speed")
STAGES = ("detect", "refine", "landmarks", "fit", "lift", "describe", "match", "end-to-end")


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, 1000.0 * (time.perf_counter() - t)


def gallery_of(root: Path, pipe: Pipeline):
    """Enrol the set's gallery images (cached under the set folder) and return a Gallery."""
    import tempfile

    from pipeline.gallery import enroll

    rows = [r for r in csv.DictReader(open(root / "manifest.csv")) if r["role"] == "gallery"]
    tmp = Path(tempfile.mkdtemp(prefix="speed-gallery-"))
    for r in rows:
        src = root / r["path"]
        os.symlink(src.resolve(), tmp / f"{r['subject']}{src.suffix}")
    return enroll(pipe, tmp, progress=False, cache=root / f".speed-cache-{pipe.config.landmarker}.npz")


def time_probe(pipe: Pipeline, gallery, image) -> dict:
    """One probe, stage by stage (ms)."""
    t: dict = {}
    det = pipe._stage("detector")
    dets, t["detect"] = timed(det.detect, image)
    if not dets:
        raise FaceError("no face")
    faces, t["refine"] = timed(pipe.refine, image, dets)
    if not faces:
        raise FaceError("no face")
    box = faces[0]
    lm, t["landmarks"] = timed(pipe.landmarker.predict, image, box.box)
    fit, t["fit"] = timed(pipe._stage("fitter").fit, image, lm)
    uv, t["lift"] = timed(lift_texture, image, fit, size=pipe.config.uv_size, mirror_fill=pipe.config.mirror_fill)
    from pipeline.types import FaceResult

    face = FaceResult(box, lm, fit, uv)
    sig, t["describe"] = timed(pipe.descriptor.describe, image, face)
    _, t["match"] = timed(gallery.match, sig.vector, 5, sig.mask)

    def whole():
        f = pipe.run(image)[0]
        return gallery.match(f.signature.vector, 5, f.signature.mask)

    _, t["end-to-end"] = timed(whole)
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="speed.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--res", default="256,128", help="UHDB31-protocol resolutions (generated/uhdb31_<res>)")
    ap.add_argument("--probes", type=int, default=10, help="probes timed per resolution")
    ap.add_argument("--landmarkers", default="godp,dlib", help="landmarkers compared (first = the pipeline's)")
    ap.add_argument("--descriptor", default=None, help="descriptor (default: the pipeline default)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (CI machines have 2 cores)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    import torch

    torch.set_num_threads(a.threads)
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "threads": a.threads,
            "load_average_start": os.getloadavg(),
        },
        "results": {},
    }
    lms = a.landmarkers.split(",")
    for res in a.res.split(","):
        root = REPO / "generated" / f"uhdb31_{res}"
        if not (root / "manifest.csv").exists():
            print(f"error: no set at {root}: run python -m facedata.uhdb31 --res {res}", file=sys.stderr)
            return 2
        probes = [r for r in csv.DictReader(open(root / "manifest.csv")) if r["role"] == "probe"]
        step = max(1, len(probes) // a.probes)
        probes = probes[::step][: a.probes]
        for name in lms:
            kw = {"landmarker": name}
            if a.descriptor:
                kw["descriptor"] = a.descriptor
            pipe = Pipeline(**kw)
            gal = gallery_of(root, pipe)
            imgs = [load_image(root / r["path"]) for r in probes]
            try:
                time_probe(pipe, gal, imgs[0])  # warm-up (model loading, first-call costs)
            except FaceError:
                pass
            rows, failed = [], 0
            for img in imgs:
                try:
                    rows.append(time_probe(pipe, gal, img))
                except FaceError:
                    failed += 1
            med = {s: float(np.median([r[s] for r in rows])) if rows else float("nan") for s in STAGES}
            report["results"][f"{res}/{name}"] = {
                "res": int(res),
                "landmarker": name,
                "probes": len(rows),
                "failed": failed,
                "gallery": len(set(gal.identities)),
                "median_ms": med,
                "config": pipe.config.to_dict(),
            }
    report["machine"]["load_average_end"] = os.getloadavg()
    print(f"Per-stage latency, median ms per probe ({os.cpu_count()} cores, torch threads {a.threads})")
    keys = list(report["results"])
    print(f"{'stage':>12} " + " ".join(f"{k:>14}" for k in keys))
    for s in STAGES:
        print(f"{s:>12} " + " ".join(f"{report['results'][k]['median_ms'][s]:14.1f}" for k in keys))
    for res in a.res.split(","):
        base, other = f"{res}/{lms[-1]}", f"{res}/{lms[0]}"
        if base != other and base in report["results"]:
            r = report["results"][other]["median_ms"]["end-to-end"] / report["results"][base]["median_ms"]["end-to-end"]
            print(f"{res}: end-to-end {lms[0]} pipeline = {r:.2f} x the {lms[-1]} pipeline (same run)")
            report["results"][other]["end_to_end_vs_" + lms[-1]] = r
    if a.json:
        write_json(report, str(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
