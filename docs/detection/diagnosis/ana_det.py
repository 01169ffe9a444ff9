import json, numpy as np, sys
rows = json.load(open(sys.argv[1] if len(sys.argv) > 1 else 'runs/diag_det.json'))
def binof(y): y=abs(y); return 0 if y<30 else 1 if y<60 else 2
def ev(name, pick, thr=None):
    good = np.zeros(3); n = np.zeros(3); none = np.zeros(3)
    for r in rows:
        b = binof(r['yaw']); n[b]+=1
        c = [x for x in r['cands'] if thr is None or x['score'] >= thr]
        if not c: none[b]+=1; continue
        x = pick(c)
        good[b] += x['nme'] < 10
    print(f"{name:40s} " + " ".join(f"{g:.0f}/{m:.0f}" for g,m in zip(good,n)), f"all {100*good.sum()/n.sum():.1f}  nocand {none}")
ev('largest@0', lambda c: max(c, key=lambda x: x['area']), 0.0)
ev('bestscore@0', lambda c: max(c, key=lambda x: x['score']), 0.0)
ev('largest@-0.6', lambda c: max(c, key=lambda x: x['area']))
ev('bestscore@-0.6', lambda c: max(c, key=lambda x: x['score']))
ev('oracle@-0.6', lambda c: min(c, key=lambda x: x['nme']))
ev('oracle@0', lambda c: min(c, key=lambda x: x['nme']), 0.0)
ev('lm mean score', lambda c: max(c, key=lambda x: np.mean(x['lmscore'])))
ev('lm median score', lambda c: max(c, key=lambda x: np.median(x['lmscore'])))
ev('lm top10 score', lambda c: max(c, key=lambda x: np.sort(x['lmscore'])[-10:].mean()))
for w in (0.5, 1, 2, 4):
    ev(f'score+{w}*lmtop10', lambda c: max(c, key=lambda x: x['score'] + w*np.sort(x['lmscore'])[-10:].mean()))
ious = [max([x['iou'] for x in r['cands']] or [0]) for r in rows]
print('best iou>=0.5 frac', np.mean(np.array(ious)>=0.5))
print('ncands mean', np.mean([len(r['cands']) for r in rows]))
print('--- failures (oracle nme>=10): best iou and best nme, bin')
for r in rows:
    if not r['cands']: continue
    o = min(r['cands'], key=lambda x: x['nme'])
    if o['nme'] >= 10:
        bi = max(r['cands'], key=lambda x: x['iou'])
        print(r['image'], f"yaw {r['yaw']:.0f} bestiou {bi['iou']:.2f} (nme {bi['nme']:.1f} score {bi['score']:.2f} view {bi['view']}) bestnme {o['nme']:.1f} iou {o['iou']:.2f}")
