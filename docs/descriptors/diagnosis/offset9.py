"""Session 9: do two GoDP weight sets place the 19 points differently on real photos and on renders?
Mean signed offset (predicted - annotated, in % of the box's sqrt(area)) of each landmark, on real
near-frontal AFLW2000-3D dev faces (abs(yaw) < 30) and on near-frontal renders of the synthetic
UHDB31-protocol set (yaw 0 / +-30, pitch 0), GoDP 1-ROI on the annotated box; then, per weight set, the
domain gap: the mean over landmarks of |offset(real) - offset(render)|. A gallery (real) / probe (render)
alignment disagreement grows with that gap.
    python docs/descriptors/diagnosis/offset9.py OLD.safetensors OLD_CONFIG_JSON   # vs the shipped weights
    (OLD.safetensors e.g. from `git show e58490a:landmarks/godp/weights/godp_w0.1875_k3.safetensors`)"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, '.')
from landmarks.godp.infer import GodpLandmarker
from landmarks.godp.network import GoDP, GodpConfig
from pipeline.imageio import load_image, to_gray


def old_model(path, cfg):
    from safetensors.torch import load_file
    m = GoDP(GodpConfig(**cfg))
    m.load_state_dict(load_file(path), strict=False)
    m.eval()
    m.visibility_threshold, m.weights_sha256 = 0.5, 'old'
    return m


def items():
    real = Path('../shared/data/aflw2000_3d_dev')
    rows = [json.loads(l) for l in open(real / 'annotations.jsonl') if l.strip()]
    out = [('real', real / r['image'], r['box'], np.array(r['landmarks'], float), np.array(r.get('visible', [True] * 19), bool))
           for r in rows if r.get('yaw') is not None and abs(r['yaw']) < 30][:150]
    ren = Path('generated/uhdb31_256')
    for l in open(ren / 'annotations.jsonl'):
        r = json.loads(l)
        if r['pitch'] == 0 and abs(r['yaw']) <= 30:
            out.append(('render', ren / r['image'], r['box'], np.array(r['landmarks'], float), np.array(r['visible'], bool)))
    return out


def offsets(lmk, data):
    res = {'real': [], 'render': []}
    for dom, path, box, gt, vis in data:
        g = to_gray(load_image(path)).astype(np.uint8)
        p = lmk.predict(g, tuple(box)).points
        s = ((box[2] - box[0]) * (box[3] - box[1])) ** 0.5
        d = (p - gt) / s * 100
        d[~vis] = np.nan
        res[dom].append(d)
    return {k: np.nanmean(np.stack(v), axis=0) for k, v in res.items()}  # (19, 2) each


data = items()
print(sum(d[0] == 'real' for d in data), 'real faces,', sum(d[0] == 'render' for d in data), 'renders')
for name, lm in (('given', GodpLandmarker(n_rois=1, model=old_model(sys.argv[1], json.loads(sys.argv[2])))),
                 ('shipped', GodpLandmarker(n_rois=1))):
    o = offsets(lm, data)
    gap = np.abs(o['real'] - o['render'])
    print(f"{name:8s} mean |offset| real {np.nanmean(np.abs(o['real'])):.2f} render {np.nanmean(np.abs(o['render'])):.2f} "
          f"domain gap mean {np.nanmean(gap):.2f} max {np.nanmax(gap):.2f} (% of box)")
    print('   real - render offset per landmark (dx, dy):', ' '.join(f"{i}:({a:+.1f},{b:+.1f})" for i, (a, b) in enumerate(o['real'] - o['render'])))
