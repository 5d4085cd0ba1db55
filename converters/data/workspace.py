"""The work folder: everything that must stay out of the repository.

Downloads (the timm wheel, the EfficientNet-Lite0 weights), photo sets, caches of converted
models and training checkpoints live under ``$EDGE_DCT_WORK`` (default ``~/edge_dct_work``),
the folder the SDK's ``edge-dct bench`` also uses (:func:`edge_dct.paths.work_dir`).
"""

from __future__ import annotations

from pathlib import Path

from edge_dct.paths import work_dir

__all__ = ["data_dir", "work_dir"]


def data_dir() -> Path:
    """Folder of the photo sets that ``scripts/get_data.sh`` fetches (``work_dir()/data``)."""
    return work_dir() / "data"
