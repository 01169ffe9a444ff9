"""Session 11: per-pose detection-rate tables (markdown) from detection_bench JSONs, and first-face
won / lost between two front-end runs on the same probes (exact McNemar p).
    python docs/detection/diagnosis/tables11.py 256 NAME=RUN.json:DETECTOR ... [--pair A.json B.json]"""
import json, sys
from math import comb


def rates(path, det):
    for part in json.load(open(path))['uhdb31']:
        if det in part['detectors']:
            return part['detectors'][det]['rate_per_pose'], part['detectors'][det]['images']
    raise SystemExit(f'{path}: no {det}')


def table(res, cols):
    got = {name: rates(p, d)[0] for name, (p, d) in cols.items()}
    poses = list(next(iter(got.values())))
    print(f"| pose (yaw, pitch), {res} px | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for pose in poses:
        print(f"| {pose} | " + " | ".join(f"{got[n].get(pose, float('nan')):.1f}" for n in cols) + " |")
    print("| min / mean | " + " | ".join(f"{min(v.values()):.1f} / {sum(v.values()) / len(v):.1f}" for v in got.values()) + " |")


def pair(a, b, det='dpm+mmod+lm-verify'):
    ia = {r['path']: r['hit'] for r in rates(a, det)[1]}
    ib = {r['path']: r['hit'] for r in rates(b, det)[1]}
    won = sum(1 for k in ia if k in ib and ib[k] and not ia[k])
    lost = sum(1 for k in ia if k in ib and ia[k] and not ib[k])
    n = won + lost
    p = min(1.0, 2 * sum(comb(n, i) for i in range(min(won, lost) + 1)) / 2 ** n) if n else 1.0
    print(f"{a} -> {b}: {len(set(ia) & set(ib))} shared probes, won {won}, lost {lost}, McNemar p = {p:.3g}")


if __name__ == '__main__':
    args = sys.argv[1:]
    if args[0] == '--pair':
        pair(args[1], args[2])
    else:
        cols = {}
        for spec in args[1:]:
            name, rest = spec.split('=', 1)
            path, det = rest.rsplit(':', 1)
            cols[name] = (path, det)
        table(args[0], cols)
