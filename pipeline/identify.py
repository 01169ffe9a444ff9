"""Identify face photos against a gallery (1-vs-all, cosine similarity).

    python -m pipeline.identify PROBE... --gallery DIR [--top-k K] [--json FILE|-]
        [--cache PATH | --no-cache] [--fusion max|mean] [--index numpy|faiss] [--save-debug DIR]
        [--threshold far1|far0.1|VALUE] [--detector NAME] [--landmarker NAME] [--descriptor NAME]

PROBE is an image or a folder of images. Gallery layouts: DIR/<identity>/*.jpg (several images
per identity) or DIR/<identity>.jpg. Each probe's best face (the most confident; the largest with
--refiner bbox-cnn|none) is matched (--all-faces: every face). Scores are cosine similarities; with
descriptors that give per-region visibility masks only the regions visible in both faces are
compared. An identity's several gallery images are fused by their best score (--fusion max) or
their mean (--fusion mean).

Enrolled signatures are cached in DIR/.godp-cache.npz (--cache PATH: elsewhere, e.g. for a
read-only gallery; --no-cache: none) and reused while an image's content and the pipeline
configuration are unchanged; only new or changed images are described. Gallery images that
cannot be enrolled are reported as warnings and skipped.

Without --json a table is printed; --json writes [{"probe", "status": "ok"|"no_face"|"error",
"message", "candidates": [{"identity", "score"}, ...], "box" (ok only), "pose" (ok only)}], best
first. "pose" is {"yaw", "pitch", "roll"} in degrees of the face's 3D fit (yaw > 0: the nose points
towards image-left, pitch > 0: looking up, roll > 0: clockwise in the image), or null when the
descriptor needs no 3D fit (e.g. dlib-resnet).

Open-set identification (--threshold): a probe whose best score is below the threshold is
"unknown" (not enrolled). far1 / far0.1 are the descriptor's thresholds calibrated at a false
accept rate of 1 % / 0.1 % on CFP training subjects 001-125 (python -m training.calibrate); a number
is used as is. Each ok record then also has "identity" (the best candidate, or "unknown"),
"decision" ("match" | "unknown") and "operating_point" ({"label", "value"}); the candidates are
listed either way. Without --threshold every probe gets its best candidate (closed set).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.cli import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    add_stage_args,
    add_threshold_arg,
    add_version_arg,
    config_from_args,
    error_line,
    expand_inputs,
    failure_status,
    guarded_main,
    image_error_line,
    setup_logging,
    write_json,
)
from pipeline.errors import FaceError
from pipeline.gallery import enroll
from pipeline.imageio import load_image, save_image
from pipeline.index import FUSIONS, INDEX_KINDS, require_faiss
from pipeline.overlay import draw_faces
from pipeline.pipeline import Pipeline
from pipeline.types import FaceResult

log = logging.getLogger("pipeline.identify")

#: The identity (and decision) of an open-set probe whose best score is below the threshold.
UNKNOWN = "unknown"


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def match_record(
    base: dict[str, Any], face: FaceResult, cands: list[tuple[str, float]], op: dict[str, Any] | None
) -> dict[str, Any]:
    """The JSON record of one matched face: ``base`` (probe, status, message) + box, candidates and pose;
    with an operating point ``op`` ({"label", "value"}) also identity, decision and operating_point."""
    out = {
        **base,
        "box": [round(v, 1) for v in face.detection.box],
        "candidates": [{"identity": i, "score": round(s, 4)} for i, s in cands],
        "pose": face_pose(face),
    }
    if op is not None:
        matched = bool(cands) and cands[0][1] >= op["value"]
        out.update(
            identity=cands[0][0] if matched else UNKNOWN,
            decision="match" if matched else UNKNOWN,
            operating_point=dict(op),
        )
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.identify",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("probes", nargs="+", metavar="PROBE", help="probe image files or folders")
    ap.add_argument("--gallery", required=True, metavar="DIR", help="gallery folder")
    ap.add_argument("--top-k", type=_positive_int, default=5, help="candidates to report per probe [5]")
    ap.add_argument("--json", metavar="FILE", help="write results as JSON to FILE (- for stdout)")
    c = ap.add_mutually_exclusive_group()
    c.add_argument(
        "--cache",
        metavar="PATH",
        help="gallery signature cache file [DIR/.godp-cache.npz]; give a path elsewhere when the "
        "gallery folder is read-only",
    )
    c.add_argument("--no-cache", action="store_true", help="describe the whole gallery, read and write no cache")
    ap.add_argument(
        "--fusion",
        choices=FUSIONS,
        default="max",
        help="combine an identity's gallery images by their best (max) or mean score [max]",
    )
    ap.add_argument(
        "--index",
        choices=INDEX_KINDS,
        default="numpy",
        help="search: exact numpy, or FAISS inner-product (optional extra .[faiss]; masked "
        "templates fall back to numpy) [numpy]",
    )
    ap.add_argument(
        "--save-debug",
        metavar="DIR",
        help="write per probe the detected box + landmarks overlay (PNG) and, when the pipeline "
        "made them, the fitted mesh (OBJ), the UV texture (PNG) and the frontalised face (PNG)",
    )
    ap.add_argument("--no-progress", action="store_true", help="no progress bars (gallery enrolment, probes)")
    add_threshold_arg(ap, None, "open-set identification: a probe is matched to its best identity only")
    add_stage_args(ap, descriptor=True)
    add_version_arg(ap)
    return ap


def face_pose(face: FaceResult) -> dict[str, float] | None:
    """``{"yaw", "pitch", "roll"}`` in degrees of the face's 3D fit (:func:`recon3d.export.pose_json`;
    yaw > 0: the nose points towards image-left), or None when the pipeline made no fit (a 2D
    descriptor such as ``dlib-resnet``)."""
    if face.fit is None:
        return None
    from recon3d.export import pose_json

    return pose_json(face.fit)


# -- debug output --------------------------------------------------------------------------------
def draw_overlay(image: np.ndarray, faces: list[FaceResult], landmarks: list) -> np.ndarray:
    """(H, W, 3) uint8 RGB copy of ``image`` (RGB or gray) with each face's box and landmarks drawn
    by :func:`pipeline.overlay.draw_faces` (box yellow, visible landmarks filled green, occluded
    ones red rings); ``landmarks[j]`` is the Landmarks of ``faces[j]`` or None (box only)."""
    return draw_faces(
        image,
        [f.detection.box for f in faces],
        [None if lm is None else lm.points for lm in landmarks],
        [None if lm is None else lm.visible for lm in landmarks],
    )


class DebugWriter:
    """Writes the ``--save-debug`` files of each probe into ``out_dir`` (atomically)."""

    def __init__(self, out_dir: str | Path, pipe: Pipeline):
        self.out = Path(out_dir)
        self.pipe = pipe
        self._landmarker_error: str | None = None
        self._export = None
        self._export_error: str | None = None
        self.out.mkdir(parents=True, exist_ok=True)

    def _landmarks(self, image: np.ndarray, face: FaceResult):
        """The face's landmarks; computed for the overlay when the pipeline skipped them."""
        if face.landmarks is not None or self._landmarker_error is not None:
            return face.landmarks
        try:
            return self.pipe.landmarker.predict(image, face.detection.box)
        except Exception as e:  # noqa: BLE001 - debug output is best effort
            self._landmarker_error = str(e)
            log.info("debug overlays show boxes only: landmarker %r unavailable (%s)", self.pipe.config.landmarker, e)
            return None

    def _export_module(self):
        if self._export is None and self._export_error is None:
            try:
                from recon3d import export  # optional here: without it no mesh debug files are written

                self._export = export
            except Exception as e:  # noqa: BLE001 - debug output is best effort
                self._export_error = str(e)
                log.debug("recon3d.export unavailable (%s): no mesh debug files", e)
        return self._export

    def write(self, index: int, probe: Path, image: np.ndarray, faces: list[FaceResult]) -> list[Path]:
        """Write ``NNNN_<probe>_overlay.png`` and, per face j with a 3D fit / UV texture,
        ``NNNN_<probe>_face<j>_mesh.obj`` (+ .mtl and texture, via ``recon3d.export``),
        ``NNNN_<probe>_face<j>_uv.png`` (RGBA: the texture, alpha = its visibility mask) and, with a
        frontalising descriptor (``resnet-3d``), ``NNNN_<probe>_face<j>_frontal.png``.
        Returns the paths written."""
        stem = f"{index:04d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', probe.stem)}"
        written = []
        p = self.out / f"{stem}_overlay.png"
        save_image(p, draw_overlay(image, faces, [self._landmarks(image, f) for f in faces]))
        written.append(p)
        for j, f in enumerate(faces):
            tag = f"{stem}_face{j}"
            if f.fit is not None:
                written += self._mesh(self.out / f"{tag}_mesh.obj", f)
            if f.uv is not None:
                uvp = self.out / f"{tag}_uv.png"
                alpha = (np.clip(np.asarray(f.uv.mask, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8)
                img = np.asarray(f.uv.image)
                rgb = img[..., :3] if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
                save_image(uvp, np.dstack([rgb, alpha]))
                written.append(uvp)
                frontal = getattr(self.pipe.descriptor, "frontal", None)
                if frontal is not None and f.fit is not None:
                    try:
                        fp = self.out / f"{tag}_frontal.png"
                        save_image(fp, frontal(f).image)
                        written.append(fp)
                    except Exception as e:  # noqa: BLE001 - debug output is best effort
                        log.warning("debug frontal view of %s not written: %s", probe.name, e)
        return written

    def _mesh(self, path: Path, face: FaceResult) -> list[Path]:
        """The fitted mesh as OBJ through ``recon3d.export.export_mesh`` (skipped, with a debug
        log, when that module or function is unavailable)."""
        mod = self._export_module()
        fn = getattr(mod, "export_mesh", None) if mod is not None else None
        if fn is None:
            log.debug("recon3d.export.export_mesh unavailable: %s not written", path.name)
            return []
        try:
            assert face.fit is not None  # write() calls this only for faces with a fit
            out = fn(path, face.fit.vertices, face.uv)  # writes atomically itself
        except Exception as e:  # noqa: BLE001 - debug output is best effort
            log.warning("debug mesh %s not written: %s", path, e)
            return []
        return [Path(x) for x in (out or [path])]


# -- main ----------------------------------------------------------------------------------------
def run(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    if a.index == "faiss":
        require_faiss()  # a one-line configuration error (exit 2) before any work
    pipe = Pipeline(config_from_args(a))
    desc = pipe.descriptor  # build the descriptor now: configuration errors surface before any work
    op: dict[str, Any] | None = None
    if a.threshold is not None:  # open set: resolved (or refused) before the gallery is enrolled
        from descriptors.thresholds import operating_point

        value, label = operating_point(a.descriptor, a.threshold, cache_token=getattr(desc, "cache_token", None))
        op = {"label": label, "value": value}
        log.info("open-set operating point %s: threshold %.4f (descriptor %s)", label, value, a.descriptor)
    cache = None if a.no_cache else (a.cache or "auto")
    gallery = enroll(pipe, a.gallery, progress=not a.no_progress, cache=cache, fusion=a.fusion)
    gallery.use_index(a.index)
    probes = expand_inputs(a.probes)
    if not probes:
        error_line("no probe images found in the given paths")
        return EXIT_FAILED
    debug = DebugWriter(a.save_debug, pipe) if a.save_debug else None
    results: list[dict[str, Any]] = []
    n_ok = 0
    bar = tqdm(probes, desc="identifying probes", unit="img", disable=a.no_progress or len(probes) < 2)
    for k, p in enumerate(bar):
        rec: dict[str, Any] = {"probe": str(p), "status": "ok", "message": "", "candidates": []}
        try:
            image = load_image(p, a.max_pixels)
            faces = pipe.run(image, until="describe")
            for f in faces:
                assert f.signature is not None  # run(until="describe") describes every face
                cands = gallery.match(f.signature.vector, a.top_k, f.signature.mask)
                results.append(match_record(rec, f, cands, op))
            n_ok += 1
            if debug is not None:
                try:
                    debug.write(k, p, image, faces)
                except OSError as e:
                    log.warning("debug files of %s not written: %s", p, e)
            continue
        except FaceError as e:
            rec.update(status=failure_status(e), message=str(e))
        image_error_line(p, rec["message"])
        results.append(rec)
    if a.json:
        write_json(results, a.json)
    else:
        w = max(len(r["probe"]) for r in results)
        if op is None:
            print(f"{'probe':<{w}}  status   best match (score)  next candidates")
        else:
            print(f"open set: a best score below {op['value']:.4f} ({op['label']}, {a.descriptor}) is unknown")
            print(f"{'probe':<{w}}  status   identity  best match (score)  next candidates")
        for r in results:
            c = r["candidates"]
            best = f"{c[0]['identity']} ({c[0]['score']:.3f})" if c else "-"
            rest = ", ".join(f"{x['identity']} ({x['score']:.3f})" for x in c[1:3])
            ident = "" if op is None else f"{r.get('identity', '-'):<8}  "
            print(f"{r['probe']:<{w}}  {r['status']:<7}  {ident}{best:<18}  {rest}")
    return EXIT_OK if n_ok > 0 else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
