"""Session 7: within-image ranking on the face check's cache. For each source image with a face and a
non-face candidate: is the best candidate by a landmark-confidence rule (top-k peak probabilities, mean
over predicted-visible points, median) a face? Per abs(yaw) bin, renders and AFLW crops apart.
    python docs/detection/diagnosis/conf_rules.py runs/s7/fc_cache_g.npz"""
import sys
import numpy as np
d = dict(np.load(sys.argv[1], allow_pickle=False))
S, V, y, src, yaw, kind = d['scores'], d['visible'], d['y'], d['src'], np.abs(d['yaw']), d['kind']
srt = np.sort(S, 1)
rules = {f'top{k}': srt[:, -k:].mean(1) for k in (5, 8, 10, 12, 19)}
rules['vis-mean'] = np.array([s[v].mean() if v.any() else s.mean() for s, v in zip(S, V)])
rules['vis-top8'] = np.array([np.sort(s[v])[-8:].mean() if v.any() else 0 for s, v in zip(S, V)])
rules['median'] = np.median(S, 1)
groups = {}
for i, s in enumerate(src):
    groups.setdefault(s, []).append(i)
bins = [(0, 30), (30, 60), (60, 75), (75, 91)]
for k0 in ('render', 'aflw'):
    print(k0)
    for name, r in rules.items():
        res = {b: [] for b in bins}
        for s, idx in groups.items():
            idx = np.array(idx)
            if kind[idx[0]] != k0 or not (y[idx] == 1).any() or not (y[idx] == 0).any():
                continue
            top = idx[np.argmax(r[idx])]
            for a, b in bins:
                if a <= yaw[idx[0]] < b:
                    res[(a, b)].append(y[top] == 1)
        print(f'  {name:9s}', ' '.join(f'{a}-{b}: {100*np.mean(v):.1f} ({len(v)})' for (a, b), v in res.items()))
