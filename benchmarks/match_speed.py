"""Matching speed and template size: exact numpy search vs FAISS, and enrollment throughput.

    python benchmarks/match_speed.py [--sizes 1000,100000] [--dim 512] [--probes 100] [--top-k 5]
                                     [--gallery examples/gallery] [--json FILE]

1. Template size: bytes of one D-d float32 template in memory, and per template in the gallery
   cache file written for ``--gallery`` (which includes the metadata).
2. Match time for galleries of N random unit templates (one per identity, seed 0): building the
   index, one probe against the gallery (median of ``--repeat`` runs), and a batch of
   ``--probes`` probes; numpy (exact) vs FAISS ``IndexFlatIP`` (rows skipped with a note when
   ``faiss-cpu`` is not installed), and whether both return exactly the same top-k identities
   (and the largest score difference).
3. Enrollment throughput (images/s) of ``--gallery`` with the default pipeline (models loaded
   before timing): describing every image (no cache), and again with every signature cached.

Timings depend on the machine and on other jobs sharing its cores (the load average is
recorded). Prints a table and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facedata.paths import REPO
from pipeline.cli import write_json
from pipeline.index import FaissIndex, NumpyIndex, faiss_available, normalise_rows

log = logging.getLogger("match_speed")


def _median_time(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def bench_match(n: int, dim: int, n_probes: int, k: int, repeat: int, rng: np.random.Generator) -> list[dict]:
    """Rows {"n", "index", "build_s", "one_probe_ms", "batch_ms", "per_probe_ms", ...} for numpy and FAISS."""
    gallery = normalise_rows(rng.standard_normal((n, dim), dtype=np.float32))
    probes = normalise_rows(rng.standard_normal((n_probes, dim), dtype=np.float32))
    groups = np.arange(n)
    rows, results = [], {}
    kinds = ["numpy"] + (["faiss"] if faiss_available() else [])
    for kind in kinds:
        t = time.perf_counter()
        idx = NumpyIndex(gallery, groups, n) if kind == "numpy" else FaissIndex(gallery, groups, n)
        build = time.perf_counter() - t
        idx.search(probes[:1], k)  # warm-up
        one = _median_time(lambda idx=idx: idx.search(probes[:1], k), repeat)
        batch = _median_time(lambda idx=idx: idx.search(probes, k), max(1, repeat // 2))
        results[kind] = idx.search(probes, k)
        rows.append(
            {
                "n": n,
                "dim": dim,
                "index": kind,
                "build_s": round(build, 4),
                "one_probe_ms": round(one * 1e3, 3),
                f"batch_{n_probes}_ms": round(batch * 1e3, 2),
                "per_probe_in_batch_ms": round(batch * 1e3 / n_probes, 3),
            }
        )
    if "faiss" in results:
        (ia, sa), (ib, sb) = results["numpy"], results["faiss"]
        same = bool(np.array_equal(ia, ib))
        rows[-1]["same_topk_as_numpy"] = same
        rows[-1]["max_score_diff"] = float(np.abs(sa - sb).max())
    del gallery
    return rows


def bench_enroll(gallery_dir: Path, repeat: int) -> dict:
    """Enrollment throughput of ``gallery_dir`` with the default pipeline, and the cache size."""
    from pipeline.gallery import enroll, read_cache, scan_gallery
    from pipeline.pipeline import Pipeline

    pipe = Pipeline()
    t = time.perf_counter()
    _ = pipe.descriptor  # builds the descriptor stage so model loading is timed here
    pipe._stage("detector")
    load = time.perf_counter() - t
    n = len(scan_gallery(gallery_dir))
    cold = _median_time(lambda: enroll(pipe, gallery_dir, progress=False, cache=None), repeat)
    with tempfile.TemporaryDirectory() as td:
        cache = Path(td) / "cache.npz"
        enroll(pipe, gallery_dir, progress=False, cache=cache)
        warm = _median_time(lambda: enroll(pipe, gallery_dir, progress=False, cache=cache), repeat)
        size = cache.stat().st_size
        recs = read_cache(cache)
    dim = int(next(r.entry.vector.shape[0] for r in recs if r.entry.status == "ok"))
    return {
        "gallery": str(gallery_dir),
        "images": n,
        "config": {k: v for k, v in pipe.config.to_dict().items() if k in ("detector", "descriptor", "cropped")},
        "model_load_s": round(load, 3),
        "describe_img_per_s": round(n / cold, 2),
        "cached_img_per_s": round(n / warm, 1),
        "descriptor_dim": dim,
        "template_bytes": dim * 4,
        "cache_file_bytes": size,
        "cache_bytes_per_image": round(size / n),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,100000", help="gallery sizes N, comma-separated [1000,100000]")
    ap.add_argument("--dim", type=int, default=512, help="template dimension [512]")
    ap.add_argument("--probes", type=int, default=100, help="probes in the batch timing [100]")
    ap.add_argument("--top-k", type=int, default=5, help="candidates per probe [5]")
    ap.add_argument("--repeat", type=int, default=7, help="timing repeats (median) [7]")
    ap.add_argument(
        "--gallery",
        default=str(REPO / "examples" / "gallery"),
        help="gallery for the enrollment throughput [examples/gallery]",
    )
    ap.add_argument("--no-enroll", action="store_true", help="skip the enrollment throughput")
    ap.add_argument(
        "--faiss-threads",
        type=int,
        default=0,
        help="OpenMP threads for FAISS (0: its default, all cores; 1 is faster when other jobs share the cores) [0]",
    )
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON (- for stdout)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    sizes = [int(s) for s in a.sizes.split(",") if s]
    rng = np.random.default_rng(0)
    env = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    notes = []
    if faiss_available():
        import faiss

        env["faiss"] = faiss.__version__
        if a.faiss_threads > 0:
            faiss.omp_set_num_threads(a.faiss_threads)
        env["faiss_threads"] = faiss.omp_get_max_threads()
    else:
        notes.append("faiss-cpu not installed: FAISS rows skipped (pip install -e '.[faiss]')")

    tmpl = {"dim": a.dim, "float32_bytes": a.dim * 4, "float16_bytes": a.dim * 2}
    print(f"template: {a.dim}-d float32 = {a.dim * 4} bytes in memory ({a.dim * 2} as float16)")
    rows = []
    for n in sizes:
        rows += bench_match(n, a.dim, a.probes, a.top_k, a.repeat, rng)
    print(
        f"\nmatch, {a.dim}-d random unit templates, top-{a.top_k}, one identity per template "
        f"({env['cpus']} CPUs, load {env['load_avg_1m']}):"
    )
    hdr = (
        f"{'N':>8}  {'index':<6}  {'build s':>8}  {'1 probe ms':>10}  {f'{a.probes} probes ms':>14}  "
        f"{'ms/probe':>8}  agreement"
    )
    print(hdr)
    for r in rows:
        agree = (
            ""
            if "same_topk_as_numpy" not in r
            else (
                f"{'same' if r['same_topk_as_numpy'] else 'DIFFERENT'} top-{a.top_k}, "
                f"max |ds| {r['max_score_diff']:.1e}"
            )
        )
        print(
            f"{r['n']:>8}  {r['index']:<6}  {r['build_s']:>8.3f}  {r['one_probe_ms']:>10.3f}  "
            f"{r[f'batch_{a.probes}_ms']:>14.2f}  {r['per_probe_in_batch_ms']:>8.3f}  {agree}"
        )
    enroll_res = None
    if not a.no_enroll:
        enroll_res = bench_enroll(Path(a.gallery), max(1, a.repeat // 2))
        e = enroll_res
        print(f"\nenrollment of {e['gallery']} ({e['images']} images; {e['config']}):")
        print(
            f"  model load {e['model_load_s']:.2f} s; describing {e['describe_img_per_s']:.2f} img/s; "
            f"all cached {e['cached_img_per_s']:.0f} img/s"
        )
        print(
            f"  template {e['descriptor_dim']}-d = {e['template_bytes']} bytes; cache file "
            f"{e['cache_file_bytes']} bytes = {e['cache_bytes_per_image']} bytes per image (with metadata)"
        )
    for nt in notes:
        print(f"note: {nt}")
    if a.json:
        write_json({"env": env, "template": tmpl, "match": rows, "enroll": enroll_res, "notes": notes}, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
