"""Shared fixtures: where the shared corpus lives, and synthetic photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CLOTHING = CORPUS / "photos" / "clothing"


def corpus_jpegs() -> list[Path]:
    """Every JPEG file in the shared corpus (conformance streams and photos)."""
    exts = {".jpg", ".jpeg"}
    return sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in exts)


def clothing_photos() -> list[Path]:
    """The 40 shared phone photos (~400x533, baseline 4:2:0)."""
    return sorted(CLOTHING.rglob("*.jpg"))


def synthetic_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients, edges and noise.

    Returns:
        uint8 array (height, width, channels), or (height, width) when channels == 1.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = []
    for c in range(channels):
        fx, fy = rng.uniform(0.01, 0.2, 2)
        base = 128 + 90 * np.sin(fx * x + c) * np.cos(fy * y - c)
        base += np.where((x // 13 + y // 17 + c) % 2 == 0, 30, -30)
        base += rng.normal(0, 12, (height, width))
        planes.append(base)
    img = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


@pytest.fixture(scope="session")
def corpus_available() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
