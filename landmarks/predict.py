"""Predict the 19 AFLW landmarks of the face in each image (SPEC section 5).

    python -m landmarks.predict face.jpg [more.jpg | folder/] [--box x0 y0 x1 y1]
                                [--landmarker godp|dlib|...] [--json FILE|-] [--pose]

Without ``--box`` the face is detected (``--detector``, ``--refiner``), or the whole image is
the face box with ``--cropped``; with several faces the best one is used (the most confident
with the default ``lm-verify`` refiner, the largest with ``bbox-cnn`` / ``none``)
(``--all-faces``: each). Output per face: ``{"image", "box", "landmarks": [[x, y] x 19], "visible": [bool x 19],
"scores", "status": "ok"|"no_face"|"error", "message", "pose"}``; a JSON list with ``--json``, else one
line per face on stdout (``image  status  x0,y0,x1,y1  x1,y1 x2,y2 ...``, with ``--pose`` then
``yaw,pitch,roll``). Problems with an input are reported on stderr as ``error: <file>: <reason>``,
one line each.

``pose`` is null unless ``--pose`` is given: it also fits the 3D model (Surrey Face Model) to the
landmarks and reports the head pose ``{"yaw", "pitch", "roll"}`` in degrees (yaw > 0: the nose
points towards image-left; pitch > 0: looking up; roll > 0: clockwise in the image); a face whose
fit fails keeps its landmarks with ``pose`` null (and a warning).

Landmark order (AFLW-19): {names}.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pipeline.cli import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    add_stage_args,
    add_version_arg,
    config_from_args,
    error_line,
    expand_inputs,
    guarded_main,
    setup_logging,
    write_json,
)
from pipeline.errors import FaceError, FitError, InvalidImageError, NoFaceFoundError
from pipeline.imageio import load_image
from pipeline.pipeline import Pipeline
from pipeline.types import AFLW19_NAMES, FaceResult, Fit3D, as_box

log = logging.getLogger("landmarks.predict")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m landmarks.predict",
        description=(__doc__ or "").replace("{names}", ", ".join(AFLW19_NAMES)),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    ap.add_argument(
        "--box",
        nargs=4,
        type=float,
        metavar=("X0", "Y0", "X1", "Y1"),
        help="face box (AFLW convention: the extent of the 68-point face) for every image",
    )
    ap.add_argument("--json", metavar="FILE", help="write results as JSON to FILE (- for stdout)")
    ap.add_argument(
        "--pose",
        action="store_true",
        help="also fit the 3D model and report the head pose (yaw, pitch, roll in degrees) of each face",
    )
    add_stage_args(ap)
    add_version_arg(ap)
    return ap


def run(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    box = as_box(a.box) if a.box else None
    pipe = Pipeline(config_from_args(a))
    _ = pipe.landmarker  # build now: a configuration error stops before any image is read
    paths = expand_inputs(a.images)
    if not paths:
        error_line("no image files found in the given paths")
        return EXIT_FAILED
    results: list[dict[str, Any]] = []
    n_ok = 0
    for p in paths:
        rec: dict[str, Any] = {
            "image": str(p),
            "box": None,
            "landmarks": None,
            "visible": None,
            "scores": None,
            "status": "ok",
            "message": "",
            "pose": None,
        }
        try:
            img = load_image(p, a.max_pixels)
            faces = _run_faces(pipe, img, box, a.pose, p)
            for f in faces:
                lm = f.landmarks
                assert lm is not None  # run(until="landmarks"|"fit") computes every face's landmarks
                results.append(
                    {**rec, "box": [round(v, 2) for v in f.detection.box], **lm.to_json(), "pose": _pose(f.fit)}
                )
            n_ok += 1
            continue
        except NoFaceFoundError as e:
            rec.update(status="no_face", message=str(e))
        except InvalidImageError as e:
            rec.update(status="error", message=str(e))
        except FaceError as e:
            if e.exit_code == 2:  # configuration problems are not per-image
                raise
            rec.update(status="error", message=f"{p}: {e}")
        error_line(rec["message"] if rec["message"].startswith(str(p)) else f"{p}: {rec['message']}")
        results.append(rec)
    if a.json:
        write_json(results, a.json)
    else:
        for r in results:
            if r["status"] == "ok":
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in r["landmarks"])
                angles = r["pose"] and ",".join(f"{r['pose'][k]:.1f}" for k in ("yaw", "pitch", "roll"))
                pose = f"\t{angles}" if angles else ""
                print(f"{r['image']}\tok\t{','.join(f'{v:.1f}' for v in r['box'])}\t{pts}{pose}")
            else:
                print(f"{r['image']}\t{r['status']}")
    return EXIT_OK if n_ok > 0 else EXIT_FAILED


def _run_faces(pipe: Pipeline, img, box, pose: bool, path) -> list[FaceResult]:
    """The faces of ``img`` with their landmarks (``pose``: and their 3D fit). A fit failure keeps
    the landmarks: the image is run again until the landmarks (pose null) with a warning."""
    if not pose:
        return pipe.run(img, until="landmarks", box=box)
    try:
        return pipe.run(img, until="fit", box=box)
    except FitError as e:
        log.warning("%s: no pose: the 3D fit failed (%s); landmarks only", path, e)
        return pipe.run(img, until="landmarks", box=box)


def _pose(fit: Fit3D | None) -> dict[str, float] | None:
    if fit is None:
        return None
    from recon3d.export import pose_json

    return pose_json(fit)


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
