"""1-vs-all rank-1 identification per pose (the GoDP paper's UHDB31 protocol, sec. 4.5, Figs. 7-11).

    python benchmarks/uhdb31_rank1.py --res 256                       # synthetic UHDB31-protocol set
    python benchmarks/uhdb31_rank1.py --data DIR --descriptor resnet-3d,dlib-resnet,dfd,lbp --compare godp,dlib

``--data`` takes any folder with ``manifest.csv`` (``path,subject,yaw,pitch[,role]``): with ``role``
the roles are as written; without it the gallery is the first yaw 0 / pitch 0 image of each
subject and every other image is a probe. Without ``--data`` the synthetic UHDB31-protocol set
at ``--res`` is used (and generated with ``facedata/uhdb31.py`` if missing) -- a
synthetic reproduction of the UHDB31 protocol from real CFP photos, **not UHDB31**.

Every (landmarker, descriptor) variant runs on the same probes in one run. Probes whose face is
not detected count as misses (as in the paper) and are reported separately. Descriptors with
region masks are scored with masked cosine (jointly visible regions) and, for comparison,
plain cosine. Prints the yaw x pitch rank-1 table (Fig. 8/10), the detection rate per pose, the
center-8 average (yaw +-30 and pitch +-30 neighbours of frontal), the all-20 average; writes a
JSON with every per-probe result (``--json``) and a heat-map PNG per variant (``--plot``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.plotting import save_figure
from facedata.paths import REPO
from facedata.readers import read_manifest
from landmarks.metrics import nme
from pipeline.cli import write_json
from pipeline.config import PipelineConfig
from pipeline.detection.boxes import box_matches
from pipeline.errors import FaceError, NoFaceFoundError
from pipeline.imageio import load_image
from pipeline.index import cosine_scores, masked_cosine_scores
from pipeline.pipeline import Pipeline
from pipeline.registry import DESCRIPTORS

log = logging.getLogger("uhdb31_rank1")

CENTER8 = [(y, p) for y in (-30, 0, 30) for p in (-30, 0, 30) if (y, p) != (0, 0)]


def describe_all(
    rows,
    root: Path,
    landmarker: str,
    descriptors: list[str],
    base: PipelineConfig,
    cropped_gallery: bool,
    faces: dict | None = None,
):
    """Signatures of every image for every descriptor: {desc: [(vector, mask) | None]}, plus status.

    ``faces`` (path -> detection or None for no face) is shared between the landmarkers of one run:
    the first detects, the others reuse its boxes, so every variant sees the same faces (and the
    detector + refiner run once per image)."""
    pipe = Pipeline(PipelineConfig(**{**base.to_dict(), "landmarker": landmarker}))
    descs = {d: DESCRIPTORS.create(d) for d in descriptors}
    need3d = any(getattr(d, "needs_3d", True) for d in descs.values())
    needlm = need3d or any(getattr(d, "needs_landmarks", True) for d in descs.values())
    until = "lift" if need3d else ("landmarks" if needlm else "detect")
    out = {d: [] for d in descriptors}
    status, times = [], defaultdict(float)
    gt = {}
    if (root / "annotations.jsonl").exists():  # ground-truth landmarks (synthetic sets): NME per probe
        for line in open(root / "annotations.jsonl"):
            a = json.loads(line)
            gt[a["image"]] = a
    errors = []  # per row: this landmarker's NME (%) and fit residual (px), where measured
    for r in tqdm(rows, desc=f"{landmarker}: describing", unit="img"):
        err: dict = {}
        errors.append(err)
        try:
            img = load_image(root / r["path"])
            box = None
            if cropped_gallery and r["role"] == "gallery":
                box = (0.0, 0.0, float(img.shape[1]), float(img.shape[0]))
            elif faces is not None and r["path"] in faces:
                if faces[r["path"]] is None:
                    raise NoFaceFoundError("no face found (shared detection)")
                box = faces[r["path"]]
            elif faces is not None and not base.cropped:
                t = time.perf_counter()
                try:
                    det = pipe.detect(img)[0]
                except NoFaceFoundError:
                    faces[r["path"]] = None
                    raise
                times["detect"] += time.perf_counter() - t
                faces[r["path"]] = box = det.box
            face = pipe.run(img, until=until, box=box)[0]
            for k, v in face.timings.items():
                if k != "detect" or box is None:
                    times[k] += v
            st = "ok"
            a = gt.get(r["path"])
            if a is not None and "box" in a:  # the face found is the annotated one (not an ear or background)
                err["box_hit"] = box_matches(face.detection.box, a["box"])
            if a is not None and face.landmarks is not None:
                err["nme"] = nme(
                    face.landmarks.points, np.asarray(a["landmarks"], float), np.asarray(a["visible"], bool), a["box"]
                )
            if face.fit is not None:
                err["fit_residual"] = float(face.fit.residual)
        except NoFaceFoundError:
            face, st = None, "no_face"
        except FaceError as e:
            face, st = None, "error"
            log.info("%s: %s", r["path"], e)
        status.append(st)
        for name, d in descs.items():
            if face is None:
                out[name].append(None)
                continue
            try:
                t = time.perf_counter()
                s = d.describe(img, face)
                times[f"describe:{name}"] += time.perf_counter() - t
                out[name].append((s.vector, s.mask))
            except FaceError as e:
                log.info("%s: %s failed: %s", r["path"], name, e)
                out[name].append(None)
    return out, status, errors, dict(times)


def rank1(rows, sigs, masked: bool):
    """Per-probe (hit, best identity, score) against the gallery; None for failed probes."""
    gal = [i for i, r in enumerate(rows) if r["role"] == "gallery" and sigs[i] is not None]
    if not gal:
        return [None] * len(rows)
    G = np.stack([sigs[i][0] for i in gal]).astype(np.float32)
    gm = [sigs[i][1] for i in gal]
    gmask = np.stack(gm).astype(np.float32) if masked and all(m is not None for m in gm) else None
    ids = np.array([rows[i]["subject"] for i in gal])
    res = []
    for i, r in enumerate(rows):
        if r["role"] != "probe" or sigs[i] is None:
            res.append(None)
            continue
        v, m = sigs[i]
        s = masked_cosine_scores(v, m, G, gmask) if gmask is not None and m is not None else cosine_scores(v, G)
        j = int(np.argmax(s))
        res.append((bool(ids[j] == r["subject"]), str(ids[j]), float(s[j])))
    return res


def pose_table(rows, hits, status, errors):
    """{(yaw, pitch): [n probes, n detected, n correct, [NME %], [fit residual px], [box hit]]} over
    probes ("detected": the pipeline returned a face; "box hit": that face is the annotated one, where
    the set has face boxes)."""
    t = defaultdict(lambda: [0, 0, 0, [], [], []])
    for r, h, st, err in zip(rows, hits, status, errors):
        if r["role"] != "probe":
            continue
        k = (int(round(r["yaw"])), int(round(r["pitch"])))
        t[k][0] += 1
        t[k][1] += st == "ok"
        t[k][2] += bool(h and h[0])
        if st == "ok" and "nme" in err:
            t[k][3].append(err["nme"])
        if st == "ok" and "fit_residual" in err:
            t[k][4].append(err["fit_residual"])
        if "box_hit" in err or st != "ok":
            t[k][5].append(st == "ok" and err.get("box_hit", False))
    return dict(t)


def summarise(table) -> dict:
    """Rank-1 and detection rate per pose, centre-8 (the 8 poses around the frontal one), all-20
    (mean over the 20 non-frontal poses), all probes; landmark NME and fit residual per pose
    (the per-stage error analysis)."""
    rate = {k: 100.0 * v[2] / v[0] for k, v in table.items() if v[0]}
    c8 = [rate[k] for k in CENTER8 if k in rate]
    a20 = [v for k, v in rate.items() if k != (0, 0)]
    return {
        "rank1": {f"{y},{p}": round(v, 2) for (y, p), v in sorted(rate.items())},
        "detection": {f"{y},{p}": round(100.0 * v[1] / v[0], 2) for (y, p), v in sorted(table.items()) if v[0]},
        "detection_at_box": {
            f"{y},{p}": round(100.0 * float(np.mean(v[5])), 2)
            for (y, p), v in sorted(table.items())
            if v[5] and len(v[5]) == v[0]
        },
        "landmark_nme": {f"{y},{p}": round(float(np.mean(v[3])), 3) for (y, p), v in sorted(table.items()) if v[3]},
        "fit_residual_px": {f"{y},{p}": round(float(np.mean(v[4])), 3) for (y, p), v in sorted(table.items()) if v[4]},
        "center8": round(float(np.mean(c8)), 2) if len(c8) == 8 else None,
        "all20": round(float(np.mean(a20)), 2) if len(a20) == 20 else None,
        "all": round(100.0 * sum(v[2] for v in table.values()) / max(sum(v[0] for v in table.values()), 1), 2),
        "probes": int(sum(v[0] for v in table.values())),
        "detected": int(sum(v[1] for v in table.values())),
    }


def print_grid(title: str, values: dict) -> None:
    yaws = sorted({int(k.split(",")[0]) for k in values})
    pitches = sorted({int(k.split(",")[1]) for k in values}, reverse=True)
    print(f"\n{title}")
    print("pitch\\yaw " + "".join(f"{y:>7d}" for y in yaws))
    for p in pitches:
        cells = "".join(f"{values[f'{y},{p}']:7.1f}" if f"{y},{p}" in values else f"{'-':>7}" for y in yaws)
        print(f"{p:>9d} {cells}")


def heatmap(path: Path, title: str, values: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yaws = sorted({int(k.split(",")[0]) for k in values})
    pitches = sorted({int(k.split(",")[1]) for k in values}, reverse=True)
    grid = np.full((len(pitches), len(yaws)), np.nan)
    for i, p in enumerate(pitches):
        for j, y in enumerate(yaws):
            grid[i, j] = values.get(f"{y},{p}", np.nan)
    fig, ax = plt.subplots(figsize=(1.0 * len(yaws) + 2, 0.9 * len(pitches) + 1.5))
    im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for i in range(len(pitches)):
        for j in range(len(yaws)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", color="w" if grid[i, j] < 60 else "k")
    ax.set_xticks(range(len(yaws)), [str(y) for y in yaws])
    ax.set_yticks(range(len(pitches)), [str(p) for p in pitches])
    ax.set_xlabel("yaw (deg)")
    ax.set_ylabel("pitch (deg)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="rank-1 (%)")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, choices=[256, 128], default=256, help="synthetic set resolution [256]")
    ap.add_argument("--data", type=Path, help="identification set folder with manifest.csv")
    ap.add_argument("--landmarker", default=PipelineConfig.landmarker, help="landmarker [godp]")
    ap.add_argument("--compare", help="comma-separated landmarkers to compare in one run (overrides --landmarker)")
    ap.add_argument(
        "--descriptor",
        default=PipelineConfig.descriptor,
        help=f"comma-separated descriptors [{PipelineConfig.descriptor}]",
    )
    ap.add_argument("--detector", default=PipelineConfig.detector)
    ap.add_argument("--refiner", default=PipelineConfig.refiner)
    ap.add_argument("--min-face", type=int, default=PipelineConfig.min_face)
    ap.add_argument(
        "--part-veto",
        action="store_true",
        help="lm-verify's optional part veto (off by default; see docs/detection/RESULTS.md)",
    )
    ap.add_argument(
        "--face-floor",
        type=float,
        default=None,
        metavar="P",
        help="lm-verify rejection floor on p(face) [trained floor]; 0: every probe is known to "
        "hold a face, keep the best candidate",
    )
    ap.add_argument("--cropped", action="store_true", help="every image is a tight face crop: no detection")
    ap.add_argument(
        "--cropped-gallery",
        action="store_true",
        help="gallery images are tight face crops: use the whole image as the face box",
    )
    ap.add_argument("--subjects", help="only subjects LO-HI (string compare, e.g. 126-225)")
    ap.add_argument("--json", type=Path, help="write the summary and per-probe results here")
    ap.add_argument("--plot", type=Path, help="heat-map PNG (one panel file per variant: NAME_<variant>.png)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    data = a.data
    synthetic = data is None
    if synthetic:
        data = REPO / "generated" / f"uhdb31_{a.res}"
        if not (data / "manifest.csv").exists():
            print(f"generating the synthetic UHDB31-protocol set ({data}) ...", file=sys.stderr)
            r = subprocess.run([sys.executable, "-m", "facedata.uhdb31", "--res", str(a.res)], cwd=REPO)
            if r.returncode != 0 or not (data / "manifest.csv").exists():
                print("error: could not generate the synthetic set; pass --data DIR", file=sys.stderr)
                return 2
    if not (data / "manifest.csv").exists():
        print(f"error: {data}/manifest.csv not found; pass --data DIR (a folder with manifest.csv)", file=sys.stderr)
        return 2
    rows = read_manifest(data, a.subjects)
    if not any(r["role"] == "gallery" for r in rows):
        print("error: the manifest has no gallery images", file=sys.stderr)
        return 2
    landmarkers = a.compare.split(",") if a.compare else [a.landmarker]
    descriptors = a.descriptor.split(",")
    base = PipelineConfig(
        detector=a.detector,
        refiner=a.refiner,
        min_face=a.min_face,
        cropped=a.cropped,
        face_floor=a.face_floor,
        part_veto=a.part_veto,
    )
    summary = {
        "data": str(data),
        "synthetic_uhdb31_protocol": synthetic,
        "res": a.res if synthetic else None,
        "gallery": sum(r["role"] == "gallery" for r in rows),
        "gallery_subjects": sorted({str(r["subject"]) for r in rows if r["role"] == "gallery"}),
        "probes": sum(r["role"] == "probe" for r in rows),
        "detector": a.detector,
        "refiner": a.refiner,
        "face_floor": a.face_floor,
        "part_veto": a.part_veto,
        "variants": {},
        "command": " ".join(sys.argv),
    }
    probes_out = []
    t_all = time.time()
    faces: dict = {}  # detections shared by the landmarkers (same faces for every variant)
    for lm in landmarkers:
        t0 = time.time()
        try:
            sigs, status, errors, times = describe_all(rows, data, lm, descriptors, base, a.cropped_gallery, faces)
        except FaceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for d in descriptors:
            has_mask = any(s is not None and s[1] is not None for s in sigs[d])
            for masked in [True, False] if has_mask else [False]:
                name = f"{lm}+{d}" + ("" if not has_mask else ("+masked" if masked else "+plain"))
                hits = rank1(rows, sigs[d], masked)
                s = summarise(pose_table(rows, hits, status, errors))
                s["seconds_describe"] = round(time.time() - t0, 1)
                s["stage_seconds"] = {k: round(v, 2) for k, v in times.items()}
                summary["variants"][name] = s
                for r, h, st in zip(rows, hits, status):
                    if r["role"] == "probe":
                        probes_out.append(
                            {
                                "variant": name,
                                "path": r["path"],
                                "subject": r["subject"],
                                "yaw": r["yaw"],
                                "pitch": r["pitch"],
                                "status": st,
                                "hit": None if h is None else h[0],
                                "best": None if h is None else h[1],
                                "score": None if h is None else h[2],
                            }
                        )
                print_grid(f"rank-1 (%) {name}", s["rank1"])
                print(
                    f"center-8: {s['center8']}   all-20: {s['all20']}   all probes: {s['all']}   "
                    f"detected {s['detected']}/{s['probes']}"
                )
                if a.plot:
                    heatmap(
                        a.plot.with_name(f"{a.plot.stem}_{name.replace('+', '_')}.png"),
                        f"{name} ({'synthetic UHDB31 protocol' if synthetic else data.name})",
                        s["rank1"],
                    )
        first = summary["variants"][
            f"{lm}+{descriptors[0]}" + ("+masked" if f"{lm}+{descriptors[0]}+masked" in summary["variants"] else "")
        ]
        print_grid(f"detection rate (%) with {lm} pipeline (a face returned)", first["detection"])
        if first["detection_at_box"]:
            print_grid(
                f"detection rate (%) with {lm} pipeline (the face returned is the annotated one)",
                first["detection_at_box"],
            )
        if first["landmark_nme"]:
            print_grid(f"landmark NME-vis (% of the box) with {lm}", first["landmark_nme"])
        if first["fit_residual_px"]:
            print_grid(f"3D fit residual (px) with {lm}", first["fit_residual_px"])
    summary["seconds"] = round(time.time() - t_all, 1)
    if len(summary["variants"]) > 1:
        print("\nside by side: variant, center-8, all-20, all probes")
        for n, s in summary["variants"].items():
            print(f"  {n:<32} {str(s['center8']):>7} {str(s['all20']):>7} {s['all']:7.2f}")
    if a.json:
        write_json({"summary": summary, "probes": probes_out}, str(a.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
