"""Realism check of the synthetic UHDB31-protocol set: the 2D deep baseline descriptor (`dlib-resnet`)
on the synthetic set (real gallery photos vs rendered probes) next to the same descriptor on real CFP
photos, so one can see where the renders are easier or harder than photos at a comparable yaw.

    python -m facedata.realism --json generated/realism_check.json
    python -m facedata.realism --res 128 --subjects 10          # quick look

Synthetic (per --res, from generated/uhdb31_<res>/, made by facedata/uhdb31.py when missing):
gallery = role "gallery" (the real frontal/01 photo of each of the 77 subjects, cropped), probes =
role "probe" (renders at the 20 non-frontal poses) plus the "unused" yaw 0 / pitch 0 render, reported
apart. Real: ../shared/data/cfp_dev/manifest.csv, subjects 126-250 (and the same 77 subjects 126-202),
gallery = frontal/01, probes = the other 9 frontal and the 4 profile photos, reported separately.

Faces: dlib's HOG detector (largest face). When it finds nothing, the set's known box is used: the
AFLW-convention box of the manifest (synthetic) or the box of the 30 CFP fiducials (real; frontal
fiducials cover one side of the face and are mirrored about the midline, python -m facedata.profiling), mapped
to dlib's box convention by the median scale and offset between known and detected boxes on the same
set's detected images. Reported per cell: rank-1 over all probes (fallback boxes included), the
detection rate, and rank-1 over the detected probes. Rank-1: cosine similarity, 1-vs-all over the
gallery subjects of the set.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedata.paths import REPO, add_log_arguments, data_root
from facedata.readers import read_csv
from pipeline.cli import guarded_main, setup_logging, write_json
from pipeline.errors import ConfigError, FaceError
from pipeline.imageio import load_image
from pipeline.types import Detection, FaceResult

log = logging.getLogger("facedata.realism")
DEFAULT_DATA = data_root()
DEFAULT_ROOT = REPO / "generated"
YAWS = (-90, -60, -30, 0, 30, 60, 90)
PITCHES = (30, 0, -30)
CENTER8 = [(y, p) for y in (-30, 0, 30) for p in (-30, 0, 30) if (y, p) != (0, 0)]


class Describer:
    """HOG detection (largest face) with a known-box fallback, then dlib-resnet."""

    def __init__(self, min_face: int = 40):
        from pipeline.detection.dlib_detectors import DlibHogDetector
        from pipeline.registry import DESCRIPTORS

        self.det = DlibHogDetector(min_face=min_face)
        self.desc = DESCRIPTORS.create("dlib-resnet")

    def detect(self, img: np.ndarray):
        dets = self.det.detect(img)
        return max(dets, key=lambda d: d.area).box if dets else None

    def describe(self, img: np.ndarray, box) -> np.ndarray:
        return self.desc.describe(img, FaceResult(Detection(tuple(float(v) for v in box), 1.0))).vector


def calibrate(pairs: list[tuple[tuple, tuple]]) -> dict:
    """Median mapping known box -> detected box: side ratio (detected side / known max side) and centre
    offsets (in known max sides). Default when fewer than 5 pairs."""
    if len(pairs) < 5:
        return {"ratio": 0.9, "dx": 0.0, "dy": 0.08, "pairs": len(pairs)}
    r, dx, dy = [], [], []
    for k, d in pairs:
        ks = max(k[2] - k[0], k[3] - k[1])
        ds = ((d[2] - d[0]) + (d[3] - d[1])) / 2
        r.append(ds / ks)
        dx.append(((d[0] + d[2]) - (k[0] + k[2])) / 2 / ks)
        dy.append(((d[1] + d[3]) - (k[1] + k[3])) / 2 / ks)
    return {"ratio": float(np.median(r)), "dx": float(np.median(dx)), "dy": float(np.median(dy)), "pairs": len(pairs)}


def map_box(known, cal: dict):
    x0, y0, x1, y1 = known
    ks = max(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2 + cal["dx"] * ks
    cy = (y0 + y1) / 2 + cal["dy"] * ks
    h = cal["ratio"] * ks / 2
    return (cx - h, cy - h, cx + h, cy + h)


def describe_rows(rows: list[dict], root: Path, d: Describer, desc: str) -> tuple[list[dict], dict]:
    """Adds 'vec', 'detected' to each row (with 'known' box); the fallback boxes are calibrated on the
    detected rows of the same list."""
    pending = []
    for r in tqdm(rows, desc=f"{desc}: detect", unit="img", leave=False):
        try:
            img = load_image(root / r["path"])
        except FaceError as e:
            log.warning("skip %s: %s", r["path"], e)
            r["vec"] = None
            continue
        box = d.detect(img)
        r["detected"] = box is not None
        r["det_box"] = box
        pending.append((r, img))
    pairs = [
        (r["known"], r["det_box"])
        for r, _ in pending
        if r["detected"] and r["known"] is not None and abs(float(r["yaw"])) <= 30
    ]
    cal = calibrate(pairs)
    for r, img in tqdm(pending, desc=f"{desc}: describe", unit="img", leave=False):
        box = r["det_box"] if r["detected"] else (map_box(r["known"], cal) if r["known"] is not None else None)
        if box is None:
            h, w = img.shape[:2]
            box = (0, 0, w, h)
        r["vec"] = d.describe(img, box)
    return rows, cal


def rank1(rows: list[dict], gallery: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(correct (n,) bool, detected (n,) bool) of the probe rows against the gallery vectors."""
    subs = sorted(gallery)
    G = np.stack([gallery[s] for s in subs])
    ok, det = [], []
    for r in rows:
        if r.get("vec") is None:
            continue
        ok.append(subs[int(np.argmax(G @ r["vec"]))] == r["subject"])
        det.append(bool(r["detected"]))
    return np.array(ok, bool), np.array(det, bool)


def cell(ok: np.ndarray, det: np.ndarray) -> dict:
    return {
        "n": int(len(ok)),
        "rank1": round(100 * float(ok.mean()), 1) if len(ok) else None,
        "detected": round(100 * float(det.mean()), 1) if len(det) else None,
        "rank1_detected": round(100 * float(ok[det].mean()), 1) if det.any() else None,
    }


def synthetic(folder: Path, d: Describer, n_subjects: int | None) -> dict:
    rows = read_csv(folder / "manifest.csv")
    subs = sorted({r["subject"] for r in rows})[: n_subjects or None]
    rows = [r for r in rows if r["subject"] in subs]
    for r in rows:
        r["known"] = tuple(float(r[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
    rows, cal = describe_rows(rows, folder, d, folder.name)
    gallery = {r["subject"]: r["vec"] for r in rows if r["role"] == "gallery" and r.get("vec") is not None}
    probes = [r for r in rows if r["role"] in ("probe", "unused")]
    cells = {}
    for y in YAWS:
        for p in PITCHES:
            sel = [r for r in probes if int(r["yaw"]) == y and int(r["pitch"]) == p]
            cells[f"{y},{p}"] = {**cell(*rank1(sel, gallery)), "role": "unused" if (y, p) == (0, 0) else "probe"}
    gdet = [r["detected"] for r in rows if r["role"] == "gallery"]

    def avg(keys):
        v = [cells[f"{y},{p}"]["rank1"] for y, p in keys]
        return round(float(np.mean(v)), 1)

    all20 = [(y, p) for y in YAWS for p in PITCHES if (y, p) != (0, 0)]
    by_yaw = {}
    for ay in (0, 30, 60, 90):
        keys = [(y, p) for y in YAWS for p in PITCHES if abs(y) == ay and (y, p) != (0, 0)]
        sel = [r for r in probes if abs(int(r["yaw"])) == ay and (int(r["yaw"]), int(r["pitch"])) != (0, 0)]
        ok, det = rank1(sel, gallery)
        by_yaw[str(ay)] = {**cell(ok, det), "poses": len(keys)}
    return {
        "folder": str(folder),
        "subjects": len(gallery),
        "gallery_detected": round(100 * float(np.mean(gdet)), 1),
        "cells": cells,
        "center8": avg(CENTER8),
        "all20": avg(all20),
        "by_abs_yaw": by_yaw,
        "box_calibration": cal,
    }


def real(data: Path, d: Describer, subjects: list[str]) -> dict:
    root = data / "cfp_dev"
    rows = [r for r in read_csv(root / "manifest.csv") if r["subject"] in set(subjects)]
    from facedata.profiling import cfp_fiducial_box

    for r in rows:
        fid = root / r["path"].replace("images/", "fiducials/").replace(".jpg", ".txt")
        r["known"] = cfp_fiducial_box(fid, frontal="/frontal/" in r["path"])
    rows, cal = describe_rows(rows, root, d, "cfp")
    out = {"box_calibration": cal}
    for name, subset in (("126-250", subjects), ("126-202", [s for s in subjects if int(s) <= 202])):
        ss = set(subset)
        gallery = {r["subject"]: r["vec"] for r in rows if r["role"] == "gallery" and r["subject"] in ss}
        probes = [r for r in rows if r["role"] == "probe" and r["subject"] in ss]
        fr = [r for r in probes if abs(float(r["yaw"])) < 45]
        pr = [r for r in probes if abs(float(r["yaw"])) >= 45]
        out[name] = {
            "subjects": len(gallery),
            "frontal": cell(*rank1(fr, gallery)),
            "profile": cell(*rank1(pr, gallery)),
            "gallery_detected": round(
                100 * float(np.mean([r["detected"] for r in rows if r["role"] == "gallery" and r["subject"] in ss])), 1
            ),
        }
    return out


def print_synthetic(res: str, s: dict) -> None:
    print(
        f"\nSynthetic UHDB31-protocol set {res} (a synthetic reproduction of the protocol, not UHDB31): "
        f"{s['subjects']} subjects; dlib-resnet rank-1 % / HOG detection %"
    )
    print("pitch\\yaw " + "".join(f"{y:>13d}" for y in YAWS))
    for p in PITCHES:
        line = f"{p:+9d} "
        for y in YAWS:
            c = s["cells"][f"{y},{p}"]
            mark = "*" if (y, p) == (0, 0) else " "
            line += f"{c['rank1']:6.1f}/{c['detected']:5.1f}{mark}"
        print(line)
    print(
        f"center-8 average {s['center8']:.1f}   all-20 average {s['all20']:.1f}   "
        f"(* = the unused frontal render, not in the averages); gallery detected {s['gallery_detected']:.1f} %"
    )
    print(
        "by abs(yaw): "
        + "  ".join(
            f"{k}: {v['rank1']:.1f} (det {v['detected']:.0f} %, rank-1 detected "
            f"{v['rank1_detected'] if v['rank1_detected'] is not None else float('nan'):.1f})"
            for k, v in s["by_abs_yaw"].items()
        )
    )


def print_real(r: dict) -> None:
    print(
        "\nReal CFP (same descriptor; gallery frontal/01; yaw is the pose category): rank-1 % / detection % "
        "/ rank-1 on detected"
    )
    for name in ("126-250", "126-202"):
        v = r[name]
        for kind in ("frontal", "profile"):
            c = v[kind]
            print(
                f"  subjects {name} ({v['subjects']:3d}) {kind:8s} probes {c['n']:5d}: {c['rank1']:5.1f} / "
                f"{c['detected']:5.1f} / "
                f"{c['rank1_detected'] if c['rank1_detected'] is not None else float('nan'):5.1f}"
            )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m facedata.realism",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder with cfp_dev/ [{DEFAULT_DATA}]"
    )
    ap.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help=f"folder holding uhdb31_256/ and uhdb31_128/ (generated when missing) [{DEFAULT_ROOT}]",
    )
    ap.add_argument("--res", default="256,128", help="synthetic resolutions to check [256,128]")
    ap.add_argument("--subjects", type=int, default=None, help="only the first N subjects of each set [all]")
    ap.add_argument("--no-real", action="store_true", help="skip the real CFP part")
    ap.add_argument("--json", default=None, help="write the results as JSON to this file ('-' = stdout)")
    add_log_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    data = a.data.resolve()
    if not (data / "cfp_dev" / "manifest.csv").exists():
        raise ConfigError(
            f"{data / 'cfp_dev' / 'manifest.csv'} not found: pass --data DIR (the folder holding cfp_dev/)"
        )
    try:
        res = [int(r) for r in a.res.split(",") if r.strip()]
    except ValueError as e:
        raise ConfigError(f"--res: expected e.g. 256,128, got {a.res!r}") from e
    folders = {r: a.root / f"uhdb31_{r}" for r in res}
    if not all((f / "manifest.csv").exists() for f in folders.values()):
        from facedata.uhdb31 import generate

        generate(data, a.root.resolve(), tuple(res))
    t0 = time.perf_counter()
    d = Describer()
    out = {"descriptor": "dlib-resnet", "detector": "dlib-hog (largest face), known-box fallback", "synthetic": {}}
    for r, f in folders.items():
        out["synthetic"][str(r)] = s = synthetic(f, d, a.subjects)
        print_synthetic(f"{r}x{round(r * 306 / 256)}", s)
    if not a.no_real:
        from facedata.splits import cfp_subjects

        subs = cfp_subjects("eval")[: a.subjects or None]
        out["real_cfp"] = rr = real(data, d, subs)
        print_real(rr)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    if a.json:
        write_json(out, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(guarded_main(main))
