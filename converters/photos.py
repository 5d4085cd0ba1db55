"""Real photos for calibration, agreement checks and tests (Pillow decode, RGB models only).

The shared corpus lives beside the repository, in ``../shared/corpus/photos`` (override with
``$EDGE_DCT_PHOTOS``). Pixels here come from a full Pillow decode: this is the *RGB* baseline's
input path. DCT models get their tensors from ``edge_dct.prepare`` (issue #3) instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

_REPO_ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    """Root of the shared photo corpus (``$EDGE_DCT_PHOTOS`` or ``../shared/corpus/photos``)."""
    return Path(os.environ.get("EDGE_DCT_PHOTOS", _REPO_ROOT.parent / "shared" / "corpus" / "photos"))


def corpus_photos(subdir: str = "") -> list[Path]:
    """All ``.jpg``/``.jpeg`` files under the corpus (or one of its sub-folders), sorted.

    Args:
        subdir: folder relative to :func:`corpus_dir`, e.g. ``"clothing"``.

    Returns:
        Sorted paths; empty when the corpus is absent.
    """
    root = corpus_dir() / subdir
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


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
