"""Session 6: can the agreement of GoDP with itself rank lm-verify's candidates better than its
landmark confidence? Every candidate of the shipped front end (dpm+mmod -> lm-verify pool ->
re-centred boxes, landmark confidence, p(face)) is re-read by GoDP on 8 perturbed ROIs, every second
one mirrored; recorded per candidate: conf (1 ROI, what lm-verify ranks by), p (the face check),
conf8 (confidence of the median peak probabilities over the 8 ROIs), spread (median over the 19
points of the median distance of an ROI's point to the 8-ROI median point, / sqrt(box area)),
flip (mean distance between the mirrored and the plain ROIs' mean points, same unit) and hit.
    python docs/detection/diagnosis/sim6.py prof:400 runs/s6/sim6_prof.json
        face-profiling renders of training sources at abs(yaw) >= 60, each shrunk by U(0.4, 1) as in the
        face-check training (hit: the box matches the render's box)
    python docs/detection/diagnosis/sim6.py aflw2000:100 runs/s6/sim6_a.json
        the AFLW2000-3D dev faces of check_detection.py (hit: 8-ROI landmarks within NME-vis 10 %)
    python docs/detection/diagnosis/sim6.py uhdb31:generated/uhdb31_128:2 runs/s6/sim6_u128.json
        every 2nd probe at yaw +-90 (all pitches) of a synthetic UHDB31-protocol set (hit: box match)"""
import json, sys, time
from pathlib import Path
import cv2
import numpy as np
sys.path.insert(0, '.')
from benchmarks.landmarks_nme import load_annotations
from landmarks.godp.infer import GodpLandmarker
from landmarks.metrics import nme
from pipeline.detection.boxes import box_matches
from pipeline.detection.train_bbox import training_renders
from pipeline.detection.union import DpmMmodDetector
from pipeline.detection.verify import LandmarkVerifyRefiner, landmark_confidence
from pipeline.imageio import load_image, to_gray

kind, arg = sys.argv[1].split(':', 1)
items = []  # (gray uint8, gt box or None, (landmarks, visible, box) or None, name)
if kind == 'prof':
    root = Path('generated/profiling')
    rows = [r for r in training_renders(root) if abs(r['yaw']) >= 60]
    rng = np.random.default_rng(6)
    for i in rng.choice(len(rows), min(int(arg), len(rows)), replace=False):
        r, k = rows[i], rng.uniform(0.4, 1.0)
        g = cv2.imread(str(root / r['image']), cv2.IMREAD_GRAYSCALE)
        g = cv2.resize(g, (round(g.shape[1] * k), round(g.shape[0] * k)), interpolation=cv2.INTER_AREA)
        items.append((g, [v * k for v in r['box']], None, r['image']))
elif kind == 'aflw2000':
    root = Path('../shared/data/aflw2000_3d_dev')
    for d in load_annotations(root, int(arg)):
        items.append((root / d['image'], None, (np.array(d['landmarks']), np.array(d['visible'], bool), d['box']), d['image']))
else:
    root, step = arg.rsplit(':', 1)
    root = Path(root)
    for r in [r for r in (json.loads(l) for l in open(root / 'annotations.jsonl')) if abs(r['yaw']) == 90][::int(step)]:
        items.append((root / r['image'], r['box'], None, r['image']))
det, ver = DpmMmodDetector(threshold=DpmMmodDetector.proposal_threshold), LandmarkVerifyRefiner()  # as the pipeline builds them
lm8 = GodpLandmarker(n_rois=8, flip=True)
out, t0 = [], time.time()
for k, (src, gt, ann, name) in enumerate(items):
    img = src if isinstance(src, np.ndarray) else load_image(src)
    gray = to_gray(img).astype(np.uint8)
    sc = ver.scored(img, det.detect(img))
    cands = []
    if sc:
        pts, score, _ = lm8.predict_rois(gray, [s[2] for s in sc])
        for (conf, p, box, view), pr, sr in zip(sc, pts, score):
            size = np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1e-6))
            med = np.median(pr, axis=0)
            spread = float(np.median(np.median(np.linalg.norm(pr - med, axis=-1), axis=0)) / size)
            flip = float(np.linalg.norm(pr[1::2].mean(0) - pr[0::2].mean(0), axis=-1).mean() / size)
            if ann is not None:
                hit = bool(nme(med, ann[0], ann[1], ann[2]) < 10)
            else:
                hit = bool(box_matches(box, gt))
            cands.append(dict(conf=conf, p=p, conf8=landmark_confidence(np.median(sr, axis=0)), spread=spread,
                              flip=flip, hit=hit, box=list(box)))
    out.append(dict(image=name, cands=cands))
    if k % 20 == 0:
        print(k, len(items), f'{time.time() - t0:.0f}s', flush=True)
json.dump(out, open(sys.argv[2], 'w'))
