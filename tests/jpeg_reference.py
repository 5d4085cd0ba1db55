"""Pixels from DCT coefficients in numpy: a test oracle for the coefficient reader.

Mirrors what libjpeg(-turbo) does after entropy decoding, closely enough that a
reconstruction from correct coefficients lands within a rounding error of its
RGB output:

1. orthonormal 8x8 inverse DCT of every (dequantized) block, +128 level shift,
   rounded and clipped to 8-bit samples, cropped to the component's size
   ``ceil(width * h / h_max) x ceil(height * v / v_max)``;
2. chroma upsampling to full size: libjpeg's "fancy" triangle filters for
   h2v1, h1v2 and h2v2 (same integer rounding), pixel replication otherwise;
3. colour conversion with libjpeg's fixed-point JFIF (full-range BT.601)
   YCbCr->RGB, or YCCK->CMYK; gray, RGB and CMYK samples pass unchanged.

Only the IDCT differs from libjpeg's (float instead of its fixed-point
``jidctint``), so results are within about +-1 of libjpeg's decode.
"""

from __future__ import annotations

import math

import numpy as np

from edge_dct import DctImage

_SCALE_BITS = 16  # libjpeg's jdcolor.c fixed point
_ONE_HALF = 1 << (_SCALE_BITS - 1)


def _fix(x: float) -> int:
    return int(x * (1 << _SCALE_BITS) + 0.5)


def idct_basis() -> np.ndarray:
    """The 1-D JPEG inverse-DCT basis.

    Returns:
        float64 array (8, 8): ``basis[x, u] = C(u) / 2 * cos((2x + 1) u pi / 16)``
        with ``C(0) = 1/sqrt(2)``, ``C(u) = 1`` otherwise, so that a block is
        ``basis @ F @ basis.T`` for coefficients ``F[v, u]``.
    """
    x = np.arange(8)[:, None]
    u = np.arange(8)[None, :]
    scale = np.where(u == 0, 1 / math.sqrt(2), 1.0) / 2
    return scale * np.cos((2 * x + 1) * u * np.pi / 16)


_IDCT_64 = np.kron(idct_basis(), idct_basis())
"""(64, 64): natural-order coefficients k = 8*v + u -> samples 8*y + x."""


def idct_plane(plane: np.ndarray) -> np.ndarray:
    """Inverse-DCTs every block of a component at once (one matrix product).

    Args:
        plane: int16 (height_in_blocks, width_in_blocks, 64), dequantized,
            natural order.

    Returns:
        float64 (8 * height_in_blocks, 8 * width_in_blocks): samples before the
        +128 level shift.
    """
    bh, bw, _ = plane.shape
    blocks = plane.reshape(-1, 64).astype(np.float64) @ _IDCT_64.T
    return blocks.reshape(bh, bw, 8, 8).transpose(0, 2, 1, 3).reshape(8 * bh, 8 * bw)


def component_size(dct: DctImage, c: int) -> tuple[int, int]:
    """Sample size (rows, columns) libjpeg gives component ``c``.

    Returns:
        ``(ceil(height * v / v_max), ceil(width * h / h_max))``.
    """
    info = dct.info
    h, v = info.sampling[c]
    h_max = max(s[0] for s in info.sampling)
    v_max = max(s[1] for s in info.sampling)
    return -(-info.height * v // v_max), -(-info.width * h // h_max)


def component_samples(dct: DctImage, c: int) -> np.ndarray:
    """Component ``c`` as libjpeg's IDCT would hand it to the upsampler.

    Args:
        dct: Result of ``read_dct(..., dequantize=True)``.
        c: Component index.

    Returns:
        uint8 array of shape ``component_size(dct, c)``.
    """
    rows, cols = component_size(dct, c)
    samples = np.floor(idct_plane(dct.planes[c])[:rows, :cols] + 128.5)
    return np.clip(samples, 0, 255).astype(np.uint8)


def _triangle(x: np.ndarray, axis: int) -> np.ndarray:
    """Doubles ``axis``: out[2i] = 3 x[i] + x[i-1], out[2i+1] = 3 x[i] + x[i+1].

    Edge samples are replicated (libjpeg's edge handling).  Sums are not
    rescaled: callers add libjpeg's bias and shift.

    Args:
        x: int32 array (rows, cols).
        axis: 0 (vertical) or 1 (horizontal).

    Returns:
        int32 array, ``axis`` twice as long.
    """
    n = x.shape[axis]
    idx = np.arange(n)
    before = np.take(x, np.maximum(idx - 1, 0), axis=axis)
    after = np.take(x, np.minimum(idx + 1, n - 1), axis=axis)
    out = np.stack([3 * x + before, 3 * x + after], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] *= 2
    return out.reshape(shape)


def _parity_bias(length: int, axis: int, even: int, odd: int) -> np.ndarray:
    """Bias ``even`` on even and ``odd`` on odd positions along ``axis``; broadcastable (2-D)."""
    bias = np.where(np.arange(length) % 2 == 0, even, odd)
    return bias[:, None] if axis == 0 else bias[None, :]


def fancy_upsample(samples: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """libjpeg's triangle ("fancy") 2x upsampling, integer-exact.

    Args:
        samples: uint8 (rows, cols), one component at its own size.
        factors: ``(vertical, horizontal)`` expansion: (1, 2) h2v1, (2, 1) h1v2
            or (2, 2) h2v2.

    Returns:
        uint8 (rows * factors[0], cols * factors[1]).
    """
    x = samples.astype(np.int32)
    if factors == (2, 2):
        sums = _triangle(_triangle(x, 0), 1)
        return ((sums + _parity_bias(sums.shape[1], 1, 8, 7)) >> 4).astype(np.uint8)
    axis = 1 if factors == (1, 2) else 0
    sums = _triangle(x, axis)
    return ((sums + _parity_bias(sums.shape[axis], axis, 1, 2)) >> 2).astype(np.uint8)


def upsample(samples: np.ndarray, factors: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Upsamples one component the way libjpeg chooses to, cropped to the image.

    Fancy filtering for h2v1/h2v2 needs more than two samples per row (as in
    libjpeg's ``jinit_upsampler``); everything else replicates pixels.

    Args:
        samples: uint8 (rows, cols).
        factors: ``(v_max // v, h_max // h)``.
        size: Image ``(height, width)``.

    Returns:
        uint8 array of shape ``size``.
    """
    wide = samples.shape[1] > 2
    if factors == (2, 1) or (factors in ((1, 2), (2, 2)) and wide):
        full = fancy_upsample(samples, factors)
    else:
        full = np.repeat(np.repeat(samples, factors[0], axis=0), factors[1], axis=1)
    return full[: size[0], : size[1]]


def upsampled_components(dct: DctImage) -> list[np.ndarray]:
    """Every component at full image size.

    Returns:
        One uint8 (height, width) array per component.

    Raises:
        ValueError: A sampling factor does not divide the maximum (libjpeg
            refuses fractional upsampling too).
    """
    info = dct.info
    h_max = max(s[0] for s in info.sampling)
    v_max = max(s[1] for s in info.sampling)
    out = []
    for c, (h, v) in enumerate(info.sampling):
        if h_max % h or v_max % v:
            raise ValueError(f"fractional upsampling of component {c}: {info.sampling}")
        out.append(upsample(component_samples(dct, c), (v_max // v, h_max // h), (info.height, info.width)))
    return out


def ycc_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """JFIF YCbCr -> RGB with libjpeg's fixed-point arithmetic (``jdcolor.c``).

    Args:
        y: uint8 (rows, cols) luma.
        cb: uint8 (rows, cols) blue-difference chroma.
        cr: uint8 (rows, cols) red-difference chroma.

    Returns:
        uint8 (rows, cols, 3).
    """
    y = y.astype(np.int64)
    cb = cb.astype(np.int64) - 128
    cr = cr.astype(np.int64) - 128
    r = y + ((_fix(1.40200) * cr + _ONE_HALF) >> _SCALE_BITS)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _ONE_HALF) >> _SCALE_BITS)
    b = y + ((_fix(1.77200) * cb + _ONE_HALF) >> _SCALE_BITS)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def reconstruct(dct: DctImage) -> np.ndarray:
    """Pixels as libjpeg outputs them in the file's natural output colour space.

    Args:
        dct: Result of ``read_dct(..., dequantize=True)``.

    Returns:
        uint8 (height, width, channels): gray -> 1 channel (Y); ycbcr -> RGB;
        rgb -> the components unchanged; cmyk -> the components unchanged (as
        stored, i.e. Adobe-inverted when the file says so); ycck -> CMYK
        (``255 - RGB(Y, Cb, Cr)``, K unchanged), like libjpeg's JCS_CMYK output.

    Raises:
        ValueError: Unknown colour space or fractional upsampling.
    """
    comps = upsampled_components(dct)
    space = dct.info.color_space
    if space in ("gray", "rgb", "cmyk"):
        return np.stack(comps, axis=-1)
    if space == "ycbcr":
        return ycc_to_rgb(*comps)
    if space == "ycck":
        return np.concatenate([255 - ycc_to_rgb(*comps[:3]), comps[3][..., None]], axis=-1)
    raise ValueError(f"no reconstruction for colour space {space!r}")


def inverted_cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """Adobe-inverted CMYK (as libjpeg outputs it) -> RGB: ``round(C * K / 255)`` per channel.

    Args:
        cmyk: uint8 (rows, cols, 4).

    Returns:
        uint8 (rows, cols, 3).
    """
    rgb = cmyk[..., :3].astype(np.float64) * cmyk[..., 3:].astype(np.float64) / 255
    return np.round(rgb).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images (inf when identical).

    Args:
        a: Array of values 0..255.
        b: Array of the same shape.
    """
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
