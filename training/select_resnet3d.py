"""Model selection for ``resnet-3d`` on CFP *training* subjects (never the evaluation subjects).

Gallery: the manifest's gallery image (frontal) of each subject in --subjects; probes: the 4 profile
photos and 2 frontal photos (02, 03) of each. Every face goes through the front end the figures in
``RESULTS.md`` were measured with (dpm + lm-verify + GoDP + SFM fit + UV lift; session-3 GoDP weights
and lm-verify floor 0.55 at the time) once; then rank-1 is measured for the 2D dlib ResNet
embedding, the embedding of the frontalised face (grey or mean-colour background) and their
weighted fusion (the ``resnet-3d`` template, weight w on the 2D cosine).

    python training/select_resnet3d.py --subjects 001-060
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from descriptors.dlib_resnet import DlibResnetDescriptor
from pipeline.errors import FaceError
from pipeline.imageio import load_image
from pipeline.pipeline import Pipeline
from recon3d.frontalize import frontalize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "cfp_dev"))
    ap.add_argument("--subjects", default="001-060")
    a = ap.parse_args()
    lo, hi = a.subjects.split("-")
    root = Path(a.data)
    rows = [
        r
        for r in csv.DictReader(open(root / "manifest.csv"))
        if lo <= r["subject"] <= hi
        and (r["role"] == "gallery" or "profile" in r["path"] or r["path"].endswith(("02.jpg", "03.jpg")))
    ]
    pipe = Pipeline(detector="dpm")
    net = DlibResnetDescriptor()
    feats: dict[str, list] = {"2d": [], "frontal-grey": [], "frontal": []}
    meta = []
    for r in tqdm(rows, desc="faces"):
        img = load_image(root / r["path"])
        try:
            face = pipe.run(img, until="lift")[0]
        except FaceError:
            continue
        feats["2d"].append(net.embed(img, face.detection.box, face.landmarks.points))
        f = frontalize(face.fit, face.uv)
        feats["frontal"].append(net.embed(f.image, f.box, f.landmarks))
        g = frontalize(face.fit, face.uv, background=(128, 128, 128))
        feats["frontal-grey"].append(net.embed(g.image, g.box, g.landmarks))
        meta.append((r["subject"], r["role"] == "gallery", "profile" in r["path"]))
    gal = [i for i, m in enumerate(meta) if m[1]]
    ids = [meta[i][0] for i in gal]
    prof = [i for i, m in enumerate(meta) if not m[1] and m[2]]
    fron = [i for i, m in enumerate(meta) if not m[1] and not m[2]]
    S = {k: np.stack(v) @ np.stack(v)[gal].T for k, v in feats.items()}

    def rank1(s, probes):
        return 100.0 * np.mean([ids[int(np.argmax(s[p]))] == meta[p][0] for p in probes])

    print(
        f"{len(rows)} images, {len(meta)} faces found; {len(gal)} gallery, "
        f"{len(prof)} profile / {len(fron)} frontal probes"
    )
    print(f"{'template':32s} {'profile':>8s} {'frontal':>8s}")
    for k in S:
        print(f"{k:32s} {rank1(S[k], prof):8.1f} {rank1(S[k], fron):8.1f}")
    for w in (0.3, 0.5, 0.7):
        s = w * S["2d"] + (1 - w) * S["frontal"]
        print(f"{f'fused w={w} (resnet-3d)':32s} {rank1(s, prof):8.1f} {rank1(s, fron):8.1f}")


if __name__ == "__main__":
    main()
