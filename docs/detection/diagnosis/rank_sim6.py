"""Session 7: re-score the session-6 candidate records (sim6.py outputs: landmark confidence, box and hit of
every candidate, epoch-9 GoDP) with another face check (CNN on the box crop, fused with the recorded
confidence) and rank the candidates above its floor by confidence, p(face), the CNN logit or confidence +
k x logit; yaw -90 synthetic probes (128 px) and the 300 AFLW2000-3D check faces.
    python docs/detection/diagnosis/rank_sim6.py MODEL_DIR [FLOOR]"""
import sys, json
import numpy as np
sys.path.insert(0, '.')
from pathlib import Path
from pipeline.detection.face_check import FaceCheck
from pipeline.imageio import load_image, to_gray
from benchmarks.landmarks_nme import load_annotations
fc = FaceCheck(Path(sys.argv[1]))
floor = float(sys.argv[2]) if len(sys.argv) > 2 else fc.floor
def load(path, root):
    out = []
    for r in json.load(open(path)):
        if not r['cands']:
            out.append((r['image'], None)); continue
        g = to_gray(load_image(root / r['image'])).astype(np.uint8)
        boxes = [tuple(c['box']) for c in r['cands']]; conf = np.array([c['conf'] for c in r['cands']])
        z = fc.logits(g, boxes)
        out.append((r['image'], dict(conf=conf, z=z, p=fc.probability(g, boxes, conf), hit=np.array([c['hit'] for c in r['cands']]))))
    return out
U = load('runs/s6/sim6_u128.json', Path('generated/uhdb31_128'))
A = load('runs/s6/sim6_a.json', Path('../shared/data/aflw2000_3d_dev'))
ann = {a['image']: a for a in load_annotations(Path('../shared/data/aflw2000_3d_dev'), 100)}
yb = np.array([min(int(abs(ann[n]['yaw']) // 30), 2) for n, _ in A])
rules = {'conf': lambda c: c['conf'], 'p': lambda c: c['p'], 'z': lambda c: c['z'],
         **{f'conf+{k}z': (lambda k: lambda c: c['conf'] + k * np.clip(c['z'], -10, 10))(k) for k in (0.01, 0.02, 0.05, 0.1)}}
def rate(S, rule):
    h = []
    for n, c in S:
        if c is None: h.append(False); continue
        ok = [i for i in np.argsort(-rule(c)) if c['p'][i] >= floor]
        h.append(bool(ok) and bool(c['hit'][ok[0]]))
    return np.array(h)
for name, rule in rules.items():
    u = rate(U, rule); a = rate(A, rule)
    pose = [round(100 * np.mean([u[i] for i, (n, _) in enumerate(U) if p in n]), 1) for p in ('p-30', 'p+00', 'p+30')]
    print(f'{name:10s} uhdb31-128 yaw-90 {100*u.mean():.1f} {pose} | aflw2000 {[round(100*a[yb==b].mean(),1) for b in range(3)]} {100*a.mean():.1f}')
