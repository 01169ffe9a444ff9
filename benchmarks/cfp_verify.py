"""CFP frontal-profile (FP) and frontal-frontal (FF) verification, every descriptor in one run.

    python benchmarks/cfp_verify.py [--data ../shared/data/cfp_dev] [--folds 4,5] \
        [--descriptor resnet-3d,dlib-resnet,dfd,lbp] --json runs/bench/cfp_verify.json --plot runs/bench/cfp_roc.png

The CFP protocol (Sengupta et al., WACV 2016; ``protocol_pairs.csv``, columns ``fold,protocol,same,a,b``):
per protocol, the accuracy on each fold with the threshold of highest accuracy on the other selected
folds (mean +- std over folds), ROC AUC and TAR at FAR 1 % and 0.1 % over all selected pairs. Folds
1-3 hold the descriptor-training subjects 001-125, so the default is folds 4-5 (subjects 151-250);
``--folds 1,2,3,4,5`` is meaningful only for a descriptor that never saw CFP.

Every image is detected, landmarked and fitted once (default front end, ``--landmarker`` GoDP) and
described by each descriptor; a pair with an image that has no face or no signature scores -1 (a
rejection) and is counted in ``failed_pairs``. Scores are cosines, masked by joint region visibility
for descriptors with region masks (DFD, LBP). Writes a table (stdout), a JSON with the summary and
every pair's score, and an ROC plot (one panel per protocol).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.plotting import save_figure
from benchmarks.uhdb31_rank1 import describe_all
from descriptors.verification import cross_fold_accuracy, roc_auc, roc_curve, tar_at_far
from facedata.paths import data_path
from facedata.readers import read_pairs
from pipeline.cli import write_json
from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError
from pipeline.index import masked_cosine_scores
from pipeline.registry import DESCRIPTORS

log = logging.getLogger("cfp_verify")
FARS = (0.01, 0.001)
FAILED_SCORE = -1.0


def pair_scores(pairs, index: dict[str, int], sigs: list, masked: bool) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N,), failed (N,) bool) of the pairs from per-image signatures ``(vector, mask) | None``."""
    scores = np.full(len(pairs), FAILED_SCORE, np.float64)
    failed = np.zeros(len(pairs), bool)
    for i, p in enumerate(pairs):
        a, b = sigs[index[p.a]], sigs[index[p.b]]
        if a is None or b is None:
            failed[i] = True
            continue
        am = a[1] if masked else None
        bm = None if b[1] is None or not masked else np.asarray(b[1])[None]
        scores[i] = float(masked_cosine_scores(a[0], am, np.asarray(b[0])[None], bm)[0])
    return scores, failed


def calibrated_rates(scores: np.ndarray, same: np.ndarray, calibration: dict | None) -> dict:
    """TAR and FAR on these pairs at the descriptor's calibrated operating points (training subjects,
    :mod:`descriptors.thresholds`): ``{"far1": {"threshold", "tar", "far"}, ...}``; empty without one."""
    out: dict = {}
    for label in ("far1", "far0.1"):
        if calibration and isinstance(calibration.get(label), (int, float)):
            t = float(calibration[label])
            out[label] = {
                "threshold": t,
                "tar": float((scores[same] >= t).mean()) if same.any() else float("nan"),
                "far": float((scores[~same] >= t).mean()) if (~same).any() else float("nan"),
            }
    return out


def summarise(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, failed: np.ndarray, calibration: dict | None = None
) -> dict:
    """The protocol's figures for one descriptor and protocol (see the module docstring)."""
    cv = cross_fold_accuracy(scores, same, folds)
    out = {
        "accuracy_mean": cv["mean"],
        "accuracy_std": cv["std"],
        "per_fold": cv["per_fold"],
        "auc": roc_auc(scores, same),
        "pairs": int(len(scores)),
        "failed_pairs": int(failed.sum()),
    }
    for far in FARS:
        tar, thr = tar_at_far(scores, same, far)
        out[f"tar_at_far_{far:g}"] = tar
        out[f"threshold_at_far_{far:g}"] = thr
    out["calibrated"] = calibrated_rates(scores, same, calibration)
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cfp_verify.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=data_path("cfp_dev"),
        help="CFP folder with protocol_pairs.csv and images/ [$GODP_DATA/cfp_dev or ../shared/data/cfp_dev]",
    )
    ap.add_argument("--folds", default="4,5", help="folds to evaluate (each fold's threshold from the others) [4,5]")
    ap.add_argument("--protocol", default="FP,FF", help="protocols [FP,FF]")
    ap.add_argument(
        "--descriptor",
        default=None,
        help=f"comma-separated descriptors [every registered one: {','.join(DESCRIPTORS.names())}]",
    )
    ap.add_argument("--landmarker", default="godp", help="landmarker of the shared front end [godp]")
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only the first N genuine and N impostor pairs per fold and protocol (quick runs)",
    )
    ap.add_argument("--json", type=Path, help="write the summary and every pair's score here ('-' = stdout)")
    ap.add_argument(
        "--rescore",
        type=Path,
        metavar="JSON",
        help="recompute the figures from the pair scores of an earlier --json (no pipeline run)",
    )
    ap.add_argument("--plot", type=Path, help="ROC plot (PNG)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def select_pairs(pairs, limit: int | None):
    if not limit:
        return pairs
    out, seen = [], {}
    for p in pairs:
        k = (p.fold, p.protocol, p.same)
        if seen.get(k, 0) < limit:
            seen[k] = seen.get(k, 0) + 1
            out.append(p)
    return out


def plot_roc(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protos = sorted({p for p, _ in curves})
    fig, axes = plt.subplots(1, len(protos), figsize=(5.5 * len(protos), 4.6), squeeze=False)
    for ax, proto in zip(axes[0], protos):
        for (p, name), (far, tar, auc) in sorted(curves.items()):
            if p == proto:
                ax.plot(np.maximum(far, 1e-4), tar, label=f"{name} (AUC {auc:.3f})")
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false accept rate")
        ax.set_ylabel("true accept rate")
        ax.set_title(f"CFP-{proto} verification")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def print_table(summary: dict) -> None:
    folds = summary["folds"]
    print(
        f"CFP verification, folds {','.join(map(str, folds))} ({summary['images']} images, "
        f"{summary['images_without_face']} without a face); accuracy: threshold from the other folds"
    )
    print(
        f"{'descriptor':<15}{'proto':<6}{'acc mean':>9}{'+-':>6}{'AUC':>8}{'TAR@1%':>8}{'TAR@0.1%':>9}{'failed':>7}"
        f"   calibrated far1: TAR / FAR   far0.1: TAR / FAR"
    )
    for name, per in summary["results"].items():
        for proto, r in per.items():
            cal = "".join(
                f"   {c['threshold']:.3f}: {100 * c['tar']:.1f} / {100 * c['far']:.2f}%"
                for c in r.get("calibrated", {}).values()
            )
            print(
                f"{name:<15}{proto:<6}{100 * r['accuracy_mean']:>8.2f}%{100 * r['accuracy_std']:>5.2f}"
                f"{r['auc']:>8.4f}{100 * r['tar_at_far_0.01']:>7.1f}%{100 * r['tar_at_far_0.001']:>8.1f}%"
                f"{r['failed_pairs']:>7d}{cal}"
            )


def rescore(a: argparse.Namespace, calib: dict) -> int:
    """``--rescore``: the figures from an earlier run's pair scores (e.g. after a new calibration)."""
    import json

    try:
        old = json.loads(a.rescore.read_text())
        summary, records = old["summary"], old["pairs"]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot read pair scores from {a.rescore}: {e}", file=sys.stderr)
        return 2
    curves = {}
    for name in summary["results"]:
        for proto in summary["results"][name]:
            rs = [r for r in records if r["descriptor"] == name and r["protocol"] == proto]
            failed = np.array([r["score"] is None for r in rs])
            sc = np.array([FAILED_SCORE if r["score"] is None else r["score"] for r in rs], np.float64)
            same = np.array([bool(r["same"]) for r in rs])
            res = summarise(sc, same, np.array([r["fold"] for r in rs]), failed, calib.get(name))
            summary["results"][name][proto] = res
            far, tar, _ = roc_curve(sc, same)
            curves[(proto, name)] = (far, tar, res["auc"])
    print_table(summary)
    if a.json:
        write_json({"summary": summary, "pairs": records}, str(a.json))
    if a.plot:
        plot_roc(curves, a.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        folds = [int(f) for f in a.folds.split(",")]
        protocols = a.protocol.split(",")
        descriptors = a.descriptor.split(",") if a.descriptor else DESCRIPTORS.names()
        for d in descriptors:
            DESCRIPTORS.factory(d)
        pairs_file = a.data / "protocol_pairs.csv"
        if not pairs_file.exists():
            raise ConfigError(f"{pairs_file} not found: pass --data DIR (a CFP folder with protocol_pairs.csv)")
        pairs = select_pairs(read_pairs(pairs_file, folds=folds), a.limit)
        pairs = [p for p in pairs if p.protocol in protocols]
        if not pairs:
            raise ConfigError(f"no pairs of protocols {protocols} in folds {folds}")
        if len({p.fold for p in pairs}) < 2:
            raise ConfigError("choose at least two folds: each fold's threshold comes from the others")
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from descriptors.thresholds import read_thresholds

    calib = read_thresholds()
    if a.rescore:
        return rescore(a, calib)
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    index = {p: i for i, p in enumerate(images)}
    rows = [{"path": p, "role": "probe", "subject": p.split("/")[1]} for p in images]
    t0 = time.perf_counter()
    sigs, status, _, times = describe_all(rows, a.data, a.landmarker, descriptors, PipelineConfig(), False)
    elapsed = time.perf_counter() - t0
    summary: dict = {
        "data": str(a.data),
        "folds": folds,
        "images": len(images),
        "images_without_face": int(sum(s != "ok" for s in status)),
        "seconds": round(elapsed, 1),
        "ms_per_image": {k: round(1000 * v / max(len(images), 1), 1) for k, v in times.items()},
        "results": {},
    }
    records, curves = [], {}
    for name in descriptors:
        masked = any(s is not None and s[1] is not None for s in sigs[name])
        for proto in protocols:
            sub = [p for p in pairs if p.protocol == proto]
            sc, failed = pair_scores(sub, index, sigs[name], masked)
            same = np.array([p.same for p in sub])
            fl = np.array([p.fold for p in sub])
            res = summarise(sc, same, fl, failed, calib.get(name))
            summary["results"].setdefault(name, {})[proto] = res
            far, tar, _ = roc_curve(sc, same)
            curves[(proto, name)] = (far, tar, res["auc"])
            records += [
                {
                    "descriptor": name,
                    "protocol": proto,
                    "fold": p.fold,
                    "same": p.same,
                    "a": p.a,
                    "b": p.b,
                    "score": None if f else round(float(s), 6),
                }
                for p, s, f in zip(sub, sc, failed)
            ]
    print_table(summary)
    if a.json:
        write_json({"summary": summary, "pairs": records}, str(a.json))
    if a.plot:
        plot_roc(curves, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
