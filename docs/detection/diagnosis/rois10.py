"""Session 10: does GoDP's own perturbed-ROI agreement tell a face from a face part or a background box?
For every image of a rec8.py record where two or more candidates pass the face check (after merging), each such
candidate box is re-run through GoDP on 16 perturbed ROIs (the paper's fusion: small jitter, half mirrored) and on
16 ROIs with a wide jitter (scale +-20 %, shift +-10 % of the side); per candidate it stores the fused landmark
confidence, the ROI spread (mean over points of the median distance of a ROI's point to the fused point, / box
side), the plain-vs-mirrored disagreement and the yaw-subspace vote share. sel10.py replays selection rules on them.
    python docs/detection/diagnosis/rois10.py runs/s8/rec_u256.json generated/uhdb31_256 runs/s10/rois_u256.json"""
import json, sys
from pathlib import Path
sys.path.insert(0, '.')
import numpy as np
from tqdm import tqdm
from landmarks.godp.infer import GodpLandmarker
from pipeline.detection.boxes import iou
from pipeline.detection.verify import landmark_confidence
from pipeline.imageio import load_image

rec, root, out_path = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
nets = {'p16': GodpLandmarker(n_rois=16), 'w16': GodpLandmarker(n_rois=16)}
nets['w16'].scale_jitter, nets['w16'].shift_jitter = 0.2, 0.1


def features(pts, sc, sub, side):
    med = np.median(pts, axis=0)                                # (L, 2)
    d = np.linalg.norm(pts - med[None], axis=-1)                 # (R, L)
    plain, mirr = np.median(pts[0::2], axis=0), np.median(pts[1::2], axis=0)
    votes = np.bincount(sub, minlength=16)
    return {'conf': landmark_confidence(np.median(sc, axis=0)), 'spread': float(np.median(d, axis=0).mean() / side),
            'flip': float(np.linalg.norm(plain - mirr, axis=-1).mean() / side), 'vote': float(votes.max() / len(sub))}


out = []
for r in tqdm(json.load(open(rec)), mininterval=30):
    kept = []
    for c in r['cands']:
        if c['p'] < r['floor'] or any(iou(c['box'], k['box']) > 0.5 for k in kept):
            continue
        kept.append(c)
    if len(kept) < 2:
        continue
    img = load_image(root / r['image'])
    boxes = [k['box'] for k in kept]
    side = [max(b[2] - b[0], b[3] - b[1]) for b in boxes]
    feats = {}
    for name, net in nets.items():
        pts, sc, sub = net.predict_rois(img, boxes)
        feats[name] = [features(p, s, k, sd) for p, s, k, sd in zip(pts, sc, sub, side)]
    out.append({'image': r['image'], 'cands': [dict(k, **{f'{n}_{key}': v for n in feats for key, v in feats[n][i].items()})
                                               for i, k in enumerate(kept)]})
Path(out_path).write_text(json.dumps(out))
print(len(out), 'contested images written to', out_path)
