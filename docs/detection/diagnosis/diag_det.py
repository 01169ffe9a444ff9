import json, sys, numpy as np, time
sys.path.insert(0, '.')
from pipeline.imageio import load_image
from pipeline.detection.dpm import DpmDetector
from pipeline.registry import REFINERS
from landmarks.godp.infer import GodpLandmarker
root = '../shared/data/aflw2000_3d_dev'
ann = [json.loads(l) for l in open(f'{root}/annotations.jsonl')]
bins = [(0, 30), (30, 60), (60, 91)]
pick = []
for lo, hi in bins:
    pick += sorted((d for d in ann if lo <= abs(d["yaw"]) < hi), key=lambda d: d["image"])[:int(sys.argv[1])]
det = DpmDetector(threshold=float(sys.argv[2]), min_face=int(sys.argv[4]) if len(sys.argv) > 4 else 40)
ref = REFINERS.create('bbox-cnn')
lm = GodpLandmarker(n_rois=1, threads=1)
def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0])); iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    i = ix * iy; return i / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - i)
rows = []
t0 = time.time()
for k, d in enumerate(pick):
    img = load_image(f"{root}/{d['image']}")
    dets = det.detect(img)[:12]
    cands = []
    g, v = np.array(d['landmarks']), np.array(d['visible'], bool)
    x0, y0, x1, y1 = d['box']; s = np.sqrt((x1-x0)*(y1-y0))
    for dd in dets:
        r = ref.refine(img, dd)
        L = lm.predict(img, r.box)
        nme = np.linalg.norm(L.points[v]-g[v], axis=1).mean()/s*100
        cands.append(dict(score=dd.score, view=dd.view, raw=dd.box, box=r.box, iou=iou(r.box, d['box']), nme=nme,
                          lmscore=L.scores.tolist(), area=(r.box[2]-r.box[0])*(r.box[3]-r.box[1])))
    rows.append(dict(image=d['image'], yaw=d['yaw'], cands=cands))
    if k % 30 == 0: print(k, time.time()-t0, flush=True)
json.dump(rows, open(sys.argv[3], 'w'), default=float)
