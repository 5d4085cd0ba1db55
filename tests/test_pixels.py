"""Pixel-level check of read_dct: reconstruct pixels from its coefficients.

(a) Against libjpeg-turbo's own decode (through Pillow) of every decodable JPEG
    in the shared corpus, clothing photos included: PSNR >= 40 dB each.
(b) Against the reference PNGs of ``image-rs-reftest/`` (made by another
    decoder): PSNR >= 40 dB wherever the PNG itself agrees with libjpeg at
    >= 40 dB (files in its ``disabled.list`` skipped).

``pytest -s`` prints a per-file PSNR table with per-group min/median.
"""

from __future__ import annotations

import functools
import io
import math
import statistics
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_dct import EdgeDctError, InvalidJpegError, read_dct
from tests.jpeg_reference import inverted_cmyk_to_rgb, psnr, reconstruct

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REFTEST = CORPUS / "conformance" / "image-rs-reftest"
MIN_PSNR = 40.0

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")


def _jpegs(root: Path) -> list[Path]:
    """Every .jpg/.jpeg under ``root``, sorted (empty when root is missing)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def _disabled() -> set[str]:
    """Paths (relative to image-rs-reftest/) its ``disabled.list`` names."""
    listing = REFTEST / "disabled.list"
    if not listing.is_file():
        return set()
    lines = (line.strip() for line in listing.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def _name(path: Path) -> str:
    return str(path.relative_to(CORPUS))


ALL_JPEGS = _jpegs(CORPUS)
REFTEST_JPEGS = [
    p for p in _jpegs(REFTEST) if "lossless" not in p.relative_to(REFTEST).parts and p.with_suffix(".png").is_file()
]
DISABLED = _disabled()


@functools.lru_cache(maxsize=None)
def _ours(path: Path) -> tuple[np.ndarray, str]:
    """Pixels rebuilt from read_dct's dequantized planes.

    Non-strict decoding is used for files strict mode rejects as corrupt
    (libjpeg, too, decodes those with warnings).

    Returns:
        (uint8 (height, width, channels) as ``reconstruct`` gives it, colour space).

    Raises:
        pytest.skip.Exception: read_dct refuses the file, or libjpeg could not
            upsample it either (fractional sampling).
    """
    data = path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libjpeg warns about the same files
            try:
                dct = read_dct(data)
            except InvalidJpegError:
                dct = read_dct(data, strict=False)
    except EdgeDctError as e:
        pytest.skip(f"read_dct refuses it: {type(e).__name__}: {e}")
    try:
        return reconstruct(dct), dct.info.color_space
    except ValueError as e:
        pytest.skip(str(e))


@functools.lru_cache(maxsize=None)
def _libjpeg(path: Path, color_space: str) -> np.ndarray:
    """libjpeg-turbo's decode (through Pillow) in ``reconstruct``'s layout.

    Pillow stores CMYK inverted ("CMYK;I"); that is undone here so the result
    is libjpeg's raw JCS_CMYK output.

    Returns:
        uint8 (height, width, channels).

    Raises:
        pytest.skip.Exception: Pillow/libjpeg cannot decode the file.
    """
    try:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            im.load()
            pixels = np.asarray(im)
            mode = im.mode
    except (OSError, ValueError, SyntaxError) as e:
        pytest.skip(f"libjpeg (Pillow) cannot decode it: {e}")
    if color_space in ("cmyk", "ycck") and mode == "CMYK":
        return 255 - pixels
    return pixels if pixels.ndim == 3 else pixels[..., None]


def _png(path: Path) -> np.ndarray:
    """A reference PNG as uint8 (height, width, channels), alpha dropped.

    16-bit PNGs are scaled to 8 bits (/257, rounded); 1-bit ones to 0/255.
    """
    with Image.open(path) as im:
        pixels = np.asarray(im)
        mode = im.mode
    if mode == "1":
        pixels = pixels.astype(np.uint8) * 255
    elif pixels.dtype != np.uint8:
        pixels = np.round(pixels.astype(np.float64) / 257).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return pixels[..., :-1] if pixels.shape[-1] in (2, 4) else pixels


def _png_domain(pixels: np.ndarray, color_space: str) -> np.ndarray:
    """Maps libjpeg-layout pixels to what a reference PNG holds (RGB or gray)."""
    if color_space in ("cmyk", "ycck"):
        return inverted_cmyk_to_rgb(pixels)
    return pixels


def _match_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broadcasts a 1-channel image against a 3-channel one (gray PNG vs RGB or back)."""
    if a.shape[-1] == 1 and b.shape[-1] == 3:
        return np.repeat(a, 3, axis=-1), b
    if a.shape[-1] == 3 and b.shape[-1] == 1:
        return a, np.repeat(b, 3, axis=-1)
    return a, b


def _fmt(db: float) -> str:
    return "inf" if math.isinf(db) else f"{db:.2f}"


@pytest.fixture(scope="module")
def psnr_table() -> Iterator[list[tuple[str, str, float, str]]]:
    """Collects (group, file, PSNR dB, note) rows; prints them and per-group stats at the end."""
    rows: list[tuple[str, str, float, str]] = []
    yield rows
    if not rows:
        return
    print(f"\n{'group':<28} {'PSNR dB':>8}  file")
    for group, name, db, note in sorted(rows):
        print(f"{group:<28} {_fmt(db):>8}  {name}{'  (' + note + ')' if note else ''}")
    print(f"\n{'group':<28} {'files':>5} {'min dB':>8} {'median dB':>10}")
    for group in sorted({r[0] for r in rows}):
        values = [r[2] for r in rows if r[0] == group]
        print(f"{group:<28} {len(values):>5} {_fmt(min(values)):>8} {_fmt(statistics.median(values)):>10}")


def _group(path: Path) -> str:
    parts = path.relative_to(CORPUS).parts
    return "clothing vs libjpeg" if "clothing" in parts else f"{parts[1]} vs libjpeg"


@pytest.mark.parametrize("path", ALL_JPEGS, ids=_name)
def test_matches_libjpeg_decode(path: Path, psnr_table: list) -> None:
    """(a) Reconstruction vs libjpeg-turbo's decode, in libjpeg's output colour space."""
    ours, space = _ours(path)
    theirs = _libjpeg(path, space)
    db = psnr(ours, theirs)
    note = "CMYK components, no colour conversion" if space == "cmyk" else ""
    psnr_table.append((_group(path), _name(path), db, note))
    assert db >= MIN_PSNR, f"{_name(path)} ({space}): {db:.2f} dB vs libjpeg"


@pytest.mark.parametrize("path", REFTEST_JPEGS, ids=_name)
def test_matches_reference_png(path: Path, psnr_table: list) -> None:
    """(b) Reconstruction vs image-rs's reference PNG, where that PNG agrees with libjpeg."""
    relative = str(path.relative_to(REFTEST))
    if relative in DISABLED:
        pytest.skip("listed in disabled.list (the reference decoder could not match it)")
    ours, space = _ours(path)
    png = _png(path.with_suffix(".png"))
    ours, png = _match_channels(_png_domain(ours, space), png)
    libjpeg, _ = _match_channels(_png_domain(_libjpeg(path, space), space), png)
    gate = psnr(libjpeg, png)
    if gate < MIN_PSNR:
        psnr_table.append(("reftest PNG (skipped)", _name(path), psnr(ours, png), f"PNG vs libjpeg {_fmt(gate)} dB"))
        pytest.skip(f"reference PNG disagrees with libjpeg ({_fmt(gate)} dB)")
    db = psnr(ours, png)
    psnr_table.append(("reftest vs PNG", _name(path), db, f"PNG vs libjpeg {_fmt(gate)} dB"))
    assert db >= MIN_PSNR, f"{_name(path)}: {db:.2f} dB vs reference PNG"
