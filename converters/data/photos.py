"""Photo files: JPEG listings, the shared test corpus and the RGB baseline's Pillow loader.

The shared corpus lives beside the repository, in ``../shared/corpus/photos`` (override with
``$EDGE_DCT_PHOTOS``). Pixels from :func:`load_photo` come from a full Pillow decode: this is the
*RGB* baseline's input path. DCT models get their tensors from ``edge_dct.prepare`` instead.
"""

from __future__ import annotations

import glob
import os
import random
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from edge_dct.paths import JPEG_SUFFIXES

_REPO_ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """Root of the shared photo corpus (``$EDGE_DCT_PHOTOS`` or ``../shared/corpus/photos``)."""
    return Path(os.environ.get("EDGE_DCT_PHOTOS", _REPO_ROOT.parent / "shared" / "corpus" / "photos"))


def jpeg_files(root: Path) -> list[Path]:
    """Every JPEG file (``edge_dct.paths.JPEG_SUFFIXES``) under ``root`` (recursive), sorted; empty if absent."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in JPEG_SUFFIXES)


def photo_set(pattern: str, count: int, seed: int = 0) -> list[Path]:
    """Up to ``count`` JPEGs (seeded sample, sorted) of a folder (recursive) or a glob pattern.

    Raises:
        FileNotFoundError: nothing matched.
    """
    root = Path(pattern).expanduser()
    files = jpeg_files(root) if root.is_dir() else sorted(Path(p) for p in glob.glob(str(root), recursive=True))
    if not files:
        raise FileNotFoundError(f"no JPEG photos in {pattern}")
    return sorted(random.Random(seed).sample(files, min(count, len(files))))


def corpus_photos(subdir: str = "") -> list[Path]:
    """All JPEG files under the corpus (or one of its sub-folders), sorted.

    Args:
        subdir: folder relative to :func:`corpus_dir`, e.g. ``"clothing"``.

    Returns:
        Sorted paths; empty when the corpus is absent.
    """
    return jpeg_files(corpus_dir() / subdir)


def load_photo(src: str | Path | BinaryIO, size: int = 224, resize_shorter: int = 256) -> np.ndarray:
    """Decode a photo and apply the usual evaluation geometry.

    The shorter side is resized to ``resize_shorter`` (bicubic), then the centre
    ``size x size`` square is cropped. EXIF orientation is applied first.

    Args:
        src: image file path, or a binary file object.
        size: side of the output square.
        resize_shorter: target length of the shorter side before cropping.

    Returns:
        uint8 array of shape ``(size, size, 3)``, RGB.
    """
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        scale = resize_shorter / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        im = im.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        return np.asarray(im, dtype=np.uint8)
