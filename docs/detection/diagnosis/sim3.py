"""Session 4: the default lm-verify pool (4 best + 3 largest, 2 iterations) on N faces per yaw bin of
the AFLW2000-3D dev half, every candidate recorded with its landmark confidence, NME-vis against the
annotation, box, and the SFM fit (mean reprojection residual / box side, shape-coefficient norm,
fitted yaw) -- to see whether the 3D fit tells a face from an ear or an eye the network scores
confidently.   python docs/detection/diagnosis/sim3.py 100 runs/sim3.json"""
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, '.')
from benchmarks.landmarks_nme import load_annotations
from landmarks.metrics import nme
from pipeline.errors import FaceError
from pipeline.imageio import load_image, to_gray
from pipeline.detection.dpm import DpmDetector
from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence
from recon3d.fit import SfmFitter
root = Path('../shared/data/aflw2000_3d_dev')
pick = load_annotations(root, int(sys.argv[1]))
det = DpmDetector(threshold=-0.6, min_face=40)
ver = LandmarkVerifyRefiner()
fitter = SfmFitter()
rows = []; t0 = time.time()
for k, d in enumerate(pick):
    img = load_image(root / d['image'])
    gray = to_gray(img)
    dets = det.detect(img)
    pool = ver._pool(dets)
    g, v = np.array(d['landmarks']), np.array(d['visible'], bool)
    cands = []
    if pool:
        boxes, lms = ver.converge(gray, pool)
        for p, b, l in zip(pool, boxes, lms):
            side = float(np.sqrt((b[2] - b[0]) * (b[3] - b[1])))
            try:
                f = fitter.fit_points(l.points, l.visible, l.scores)
                fit = dict(res=f.residual / side, cnorm=float(np.linalg.norm(f.coeffs)), fyaw=float(f.camera['yaw']))
            except FaceError:
                fit = dict(res=1.0, cnorm=99.0, fyaw=0.0)
            cands.append(dict(conf=landmark_confidence(l.scores), scores=[float(s) for s in l.scores],
                              nvis=int(np.sum(l.visible)), nme=float(nme(l.points, g, v, d['box'])),
                              box=[float(x) for x in b], det_score=float(p.score), view=p.view,
                              side_frac=side / max(img.shape[:2]), **fit))
    rows.append(dict(image=d['image'], yaw=d['yaw'], cands=cands))
    if k % 30 == 0: print(k, round(time.time() - t0), flush=True)
json.dump(rows, open(sys.argv[2], 'w'))
