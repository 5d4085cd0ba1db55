"""libjpeg-turbo as a test oracle, independent of the edct core.

Builds ``oracle.c`` against the system libjpeg-turbo (pkg-config) into a
cache folder on first use and exposes:

* :func:`read_coefficients` - quantized coefficients via ``jpeg_read_coefficients``;
* :func:`encode` - JPEG encoding with any sampling, quality, progressive,
  arithmetic, restart-interval and optimize settings.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

_SOURCE = Path(__file__).with_name("oracle.c")


class OracleError(Exception):
    """libjpeg-turbo refused the input."""


@lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL:
    src = _SOURCE.read_bytes()
    tag = hashlib.sha1(src).hexdigest()[:12]
    cache = Path(os.environ.get("EDGE_DCT_TEST_CACHE", Path(tempfile.gettempdir()) / "edge_dct_tests"))
    cache.mkdir(parents=True, exist_ok=True)
    so = cache / f"oracle-{tag}.so"
    if not so.exists():
        flags = shlex.split(subprocess.run(["pkg-config", "--cflags", "--libs", "libjpeg"],
                                           check=True, capture_output=True, text=True).stdout)
        tmp = so.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(_SOURCE), *flags],
                       check=True)
        tmp.replace(so)
    lib = ctypes.CDLL(str(so))
    lib.oracle_read_coefficients.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                                             ctypes.POINTER(ctypes.c_int), ctypes.c_char_p]
    lib.oracle_encode.argtypes = [ctypes.c_char_p] + [ctypes.c_int] * 4 + [
        ctypes.POINTER(ctypes.c_int)] + [ctypes.c_int] * 4 + [
        ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ulong), ctypes.c_char_p]
    lib.oracle_free.argtypes = [ctypes.c_void_p]
    return lib


def read_coefficients(data: bytes) -> tuple[list[np.ndarray], int]:
    """Quantized coefficients of every component, as libjpeg-turbo reads them.

    Args:
        data: JPEG bytes.

    Returns:
        (planes, warnings): one int16 array per component, shape
        (height_in_blocks, width_in_blocks, 64), natural order; and the
        number of corrupt-data warnings libjpeg emitted.

    Raises:
        OracleError: libjpeg-turbo failed with an error.
    """
    lib = _lib()
    dims = (ctypes.c_int * 64)()
    msg = ctypes.create_string_buffer(256)
    if lib.oracle_read_coefficients(data, len(data), None, dims, msg) != 0:
        raise OracleError(msg.value.decode())
    n = dims[0]
    shapes = [(dims[2 + 2 * c], dims[3 + 2 * c], 64) for c in range(n)]
    flat = np.zeros(sum(int(np.prod(s)) for s in shapes), np.int16)
    if lib.oracle_read_coefficients(data, len(data), flat.ctypes.data, dims, msg) != 0:
        raise OracleError(msg.value.decode())
    planes, at = [], 0
    for s in shapes:
        size = int(np.prod(s))
        planes.append(flat[at:at + size].reshape(s))
        at += size
    return planes, dims[1]


def encode(pixels: np.ndarray, *, quality: int = 85, sampling: tuple[int, int] = (2, 2),
           progressive: bool = False, arithmetic: bool = False, restart_interval: int = 0,
           optimize: bool = False,
           component_sampling: tuple[tuple[int, int], ...] | None = None) -> bytes:
    """Encodes pixels with libjpeg-turbo.

    Args:
        pixels: uint8 array (H, W) for grayscale, (H, W, 3) RGB or (H, W, 4) CMYK.
        quality: 1..100.
        sampling: Luma (h, v) sampling factors, 1..4 each; chroma is 1x1, so
            (2, 2) gives 4:2:0, (2, 1) 4:2:2, (1, 2) 4:4:0, (4, 1) 4:1:1.
        component_sampling: Every component's (h, v) instead (overrides ``sampling``).
        progressive: Use libjpeg's simple progression script.
        arithmetic: Arithmetic instead of Huffman coding.
        restart_interval: MCUs between restart markers (0 = none).
        optimize: Optimized Huffman tables.

    Returns:
        The JPEG file's bytes.
    """
    lib = _lib()
    px = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = px.shape[:2]
    ncomp = 1 if px.ndim == 2 else px.shape[2]
    out = ctypes.c_void_p()
    size = ctypes.c_ulong()
    msg = ctypes.create_string_buffer(256)
    factors = component_sampling or (tuple(sampling),) + ((1, 1),) * (ncomp - 1)
    samp = (ctypes.c_int * (2 * ncomp))(*[f for hv in factors for f in hv])
    rc = lib.oracle_encode(px.tobytes(), w, h, ncomp, quality, samp,
                           int(progressive), int(arithmetic), restart_interval, int(optimize),
                           ctypes.byref(out), ctypes.byref(size), msg)
    if rc != 0:
        raise OracleError(msg.value.decode())
    try:
        return ctypes.string_at(out, size.value)
    finally:
        lib.oracle_free(out)
