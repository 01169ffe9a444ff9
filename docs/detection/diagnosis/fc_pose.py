"""Session 7: does a pose-aware fusion hold the face check's recall at full profile? On the face check's own
held-out candidates (a train_face_check --cache file and a model folder), the fusion p = sigmoid(w . x)
is refitted with pose features (GoDP's predicted occluded share occ, its yaw subspace) and the floor
put at 99 % recall; printed: weights, floor, AUC, non-face pass rate and the recall per abs(yaw) bin.
    python docs/detection/diagnosis/fc_pose.py runs/s7/fc_cache_g.npz pipeline/detection/models"""
import sys, json
import numpy as np
sys.path.insert(0, '.')
from pathlib import Path
from safetensors.torch import load_file
from pipeline.detection.bbox_cnn import BoxNet
from pipeline.detection.train_face_check import auc, fit_logistic, logits_of

data = dict(np.load(sys.argv[1], allow_pickle=False))
man = json.load(open(Path(sys.argv[2]) / 'MANIFEST.json'))['face_check']
net = BoxNet(man['width'], outputs=1); net.load_state_dict(load_file(str(Path(sys.argv[2]) / man['file']))); net.eval()
z = logits_of(net, data['crops'])
c = data['conf']; y = data['y']; va = data['val']; yaw = np.abs(data['yaw'])
occ = 1 - data['visible'].mean(1); sub = data['subspace']
kind = data['kind']
print('candidates', len(y), 'val', va.sum(), 'val faces', int(y[va].sum()))

def prob(X, w):
    X = np.column_stack([X, np.ones(len(X))]); return 1 / (1 + np.exp(-np.clip(X @ w, -50, 50)))

variants = {
    'V0 z,c': np.column_stack([z, c]),
    'V1 z,c,occ': np.column_stack([z, c, occ]),
    'V2 z,c,occ,c*occ': np.column_stack([z, c, occ, c * occ]),
    'V3 z,c,side': np.column_stack([z, c, sub != 1]),
    'V4 z only': np.column_stack([z]),
}
bins = [(0, 30), (30, 60), (60, 75), (75, 91)]
face_v = va & (y == 1); non_v = va & (y == 0)
for name, X in variants.items():
    w = fit_logistic(X[va], y[va]); p = prob(X, w)
    fl = np.sort(p[face_v])[int(np.floor(0.01 * face_v.sum()))]
    rec = [np.mean(p[face_v & (yaw >= a) & (yaw < b)] >= fl) for a, b in bins]
    nb = [int((face_v & (yaw >= a) & (yaw < b)).sum()) for a, b in bins]
    # train-side faces (the CNN saw them: optimistic) per bin too
    ft = (~va) & (y == 1)
    rect = [np.mean(p[ft & (yaw >= a) & (yaw < b)] >= fl) for a, b in bins]
    print(f'{name:18s} w={np.round(w, 3)} floor {fl:.3f} auc {auc(p[va], y[va]):.4f} nonface pass {np.mean(p[non_v] >= fl):.4f} '
          f'val recall/bin {np.round(rec, 3)} n {nb} | train {np.round(rect, 3)}')
