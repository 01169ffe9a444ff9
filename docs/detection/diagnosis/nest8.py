"""Session 8: LandmarkVerifyRefiner.select with and without resolve_nested (the nested-face rule) on
rec8.py records; first face matches per pose (UHDB31) or per abs(yaw) bin 0 / 1 / 2 (AFLW2000-3D, box test).
    python docs/detection/diagnosis/nest8.py runs/s8/rec_u256.json runs/s8/rec_a.json"""
import json, sys
from types import SimpleNamespace
sys.path.insert(0, '.')
from pipeline.detection.verify import LandmarkVerifyRefiner
from pipeline.detection.boxes import box_matches
for path in sys.argv[1:]:
    d = json.load(open(path))
    for on in (False, True):
        per, yb = {}, []
        for r in d:
            sc = [(c['conf'], c['p'], tuple(c['box']), 'v') for c in r['cands']]
            out = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=on, floor=r['floor'], merge_iou=0.5), sc)
            hit = bool(out) and box_matches(out[0].box, r['gt'])
            key = r['image'].split('/')[-1][:-4] if 'uhdb' in path or 'u256' in path else f"{min(int(abs(r['yaw']) // 30), 2)}"
            per.setdefault(key, []).append(hit)
        print(path, 'nested' if on else 'plain ', {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per.items())}, sum(sum(v) for v in per.values()))
