"""Calibrate the operating points (verification thresholds) of descriptors on CFP training subjects.

    python -m training.calibrate --descriptor resnet-3d,dlib-resnet-torch      # CFP subjects 001-125
    python -m training.calibrate --descriptor pose-resnet --chips runs/pose_chips/cfp_001-125.npz
    python -m training.calibrate --descriptor dlib-resnet --subjects 001-003 --per-subject 1 --dry-run

Every image of the CFP *training* subjects (``splits/splits.json``: 001-125; 10 frontal + 4 profile
photos each; the evaluation subjects 126-250 are refused, they are what the benchmarks measure) is
described by every requested descriptor on the same faces (the runtime front end,
:class:`pipeline.pipeline.Pipeline` with its defaults, through
:func:`benchmarks.uhdb31_rank1.describe_all`). All frontal-frontal and frontal-profile pairs (the
two CFP protocols; profile-profile pairs are left out) are scored by cosine similarity (masked
cosine for descriptors with region masks, as the gallery matches them): pairs of one subject are
genuine, the others impostors. The thresholds at a false accept rate of 1 % and 0.1 %
(:func:`descriptors.verification.threshold_at_far`) are written, atomically, into the
``thresholds`` section of ``descriptors/data/MANIFEST.json`` (:mod:`descriptors.thresholds`;
``--models DIR``: another folder's manifest; ``--dry-run``: print only), with the data, the
command, the pair counts and the descriptor's ``cache_token``.

``--chips FILE``: the aligned chips of :mod:`training.pose_chips` (``chips`` (N, 150, 150, 3)
uint8, ``subject``, ``view``, ``path``) are embedded directly, without running the pipeline, by
descriptors that embed chips (an ``embed_chips(chips)`` method: ``dlib-resnet-torch``,
``pose-resnet``).

``--per-subject K`` keeps the first K frontal and the first K profile images of each subject
(a quick check; the shipped operating points use every image).
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from descriptors.thresholds import DATA_DIR, NAMED_FARS, threshold_record, write_thresholds
from descriptors.verification import threshold_at_far
from facedata.paths import add_data_argument, add_log_arguments
from facedata.readers import read_manifest
from facedata.splits import cfp_subjects
from pipeline.cli import guarded_main, setup_logging
from pipeline.errors import ConfigError

log = logging.getLogger("training.calibrate")

VIEWS = ("frontal", "profile")
#: Below this many impostor pairs an operating point rests on fewer than ~10 accepted impostors.
MIN_IMPOSTORS = {"far1": 1000, "far0.1": 10000}


@dataclass
class Scores:
    """Genuine and impostor cosine scores of one descriptor, and how many images they come from."""

    genuine: np.ndarray
    impostor: np.ndarray
    images: int


# -- pure parts ----------------------------------------------------------------------------------
def training_subjects(spec: str) -> tuple[str, str]:
    """(lo, hi) of a subject range ``"LO-HI"`` whose every subject is a CFP training subject;
    ConfigError otherwise (a malformed range, or one reaching the evaluation subjects 126-250).

    >>> training_subjects("001-003")
    ('001', '003')
    """
    m = re.fullmatch(r"(\d+)-(\d+)", spec.strip())
    if not m or int(m.group(1)) > int(m.group(2)):
        raise ConfigError(f"--subjects: expected a range like 001-125, got {spec!r}")
    lo, hi = m.groups()
    width = len(lo)
    train = cfp_subjects("train")
    bad = [f"{i:0{width}d}" for i in range(int(lo), int(hi) + 1) if f"{i:0{width}d}" not in train]
    if bad:
        raise ConfigError(
            f"--subjects {spec}: subjects {bad[0]}..{bad[-1]} are not CFP training subjects "
            f"({train[0]}-{train[-1]}); the evaluation subjects are never used to calibrate"
        )
    return lo, hi


def refuse_non_training(subjects: list[str] | np.ndarray) -> None:
    """ConfigError when any of ``subjects`` is not a CFP training subject."""
    bad = sorted(set(map(str, subjects)) - set(cfp_subjects("train")))
    if bad:
        raise ConfigError(
            f"subjects {bad[0]}..{bad[-1]} ({len(bad)}) are not CFP training subjects: never calibrate on them"
        )


def view_of(path: str) -> str:
    """``"profile"`` for a CFP profile photo (``.../profile/NN.jpg``), else ``"frontal"``."""
    return "profile" if "/profile/" in path.replace("\\", "/") else "frontal"


def keep_per_subject(subjects, views, k: int | None) -> np.ndarray:
    """Indices of the first ``k`` items of each (subject, view) in the given order (all: k None).

    >>> keep_per_subject(["1", "1", "1", "2"], ["frontal", "frontal", "profile", "frontal"], 1).tolist()
    [0, 2, 3]
    """
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i, key in enumerate(zip(map(str, subjects), map(str, views))):
        seen[key] = seen.get(key, 0) + 1
        if k is None or seen[key] <= k:
            out.append(i)
    return np.asarray(out, dtype=np.int64)


def pair_scores(vectors: np.ndarray, masks: np.ndarray | None, subjects, views) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) cosine scores of every unordered pair of distinct images except the
    profile-profile pairs (CFP scores frontal-frontal and frontal-profile pairs). vectors (N, D);
    masks (N, R) region visibility (masked cosine) or None; subjects, views (N,).

    >>> v = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> g, i = pair_scores(v, None, ["a", "a", "b"], ["frontal", "profile", "frontal"])
    >>> g.round(2).tolist(), sorted(i.round(2).tolist())
    ([0.8], [0.0, 0.6])
    """
    from pipeline.index import cosine_scores, masked_cosine_scores

    v = np.asarray(vectors, dtype=np.float32)
    s = np.asarray(subjects).astype(str)
    prof = np.asarray(views).astype(str) == "profile"
    n = len(v)
    if masks is None:
        scores = cosine_scores(v, v)
    else:
        scores = np.zeros((n, n), dtype=np.float32)
        for i in range(n - 1):
            scores[i, i + 1 :] = masked_cosine_scores(v[i], masks[i], v[i + 1 :], masks[i + 1 :])
    iu, ju = np.triu_indices(n, k=1)
    keep = ~(prof[iu] & prof[ju])
    iu, ju = iu[keep], ju[keep]
    sc = scores[iu, ju].astype(np.float64)
    same = s[iu] == s[ju]
    ok = np.isfinite(sc)
    return sc[same & ok], sc[~same & ok]


def operating_points(scores: Scores) -> dict[str, dict[str, float]]:
    """{spec: {"threshold", "tar", "far"}} for every named operating point: the threshold of
    :func:`threshold_at_far`, the share of genuine and impostor pairs it accepts."""
    if len(scores.genuine) == 0 or len(scores.impostor) == 0:
        raise ConfigError(
            f"{len(scores.genuine)} genuine and {len(scores.impostor)} impostor pairs: calibration needs both "
            "(at least two subjects, one with two images)"
        )
    out = {}
    for spec, far in NAMED_FARS.items():
        t = threshold_at_far(scores.impostor, far)
        out[spec] = {
            "threshold": t,
            "tar": float((scores.genuine >= t).mean()),
            "far": float((scores.impostor >= t).mean()),
        }
    return out


# -- the two sources -----------------------------------------------------------------------------
def chip_scores(names: list[str], descs: dict[str, Any], chips_file: Path, subjects: str, per_subject: int | None):
    """{name: Scores} of the chips of ``chips_file`` (training.pose_chips) in the subject range."""
    bad = [n for n in names if not callable(getattr(descs[n], "embed_chips", None))]
    if bad:
        raise ConfigError(
            f"descriptor(s) {', '.join(bad)} do not embed chips (no embed_chips method): drop --chips to "
            "describe the images through the pipeline"
        )
    try:
        with np.load(chips_file, allow_pickle=False) as z:
            missing = [k for k in ("chips", "subject", "view") if k not in z.files]
            if missing:
                raise ConfigError(f"{chips_file} lacks {missing}: make it with python -m training.pose_chips")
            chips, subj, view = z["chips"], z["subject"].astype(str), z["view"].astype(str)
    except ConfigError:
        raise
    except (OSError, ValueError) as e:  # missing, not an npz, truncated
        raise ConfigError(f"cannot read the chips file {chips_file}: {e}") from e
    if chips.ndim != 4 or chips.shape[1:] != (150, 150, 3) or chips.dtype != np.uint8 or len(subj) != len(chips):
        raise ConfigError(f"{chips_file}: expected chips (N, 150, 150, 3) uint8 with one subject each")
    refuse_non_training(subj)  # a chips file with evaluation subjects is refused whole, whatever --subjects
    lo, hi = subjects.split("-")
    sel = np.flatnonzero((subj >= lo) & (subj <= hi))
    sel = sel[keep_per_subject(subj[sel], view[sel], per_subject)]
    if not len(sel):
        raise ConfigError(f"{chips_file} has no chips of subjects {subjects}")
    log.info("%d chips of %d subjects from %s", len(sel), len(set(subj[sel])), chips_file)
    out = {}
    for name in names:
        vecs = []
        for b in tqdm(range(0, len(sel), 256), desc=f"{name}: embedding chips", unit="batch"):
            vecs.append(np.asarray(descs[name].embed_chips(np.ascontiguousarray(chips[sel[b : b + 256]]))))
        g, i = pair_scores(np.concatenate(vecs), None, subj[sel], view[sel])
        out[name] = Scores(g, i, len(sel))
    return out


def image_scores(names: list[str], data: Path, subjects: str, per_subject: int | None):
    """{name: Scores} of the CFP images of ``data/manifest.csv`` in the subject range, every
    descriptor on the same faces (the runtime front end)."""
    from benchmarks.uhdb31_rank1 import describe_all
    from pipeline.config import PipelineConfig

    if not (Path(data) / "manifest.csv").is_file():
        raise ConfigError(f"no manifest.csv in {data}: give the CFP folder with --data")
    rows = sorted(read_manifest(data, subjects), key=lambda r: (r["subject"], r["path"]))
    if not rows:
        raise ConfigError(f"no images of subjects {subjects} in {data}/manifest.csv")
    refuse_non_training([r["subject"] for r in rows])
    views = [view_of(r["path"]) for r in rows]
    rows = [rows[i] for i in keep_per_subject([r["subject"] for r in rows], views, per_subject)]
    log.info("%d images of %d subjects in %s", len(rows), len({r["subject"] for r in rows}), data)
    base = PipelineConfig()
    sigs, status, _, _ = describe_all(rows, Path(data), base.landmarker, names, base, cropped_gallery=False)
    nofaces = sum(s != "ok" for s in status)
    if nofaces:
        log.warning("%d of %d images without a usable face are left out", nofaces, len(rows))
    out = {}
    for name in names:
        ok = [i for i, s in enumerate(sigs[name]) if s is not None]
        if not ok:
            raise ConfigError(f"descriptor {name!r} described none of the {len(rows)} images")
        vecs = np.stack([np.asarray(sigs[name][i][0], np.float32).reshape(-1) for i in ok])
        ms = [sigs[name][i][1] for i in ok]
        masks = (
            np.stack([np.asarray(m, np.float32).reshape(-1) for m in ms]) if all(m is not None for m in ms) else None
        )
        g, i = pair_scores(vecs, masks, [rows[k]["subject"] for k in ok], [view_of(rows[k]["path"]) for k in ok])
        out[name] = Scores(g, i, len(ok))
    return out


# -- main ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m training.calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--descriptor", required=True, metavar="NAME[,NAME...]", help="descriptors to calibrate")
    add_data_argument(ap, "cfp_dev", help="CFP folder with manifest.csv (default: the data root's cfp_dev)")
    ap.add_argument("--subjects", default="001-125", help="subject range, CFP training subjects only [001-125]")
    ap.add_argument(
        "--per-subject",
        type=int,
        default=None,
        metavar="K",
        help="keep the first K frontal and K profile images of each subject [all]",
    )
    ap.add_argument("--chips", type=Path, metavar="FILE", help="embed the chips of this training.pose_chips .npz")
    ap.add_argument(
        "--models",
        type=Path,
        default=DATA_DIR,
        metavar="DIR",
        help="folder whose MANIFEST.json receives the thresholds [descriptors/data]",
    )
    ap.add_argument("--dry-run", action="store_true", help="print the operating points, write nothing")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [torch's default]")
    add_log_arguments(ap)
    return ap


def run(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(args)
    setup_logging(a.verbose)
    names = [n.strip() for n in a.descriptor.split(",") if n.strip()]
    if not names:
        raise ConfigError("--descriptor: name at least one descriptor")
    if a.per_subject is not None and a.per_subject < 1:
        raise ConfigError(f"--per-subject must be at least 1, got {a.per_subject}")
    subjects = "-".join(training_subjects(a.subjects))
    if not a.dry_run:  # the manifest must be readable before hours of describing
        from descriptors.thresholds import read_thresholds

        read_thresholds(a.models)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    from pipeline.registry import DESCRIPTORS

    descs = {n: DESCRIPTORS.create(n) for n in names}  # unknown names / missing weights stop here
    if a.chips is not None:
        scores = chip_scores(names, descs, a.chips, subjects, a.per_subject)
        source = f"chips {a.chips} (training.pose_chips)"
    else:
        scores = image_scores(names, a.data, subjects, a.per_subject)
        source = f"{Path(a.data).name} images through the default pipeline front end"
    command = "python -m training.calibrate " + shlex.join(args)
    entries = {}
    print(f"{'descriptor':<20} {'images':>6} {'genuine':>8} {'impostor':>9}  {'far1 (TAR)':>17}  {'far0.1 (TAR)':>17}")
    for name in names:
        sc = scores[name]
        ops = operating_points(sc)
        coarse = [spec for spec, need in MIN_IMPOSTORS.items() if len(sc.impostor) < need]
        if coarse:
            log.warning(
                "%s: only %d impostor pairs: the %s threshold%s rest%s on fewer than 10 accepted impostors "
                "(a coarse estimate; calibrate on more subjects)",
                name,
                len(sc.impostor),
                " and ".join(coarse),
                "s" if len(coarse) > 1 else "",
                "" if len(coarse) > 1 else "s",
            )
        cells = "  ".join(f"{ops[s]['threshold']:>8.4f} ({100 * ops[s]['tar']:5.1f}%)" for s in NAMED_FARS)
        print(f"{name:<20} {sc.images:>6} {len(sc.genuine):>8} {len(sc.impostor):>9}  {cells}")
        per = f"first {a.per_subject} frontal + {a.per_subject} profile" if a.per_subject else "every image"
        entries[name] = threshold_record(
            {s: ops[s]["threshold"] for s in NAMED_FARS},
            data=f"CFP training subjects {subjects}, {per} per subject ({sc.images} described), {source}; "
            "frontal-frontal and frontal-profile pairs",
            command=command,
            genuine=len(sc.genuine),
            impostor=len(sc.impostor),
            cache_token=getattr(descs[name], "cache_token", None),
        )
    if a.dry_run:
        print("--dry-run: nothing written")
        return 0
    print(f"written to {write_thresholds(entries, a.models)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
