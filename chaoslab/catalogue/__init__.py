"""The built-in catalogue: the demo experiments, their runbooks and the built-in topologies.

They ship inside the package (read through :mod:`importlib.resources`), so ``chaoslab list`` and
``chaoslab run cascade-vector-latency`` work from any directory after ``pip install``. A clone
sees the same files through the ``experiments/`` and ``runbooks/`` symlinks at the repository
root: the package holds the one copy, because the wheel can only carry what is inside it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def catalogue_dir() -> Path:
    """The directory of the installed catalogue (a real directory: chaoslab is not run from a zip)."""
    root = files(__name__)
    if not isinstance(root, Path):
        # a zipped install would need as_file() for every read; pip never installs chaoslab that way
        raise RuntimeError(f"chaoslab's catalogue is not a directory on disk: {root}")
    return root


def builtin_experiments_dir() -> Path:
    """Where the built-in experiments are."""
    return catalogue_dir() / "experiments"


def builtin_topologies_dir() -> Path:
    """Where the built-in topologies (``demo``, ``demo-docker``) are."""
    return catalogue_dir() / "topologies"


def builtin_runbooks_dir() -> Path:
    """Where the runbooks of the built-in experiments are."""
    return catalogue_dir() / "runbooks"
