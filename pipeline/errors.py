"""The project's exception hierarchy.

Every error a user can provoke is a :class:`FaceError`; the CLIs catch it and print its
message on one line (no traceback). Messages say what went wrong *and* what to do.
"""

from __future__ import annotations


class FaceError(Exception):
    """Base class of every error godp-face raises on purpose."""

    exit_code = 1


class InvalidImageError(FaceError):
    """A file could not be read as an image (missing, not an image, truncated, too large...)."""


class NoFaceFoundError(FaceError):
    """The detector found no face in an image."""


class LandmarkError(FaceError):
    """Landmarks could not be computed or are unusable (e.g. too few visible points)."""


class FitError(FaceError):
    """The 3D model could not be fitted (degenerate or too few landmarks, NaNs...)."""


class ModelFileError(FaceError):
    """A shipped model / weights file is missing or its sha256 does not match."""


class ConfigError(FaceError):
    """A configuration value or a stage name is wrong."""

    exit_code = 2


class NotBuiltError(FaceError):
    """A pipeline stage that is specified but not implemented yet.

    Raised instead of returning fake output; the message names the issue that builds it.
    """

    exit_code = 2


class GalleryError(FaceError):
    """The gallery folder is missing, empty, or its cache cannot be used."""
