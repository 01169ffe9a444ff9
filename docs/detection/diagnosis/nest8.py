"""Session 8: LandmarkVerifyRefiner.select with and without resolve_nested (the nested-face rule) on
rec8.py records; first face matches per pose (UHDB31) or per abs(yaw) bin 0 / 1 / 2 (AFLW2000-3D, box test).
Session 9: ``--area R1,R2,...`` replays the rule with other area ratios (``boxes.nested(max_area_ratio)``,
shipped 0.4).
    python docs/detection/diagnosis/nest8.py runs/s8/rec_u256.json runs/s8/rec_a.json
    python docs/detection/diagnosis/nest8.py --area 0.4,0.3,0.25,0.2 runs/s8/rec_u256.json runs/s9/rec_u128.json runs/s8/rec_a.json"""
import json, sys
from types import SimpleNamespace
sys.path.insert(0, '.')
import pipeline.detection.verify as verify
from pipeline.detection.boxes import box_matches, nested
args = sys.argv[1:]
areas = [0.4]
if args and args[0].startswith('--area'):
    areas = [float(v) for v in (args[0].split('=', 1)[1] if '=' in args[0] else args.pop(1)).split(',')]
    args = args[1:]
for ratio in areas:
    verify.nested = lambda a, b, ratio=ratio: nested(a, b, 0.8, ratio)  # what select() calls
    for path in args:
        d = json.load(open(path))
        for on in (False, True):
            per = {}
            for r in d:
                sc = [(c['conf'], c['p'], tuple(c['box']), 'v') for c in r['cands']]
                out = verify.LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=on, floor=r['floor'], merge_iou=0.5), sc)
                hit = bool(out) and box_matches(out[0].box, r['gt'])
                key = r['image'].split('/')[-1][:-4] if '_p' in r['image'] else f"{min(int(abs(r['yaw']) // 30), 2)}"
                per.setdefault(key, []).append(hit)
            print(path, f'area {ratio:g}', 'nested' if on else 'plain ', {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per.items())},
                  sum(sum(v) for v in per.values()))
