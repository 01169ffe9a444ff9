"""DFD-style learned descriptor on the UV texture (Lei, Pietikainen, Li, "Learning Discriminant
Face Descriptor", TPAMI 2014), the signature stage of the GoDP paper's pipeline (sec. 4.5).

Steps, with our choices where the paper leaves room:

1. **Pre-processing**: the UV texture is made gray, resized to ``size x size`` and normalised
   with Tan-Triggs (:func:`descriptors.uvprep.tan_triggs`).
2. **Pixel difference vectors (PDV)**, DFD sec. 3.1: at every texel p, the differences between
   the ``(2r+1)^2 - 1`` neighbours of a square patch and the centre, ``d(p) = [I(q) - I(p)]_q``
   (``r = 2``: 24 dimensions).
3. **Discriminant image filters**, DFD sec. 3.2 (Fisher criterion): for each of the
   ``block_grid^2`` blocks of the UV map, the projection ``W`` (24 x ``n_filters``) maximising
   ``tr(W^T S_b W) / tr(W^T S_w W)``, where, at every texel p of the block, the PDVs of the same
   identity at the same UV position form a class: ``S_w = sum_c sum_{i in c} sum_p
   s_ip (d_i(p) - m_c(p))(d_i(p) - m_c(p))^T`` and ``S_b = sum_c n_c sum_p (m_c(p) - m(p))(...)^T``.
   UV space aligns faces, which is what makes position-wise classes meaningful. **Soft
   sampling** (DFD sec. 3.3): within-class samples are weighted by their distance to the class
   mean relative to the block's median distance, ``s = clip(dist / median, 0.5, 2)``, so hard
   samples count more and outliers cannot dominate. Solved as the generalised eigenproblem
   ``S_b w = lambda (S_w + eps I) w``.
4. **Codebook**, DFD sec. 3.4: k-means (``n_codes`` words) of the filtered PDVs of each block.
5. **Histograms**: every visible texel votes for its nearest word; per-region histograms on a
   ``grid x grid`` partition, unit mass, square-rooted (Hellinger), concatenated: ``grid^2 *
   n_codes`` dimensions (16^2 * 256 = 65,536, the paper's size). The signature's mask holds the
   regions seen (visible fraction >= ``min_visible``) so matching can use jointly visible regions.
6. Optional **PCA + whitening** to a compact template (``compact_dim``, default 128), learned on
   training descriptors (registered as ``dfd-pca``).

Learned parameters live in an ``.npz`` (no pickle) shipped in ``descriptors/data/`` with its
sha256 in ``descriptors/data/MANIFEST.json``; ``training/dfd.py`` makes them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from descriptors.uvprep import (
    hellinger_blocks,
    region_grid,
    region_histograms,
    region_visibility,
    tan_triggs,
    to_gray_float,
)
from pipeline.errors import FaceError, ModelFileError
from pipeline.types import FaceResult, Signature

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: the manifest of a parameters folder that has none yet
EMPTY_MANIFEST: dict[str, Any] = {"default": None, "files": {}}


@dataclass(frozen=True)
class DfdConfig:
    size: int = 128
    radius: int = 2
    n_filters: int = 10
    n_codes: int = 256
    grid: int = 16
    block_grid: int = 4
    min_visible: float = 0.5
    eps: float = 1e-3

    @property
    def dim(self) -> int:
        return self.grid * self.grid * self.n_codes


def preprocess(uv_image: np.ndarray, uv_mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """UV texture -> (Tan-Triggs gray (size, size) float32, mask (size, size) float32)."""
    g = cv2.resize(to_gray_float(uv_image), (size, size), interpolation=cv2.INTER_AREA)
    m = cv2.resize(uv_mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return tan_triggs(g, m), m


def pdv(img: np.ndarray, radius: int) -> np.ndarray:
    """Pixel difference vectors ``(H, W, (2r+1)^2 - 1)`` of a float image (edges replicated)."""
    h, w = img.shape
    pad = np.pad(img, radius, mode="edge")
    out = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx == 0 and dy == 0:
                continue
            out.append(pad[radius + dy : radius + dy + h, radius + dx : radius + dx + w] - img)
    return np.stack(out, -1).astype(np.float32)


def block_ids(size: int, block_grid: int) -> np.ndarray:
    return region_grid(size, block_grid)


def fisher_filters(
    pdvs: np.ndarray, masks: np.ndarray, labels: np.ndarray, n_filters: int, eps: float = 1e-3, soft: bool = True
) -> np.ndarray:
    """Discriminant projection (D, n_filters) from position-aligned PDV samples.

    pdvs: (N, P, D) PDVs of N images at the same P texel positions; masks: (N, P) bool (texel
    seen); labels: (N,) identity. Returns the top generalised eigenvectors of (S_b, S_w + eps I).
    """
    from scipy.linalg import eigh

    N, P, D = pdvs.shape
    Sb = np.zeros((D, D))
    m_all = np.zeros((P, D))
    cnt_all = np.zeros(P)
    means = {}
    for c in np.unique(labels):
        sel = labels == c
        x, mk = pdvs[sel], masks[sel]
        n = mk.sum(0)  # (P,)
        mc = (x * mk[..., None]).sum(0) / np.maximum(n, 1)[:, None]
        means[c] = (mc, n)
        m_all += mc * n[:, None]
        cnt_all += n
    m_all /= np.maximum(cnt_all, 1)[:, None]
    dists, diffs = [], []
    for c, (mc, n) in means.items():
        sel = labels == c
        x, mk = pdvs[sel], masks[sel]
        ok = n >= 2
        d = (x - mc[None]) * (mk & ok[None])[..., None]  # (n_c, P, D)
        diffs.append(d.reshape(-1, D))
        dists.append(np.linalg.norm(d, axis=-1).ravel())
        dm = (mc - m_all) * (ok[:, None])
        Sb += (dm * n[:, None]).T @ dm
    diffs_all = np.concatenate(diffs)
    dist = np.concatenate(dists)
    if soft:
        med = np.median(dist[dist > 0]) if (dist > 0).any() else 1.0
        w = np.clip(dist / max(med, 1e-12), 0.5, 2.0)
    else:
        w = np.ones_like(dist)
    Sw = (diffs_all * w[:, None]).T @ diffs_all
    Sw_reg = Sw + eps * np.trace(Sw) / D * np.eye(D)
    vals, vecs = eigh(Sb, Sw_reg)
    order = np.argsort(vals)[::-1][:n_filters]
    W = vecs[:, order]
    W /= np.linalg.norm(W, axis=0, keepdims=True)
    return W.astype(np.float32)


def kmeans_codebook(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(k, d) k-means centres of samples ``x`` (n, d) (scikit-learn MiniBatchKMeans, k-means++)."""
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3, max_iter=100)
    km.fit(x)
    return km.cluster_centers_.astype(np.float32)


def nearest_code(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row of ``x`` (n, d)."""
    d = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None]
    return d.argmin(1)


@dataclass
class DfdModel:
    """Learned DFD parameters: filters (B, D, F), codebooks (B, K, F), optional PCA."""

    cfg: DfdConfig
    filters: np.ndarray
    codebooks: np.ndarray
    pca_mean: np.ndarray | None = None
    pca_proj: np.ndarray | None = None  # (dim, compact) including whitening
    sha256: str = ""  # of the file it was loaded from (cache keys)

    def codes(self, img: np.ndarray) -> np.ndarray:
        """Word index of every texel ``(S, S)`` of a pre-processed UV image."""
        cfg = self.cfg
        d = pdv(img, cfg.radius).reshape(-1, self.filters.shape[1])
        blocks = block_ids(cfg.size, cfg.block_grid).ravel()
        out = np.zeros(len(d), np.int64)
        for b in range(cfg.block_grid**2):
            sel = blocks == b
            out[sel] = nearest_code(d[sel] @ self.filters[b], self.codebooks[b])
        return out.reshape(cfg.size, cfg.size)

    def describe_uv(self, uv_image: np.ndarray, uv_mask: np.ndarray, compact: bool = False) -> Signature:
        cfg = self.cfg
        img, m = preprocess(uv_image, uv_mask, cfg.size)
        vis = region_visibility(m, cfg.grid) >= cfg.min_visible
        if not vis.any():
            raise FaceError("no visible texture to describe (the UV mask is empty)")
        hist = region_histograms(self.codes(img), (m > 0.5).astype(np.float32), cfg.grid, cfg.n_codes)
        v = (hellinger_blocks(hist) * vis[:, None]).ravel()
        v /= max(float(np.linalg.norm(v)), 1e-12)
        if compact:
            if self.pca_proj is None or self.pca_mean is None:
                raise ModelFileError("this DFD model has no PCA projection; train it with --compact")
            z = (v - self.pca_mean.astype(np.float32)) @ self.pca_proj.astype(np.float32)
            return Signature(
                vector=(z / max(float(np.linalg.norm(z)), 1e-12)).astype(np.float32), mask=None, kind="dfd-compact"
            )
        return Signature(vector=v.astype(np.float32), mask=vis, kind="dfd")

    # -- persistence (npz, no pickle) --------------------------------------------------------
    def save(self, path: Path) -> None:
        import os

        arrays: dict[str, Any] = {  # Any: np.savez_compressed's stubs type **kwds against allow_pickle too
            "filters": self.filters,
            "codebooks": self.codebooks,
            "config": np.array(json.dumps(asdict(self.cfg))),
        }
        if self.pca_proj is not None:  # float16 keeps the shipped file small (65,536 x k)
            assert self.pca_mean is not None, "the PCA mean and projection are set together"
            arrays.update(pca_mean=self.pca_mean.astype(np.float16), pca_proj=self.pca_proj.astype(np.float16))
        tmp = Path(str(path) + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "DfdModel":
        with np.load(path, allow_pickle=False) as z:
            cfg = DfdConfig(**json.loads(str(z["config"])))
            return cls(
                cfg,
                z["filters"],
                z["codebooks"],
                z["pca_mean"] if "pca_mean" in z else None,
                z["pca_proj"] if "pca_proj" in z else None,
            )


def load_shipped(name: str | None = None) -> DfdModel:
    """The shipped DFD model, verified against its sha256 in ``descriptors/data/MANIFEST.json``."""
    from pipeline import manifest as manifests

    folder = DATA_DIR
    man = manifests.read_manifest(folder, what="DFD parameters", command="python -m training.dfd", empty=EMPTY_MANIFEST)
    name = name or man.get("default")
    if not name or name not in man["files"]:
        raise ModelFileError(
            "no trained DFD parameters are shipped in descriptors/data (see MANIFEST.json); "
            "train them with `python -m training.dfd` or use --descriptor lbp"
        )
    entry = manifests.entry(folder, name, manifest=man)
    path = manifests.verified_path(folder, entry, "DFD parameters")
    model = DfdModel.load(path)
    model.sha256 = entry["sha256"]
    return model


class DfdDescriptor:
    """The ``dfd`` descriptor stage (65,536-d masked histograms; ``compact``: the PCA template)."""

    name = "dfd"
    needs_3d = True
    needs_landmarks = True

    def __init__(self, model: str | None = None, compact: bool = False):
        self.model = load_shipped(model)
        self.compact = compact
        self.cache_token = f"{self.model.sha256[:16]}-c{int(compact)}"

    def describe(self, image: np.ndarray, face: FaceResult) -> Signature:
        if face.uv is None:
            raise FaceError("the dfd descriptor needs the UV texture (fit + lift stages)")
        return self.model.describe_uv(face.uv.image, face.uv.mask, self.compact)


class DfdCompactDescriptor(DfdDescriptor):
    name = "dfd-pca"

    def __init__(self, model: str | None = None):
        super().__init__(model, compact=True)


def learn_dfd(
    uv_images: list[np.ndarray],
    uv_masks: list[np.ndarray],
    labels: np.ndarray,
    cfg: DfdConfig = DfdConfig(),
    stride: int = 2,
    codebook_samples: int = 20000,
    compact_dim: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DfdModel:
    """Learn DFD filters and codebooks (and optionally the PCA template) from UV textures of
    training identities. ``stride``: texel sub-sampling for the scatter matrices."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    S = cfg.size
    preps = [preprocess(u, m, S) for u, m in zip(uv_images, uv_masks)]
    blocks = block_ids(S, cfg.block_grid)
    sub = np.zeros((S, S), bool)
    sub[::stride, ::stride] = True
    D = (2 * cfg.radius + 1) ** 2 - 1
    pd = [pdv(img, cfg.radius) for img, _ in preps]
    filters = np.zeros((cfg.block_grid**2, D, cfg.n_filters), np.float32)
    books = np.zeros((cfg.block_grid**2, cfg.n_codes, cfg.n_filters), np.float32)
    for b in tqdm(range(cfg.block_grid**2), desc="DFD blocks", disable=not progress):
        pos = (blocks == b) & sub
        x = np.stack([p[pos] for p in pd])  # (N, P, D)
        mk = np.stack([m[pos] > 0.5 for _, m in preps])  # (N, P)
        if mk.sum() < cfg.n_codes * 4:
            raise FaceError(f"too little visible texture in DFD block {b} to learn from")
        W = fisher_filters(x, mk, labels, cfg.n_filters, cfg.eps)
        filters[b] = W
        full = blocks == b
        feats = np.concatenate([(p[full])[m[full] > 0.5] @ W for p, (_, m) in zip(pd, preps)])
        pick = rng.choice(len(feats), size=min(codebook_samples, len(feats)), replace=False)
        books[b] = kmeans_codebook(feats[pick], cfg.n_codes, seed)
    model = DfdModel(cfg, filters, books)
    if compact_dim:
        vecs = np.stack([model.describe_uv(u, m).vector for u, m in zip(uv_images, uv_masks)])
        mean = vecs.mean(0)
        k = min(compact_dim, len(vecs) - 1)
        _, s, vt = np.linalg.svd(vecs - mean, full_matrices=False)
        proj = vt[:k].T / np.maximum(s[:k] / np.sqrt(len(vecs)), 1e-6)
        model.pca_mean, model.pca_proj = mean.astype(np.float32), proj.astype(np.float32)
    return model
