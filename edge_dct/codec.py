"""JPEG output: ``encode`` pixels and ``transcode`` a JPEG to new quantization tables.

Both run libjpeg-turbo's compressor inside the C core (``cython_ext/edct_encode.c``) with the
GIL released. ``transcode`` never makes pixels: it requantizes the file's coefficients,
``c' = round(c * q_old / q_new)``, and re-codes them; with the file's own tables (or no tables
at all) the coefficients are unchanged. Tables are natural order (``k = 8*v + u``, the order of
``read_dct``'s planes and ``JpegInfo.quant_tables``), luma for component 0 and chroma for the
others, as a :class:`~edge_dct.tables.QuantTables` or a ``(luma, chroma)`` pair of 64 values
or 8x8 arrays each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_dct import _jpeg
from edge_dct.bundle import ModelSource
from edge_dct.errors import InvalidArgumentError, warn_decoded
from edge_dct.jpeg import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SCANS, Source, load_source
from edge_dct.prepare import Region
from edge_dct.tables import QuantTables, TablesLike, as_table_array, recoding_for_photo

SUBSAMPLINGS = _jpeg.SUBSAMPLINGS
"""Chroma subsamplings ``encode`` writes: ``"444"``, ``"422"``, ``"420"``, ``"440"``."""


def _region(keep: Region) -> tuple:
    """A Region as the C core takes it, checked."""
    if not isinstance(keep, Region):
        raise InvalidArgumentError(f"keep must be an edge_dct.prepare.Region, not {type(keep).__name__}")
    n = len(keep.frequencies)
    if not (len(keep.rows) == len(keep.cols) == n) or n > 4:
        raise InvalidArgumentError(f"keep: {n} frequencies, {len(keep.rows)} rows and "
                                   f"{len(keep.cols)} cols: one each per component (at most 4)")
    for k in keep.frequencies:
        if not (isinstance(k, int) and 0 <= k <= 8):
            raise InvalidArgumentError(f"keep: frequencies {keep.frequencies}: each 0..8")
    ranges = []
    for r in (*keep.rows, *keep.cols):
        try:
            lo, hi = r
            ok = isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi < 1 << 31
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidArgumentError(f"keep: rows {keep.rows} / cols {keep.cols}: (first, end) "
                                       f"ranges of ints with 0 <= first <= end")
        ranges.append((lo, hi))
    return tuple(keep.frequencies), tuple(ranges[:n]), tuple(ranges[n:])


def _quality(quality: int | None, tables: TablesLike | None) -> int:
    """The C core's quality argument (0: none given), checked against ``tables``."""
    if quality is None:
        return 0
    if tables is not None:
        raise InvalidArgumentError("give quality or tables, not both")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise InvalidArgumentError(f"quality={quality!r}: expected an integer 1..100")
    return int(quality)


def _coding(optimize: bool, progressive: bool, restart_interval: int) -> tuple[bool, bool, int]:
    if isinstance(restart_interval, bool) or not isinstance(restart_interval, (int, np.integer)) \
            or not 0 <= restart_interval <= 65535:
        raise InvalidArgumentError(f"restart_interval={restart_interval!r}: expected MCUs 0..65535")
    return bool(optimize), bool(progressive), int(restart_interval)


def _pixels(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as a C-contiguous (H, W, C) uint8 array, C 1 or 3."""
    if not isinstance(pixels, np.ndarray):
        raise InvalidArgumentError(f"pixels: expected a numpy array, got {type(pixels).__name__}")
    if pixels.dtype != np.uint8:
        raise InvalidArgumentError(f"pixels: dtype {pixels.dtype}, expected uint8")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise InvalidArgumentError(f"pixels: shape {pixels.shape}, expected (H, W, 3) RGB or (H, W) gray")
    return np.ascontiguousarray(pixels)


def encode(
    pixels: np.ndarray,
    *,
    quality: int | None = None,
    tables: TablesLike | None = None,
    subsampling: str = "420",
    optimize: bool = True,
    progressive: bool = False,
    restart_interval: int = 0,
) -> bytes:
    """Compresses pixels to a baseline (or progressive) JPEG with libjpeg-turbo.

    Args:
        pixels: ``(H, W, 3)`` RGB or ``(H, W)`` / ``(H, W, 1)`` gray, uint8.
        quality: 1..100, libjpeg's standard tables at that quality (75 when neither this nor
            ``tables`` is given).
        tables: Custom ``(luma, chroma)`` quantization tables, values 1..255, natural order.
        subsampling: Chroma geometry of RGB input: ``"444"``, ``"422"``, ``"420"``, ``"440"``.
        optimize: Optimized Huffman tables (smaller files, a second pass).
        progressive: libjpeg's standard progressive scan script.
        restart_interval: MCUs between restart markers (0: none).

    Returns:
        The JPEG file's bytes.

    Raises:
        InvalidArgumentError: A bad argument (the message names it).
    """
    if subsampling not in SUBSAMPLINGS:
        raise InvalidArgumentError(f"subsampling={subsampling!r}: expected one of {', '.join(SUBSAMPLINGS)}")
    q = _quality(quality, tables)
    arr = None if tables is None else as_table_array(tables)
    return _jpeg.encode(_pixels(pixels), q, arr, subsampling, *_coding(optimize, progressive, restart_interval))


def transcode(
    src: Source,
    *,
    tables: TablesLike | None = None,
    quality: int | None = None,
    optimize: bool = True,
    progressive: bool = False,
    restart_interval: int = 0,
    keep_metadata: bool = True,
    strict: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_scans: int = DEFAULT_MAX_SCANS,
    keep: Region | None = None,
) -> bytes:
    """Re-codes a JPEG with new quantization tables, in the DCT domain (no pixels).

    Every coefficient is requantized, ``c' = round(c * q_old / q_new)``; the image geometry
    (size, subsampling, components) is kept. Without ``tables`` and ``quality`` the file's own
    tables are kept and the coefficients are identical (a lossless re-code: optimized Huffman
    tables, progressive or not, metadata kept or stripped). The decoder's limits and strictness
    apply, and the result exists only when the whole file was read and written.

    Args:
        src: Path, bytes-like, or binary file object.
        tables: New ``(luma, chroma)`` tables, values 1..255, natural order.
        quality: Or libjpeg's standard tables at 1..100.
        optimize: Optimized Huffman tables.
        progressive: Write libjpeg's standard progressive scans.
        restart_interval: MCUs between restart markers (0: none).
        keep_metadata: Copy the APPn (EXIF, ICC, XMP...) and COM markers.
        strict: Raise on corrupt or truncated data (False: re-code what could be read, with
            an EdgeDctWarning).
        max_pixels: Refuse headers declaring more pixels; 0 = no limit.
        max_scans: Refuse progressive files with more scans; 0 = no limit.
        keep: Keep only these coefficients, every other one becomes 0: what ``prepare``
            reads of the file for a model (:func:`edge_dct.prepare.region_read`). The model's
            input is then the same, the file smaller (outside the model's crop the photo is
            mid-grey, and only the model's frequencies are left), and less is decoded: DC
            terms alone where k = 1, and of a progressive file only the scans those coefficients
            depend on (so corrupt data in the others goes unnoticed).

    Returns:
        The new JPEG file's bytes.

    Raises:
        InvalidJpegError: Malformed or truncated input (names the source, reason, offset).
        UnsupportedJpegError: A JPEG outside scope (12-bit, lossless...).
        ImageTooLargeError: More than ``max_pixels`` pixels.
        InvalidArgumentError: A bad argument (the message names it).
    """
    q = _quality(quality, tables)
    arr = None if tables is None else as_table_array(tables)
    coding = _coding(optimize, progressive, restart_interval)
    data, name = load_source(src)
    region = None if keep is None else _region(keep)
    out, num_warnings, first = _jpeg.transcode(data, name, q, arr, *coding, bool(keep_metadata),
                                               bool(strict), max_pixels, max_scans, keep=region)
    warn_decoded(name, num_warnings, first)
    return out


def transcode_for_model(src: Source, model: ModelSource | None = None,
                        tables: QuantTables | None = None, **options: Any) -> bytes:
    """A photo re-coded for a model, as ``edge-dct transcode --for-model`` writes it.

    Keeps exactly what ``prepare`` reads of the photo for that model: the blocks under the
    model's crop and, of those, the k x k lowest frequencies (a 12 MP photo keeps its DC
    terms), requantized with the tuned tables fitted to the photo
    (:func:`edge_dct.tables.recoding_for_photo`). Every other coefficient becomes 0 (the photo
    is mid-grey outside the crop), so the model's input equals that of the photo re-coded with
    those tables alone, in a much smaller file.

    Args:
        src: Path, bytes-like, or binary file object.
        model: The bundle (default: the embedded model); its tables are ``NAME.tables.json``.
        tables: Tuned tables to use instead of the bundle's.
        **options: Passed to :func:`transcode` (``optimize``, ``progressive``,
            ``keep_metadata``, ``strict``...).

    Returns:
        The new JPEG file's bytes.

    Raises:
        ModelError: No table set for the bundle (and none given), or a bad bundle.
        InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: For the photo.
    """
    data, _ = load_source(src)
    plan = recoding_for_photo(data, model, tables, options.get("max_pixels", DEFAULT_MAX_PIXELS))
    return transcode(data, tables=plan.tables, keep=plan.keep, **options)


__all__ = ["SUBSAMPLINGS", "encode", "transcode", "transcode_for_model"]
