"""The photo sets of ``scripts/get_data.sh`` and the one training / held-back split.

Folders under the data folder (:func:`converters.data.workspace.data_dir`): ``imagenette``
(``train/`` and ``val/``), ``intel``, ``catsdogs``, ``flowers``, ``clothing`` and the
training-only ``wallpapers``. Imagenette's
``val/`` never trains; of the other sets every 20th photo (sorted order) is held back. Files
named in the exclude list (``$EDGE_DCT_EXCLUDE``, default the team's
``shared/data/exclude-from-training.txt`` beside the repository; they overlap evaluation sets)
are never used at all.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from .photos import jpeg_files

_REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTO_SETS = ("imagenette", "intel", "catsdogs", "flowers", "clothing")
"""Folders of the data folder; Imagenette's ``val/`` never trains."""
TRAINING_ONLY = (("wallpapers", 16),)
"""Sets that only ever train, and how many times each of their photos is listed (each listing
gets its own seeded crops): the 2-18 MP Debian wallpapers of ``get_data.sh``, so that crops at
camera scales exercise every reduction path of ``prepare``. Listing them leaves the held-back
photos as they were."""
HOLD_BACK_EVERY = 20
"""Of the sets other than Imagenette, every 20th photo (sorted order) is held back for evaluation."""


def exclude_list() -> Path:
    """The exclude list: ``$EDGE_DCT_EXCLUDE`` or ``../shared/data/exclude-from-training.txt``."""
    return Path(os.environ.get("EDGE_DCT_EXCLUDE",
                               _REPO_ROOT.parent / "shared" / "data" / "exclude-from-training.txt"))


def excluded() -> set[str]:
    """Paths relative to a photo set's folder that must never be used (they overlap evaluation sets)."""
    path = exclude_list()
    if not path.is_file():
        return set()
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def jpegs(root: Path, split: str) -> list[Path]:
    """JPEGs under ``root/split``, minus the excluded files, sorted."""
    skip = excluded()
    return [p for p in jpeg_files(root / split) if str(p.relative_to(root)) not in skip]


def split(data: Path) -> tuple[list[Path], list[Path]]:
    """(training, held-back) photos of every set present under ``data``, minus the exclude list."""
    train, held = jpegs(data / "imagenette", "train"), jpegs(data / "imagenette", "val")
    for name in PHOTO_SETS[1:]:
        photos = jpegs(data / name, "")
        held += photos[::HOLD_BACK_EVERY]
        train += [p for i, p in enumerate(photos) if i % HOLD_BACK_EVERY]
    return train, held


def training_photos(data: Path) -> list[Path]:
    """Every photo set's training part (Imagenette ``train/`` and 19 of 20 of the others), then
    the :data:`TRAINING_ONLY` sets that are present, each photo listed as often as its set says."""
    extra = [p for name, repeat in TRAINING_ONLY for p in jpegs(data / name, "") for _ in range(repeat)]
    return split(data)[0] + extra


def held_out_photos(data: Path, n: int) -> list[Path]:
    """A fixed, seeded subset of the held-back photos (Imagenette ``val/`` + 1 in 20 of the others)."""
    held = split(data)[1]
    return sorted(random.Random(0).sample(held, min(n, len(held))))
