"""The gallery signature cache: one ``.npz`` file of the signatures of a gallery's images.

Enrollment describes each gallery image once; the signatures are kept in a cache file (default
``DIR/.godp-cache.npz``, :func:`default_cache_path`, or any path given) and reused while the image
file's **content** (sha256 of its bytes, :func:`file_sha256`) and the **pipeline configuration**
(the key, :func:`pipeline.gallery.enrol.pipeline_cache_key`) are unchanged.

Format (``np.savez``, no pickle; loaded with ``allow_pickle=False``):

- ``meta``: a 1-element bytes array (dtype ``S``) holding the UTF-8 JSON object ``{"format":
  "godp-face-gallery-cache", "version": 1, "key": <config key>, "pipeline": {...}, "dim": D,
  "n_regions": R, "written": ISO time, "entries": [{"path": relative POSIX path, "identity",
  "sha256", "status": "ok"|"failed", "message", "row": int (-1 if failed), "has_mask": bool}]}``;
- ``vectors``: (M, D) float32, one row per ``ok`` entry;
- ``masks``: (M, R) float32 region visibility (R = 0 when the descriptor gives no masks).

Images that failed (unreadable, no face, ...) are stored as ``failed`` entries, so they are not
retried until their content changes. The file is written atomically (:mod:`pipeline.atomic`:
temp file in the same folder, fsync, ``os.replace``), so a reader sees the old cache or the new
one, never a partial one. :func:`read_cache` rejects a corrupt, truncated, wrong-version or
(with ``key``) stale file with :class:`CacheInvalid`.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_write_bytes
from pipeline.errors import GalleryError

CACHE_FORMAT = "godp-face-gallery-cache"
CACHE_VERSION = 1
DEFAULT_CACHE_NAME = ".godp-cache.npz"


def default_cache_path(root: str | Path) -> Path:
    """The cache file used when none is given: ``<root>/.godp-cache.npz``."""
    return Path(root) / DEFAULT_CACHE_NAME


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (raises OSError when it cannot be read)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    if (
        vectors.dtype != np.float32
        or vectors.ndim != 2
        or masks.dtype != np.float32
        or masks.ndim != 2
        or masks.shape[0] != vectors.shape[0]
        or (len(vectors) and (vectors.shape[1] != d or masks.shape[1] != r))
        or not isinstance(entries, list)
    ):
        raise CacheInvalid("arrays do not match the metadata")
    if not np.all(np.isfinite(vectors)):
        raise CacheInvalid("non-finite template values")
    out = []
    try:
        for ent in entries:
            if ent["status"] == "ok":
                row = int(ent["row"])
                if not 0 <= row < len(vectors):
                    raise CacheInvalid("entry row out of range")
                ce = CacheEntry("ok", "", vectors[row].copy(), masks[row].copy() if ent.get("has_mask") else None)
            elif ent["status"] == "failed":
                ce = CacheEntry("failed", str(ent.get("message", "")))
            else:
                raise CacheInvalid(f"unknown entry status {ent['status']!r}")
            out.append(CacheRecord(str(ent["path"]), str(ent["identity"]), str(ent["sha256"]), ce))
    except CacheInvalid:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CacheInvalid(f"malformed entry ({type(e).__name__}: {e})") from e
    return out


def write_cache(path: str | Path, key: str, info: dict, records: list[CacheRecord]) -> None:
    """Write ``records`` (made with the configuration ``key``, described by ``info``) to ``path``
    atomically through :func:`pipeline.atomic.atomic_write_bytes` (parent folders are created).
    Raises :class:`GalleryError` when the ``ok`` entries' masks differ in length, OSError when
    the file cannot be written."""
    oks = [r for r in records if r.entry.status == "ok"]
    d = 0
    if oks:
        v0 = oks[0].entry.vector
        assert v0 is not None, "an 'ok' cache entry always carries its vector"
        d = int(v0.shape[0])
    rs = {int(r.entry.mask.shape[0]) for r in oks if r.entry.mask is not None}
    if len(rs) > 1:
        raise GalleryError(f"the descriptor returned masks of different lengths {sorted(rs)}")
    r_ = rs.pop() if rs else 0
    vectors = np.zeros((len(oks), d), dtype=np.float32)
    masks = np.ones((len(oks), r_), dtype=np.float32)
    entries, row = [], 0
    for rec in records:
        e = {
            "path": rec.path,
            "identity": rec.identity,
            "sha256": rec.sha256,
            "status": rec.entry.status,
            "message": rec.entry.message,
            "row": -1,
            "has_mask": False,
        }
        if rec.entry.status == "ok":
            vectors[row] = rec.entry.vector
            if rec.entry.mask is not None:
                masks[row] = rec.entry.mask
                e["has_mask"] = True
            e["row"] = row
            row += 1
        entries.append(e)
    meta = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "key": key,
        "pipeline": info,
        "dim": d,
        "n_regions": r_,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "entries": entries,
    }
    buf = io.BytesIO()
    np.savez(buf, meta=np.array([json.dumps(meta, ensure_ascii=False).encode("utf-8")]), vectors=vectors, masks=masks)
    atomic_write_bytes(path, buf.getvalue())
