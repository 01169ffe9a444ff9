"""Train the ``dpm`` multi-view fHOG mixture (``pipeline/detection/dpm.py``).

    python -m training.dpm                      # all five components
    python -m training.dpm --per-view 800 --negatives 200   # a quicker model

Data (training parts only, splits/splits.json):

* positives: real CFP training-subject photos (001-125; the box is the square on the 30
  fiducials' extent, moved and scaled by CFP_BOX_CALIBRATION; frontal photos count as yaw 0,
  profiles as +-90), the face-profiling renders (``generated/profiling``; make them with
  ``python -m facedata.profiling``; renders of the ORL and Georgia Tech sets, which
  serve evaluation, are skipped) and the real AFLW training crops (``aflw_crops`` minus the
  validation 10 %). The training box is the square of side max(w, h) of the AFLW-style face
  box, on its centre (for an AFLW crop: the crop's centre, side = crop / sqrt(2), the 3DDFA
  rule the crops were cut with);
* negatives: CFP training-subject photos (001-125) with the head painted out (the 30
  fiducials' extent enlarged 2.2x, filled with the image mean), so the structural SVM also
  mines real in-the-wild background.

Views by abs(yaw): frontal < 22.5 <= half < 60 <= profile. Faces of the other side are mirrored
into each component's side; the ``*_right`` component is trained on the mirror images of the
``*_left`` data. Deterministic (seeded sampling, dlib's trainer is deterministic); writes
``<name>.svm`` files and ``MANIFEST.json`` (sha256, config, counts, timings) atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facedata.readers import cfp_fiducials_path, paint_out_head
from pipeline.detection.dpm import MODEL_DIR, VIEWS, base_view, components
from pipeline.manifest import read_manifest, record, write_manifest
from training.loaders import DEFAULT_RENDERS, SHARED, load_gray

log = logging.getLogger("training.dpm")


@dataclass
class DpmTrainConfig:
    per_view: int = 2400  # positive images per component (CFP photos, renders, AFLW crops)
    negatives: int = 900  # CFP background images (head painted out)
    window: int = 80  # template window side (px)
    C: float = 5.0  # SVM regularisation (dlib's default)
    epsilon: float = 0.02
    frontal_max: float = 22.5
    half_max: float = 60.0
    seed: int = 0
    threads: int = 1
    skip_render_sources: tuple[str, ...] = ("orl", "gt")


#: CFP's 30 fiducials do not span the face like the AFLW box: (dx, dy, k) map the square on their
#: extent (centre c, side s) to the training square (c + (dx, dy) s, side k s). Measured as the
#: medians over the CFP training photos (120 per view) that the renders + AFLW-crops-only model
#: (first training round) detected: frontal fiducials sit on one side of the face.
CFP_BOX_CALIBRATION = {"frontal": (0.208, -0.047, 0.897), "profile": (-0.025, -0.043, 0.893)}


def view_of(yaw: float, cfg: DpmTrainConfig) -> str:
    a = abs(yaw)
    if a < cfg.frontal_max:
        return "frontal"
    base = "half" if a < cfg.half_max else "profile"
    return f"{base}_{'left' if yaw > 0 else 'right'}"


def square_box(box) -> tuple[float, float, float]:
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0)


def positive_items(cfg: DpmTrainConfig, renders: Path, aflw: Path, cfp: Path) -> list[dict]:
    """Every candidate positive: image path, square box (cx, cy, side), yaw, source."""
    from facedata.splits import aflw_validation_images

    items = []
    if (renders / "annotations.jsonl").exists():
        for line in open(renders / "annotations.jsonl"):
            r = json.loads(line)
            if any(f"/{s}/" in f"/{r['image']}" for s in cfg.skip_render_sources):
                continue
            items.append(
                {"path": str(renders / r["image"]), "sq": square_box(r["box"]), "yaw": float(r["yaw"]), "src": "render"}
            )
    else:
        log.warning("no face-profiling renders at %s (python -m facedata.profiling); AFLW crops only", renders)
    if (cfp / "manifest.csv").exists():  # real photos; the box from the 30 fiducials' extent
        import csv

        from facedata.splits import cfp_subjects

        train = set(cfp_subjects("train"))
        for r in csv.DictReader(open(cfp / "manifest.csv")):
            if r["subject"] not in train:
                continue
            rel = Path(r["path"])
            fid = cfp_fiducials_path(cfp, rel)
            if not fid.exists():
                continue
            pts = np.loadtxt(fid, delimiter=",", ndmin=2)
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            cx, cy, s = square_box((x0, y0, x1, y1))
            dx, dy, k = CFP_BOX_CALIBRATION["frontal" if float(r["yaw"]) == 0 else "profile"]
            items.append(
                {"path": str(cfp / rel), "sq": (cx + dx * s, cy + dy * s, k * s), "yaw": float(r["yaw"]), "src": "cfp"}
            )
    val = aflw_validation_images()
    for line in open(aflw / "annotations.jsonl"):
        r = json.loads(line)
        if r["image"] in val:
            continue
        items.append({"path": str(aflw / r["image"]), "sq": None, "yaw": float(r["yaw"]), "src": "aflw"})
    return items


def negative_images(cfg: DpmTrainConfig, cfp: Path) -> list[np.ndarray]:
    """CFP training photos with the head painted out (see the module docstring)."""
    from facedata.splits import cfp_subjects

    rng = np.random.default_rng(cfg.seed)
    paths = sorted((cfp / "images").glob("*/*/*.jpg"))
    train = set(cfp_subjects("train"))
    paths = [p for p in paths if p.parts[-3] in train]
    out = []
    for i in rng.permutation(len(paths)):
        if len(out) >= cfg.negatives:
            break
        p = paths[i]
        img = load_gray(p)
        fid = cfp_fiducials_path(cfp, p)
        if img is None or not fid.exists():
            continue
        img = paint_out_head(img, np.loadtxt(fid, delimiter=",", ndmin=2))
        h, w = img.shape
        if max(h, w) > 320:
            import cv2

            s = 320.0 / max(h, w)
            img = cv2.resize(img, (max(int(w * s), 1), max(int(h * s), 1)), interpolation=cv2.INTER_AREA)
        if min(img.shape) >= cfg.window:
            out.append(img)
    return out


def load_positive(item: dict) -> tuple[np.ndarray, tuple[float, float, float]] | None:
    img = load_gray(Path(item["path"]))
    if img is None:
        return None
    if item["sq"] is None:  # AFLW crop: the crop is the 3DDFA ROI of the face box
        h, w = img.shape
        return img, ((w - 1) / 2.0, (h - 1) / 2.0, max(h, w) / math.sqrt(2.0))
    return img, item["sq"]


def to_rect(sq, width: int, mirror: bool):
    import dlib

    cx, cy, side = sq
    if mirror:
        cx = width - 1 - cx
    h = side / 2.0
    return dlib.rectangle(int(round(cx - h)), int(round(cy - h)), int(round(cx + h)), int(round(cy + h)))


def component_data(
    items: list[dict], view: str, cfg: DpmTrainConfig, mirror_all: bool
) -> tuple[list[np.ndarray], list[list]]:
    """Images and boxes of one component. Non-frontal: faces of the component's side as they
    are, the other side's mirrored; ``mirror_all`` mirrors the result (the right-hand twin)."""
    rng = np.random.default_rng([cfg.seed, VIEWS.index(view)])
    base = view.split("_")[0]
    chosen = []
    pools = {
        src: [it for it in items if it["src"] == src and view_of(it["yaw"], cfg).split("_")[0] == base]
        for src in ("cfp", "render", "aflw")
    }
    left = cfg.per_view
    for n, src in enumerate(("cfp", "render", "aflw")):  # real photos first, the rest shared equally
        pool = pools[src]
        k = min(len(pool), left // (3 - n))
        chosen += [pool[i] for i in rng.choice(len(pool), k, replace=False)] if k else []
        left -= k
    imgs, boxes = [], []
    for it in chosen:
        got = load_positive(it)
        if got is None:
            continue
        img, sq = got
        if max(img.shape) > 400:  # large photos: shrink (HOG cells of 8 px need no more)
            import cv2

            f = 400.0 / max(img.shape)
            img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA)
            sq = (sq[0] * f, sq[1] * f, sq[2] * f)
        if sq[2] < cfg.window * 0.6:
            continue
        flip = base != "frontal" and it["yaw"] < 0  # bring to the left (yaw > 0) side
        flip = flip != mirror_all
        if flip:
            img = np.ascontiguousarray(img[:, ::-1])
        imgs.append(img)
        boxes.append([to_rect(sq, img.shape[1], flip)])
    return imgs, boxes


def train_component(
    imgs, boxes, negs, cfg: DpmTrainConfig, flips: bool, dest: Path, command: str = "python -m training.dpm"
) -> dict:
    """Train one template into ``dest``; returns its manifest record (:func:`pipeline.manifest.record`)."""
    import dlib

    opts = dlib.simple_object_detector_training_options()
    opts.add_left_right_image_flips = flips
    opts.C = cfg.C
    opts.epsilon = cfg.epsilon
    opts.num_threads = cfg.threads
    opts.detection_window_size = cfg.window * cfg.window
    opts.be_verbose = False
    t0 = time.time()
    det = dlib.train_simple_object_detector(imgs + negs, boxes + [[] for _ in negs], opts)
    secs = time.time() - t0
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    det.save(str(tmp))
    os.replace(tmp, dest)
    # training-set figures (recall/precision at the learned threshold, dlib's own test)
    res = dlib.test_simple_object_detector(imgs, boxes, det)
    return record(
        dest,
        config=asdict(cfg),
        command=command,
        data={"positives": len(imgs), "negative_images": len(negs)},
        figures={
            "train_seconds": round(secs, 1),
            "train_precision": round(res.precision, 4),
            "train_recall": round(res.recall, 4),
            "train_ap": round(res.average_precision, 4),
        },
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.dpm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = DpmTrainConfig()
    ap.add_argument("--renders", type=Path, default=DEFAULT_RENDERS, help="face-profiling set")
    ap.add_argument("--aflw", type=Path, default=SHARED / "aflw_crops", help="aflw_crops folder")
    ap.add_argument("--cfp", type=Path, default=SHARED / "cfp_dev", help="cfp_dev folder (negatives)")
    ap.add_argument("--out", type=Path, default=MODEL_DIR, help="model folder (default: the shipped one)")
    ap.add_argument("--per-view", type=int, default=d.per_view, help="positive images per component")
    ap.add_argument("--negatives", type=int, default=d.negatives, help="background images")
    ap.add_argument("--C", type=float, default=d.C, help="SVM C")
    ap.add_argument("--views", default=",".join(VIEWS), help="components to (re)train")
    ap.add_argument(
        "--split",
        default="",
        metavar="VIEW=K[,VIEW=K]",
        help="split a view (frontal, half, profile) into K templates by k-means on the HOG of its "
        "positives, e.g. 'profile=3' (components <view>#1..K; the *_right twins are the "
        "mirror images of the *_left clusters)",
    )
    ap.add_argument("--threads", type=int, default=d.threads)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not (a.aflw / "annotations.jsonl").exists():
        log.error("no aflw_crops at %s (pass --aflw)", a.aflw)
        return 2
    cfg = DpmTrainConfig(per_view=a.per_view, negatives=a.negatives, C=a.C, threads=a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    man = read_manifest(a.out, what="detector", empty={"files": {}})
    command = "python -m training.dpm " + " ".join(sys.argv[1:] if argv is None else argv)
    man.update(window=cfg.window, config=asdict(cfg), command=command)
    # every run that (re)trained templates of this folder, in order (a model can be built in steps)
    man.setdefault("history", []).append(
        {"command": command.strip(), "config": asdict(cfg), "views": a.views, "split": a.split}
    )
    items = positive_items(cfg, a.renders, a.aflw, a.cfp)
    negs = negative_images(cfg, a.cfp)
    log.info("%d candidate positives, %d negative images", len(items), len(negs))
    try:
        splits = parse_splits(a.split)
    except ValueError as e:
        log.error("%s", e)
        return 2
    views = a.views.split(",")
    for view in views:
        if view not in VIEWS:
            log.error("unknown view %r (choose from %s)", view, ", ".join(VIEWS))
            return 2
    man["components"] = component_names(splits, components(man) if man["files"] else [], views)
    man["split"] = {**man.get("split", {}), **splits}
    clusters: dict[str, tuple[list, list, np.ndarray]] = {}
    for view in views:
        mirror = view.endswith("_right")
        negs_v = [np.ascontiguousarray(n[:, ::-1]) for n in negs] if mirror else negs
        k = splits.get(view.split("_")[0], 1)
        if k == 1:
            jobs = [(view, *component_data(items, view, cfg, mirror))]
        else:  # cluster the left-side data once; the right twin mirrors each cluster
            left = view.replace("_right", "_left")
            if left not in clusters:
                imgs, boxes = component_data(items, left, cfg, False)
                clusters[left] = (imgs, boxes, hog_clusters(imgs, boxes, k, cfg))
                log.info(
                    "%s: %d positives in %d clusters of %s",
                    left,
                    len(imgs),
                    k,
                    np.bincount(clusters[left][2], minlength=k).tolist(),
                )
            imgs, boxes, lab = clusters[left]
            jobs = []
            for c in range(k):
                ci = [im for im, lb in zip(imgs, lab) if lb == c]
                cb = [b for b, lb in zip(boxes, lab) if lb == c]
                if mirror:
                    ci, cb = zip(*(mirror_positive(im, b) for im, b in zip(ci, cb))) if ci else ([], [])
                jobs.append((f"{view}#{c + 1}", list(ci), list(cb)))
        for name, imgs, boxes in jobs:
            log.info("training %s on %d positives ...", name, len(imgs))
            man["files"][name] = train_component(
                imgs, boxes, negs_v, cfg, view == "frontal", a.out / f"{name.replace('#', '_')}.svm", command.strip()
            )
            log.info("%s: %s", name, man["files"][name])
            write_manifest(a.out, man)
    stale = [f for f in man["files"] if base_view(f) in VIEWS and f not in man["components"]]
    for f in stale:  # templates replaced by a split (or merged back): out of the manifest
        log.info("dropping %s (%s) from the manifest; the file can be deleted", f, man["files"].pop(f)["file"])
    if stale:
        write_manifest(a.out, man)
    missing = [c for c in man["components"] if c not in man["files"]]
    if missing:
        log.warning("the manifest names components not trained yet: %s", ", ".join(missing))
    return 0


def parse_splits(text: str) -> dict[str, int]:
    """``"profile=3,half=2"`` -> ``{"profile": 3, "half": 2}``."""
    out = {}
    for part in filter(None, (t.strip() for t in text.split(","))):
        base, _, k = part.partition("=")
        if base not in ("frontal", "half", "profile") or not k.isdigit() or not 1 <= int(k) <= 8:
            raise ValueError(f"bad --split entry {part!r}: use VIEW=K with VIEW frontal, half or profile, K 1-8")
        out[base] = int(k)
    return out


def component_names(splits: dict[str, int], previous: list[str], trained: list[str]) -> list[str]:
    """The model's template names in ``VIEWS`` order: a view trained now takes its split (or
    itself); a view not retrained keeps the templates it had."""
    out = []
    for view in VIEWS:
        if view in trained:
            k = splits.get(view.split("_")[0], 1)
            out += [view] if k == 1 else [f"{view}#{c + 1}" for c in range(k)]
        else:
            out += [c for c in previous if base_view(c) == view] or [view]
    return out


def mirror_positive(img: np.ndarray, rects: list) -> tuple[np.ndarray, list]:
    import dlib

    w = img.shape[1]
    return (
        np.ascontiguousarray(img[:, ::-1]),
        [dlib.rectangle(w - 1 - r.right(), r.top(), w - 1 - r.left(), r.bottom()) for r in rects],
    )


def window_hog(img: np.ndarray, rect, window: int, cell: int = 8, bins: int = 9) -> np.ndarray:
    """A plain HOG of the positive's square window resized to ``window`` px: per ``cell`` x ``cell``
    cell, a magnitude-weighted histogram of unsigned gradient orientation (``bins`` bins over
    0-180 deg), each cell L2-normalised; shape ((window // cell) ** 2 * bins,). The image border
    is replicated where the window leaves the image."""
    import cv2

    x0, y0, x1, y1 = rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1
    pad = max(0, -x0, -y0, x1 - img.shape[1], y1 - img.shape[0])
    src = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else img
    crop = cv2.resize(
        src[y0 + pad : y1 + pad, x0 + pad : x1 + pad], (window, window), interpolation=cv2.INTER_AREA
    ).astype(np.float32)
    gx, gy = np.gradient(crop, axis=1), np.gradient(crop, axis=0)
    mag, ang = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    b = np.minimum((ang / np.pi * bins).astype(int), bins - 1)
    n = window // cell
    cell_of = (np.arange(window)[:, None] // cell).clip(max=n - 1) * n + (np.arange(window)[None, :] // cell).clip(
        max=n - 1
    )
    hist = np.zeros((n * n, bins), np.float32)
    np.add.at(hist, (cell_of.ravel(), b.ravel()), mag.ravel())
    hist /= np.linalg.norm(hist, axis=1, keepdims=True) + 1e-6
    return hist.ravel()


def hog_clusters(imgs: list[np.ndarray], boxes: list[list], k: int, cfg: DpmTrainConfig) -> np.ndarray:
    """Cluster labels (N,) of the positives: k-means (10 restarts, seeded) on the first 50
    principal components of their window HOG (:func:`window_hog`)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = np.stack([window_hog(im, b[0], cfg.window) for im, b in zip(imgs, boxes)])
    x = PCA(n_components=min(50, len(x) - 1), random_state=cfg.seed).fit_transform(x)
    return KMeans(n_clusters=k, n_init=10, random_state=cfg.seed).fit_predict(x)


if __name__ == "__main__":
    sys.exit(main())
