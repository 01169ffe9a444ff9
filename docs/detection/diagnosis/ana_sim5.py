"""Analysis of sim5.py: per source file, the share of images whose top candidate (above the floor) has
1-ROI NME-vis < 10 % (AFLW2000-3D) or matches the annotated box (UHDB31-protocol files, *u128* / *u256*), for each pool (MMOD copy enlarged or not) x ranking rule:
  conf           landmark confidence, floor 0.65 (session 4)
  p              fused p(face) of the face check, its trained floor
  gate           candidates with p(face) >= the floor, ranked by landmark confidence
  conf+L*s(z)    landmark confidence + L x sigmoid(CNN logit), floor on p(face) of the top one
    python docs/detection/diagnosis/ana_sim5.py runs/sim5_a.json runs/sim5_b.json ..."""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, '.')
from pipeline.detection.boxes import box_matches
from pipeline.detection.face_check import FaceCheck, fuse
fc = FaceCheck()


def rules():
    yield 'conf', lambda c, z, p: c, lambda c, z, p: c >= 0.65
    yield 'p', lambda c, z, p: p, lambda c, z, p: p >= fc.floor
    yield 'p (no floor)', lambda c, z, p: p, lambda c, z, p: True
    yield 'gate', lambda c, z, p: c + 10.0 * (p >= fc.floor), lambda c, z, p: p >= fc.floor
    for lam in (0.1, 0.2, 0.3, 0.5):
        yield f'conf+{lam}*s(z)', (lambda lam: lambda c, z, p: c + lam / (1 + np.exp(-z)))(lam), lambda c, z, p: p >= fc.floor


GT = {}  # synthetic sets: success = the box matches the annotated box (GoDP's landmarks on the renders are poor)
for res in (128, 256):
    f = Path(f'generated/uhdb31_{res}/annotations.jsonl')
    if f.exists():
        GT[res] = {r['image']: r['box'] for r in (json.loads(l) for l in open(f))}


def good(x, r, res):
    if res is None:
        return x['nme'] < 10
    return box_matches(x['box'], GT[res][r['image']])


def rate(rows, pool, score, keep, res=None):
    ok = []
    for r in rows:
        cs = [r['cands'][k] for k in r['pools'][pool]]
        if not cs:
            ok.append(False)
            continue
        c = np.array([x['conf'] for x in cs]); z = np.array([x['logit'] for x in cs])
        p = fuse(z, c, fc.coef)
        s = score(c, z, p)
        i = int(np.argmax(s))
        ok.append(bool(keep(c[i], z[i], p[i])) and good(cs[i], r, res))
    return 100 * np.mean(ok)


sets = {f: json.load(open(f)) for f in sys.argv[1:]}
resof = {f: (128 if 'u128' in f else 256 if 'u256' in f else None) for f in sets}
print(f"{'pool':>8} {'rule':>16} " + " ".join(f"{f.split('/')[-1][:14]:>14}" for f in sets))
for pool in ('plain', 'enlarge'):
    for name, score, keep in rules():
        print(f"{pool:>8} {name:>16} " + " ".join(f"{rate(rows, pool, score, keep, resof[f]):14.1f}" for f, rows in sets.items()))
    print(f"{pool:>8} {'oracle':>16} " + " ".join(
        f"{100 * np.mean([any(good(r['cands'][k], r, resof[f]) for k in r['pools'][pool]) for r in rows]):14.1f}"
        for f, rows in sets.items()))
