import json, numpy as np
rows = json.load(open('runs/sim2.json'))
def binof(y): y = abs(y); return 0 if y < 30 else 1 if y < 60 else 2
def run(N, Lg, iters, prune=None, thr=0.0):
    good = np.zeros(3); cnt = np.zeros(3); crops = 0; rej = 0
    for r in rows:
        b = binof(r['yaw']); cnt[b] += 1
        if not r['recs']: continue
        sel = [i for i in range(len(r['recs'][0])) if r['srank'][i] < N or r['arank'][i] < Lg]
        crops += len(sel)
        if prune is not None:  # after the first pass keep the `prune` most confident
            sel = sorted(sel, key=lambda i: -r['recs'][0][i][0])[:prune]
        crops += len(sel) * iters
        rec = r['recs'][iters]
        best = max(sel, key=lambda i: rec[i][0])
        if rec[best][0] < thr: rej += 1; continue
        good[b] += rec[best][1] < 10
    return good, cnt, crops / len(rows), rej
for N, Lg, it, pr in [(8,0,2,None),(8,2,2,None),(12,3,2,None),(12,3,3,None),(4,2,2,None),(6,2,2,None),(8,2,1,None),(8,2,3,None),(8,2,2,3),(8,2,3,3),(12,3,3,3),(12,3,3,4),(8,2,2,2)]:
    g, c, cr, rej = run(N, Lg, it, pr)
    print(f"N={N:2d} L={Lg} it={it} prune={pr}: " + " ".join(f"{x:.0f}" for x in g), f"all {100*g.sum()/c.sum():.1f}  crops/img {cr:.1f}")
# confidence of chosen-correct vs chosen-wrong
ok, bad = [], []
for r in rows:
    if not r['recs']: continue
    rec = r['recs'][2]
    for conf, e, _ in rec:
        (ok if e < 10 else bad).append(conf)
print('conf correct: pcts', np.percentile(ok, [1, 5, 10, 50]).round(3), 'wrong:', np.percentile(bad, [50, 90, 95, 99]).round(3))
for thr in (0.3, 0.35, 0.4, 0.45):
    g, c, cr, rej = run(8, 2, 2, 3, thr)
    print('thr', thr, 'all %.1f' % (100*g.sum()/c.sum()), 'rejected', rej)
print('no candidates:', sum(1 for r in rows if not r['recs']))
print('---')
for N, Lg, it, pr in [(4,3,2,None),(4,4,2,None),(2,3,2,None),(3,3,2,None),(6,3,2,None),(4,3,3,None),(4,3,2,4),(6,4,2,None)]:
    g, c, cr, rej = run(N, Lg, it, pr)
    print(f"N={N:2d} L={Lg} it={it} prune={pr}: " + " ".join(f"{x:.0f}" for x in g), f"all {100*g.sum()/c.sum():.1f}  crops/img {cr:.1f}")
for thr in (0.45, 0.5, 0.55):
    g, c, cr, rej = run(4, 3, 2, None, thr)
    print('N4L3 thr', thr, 'all %.1f' % (100*g.sum()/c.sum()), 'rejected', rej)
