"""Session 9: re-score rec8.py candidate records (landmark confidence, box, hit of every lm-verify candidate)
with another face check (its CNN on each box, fused with the recorded confidence, its own floor) and replay
LandmarkVerifyRefiner.select; first face matches per pose (UHDB31 corner probes) or per abs(yaw) bin 0 / 1 / 2
(AFLW2000-3D, box test), next to the recorded (shipped) scores.
    python docs/detection/diagnosis/rescore9.py MODEL_DIR runs/s8/rec_u256.json:generated/uhdb31_256 \
        runs/s8/rec_a.json:../shared/data/aflw2000_3d_dev"""
import json, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
sys.path.insert(0, '.')
from pipeline.detection.boxes import box_matches
from pipeline.detection.face_check import FaceCheck
from pipeline.detection.verify import LandmarkVerifyRefiner
from pipeline.imageio import load_image, to_gray
fc = FaceCheck(Path(sys.argv[1]))
print('new check floor', round(fc.floor, 3), 'fusion', [round(v, 3) for v in fc.coef])
for spec in sys.argv[2:]:
    path, root = spec.split(':', 1)
    tallies = {'recorded': {}, 'new': {}}
    for r in json.load(open(path)):
        key = r['image'].split('/')[-1][:-4] if 'yaw' in r and 'images/' in r['image'] and '_p' in r['image'] \
            else f"{min(int(abs(r['yaw']) // 30), 2)}"
        boxes = [tuple(c['box']) for c in r['cands']]
        conf = np.array([c['conf'] for c in r['cands']])
        p_new = fc.probability(to_gray(load_image(Path(root) / r['image'])).astype(np.uint8), boxes, conf) \
            if boxes else np.zeros(0)
        for name, p, floor in (('recorded', [c['p'] for c in r['cands']], r['floor']), ('new', p_new, fc.floor)):
            sc = [(float(c), float(q), b, 'v') for c, q, b in zip(conf, p, boxes)]
            out = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=False, floor=floor, merge_iou=0.5), sc)
            tallies[name].setdefault(key, []).append(bool(out) and box_matches(out[0].box, r['gt']))
    for name, per in tallies.items():
        print(path, f'{name:8s}', {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per.items())}, sum(sum(v) for v in per.values()))
