"""Gallery: folder layout, signature cache, enrollment and 1-vs-all matching.

- :mod:`pipeline.gallery.layout`: which files of a gallery folder are enrolled, under which
  identity names (:func:`scan_gallery`);
- :mod:`pipeline.gallery.cache`: the signature cache file and its format (:func:`read_cache`,
  :func:`write_cache`, :class:`CacheRecord`...);
- :mod:`pipeline.gallery.lock`: the lock that serialises enrollments of one cache
  (:func:`cache_lock`, a ``filelock.FileLock`` on ``<cache>.lock``);
- :mod:`pipeline.gallery.enrol`: :func:`enroll` and :class:`Gallery` (matching).

Every public name of those modules that callers use is importable from here. The module-level
settings are read where they are used, so change them on their own module
(``pipeline.gallery.enrol.CHECKPOINT_SECONDS``, ``pipeline.gallery.layout.MAX_GALLERY_WARN``); the
copies here are for reading only.
"""

from pipeline.gallery.cache import (
    CACHE_FORMAT,
    CACHE_VERSION,
    DEFAULT_CACHE_NAME,
    CacheEntry,
    CacheInvalid,
    CacheRecord,
    default_cache_path,
    file_sha256,
    read_cache,
    write_cache,
)
from pipeline.gallery.enrol import CHECKPOINT_SECONDS, Gallery, enroll, pipeline_cache_key
from pipeline.gallery.layout import MAX_GALLERY_WARN, SUSPECT_IDENTITY_NAMES, scan_gallery
from pipeline.gallery.lock import cache_lock

__all__ = [
    "CACHE_FORMAT",
    "CACHE_VERSION",
    "CHECKPOINT_SECONDS",
    "DEFAULT_CACHE_NAME",
    "MAX_GALLERY_WARN",
    "SUSPECT_IDENTITY_NAMES",
    "CacheEntry",
    "CacheInvalid",
    "CacheRecord",
    "Gallery",
    "cache_lock",
    "default_cache_path",
    "enroll",
    "file_sha256",
    "pipeline_cache_key",
    "read_cache",
    "scan_gallery",
    "write_cache",
]
