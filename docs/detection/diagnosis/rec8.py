"""Session 8: record every lm-verify candidate (landmark confidence, p(face), box, hit = box match) with the
working-tree models: the yaw +-90 / pitch +-30 probes of a synthetic UHDB31-protocol set, or the AFLW2000-3D
dev faces of check_detection.py; nest8.py replays the pipeline's selection on them.
    python docs/detection/diagnosis/rec8.py uhdb31:generated/uhdb31_256 runs/s8/rec_u256.json
    python docs/detection/diagnosis/rec8.py aflw2000:100 runs/s8/rec_a.json
Session 11: ``--detector dpm|dpm+mmod`` and ``--models DIR`` (a dpm model folder, e.g. a split mixture):
    python docs/detection/diagnosis/rec8.py uhdb31:generated/uhdb31_256 runs/s11/recA_u256.json --detector dpm --models runs/s11/dpm_p3"""
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, '.')
from tqdm import tqdm
from benchmarks.landmarks_nme import load_annotations
from pipeline.detection.boxes import box_matches
from pipeline.detection.dpm import DpmDetector
from pipeline.detection.union import DpmMmodDetector
from pipeline.detection.verify import LandmarkVerifyRefiner
from pipeline.imageio import load_image
ap = argparse.ArgumentParser()
ap.add_argument('what')
ap.add_argument('out')
ap.add_argument('--detector', default='dpm+mmod', choices=['dpm', 'dpm+mmod'])
ap.add_argument('--models', default=None)
a = ap.parse_args()
kind, arg = a.what.split(':', 1)
items = []
if kind == 'aflw2000':
    root = Path('../shared/data/aflw2000_3d_dev')
    items = [(root / d['image'], d['box'], d['image'], d['yaw']) for d in load_annotations(root, int(arg))]
else:
    root = Path(arg)
    items = [(root / r['image'], r['box'], r['image'], r['yaw']) for r in (json.loads(l) for l in open(root / 'annotations.jsonl'))
             if abs(r['yaw']) == 90 and abs(r['pitch']) == 30]
if a.detector == 'dpm':
    det = DpmDetector(threshold=DpmDetector.proposal_threshold, **({'model_dir': a.models} if a.models else {}))
else:
    det = DpmMmodDetector(threshold=DpmMmodDetector.proposal_threshold, model_dir=a.models)
ver = LandmarkVerifyRefiner()
out = []
for path, gt, name, yaw in tqdm(items):
    img = load_image(path)
    sc = ver.scored(img, det.detect(img))
    out.append({'image': name, 'yaw': yaw, 'gt': gt, 'floor': ver.floor,
                'cands': [{'conf': c, 'p': p, 'box': list(b), 'hit': bool(box_matches(b, gt))} for c, p, b, v in sc]})
json.dump(out, open(a.out, 'w'))
