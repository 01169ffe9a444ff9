"""Verify whether two face photos show the same person (1:1, cosine similarity).

    python -m pipeline.verify A B [--threshold far1|far0.1|VALUE] [--json FILE|-]
        [--detector NAME] [--landmarker NAME] [--descriptor NAME] [--cropped] [--all-faces] ...

The best face of each image (the most confident; the largest with --refiner bbox-cnn|none) is
described and the two templates are compared by cosine similarity (with descriptors that give
per-region visibility masks, only the regions visible in both faces are compared, as in
identification). The pair is "same" when the score is at least the threshold of the operating
point, else "different". --threshold far1 (the default) / far0.1: the descriptor's threshold
calibrated at a false accept rate of 1 % / 0.1 % on CFP training subjects 001-125
(descriptors/data/MANIFEST.json, made by python -m training.calibrate --descriptor NAME); a number
is used as the threshold as is. --all-faces: every face of A is compared with every face of B and
the best-scoring pair decides.

Without --json one result line is printed; --json writes {"a", "b", "status": "ok"|"no_face"|"error",
"message", "descriptor", "score", "decision": "same"|"different", "operating_point": {"label",
"value"}, "box_a", "box_b"} (score, decision and boxes are null unless status is ok). The exit code
is 0 whenever a decision was made (same or different); an image without a face or that cannot be
read gives one "error: <file>: <reason>" line and exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cli import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    add_stage_args,
    add_threshold_arg,
    add_version_arg,
    config_from_args,
    failure_status,
    guarded_main,
    image_error_line,
    setup_logging,
    write_json,
)
from pipeline.errors import FaceError, NoFaceFoundError
from pipeline.imageio import load_image
from pipeline.index import masked_cosine_scores
from pipeline.pipeline import Pipeline
from pipeline.types import FaceResult, Signature

log = logging.getLogger("pipeline.verify")


def similarity(a: Signature, b: Signature) -> float:
    """Cosine similarity of two face templates, in [-1, 1]; restricted to the regions visible in
    both when both carry a region mask (:func:`pipeline.index.masked_cosine_scores`, the score a
    gallery match gives)."""
    va = np.asarray(a.vector, dtype=np.float32).reshape(-1)
    vb = np.asarray(b.vector, dtype=np.float32).reshape(-1)
    if va.shape != vb.shape:
        raise ValueError(f"templates of different lengths {va.shape[0]} and {vb.shape[0]} (other descriptors?)")
    mb = None if b.mask is None else np.asarray(b.mask, dtype=np.float32).reshape(1, -1)
    return float(masked_cosine_scores(va, a.mask, vb[None], mb)[0])


def _signature(face: FaceResult) -> Signature:
    assert face.signature is not None  # run(until="describe") describes every face
    return face.signature


def decide(score: float, threshold: float) -> str:
    """``"same"`` when ``score >= threshold``, else ``"different"``.

    >>> decide(0.61, 0.6), decide(0.59, 0.6)
    ('same', 'different')
    """
    return "same" if score >= threshold else "different"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.verify",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("a", metavar="A", help="first face image")
    ap.add_argument("b", metavar="B", help="second face image")
    add_threshold_arg(ap, "far1", "same person")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON to FILE (- for stdout)")
    add_stage_args(ap, descriptor=True)
    add_version_arg(ap)
    return ap


def _faces(pipe: Pipeline, path: Path, max_pixels: int) -> list[FaceResult]:
    faces = pipe.run(load_image(path, max_pixels), until="describe")
    if not faces:  # the pipeline raises NoFaceFoundError itself; an empty list must not pass silently
        raise NoFaceFoundError(f"{path}: no face found")
    return faces


def run(argv: list[str] | None = None) -> int:
    from descriptors.thresholds import operating_point

    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    pipe = Pipeline(config_from_args(a))
    desc = pipe.descriptor  # configuration errors (unknown descriptor, missing weights) before any work
    value, label = operating_point(a.descriptor, a.threshold, cache_token=getattr(desc, "cache_token", None))
    log.info("operating point %s: threshold %.4f (descriptor %s)", label, value, a.descriptor)
    rec: dict[str, Any] = {
        "a": a.a,
        "b": a.b,
        "status": "ok",
        "message": "",
        "descriptor": a.descriptor,
        "score": None,
        "decision": None,
        "operating_point": {"label": label, "value": value},
        "box_a": None,
        "box_b": None,
    }
    faces: dict[str, list[FaceResult]] = {}
    for key in ("a", "b"):
        p = Path(rec[key])
        try:
            faces[key] = _faces(pipe, p, a.max_pixels)
            continue
        except FaceError as e:
            status = failure_status(e)
            msg = image_error_line(p, str(e))
        if rec["status"] == "ok":
            rec.update(status=status, message=msg)
        else:
            rec["message"] += f"; {msg}"
    if rec["status"] == "ok":
        pairs = [(fa, fb) for fa in faces["a"] for fb in faces["b"]]
        sims = [similarity(_signature(fa), _signature(fb)) for fa, fb in pairs]
        k = int(np.argmax(sims))  # the best pair (first of equals: the most confident faces)
        score, (fa, fb) = sims[k], pairs[k]
        rec.update(
            score=round(float(score), 6),
            decision=decide(float(score), value),
            box_a=[round(v, 1) for v in fa.detection.box],
            box_b=[round(v, 1) for v in fb.detection.box],
        )
    if a.json:
        write_json(rec, a.json)
    elif rec["status"] == "ok":
        print(f"{'A':<{max(len(rec['a']), 1)}}  {'B':<{max(len(rec['b']), 1)}}  score   threshold        decision")
        op = f"{value:.4f} ({label})"
        print(f"{rec['a']}  {rec['b']}  {rec['score']:.4f}  {op:<15}  {rec['decision']}")
    return EXIT_OK if rec["status"] == "ok" else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
