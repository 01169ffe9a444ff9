"""Detection and box refinement benchmark (issue 8): every detector in one run, on the same images.

    python benchmarks/detection_bench.py                          # all parts, default sizes
    python benchmarks/detection_bench.py --parts uhdb31 --res 256,128 --per-pose 20
    python benchmarks/detection_bench.py --parts aflw --aflw-per-bin 100 --json out.json

Parts:

* ``uhdb31``: the synthetic UHDB31-protocol sets (``generated/uhdb31_<res>``; made by
  ``facedata/uhdb31.py``): detection rate per (yaw, pitch) pose on the probe renders,
  ``--per-pose`` images per pose, at each ``--res``.
* ``aflw``: real ``aflw2000_3d_dev`` photos, ``--aflw-per-bin`` per abs(yaw) bin: detection rate;
  mean IoU with the annotated box of the raw detector box and of the refined box (``none`` vs
  ``bbox-cnn``) per yaw bin; GoDP NME-vis started from the raw, the refined and the annotated box.
* ``negatives``: images without faces -- CFP photos of subjects 203-250 (never used for
  training or for the UHDB31-protocol set) with the head painted out (the 30 fiducials' extent
  enlarged 2.2x, filled with the mean), ``--negatives`` of them: false positives per image.
  (In-the-wild photos: a few contain other people's faces, which count as false positives for
  every detector alike.)

A face counts as **detected** when a detection matches it: the detection's centre lies inside the
annotated box and sqrt(area) ratio is within [0.5, 2] (a test that does not depend on each
detector's box convention); the IoU >= 0.5 rate after refinement is reported too. For a plain
detector name any of its detections may match (for the proposal detectors ``dpm`` and ``dpm+mmod``,
which return weak candidates for a verifier, this is the *recall of the proposals*). A name of the
form ``<detector>+<verifying refiner>`` (e.g. ``dpm+mmod+lm-verify``, the pipeline's default front
end) runs the pipeline's detect step -- proposals, landmark re-centring, ranking, rejection floor --
and only the **first face it reports** may match: the end-to-end detection rate of what
``identify`` would process; on the UHDB31-protocol sets the rate without the rejection floor (the
best candidate kept whatever its p(face), ``--face-floor 0`` in the CLIs) is reported beside it. Time per
image is wall time of ``detect`` (+ refine) on this machine, single process. Prints tables and
writes a JSON (``--json``) with per-image results.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedata.paths import REPO, data_root
from facedata.readers import cfp_fiducials_path, paint_out_head
from landmarks.metrics import YAW_BINS, nme, yaw_bin_label
from pipeline.cli import write_json
from pipeline.detection.boxes import box_matches, iou
from pipeline.errors import ConfigError, NoFaceFoundError
from pipeline.imageio import load_image
from pipeline.pipeline import Pipeline
from pipeline.registry import DETECTORS, LANDMARKERS, REFINERS

log = logging.getLogger("detection_bench")
SHARED = data_root()


def best_match(dets, gt_box) -> int | None:
    """Index of the best-scoring detection that matches ``gt_box`` (None when none does)."""
    hits = [k for k, d in enumerate(dets) if box_matches(d.box, gt_box)]
    return max(hits, key=lambda k: dets[k].score) if hits else None


def run_detector(det, refiner, image):
    t = time.perf_counter()
    dets = det.detect(image)
    t_det = time.perf_counter() - t
    t = time.perf_counter()
    refined = [refiner.refine(image, d) for d in dets] if refiner is not None else dets
    return dets, refined, t_det, time.perf_counter() - t


def pose_rates(hits_by_pose: dict) -> dict:
    """{pose: [hit, ...]} -> the rate per pose (%), its minimum and its mean over the poses."""
    rate = {k: 100.0 * float(np.mean(v)) for k, v in hits_by_pose.items()}
    return {"rate_per_pose": rate, "min_rate": min(rate.values()), "mean_rate": float(np.mean(list(rate.values())))}


def part_uhdb31(detectors: dict, refiner, res: int, per_pose: int) -> dict:
    root = REPO / "generated" / f"uhdb31_{res}"
    if not (root / "manifest.csv").exists():
        raise SystemExit(f"error: no UHDB31-protocol set at {root}: run python -m facedata.uhdb31 --res {res}")
    rows = [r for r in csv.DictReader(open(root / "manifest.csv")) if r["role"] == "probe"]
    by_pose: dict = {}
    for r in sorted(rows, key=lambda r: (r["subject"], r["path"])):
        by_pose.setdefault((int(float(r["yaw"])), int(float(r["pitch"]))), []).append(r)
    pick = [r for pose in sorted(by_pose) for r in by_pose[pose][:per_pose]]
    out = {"res": res, "images": len(pick), "detectors": {}}
    for name, det in detectors.items():
        per, per_nf, per_sweep, times, images = {}, {}, {}, [], []
        front = isinstance(det, FrontEnd)
        for r in tqdm(pick, desc=f"uhdb31 {res} {name}", unit="img", leave=False):
            img = load_image(root / r["path"])
            gt = tuple(float(r[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
            key = f"{int(float(r['yaw']))},{int(float(r['pitch']))}"
            t = time.perf_counter()
            if front:  # first face, with the trained rejection floor, without it, and with the sweep's
                faces = det.faces_by_floor(img, [None, -1.0, *FLOOR_SWEEP])
                times.append(time.perf_counter() - t)
                top = faces[0][0] if faces[0] else None
                hits = [bool(f) and box_matches(f[0].box, gt) for f in faces]
                hit, hit_nf = hits[0], hits[1]
                per_nf.setdefault(key, []).append(hit_nf)
                for fl, h in zip(FLOOR_SWEEP, hits[2:]):
                    per_sweep.setdefault(fl, {}).setdefault(key, []).append(h)
                images.append(
                    {
                        "path": r["path"],
                        "hit": hit,
                        "hit_no_floor": hit_nf,
                        "hit_at_floor": {str(fl): h for fl, h in zip(FLOOR_SWEEP, hits[2:])},
                        "box": list(top.box) if top else None,
                    }
                )
            else:  # a detection rate: boxes are not refined here
                dets = det.detect(img)
                times.append(time.perf_counter() - t)
                hit = best_match(dets, gt) is not None
                images.append({"path": r["path"], "hit": hit})
            per.setdefault(key, []).append(hit)
        out["detectors"][name] = {**pose_rates(per), "ms_per_image": 1000 * float(np.mean(times)), "images": images}
        if front:
            nf = pose_rates(per_nf)
            out["detectors"][name].update(
                {
                    "floor": det.floor,
                    "rate_per_pose_no_floor": nf["rate_per_pose"],
                    "min_rate_no_floor": nf["min_rate"],
                    "mean_rate_no_floor": nf["mean_rate"],
                    "floor_sweep": {str(fl): pose_rates(d) for fl, d in per_sweep.items()},
                }
            )
    return out


def part_aflw(detectors: dict, refiner, per_bin: int, landmarker) -> dict:
    root = SHARED / "aflw2000_3d_dev"
    rows = [json.loads(line) for line in open(root / "annotations.jsonl")]
    pick = []
    for lo, hi in YAW_BINS:
        pick += sorted((r for r in rows if lo <= abs(r["yaw"]) < hi), key=lambda r: r["image"])[:per_bin]
    out = {"images": len(pick), "detectors": {}, "per_face": []}
    for name, det in detectors.items():
        stats = {
            yaw_bin_label(lo, hi): {
                "hit": [],
                "iou_raw": [],
                "iou_ref": [],
                "iou50_ref": [],
                "nme_raw": [],
                "nme_ref": [],
                "nme_gt": [],
            }
            for lo, hi in YAW_BINS
        }
        times = []
        for r in tqdm(pick, desc=f"aflw2000 {name}", unit="img", leave=False):
            img = load_image(root / r["image"])
            gt = tuple(r["box"])
            dets, refined, t_det, t_ref = run_detector(det, refiner if name == "dpm" else None, img)
            times.append(t_det + t_ref)
            b = next(yaw_bin_label(lo, hi) for lo, hi in YAW_BINS if lo <= abs(r["yaw"]) < hi)
            s = stats[b]
            i = best_match(dets[:1] if getattr(det, "top_only", False) else dets, gt)
            s["hit"].append(i is not None)
            rec = {"image": r["image"], "detector": name, "yaw": r["yaw"], "hit": i is not None}
            if i is not None:
                raw, ref = dets[i].box, refined[i].box
                s["iou_raw"].append(iou(raw, gt))
                s["iou_ref"].append(iou(ref, gt))
                s["iou50_ref"].append(iou(ref, gt) >= 0.5)
                rec.update(view=dets[i].view, raw=list(map(float, raw)), refined=list(map(float, ref)))
                if landmarker is not None and name == "dpm":
                    g, v = np.asarray(r["landmarks"], float), np.asarray(r["visible"], bool)
                    for key, box in (("nme_raw", raw), ("nme_ref", ref), ("nme_gt", gt)):
                        lm = landmarker.predict(img, box)
                        s[key].append(nme(lm.points, g, v, gt))
                        rec[key] = s[key][-1]
            out["per_face"].append(rec)
        summ = {}
        for b, s in stats.items():
            summ[b] = {"faces": len(s["hit"]), "rate": 100.0 * float(np.mean(s["hit"])) if s["hit"] else float("nan")}
            for k in ("iou_raw", "iou_ref", "nme_raw", "nme_ref", "nme_gt"):
                if s[k]:
                    summ[b][k] = float(np.mean(s[k]))
            if s["iou50_ref"]:
                summ[b]["iou50_ref_rate"] = 100.0 * float(np.mean(s["iou50_ref"]))
        allhits = [h for s in stats.values() for h in s["hit"]]
        out["detectors"][name] = {
            "per_bin": summ,
            "rate": 100.0 * float(np.mean(allhits)),
            "ms_per_image": 1000 * float(np.mean(times)),
        }
    return out


def negative_images(n: int) -> list[tuple[str, np.ndarray]]:
    root = SHARED / "cfp_dev"
    paths = [p for p in sorted((root / "images").glob("*/*/*.jpg")) if "203" <= p.parts[-3] <= "250"]
    rng = np.random.default_rng(0)
    out = []
    for i in rng.permutation(len(paths)):
        if len(out) >= n:
            break
        p = paths[i]
        fid = cfp_fiducials_path(root, p)
        if not fid.exists():
            continue
        img = paint_out_head(load_image(p), np.loadtxt(fid, delimiter=",", ndmin=2))
        out.append((str(p.relative_to(root)), img))
    return out


class FrontEnd:
    """The pipeline's detect + refine steps as one detector (every face it would report, best first)."""

    top_only = True  # the UHDB31 / AFLW rates count the first face only

    def __init__(self, detector: str, refiner: str, min_face: int, part_veto: bool = False):
        self.pipe = Pipeline(detector=detector, refiner=refiner, min_face=min_face, all_faces=True, part_veto=part_veto)

    @property
    def floor(self) -> float:
        """The verifying refiner's rejection floor (its trained default)."""
        return float(self.pipe._stage("refiner").floor)

    def detect(self, image):
        try:
            return self.pipe.detect(image)
        except NoFaceFoundError:
            return []

    def faces_by_floor(self, image, floors) -> list[list]:
        """Every face the front end reports (best first) with each rejection floor of ``floors``
        (``None``: the trained floor; ``-1.0``: no floor), from one scoring of the candidates."""
        refiner = self.pipe._stage("refiner")
        dets = self.pipe._stage("detector").detect(image)
        scored = refiner.scored(image, dets) if dets else []
        finish = getattr(refiner, "veto", lambda _, faces: faces)  # lm-verify's optional part veto
        return [finish(image, refiner.select(scored, min_confidence=f)) for f in floors]


#: lower rejection floors the front end is also scored at (synthetic sets and non-face images), so
#: that the detection-rate / false-positive trade-off can be read from one run
FLOOR_SWEEP = (0.6, 0.5, 0.3)


def build_detectors(names: list[str], min_face: int, part_veto: bool = False) -> dict:
    """Registered detectors by name; ``<detector>+<refiner>`` with a verifying refiner (one that
    ranks, e.g. ``lm-verify``) builds the pipeline's front end (:class:`FrontEnd`)."""
    out = {}
    for name in names:
        head, _, tail = name.rpartition("+")
        if head and tail in REFINERS.names() and getattr(REFINERS.factory(tail), "ranks_by_score", False):
            out[name] = FrontEnd(head, tail, min_face, part_veto)
        else:
            out[name] = DETECTORS.create(name, min_face=min_face)
    return out


def part_negatives(
    detectors: dict, n: int, verifying_refiner: str | None = None, min_face: int = 40, part_veto: bool = False
) -> dict:
    """False positives per non-face image for each detector; with a verifying refiner
    (``lm-verify``) also for the front end of the pipeline built on each proposal detector (``dpm``,
    ``dpm+mmod``: proposal threshold followed by the landmark check, what the pipeline would report
    as faces)."""
    imgs = negative_images(n)
    out = {"images": len(imgs), "detectors": {}}
    detectors = dict(detectors)
    if verifying_refiner is not None:
        for name in list(detectors):
            if getattr(DETECTORS.factory(name), "proposal_threshold", None) is not None:
                detectors[f"{name}+{verifying_refiner}"] = FrontEnd(name, verifying_refiner, min_face, part_veto)
    for name, det in detectors.items():
        fps, sweep, times = [], [], []
        front = isinstance(det, FrontEnd)
        for _, img in tqdm(imgs, desc=f"negatives {name}", unit="img", leave=False):
            t = time.perf_counter()
            if front:  # the trained floor, then the sweep's lower ones, from one scoring
                n_faces = [len(f) for f in det.faces_by_floor(img, [None, *FLOOR_SWEEP])]
                fps.append(n_faces[0])
                sweep.append(n_faces[1:])
            else:
                fps.append(len(det.detect(img)))
            times.append(time.perf_counter() - t)
        out["detectors"][name] = {
            "fp_per_image": float(np.mean(fps)),
            "images_with_fp": 100.0 * float(np.mean(np.asarray(fps) > 0)),
            "ms_per_image": 1000 * float(np.mean(times)),
        }
        if front:
            sw = np.asarray(sweep, float).reshape(len(imgs), len(FLOOR_SWEEP))
            out["detectors"][name].update(
                {
                    "floor": det.floor,
                    "floor_sweep": {
                        str(fl): {
                            "fp_per_image": float(sw[:, i].mean()),
                            "images_with_fp": 100.0 * float((sw[:, i] > 0).mean()),
                        }
                        for i, fl in enumerate(FLOOR_SWEEP)
                    },
                }
            )
    return out


def print_report(rep: dict) -> None:
    for u in rep.get("uhdb31", []):
        names = list(u["detectors"])
        print(f"\nUHDB31-protocol synthetic set, {u['res']} px: detection rate per pose (%), {u['images']} images")
        print(f"{'pose (yaw,pitch)':>18} " + " ".join(f"{n:>10}" for n in names))
        poses = sorted(u["detectors"][names[0]]["rate_per_pose"], key=lambda k: tuple(map(int, k.split(","))))
        for p in poses:
            print(f"{p:>18} " + " ".join(f"{u['detectors'][n]['rate_per_pose'][p]:10.1f}" for n in names))
        print(f"{'min over poses':>18} " + " ".join(f"{u['detectors'][n]['min_rate']:10.1f}" for n in names))
        print(f"{'mean':>18} " + " ".join(f"{u['detectors'][n]['mean_rate']:10.1f}" for n in names))
        print(f"{'ms / image':>18} " + " ".join(f"{u['detectors'][n]['ms_per_image']:10.1f}" for n in names))
        for n in names:
            d = u["detectors"][n]
            if "rate_per_pose_no_floor" in d:
                low = sorted(d["rate_per_pose_no_floor"].items(), key=lambda kv: kv[1])[:3]
                print(
                    f"  {n} without the rejection floor ({d['floor']:.3f}): mean {d['mean_rate_no_floor']:.1f}, "
                    f"min {d['min_rate_no_floor']:.1f}; weakest poses " + ", ".join(f"{k}: {v:.1f}" for k, v in low)
                )
            for fl, sw in d.get("floor_sweep", {}).items():
                low = sorted(sw["rate_per_pose"].items(), key=lambda kv: kv[1])[:3]
                print(
                    f"  {n} with the rejection floor at {fl}: mean {sw['mean_rate']:.1f}, min {sw['min_rate']:.1f}; "
                    "weakest poses " + ", ".join(f"{k}: {v:.1f}" for k, v in low)
                )
    a = rep.get("aflw")
    if a:
        print(f"\nAFLW2000-3D dev (real), {a['images']} faces: detection rate % / mean IoU raw -> refined")
        for n, d in a["detectors"].items():
            cells = []
            for b, s in d["per_bin"].items():
                c = f"{b}: {s['rate']:.1f}%"
                if "iou_raw" in s:
                    c += f" IoU {s['iou_raw']:.3f}->{s['iou_ref']:.3f}"
                if "nme_raw" in s:
                    c += f" NME raw/ref/gt {s['nme_raw']:.2f}/{s['nme_ref']:.2f}/{s['nme_gt']:.2f}"
                cells.append(c)
            print(f"  {n:>9} all {d['rate']:.1f}% ({d['ms_per_image']:.0f} ms/img) | " + " | ".join(cells))
    ng = rep.get("negatives")
    if ng:
        print(f"\nNon-face images ({ng['images']}): false positives per image")
        for n, d in ng["detectors"].items():
            print(
                f"  {n:>9} {d['fp_per_image']:.3f} FP/img, {d['images_with_fp']:.1f}% of images with any, "
                f"{d['ms_per_image']:.0f} ms/img"
            )
            for fl, sw in d.get("floor_sweep", {}).items():
                print(
                    f"  {n:>9} with the rejection floor at {fl}: {sw['fp_per_image']:.3f} FP/img, "
                    f"{sw['images_with_fp']:.1f}% of images with any"
                )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="detection_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--detectors",
        default="dpm,dlib-hog,dlib-mmod",
        help="comma list of registered detectors; '<detector>+lm-verify' (e.g. dpm+mmod+lm-verify) "
        "is the pipeline's front end scored on its first face",
    )
    ap.add_argument("--refiner", default="bbox-cnn", help="refiner applied to dpm boxes (none or bbox-cnn)")
    ap.add_argument("--parts", default="uhdb31,aflw,negatives", help="comma list: uhdb31, aflw, negatives")
    ap.add_argument("--res", default="256,128", help="UHDB31-protocol resolutions")
    ap.add_argument("--per-pose", type=int, default=20, help="UHDB31 probes per pose")
    ap.add_argument("--aflw-per-bin", type=int, default=100, help="AFLW2000-3D faces per abs(yaw) bin")
    ap.add_argument("--negatives", type=int, default=200, help="non-face images")
    ap.add_argument("--landmarker", default="godp", help="landmarker for NME from raw/refined boxes ('' to skip)")
    ap.add_argument("--min-face", type=int, default=40)
    ap.add_argument(
        "--part-veto",
        action="store_true",
        help="front ends ('<detector>+lm-verify') with lm-verify's optional part veto",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the report (with per-image results) here")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        detectors = build_detectors([n for n in a.detectors.split(",") if n], a.min_face, a.part_veto)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    refiner = REFINERS.create(a.refiner)
    parts = set(a.parts.split(","))
    rep: dict = {
        "refiner": a.refiner,
        "part_veto": a.part_veto,
        "command": "python benchmarks/detection_bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    t0 = time.time()
    if "uhdb31" in parts:
        rep["uhdb31"] = [part_uhdb31(detectors, refiner, int(r), a.per_pose) for r in a.res.split(",")]
    if "aflw" in parts:
        lm = LANDMARKERS.create(a.landmarker) if a.landmarker else None
        rep["aflw"] = part_aflw(detectors, refiner, a.aflw_per_bin, lm)
    if "negatives" in parts:
        verifying = a.refiner if getattr(refiner, "ranks_by_score", False) else None
        rep["negatives"] = part_negatives(detectors, a.negatives, verifying, a.min_face, a.part_veto)
    rep["seconds"] = round(time.time() - t0, 1)
    print_report(rep)
    if a.json:
        write_json(rep, str(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
