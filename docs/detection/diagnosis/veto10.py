"""Session 10: a part veto from the two-context face check of session 9 (runs/s9/models3), applied only where
it is needed. The shipped check gates and GoDP's confidence ranks as shipped; then, while the first face is a
box *nested* inside another surviving candidate (boxes.nested: >= 80 % inside, <= 0.4 of its area: a mouth or
eye box inside the face) and the two-context check scores it below FLOOR, it is dropped and the next face
moves up. True faces that are not nested in a bigger candidate -- the busy-background faces that check
rejected in session 9 -- are never touched. Prints the first-face box matches per corner / record.
    python docs/detection/diagnosis/veto10.py runs/s9/models3 runs/s8/rec_u256.json:generated/uhdb31_256 ..."""
import json, sys
from pathlib import Path
from types import SimpleNamespace
sys.path.insert(0, '.')
import numpy as np
from collections import Counter
from pipeline.detection.boxes import box_matches
from pipeline.detection.face_check import FaceCheck
from pipeline.detection.verify import LandmarkVerifyRefiner, veto_parts
from pipeline.imageio import load_image, to_gray

fc = FaceCheck(Path(sys.argv[1]))
floors = (0.1, 0.3, fc.floor, 0.8)
for spec in sys.argv[2:]:
    path, root = spec.split(':', 1)
    got = {f: Counter() for f in ('shipped',) + floors}
    won, lost = Counter(), Counter()
    for r in json.load(open(path)):
        stem = r['image'].rsplit('/', 1)[-1]
        key = stem[:-4] if stem.startswith('y') else 'aflw'
        sc = [(c['conf'], c['p'], tuple(c['box']), 'v') for c in r['cands']]
        kept = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=False, floor=r['floor'], merge_iou=0.5), sc)
        key = key if key != 'aflw' else f"aflw{min(int(abs(r['yaw']) // 30), 2)}"
        ship = bool(kept) and box_matches(kept[0].box, r['gt'])
        got['shipped'][key] += ship
        p_ctx = fc.probability(to_gray(load_image(Path(root) / r['image'])).astype(np.uint8),
                               [d.box for d in kept], np.array([d.score for d in kept])) if len(kept) > 1 else []
        for f in floors:
            faces = veto_parts(kept, p_ctx, f) if len(kept) > 1 else kept  # the pipeline's own step
            hit = bool(faces) and box_matches(faces[0].box, r['gt'])
            got[f][key] += hit
            won[f] += hit and not ship
            lost[f] += ship and not hit
    for f, c in got.items():
        print(f"{path} veto floor {f if isinstance(f, str) else round(f, 3)}: {sum(c.values())} won {won[f]} lost {lost[f]} ",
              ' '.join(f'{k}:{v}' for k, v in sorted(c.items())))
