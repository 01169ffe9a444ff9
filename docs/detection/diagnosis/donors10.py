"""Session 10: do the background donor photos (dlib_faces scenes, make_profiling.donor_items) hold faces that
their annotation lacks? Runs dlib's MMOD CNN detector (upsampled once) on every donor and lists detections whose
box overlaps no annotated face (IoU < 0.3 and centre outside every annotated box).
    python docs/detection/diagnosis/donors10.py"""
import sys
from pathlib import Path
sys.path.insert(0, '.')
from benchmarks.make_profiling import donor_items
from pipeline.detection.boxes import centre_inside, iou
from pipeline.registry import DETECTORS
from pipeline.imageio import load_image

det = DETECTORS.create('dlib-mmod')
for path, boxes in donor_items(Path('../shared/data')):
    img = load_image(path)
    found = det.detect(img)
    extra = [d for d in found if all(iou(d.box, b) < 0.3 and not centre_inside(d.box, b) for b in boxes)]
    print(f"{Path(path).name}: {img.shape[1]}x{img.shape[0]}, {len(boxes)} annotated, {len(found)} detected, "
          f"{len(extra)} unannotated: " + ', '.join(f"[{', '.join(f'{v:.0f}' for v in d.box)}] {d.score:.2f}" for d in extra))
