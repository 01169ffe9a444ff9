"""Collect the aligned 150x150 face chips that the pose-robust descriptor is trained on.

    python -m training.pose_chips            # CFP training subjects 001-125 -> runs/pose_chips/cfp_001-125.npz
    python -m training.pose_chips --subjects 001-010 --out runs/pose_chips/small.npz
    python -m training.pose_chips --subjects 101-125 --frontal --out runs/pose_chips/cfp_101-125_frontal.npz
    python -m training.pose_chips --merge A.npz B.npz --out runs/pose_chips/cfp_001-125.npz

Every image of the CFP training subjects (``splits/splits.json``: 001-125; 10 frontal + 4 profile
photos each) goes through the shipped front end exactly as at run time (``Pipeline.run(image,
until="landmarks")``: ``dpm`` -> ``lm-verify`` -> ``godp``), and the chip is cut with
:func:`descriptors.chips.chip_from_landmarks` -- the alignment the descriptors use. Images whose
face is not found are listed, not chipped. The output ``.npz`` holds ``chips`` (N, 150, 150, 3) uint8
RGB, ``subject`` (N,) str, ``view`` (N,) str (frontal / profile), ``path`` (N,) str (relative to the
CFP folder), ``points`` (N, 19, 2) float32 px, ``visible`` (N, 19) bool, ``confidence`` (N,) float32
(mean landmark score) and ``yaw_subspace`` (N,) int16 (GoDP's pose subspace, -1 if none). With
``--frontal`` the pipeline runs on to the UV texture (``until="lift"``) and the file also holds
``frontal_chips`` (N, 150, 150, 3): the chip of the face frontalised through the 3D fit, as
``resnet-3d`` cuts it (:func:`recon3d.frontalize.frontalize`, 256 x 306 render), and ``frontal_ok``
(N,) bool (False where the fit failed; the chip is then black).

Resumable: finished images are saved every ``--save-every`` images to ``OUT.partial.npz`` and skipped
on a rerun. CFP evaluation subjects (126-250) are refused: they are what the benchmarks measure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedata.paths import add_data_argument, add_log_arguments, runs_path
from facedata.readers import read_manifest
from facedata.splits import cfp_subjects
from pipeline.atomic import atomic_write_bytes
from pipeline.cli import guarded_main, setup_logging
from pipeline.errors import ConfigError, FaceError

log = logging.getLogger("training.pose_chips")


def _save(path: Path, rows: list[dict]) -> None:
    import io

    buf = io.BytesIO()
    np.savez(
        buf,
        chips=np.stack([r["chip"] for r in rows]) if rows else np.zeros((0, 150, 150, 3), np.uint8),
        subject=np.array([r["subject"] for r in rows], dtype=str),
        view=np.array([r["view"] for r in rows], dtype=str),
        path=np.array([r["path"] for r in rows], dtype=str),
        points=np.stack([r["points"] for r in rows]).astype(np.float32) if rows else np.zeros((0, 19, 2)),
        confidence=np.array([r["confidence"] for r in rows], np.float32),
        visible=np.stack([r["visible"] for r in rows]) if rows else np.zeros((0, 19), bool),
        yaw_subspace=np.array([r["yaw_subspace"] for r in rows], np.int16),
        **(
            {
                "frontal_chips": np.stack([r["frontal_chip"] for r in rows]),
                "frontal_ok": np.array([r["frontal_ok"] for r in rows], bool),
            }
            if rows and "frontal_chip" in rows[0]
            else {}
        ),
    )
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with np.load(path) as f:  # read each array once: ``f[key]`` decompresses the whole array again
        z = {k: f[k] for k in f.files}
    return [
        {
            "chip": z["chips"][i].copy(),
            "subject": str(z["subject"][i]),
            "view": str(z["view"][i]),
            "path": str(z["path"][i]),
            "points": z["points"][i],
            "confidence": float(z["confidence"][i]),
            "visible": z["visible"][i],
            "yaw_subspace": int(z["yaw_subspace"][i]),
            **(
                {"frontal_chip": z["frontal_chips"][i].copy(), "frontal_ok": bool(z["frontal_ok"][i])}
                if "frontal_chips" in z
                else {}
            ),
        }
        for i in range(len(z["path"]))
    ]


def merge(files: list[Path], out: Path) -> int:
    """Concatenate chip files (a path in several: the last file's row wins); frontal chips are kept
    only if every row has them. Returns the number of rows written."""
    by_path: dict[str, dict] = {}
    for f in files:
        if not f.exists():
            raise ConfigError(f"no chip file {f}")
        for r in _load(f):
            by_path[r["path"]] = r
    rows = sorted(by_path.values(), key=lambda r: r["path"])
    if not all("frontal_chip" in r for r in rows):
        for r in rows:
            r.pop("frontal_chip", None)
            r.pop("frontal_ok", None)
    _save(out, rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.pose_chips", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(ap, "cfp_dev", help="CFP folder with manifest.csv (default: the data root's cfp_dev)")
    ap.add_argument("--subjects", default="001-125", help="subject range, training subjects only [001-125]")
    ap.add_argument("--out", type=Path, default=None, help="output .npz [runs/pose_chips/cfp_<subjects>.npz]")
    ap.add_argument("--save-every", type=int, default=100, help="images between partial saves [100]")
    ap.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    ap.add_argument("--frontal", action="store_true", help="also store the chip of the frontalised face")
    ap.add_argument(
        "--merge", type=Path, nargs="+", metavar="FILE", help="only merge these chip files into --out (no pipeline run)"
    )
    add_log_arguments(ap)
    a = ap.parse_args(argv)
    setup_logging(a.verbose)
    if a.merge:
        if a.out is None:
            raise ConfigError("--merge needs --out")
        log.warning("%d chips written to %s", merge(a.merge, a.out), a.out)
        return 0
    train = set(cfp_subjects("train"))
    rows = read_manifest(a.data, a.subjects)
    if not rows:
        raise ConfigError(f"no images of subjects {a.subjects} in {a.data}/manifest.csv")
    bad = sorted({r["subject"] for r in rows} - train)
    if bad:
        raise ConfigError(f"subjects {bad[0]}..{bad[-1]} are CFP evaluation subjects: never train on them")
    out = a.out or runs_path("pose_chips", f"cfp_{a.subjects}.npz")
    partial = out.with_suffix(".partial.npz")
    import torch

    torch.set_num_threads(a.threads)
    from descriptors.chips import chip_from_landmarks
    from pipeline.imageio import load_image
    from pipeline.pipeline import Pipeline

    done = _load(partial)
    seen = {r["path"] for r in done}
    missed: list[str] = []
    pipe = Pipeline()
    todo = [r for r in rows if r["path"] not in seen]
    log.info("%d images, %d already done", len(rows), len(rows) - len(todo))
    for k, r in enumerate(tqdm(todo, desc="chips", unit="img")):
        img = load_image(Path(a.data) / r["path"])
        try:
            face = pipe.run(img, until="lift" if a.frontal else "landmarks")[0]
        except FaceError as e:
            missed.append(r["path"])
            log.info("%s: %s", r["path"], e)
            continue
        lm = face.landmarks
        assert lm is not None
        extra: dict = {}
        if a.frontal:
            extra = {"frontal_chip": np.zeros((150, 150, 3), np.uint8), "frontal_ok": False}
            if face.fit is not None and face.uv is not None:
                from recon3d.frontalize import frontalize

                fr = frontalize(face.fit, face.uv, width=256, height=306)
                extra = {"frontal_chip": chip_from_landmarks(fr.image, fr.box, fr.landmarks), "frontal_ok": True}
        done.append(
            {
                "chip": chip_from_landmarks(img, face.detection.box, lm.points),
                "subject": r["subject"],
                "view": "profile" if "/profile/" in r["path"] else "frontal",
                "path": r["path"],
                "points": np.asarray(lm.points, np.float32),
                "confidence": float(np.mean(lm.scores)),
                "visible": np.asarray(lm.visible, bool),
                "yaw_subspace": -1 if lm.yaw_subspace is None else int(lm.yaw_subspace),
                **extra,
            }
        )
        if (k + 1) % a.save_every == 0:
            _save(partial, done)
    _save(out, done)
    partial.unlink(missing_ok=True)
    log.warning("%d chips written to %s; %d images without a face", len(done), out, len(missed))
    return 0


if __name__ == "__main__":
    sys.exit(guarded_main(main))
