"""Session 7: would a scale-consistency test separate the face from the wrong first faces at pitch +30?
For every probe of the given poses, every front-end candidate (shipped dpm+mmod -> lm-verify pool ->
re-centred box, landmark confidence, p(face)) is re-read by GoDP (1 ROI) on its box shrunk to
``SHRINK`` of its side around the same centre, the landmark-box regressor gives the box that reading
implies, and its IoU with the candidate's box is recorded (a face should keep its box; a box 2x the
face should collapse onto it). Hit: the candidate's box matches the annotated box.
    python docs/detection/diagnosis/scale7.py generated/uhdb31_256 "90,30;-90,30" runs/s7/scale7_256.json"""
import csv, json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, '.')
from pipeline.detection.boxes import box_matches, iou
from pipeline.detection.landmark_box import box_from_landmarks
from pipeline.detection.union import DpmMmodDetector
from pipeline.detection.verify import LandmarkVerifyRefiner
from pipeline.imageio import load_image, to_gray

SHRINK = 0.7
root, poses, out_path = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
want = {tuple(int(v) for v in p.split(',')) for p in poses.split(';')}
rows = [r for r in csv.DictReader(open(root / 'manifest.csv'))
        if r['role'] == 'probe' and (int(float(r['yaw'])), int(float(r['pitch']))) in want]
det, ver = DpmMmodDetector(threshold=DpmMmodDetector.proposal_threshold), LandmarkVerifyRefiner()
out, t0 = [], time.time()
for k, r in enumerate(rows):
    img = load_image(root / r['path'])
    gray = to_gray(img).astype(np.uint8)
    gt = tuple(float(r[c]) for c in ('box_x0', 'box_y0', 'box_x1', 'box_y1'))
    sc = ver.scored(img, det.detect(img))
    cands = []
    if sc:
        small = []
        for _, _, b, _ in sc:
            cx, cy, w, h = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) * SHRINK, (b[3] - b[1]) * SHRINK
            small.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        lms = ver.godp.predict_batch(gray, small)
        for (conf, p, b, _), lm in zip(sc, lms):
            back = box_from_landmarks(lm.points, ver.W)
            cands.append(dict(conf=conf, p=p, box=list(b), hit=bool(box_matches(b, gt)), keep=float(iou(back, b)),
                              ratio=float(np.sqrt((back[2] - back[0]) * (back[3] - back[1]) / max((b[2] - b[0]) * (b[3] - b[1]), 1e-6)))))
    out.append(dict(image=r['path'], floor=ver.floor, cands=cands))
    if k % 20 == 0:
        print(k, len(rows), f'{time.time() - t0:.0f}s', flush=True)
json.dump(out, open(out_path, 'w'))
