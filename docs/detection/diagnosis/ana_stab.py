import json, numpy as np
import sys; sys.path.insert(0, '.')
from pipeline.detection.boxes import iou
rows = json.load(open('runs/sim2.json'))
def binof(y): y = abs(y); return 0 if y < 30 else 1 if y < 60 else 2
for name, f in [('conf', lambda c, s, a: c), ('conf*stab', lambda c, s, a: c * s), ('conf*stab^2', lambda c, s, a: c * s * s),
                ('conf+0.5stab', lambda c, s, a: c + 0.5 * s), ('conf*sqrt(stab)', lambda c, s, a: c * np.sqrt(s)),
                ('conf + 0.1 log area', lambda c, s, a: c + 0.1*np.log(a)), ('conf*stab + 0.05 log area', lambda c, s, a: c*s + 0.05*np.log(a))]:
    good = np.zeros(3); cnt = np.zeros(3)
    for r in rows:
        b = binof(r['yaw']); cnt[b] += 1
        if not r['recs']: continue
        sel = [i for i in range(len(r['recs'][0])) if r['srank'][i] < 4 or r['arank'][i] < 3]
        def score(i):
            c = r['recs'][2][i][0]; bx = r['recs'][2][i][2]; nx = r['recs'][3][i][2]
            return f(c, iou(bx, nx), (bx[2]-bx[0])*(bx[3]-bx[1]))
        best = max(sel, key=score)
        good[b] += r['recs'][2][best][1] < 10
    print(f"{name:28s}", ' '.join(f'{x:.0f}' for x in good), 'all %.1f' % (100 * good.sum() / cnt.sum()))
