"""Helpers shared by the command-line entry points: stage flags, logging, input expansion,
atomic JSON output and the error boundary (one clear line, a documented exit code, never a
traceback unless ``--debug``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from pipeline.config import PipelineConfig
from pipeline.errors import FaceError, InvalidImageError, NoFaceFoundError
from pipeline.imageio import DEFAULT_MAX_PIXELS, is_image_path
from pipeline.registry import DESCRIPTORS, DETECTORS, LANDMARKERS, REFINERS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES_HELP = """exit codes:
  0  every input processed, or some failed and were reported (status in the JSON)
  1  every input failed (unreadable image, no face, ...) or an internal error
  2  usage or configuration error (bad flag, unknown stage name, stage not built yet)
  130 interrupted"""


PACKAGE = "godp-face"


def package_version() -> str:
    """The installed version of the ``godp-face`` distribution (``importlib.metadata``), or
    ``"unknown (not installed)"`` for a source tree that was never ``pip install``-ed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def add_version_arg(ap: argparse.ArgumentParser) -> None:
    """Add ``--version``: prints ``godp-face X.Y.Z`` on stdout and exits 0."""
    ap.add_argument("--version", action="version", version=f"{PACKAGE} {package_version()}")


def _threshold_spec(text: str) -> str:
    from descriptors.thresholds import NAMED_FARS, is_spec

    if not is_spec(text.strip()):
        raise argparse.ArgumentTypeError(
            f"expected {', '.join(NAMED_FARS)} or a cosine threshold between -1 and 1, got {text!r}"
        )
    return text.strip()


def add_threshold_arg(ap: argparse.ArgumentParser, default: str | None, what: str) -> None:
    """Add ``--threshold far1|far0.1|VALUE`` (checked at parse time; resolved to a number with
    :func:`descriptors.thresholds.operating_point` once the descriptor is known). what: what a
    score at or above it means, for the help text."""
    ap.add_argument(
        "--threshold",
        type=_threshold_spec,
        default=default,
        metavar="far1|far0.1|VALUE",
        help=f"operating point: {what} when the cosine score is at least the threshold; far1 / far0.1: the "
        "descriptor's threshold calibrated at a false accept rate of 1 %% / 0.1 %% on CFP training subjects "
        "(python -m training.calibrate), or a cosine value in [-1, 1]" + (f" [{default}]" if default else ""),
    )


def add_stage_args(ap: argparse.ArgumentParser, descriptor: bool = False) -> None:
    d = PipelineConfig()
    g = ap.add_argument_group("pipeline stages")
    g.add_argument("--detector", default=d.detector, help=f"face detector [{d.detector}]: {DETECTORS.describe()}")
    g.add_argument("--refiner", default=d.refiner, help=f"box refiner [{d.refiner}]: {REFINERS.describe()}")
    g.add_argument("--landmarker", default=d.landmarker, help=f"landmarker [{d.landmarker}]: {LANDMARKERS.describe()}")
    if descriptor:
        g.add_argument(
            "--descriptor", default=d.descriptor, help=f"descriptor [{d.descriptor}]: {DESCRIPTORS.describe()}"
        )
    g.add_argument(
        "--cropped",
        action="store_true",
        help="inputs are tight face crops: skip detection, the whole image is the face box",
    )
    g.add_argument(
        "--all-faces",
        action="store_true",
        help="process every detected face (default: only the best one: the most confident with the "
        "lm-verify refiner, else the largest)",
    )
    g.add_argument(
        "--min-face", type=int, default=d.min_face, help=f"smallest face side in px to detect [{d.min_face}]"
    )
    g.add_argument(
        "--face-floor",
        type=float,
        default=None,
        metavar="P",
        help="lm-verify: reject candidates with p(face) below P [the face check's trained floor, "
        "see pipeline/detection/models/MANIFEST.json]; 0 keeps the best candidate of every image "
        "(for inputs known to hold a face)",
    )
    g.add_argument(
        "--part-veto",
        action="store_true",
        help="lm-verify: drop a first face nested inside a bigger face when the part check (trained "
        "with eye / nose / mouth boxes as non-faces) rejects it; off by default: more pitched "
        "full profiles found, a few real faces lost (docs/detection/RESULTS.md)",
    )
    g.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse images with more pixels than this [{DEFAULT_MAX_PIXELS}]",
    )
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    ap.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def config_from_args(a: argparse.Namespace) -> PipelineConfig:
    kw = dict(
        detector=a.detector,
        refiner=a.refiner,
        landmarker=a.landmarker,
        cropped=a.cropped,
        all_faces=a.all_faces,
        min_face=a.min_face,
        max_pixels=a.max_pixels,
        face_floor=getattr(a, "face_floor", None),
        part_veto=getattr(a, "part_veto", False),
    )
    if getattr(a, "descriptor", None):
        kw["descriptor"] = a.descriptor
    return PipelineConfig(**kw)


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


def expand_inputs(items: Iterable[str]) -> list[Path]:
    """Files as given; folders expanded to their image files (sorted, recursive). A folder with
    no image file is kept as itself, so the caller reports it ("is a folder") instead of
    silently dropping it."""
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and is_image_path(q) and not q.name.startswith("."))
            out += found or [p]
        else:
            out.append(p)
    return out


def write_json(obj: Any, dest: str) -> None:
    """Write JSON to ``dest`` atomically (temp file + rename), or to stdout for ``-``."""
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not valid UTF-8: escape it (still valid JSON)
        text = json.dumps(obj, indent=2, ensure_ascii=True)
    if dest == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    from pipeline.atomic import atomic_write_bytes

    atomic_write_bytes(dest, (text + "\n").encode("utf-8"))


def error_line(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def failure_status(e: FaceError) -> str:
    """The per-image status of a pipeline failure: ``no_face`` or ``error``. A configuration problem
    (exit code 2, not about this image) is raised again, so that the whole run stops."""
    if isinstance(e, NoFaceFoundError):
        return "no_face"
    if not isinstance(e, InvalidImageError) and e.exit_code == 2:
        raise e
    return "error"


def image_error_line(path: str | Path, msg: str) -> str:
    """Print ``error: <path>: <msg>`` (the path once, if ``msg`` already starts with it) and return the
    message with its path."""
    msg = msg if msg.startswith(str(path)) else f"{path}: {msg}"
    error_line(msg)
    return msg


def guarded_main(fn: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run ``fn`` and turn every failure into one line on stderr and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 must not crash output
        reconfigure = getattr(stream, "reconfigure", None)  # a replaced stream need not be a TextIOWrapper
        try:
            if reconfigure is not None:
                reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    try:
        return fn(argv)
    except FaceError as e:
        error_line(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the CLI boundary: no tracebacks for users
        if debug:
            raise
        error_line(f"internal error: {type(e).__name__}: {e} (rerun with --debug for details, and report it)")
        return EXIT_FAILED
