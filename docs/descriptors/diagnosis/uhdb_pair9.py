"""Session 9: two uhdb31_rank1.py --json runs compared on the probes they share (e.g. the session-4 run on
subjects 126-164 and a later run on all subjects): per variant, centre-8 / all-20 / yaw +-60 / yaw +-90 rank-1
of each on the shared probes, probes lost / won, the exact McNemar (sign) test, and face-found status changes.
The two runs must have the same gallery: rank-1 against 77 identities is not comparable with rank-1 against 39
(session 10: the session-9 "regression" was mostly that), so the script stops when the galleries differ (identity lists since session 10, else sizes).
    python docs/descriptors/diagnosis/uhdb_pair9.py runs/bench/uhdb256_r3d.json runs/s10/bench/u256_126-164.json"""
import json, sys
from collections import defaultdict
from scipy.stats import binomtest
C8 = {(y, p) for y in (-30, 0, 30) for p in (-30, 0, 30)} - {(0, 0)}


def figures(rows):
    per = defaultdict(list)
    for r in rows:
        per[(int(r['yaw']), int(r['pitch']))].append(bool(r['hit']))
    rate = {k: 100 * sum(v) / len(v) for k, v in per.items()}
    mean = lambda ks: sum(rate[k] for k in ks) / len(ks)
    return (mean([k for k in C8 if k in rate]), mean(list(rate)), mean([k for k in rate if abs(k[0]) == 60]),
            mean([k for k in rate if abs(k[0]) == 90]))


runs = [json.load(open(p)) for p in sys.argv[1:3]]
ga, gb = (r['summary'].get('gallery_subjects', r['summary'].get('gallery')) for r in runs)
if isinstance(ga, list) != isinstance(gb, list):  # a run from before session 10 records only the count
    ga, gb = (r['summary'].get('gallery') for r in runs)
if ga != gb:
    sys.exit(f"the runs' galleries differ ({len(ga) if isinstance(ga, list) else ga} vs {len(gb) if isinstance(gb, list) else gb} identities): rank-1 is not comparable; rerun one with "
             "--subjects matching the other")
a, b = (r['probes'] for r in runs)
for var in sorted({r['variant'] for r in a} & {r['variant'] for r in b}):
    A = {r['path']: r for r in a if r['variant'] == var}
    B = {r['path']: r for r in b if r['variant'] == var and r['path'] in A}
    A = {k: v for k, v in A.items() if k in B}
    lost = sum(1 for k in A if A[k]['hit'] and not B[k]['hit'])
    won = sum(1 for k in A if not A[k]['hit'] and B[k]['hit'])
    fa, fb = figures(A.values()), figures(B.values())
    print(f"{var}: {len(A)} shared probes; centre-8 / all-20 / yaw +-60 / yaw +-90: "
          f"{' / '.join(f'{x:.1f}' for x in fa)} -> {' / '.join(f'{x:.1f}' for x in fb)}; lost {lost}, won {won}, "
          f"McNemar p = {binomtest(lost, lost + won).pvalue if lost + won else 1.0:.2g}; "
          f"status changed on {sum(A[k]['status'] != B[k]['status'] for k in A)}")
