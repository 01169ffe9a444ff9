"""Gallery folder layout: which image files are enrolled, under which identity names.

Layouts (SPEC section 5): ``DIR/<identity>/*.{jpg,png,...}`` (several images per identity, sub-folders
of an identity folder included) or ``DIR/<identity>.{jpg,png,...}`` (one image each); both may be
mixed. Hidden files (names starting with ``.``, such as the signature cache) and non-image files are
ignored. Identity names are the folder name or the file stem as written (spaces and dots are kept:
``J. Doe.jpg`` -> ``J. Doe``) and are case-sensitive.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.errors import GalleryError
from pipeline.imageio import is_image_path

log = logging.getLogger(__name__)

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
    ``probes/``...) is enrolled but warned about: the gallery root was probably one level too high.
    Raises :class:`GalleryError` when ``root`` is not a folder or holds no image."""
    root = Path(root)
    if not root.is_dir():
        raise GalleryError(
            f"gallery {root} is not a folder; give a folder of <identity>/ sub-folders or <identity>.jpg files"
        )
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
                    log.warning(
                        "%s: enrolled as ONE identity named %r; if it is a gallery or probe folder itself, "
                        "pass --gallery %s instead",
                        p,
                        p.name,
                        p,
                    )
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
    _warn_case_clashes(sorted({i for i, _ in items}))
    if len(items) > MAX_GALLERY_WARN:
        log.warning(
            "gallery %s holds %d images (more than %d): enrollment and exact search will be slow; "
            "consider --index faiss",
            root,
            len(items),
            MAX_GALLERY_WARN,
        )
    return items


def _warn_case_clashes(names: list[str]) -> None:
    """Warn about identity names that differ only by letter case (they are kept apart)."""
    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.casefold(), []).append(n)
    for group in folded.values():
        if len(group) > 1:
            log.warning("identities %s differ only by letter case; they are kept apart", ", ".join(map(repr, group)))
