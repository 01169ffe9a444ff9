"""Session 9: what a face check (MODEL_DIR) does to lm-verify's selection on rec8.py candidate records:
first face matches per pose (UHDB31 corner probes) or per abs(yaw) bin 0 / 1 / 2 (AFLW2000-3D, box test) with
its p(face) as the gate at several floors, and with other rankings of the gated candidates (landmark
confidence = the shipped rule, p(face), confidence + k x CNN logit); 'oracle' = a probe with any matching
candidate at all.
    python docs/detection/diagnosis/sel9.py MODEL_DIR runs/s8/rec_u256.json:generated/uhdb31_256 \
        runs/s9/rec_u128.json:generated/uhdb31_128 runs/s8/rec_a.json:../shared/data/aflw2000_3d_dev"""
import json, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
sys.path.insert(0, '.')
from pipeline.detection.boxes import box_matches
from pipeline.detection.face_check import FaceCheck, fuse
from pipeline.detection.verify import LandmarkVerifyRefiner
from pipeline.imageio import load_image, to_gray
fc = FaceCheck(Path(sys.argv[1]))
print('check floor', round(fc.floor, 3), 'contexts', fc.contexts)
rankings = {'conf': lambda c, z, p: c, 'p': lambda c, z, p: p,
            **{f'c+{k}z': (lambda k: lambda c, z, p: c + k * np.clip(z, -10, 10))(k) for k in (0.01, 0.02, 0.05)}}
def key_of(r):
    return r['image'].split('/')[-1][:-4] if '_p' in r['image'] else str(min(int(abs(r['yaw']) // 30), 2))
def table(per):
    return {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per.items())}, sum(sum(v) for v in per.values())
for spec in sys.argv[2:]:
    path, root = spec.split(':', 1)
    recs = json.load(open(path))
    Z = [fc.logits(to_gray(load_image(Path(root) / r['image'])).astype(np.uint8), [tuple(c['box']) for c in r['cands']])
         if r['cands'] else np.zeros(0) for r in recs]
    oracle = {}
    for r in recs:
        oracle.setdefault(key_of(r), []).append(any(c['hit'] for c in r['cands']))
    print(path, 'oracle', *table(oracle))
    for name, rank in rankings.items():
        for floor in ((0.1, 0.3, 0.5, fc.floor, 0.7) if name == 'conf' else (fc.floor,)):
            per = {}
            for r, z in zip(recs, Z):
                conf = np.array([c['conf'] for c in r['cands']])
                p = fuse(z, conf, fc.coef) if len(z) else np.zeros(0)
                sc = sorted([(float(rank(ci, zi, pi)), float(pi), tuple(c['box']), 'v') for ci, zi, pi, c in zip(conf, z, p, r['cands'])],
                            key=lambda t: -t[0])
                out = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=False, floor=floor, merge_iou=0.5), sc)
                per.setdefault(key_of(r), []).append(bool(out) and box_matches(out[0].box, r['gt']))
            print(path, f'rank {name:7s} floor {floor:.3f}', *table(per))
