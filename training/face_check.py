"""Train the face / non-face check of ``lm-verify`` (``pipeline/detection/face_check.py``).

    python -m training.face_check --workers 2 \\
        --extra-renders generated/profiling_hard generated/profiling_up
                                                    # writes models/face_check.safetensors (~21 min)

Samples are the candidates the shipped front end itself produces, so the check learns exactly the
mistakes it has to catch: ``dpm`` proposals (threshold -0.6) go through ``lm-verify``'s pool and
re-centring (:meth:`LandmarkVerifyRefiner.converge`), and every re-centred box becomes a sample with
its landmark confidence.

* Face images: face-profiling renders (``generated/profiling``, AFLW / CFP training sources; the
  shipped check used ``python -m facedata.profiling --sets aflw,cfp --limit-sources 900``,
  3,508 renders), every render of the ``--extra-renders`` sets (the shipped check: the 1,168 pitched
  full profiles of ``python -m facedata.profiling ... --min-abs-yaw 65 --min-abs-pitch 15`` and the 1,365
  pitched-up ones of ``... --pitch 15 40``; the commands are in ``docs/landmarks/TRAINING.md``) and real AFLW
  training crops (validation 10 % excluded; padded by 25 % with replicated borders). Each image is first
  shrunk by a random factor in [``min_scale``, 1] so that small faces (40-110 px) are covered. A candidate is a
  **face** when its box matches the ground-truth box (centre inside, size within 2x) with IoU >= 0.4, a
  **non-face** when its IoU is below 0.15 and its centre lies outside the ground-truth box
  (``background``); the ones in between are not used. Every candidate is cached with its label
  (:func:`label_candidate`), box and ground-truth box, so the rules below can be tried on one
  collection.
* Options **off by default** (they did not improve the front end,
  ``docs/detection/RESULTS.md``): ``--parts-negative`` also makes **face parts** (side at most
  ``part_side`` = 0.5 of the face's, at least ``part_inside`` = 70 % inside the face box: an eye,
  nose or mouth box) and **boxes around the face** (side at least 2x the face's, covering at least
  90 % of it) non-faces -- no box of either kind can match the face
  (:func:`pipeline.detection.boxes.box_matches`) -- and adds ``--sampled-parts`` /
  ``--sampled-around`` such boxes drawn on every face image (:func:`sample_part_boxes`; CNN samples
  only); ``--offcentre-negative`` makes boxes whose centre lies off the face but overlap it by IoU >=
  0.15 non-faces; ``--contexts 1.5 3.0`` gives the CNN a second crop with twice the context (one
  input channel each; the manifest records the factors and :class:`FaceCheck` crops accordingly).
  With all of them but ``--offcentre-negative`` and ``--entry part_check`` it trains the model of
  ``lm-verify``'s optional part veto (``part_veto=True``).
* Non-face images: CFP photos of the training subjects 001-125 with the head painted out (as the
  dpm negatives), and ``noise`` synthetic images (uniform / blurred noise, gradients, flat): every
  candidate is a non-face.

10 % of the source images (by a hash of the path) are held out: the fusion ``p = sigmoid(a z + b c
+ d)`` of the CNN logit ``z`` and the landmark confidence ``c`` is fitted there (logistic
regression), and the rejection floor is the highest ``p`` at which ``floor_recall`` (99 %) of the
held-out face candidates are kept (optionally raised so that at most ``max_fp`` of the held-out
non-face images keep a candidate; off by default: dpm proposes nothing on most painted-out photos,
so only ~13 held-out non-face images have a candidate, too few to set a floor by -- the false
positives are measured on the benchmark's non-face images instead).
Training: BCE, Adam, cosine learning rate, mirror augmentation; deterministic for a seed.
Depends on the GoDP weights and the landmark-box regressor (the manifest records the GoDP sha256).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.detection.bbox_cnn import CONTEXT, BoxNet, crops_for, to_input
from training.loaders import (
    DEFAULT_RENDERS,
    SHARED,
    CropCnnConfig,
    padded_aflw_crop,
    train_crop_cnn,
    training_renders,
)

log = logging.getLogger("training.face_check")


@dataclass
class FaceCheckTrainConfig(CropCnnConfig):
    renders: int = 2400
    aflw: int = 1200
    cfp_negatives: int = 500
    noise: int = 150
    min_scale: float = 0.4
    epochs: int = 8
    floor_recall: float = 0.99
    max_fp: float | None = None
    pos_iou: float = 0.4
    neg_iou: float = 0.15
    parts_negative: bool = False
    offcentre_negative: bool = False
    part_side: float = 0.5
    part_inside: float = 0.7
    around_side: float = 2.0
    around_cover: float = 0.9
    sampled_parts: int = 0
    sampled_around: float = 0.0
    contexts: tuple[float, ...] = (1.5,)


LABELS = ("face", "background", "part", "around", "offcentre", "between")


def label_candidate(box, gt, cfg: FaceCheckTrainConfig) -> str:
    """What a re-centred candidate ``box`` is on an image whose face has the ground-truth box ``gt``
    (both (x0, y0, x1, y1) px; ``gt`` None on a non-face image): one of :data:`LABELS` (module
    docstring; the side ratio is sqrt(area ratio), as in
    :func:`pipeline.detection.boxes.box_matches`)."""
    from pipeline.detection.boxes import area, box_matches, centre_inside, intersection, iou

    if gt is None:
        return "background"
    o = iou(box, gt)
    if box_matches(box, gt) and o >= cfg.pos_iou:
        return "face"
    if not centre_inside(box, gt):
        return "background" if o < cfg.neg_iou else "offcentre"
    a, g = area(box), area(gt)
    if a <= 0 or g <= 0:
        return "between"
    side, inter = (a / g) ** 0.5, intersection(box, gt)
    if side <= cfg.part_side and inter >= cfg.part_inside * a:
        return "part"
    if side >= cfg.around_side and inter >= cfg.around_cover * g:
        return "around"
    return "between"


def labels_to_targets(labels: np.ndarray, parts_negative: bool, offcentre_negative: bool = False) -> np.ndarray:
    """Training targets (N,) float32 from candidate labels: 1 face, 0 non-face, -1 not used."""
    labels = np.asarray(labels)
    y = np.full(len(labels), -1.0, np.float32)
    y[labels == "face"] = 1
    y[labels == "background"] = 0
    if parts_negative:
        y[np.isin(labels, ["part", "around"])] = 0
    if offcentre_negative:
        y[labels == "offcentre"] = 0
    return y


def noise_image(rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """A synthetic non-face image: uniform noise, blurred noise, a gradient or a flat field."""
    import cv2

    kind = int(rng.integers(4))
    if kind == 0:
        return rng.integers(0, 256, (size, size), dtype=np.uint8)
    if kind == 1:
        img = rng.integers(0, 256, (size, size)).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(1, 6)))
        img = (img - img.min()) / max(float(np.ptp(img)), 1e-6) * 255
        return img.astype(np.uint8)
    if kind == 2:
        g = np.linspace(0, 1, size, dtype=np.float32)
        a = float(rng.uniform(0, 2 * math.pi))
        img = np.cos(a) * g[None, :] + np.sin(a) * g[:, None]
        img = (img - img.min()) / max(float(np.ptp(img)), 1e-6) * 255
        return img.astype(np.uint8)
    return np.full((size, size), int(rng.integers(256)), np.uint8)


def render_job(root: Path, row: dict) -> dict:
    """The job of one face-profiling render (an annotation row of the set in ``root``)."""
    return {
        "kind": "render",
        "path": str(root / row["image"]),
        "gt": list(row["box"]),
        "yaw": float(row.get("yaw", math.nan)),
    }


def jobs_for(
    cfg: FaceCheckTrainConfig, renders: Path, aflw: Path, cfp: Path, extra_renders: tuple[Path, ...] = ()
) -> list[dict]:
    """Source images: {"kind", "path" or "noise" seed, "gt" box or None, "yaw" (degrees, NaN when
    unknown), "scale", "val"}. Every render of each ``extra_renders`` set (e.g. the pitched full
    profiles of ``python -m facedata.profiling --min-abs-yaw 65 --min-abs-pitch 15``) is added after the others,
    so the draws for the default sources do not change."""
    from facedata.splits import aflw_validation_images

    rng = np.random.default_rng(cfg.seed)
    jobs: list[dict] = []
    if (renders / "annotations.jsonl").exists():
        rows = training_renders(renders)
        for i in rng.choice(len(rows), min(cfg.renders, len(rows)), replace=False):
            jobs.append(render_job(renders, rows[i]))
    else:
        log.warning("no face-profiling renders at %s (python -m facedata.profiling)", renders)
    val = aflw_validation_images()
    rows = [json.loads(line) for line in open(aflw / "annotations.jsonl")]
    rows = [r for r in rows if r["image"] not in val]
    for i in rng.choice(len(rows), min(cfg.aflw, len(rows)), replace=False):
        yaw = rows[i].get("yaw")
        jobs.append(
            {
                "kind": "aflw",
                "path": str(aflw / rows[i]["image"]),
                "gt": None,
                "yaw": math.nan if yaw is None else float(yaw),
            }
        )
    photos = [p for p in sorted((cfp / "images").glob("*/*/*.jpg")) if p.parts[-3] <= "125"]
    for i in rng.choice(len(photos), min(cfg.cfp_negatives, len(photos)), replace=False):
        jobs.append({"kind": "cfp-neg", "path": str(photos[i]), "gt": None, "yaw": math.nan})
    for k in range(cfg.noise):
        jobs.append({"kind": "noise", "path": f"noise:{cfg.seed}:{k}", "gt": None, "yaw": math.nan})
    for extra in extra_renders:
        jobs += [render_job(extra, r) for r in training_renders(extra)]
    for j in jobs:
        j["scale"] = float(rng.uniform(cfg.min_scale, 1.0)) if j["kind"] in ("render", "aflw") else 1.0
        j["val"] = zlib.crc32(j["path"].encode()) % 10 == 0
    return jobs


def load_job(job: dict, cfp: Path) -> tuple[np.ndarray | None, tuple | None]:
    """The uint8 gray image of a job and its ground-truth box (None for a non-face image)."""
    import cv2

    from facedata.readers import cfp_fiducials_path, paint_out_head

    if job["kind"] == "noise":
        _, seed, k = job["path"].split(":")
        return noise_image(np.random.default_rng([int(seed), int(k)])), None
    img = cv2.imread(job["path"], cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None, None
    gt = tuple(job["gt"]) if job["gt"] is not None else None
    if job["kind"] == "aflw":  # the crop is the 3DDFA square of its face: pad for context
        img, gt = padded_aflw_crop(img)
    elif job["kind"] == "cfp-neg":
        fid = cfp_fiducials_path(cfp, Path(job["path"]))
        if not fid.exists():
            return None, None
        img = paint_out_head(img, np.loadtxt(fid, delimiter=",", ndmin=2))
    k = job["scale"]
    if k < 1.0:
        img = cv2.resize(
            img, (max(1, round(img.shape[1] * k)), max(1, round(img.shape[0] * k))), interpolation=cv2.INTER_AREA
        )
        gt = tuple(v * k for v in gt) if gt is not None else None
    return img, gt


def _collect_worker(args) -> list[dict]:
    jobs, cfp, cfg = args
    torch.set_num_threads(1)
    from landmarks.godp.infer import GodpLandmarker
    from pipeline.detection.dpm import DpmDetector
    from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence

    det = DpmDetector(min_face=40, threshold=DpmDetector.proposal_threshold)
    ver = LandmarkVerifyRefiner(landmarker=GodpLandmarker(n_rois=1), face_check=False)
    out = []
    for job in tqdm(jobs, desc="front-end candidates", unit="img", mininterval=10):
        img, gt = load_job(job, cfp)
        if img is None:
            continue
        pool = ver._pool(det.detect(img))
        if not pool:
            continue
        boxes, lms = ver.converge(img, pool)
        for b, lm in zip(boxes, lms):
            out.append(
                {
                    "crop": crops_for(img, b, cfg.contexts),
                    "conf": landmark_confidence(lm.scores),
                    "label": label_candidate(b, gt, cfg),
                    "box": np.asarray(b, np.float64),
                    "gt": np.asarray(gt if gt is not None else (np.nan,) * 4, np.float64),
                    "val": job["val"],
                    "kind": job["kind"],
                    "src": job["path"],
                    "yaw": job["yaw"],
                    "subspace": -1 if lm.yaw_subspace is None else int(lm.yaw_subspace),
                    "scores": np.asarray(lm.scores, np.float32),
                    "visible": np.asarray(lm.visible, bool),
                }
            )
    return out


def sample_part_boxes(gt, rng: np.random.Generator, cfg: FaceCheckTrainConfig) -> list[tuple]:
    """Square non-face boxes drawn on a face with ground-truth box ``gt`` (x0, y0, x1, y1) px:
    ``sampled_parts`` face parts (side 0.25-``part_side`` of the face's sqrt(area), entirely inside
    ``gt``) and, with probability ``sampled_around``, one box around the face (side
    ``around_side``-1.5x that, containing ``gt``). Every box is a ``part`` / ``around`` by
    :func:`label_candidate`."""
    x0, y0, x1, y1 = (float(v) for v in gt)
    face = ((x1 - x0) * (y1 - y0)) ** 0.5
    out = []
    for _ in range(cfg.sampled_parts):
        side = min(face * rng.uniform(0.25, cfg.part_side), x1 - x0, y1 - y0)
        bx, by = rng.uniform(x0, x1 - side), rng.uniform(y0, y1 - side)
        out.append((bx, by, bx + side, by + side))
    if rng.random() < cfg.sampled_around:
        side = max(face * rng.uniform(cfg.around_side, 1.5 * cfg.around_side), x1 - x0, y1 - y0) + 1.0
        # centre anywhere on the face box: the box then contains it (side >= 2x its width and height)
        bx, by = rng.uniform(x0 - side / 2, x1 - side / 2), rng.uniform(y0 - side / 2, y1 - side / 2)
        out.append((bx, by, bx + side, by + side))
    return out


def sampled_part_crops(cfg: FaceCheckTrainConfig, jobs: list[dict], cfp: Path) -> dict:
    """Network crops of :func:`sample_part_boxes` on every face image of ``jobs`` (no landmark
    network involved): non-face samples for the CNN only -- the front end's own part candidates are
    too few (about 3 % of the candidates) to teach it that a mouth box is not a face. Returns
    {"crops" (N, C, 64, 64) uint8 (C = len(cfg.contexts)), "val" (N,) bool, "label" (N,)};
    deterministic for ``cfg.seed``."""
    rng = np.random.default_rng([cfg.seed, 9])
    crops, val, label = [], [], []
    for job in tqdm(
        [j for j in jobs if j["kind"] in ("render", "aflw")], desc="sampled face parts", unit="img", mininterval=10
    ):
        img, gt = load_job(job, cfp)
        if img is None or gt is None:
            continue
        for b in sample_part_boxes(gt, rng, cfg):
            crops.append(crops_for(img, b, cfg.contexts))
            val.append(job["val"])
            label.append(label_candidate(b, gt, cfg))
    if not crops:
        return {
            "crops": np.zeros((0, len(cfg.contexts), 64, 64), np.uint8),
            "val": np.zeros(0, bool),
            "label": np.zeros(0, "<U10"),
        }
    return {"crops": np.stack(crops), "val": np.array(val), "label": np.array(label)}


def recrop(data: dict, jobs: list[dict], cfp: Path, contexts: tuple[float, ...]) -> np.ndarray:
    """The crops (N, C, 64, 64) of the cached candidates of ``data`` (their "src" image and re-centred
    "box") at other context factors, without running the front end again (``jobs`` from
    :func:`jobs_for` with the options of the collection)."""
    by_src = {j["path"]: j for j in jobs}
    out = np.zeros((len(data["src"]), len(contexts), 64, 64), np.uint8)
    order = np.argsort(data["src"], kind="stable")
    last, img = None, None
    for i in tqdm(order, desc="candidate crops", unit="crop", mininterval=10):
        src = str(data["src"][i])
        if src != last:
            if src not in by_src:
                raise ValueError(
                    f"cached candidate of {src}: not among the source images of these options; "
                    "delete the cache to collect again"
                )
            img, _ = load_job(by_src[src], cfp)
            if img is None:
                raise ValueError(
                    f"cached candidate of {src}: the image can no longer be read; delete the cache to collect again"
                )
            last = src
        out[i] = crops_for(img, data["box"][i], contexts)
    return out


def collect(cfg: FaceCheckTrainConfig, jobs: list[dict], cfp: Path, workers: int) -> dict:
    """Candidates of every job (in ``workers`` processes), as arrays: all of them, with their
    ``label`` (:func:`label_candidate`), re-centred ``box`` and ground-truth box ``gt`` (NaN on
    non-face images), so that a cache can be relabelled without collecting again."""
    import multiprocessing as mp

    chunks = [(jobs[i::workers], cfp, cfg) for i in range(workers)]
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_collect_worker, chunks)
    else:
        parts = [_collect_worker(chunks[0])]
    rows = [r for part in parts for r in part]
    rows.sort(key=lambda r: (r["src"], r["label"], r["conf"]))  # independent of the worker split
    return {
        "crops": np.stack([r["crop"] for r in rows]),
        "conf": np.array([r["conf"] for r in rows]),
        "label": np.array([r["label"] for r in rows]),
        "box": np.stack([r["box"] for r in rows]),
        "gt": np.stack([r["gt"] for r in rows]),
        "val": np.array([r["val"] for r in rows]),
        "kind": np.array([r["kind"] for r in rows]),
        "src": np.array([r["src"] for r in rows]),
        "yaw": np.array([r["yaw"] for r in rows], float),
        "subspace": np.array([r["subspace"] for r in rows]),
        "scores": np.stack([r["scores"] for r in rows]),
        "visible": np.stack([r["visible"] for r in rows]),
    }


def train(cfg: FaceCheckTrainConfig, data: dict, threads: int = 1, extra_negatives: np.ndarray | None = None) -> BoxNet:
    """The CNN on the training candidates of ``data`` (and ``extra_negatives`` crops, non-faces)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(threads)
    net = BoxNet(cfg.width, outputs=1, in_channels=len(cfg.contexts))
    tr = ~data["val"]
    x_tr, y_tr = data["crops"][tr], data["y"][tr]
    if extra_negatives is not None and len(extra_negatives):
        x_tr, y_tr = (
            np.concatenate([x_tr, extra_negatives]),
            np.concatenate([y_tr, np.zeros(len(extra_negatives), np.float32)]),
        )
    y_tr = torch.from_numpy(y_tr)
    pos = float(y_tr.mean())
    weight = torch.tensor((1 - pos) / max(pos, 1e-6))  # balance faces and non-faces

    def loss_of(idx, crops, _flip):
        z = net(to_input(crops))[:, 0]
        return torch.nn.functional.binary_cross_entropy_with_logits(z, y_tr[idx], pos_weight=weight)

    train_crop_cnn(net, x_tr, loss_of, cfg, "face-check")
    return net


@torch.no_grad()
def logits_of(net: BoxNet, crops: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [net(to_input(crops[a : a + 512]))[:, 0].numpy() for a in range(0, len(crops), 512)] or [np.zeros(0)]
    ).astype(float)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 200) -> np.ndarray:
    """Logistic regression p = sigmoid(X w + d) on features X (N, k) by Newton's method, an L2 penalty
    ``l2`` on w (not on the intercept d); returns (w_1 .. w_k, d)."""
    X = np.column_stack([X, np.ones(len(X))])
    k = X.shape[1] - 1
    w = np.zeros(k + 1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -50, 50)))
        g = X.T @ (p - y) + l2 * np.r_[w[:k], 0]
        H = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.diag(np.r_[np.ones(k), 0]) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_fusion(z: np.ndarray, c: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 200) -> tuple:
    """The fusion p = sigmoid(a z + b c + d) of CNN logits z and landmark confidences c (both (N,)),
    by :func:`fit_logistic`; returns (a, b, d)."""
    return tuple(float(v) for v in fit_logistic(np.column_stack([z, c]), y, l2, iters))


def choose_floor(
    p: np.ndarray, y: np.ndarray, src: np.ndarray, neg_image: np.ndarray, recall: float, max_fp: float | None
) -> tuple[float, dict]:
    """The rejection floor on held-out candidates (module docstring) and its held-out figures."""
    faces = np.sort(p[y == 1])
    floor = float(faces[int(math.floor((1 - recall) * len(faces)))]) if len(faces) else 0.5
    # per non-face image: its best candidate; at most max_fp of those images may pass the floor
    best = {}
    for pi, s, n in zip(p, src, neg_image):
        if n:
            best[s] = max(best.get(s, 0.0), float(pi))
    worst = np.sort(np.array(list(best.values()) or [0.0]))[::-1]
    k = int(math.floor((max_fp or 0.0) * len(worst)))
    fp_floor = float(worst[min(k, len(worst) - 1)]) + 1e-6 if len(worst) else 0.0
    chosen = floor if max_fp is None else max(floor, fp_floor)
    stats = {
        "val_face_candidates": int((y == 1).sum()),
        "val_nonface_candidates": int((y == 0).sum()),
        "val_face_recall_at_floor": float(np.mean(p[y == 1] >= chosen)) if (y == 1).any() else float("nan"),
        "val_nonface_pass_at_floor": float(np.mean(p[y == 0] >= chosen)) if (y == 0).any() else float("nan"),
        "val_nonface_images_passing": float(np.mean(worst >= chosen)),
        "val_nonface_images_with_candidates": len(best),
        "recall_floor": floor,
    }
    return chosen, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.face_check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = FaceCheckTrainConfig()
    from pipeline.detection.dpm import MODEL_DIR

    ap.add_argument("--renders-dir", type=Path, default=DEFAULT_RENDERS)
    ap.add_argument(
        "--extra-renders",
        type=Path,
        nargs="*",
        default=[],
        metavar="DIR",
        help="more face-profiling sets whose every render is a face image (e.g. generated/profiling_hard) [none]",
    )
    ap.add_argument("--aflw-dir", type=Path, default=SHARED / "aflw_crops")
    ap.add_argument("--cfp-dir", type=Path, default=SHARED / "cfp_dev")
    ap.add_argument("--models", type=Path, default=MODEL_DIR, help="detector model folder (writes the --entry)")
    ap.add_argument(
        "--entry",
        choices=("face_check", "part_check"),
        default="face_check",
        help="manifest entry and file name written: face_check (lm-verify's gate) or part_check "
        "(its part veto; shipped with --parts-negative --sampled-parts 1 --sampled-around 0.25 "
        "--contexts 1.5 3.0) [%(default)s]",
    )
    ap.add_argument("--renders", type=int, default=d.renders, help="render images to sample")
    ap.add_argument("--aflw", type=int, default=d.aflw, help="AFLW training crops to sample")
    ap.add_argument("--cfp-negatives", type=int, default=d.cfp_negatives, help="painted-out CFP training photos")
    ap.add_argument("--noise", type=int, default=d.noise, help="synthetic non-face images")
    ap.add_argument(
        "--parts-negative",
        action=argparse.BooleanOptionalAction,
        default=d.parts_negative,
        help="face parts and boxes around the face (module docstring) are non-face samples [default: off]",
    )
    ap.add_argument(
        "--offcentre-negative",
        action=argparse.BooleanOptionalAction,
        default=d.offcentre_negative,
        help="boxes whose centre lies off the face box but overlap it by IoU >= 0.15 are non-face "
        "samples [default: off]",
    )
    ap.add_argument(
        "--sampled-parts",
        type=int,
        default=d.sampled_parts,
        help="face-part boxes drawn on every face image as extra non-face samples for the CNN "
        "(sample_part_boxes) [%(default)s]",
    )
    ap.add_argument(
        "--sampled-around",
        type=float,
        default=d.sampled_around,
        help="probability of one box around the face per face image, another non-face sample [%(default)s]",
    )
    ap.add_argument(
        "--contexts",
        type=float,
        nargs="+",
        default=list(d.contexts),
        metavar="F",
        help="context factors of the CNN's crops (crop side / box side), one input channel each "
        "[%(default)s]: the wide one shows whether the box is a part of a bigger face",
    )
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--workers", type=int, default=1, help="processes collecting candidates")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    ap.add_argument("--cache", type=Path, default=None, help="save / reuse the collected candidates (.npz)")
    a = ap.parse_args(argv)
    if any(c <= 0 for c in a.contexts) or a.sampled_parts < 0 or not 0 <= a.sampled_around <= 1:
        ap.error("--contexts must be positive, --sampled-parts >= 0 and --sampled-around in [0, 1]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from pipeline.detection.dpm import load_manifest
    from pipeline.detection.face_check import fuse
    from pipeline.manifest import save_state_dict, write_manifest

    cfg = FaceCheckTrainConfig(
        renders=a.renders,
        aflw=a.aflw,
        cfp_negatives=a.cfp_negatives,
        noise=a.noise,
        epochs=a.epochs,
        parts_negative=a.parts_negative,
        offcentre_negative=a.offcentre_negative,
        sampled_parts=a.sampled_parts,
        sampled_around=a.sampled_around,
        contexts=tuple(a.contexts),
    )
    # the source images (reads the annotation files): built on first use, once
    source_jobs = functools.cache(lambda: jobs_for(cfg, a.renders_dir, a.aflw_dir, a.cfp_dir, tuple(a.extra_renders)))

    t0 = time.time()
    if a.cache is not None and a.cache.exists():
        data = dict(np.load(a.cache, allow_pickle=False))
        log.info(
            "candidates read from %s (delete it to collect again: --renders / --extra-renders / --aflw "
            "and the other source options apply only when collecting)",
            a.cache,
        )
    else:
        for extra in a.extra_renders:
            if not (extra / "annotations.jsonl").exists():
                log.error("--extra-renders %s: no annotations.jsonl (make it with facedata/profiling.py)", extra)
                return 2
        data = collect(cfg, source_jobs(), a.cfp_dir, max(1, a.workers))
        data["contexts"] = np.array(cfg.contexts, float)
        if a.cache is not None:
            np.savez(a.cache, **data)
    if tuple(data.pop("contexts", np.array([CONTEXT])).tolist()) != cfg.contexts:  # cropped at other contexts
        if "box" not in data:
            log.error("%s holds no candidate boxes (an older cache): delete it to collect again", a.cache)
            return 2
        try:
            data["crops"] = recrop(data, source_jobs(), a.cfp_dir, cfg.contexts)
        except ValueError as e:
            log.error("%s", e)
            return 2
    parts = None
    if cfg.sampled_parts > 0 or cfg.sampled_around > 0:  # cheap (no network): drawn every time
        parts = sampled_part_crops(cfg, source_jobs(), a.cfp_dir)
    t1 = time.time()
    label_counts = {}
    if "label" in data:  # older caches hold the used candidates and their targets only
        if "box" in data:  # label again by the rules of this configuration
            data["label"] = np.array(
                [
                    label_candidate(b, None if np.isnan(g).any() else tuple(g), cfg)
                    for b, g in zip(data["box"].astype(float), data["gt"].astype(float))
                ]
            )
        label_counts = {k: int((data["label"] == k).sum()) for k in LABELS}
        data["y"] = labels_to_targets(data["label"], cfg.parts_negative, cfg.offcentre_negative)
        keep = data["y"] >= 0
        data = {k: v[keep] for k, v in data.items()}
    log.info(
        "%d candidates used (%d faces) from %d images; all candidates by label: %s",
        len(data["y"]),
        int(data["y"].sum()),
        len(set(data["src"])),
        label_counts or "(not in this cache)",
    )
    net = train(cfg, data, a.threads, None if parts is None else parts["crops"][~parts["val"]])
    va = data["val"]
    z = logits_of(net, data["crops"])
    coef = fit_fusion(z[va], data["conf"][va], data["y"][va])
    p = fuse(z, data["conf"], coef)
    neg_img = np.isin(data["kind"], ["cfp-neg", "noise"])
    floor, stats = choose_floor(p[va], data["y"][va], data["src"][va], neg_img[va], cfg.floor_recall, cfg.max_fp)
    yv, cv = data["y"][va], data["conf"][va]
    stats.update(
        {
            "val_auc_fused": auc(p[va], yv),
            "val_auc_cnn": auc(z[va], yv),
            "val_auc_landmark_confidence": auc(cv, yv),
            "train_candidates": int((~va).sum()),
            "train_faces": int(data["y"][~va].sum()),
            "candidate_labels": label_counts,
        }
    )
    if parts is not None:
        zp = logits_of(net, parts["crops"][parts["val"]])
        stats.update(
            {
                "sampled_nonfaces": {k: int((parts["label"] == k).sum()) for k in ("part", "around")},
                "val_sampled_nonfaces_cnn_negative": float(np.mean(zp < 0)) if len(zp) else float("nan"),
            }
        )
    dest = a.models / f"{a.entry}.safetensors"
    digest = save_state_dict(net, dest)
    from landmarks.godp.infer import GodpLandmarker

    man = load_manifest(a.models)
    man[a.entry] = {
        "file": dest.name,
        "sha256": digest,
        "width": cfg.width,
        "contexts": list(cfg.contexts),
        "fusion": list(coef),
        "floor": round(floor, 6),
        "config": asdict(cfg),
        "godp_sha256": GodpLandmarker(n_rois=1).model.weights_sha256,
        "renders_in_set": len(training_renders(a.renders_dir)) if (a.renders_dir / "annotations.jsonl").exists() else 0,
        "extra_renders": {
            str(e): len(training_renders(e)) for e in a.extra_renders if (e / "annotations.jsonl").exists()
        },
        "command": "python -m training.face_check " + " ".join(sys.argv[1:] if argv is None else argv),
        "collect_seconds": round(t1 - t0, 1),
        "train_seconds": round(time.time() - t1, 1),
        **stats,
    }
    write_manifest(a.models, man)
    log.info("wrote %s: fusion %s floor %.3f %s", dest, coef, floor, json.dumps(stats))
    return 0


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic; ties count one half)."""
    from scipy.stats import rankdata

    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return float("nan")
    r = rankdata(score)
    return float((r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


if __name__ == "__main__":
    sys.exit(main())
