"""The lock that serialises enrollments of one gallery cache.

:func:`cache_lock` holds a :class:`filelock.FileLock` on the sidecar file ``<cache>.lock`` for the
whole load -> describe -> save sequence of an enrollment, so concurrent enrollments of one gallery
(other processes, or other lock objects in this process) run one after the other: the second one
reuses the first one's work, and neither loses nor corrupts entries. On Unix ``FileLock`` is an
``fcntl.flock`` on that file (Windows: ``msvcrt`` locking), which the operating system releases
when the holder dies, so the lock never goes stale; the empty lock file is left in place on
release (waiters share it). On a file system without ``flock`` filelock falls back to its
soft lock (a marker file) or, in older filelock versions, fails; a failure is handled like a
read-only location below. The lock file gets the permissions a plain ``open()`` would give it
(``0o666`` minus the umask), like the cache file itself.

A process that waits longer than the timeout (``enroll(lock_timeout=600 s)``) goes on without
saving. When the lock file cannot be created or locked (a read-only gallery), the caller is told
so and does not write the cache; an existing cache is still read.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from pipeline.atomic import current_umask

log = logging.getLogger(__name__)

#: seconds between two attempts while another process holds the lock
POLL_SECONDS = 0.05


def lock_path(cache_path: str | Path) -> Path:
    """The sidecar lock file of a cache file: ``<cache_path>.lock``."""
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.name + ".lock")


def _open_lock(path: Path) -> FileLock:
    """A (not yet acquired) lock on ``path``; its own lock object, so it excludes every other
    holder, in this process too."""
    return FileLock(str(path), mode=0o666 & ~current_umask())


@contextmanager
def cache_lock(cache_path: str | Path, timeout: float | None = 600.0) -> Iterator[bool]:
    """Hold the exclusive lock ``<cache_path>.lock`` while in the block.

    Yields True when the lock is held; False when the lock file cannot be created or locked
    (read-only location) or it stayed busy for ``timeout`` seconds (None: wait as long as it
    takes). Both cases are logged as warnings; the caller then must not write the cache.
    """
    lock = _acquire(Path(cache_path), timeout)
    try:
        yield lock is not None
    finally:
        if lock is not None:
            lock.release()


def _acquire(cache_path: Path, timeout: float | None) -> FileLock | None:
    """The acquired lock of ``cache_path``, or None (logged) when it cannot be had."""
    path = lock_path(cache_path)
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        lock = _open_lock(path)
        try:
            lock.acquire(timeout=0)
            return lock
        except Timeout:
            pass
        log.warning("waiting for another process that is enrolling this gallery (lock %s)", path)
        try:
            lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout), poll_interval=POLL_SECONDS)
            return lock
        except Timeout:
            log.warning(
                "the gallery cache %s stayed locked by another process for %.0f s; continuing "
                "without saving new signatures",
                cache_path,
                timeout,
            )
            return None
    except (OSError, NotImplementedError) as e:  # NotImplementedError: flock unsupported (older filelock)
        log.warning(
            "cannot write the gallery cache at %s (%s); continuing without caching new signatures "
            "(use --cache PATH to keep the cache elsewhere)",
            cache_path,
            getattr(e, "strerror", None) or e,
        )
        return None
