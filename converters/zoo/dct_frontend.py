"""Exact DCT front end: the teacher's whole network, fed from JPEG coefficients.

Everything between dequantized DCT coefficients and an RGB pixel model's input is linear
and fixed: the 8x8 inverse DCT (a 1x1 convolution from 64 coefficients to 64 samples on the
block grid, then depth-to-space), chroma upsampling (nearest, 4:2:0 -> 4:4:4), the JFIF
YCbCr -> RGB matrix, the +128 level shift and the model's ``(x - 127) / 128`` normalization
(one 1x1 convolution with bias). Prepending these layers to EfficientNet-Lite0 gives a
DCT-input model with the teacher's weights and accuracy, no training: the reference point
of the fidelity/latency curve that distilled adapters (issue #5) improve on for speed.

All layers are TFLite builtins that the GPU delegate and int8 quantization support
(CONV_2D, DEPTH_TO_SPACE, RESIZE_NEAREST_NEIGHBOR, CONCATENATION).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .efficientnet_lite import WEIGHTS_LICENCE, WEIGHTS_SOURCE, efficientnet_lite0_rgb
from .input_spec import dct_spec
from .layers import DepthToSpace
from .registry import register_model

# JFIF (full-range BT.601) YCbCr -> RGB; columns: Y, Cb - 128, Cr - 128.
YCC_TO_RGB = np.array([[1.0, 0.0, 1.402],
                       [1.0, -0.344136286, -0.714136286],
                       [1.0, 1.772, 0.0]], np.float32)


def idct_kernel() -> np.ndarray:
    """(64, 64) float32: natural-order coefficient k = 8v+u -> sample 8y+x of the block.

    JPEG's orthonormal 8x8 IDCT, ``f(y, x) = sum C(v)C(u)/4 F(v, u) cos((2y+1)v pi/16)
    cos((2x+1)u pi/16)``; rows index coefficients so that ``samples = coefficients @ K``.
    """
    n = np.arange(8)
    c = np.where(n == 0, np.sqrt(0.5), 1.0) / 2
    basis = c[None, :] * np.cos((2 * n[:, None] + 1) * n[None, :] * np.pi / 16)  # [x, u]
    return np.einsum("yv,xu->vuyx", basis, basis).reshape(64, 64).astype(np.float32)


def _fixed_conv(x, kernel: np.ndarray, bias: np.ndarray | None, name: str):
    """A frozen 1x1 convolution with the given (cin, cout) kernel."""
    conv = layers.Conv2D(kernel.shape[1], 1, use_bias=bias is not None, trainable=False, name=name)
    y = conv(x)
    conv.set_weights([kernel[None, None]] + ([bias] if bias is not None else []))
    return y


def dct_to_rgb_input(y_in, cbcr_in, normalize: dict | None = None):
    """Exact layers from coefficients to the teacher's normalized RGB input.

    Args:
        y_in: ``[b, H, W, 64]`` luma coefficients.
        cbcr_in: ``[b, H/2, W/2, 128]`` Cb then Cr coefficients.
        normalize: InputSpec ``normalize`` (192 means and stds, y then cb then cr) when the
            inputs are ``(coefficient - mean) / std``; undone exactly inside the first
            convolutions (``coefficient = x * std + mean``).

    Returns:
        ``[b, 8H, 8W, 3]`` float: ``(rgb - 127) / 128``.
    """
    k = idct_kernel()
    mean = np.zeros(192, np.float32) if normalize is None else np.asarray(normalize["mean"], np.float32)
    std = np.ones(192, np.float32) if normalize is None else np.asarray(normalize["std"], np.float32)
    if mean.shape != (192,) or std.shape != (192,):
        raise ValueError("normalize needs 192 means and stds (all 64 channels of y, cb, cr)")
    y = _fixed_conv(y_in, std[:64, None] * k, mean[:64] @ k + 128.0,  # +128: level shift
                    "frontend_idct_y")
    y = _depth_to_space(y, "frontend_y_pixels")
    # Cb, Cr: samples interleaved per position (channel 2*s + c) so depth_to_space keeps them apart.
    kc = np.zeros((128, 128), np.float32)
    kc[:64, 0::2] = k
    kc[64:, 1::2] = k
    c = _fixed_conv(cbcr_in, std[64:, None] * kc, mean[64:] @ kc, "frontend_idct_c")
    c = _depth_to_space(c, "frontend_c_pixels")
    c = layers.UpSampling2D(2, interpolation="nearest", name="frontend_c_upsample")(c)
    ycc = layers.Concatenate(name="frontend_ycc")([y, c])
    # rgb = M [Y, Cb', Cr']; teacher input (rgb - 127) / 128
    return _fixed_conv(ycc, YCC_TO_RGB.T / 128.0, np.full(3, -127.0 / 128.0, np.float32),
                       "frontend_rgb")


def _depth_to_space(x, name: str):
    return DepthToSpace(8, name=name)(x)


@register_model(
    input_spec=dct_spec((28, 28), "split", "all64"),
    input_names=("y", "cbcr"),
    weights=WEIGHTS_SOURCE + " (whole network); front end exact, no trained weights",
    licence=WEIGHTS_LICENCE,
    description="EfficientNet-Lite0 behind an exact IDCT/colour front end (split, all 64)",
    reference="Gueguen et al. 2018 (DCT input); exact linear front end, no distillation",
)
def efficientnet_lite0_dct_exact(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                 weights: str | None = "imagenet",
                                 normalize: dict | None = None) -> keras.Model:
    """EfficientNet-Lite0 with an exact DCT front end.

    Args:
        grid: luma grid ``(H, W)`` in blocks, multiples of 4.
        num_classes: logits (1000 keeps the ImageNet head).
        weights: ``"imagenet"`` or None.
        normalize: the InputSpec ``normalize`` the inputs carry (folded into the front end);
            per-channel statistics make int8 input quantization keep the AC terms.

    Returns:
        Model with inputs ``y [b, H, W, 64]``, ``cbcr [b, H/2, W/2, 128]`` (dequantized
        coefficients, natural order, Cb before Cr) and logits ``[b, num_classes]``.
    """
    h, w = grid
    if h % 4 or w % 4:
        raise ValueError(f"grid must be multiples of 4, got {grid}")
    y_in = keras.Input((h, w, 64), name="y")
    cbcr_in = keras.Input((h // 2, w // 2, 128), name="cbcr")
    rgb = dct_to_rgb_input(y_in, cbcr_in, normalize)
    if h != w:
        raise ValueError(f"the teacher is square: use a square grid, not {grid}")
    teacher = efficientnet_lite0_rgb(image_size=8 * h, num_classes=num_classes, weights=weights)
    return keras.Model([y_in, cbcr_in], teacher(rgb), name="efficientnet_lite0_dct_exact")
