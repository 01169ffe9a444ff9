import json, sys, numpy as np, time
from pathlib import Path
sys.path.insert(0, '.')
from benchmarks.landmarks_nme import load_annotations
from landmarks.metrics import nme
from pipeline.detection.boxes import iou
from pipeline.imageio import load_image
from pipeline.detection.dpm import DpmDetector
from pipeline.registry import REFINERS
from landmarks.godp.infer import GodpLandmarker
root = Path('../shared/data/aflw2000_3d_dev')
pick = load_annotations(root, int(sys.argv[1]))  # the check's faces: first N per yaw bin
det = DpmDetector(threshold=float(sys.argv[2]), min_face=int(sys.argv[4]) if len(sys.argv) > 4 else 40)
ref = REFINERS.create('bbox-cnn')
lm = GodpLandmarker(n_rois=1, threads=1)
rows = []
t0 = time.time()
for k, d in enumerate(pick):
    img = load_image(root / d['image'])
    dets = det.detect(img)[:12]
    cands = []
    g, v = np.array(d['landmarks']), np.array(d['visible'], bool)
    for dd in dets:
        r = ref.refine(img, dd)
        L = lm.predict(img, r.box)
        cands.append(dict(score=dd.score, view=dd.view, raw=dd.box, box=r.box, iou=iou(r.box, d['box']), nme=nme(L.points, g, v, d['box']),
                          lmscore=L.scores.tolist(), area=(r.box[2]-r.box[0])*(r.box[3]-r.box[1])))
    rows.append(dict(image=d['image'], yaw=d['yaw'], cands=cands))
    if k % 30 == 0: print(k, time.time()-t0, flush=True)
json.dump(rows, open(sys.argv[3], 'w'), default=float)
