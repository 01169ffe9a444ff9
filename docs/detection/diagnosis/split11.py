"""Session 11: proposal recall of a dpm model folder at the proposal threshold (the candidates
lm-verify sees): any proposal matches, and one of the pool lm-verify verifies (the 4 best-scoring + the 3 largest) (``box_matches``), per pose group, with the mean number of
proposals per image. Synthetic UHDB31-protocol probes at abs(yaw) >= 60 (all pitches) and the
AFLW2000-3D dev faces of check_detection.py (100 per abs(yaw) bin).
    python docs/detection/diagnosis/split11.py pipeline/detection/models runs/s11/dpm_p3 --json runs/s11/split.json"""
import argparse, json, sys, time
from collections import defaultdict
from pathlib import Path
sys.path.insert(0, '.')
from tqdm import tqdm
from benchmarks.landmarks_nme import load_annotations
from pipeline.detection.boxes import box_matches
from pipeline.detection.dpm import DpmDetector
from pipeline.imageio import load_image

ap = argparse.ArgumentParser()
ap.add_argument('models', nargs='+')
ap.add_argument('--res', default='256,128')
ap.add_argument('--json')
a = ap.parse_args()
items = []
for res in a.res.split(','):
    root = Path(f'generated/uhdb31_{res}')
    for r in (json.loads(l) for l in open(root / 'annotations.jsonl')):
        if abs(r['yaw']) >= 60:
            items.append((f"u{res} yaw {r['yaw']:+d} pitch {r['pitch']:+d}", root / r['image'], r['box']))
root = Path('../shared/data/aflw2000_3d_dev')
for d in load_annotations(root, 100):
    b = min(int(abs(d['yaw']) // 30), 2)
    items.append((f"aflw {30 * b}-{30 * b + 30}", root / d['image'], d['box']))
imgs = {}
out = {}
for m in a.models:
    det = DpmDetector(model_dir=m, threshold=DpmDetector.proposal_threshold)
    hit, phit, n, t0 = defaultdict(list), defaultdict(list), defaultdict(list), time.time()
    views = defaultdict(int)
    for group, path, gt in tqdm(items, desc=m, mininterval=10):
        img = imgs.get(path)
        if img is None:
            img = imgs[path] = load_image(path)
        dets = det.detect(img)
        ok = [d for d in dets if box_matches(d.box, gt)]
        hit[group].append(bool(ok))
        pool = dets[:4] + [d for d in sorted(dets, key=lambda d: -d.area)[:3] if d not in dets[:4]]
        phit[group].append(any(box_matches(d.box, gt) for d in pool))
        n[group].append(len(dets))
        if ok:
            views[ok[0].view] += 1
    out[m] = {'secs': round(time.time() - t0, 1), 'views_of_first_match': dict(views),
              'groups': {g: {'n': len(v), 'recall': round(100 * sum(v) / len(v), 1),
                             'pool': round(100 * sum(phit[g]) / len(v), 1),
                             'proposals': round(sum(n[g]) / len(n[g]), 2)} for g, v in sorted(hit.items())}}
groups = sorted({g for m in out for g in out[m]['groups']})
print(f"{'group':32s}" + ''.join(f"{Path(m).name[:18]:>20s}" for m in a.models))
for g in groups:
    print(f"{g:32s}" + ''.join(f"{out[m]['groups'][g]['recall']:>7.1f} {out[m]['groups'][g]['pool']:5.1f} ({out[m]['groups'][g]['proposals']:4.1f})" for m in a.models))
for m in a.models:
    print(m, out[m]['secs'], 's', out[m]['views_of_first_match'])
if a.json:
    json.dump(out, open(a.json, 'w'), indent=1)
