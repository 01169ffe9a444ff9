import json, sys, numpy as np, time
sys.path.insert(0, '.')
from pipeline.imageio import load_image, to_gray
from pipeline.detection.dpm import DpmDetector
from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence
from pipeline.detection.landmark_box import box_from_landmarks
root = '../shared/data/aflw2000_3d_dev'
ann = [json.loads(l) for l in open(f'{root}/annotations.jsonl')]
bins = [(0, 30), (30, 60), (60, 91)]
pick = []
for lo, hi in bins:
    pick += sorted((d for d in ann if lo <= abs(d["yaw"]) < hi), key=lambda d: d["image"])[:100]
det = DpmDetector(threshold=-0.6, min_face=40)
ver = LandmarkVerifyRefiner(candidates=12, largest=3, iterations=3)
rows = []; t0 = time.time()
for k, d in enumerate(pick):
    img = load_image(f"{root}/{d['image']}")
    gray = to_gray(img)
    dets = det.detect(img)
    pool = ver._pool(dets)
    g, v = np.array(d['landmarks']), np.array(d['visible'], bool)
    x0, y0, x1, y1 = d['box']; s = np.sqrt((x1-x0)*(y1-y0))
    recs = []
    if pool:
        boxes = ver.boxnet.predict(gray, [p.box for p in pool])
        for it in range(4):
            lms = ver.godp.predict_batch(gray, boxes)
            recs.append([(landmark_confidence(l.scores), np.linalg.norm(l.points[v]-g[v], axis=1).mean()/s*100, b) for l, b in zip(lms, boxes)])
            boxes = [box_from_landmarks(l.points, ver.W) for l in lms]
    srank = np.argsort(np.argsort([-p.score for p in pool])) if pool else []
    arank = np.argsort(np.argsort([-p.area for p in pool])) if pool else []
    rows.append(dict(image=d['image'], yaw=d['yaw'], ndet=len(dets), srank=list(srank), arank=list(arank), recs=recs))
    if k % 30 == 0: print(k, time.time() - t0, flush=True)
json.dump(rows, open('runs/sim2.json', 'w'), default=float)
