"""Session 10: replay selection rules on the contested images of rois10.py records (images where two or more
candidates pass the face check); every other image keeps the shipped outcome. Prints, per record, the first-face
box matches of the shipped rule (landmark confidence of the 1-ROI pass) and of rules that rank by, or gate on,
the perturbed-ROI features, with the per-corner breakdown for the UHDB31 records.
    python docs/detection/diagnosis/sel10.py runs/s8/rec_u256.json runs/s10/rois_u256.json ..."""
import json, sys
from collections import Counter
sys.path.insert(0, '.')
from pipeline.detection.boxes import iou  # noqa: E402


def corner(name):
    stem = name.rsplit('/', 1)[-1]
    return stem.split('_')[0][1:] + '/' + stem.split('_')[1].split('.')[0][1:] if stem.startswith('y') else 'aflw'


def rules():
    yield 'shipped (1-ROI conf)', lambda c: c['conf']
    for n in ('p16', 'w16'):
        yield f'{n} conf', lambda c, n=n: c[f'{n}_conf']
        for a in (0.5, 1.0, 2.0, 4.0):
            yield f'{n} conf - {a} spread', lambda c, n=n, a=a: c[f'{n}_conf'] - a * c[f'{n}_spread']
            yield f'conf - {a} {n} spread', lambda c, n=n, a=a: c['conf'] - a * c[f'{n}_spread']
            yield f'conf - {a} {n} flip', lambda c, n=n, a=a: c['conf'] - a * c[f'{n}_flip']
        yield f'conf + 0.2 {n} vote', lambda c, n=n: c['conf'] + 0.2 * c[f'{n}_vote']


args = sys.argv[1:]
for rec_path, rois_path in zip(args[0::2], args[1::2]):
    rec = json.load(open(rec_path))
    rois = {r['image']: r['cands'] for r in json.load(open(rois_path))}
    base = Counter()
    for r in rec:
        if r['image'] in rois:
            continue
        kept = []
        for c in r['cands']:
            if c['p'] >= r['floor'] and not any(iou(c['box'], k['box']) > 0.5 for k in kept):
                kept.append(c)
        base[corner(r['image'])] += bool(kept and kept[0]['hit'])
    total = Counter(corner(r['image']) for r in rec)
    print(f'== {rec_path}: {len(rec)} images, {len(rois)} contested, oracle on contested '
          f'{sum(any(c["hit"] for c in cs) for cs in rois.values())}')
    ship = None
    for name, key in rules():
        got = Counter(base)
        picks = {}
        for img, cs in rois.items():
            best = max(cs, key=key)
            got[corner(img)] += best['hit']
            picks[img] = best['hit']
        if ship is None:
            ship = picks
        won = sum(picks[i] and not ship[i] for i in picks)
        lost = sum(ship[i] and not picks[i] for i in picks)
        print(f'{name:28s} {sum(got.values()):4d}  won {won:2d} lost {lost:2d}  ' +
              ' '.join(f'{k}:{got[k]}' for k in sorted(total)))
