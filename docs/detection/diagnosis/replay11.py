"""Session 11: the first face of lm-verify's selection (the most confident candidate whose p(face) reaches the floor)
on candidates recorded by rec8.py, per corner pose (UHDB31-protocol records) or abs(yaw) bin (AFLW2000-3D records).
    python docs/detection/diagnosis/replay11.py runs/s9/rec_u128.json runs/s11/recB_u128.json"""
import json, re, sys
from collections import defaultdict
for f in sys.argv[1:]:
    d = json.load(open(f))
    by = defaultdict(list)
    for r in d:
        ok = [c for c in sorted(r['cands'], key=lambda c: -c['conf']) if c['p'] >= r['floor']]
        m = re.search(r'y([-+]?\d+)_p([-+]?\d+)', r['image'])
        key = f"{m.group(1)},{m.group(2)}" if m else f"aflw {min(int(abs(r['yaw']) // 30), 2) * 30}"
        by[key].append(bool(ok) and ok[0]['hit'])
    print(f, ' '.join(f"{k}:{sum(v)}/{len(v)}" for k, v in sorted(by.items())), 'total', sum(sum(v) for v in by.values()))
