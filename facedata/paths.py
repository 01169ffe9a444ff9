"""The one data-root setting of the training tools, the generators and the benchmarks.

The root is, in order: an explicit path (a ``--data`` flag), the environment variable
``GODP_DATA``, else ``../shared/data`` beside the repository checkout (the layout of a
development clone). Research images are read from there and never copied into the project.

>>> import os
>>> os.environ["GODP_DATA"] = "/tmp/somewhere"
>>> str(data_root())
'/tmp/somewhere'
>>> str(data_path("cfp_dev", root="/data"))
'/data/cfp_dev'
>>> del os.environ["GODP_DATA"]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: Environment variable that overrides the default data root.
ENV_VAR = "GODP_DATA"
#: The repository checkout (the parent of this package).
REPO = Path(__file__).resolve().parents[1]
#: Default data root of a development clone: ``../shared/data`` beside the checkout.
DEFAULT_ROOT = REPO.parent / "shared" / "data"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$GODP_DATA``, else :data:`DEFAULT_ROOT`."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


def data_path(*parts: str, root: str | os.PathLike | None = None) -> Path:
    """A path under the data root, e.g. ``data_path("cfp_dev")``."""
    return data_root(root).joinpath(*parts)


def generated_path(*parts: str) -> Path:
    """Where generated data sets go by default (``generated/`` in the checkout, git-ignored)."""
    return REPO.joinpath("generated", *parts)


def runs_path(*parts: str) -> Path:
    """Where training runs and their resumable checkpoints go by default (``runs/``, git-ignored)."""
    return REPO.joinpath("runs", *parts)


def add_data_argument(ap: argparse.ArgumentParser, *parts: str, flag: str = "--data", **kwargs) -> None:
    """Add the standard ``--data`` flag (default: ``data_path(*parts)`` at parse time)."""
    sub = "/".join(parts)
    help_text = kwargs.pop("help", None) or (
        f"data folder (default: ${ENV_VAR}{'/' + sub if sub else ''} if set, "
        f"else ../shared/data{'/' + sub if sub else ''})"
    )
    ap.add_argument(flag, type=Path, default=data_path(*parts), help=help_text, **kwargs)


def add_log_arguments(ap: argparse.ArgumentParser) -> None:
    """Add the generators' ``-v/--verbose`` (repeatable) and ``--debug`` (tracebacks) flags; pass
    ``args.verbose`` to :func:`pipeline.cli.setup_logging`."""
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    ap.add_argument("--debug", action="store_true", help="tracebacks for internal errors")
