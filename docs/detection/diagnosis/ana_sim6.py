"""Analysis of sim6.py: per file, the share of images whose first face (the best-scored candidate among
those with p(face) >= the face check's floor) is a hit, for ranking rules built from the candidate's
1-ROI landmark confidence (conf, shipped), the 8-ROI confidence (conf8), the 8-ROI spread and the
mirror disagreement (flip); 'oracle': some candidate above the floor is a hit.
    python docs/detection/diagnosis/ana_sim6.py runs/s6/sim6_prof.json runs/s6/sim6_a.json ..."""
import json, sys
import numpy as np
sys.path.insert(0, '.')
from pipeline.detection.face_check import FaceCheck

floor = FaceCheck().floor
RULES = {'conf (shipped)': lambda c: c['conf'], 'conf8': lambda c: c['conf8'], 'p': lambda c: c['p']}
for lam in (1, 2, 4, 8):
    RULES[f'conf-{lam}*spread'] = (lambda lam: lambda c: c['conf'] - lam * c['spread'])(lam)
    RULES[f'conf8-{lam}*spread'] = (lambda lam: lambda c: c['conf8'] - lam * c['spread'])(lam)
for lam in (0.25, 0.5, 1):
    RULES[f'conf-{lam}*flip'] = (lambda lam: lambda c: c['conf'] - lam * c['flip'])(lam)


def rate(rows, score, use_floor=True):
    ok = []
    for r in rows:
        cs = [c for c in r['cands'] if c['p'] >= floor or not use_floor]
        ok.append(bool(cs) and max(cs, key=score)['hit'])
    return 100 * np.mean(ok)


sets = {f: json.load(open(f)) for f in sys.argv[1:]}
print(f"{'rule':>20} " + " ".join(f"{f.split('/')[-1][:16]:>16}" for f in sets) + "   (n: " +
      ", ".join(str(len(r)) for r in sets.values()) + f"; floor {floor:.3f})")
for name, score in RULES.items():
    print(f"{name:>20} " + " ".join(f"{rate(rows, score):16.1f}" for rows in sets.values()))
print(f"{'oracle':>20} " + " ".join(
    f"{100 * np.mean([any(c['hit'] and c['p'] >= floor for c in r['cands']) for r in rows]):16.1f}" for rows in sets.values()))
print(f"{'oracle (no floor)':>20} " + " ".join(
    f"{100 * np.mean([any(c['hit'] for c in r['cands']) for r in rows]):16.1f}" for rows in sets.values()))
