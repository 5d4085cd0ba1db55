"""Where things are: JPEG files named on a command line, the work folder, the cache.

Shared by the ``edge-dct`` command (``edge_dct.cli``) and its benchmark (``edge_dct.bench``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
WORK_ENV = "EDGE_DCT_WORK"


def expand_paths(paths: Sequence[str]) -> Iterator[str]:
    """Files as given, directories recursively (JPEG suffixes, sorted), ``-`` for stdin."""
    for p in paths:
        if p != "-" and os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if f.lower().endswith(JPEG_SUFFIXES):
                        yield os.path.join(root, f)
        else:
            yield p


def work_dir() -> Path:
    """Folder for what stays out of the repository (built bundles, downloads, photo sets).

    Returns:
        ``$EDGE_DCT_WORK`` if set, else ``~/edge_dct_work`` (as ``converters`` names it).
    """
    return Path(os.environ.get(WORK_ENV, Path.home() / "edge_dct_work"))


def cache_dir(*parts: str) -> Path:
    """Folder for what the SDK may rebuild at any time (TensorRT engines).

    Returns:
        ``$XDG_CACHE_HOME/edge_dct/PARTS`` (default ``~/.cache/edge_dct/PARTS``); not created.
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "edge_dct", *parts)


__all__ = ["JPEG_SUFFIXES", "WORK_ENV", "cache_dir", "expand_paths", "work_dir"]
