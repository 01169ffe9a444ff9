"""Reconstruct the 3D face of each image: mesh, UV texture, frontal view, landmarks and head pose.

    python -m pipeline.reconstruct IMAGE... --out DIR [--obj] [--ply] [--uv] [--frontal] [--pts]
        [--overlay] [--all] [--json FILE|-] [--no-progress] [--detector NAME] [--landmarker NAME] ...

IMAGE is an image or a folder of images. Each image's best face (the most confident; the largest
with --refiner bbox-cnn|none; --all-faces: every face, k = 0, 1, ...) runs through detection,
landmarks, the 3D fit (Surrey Face Model) and the UV lift, and these files go to DIR (created when
missing), per face k of the image <stem>:

  --obj      <stem>_<k>.obj + <stem>_<k>.mtl + <stem>_<k>_uv.png   textured mesh (model space, mm)
  --ply      <stem>_<k>.ply     binary PLY, vertex colours from the UV texture (grey where not seen)
  --uv       <stem>_<k>_uv.png (RGB) + <stem>_<k>_uv_mask.png (8-bit visibility mask, 0 = not seen)
  --frontal  <stem>_<k>_frontal.png   the textured face rendered at yaw = pitch = roll = 0
  --pts      <stem>_<k>.pts (ibug / 300-W format, 1-based) + <stem>_<k>_landmarks.json (named)
  --overlay  <stem>_overlay.png   box, landmarks and pose axes (x red, y green, z blue) of every face
  --all      all of the above (also the default when no output flag is given)

Head pose: yaw, pitch, roll in degrees (recon3d.camera convention): yaw > 0 the nose points towards
image-left (the subject turns to his / her own right), pitch > 0 the face looks up, roll > 0 a
clockwise in-plane rotation as seen in the image. Landmarks: the 19 AFLW points, 0-based pixels in
the JSON. Small images are drawn upscaled in the overlay (shorter side at least 256 px).

Without --json one line per face is printed (image, face, status, yaw / pitch / roll, files);
--json writes [{"image", "face", "status": "ok"|"no_face"|"error", "message", "box", "landmarks":
[{"name", "aflw_id", "x", "y", "visible", "score"}, ...], "pose": {"yaw", "pitch", "roll"}, "files":
[...], "warnings": [...]}] (failed images: face, box, landmarks, pose null). Problems with an input
are reported on stderr as error: <file>: <reason>, one line each.
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
from pipeline.errors import ConfigError, FaceError
from pipeline.imageio import load_image
from pipeline.overlay import draw_faces
from pipeline.pipeline import Pipeline
from pipeline.types import AFLW19_NAMES, Box, FaceResult

log = logging.getLogger("pipeline.reconstruct")

#: The output kinds, in the order of the flags.
OUTPUTS = ("obj", "ply", "uv", "frontal", "pts", "overlay")
#: Outputs that need the UV texture (the pipeline then runs until "lift", else until "fit").
NEEDS_UV = ("obj", "ply", "uv", "frontal")
#: The overlay of a smaller image is drawn upscaled (by an integer factor) to this shorter side.
OVERLAY_MIN_SIDE = 256
NOSE_TIP = AFLW19_NAMES.index("nose_tip")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.reconstruct",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    ap.add_argument("--out", required=True, metavar="DIR", help="output folder (created when missing)")
    o = ap.add_argument_group("outputs (none given: --all)")
    o.add_argument("--obj", action="store_true", help="textured mesh: <stem>_<k>.obj + .mtl + _uv.png")
    o.add_argument("--ply", action="store_true", help="mesh with vertex colours: <stem>_<k>.ply")
    o.add_argument("--uv", action="store_true", help="UV texture <stem>_<k>_uv.png + visibility <stem>_<k>_uv_mask.png")
    o.add_argument("--frontal", action="store_true", help="frontalised face <stem>_<k>_frontal.png")
    o.add_argument("--pts", action="store_true", help="landmarks <stem>_<k>.pts (ibug) + <stem>_<k>_landmarks.json")
    o.add_argument("--overlay", action="store_true", help="box, landmarks and pose axes <stem>_overlay.png")
    o.add_argument("--all", action="store_true", help="every output above")
    ap.add_argument("--json", metavar="FILE", help="write the per-face records as JSON to FILE (- for stdout)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_stage_args(ap)
    add_version_arg(ap)
    return ap


def selected_outputs(a: argparse.Namespace) -> tuple[str, ...]:
    """The outputs asked for (all of them with --all or when none is named)."""
    chosen = tuple(k for k in OUTPUTS if getattr(a, k))
    return OUTPUTS if a.all or not chosen else chosen


def prepare_out_dir(path: str) -> Path:
    """``--out``: an existing folder, or one that can be created; anything else is a usage error."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--out {p}: exists and is not a folder; give a folder (created when missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {p}: cannot create the folder: {e.strerror or e}") from None
    return p


def image_stems(paths: list[Path]) -> list[str]:
    """File-name stems safe for output names (characters other than letters, digits, ``._-``
    become ``_``); a stem repeated among the inputs gets ``-2``, ``-3``, ... in input order."""
    out: list[str] = []
    seen: set[str] = set()
    for p in paths:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem).strip("_") or "image"
        stem, n = base, 1
        while stem in seen:
            n += 1
            stem = f"{base}-{n}"
        seen.add(stem)
        out.append(stem)
    return out


def draw_overlay(image: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """(H', W', 3) uint8 RGB overlay of every face: box, landmarks and pose axes from the nose tip
    (:func:`pipeline.overlay.draw_faces`); an image whose shorter side is below
    :data:`OVERLAY_MIN_SIDE` is first enlarged by an integer factor (nearest neighbour)."""
    h, w = image.shape[:2]
    k = max(1, -(-OVERLAY_MIN_SIDE // max(1, min(h, w))))
    img = np.repeat(np.repeat(image, k, axis=0), k, axis=1) if k > 1 else image

    def up(xy):  # a pixel-centre coordinate in the enlarged image
        return (np.asarray(xy, dtype=np.float64) + 0.5) * k - 0.5

    boxes: list[Box | None] = []
    for f in faces:
        x0, y0, x1, y1 = (float(v) for v in up(np.reshape(f.detection.box, (2, 2))).reshape(4))
        boxes.append((x0, y0, x1, y1))
    points = [None if f.landmarks is None else up(f.landmarks.points) for f in faces]
    visible = [None if f.landmarks is None else f.landmarks.visible for f in faces]
    rotations = [None if f.fit is None or "R" not in f.fit.camera else np.asarray(f.fit.camera["R"]) for f in faces]
    origins = [None if p is None else p[NOSE_TIP] for p in points]
    return draw_faces(img, boxes, points, visible, rotations=rotations, axis_origins=origins)


def write_face(out: Path, tag: str, face: FaceResult, outputs: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """Write the per-face files of ``face`` as ``out/<tag>...``; returns (paths written, warnings)."""
    from recon3d.export import export_obj, export_ply, save_uv, write_landmarks_json, write_pts

    written: list[Path] = []
    warnings: list[str] = []
    fit, uv, lm = face.fit, face.uv, face.landmarks
    if any(k in outputs for k in NEEDS_UV) and (fit is None or uv is None):
        raise FaceError("the 3D fit or the UV texture is missing: nothing to export")
    if fit is not None and uv is not None:
        if "uv" in outputs:
            written += save_uv(out / f"{tag}_uv.png", uv, out / f"{tag}_uv_mask.png")
        if "obj" in outputs:  # the OBJ's texture is the same <tag>_uv.png
            written += export_obj(out / f"{tag}.obj", fit.vertices, uv, texture_name=f"{tag}_uv.png")
        if "ply" in outputs:
            written += export_ply(out / f"{tag}.ply", fit.vertices, uv)
        if "frontal" in outputs:
            from recon3d.export import save_png
            from recon3d.frontalize import frontalize

            try:
                written.append(save_png(out / f"{tag}_frontal.png", frontalize(fit, uv).image))
            except FaceError as e:
                warnings.append(f"frontal view not written: {e}")
    if "pts" in outputs and lm is not None:
        written.append(write_pts(out / f"{tag}.pts", lm.points))
        written.append(write_landmarks_json(out / f"{tag}_landmarks.json", lm, box=_box(face)))
    return list(dict.fromkeys(written)), warnings  # the OBJ texture and the UV PNG are one file


def _box(face: FaceResult) -> list[float]:
    return [round(float(v), 2) for v in face.detection.box]


def face_record(base: dict[str, Any], k: int, face: FaceResult, files: list[Path], warnings: list[str]):
    from recon3d.export import named_landmarks, pose_json

    return {
        **base,
        "face": k,
        "box": _box(face),
        "landmarks": None if face.landmarks is None else named_landmarks(face.landmarks),
        "pose": pose_json(face.fit),
        "files": [str(p) for p in files],
        "warnings": warnings,
    }


def run(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    outputs = selected_outputs(a)
    out = prepare_out_dir(a.out)
    pipe = Pipeline(config_from_args(a))
    _ = pipe.landmarker  # build now: a configuration error stops before any image is read
    paths = expand_inputs(a.images)
    if not paths:
        error_line("no image files found in the given paths")
        return EXIT_FAILED
    until = "lift" if any(k in outputs for k in NEEDS_UV) else "fit"
    results: list[dict[str, Any]] = []
    n_ok = 0
    bar = tqdm(paths, desc="reconstructing", unit="img", disable=a.no_progress or len(paths) < 2)
    for p, stem in zip(bar, image_stems(paths)):
        base: dict[str, Any] = {"image": str(p), "status": "ok", "message": ""}
        try:
            image = load_image(p, a.max_pixels)
            faces = pipe.run(image, until=until)
            overlay: list[Path] = []
            if "overlay" in outputs:
                from recon3d.export import save_png

                overlay = [save_png(out / f"{stem}_overlay.png", draw_overlay(image, faces))]
            for k, f in enumerate(faces):
                files, warnings = write_face(out, f"{stem}_{k}", f, outputs)
                for w in warnings:
                    log.warning("%s face %d: %s", p, k, w)
                results.append(face_record(base, k, f, files + overlay, warnings))
            n_ok += 1
            continue
        except FaceError as e:
            base.update(status=failure_status(e), message=str(e))
        except OSError as e:  # an output file that cannot be written
            base.update(status="error", message=f"cannot write the outputs to {out}: {e.strerror or e}")
        image_error_line(p, base["message"])
        results.append(
            {**base, "face": None, "box": None, "landmarks": None, "pose": None, "files": [], "warnings": []}
        )
    if a.json:
        write_json(results, a.json)
    else:
        for r in results:
            if r["status"] != "ok":
                print(f"{r['image']}\t-\t{r['status']}")
                continue
            pose = r["pose"]
            angles = "-" if pose is None else f"yaw {pose['yaw']:.1f} pitch {pose['pitch']:.1f} roll {pose['roll']:.1f}"
            print(f"{r['image']}\t{r['face']}\tok\t{angles}\t{len(r['files'])} files")
    return EXIT_OK if n_ok > 0 else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
