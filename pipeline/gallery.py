"""Gallery layout, enrollment with a signature cache, and 1-vs-all matching.

Layouts (SPEC section 5): ``DIR/<identity>/*.{jpg,png,...}`` (several images per identity) or
``DIR/<identity>.{jpg,png,...}`` (one image each); both may be mixed. Hidden files (names
starting with ``.``, such as the cache) and non-image files are ignored. Identity names are the
folder name or the file stem as written (spaces and dots are kept: ``J. Doe.jpg`` -> ``J. Doe``).

Matching (:mod:`pipeline.index`): cosine similarity of L2-normalised templates; where both
templates carry per-region visibility masks, only the jointly visible regions are compared.
Several images of one identity are **fused by the maximum** score over that identity's images
(one good gallery image is enough), or by their mean (``fusion="mean"``).

Signature cache
---------------
Enrollment describes each gallery image once; the signatures are kept in a cache file (default
``DIR/.godp-cache.npz``, or any path given) and reused while the image file's **content**
(sha256 of its bytes) and the **pipeline configuration** are unchanged. Only new or changed
files are described, removed files are dropped. Format (``np.savez``, no pickle; loaded with
``allow_pickle=False``):

- ``meta``: a 1-element bytes array (dtype ``S``) holding the UTF-8 JSON object ``{"format":
  "godp-face-gallery-cache", "version": 1, "key": <config key>, "pipeline": {...}, "dim": D,
  "n_regions": R, "written": ISO time, "entries": [{"path": relative POSIX path, "identity",
  "sha256", "status": "ok"|"failed", "message", "row": int (-1 if failed), "has_mask": bool}]}``;
- ``vectors``: (M, D) float32, one row per ``ok`` entry;
- ``masks``: (M, R) float32 region visibility (R = 0 when the descriptor gives no masks).

The config key is the sha256 of the JSON of :meth:`PipelineConfig.to_dict` (stage names and
options), the descriptor class, the version tokens (``cache_token`` or ``version`` attribute,
when a stage has one) of the descriptor and of the landmarker / 3D fitter it uses, and the cache
format version (:func:`pipeline_cache_key`). Images that fail (unreadable, no face, ...) are
cached as failures, so they are not retried until their content changes; they are reported as
warnings on every run. Unexpected internal errors on one image are reported but not cached.

Writes are atomic (temp file in the same folder + ``os.replace``). A sidecar lock file
``<cache>.lock`` is ``fcntl.flock``-ed exclusively for the whole load -> describe -> save
sequence, so concurrent enrollments of one gallery run one after the other (the second one
reuses the first one's work) and never lose or corrupt entries; the lock is released by the
kernel even if the process dies, so it never goes stale (the empty lock file is left in place
on purpose: deleting it would race). A process that waits longer than ``lock_timeout`` (600 s)
goes on without saving. While a large gallery is being described the cache is saved every
``CHECKPOINT_SECONDS``, so an interrupted enrollment resumes where it stopped. A corrupt,
truncated, wrong-version or stale cache is logged as a warning and rebuilt. When the cache
location is not writable (a read-only gallery), an existing cache is still read, new signatures
are not saved, and one warning says so.
"""
from __future__ import annotations

import datetime
import errno
import hashlib
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from pipeline.atomic import current_umask
from pipeline.errors import FaceError, GalleryError, ModelFileError
from pipeline.imageio import is_image_path, load_image
from pipeline.index import FUSIONS, make_index, normalise_rows
from pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)

CACHE_FORMAT = "godp-face-gallery-cache"
CACHE_VERSION = 1
DEFAULT_CACHE_NAME = ".godp-cache.npz"
#: Save the cache at least this often (seconds) while a large gallery is being described.
CHECKPOINT_SECONDS = 60.0


#: Enrollment warns above this many gallery images (matching stays exact; consider --index faiss).
MAX_GALLERY_WARN = 200_000


#: identity-folder names that usually mean the user pointed --gallery one level too high
SUSPECT_IDENTITY_NAMES = frozenset({"gallery", "galleries", "probe", "probes", "images", "enroll", "enrol"})


def scan_gallery(root: str | Path) -> list[tuple[str, Path]]:
    """(identity, image path) pairs of a gallery folder, sorted.

    Skipped with a warning: entries that cannot be read (dangling links, symlink loops,
    permission errors) and folders that are symlinks back into the gallery or above it (they
    would enrol the same images twice). Identity names are case-sensitive: ``Alice/`` and
    ``alice/`` are two identities (a warning names them, since a case-insensitive file system
    cannot hold both). An identity folder named like a gallery or probe folder (``gallery/``,
    ``probes/``...) is enrolled but warned about: the gallery root was probably one level too high."""
    root = Path(root)
    if not root.is_dir():
        raise GalleryError(f"gallery {root} is not a folder; give a folder of <identity>/ sub-folders "
                           f"or <identity>.jpg files")
    real_root = root.resolve()
    items: list[tuple[str, Path]] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            if p.is_dir():
                if p.is_symlink():
                    target = p.resolve()
                    if target == real_root or target in real_root.parents or real_root in target.parents:
                        log.warning("%s: skipped, a symlink back into the gallery (%s)", p, target)
                        continue
                if p.name.lower() in SUSPECT_IDENTITY_NAMES:
                    log.warning("%s: enrolled as ONE identity named %r; if it is a gallery or probe folder itself, "
                                "pass --gallery %s instead", p, p.name, p)
                for q in sorted(p.rglob("*")):
                    if q.is_file() and is_image_path(q) and not q.name.startswith("."):
                        items.append((p.name, q))
            elif p.is_file():
                if is_image_path(p):
                    items.append((p.stem, p))
            elif p.is_symlink():
                log.warning("%s: skipped, a broken symlink or a symlink loop", p)
        except OSError as e:
            log.warning("%s: skipped (%s)", p, e.strerror or e)
    if not items:
        raise GalleryError(f"gallery {root} holds no images (expected <identity>/*.jpg or <identity>.jpg)")
    names = sorted({i for i, _ in items})
    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.casefold(), []).append(n)
    for group in folded.values():
        if len(group) > 1:
            log.warning("identities %s differ only by letter case; they are kept apart", ", ".join(map(repr, group)))
    if len(items) > MAX_GALLERY_WARN:
        log.warning("gallery %s holds %d images (more than %d): enrollment and exact search will be slow; "
                    "consider --index faiss", root, len(items), MAX_GALLERY_WARN)
    return items


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (raises OSError when it cannot be read)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stage_token(stage: object) -> str | None:
    """A stage's version token: its ``cache_token`` (e.g. the sha256 of its weights) or
    ``version`` attribute, if it has one."""
    token = getattr(stage, "cache_token", None) or getattr(stage, "version", None)
    return None if token is None else str(token)


def pipeline_cache_key(pipe: Pipeline) -> tuple[str, dict]:
    """(key, description) identifying what a cached signature depends on besides the image:
    the pipeline configuration, the cache format, and the version tokens of the descriptor and
    of the detector / refiner (unless ``cropped``) and of the landmarker / 3D fitter when the
    descriptor uses them (a stage without a token is
    identified by its registry name only: give weight-bearing stages a ``cache_token``)."""
    desc = pipe.descriptor
    tokens = {"descriptor": _stage_token(desc)}
    detecting = not pipe.config.cropped
    for kind, needed in (("detector", detecting), ("refiner", detecting),
                         ("landmarker", getattr(desc, "needs_landmarks", True)),
                         ("fitter", getattr(desc, "needs_3d", True))):
        if needed:
            try:
                tokens[kind] = _stage_token(pipe._stage(kind))
            except FaceError:  # not built / no weights: describing will report it properly
                tokens[kind] = None
    info = {"config": pipe.config.to_dict(), "descriptor_class": f"{type(desc).__module__}.{type(desc).__qualname__}",
            "stage_versions": tokens, "cache_version": CACHE_VERSION}
    text = json.dumps(info, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


@dataclass
class CacheEntry:
    """One described image: status ``"ok"`` with vector (D,) float32 and optional mask (R,)
    float32, or ``"failed"`` with the reason in ``message``."""

    status: str
    message: str = ""
    vector: np.ndarray | None = None
    mask: np.ndarray | None = None
    transient: bool = False  # a failure that may not recur (an internal error): never cached


@dataclass
class CacheRecord:
    """A gallery file and its signature: path relative to the gallery (POSIX), identity, sha256."""

    path: str
    identity: str
    sha256: str
    entry: CacheEntry


class CacheInvalid(Exception):
    """The cache file cannot be used (the message says why)."""


def read_cache(path: str | Path, key: str | None = None) -> list[CacheRecord]:
    """Records of a cache file. Raises :class:`CacheInvalid` when it is unreadable, corrupt,
    truncated, of another format version or (``key`` given) made with another configuration;
    ``FileNotFoundError`` when it does not exist."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise CacheInvalid("no metadata")
            meta_arr = z["meta"]
            if meta_arr.dtype.kind != "S" or meta_arr.shape != (1,):
                raise CacheInvalid("bad metadata array")
            meta = json.loads(meta_arr[0].decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
                raise CacheInvalid("not a godp-face gallery cache")
            if meta.get("version") != CACHE_VERSION:
                raise CacheInvalid(f"format version {meta.get('version')!r}, this program writes {CACHE_VERSION}")
            if key is not None and meta.get("key") != key:
                raise CacheInvalid("made with another pipeline configuration (descriptor, detector, options...)")
            vectors, masks = z["vectors"], z["masks"]
    except CacheInvalid:
        raise
    except Exception as e:  # noqa: BLE001 - zip/npz/json errors of every kind mean "corrupt"
        raise CacheInvalid(f"unreadable ({type(e).__name__}: {e})") from e
    d, r = meta.get("dim"), meta.get("n_regions")
    entries = meta.get("entries")
    if (vectors.dtype != np.float32 or vectors.ndim != 2 or masks.dtype != np.float32 or masks.ndim != 2
            or masks.shape[0] != vectors.shape[0] or (len(vectors) and (vectors.shape[1] != d or masks.shape[1] != r))
            or not isinstance(entries, list)):
        raise CacheInvalid("arrays do not match the metadata")
    if not np.all(np.isfinite(vectors)):
        raise CacheInvalid("non-finite template values")
    out = []
    try:
        for e in entries:
            if e["status"] == "ok":
                row = int(e["row"])
                if not 0 <= row < len(vectors):
                    raise CacheInvalid("entry row out of range")
                ce = CacheEntry("ok", "", vectors[row].copy(), masks[row].copy() if e.get("has_mask") else None)
            elif e["status"] == "failed":
                ce = CacheEntry("failed", str(e.get("message", "")))
            else:
                raise CacheInvalid(f"unknown entry status {e['status']!r}")
            out.append(CacheRecord(str(e["path"]), str(e["identity"]), str(e["sha256"]), ce))
    except CacheInvalid:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CacheInvalid(f"malformed entry ({type(e).__name__}: {e})") from e
    return out


def write_cache(path: str | Path, key: str, info: dict, records: list[CacheRecord]) -> None:
    """Write ``records`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    path = Path(path)
    oks = [r for r in records if r.entry.status == "ok"]
    d = int(oks[0].entry.vector.shape[0]) if oks else 0
    rs = {int(r.entry.mask.shape[0]) for r in oks if r.entry.mask is not None}
    if len(rs) > 1:
        raise GalleryError(f"the descriptor returned masks of different lengths {sorted(rs)}")
    r_ = rs.pop() if rs else 0
    vectors = np.zeros((len(oks), d), dtype=np.float32)
    masks = np.ones((len(oks), r_), dtype=np.float32)
    entries, row = [], 0
    for rec in records:
        e = {"path": rec.path, "identity": rec.identity, "sha256": rec.sha256, "status": rec.entry.status,
             "message": rec.entry.message, "row": -1, "has_mask": False}
        if rec.entry.status == "ok":
            vectors[row] = rec.entry.vector
            if rec.entry.mask is not None:
                masks[row] = rec.entry.mask
                e["has_mask"] = True
            e["row"] = row
            row += 1
        entries.append(e)
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key, "pipeline": info, "dim": d,
            "n_regions": r_, "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "entries": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a shared gallery's cache stays readable
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array([json.dumps(meta, ensure_ascii=False).encode("utf-8")]), vectors=vectors,
                     masks=masks)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _open_lock(lock_path: Path) -> int:
    """Open (creating) the sidecar lock file; OSError when the location is not writable."""
    return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)


@contextmanager
def cache_lock(cache_path: Path, timeout: float | None = 600.0) -> Iterator[bool]:
    """Hold an exclusive ``fcntl.flock`` on ``<cache_path>.lock`` while in the block.

    Yields True when the lock is held; False when the lock file cannot be created (read-only
    location) or it stayed busy for ``timeout`` seconds (None: wait as long as it takes). Both
    cases are logged; the caller then must not write the cache.
    """
    fd = _acquire_lock(cache_path, timeout)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _acquire_lock(cache_path: Path, timeout: float | None) -> int | None:
    """The locked descriptor of ``<cache_path>.lock``, or None (logged) when that cannot be had."""
    import fcntl

    lock_path = cache_path.with_name(cache_path.name + ".lock")
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(lock_path)
    except OSError as e:
        log.warning("cannot write the gallery cache at %s (%s); continuing without caching new signatures "
                    "(use --cache PATH to keep the cache elsewhere)", cache_path, e.strerror or e)
        return None
    t0, told = time.monotonic(), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                log.warning("cannot lock %s (%s); continuing without caching new signatures", lock_path,
                            e.strerror or e)
                os.close(fd)
                return None
        if not told:
            log.warning("waiting for another process that is enrolling this gallery (lock %s)", lock_path)
            told = True
        if timeout is not None and time.monotonic() - t0 > timeout:
            log.warning("the gallery cache %s stayed locked by another process for %.0f s; continuing "
                        "without saving new signatures", cache_path, timeout)
            os.close(fd)
            return None
        time.sleep(0.05)


def default_cache_path(root: str | Path) -> Path:
    return Path(root) / DEFAULT_CACHE_NAME


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
            self._index = make_index(self.index_kind, self.vectors, self.groups, len(self.names), self.masks,
                                     self.fusion)
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
        return CacheEntry("failed", msg[len(str(path)) + 2:] if msg.startswith(f"{path}: ") else msg)
    except Exception as e:  # noqa: BLE001 - one odd image must not end a long enrollment
        log.debug("internal error on gallery image %s", path, exc_info=True)
        return CacheEntry("failed", f"internal error: {type(e).__name__}: {e} (not cached; -vv shows the traceback)",
                          transient=True)
    sig = face.signature
    v = np.asarray(sig.vector, dtype=np.float32).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)) or not np.linalg.norm(v) > 0:
        return CacheEntry("failed", "the descriptor returned an empty or invalid template")
    mask = None if sig.mask is None else np.asarray(sig.mask, dtype=np.float32).reshape(-1)
    return CacheEntry("ok", "", normalise_rows(v), mask)


def enroll(pipe: Pipeline, root: str | Path, progress: bool = True, cache: str | Path | None = "auto",
           fusion: str = "max", lock_timeout: float | None = 600.0) -> Gallery:
    """Describe every gallery image (the largest face of each), reusing cached signatures.

    cache: ``"auto"`` (``DIR/.godp-cache.npz``), a path, or None (no cache). Unreadable images
    and images without a face are skipped with a warning (and cached as failures). Raises
    :class:`GalleryError` when the gallery is missing or empty, or no image could be enrolled.
    """
    if fusion not in FUSIONS:
        raise GalleryError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
    root = Path(root)
    items = scan_gallery(root)
    cache_path = None if cache is None else default_cache_path(root) if cache == "auto" else Path(cache)
    key, info = pipeline_cache_key(pipe)
    stats = {"images": len(items), "cached": 0, "described": 0, "failed": 0, "removed": 0, "unhashable": 0}
    with (cache_lock(cache_path, lock_timeout) if cache_path is not None else _no_lock()) as writable:
        old = []
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
            (p.relative_to(root).as_posix(), s) for _, _, p, s in todo}
        stats["removed"] = sum((r.path, r.sha256) not in current for r in old)
        if cache_path is not None:
            log.info("gallery %s: %d images, %d from the cache %s, %d to describe", root, len(items),
                     stats["cached"], cache_path, len(todo))
        last_save = time.monotonic()
        bar = tqdm(todo, desc="enrolling gallery", unit="img", disable=not progress or not todo)
        for slot, ident, path, sha in bar:
            entry = known.get(sha)  # the same content twice in one gallery is described once
            if entry is None:
                entry = _describe(pipe, path)
                known[sha] = entry
                stats["described"] += 1
            records[slot] = CacheRecord(path.relative_to(root).as_posix(), ident, sha, entry)
            if writable and time.monotonic() - last_save > CHECKPOINT_SECONDS:
                _save(cache_path, key, info, [r for r in records if r is not None and not r.entry.transient])
                last_save = time.monotonic()
        done = [r for r in records if r is not None]
        keep = [r for r in done if not r.entry.transient]
        changed = [(r.path, r.identity, r.sha256) for r in keep] != [(r.path, r.identity, r.sha256) for r in old]
        if writable and changed:
            _save(cache_path, key, info, keep)
    vecs, masks, ids, paths = [], [], [], []
    for rec in done:
        full = root / rec.path
        if rec.entry.status == "ok":
            vecs.append(rec.entry.vector)
            masks.append(rec.entry.mask)
            ids.append(rec.identity)
            paths.append(str(full))
        else:
            failures.append((str(full), rec.entry.message))
    for p, msg in failures:
        log.warning("gallery image skipped: %s: %s", p, msg)
    stats.update(templates=len(vecs), failed=len(failures))
    log.info("gallery: %d templates of %d identities (%d from the cache, %d described, %d failed, %d removed "
             "from the cache)", len(vecs), len(set(ids)), stats["cached"], stats["described"], len(failures),
             stats["removed"])
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
    try:
        write_cache(cache_path, key, info, records)
        log.debug("gallery cache written: %s (%d entries)", cache_path, len(records))
    except OSError as e:
        log.warning("cannot write the gallery cache %s (%s); continuing without it", cache_path, e.strerror or e)


@contextmanager
def _no_lock() -> Iterator[bool]:
    yield False
