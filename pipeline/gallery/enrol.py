"""Enrollment of a gallery with the signature cache, and 1-vs-all matching.

:func:`enroll` scans the gallery (:mod:`pipeline.gallery.layout`), describes each image's largest
face once and keeps the signatures in the cache (:mod:`pipeline.gallery.cache`), reused while the
image file's content and the pipeline configuration (:func:`pipeline_cache_key`) are unchanged.
Only new or changed files are described, removed files are dropped. The whole load -> describe
-> save sequence runs under the cache's lock (:mod:`pipeline.gallery.lock`); a process that could
not get the lock, or cannot write the cache location, describes what it needs and saves nothing.

Images that fail (unreadable, no face, ...) are cached as failures, so they are not retried until
their content changes; they are reported as warnings on every run. Unexpected internal errors on
one image are reported but not cached. While a large gallery is being described the cache is
saved every :data:`CHECKPOINT_SECONDS`, so an interrupted enrollment resumes where it stopped. A
corrupt, truncated, wrong-version or stale cache is logged as a warning and rebuilt.

Matching (:mod:`pipeline.index`): cosine similarity of L2-normalised templates; where both
templates carry per-region visibility masks, only the jointly visible regions are compared.
Several images of one identity are **fused by the maximum** score over that identity's images
(one good gallery image is enough), or by their mean (``fusion="mean"``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from pipeline.errors import FaceError, GalleryError, ModelFileError
from pipeline.gallery.cache import (
    CACHE_VERSION,
    CacheEntry,
    CacheInvalid,
    CacheRecord,
    default_cache_path,
    file_sha256,
    read_cache,
    write_cache,
)
from pipeline.gallery.layout import scan_gallery
from pipeline.gallery.lock import cache_lock
from pipeline.imageio import load_image
from pipeline.index import FUSIONS, make_index, normalise_rows
from pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Save the cache at least this often (seconds) while a large gallery is being described. Read at
#: each save, from this module: set ``pipeline.gallery.enrol.CHECKPOINT_SECONDS`` to change it.
CHECKPOINT_SECONDS = 60.0


def _stage_token(stage: object) -> str | None:
    """A stage's version token: its ``cache_token`` (e.g. the sha256 of its weights) or
    ``version`` attribute, if it has one."""
    token = getattr(stage, "cache_token", None) or getattr(stage, "version", None)
    return None if token is None else str(token)


def pipeline_cache_key(pipe: Pipeline) -> tuple[str, dict]:
    """(key, description) identifying what a cached signature depends on besides the image.

    The key is the sha256 of the JSON of the pipeline configuration
    (:meth:`PipelineConfig.to_dict`: stage names and options), the descriptor class, the cache
    format version, and the version tokens (``cache_token`` or ``version`` attribute) of the
    descriptor, of the detector / refiner (unless ``cropped``) and of the landmarker / 3D fitter
    when the descriptor uses them (a stage without a token is identified by its registry name
    only: give weight-bearing stages a ``cache_token``)."""
    desc = pipe.descriptor
    tokens = {"descriptor": _stage_token(desc)}
    detecting = not pipe.config.cropped
    for kind, needed in (
        ("detector", detecting),
        ("refiner", detecting),
        ("landmarker", getattr(desc, "needs_landmarks", True)),
        ("fitter", getattr(desc, "needs_3d", True)),
    ):
        if needed:
            try:
                tokens[kind] = _stage_token(pipe._stage(kind))
            except FaceError:  # not built / no weights: describing will report it properly
                tokens[kind] = None
    info = {
        "config": pipe.config.to_dict(),
        "descriptor_class": f"{type(desc).__module__}.{type(desc).__qualname__}",
        "stage_versions": tokens,
        "cache_version": CACHE_VERSION,
    }
    text = json.dumps(info, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


def _load_records(cache_path: Path, key: str) -> tuple[list[CacheRecord], bool]:
    """(records, usable): the cached records, or [] with a warning when the file is unusable."""
    try:
        return read_cache(cache_path, key), True
    except FileNotFoundError:
        return [], False
    except CacheInvalid as e:
        log.warning("gallery cache %s is unusable (%s); rebuilding it", cache_path, e)
    except OSError as e:
        log.warning("gallery cache %s cannot be read (%s); rebuilding it", cache_path, e.strerror or e)
    return [], False


# -- gallery -------------------------------------------------------------------------------------
@dataclass
class Gallery:
    """Enrolled templates.

    vectors: (N, D) float32 unit rows; identities / paths: (N,) per template; masks: (N, R)
    float32 region visibility or None (no template has one; a template without a mask in a
    masked gallery has a row of ones); fusion: how an identity's templates are combined
    (``"max"`` | ``"mean"``); failures: (path, reason) of gallery images not enrolled; stats:
    counts of the enrollment (``templates``, ``cached``, ``described``, ``failed``, ``removed``).
    """

    vectors: np.ndarray
    identities: list[str]
    paths: list[str]
    masks: np.ndarray | None = None
    fusion: str = "max"
    failures: list[tuple[str, str]] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    index_kind: str = "numpy"

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise GalleryError(f"unknown fusion {self.fusion!r}; choose one of: {', '.join(FUSIONS)}")
        self.names = sorted(set(self.identities))
        code = {n: i for i, n in enumerate(self.names)}
        self.groups = np.array([code[i] for i in self.identities], dtype=np.int64)
        self._index = None

    def use_index(self, kind: str) -> None:
        """Select the search index (``"numpy"`` | ``"faiss"``); built on the next match."""
        self.index_kind, self._index = kind, None

    @property
    def index(self):
        if self._index is None:
            self._index = make_index(
                self.index_kind, self.vectors, self.groups, len(self.names), self.masks, self.fusion
            )
        return self._index

    def match(self, vector: np.ndarray, top_k: int = 5, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Identities ranked by their fused score against ``vector`` (D,) (``mask``: its region
        visibility (R,) or None), best first, at most ``top_k``."""
        idx, scores = self.index.search(np.asarray(vector)[None], top_k, None if mask is None else [mask])
        return [(self.names[i], float(s)) for i, s in zip(idx[0], scores[0])]


def _describe(pipe: Pipeline, path: Path) -> CacheEntry:
    """Signature of the largest face of ``path`` as a cache entry (failures as values; errors
    that are not about this image, such as a configuration or model-file error, are raised)."""
    try:
        face = pipe.run(load_image(path, pipe.config.max_pixels), until="describe")[0]
    except ModelFileError:
        raise
    except FaceError as e:
        if e.exit_code == 2:
            raise
        msg = str(e)
        return CacheEntry("failed", msg[len(str(path)) + 2 :] if msg.startswith(f"{path}: ") else msg)
    except Exception as e:  # noqa: BLE001 - one odd image must not end a long enrollment
        log.debug("internal error on gallery image %s", path, exc_info=True)
        return CacheEntry(
            "failed", f"internal error: {type(e).__name__}: {e} (not cached; -vv shows the traceback)", transient=True
        )
    sig = face.signature
    assert sig is not None  # run(until="describe") describes every face
    v = np.asarray(sig.vector, dtype=np.float32).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)) or not np.linalg.norm(v) > 0:
        return CacheEntry("failed", "the descriptor returned an empty or invalid template")
    mask = None if sig.mask is None else np.asarray(sig.mask, dtype=np.float32).reshape(-1)
    return CacheEntry("ok", "", normalise_rows(v), mask)


def enroll(
    pipe: Pipeline,
    root: str | Path,
    progress: bool = True,
    cache: str | Path | None = "auto",
    fusion: str = "max",
    lock_timeout: float | None = 600.0,
) -> Gallery:
    """Describe every gallery image (the largest face of each), reusing cached signatures.

    cache: ``"auto"`` (``DIR/.godp-cache.npz``), a path, or None (no cache). lock_timeout:
    seconds to wait for another process enrolling with the same cache before going on without
    saving (None: no limit). Unreadable images and images without a face are skipped with a
    warning (and cached as failures). Raises :class:`GalleryError` when the gallery is missing or
    empty, or no image could be enrolled.
    """
    if fusion not in FUSIONS:
        raise GalleryError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
    root = Path(root)
    items = scan_gallery(root)
    cache_path = None if cache is None else default_cache_path(root) if cache == "auto" else Path(cache)
    key, info = pipeline_cache_key(pipe)
    stats = {"images": len(items), "cached": 0, "described": 0, "failed": 0, "removed": 0, "unhashable": 0}
    with cache_lock(cache_path, lock_timeout) if cache_path is not None else _no_lock() as writable:
        old: list[CacheRecord] = []
        if cache_path is not None:
            old, _ = _load_records(cache_path, key)
        known = {r.sha256: r.entry for r in old}
        records: list[CacheRecord | None] = []
        todo: list[tuple[int, str, Path, str]] = []
        failures: list[tuple[str, str]] = []
        for ident, path in items:
            rel = path.relative_to(root).as_posix()
            try:
                sha = file_sha256(path)
            except OSError as e:
                failures.append((str(path), f"cannot read ({e.strerror or e})"))
                stats["unhashable"] += 1
                continue
            if sha in known:
                records.append(CacheRecord(rel, ident, sha, known[sha]))
                stats["cached"] += 1
            else:
                todo.append((len(records), ident, path, sha))
                records.append(None)
        current = {(r.path, r.sha256) for r in records if r is not None} | {
            (p.relative_to(root).as_posix(), s) for _, _, p, s in todo
        }
        stats["removed"] = sum((r.path, r.sha256) not in current for r in old)
        if cache_path is not None:
            log.info(
                "gallery %s: %d images, %d from the cache %s, %d to describe",
                root,
                len(items),
                stats["cached"],
                cache_path,
                len(todo),
            )
        last_save = time.monotonic()
        bar = tqdm(todo, desc="enrolling gallery", unit="img", disable=not progress or not todo)
        for slot, ident, path, sha in bar:
            entry = known.get(sha)  # the same content twice in one gallery is described once
            if entry is None:
                entry = _describe(pipe, path)
                known[sha] = entry
                stats["described"] += 1
            records[slot] = CacheRecord(path.relative_to(root).as_posix(), ident, sha, entry)
            # writable: the cache lock is held, so there is a cache_path (_no_lock yields False)
            if writable and cache_path is not None and time.monotonic() - last_save > CHECKPOINT_SECONDS:
                _save(cache_path, key, info, [r for r in records if r is not None and not r.entry.transient])
                last_save = time.monotonic()
        done = [r for r in records if r is not None]
        keep = [r for r in done if not r.entry.transient]
        changed = [(r.path, r.identity, r.sha256) for r in keep] != [(r.path, r.identity, r.sha256) for r in old]
        if writable and changed and cache_path is not None:
            _save(cache_path, key, info, keep)
    vecs: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    ids: list[str] = []
    paths: list[str] = []
    for rec in done:
        full = root / rec.path
        if rec.entry.status == "ok":
            assert rec.entry.vector is not None  # an "ok" entry always carries its vector
            vecs.append(rec.entry.vector)
            masks.append(rec.entry.mask)
            ids.append(rec.identity)
            paths.append(str(full))
        else:
            failures.append((str(full), rec.entry.message))
    for p, msg in failures:
        log.warning("gallery image skipped: %s: %s", p, msg)
    stats.update(templates=len(vecs), failed=len(failures))
    log.info(
        "gallery: %d templates of %d identities (%d from the cache, %d described, %d failed, %d removed "
        "from the cache)",
        len(vecs),
        len(set(ids)),
        stats["cached"],
        stats["described"],
        len(failures),
        stats["removed"],
    )
    if not vecs:
        raise GalleryError(f"no gallery image of {root} could be enrolled (see the warnings above)")
    dims = {v.shape[0] for v in vecs}
    if len(dims) > 1:
        raise GalleryError(f"gallery templates have different lengths {sorted(dims)}; delete the cache and retry")
    mask_arr = None
    if any(m is not None for m in masks):
        rs = {m.shape[0] for m in masks if m is not None}
        if len(rs) > 1:
            raise GalleryError(f"gallery region masks have different lengths {sorted(rs)}")
        r_ = rs.pop()
        mask_arr = np.stack([np.ones(r_, np.float32) if m is None else m for m in masks]).astype(np.float32)
    return Gallery(np.stack(vecs).astype(np.float32), ids, paths, mask_arr, fusion, failures, stats)


def _save(cache_path: Path, key: str, info: dict, records: list[CacheRecord]) -> None:
    """Write the cache (a checkpoint or the final state); a write error is a warning, not fatal."""
    try:
        write_cache(cache_path, key, info, records)
        log.debug("gallery cache written: %s (%d entries)", cache_path, len(records))
    except OSError as e:
        log.warning("cannot write the gallery cache %s (%s); continuing without it", cache_path, e.strerror or e)


@contextmanager
def _no_lock() -> Iterator[bool]:
    """Stands in for :func:`cache_lock` when there is no cache: nothing to lock, nothing to write."""
    yield False
