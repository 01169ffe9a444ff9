"""Train the ``bbox-cnn`` box regressor (``pipeline/detection/bbox_cnn.py``) on ``dpm`` outputs.

    python -m training.bbox_cnn                 # after train_dpm; writes models/bbox_cnn.safetensors

Samples: the shipped ``dpm`` detector is run on training images -- face-profiling renders
(ORL / Georgia Tech sources skipped; they serve evaluation) and real AFLW training crops
(padded by 25 % with replicated borders so the detector has context) -- and each detection that
overlaps its face (IoU >= 0.3 with the ground-truth box) becomes a sample; every sample is also
used with ``jitter`` random copies of its detector box (shift and scale noise), so the regressor
learns to correct detector noise it has not seen exactly. Ground truth: the AFLW-style box of the
renders; for an AFLW crop only the centre and max(w, h) are known (the crop is the 3DDFA square
of side sqrt(2) max(w, h)), so its aspect target is masked out of the loss.

Loss: smooth-L1 on t = (tx, ty, ts, tr) (Girshick 2015); Adam, cosine learning rate; 10 % of the
samples (by source image) held out for validation; deterministic. Writes the weights (safetensors)
and their entry in ``models/MANIFEST.json`` (sha256, config, training figures).
"""

from __future__ import annotations

import argparse
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

from pipeline.detection.bbox_cnn import BoxNet, crop_for, encode, to_input
from pipeline.detection.boxes import iou
from pipeline.detection.dpm import MODEL_DIR, DpmDetector
from training.loaders import (
    DEFAULT_RENDERS,
    SHARED,
    CropCnnConfig,
    padded_aflw_crop,
    train_crop_cnn,
    training_renders,
)

log = logging.getLogger("training.bbox_cnn")


@dataclass
class BboxTrainConfig(CropCnnConfig):
    jitter: int = 2
    shift: float = 0.08
    scale: float = 0.12
    threads: int = 1
    min_iou: float = 0.3


def collect(cfg: BboxTrainConfig, renders: Path, aflw: Path, det: DpmDetector) -> dict:
    """Crops, targets, aspect masks and validation flags from detector outputs."""
    import cv2

    from facedata.splits import aflw_validation_images

    rng = np.random.default_rng(cfg.seed)
    jobs = []
    if (renders / "annotations.jsonl").exists():
        rows = training_renders(renders)
        for i in rng.choice(len(rows), min(cfg.renders, len(rows)), replace=False):
            r = rows[i]
            jobs.append((renders / r["image"], tuple(r["box"]), True))
    val = aflw_validation_images()
    rows = [json.loads(line) for line in open(aflw / "annotations.jsonl")]
    rows = [r for r in rows if r["image"] not in val]
    for i in rng.choice(len(rows), min(cfg.aflw, len(rows)), replace=False):
        jobs.append((aflw / rows[i]["image"], None, False))
    crops, targets, masks, holdout, kinds = [], [], [], [], []
    found = 0
    for path, gt, has_aspect in tqdm(jobs, desc="detector outputs", unit="img"):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        if gt is None:  # AFLW crop: pad for context; gt square from the 3DDFA rule
            img, gt = padded_aflw_crop(img)
        dets = det.detect(img)
        best = max(dets, key=lambda d: iou(d.box, gt), default=None)
        if best is None or iou(best.box, gt) < cfg.min_iou:
            continue
        found += 1
        is_val = zlib.crc32(str(path).encode()) % 10 == 0
        boxes = [best.box]
        x0, y0, x1, y1 = best.box
        s = max(x1 - x0, y1 - y0)
        for _ in range(cfg.jitter):
            dx, dy = rng.uniform(-cfg.shift, cfg.shift, 2) * s
            k = math.exp(rng.uniform(-cfg.scale, cfg.scale))
            cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
            boxes.append((cx - k * s / 2, cy - k * s / 2, cx + k * s / 2, cy + k * s / 2))
        for j, b in enumerate(boxes):
            crops.append(crop_for(img, b))
            targets.append(encode(b, gt))
            masks.append([1, 1, 1, 1 if has_aspect else 0])
            holdout.append(is_val)
            kinds.append(0 if j == 0 else 1)
    log.info("detector matched %d of %d training faces", found, len(jobs))
    return {
        "crops": np.stack(crops),
        "t": np.stack(targets),
        "mask": np.asarray(masks, np.float32),
        "val": np.asarray(holdout),
        "raw": np.asarray(kinds) == 0,
        "found": found,
        "tried": len(jobs),
    }


def train(cfg: BboxTrainConfig, data: dict) -> tuple[BoxNet, dict]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    net = BoxNet(cfg.width)
    tr, va = ~data["val"], data["val"]
    x_tr, t_tr, m_tr = data["crops"][tr], torch.from_numpy(data["t"][tr]), torch.from_numpy(data["mask"][tr])

    def loss_of(idx, crops, flip):
        t = t_tr[idx].clone()
        t[torch.from_numpy(flip), 0] *= -1  # mirror: tx changes sign
        pred = net(to_input(crops))
        return (torch.nn.functional.smooth_l1_loss(pred, t, reduction="none", beta=0.05) * m_tr[idx]).mean()

    train_crop_cnn(net, x_tr, loss_of, cfg, "bbox-cnn")
    with torch.no_grad():
        pred = net(to_input(data["crops"][va])).numpy()
    err = np.abs(pred - data["t"][va])
    raw = data["raw"][va]
    stats = {
        "val_samples": int(va.sum()),
        "val_mae_center_raw_box": float(err[raw, :2].mean()),
        "val_mae_center_if_unrefined": float(np.abs(data["t"][va][raw, :2]).mean()),
        "val_mae_logscale_raw_box": float(err[raw, 2].mean()),
        "val_mae_logscale_if_unrefined": float(np.abs(data["t"][va][raw, 2]).mean()),
    }
    return net, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.bbox_cnn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = BboxTrainConfig()
    ap.add_argument("--renders-dir", type=Path, default=DEFAULT_RENDERS)
    ap.add_argument("--aflw-dir", type=Path, default=SHARED / "aflw_crops")
    ap.add_argument("--models", type=Path, default=MODEL_DIR, help="detector model folder (reads dpm, writes bbox-cnn)")
    ap.add_argument("--renders", type=int, default=d.renders, help="render images to sample")
    ap.add_argument("--aflw", type=int, default=d.aflw, help="AFLW training crops to sample")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--threads", type=int, default=d.threads)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from pipeline.detection.dpm import load_manifest
    from pipeline.manifest import save_state_dict, write_manifest

    cfg = BboxTrainConfig(renders=a.renders, aflw=a.aflw, epochs=a.epochs, threads=a.threads)
    torch.set_num_threads(cfg.threads)
    det = DpmDetector(min_face=40, threshold=-0.3, model_dir=a.models)
    t0 = time.time()
    data = collect(cfg, a.renders_dir, a.aflw_dir, det)
    t1 = time.time()
    net, stats = train(cfg, data)
    dest = a.models / "bbox_cnn.safetensors"
    digest = save_state_dict(net, dest)
    man = load_manifest(a.models)
    man["refiner"] = {
        "file": dest.name,
        "sha256": digest,
        "width": cfg.width,
        "config": asdict(cfg),
        "command": "python -m training.bbox_cnn " + " ".join(sys.argv[1:] if argv is None else argv),
        "samples": int(len(data["t"])),
        "faces_matched": data["found"],
        "faces_tried": data["tried"],
        "collect_seconds": round(t1 - t0, 1),
        "train_seconds": round(time.time() - t1, 1),
        **stats,
    }
    write_manifest(a.models, man)
    log.info("wrote %s: %s", dest, json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
