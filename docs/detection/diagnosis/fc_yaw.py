"""Session 6: the face check's recall on face-profiling render faces per abs(yaw) bin, and the share of
non-face candidates passing, at the shipped floor and lower ones, from a train_face_check cache
(``--cache F``; the held-out 10 % of source images = 'val', everything = 'all').
    python docs/detection/diagnosis/fc_yaw.py runs/s6/fc_cache.npz"""
import json, sys
import numpy as np
sys.path.insert(0, '.')
from pipeline.detection.face_check import FaceCheck, fuse
from pipeline.detection.train_face_check import logits_of

fc = FaceCheck()
z = np.load(sys.argv[1], allow_pickle=False)
yaw = {r['image']: abs(r['yaw']) for r in (json.loads(l) for l in open('generated/profiling/annotations.jsonl'))}
p = fuse(logits_of(fc.net, z['crops']), z['conf'], fc.coef)
y, kind = z['y'] > 0.5, z['kind']
ay = np.array([yaw.get(s.split('generated/profiling/')[-1], np.nan) if k == 'render' else np.nan
               for s, k in zip(z['src'], kind)])
for name, m in (('val', z['val']), ('all', np.ones(len(y), bool))):
    for lo, hi in ((0, 30), (30, 60), (60, 75), (75, 91)):
        f = m & y & (kind == 'render') & (ay >= lo) & (ay < hi)
        print(f"{name} render faces |yaw| {lo}-{hi}: n {f.sum()}, recall at the floor {fc.floor:.3f}: "
              f"{(p[f] >= fc.floor).mean():.3f}, at 0.5: {(p[f] >= 0.5).mean():.3f}, median landmark conf {np.median(z['conf'][f]):.2f}")
    f = m & y & (kind == 'aflw')
    print(f"{name} AFLW crop faces: n {f.sum()}, recall at the floor {(p[f] >= fc.floor).mean():.3f}")
    neg = m & ~y
    print(f"{name} non-face candidates (n {neg.sum()}) passing: " +
          ", ".join(f"{t:.3f}: {(p[neg] >= t).mean():.4f}" for t in (fc.floor, 0.6, 0.5, 0.4, 0.3)))
