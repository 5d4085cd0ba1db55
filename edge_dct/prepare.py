"""prepare(): any JPEG onto a model's DCT grid, in the DCT domain (the fused fast path).

Everything runs in the C core (cython_ext/edct_prepare.c), shared with training and the
Android bridge, so every client gets bit-identical tensors.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from edge_dct import _jpeg
from edge_dct.errors import InvalidArgumentError, warn_decoded
from edge_dct.jpeg import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SCANS, Source, load_source, read_header
from edge_dct.spec import InputSpec

_local = threading.local()

Window = tuple[float, float, float, float]
"""(x, y, width, height) in EXIF-oriented pixel coordinates."""


def allocate(spec: InputSpec, dtype: np.dtype | type = np.float32) -> dict[str, np.ndarray]:
    """Empty output tensors for a spec: name -> array of the spec's shape (batch 1)."""
    return {t.name: np.empty(t.shape, dtype) for t in spec.tensors}


def prepare(
    src: Source,
    spec: InputSpec,
    *,
    out: Mapping[str, np.ndarray] | None = None,
    dtype: np.dtype | type = np.float32,
    quantization: Mapping[str, tuple[float, int]] | None = None,
    window: Window | None = None,
    hflip: bool = False,
    orientation: bool = True,
    strict: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_scans: int = DEFAULT_MAX_SCANS,
    name: str | None = None,
) -> dict[str, np.ndarray]:
    """Decodes a JPEG straight into a model's input tensors.

    Applies, in the DCT domain and in one streaming pass: EXIF orientation (exact), the
    spec's resize (shorter side then centre crop, or stretch) or the given window, chroma
    to 4:2:0 geometry, channel selection and normalization. Full-resolution pixels are
    never formed.

    Args:
        src: Path, bytes-like, or binary file object.
        spec: The model's InputSpec.
        out: Preallocated C-contiguous tensors (name -> array of the spec's shape and the
            requested dtype) to write into, e.g. a LiteRT input buffer.
        dtype: np.float32, or np.int8 for a quantized model (needs ``quantization``).
        quantization: Per tensor name the model's input ``(scale, zero_point)``; values are
            written as ``clip(round(x / scale) + zero_point, -128, 127)``.
        window: Crop of the oriented image mapped onto the grid instead of the spec's
            evaluation transform (training augmentation).
        hflip: Mirror the window left-right (only with ``window``).
        orientation: Apply the EXIF orientation.
        strict: Raise on corrupt data (see read_dct).
        max_pixels: Refuse larger images before allocating.
        max_scans: Refuse progressive files with more scans.
        name: How errors refer to the source (default: its path, or ``<bytes>``).

    Returns:
        name -> array, shapes from ``spec.tensors``: split layout ``y`` [1, H, W, Cy] and
        ``cbcr`` [1, H/2, W/2, Ccb + Ccr] (Cb channels first); merged ``dct``
        [1, H, W, Cy + Ccb + Ccr]. Without ``spec.normalize`` the values are JPEG's
        orthonormal 8x8 DCT of level-shifted samples (like dequantized coefficients).

    Raises:
        InvalidJpegError, UnsupportedJpegError (CMYK/YCCK, 12-bit...), ImageTooLargeError:
            For the image.
        InvalidArgumentError: Inconsistent arguments (``out`` of the wrong shape or dtype,
            int8 without ``quantization``, ``hflip`` without ``window``, an empty window).
        OutOfMemoryError: Native memory ran out.
        TypeError: ``dtype`` is neither float32 nor int8, or ``src`` is of no accepted type.

    Warns:
        EdgeDctWarning: With ``strict=False``, when the data was corrupt or truncated.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.int8):
        raise TypeError(f"dtype must be float32 or int8, not {dtype}")
    int8 = dtype == np.int8
    names = [t.name for t in spec.tensors]
    if int8 and (quantization is None or set(names) - set(quantization)):
        raise InvalidArgumentError(f"int8 output needs quantization (scale, zero_point) for {names}")
    tensors = dict(out) if out is not None else allocate(spec, dtype)
    for t in spec.tensors:
        a = tensors.get(t.name)
        if a is None or a.shape != t.shape or a.dtype != dtype or not a.flags.c_contiguous:
            raise InvalidArgumentError(f"out[{t.name!r}] must be a C-contiguous {dtype} array of shape "
                             f"{t.shape}")
    if hflip and window is None:
        raise InvalidArgumentError("hflip needs an explicit window")
    data, src_name = load_source(src)
    name = name or src_name
    scales = tuple(float(quantization[n][0]) for n in names) if int8 else ()
    zps = tuple(int(quantization[n][1]) for n in names) if int8 else ()
    num_warnings, first = _jpeg.prepare(
        data, name, spec, [tensors[n] for n in names], int8, scales, zps,
        None if window is None else tuple(float(v) for v in window), hflip, orientation,
        strict, max_pixels, max_scans, _workspace())
    warn_decoded(name, num_warnings, first)
    return tensors


@dataclass(frozen=True)
class Region:
    """What :func:`prepare` reads of a JPEG, per component of the file (frame order).

    Attributes:
        frequencies: k per component: the k x k lowest frequencies (``u < k`` and ``v < k``)
            of each block are read, k = 1 (DC only) for a 12 MP photo on a 224-pixel grid,
            8 (all 64) for a photo smaller than the grid; 0 for a component not read.
        rows: Per component the block rows ``(first, end)`` read, in the file's own block grid
            (before the EXIF orientation).
        cols: Likewise the block columns: the centre crop of a 4:3 photo leaves out about a
            quarter of them.
    """

    frequencies: tuple[int, ...]
    rows: tuple[tuple[int, int], ...]
    cols: tuple[tuple[int, int], ...]

    def blocks_read(self, component: int) -> int:
        """How many blocks of ``component`` are read."""
        (r0, r1), (c0, c1) = self.rows[component], self.cols[component]
        return (r1 - r0) * (c1 - c0) if self.frequencies[component] else 0


def region_read(src: Source, spec: InputSpec, *, window: Window | None = None,
                hflip: bool = False, orientation: bool = True,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> Region:
    """Which coefficients of a JPEG ``prepare`` reads: the other ones cannot change the
    model's input, so :func:`edge_dct.transcode` (``keep=``) may drop them.

    ``prepare`` reduces each block to its k x k lowest frequencies, k chosen from how much
    the window is scaled down, and reads only the blocks under the window (plus one sample of
    margin for its resampling filters). Reads the header only.

    Args:
        src: Path, bytes-like, or binary file object.
        spec: The model's InputSpec.
        window, hflip, orientation: As for :func:`prepare`.
        max_pixels: Refuse larger images.

    Returns:
        The :class:`Region`, one entry per component of the file.

    Raises:
        InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: For the image.
    """
    data, name = load_source(src)
    return Region(*_jpeg.prepare_region(data, name, spec,
                                        None if window is None else tuple(float(v) for v in window),
                                        hflip, orientation, max_pixels))


def _workspace() -> _jpeg.Workspace:
    """This thread's scratch memory for the C core (reused, so nothing is allocated per image)."""
    ws = getattr(_local, "workspace", None)
    if ws is None:
        ws = _local.workspace = _jpeg.Workspace()
    return ws


def eval_window(spec: InputSpec, width: int, height: int) -> Window:
    """The spec's evaluation window for an oriented ``width x height`` image."""
    return _jpeg.eval_window(spec, width, height)


def oriented_size(src: Source) -> tuple[int, int]:
    """(width, height) after the EXIF orientation."""
    info = read_header(src)
    return (info.height, info.width) if info.orientation >= 5 else (info.width, info.height)


__all__ = ["Region", "Window", "allocate", "eval_window", "oriented_size", "prepare", "region_read"]
