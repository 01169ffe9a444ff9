"""Session 5: what changed the AFLW2000-3D dev detection check -- the face check (p(face) instead of the
landmark confidence) or MMOD's enlarged copy of small images? N faces per yaw bin (the check's faces),
dpm proposals + MMOD boxes with and without the enlargement; the union of the two lm-verify pools is
re-centred once, every candidate recorded with its landmark confidence, face-check logit and NME-vis
(1-ROI landmarks) against the annotation.
    python docs/detection/diagnosis/sim5.py 100 runs/sim5.json [BIN]     (BIN: 0-30, 30-60 or 60-90)
On a synthetic UHDB31-protocol set instead (the probes of one pitch at yaw +-90, every STEP-th):
    python docs/detection/diagnosis/sim5.py uhdb31:generated/uhdb31_128:-30:2 runs/sim5_u128.json"""
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, '.')
from benchmarks.landmarks_nme import load_annotations
from landmarks.metrics import nme
from pipeline.imageio import load_image, to_gray
from pipeline.detection.union import DpmMmodDetector
from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence
if sys.argv[1].startswith('uhdb31:'):
    _, root, pitch, step = sys.argv[1].split(':')
    root = Path(root)
    pick = [r for r in (json.loads(l) for l in open(root / 'annotations.jsonl'))
            if abs(r['yaw']) == 90 and r['pitch'] == int(pitch)][::int(step)]
else:
    root = Path('../shared/data/aflw2000_3d_dev')
    pick = load_annotations(root, int(sys.argv[1]))
if len(sys.argv) > 3:
    lo, hi = (float(v) for v in sys.argv[3].split('-'))
    pick = [d for d in pick if lo <= abs(d['yaw']) < hi]
modes = {'enlarge': DpmMmodDetector(threshold=-0.6), 'plain': DpmMmodDetector(threshold=-0.6, mmod_enlarge=False)}
ver = LandmarkVerifyRefiner()
rows = []; t0 = time.time()
for k, d in enumerate(pick):
    img = load_image(root / d['image'])
    gray = to_gray(img)
    dets = modes['plain'].dpm.detect(img)  # dpm runs once; each mode adds its own MMOD boxes
    pools = {m: [tuple(map(float, x.box)) for x in ver._pool(det.join(dets, det._mmod(img)))]
             for m, det in modes.items()}
    keys = sorted(set(pools['enlarge']) | set(pools['plain']))
    g, v = np.array(d['landmarks']), np.array(d['visible'], bool)
    cands = {}
    if keys:
        from pipeline.types import Detection
        boxes, lms = ver.converge(gray, [Detection(b, 0.0, '') for b in keys])
        z = ver.check.logits(gray, boxes)
        for key, b, l, zi in zip(keys, boxes, lms, z):
            cands[str(key)] = dict(conf=landmark_confidence(l.scores), logit=float(zi), box=[float(x) for x in b],
                                   nme=float(nme(l.points, g, v, d['box'])))
    rows.append(dict(image=d['image'], yaw=d['yaw'], cands=cands, pools={m: [str(b) for b in p] for m, p in pools.items()}))
    print(k, len(keys), f'{time.time() - t0:.0f}s', flush=True)
json.dump(rows, open(sys.argv[2], 'w'))
