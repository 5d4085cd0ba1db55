"""The JPEG API: headers and DCT coefficients, without decompressing pixels.

Coefficients are returned in natural (row-major) order inside each 8x8 block:
index ``k = 8*v + u`` with ``v`` the vertical and ``u`` the horizontal
frequency (libjpeg's order, not zigzag).  Grids are libjpeg's per-component
``height_in_blocks x width_in_blocks`` (MCU padding blocks dropped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO, Union

import numpy as np

from edge_dct import _jpeg
from edge_dct.errors import EdgeDctError, read_file, warn_decoded

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]
"""What every reader accepts: a path, JPEG bytes, or a binary file object."""

DEFAULT_MAX_PIXELS: int = _jpeg.DEFAULT_MAX_PIXELS
"""Default bomb limit on width*height (Pillow's): larger headers are refused before allocating."""

DEFAULT_MAX_SCANS: int = _jpeg.DEFAULT_MAX_SCANS
"""Default limit on scans in a progressive file (bounds the work a hostile file can cause)."""

_SUBSAMPLING = {(1, 1): "444", (2, 1): "422", (2, 2): "420", (1, 2): "440", (4, 1): "411"}


@dataclass(frozen=True)
class JpegInfo:
    """What a JPEG's markers say, read without entropy decoding.

    Attributes:
        width: Image width in pixels (before EXIF orientation).
        height: Image height in pixels (before EXIF orientation).
        num_components: 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK/YCCK).
        sampling: Per component ``(h, v)`` sampling factors.
        subsampling: ``"444"``, ``"422"``, ``"420"``, ``"440"``, ``"411"``,
            ``"gray"`` or ``"other"``.
        precision: Bits per sample (8).
        progressive: Progressive (SOF2/SOF10) coding.
        arithmetic: Arithmetic (SOF9-11) rather than Huffman coding.
        restart_interval: MCUs between restart markers, 0 when none.
        orientation: EXIF orientation 1-8, 1 when absent.
        color_space: ``"ycbcr"``, ``"gray"``, ``"rgb"``, ``"cmyk"``, ``"ycck"`` or ``"unknown"``.
        quant_tables: (num_components, 8, 8) uint16: per component its
            quantization table, natural order (zeros when the header defines none yet).
        blocks: Per component ``(height_in_blocks, width_in_blocks)``.
        component_ids: Per component the identifier from the frame header.
    """

    width: int
    height: int
    num_components: int
    sampling: tuple[tuple[int, int], ...]
    subsampling: str
    precision: int
    progressive: bool
    arithmetic: bool
    restart_interval: int
    orientation: int
    color_space: str
    quant_tables: np.ndarray = field(repr=False, compare=False)
    blocks: tuple[tuple[int, int], ...]
    component_ids: tuple[int, ...] = field(repr=False)


@dataclass(frozen=True)
class DctImage:
    """Coefficients of every component of a JPEG.

    Attributes:
        planes: One int16 array per component, shape
            ``(height_in_blocks, width_in_blocks, 64)``, natural order
            ``k = 8*v + u``; dequantized (saturated to int16) unless
            ``dequantize=False`` was asked.
        quant_tables: (num_components, 8, 8) uint16: per component the table used,
            natural order.
        info: The header.
        dequantized: Whether ``planes`` hold dequantized values.
        warnings: Corrupt-data messages (non-strict decoding), empty when clean.
    """

    planes: tuple[np.ndarray, ...] = field(repr=False, compare=False)
    quant_tables: np.ndarray = field(repr=False, compare=False)
    info: JpegInfo
    dequantized: bool
    warnings: tuple[str, ...] = ()

    @property
    def y(self) -> np.ndarray | None:
        """Luma (or gray) plane, None for files that are not YCbCr/gray."""
        return self.planes[0] if self.info.color_space in ("ycbcr", "gray") else None

    @property
    def cb(self) -> np.ndarray | None:
        """Cb plane of a YCbCr file, else None."""
        return self.planes[1] if self.info.color_space == "ycbcr" else None

    @property
    def cr(self) -> np.ndarray | None:
        """Cr plane of a YCbCr file, else None."""
        return self.planes[2] if self.info.color_space == "ycbcr" else None


def load_source(src: Source) -> tuple[bytes | bytearray | memoryview | np.ndarray, str]:
    """Returns ``(buffer, name)`` for any accepted source.

    Raises:
        EdgeDctError: The path cannot be read (wraps the OSError; ``code`` is ErrorCode.IO).
        TypeError: ``src`` is none of the accepted types.
    """
    if isinstance(src, (str, os.PathLike)):
        return read_file(src, EdgeDctError, "file")
    if isinstance(src, (bytes, bytearray)):
        return src, "<bytes>"
    if isinstance(src, memoryview):
        return (src if src.contiguous and src.itemsize == 1 else src.tobytes()), "<bytes>"
    if isinstance(src, np.ndarray) and src.dtype == np.uint8:
        return np.ascontiguousarray(src).reshape(-1), "<array>"
    if hasattr(src, "read"):
        name = getattr(src, "name", None)
        data = src.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("file object must be opened in binary mode")
        return data, str(name) if isinstance(name, (str, os.PathLike)) else "<stream>"
    raise TypeError(f"expected a path, bytes or a binary file object, got {type(src).__name__}")


@lru_cache(maxsize=256)
def _subsampling(sampling: tuple[tuple[int, int], ...]) -> str:
    if len(sampling) == 1:
        return "gray"
    if len(set(sampling)) == 1:
        return "444"
    luma, chroma = sampling[0], sampling[1:]
    if len(set(chroma)) != 1:
        return "other"
    (ch, cv) = chroma[0]
    if luma[0] % ch or luma[1] % cv:
        return "other"
    return _SUBSAMPLING.get((luma[0] // ch, luma[1] // cv), "other")


def _info(d: dict) -> JpegInfo:
    sampling = d["sampling"]
    return JpegInfo(d["width"], d["height"], len(sampling), sampling, _subsampling(sampling),
                    d["precision"], d["progressive"], d["arithmetic"], d["restart_interval"],
                    d["orientation"], d["color_space"], d["quant"], d["blocks"], d["ids"])


def read_header(src: Source, *, max_pixels: int | None = None) -> JpegInfo:
    """Reads a JPEG's header (markers up to the first scan; no entropy decoding).

    Args:
        src: Path, bytes-like, or binary file object.
        max_pixels: If given, headers declaring more pixels raise ImageTooLargeError.

    Returns:
        The JpegInfo.

    Raises:
        InvalidJpegError: Not a JPEG, or a malformed header.
        UnsupportedJpegError: 12/16-bit, lossless, hierarchical or >4 components.
    """
    data, name = load_source(src)
    return _info(_jpeg.read_header(data, name, max_pixels or 0, 0))


def read_dct(
    src: Source,
    *,
    dequantize: bool = True,
    strict: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_scans: int = DEFAULT_MAX_SCANS,
) -> DctImage:
    """Entropy-decodes a JPEG into per-component DCT coefficient planes.

    Bit-exact with libjpeg-turbo's ``jpeg_read_coefficients`` when
    ``dequantize=False``.  The GIL is released while decoding.

    Args:
        src: Path, bytes-like, or binary file object.
        dequantize: Multiply by the quantization tables (saturating to int16).
        strict: Raise on corrupt or truncated data; with False, return what
            could be decoded, list the problem in ``DctImage.warnings`` and
            issue an EdgeDctWarning.
        max_pixels: Refuse (before allocating) headers declaring more pixels; 0 = no limit.
        max_scans: Refuse progressive files with more scans; 0 = no limit.

    Returns:
        DctImage with planes of shape (height_in_blocks, width_in_blocks, 64), int16,
        natural order ``k = 8*v + u``.

    Raises:
        InvalidJpegError: Malformed data (names the source, reason and byte offset).
        UnsupportedJpegError: A valid JPEG outside scope (12-bit, lossless...).
        ImageTooLargeError: More than ``max_pixels`` pixels.
        OutOfMemoryError: Native memory ran out.

    Warns:
        EdgeDctWarning: With ``strict=False``, when the data was corrupt or truncated.
    """
    data, name = load_source(src)
    info, planes, tables, num_warnings, first = _jpeg.read_dct(
        data, name, dequantize, strict, max_pixels, max_scans
    )
    found = warn_decoded(name, num_warnings, first)
    return DctImage(tuple(planes), tables, _info(info), dequantize, found)


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SCANS",
    "DctImage",
    "JpegInfo",
    "Source",
    "load_source",
    "read_dct",
    "read_header",
]
