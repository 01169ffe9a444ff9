"""Selection rules on the sim3.py candidates: landmark confidence alone (the shipped rule) vs adding
the 3D-fit plausibility (reprojection residual / box side, shape-coefficient norm).
    python docs/detection/diagnosis/ana_sim3.py runs/sim3.json"""
import json, sys
import numpy as np
rows = json.load(open(sys.argv[1]))
def binof(y): y = abs(y); return 0 if y < 30 else 1 if y < 60 else 2
def ev(name, key, floor=0.55):
    good, n = np.zeros(3), np.zeros(3)
    for r in rows:
        b = binof(r['yaw']); n[b] += 1
        c = [x for x in r['cands'] if x['conf'] >= floor]
        if c:
            good[b] += max(c, key=key)['nme'] < 10
    print(f"{name:44s} " + " ".join(f"{g:.0f}/{m:.0f}" for g, m in zip(good, n)) + f"  all {100 * good.sum() / n.sum():.1f}")
ev('oracle', lambda x: -x['nme'], floor=-1)
ev('confidence (shipped)', lambda x: x['conf'])
for lam in (0.5, 1, 2, 4, 8):
    ev(f'conf - {lam} * residual/side', lambda x: x['conf'] - lam * x['res'])
for lam in (0.005, 0.01, 0.02, 0.04):
    ev(f'conf - {lam} * |alpha|', lambda x: x['conf'] - lam * x['cnorm'])
for lam in (0.1, 0.2, 0.4):
    ev(f'conf + {lam} * side_frac', lambda x: x['conf'] + lam * x['side_frac'])
print('misses (shipped rule): chosen vs best candidate')
for r in rows:
    c = [x for x in r['cands'] if x['conf'] >= 0.55]
    if not c: print(r['image'], f"yaw {r['yaw']:.0f}: no candidate above the floor"); continue
    ch = max(c, key=lambda x: x['conf'])
    if ch['nme'] >= 10:
        o = min(r['cands'], key=lambda x: x['nme'])
        print(r['image'], f"yaw {r['yaw']:.0f} chosen nme {ch['nme']:.1f} conf {ch['conf']:.2f} res {ch['res']:.3f} |a| {ch['cnorm']:.1f} side {ch['side_frac']:.2f} | best nme {o['nme']:.1f} conf {o['conf']:.2f} res {o['res']:.3f} |a| {o['cnorm']:.1f} side {o['side_frac']:.2f}")
