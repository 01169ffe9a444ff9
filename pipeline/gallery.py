"""Gallery layout, enrollment and 1-vs-all matching.

Layouts (SPEC section 5): ``DIR/<identity>/*.{jpg,png,...}`` (several images per identity) or
``DIR/<identity>.{jpg,png,...}`` (one image each); both may be mixed. Hidden files and
non-image files are ignored. Several images of one identity are fused by the **maximum**
cosine score over that identity's images.

Matching is cosine similarity of L2-normalised templates (``descriptors`` return unit vectors).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.errors import FaceError, GalleryError
from pipeline.imageio import is_image_path, load_image
from pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)


def scan_gallery(root: str | Path) -> list[tuple[str, Path]]:
    """(identity, image path) pairs of a gallery folder, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise GalleryError(f"gallery {root} is not a folder; give a folder of <identity>/ sub-folders "
                           f"or <identity>.jpg files")
    items: list[tuple[str, Path]] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_file() and is_image_path(q) and not q.name.startswith("."):
                    items.append((p.name, q))
        elif p.is_file() and is_image_path(p):
            items.append((p.stem, p))
    if not items:
        raise GalleryError(f"gallery {root} holds no images (expected <identity>/*.jpg or <identity>.jpg)")
    return items


@dataclass
class Gallery:
    """Enrolled templates: ``vectors`` (N, D) float32, ``identities`` (N,) per template."""

    vectors: np.ndarray
    identities: list[str]
    paths: list[str]

    def match(self, vector: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
        """Identities ranked by their best cosine score against ``vector``."""
        scores = self.vectors @ vector.astype(np.float32)
        best: dict[str, float] = {}
        for ident, s in zip(self.identities, scores):
            if s > best.get(ident, -np.inf):
                best[ident] = float(s)
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        return ranked[:top_k]


def enroll(pipe: Pipeline, root: str | Path, progress: bool = True) -> Gallery:
    """Describe every gallery image (the largest face of each); unreadable images and images
    without a face are skipped with a warning."""
    items = scan_gallery(root)
    vecs, ids, paths = [], [], []
    for ident, path in tqdm(items, desc="enrolling gallery", unit="img", disable=not progress):
        try:
            face = pipe.run(load_image(path, pipe.config.max_pixels), until="describe")[0]
        except FaceError as e:
            if e.exit_code == 2:
                raise
            log.warning("gallery image skipped: %s: %s", path, e)
            continue
        vecs.append(face.signature.vector)
        ids.append(ident)
        paths.append(str(path))
    if not vecs:
        raise GalleryError(f"no gallery image of {root} could be enrolled (see the warnings above)")
    return Gallery(np.stack(vecs).astype(np.float32), ids, paths)
