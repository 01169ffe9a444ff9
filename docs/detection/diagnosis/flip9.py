"""Session 9: does a mirrored second look denoise the landmark confidence that ranks lm-verify's candidates?
Records, for every candidate of a rec8.py file, GoDP's 1-ROI confidence on the mirrored image and box
(conf_flip; conf_re = the same box unmirrored, a check that equals the recorded conf), then replays the
selection ranked by (1 - w) conf + w conf_flip for w = 0, 0.5, 1 (the recorded floor and p(face) gate).
    python docs/detection/diagnosis/flip9.py runs/s9/rec_u128.json generated/uhdb31_128 runs/s9/flip_u128.json"""
import json, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
from tqdm import tqdm
sys.path.insert(0, '.')
from landmarks.godp.infer import GodpLandmarker
from pipeline.detection.boxes import box_matches
from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence
from pipeline.imageio import load_image, to_gray
path, root, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
recs = json.load(open(path))
if not Path(out).exists():
    g = GodpLandmarker(n_rois=1)
    for r in tqdm(recs, mininterval=20):
        if not r['cands']:
            continue
        im = to_gray(load_image(root / r['image'])).astype(np.uint8)
        W = im.shape[1]
        boxes = [tuple(c['box']) for c in r['cands']]
        flipped = g.predict_batch(np.ascontiguousarray(im[:, ::-1]), [(W - b[2], b[1], W - b[0], b[3]) for b in boxes])
        again = g.predict_batch(im, boxes)
        for c, lf, l0 in zip(r['cands'], flipped, again):
            c['conf_flip'], c['conf_re'] = landmark_confidence(lf.scores), landmark_confidence(l0.scores)
    json.dump(recs, open(out, 'w'))
recs = json.load(open(out))
print(out, 'max |conf - conf_re|', max(abs(c['conf'] - c['conf_re']) for r in recs for c in r['cands']))
for w in (0.0, 0.5, 1.0):
    per = {}
    for r in recs:
        key = r['image'].split('/')[-1][:-4] if '_p' in r['image'] else str(min(int(abs(r['yaw']) // 30), 2))
        sc = sorted([((1 - w) * c['conf'] + w * c['conf_flip'], c['p'], tuple(c['box']), 'v') for c in r['cands']], key=lambda t: -t[0])
        sel = LandmarkVerifyRefiner.select(SimpleNamespace(resolve_nested=False, floor=r['floor'], merge_iou=0.5), sc)
        per.setdefault(key, []).append(bool(sel) and box_matches(sel[0].box, r['gt']))
    print('  w_flip', w, {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per.items())}, sum(sum(v) for v in per.values()))
