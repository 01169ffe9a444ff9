"""Template matching: cosine scores (plain or masked by joint region visibility), fusion of
several templates per identity, top-k selection, and two search indexes behind one interface.

Conventions
-----------
- A **template** is a float32 vector ``(D,)``; descriptors return L2-normalised vectors and the
  functions here re-normalise defensively, so a score is always a cosine in ``[-1, 1]``.
- A **region mask** ``(R,)`` (bool, or float visibility in ``[0, 1]``; a region counts as visible
  when its value is ``>= VISIBLE_THRESHOLD``) says which of the R regions of a template were seen.
  A masked template's vector is the concatenation of R equal-length region blocks
  (``D = R * B``), as the DFD and LBP descriptors produce.
- A gallery holds N templates of G identities; ``groups`` ``(N,)`` int maps each template to its
  identity ``0 .. G-1`` (every identity has at least one template).
- **Fusion** of an identity's templates: ``"max"`` (the best score over its templates, the
  default: one good gallery image is enough) or ``"mean"`` (the average score).

Indexes (:func:`make_index`): ``"numpy"`` (exact, vectorised, handles masks) and ``"faiss"``
(``faiss-cpu``, the optional extra ``.[faiss]``: exact inner-product ``IndexFlatIP``; for masked
templates it falls back to numpy). Both return the same identities and scores up to float32
rounding.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

#: A region whose mask value is at least this counts as visible.
VISIBLE_THRESHOLD = 0.5
FUSIONS = ("max", "mean")
INDEX_KINDS = ("numpy", "faiss")


# -- pure maths ----------------------------------------------------------------------------------
def normalise_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (..., D) as float32 with unit L2-norm rows (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def visibility(mask: np.ndarray) -> np.ndarray:
    """A region mask (bool, or float in [0, 1]) as bool: visible where ``>= VISIBLE_THRESHOLD``."""
    m = np.asarray(mask)
    return m.astype(bool) if m.dtype == bool else m >= VISIBLE_THRESHOLD


def cosine_scores(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Plain cosine similarity.

    probes: (D,) or (P, D); gallery: (N, D). Returns (N,) or (P, N) float32.
    """
    p = normalise_rows(probes)
    return normalise_rows(gallery) @ p if p.ndim == 1 else p @ normalise_rows(gallery).T


def masked_cosine_scores(
    probe: np.ndarray, probe_mask: np.ndarray | None, gallery: np.ndarray, gallery_masks: np.ndarray | None
) -> np.ndarray:
    """Cosine similarity restricted to the regions visible in both templates.

    probe: (D,); probe_mask: (R,) or None; gallery: (N, D); gallery_masks: (N, R) or None.
    With ``D = R * B`` write ``p_r``, ``g_r`` (B,) for the region blocks and ``J`` for the set
    of regions visible in both (``probe_mask[r]`` and ``gallery_masks[n, r]``). Then

        score(p, g) = sum_{r in J} <p_r, g_r> / ( sqrt(sum_{r in J} |p_r|^2) * sqrt(sum_{r in J} |g_r|^2) )

    i.e. the plain cosine of the two vectors restricted to the jointly visible blocks. When
    every region is visible in both this **is** the plain cosine; when no region is jointly
    visible (or a restricted vector is zero) the score is 0 (no evidence either way). When
    either side carries no mask (``None``) the plain cosine is returned. Returns (N,) float32.
    """
    gallery = np.asarray(gallery, dtype=np.float32)
    if probe_mask is None or gallery_masks is None:
        return cosine_scores(probe, gallery)
    pm = visibility(probe_mask)
    gm = visibility(gallery_masks)
    n, d = gallery.shape
    r = pm.shape[0]
    if gm.shape != (n, r):
        raise ValueError(f"gallery masks must be ({n}, {r}), got {gm.shape}")
    if r == 0 or d % r:
        raise ValueError(f"a {d}-d template cannot be split into {r} equal region blocks")
    gb = gallery.reshape(n, r, d // r)
    return _masked_blocks(
        np.asarray(probe, np.float32).reshape(r, d // r), pm, gb, np.einsum("nrb,nrb->nr", gb, gb), gm
    )


def _masked_blocks(pb: np.ndarray, pm: np.ndarray, gb: np.ndarray, gn2: np.ndarray, gm: np.ndarray) -> np.ndarray:
    """The formula of :func:`masked_cosine_scores` on region blocks: pb (R, B), pm (R,) bool,
    gb (N, R, B), gn2 (N, R) squared block norms of gb, gm (N, R) bool -> (N,) float32."""
    joint = (gm & pm[None, :]).astype(np.float32)  # (N, R)
    dots = np.einsum("nrb,rb->nr", gb, pb)  # (N, R)
    num = (dots * joint).sum(axis=1)
    den = np.sqrt((joint @ (pb * pb).sum(axis=1)) * (joint * gn2).sum(axis=1))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0).astype(np.float32)


def group_layout(groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order (N,), starts (G,), counts (G,)): ``groups[order]`` is sorted and group g occupies
    ``order[starts[g] : starts[g] + counts[g]]``. Raises ValueError when a group has no template."""
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    if len(starts) != n_groups or g[0] != 0 or g[-1] != n_groups - 1:
        raise ValueError("every group 0 .. n_groups-1 needs at least one template")
    return order, starts, np.diff(np.r_[starts, len(g)])


def fuse_scores(
    scores: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    method: str = "max",
    layout: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-identity scores from per-template scores.

    scores: (N,) or (P, N); groups: (N,) int in ``[0, n_groups)``, every group present.
    method: ``"max"`` (best template) or ``"mean"`` (average over the identity's templates).
    layout: :func:`group_layout` of ``groups`` when already computed. Returns (n_groups,) or
    (P, n_groups).
    """
    if method not in FUSIONS:
        raise ConfigError(f"unknown fusion {method!r}; choose one of: {', '.join(FUSIONS)}")
    s = np.asarray(scores)
    if len(groups) == n_groups and layout is None and np.array_equal(groups, np.arange(n_groups)):
        return s  # one template per identity, in order
    order, starts, counts = layout if layout is not None else group_layout(groups, n_groups)
    if len(order) == n_groups and np.array_equal(order, np.arange(n_groups)):
        return s
    s = s[..., order]
    if method == "max":
        return np.maximum.reduceat(s, starts, axis=-1)
    return np.add.reduceat(s, starts, axis=-1) / counts


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of ``scores`` (G,) or (P, G), best first; ties go to the lower
    index. Returns (indices, scores), each (min(k, G),) or (P, min(k, G))."""
    s = np.atleast_2d(np.asarray(scores))
    p, g = s.shape
    k = max(0, min(int(k), g))
    if k == 0:
        idx = np.zeros((p, 0), dtype=np.int64)
    else:
        cand = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < g else np.broadcast_to(np.arange(g), (p, g))
        cs = np.take_along_axis(s, cand, axis=1)
        o = np.lexsort((cand, -cs), axis=1)
        idx = np.take_along_axis(cand, o, axis=1)
    out = np.take_along_axis(s, idx, axis=1)
    return (idx[0], out[0]) if np.ndim(scores) == 1 else (idx, out)


# -- indexes -------------------------------------------------------------------------------------
class NumpyIndex:
    """Exact search with numpy (handles region masks).

    vectors: (N, D); groups: (N,) int identity of each template; n_groups: G; masks: (N, R)
    or None (a row of ones = no mask for that template); fusion: ``"max"`` | ``"mean"``.
    """

    kind = "numpy"

    def __init__(
        self,
        vectors: np.ndarray,
        groups: np.ndarray,
        n_groups: int,
        masks: np.ndarray | None = None,
        fusion: str = "max",
    ):
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
        self.vectors = normalise_rows(vectors)
        self.groups = np.asarray(groups, dtype=np.int64)
        self.n_groups = int(n_groups)
        self.fusion = fusion
        self._layout = group_layout(self.groups, self.n_groups)
        self.masks = None if masks is None else visibility(masks)
        if self.masks is not None:
            n, d = self.vectors.shape
            r = self.masks.shape[1]
            if self.masks.shape[0] != n or r == 0 or d % r:
                raise ValueError(f"masks {self.masks.shape} do not fit templates {self.vectors.shape}")
            self._blocks = self.vectors.reshape(n, r, d // r)
            self._bn2 = np.einsum("nrb,nrb->nr", self._blocks, self._blocks)

    def template_scores(
        self, probes: np.ndarray, masks: Sequence[np.ndarray | None] | np.ndarray | None = None
    ) -> np.ndarray:
        """Per-template scores (P, N) of probes (P, D) (masks: (P, R), a list with None
        entries, or None)."""
        probes = normalise_rows(np.atleast_2d(probes))
        if self.masks is None or masks is None or all(m is None for m in masks):
            return probes @ self.vectors.T
        out = np.empty((len(probes), len(self.vectors)), dtype=np.float32)
        r = self.masks.shape[1]
        for i, (p, m) in enumerate(zip(probes, masks)):
            if m is None:
                out[i] = self.vectors @ p
            else:
                pm = visibility(m)
                if pm.shape != (r,):
                    raise ValueError(f"probe mask has shape {pm.shape}, the gallery's masks have {r} regions")
                out[i] = _masked_blocks(p.reshape(r, -1), pm, self._blocks, self._bn2, self.masks)
        return out

    def search(self, probes: np.ndarray, k: int, masks=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` identities of each probe: probes (P, D) -> (indices (P, k'), scores (P, k'))
        with k' = min(k, G), best first."""
        fused = fuse_scores(self.template_scores(probes, masks), self.groups, self.n_groups, self.fusion, self._layout)
        return top_k(fused, k)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401 - imported to prove it loads (find_spec misses a broken install)
    except ImportError:
        return False
    return True


def require_faiss():
    try:
        import faiss
    except ImportError as e:
        raise ConfigError(
            "--index faiss needs the faiss-cpu package, which is not installed "
            "(pip install -e '.[faiss]'), or use --index numpy"
        ) from e
    return faiss


class FaissIndex:
    """Exact inner-product search with FAISS (``IndexFlatIP``) on unit vectors (no masks).

    ``max`` fusion: the nearest templates are fetched (doubling how many until ``k`` distinct
    identities appear, so the result is exact); ``mean`` fusion: the mean of an identity's
    cosines equals the inner product with the mean of its unit templates, so those G mean
    vectors are indexed instead.
    """

    kind = "faiss"

    def __init__(self, vectors: np.ndarray, groups: np.ndarray, n_groups: int, fusion: str = "max"):
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
        faiss = require_faiss()
        v = normalise_rows(vectors)
        self.groups = np.asarray(groups, dtype=np.int64)
        self.n_groups = int(n_groups)
        self.fusion = fusion
        if fusion == "mean":
            counts = np.bincount(self.groups, minlength=self.n_groups).astype(np.float32)
            means = np.zeros((self.n_groups, v.shape[1]), dtype=np.float32)
            np.add.at(means, self.groups, v)
            v = means / counts[:, None]
        self._index = faiss.IndexFlatIP(v.shape[1])
        self._index.add(np.ascontiguousarray(v, dtype=np.float32))

    def search(self, probes: np.ndarray, k: int, masks=None) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`NumpyIndex.search` (``masks`` must be None)."""
        if masks is not None and not all(m is None for m in masks):
            raise ValueError("FaissIndex does not handle region masks; use NumpyIndex")
        q = np.ascontiguousarray(normalise_rows(np.atleast_2d(probes)))
        p = len(q)
        k = max(0, min(int(k), self.n_groups))
        if self.fusion == "mean":
            s, i = self._index.search(q, k)
            return i.astype(np.int64), s.astype(np.float32)
        idx = np.zeros((p, k), dtype=np.int64)
        out = np.zeros((p, k), dtype=np.float32)
        todo = np.arange(p)
        n = self._index.ntotal
        t = min(n, max(2 * k, 16))
        while len(todo):
            s, i = self._index.search(q[todo], t)
            again = []
            for row, pi in enumerate(todo):
                g = self.groups[i[row]]
                _, first = np.unique(g, return_index=True)  # the best template of each identity
                if len(first) < k and t < n:
                    again.append(pi)
                    continue
                first = np.sort(first)[:k]  # search order = descending score
                gs, ss = g[first], s[row, first]
                o = np.lexsort((gs, -ss))  # ties to the lower identity index, as numpy
                idx[pi], out[pi] = gs[o], ss[o]
            todo = np.asarray(again, dtype=np.int64)
            t = min(n, 2 * t)
        return idx, out


def make_index(
    kind: str,
    vectors: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    masks: np.ndarray | None = None,
    fusion: str = "max",
):
    """Build a ``"numpy"`` or ``"faiss"`` index (see the module docstring). FAISS with region
    masks falls back to numpy (logged); FAISS not installed raises :class:`ConfigError`."""
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown index {kind!r}; choose one of: {', '.join(INDEX_KINDS)}")
    if kind == "faiss":
        require_faiss()
        if masks is not None:
            log.warning(
                "note: the gallery templates carry region masks; FAISS handles plain cosine only, "
                "so the exact numpy index is used"
            )
            return NumpyIndex(vectors, groups, n_groups, masks, fusion)
        return FaissIndex(vectors, groups, n_groups, fusion)
    return NumpyIndex(vectors, groups, n_groups, masks, fusion)
