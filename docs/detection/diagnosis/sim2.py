import json, sys, numpy as np, time
from pathlib import Path
sys.path.insert(0, '.')
from benchmarks.landmarks_nme import load_annotations
from landmarks.metrics import nme
from pipeline.imageio import load_image, to_gray
from pipeline.detection.dpm import DpmDetector
from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence
from pipeline.detection.landmark_box import box_from_landmarks
root = Path('../shared/data/aflw2000_3d_dev')
pick = load_annotations(root, 100)  # the check's faces: first 100 per yaw bin
det = DpmDetector(threshold=-0.6, min_face=40)
ver = LandmarkVerifyRefiner(candidates=12, largest=3, iterations=3)
rows = []; t0 = time.time()
for k, d in enumerate(pick):
    img = load_image(root / d['image'])
    gray = to_gray(img)
    dets = det.detect(img)
    pool = ver._pool(dets)
    g, v = np.array(d['landmarks']), np.array(d['visible'], bool)
    recs = []
    if pool:
        boxes = ver.boxnet.predict(gray, [p.box for p in pool])
        for it in range(4):
            lms = ver.godp.predict_batch(gray, boxes)
            recs.append([(landmark_confidence(l.scores), nme(l.points, g, v, d['box']), b) for l, b in zip(lms, boxes)])
            boxes = [box_from_landmarks(l.points, ver.W) for l in lms]
    srank = np.argsort(np.argsort([-p.score for p in pool])) if pool else []
    arank = np.argsort(np.argsort([-p.area for p in pool])) if pool else []
    rows.append(dict(image=d['image'], yaw=d['yaw'], ndet=len(dets), srank=list(srank), arank=list(arank), recs=recs))
    if k % 30 == 0: print(k, time.time() - t0, flush=True)
json.dump(rows, open('runs/sim2.json', 'w'), default=float)
