"""Parameter and multiply-accumulate counts read off a Keras graph."""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers


@dataclasses.dataclass(frozen=True)
class Profile:
    """Size and compute of one model at batch 1.

    Attributes:
        name: model name.
        params: all weights (trainable and BN statistics).
        macs: multiply-accumulates of conv, depthwise conv, transposed conv and dense layers
            (BN folds into the convs at export; adds, pooling and activations are not counted).
    """

    name: str
    params: int
    macs: int


def _layer_macs(layer: layers.Layer) -> int:
    if isinstance(layer, layers.Conv2DTranspose):
        _, h, w, cin = layer.input.shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * cin * layer.filters
    if isinstance(layer, layers.DepthwiseConv2D):
        _, h, w, c = layer.output.shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * c
    if isinstance(layer, layers.Conv2D):
        _, h, w, cout = layer.output.shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * (layer.input.shape[-1] // layer.groups) * cout
    if isinstance(layer, layers.Dense):
        return math.prod(layer.input.shape[1:]) * layer.units
    return 0


def profile(model: keras.Model | str, **overrides) -> Profile:
    """Count parameters and MACs of a model.

    Args:
        model: a built ``keras.Model`` or a registry name (built with ``weights=None`` where the
            builder has that argument, since weights do not change the counts).
        **overrides: builder overrides when ``model`` is a name.

    Returns:
        :class:`Profile` at batch 1 for the model's input size.
    """
    if isinstance(model, str):
        from .registry import build, get_config

        if get_config(model).weights is not None:
            overrides.setdefault("weights", None)
        model = build(model, **overrides)
    macs = sum(_layer_macs(layer) for layer in model.layers)
    return Profile(name=model.name, params=int(model.count_params()), macs=int(macs))
