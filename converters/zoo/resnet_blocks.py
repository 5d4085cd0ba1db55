"""ResNet-50 building blocks (Keras 3, NHWC), as in ``keras.applications.ResNet50`` (v1).

A ConvBlock (CB) and an IdentityBlock (IB) are the same bottleneck
``1x1 (stride) -> kxk -> 1x1`` with BN after each conv and ReLU after the first two and after
the residual add; the CB has a ``1x1 (stride)`` projection shortcut, the IB an identity one.
Stage ``n`` of ResNet-50 outputs ``STAGE_CHANNELS[n]`` channels with a bottleneck of a quarter
of that. Every layer of a block is named ``{name}_...`` and its output ``{name}_out``.
"""

from __future__ import annotations

import keras
from keras import layers

STAGE_CHANNELS = {2: 256, 3: 512, 4: 1024, 5: 2048}
"""Output channels of ResNet-50's stages conv2..conv5."""

_BN_EPS = 1.001e-5


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 4 (the ``width`` override of the ResNet builders)."""
    return max(4, int(round(channels * width)))


def conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    """Conv (no bias, ``same`` padding) + BN (+ ReLU).

    Args:
        x: NHWC float tensor.
        filters: output channels.
        kernel: square kernel size.
        stride: spatial stride.
        name: layer-name prefix (``{name}_conv``, ``{name}_bn``, ``{name}_relu``).
        relu: apply ReLU after BN.

    Returns:
        NHWC tensor with ``filters`` channels and spatial size ``ceil(in / stride)``.
    """
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def bottleneck(x, out_channels: int, *, kernel: int = 3, stride: int = 1, shortcut_conv: bool, name: str):
    """One ConvBlock (``shortcut_conv=True``) or IdentityBlock.

    Args:
        x: NHWC tensor; for an IdentityBlock it must have ``out_channels`` channels.
        out_channels: block output channels; the bottleneck has ``out_channels // 4``.
        kernel: size of the middle convolution (the paper's ``k``).
        stride: stride of the first 1x1 conv and of the projection shortcut (the paper's ``s``).
        shortcut_conv: ConvBlock (projection shortcut) if True, else IdentityBlock.
        name: layer-name prefix; the block's output layer is ``{name}_out``.

    Returns:
        NHWC tensor ``(ceil(H / stride), ceil(W / stride), out_channels)``.
    """
    mid = max(1, out_channels // 4)
    if shortcut_conv:
        shortcut = conv_bn(x, out_channels, 1, stride, f"{name}_0", relu=False)
    else:
        if x.shape[-1] != out_channels:
            raise ValueError(f"{name}: IdentityBlock needs {out_channels} input channels, got {x.shape[-1]}")
        shortcut = x
    y = conv_bn(x, mid, 1, stride, f"{name}_1")
    y = conv_bn(y, mid, kernel, 1, f"{name}_2")
    y = conv_bn(y, out_channels, 1, 1, f"{name}_3", relu=False)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def stage(x, out_channels: int, blocks: int, *, stride: int, name: str, kernels: tuple[int, ...] = ()):
    """A ConvBlock followed by ``blocks - 1`` IdentityBlocks.

    Args:
        x: NHWC tensor.
        out_channels: output channels of every block.
        blocks: total number of blocks (ResNet-50: 3, 4, 6, 3 for conv2..conv5).
        stride: stride of the ConvBlock.
        name: prefix; blocks are ``{name}_block1`` ... and the stage output is
            ``{name}_block{blocks}_out``.
        kernels: middle-conv kernel of each block, first ones first; missing entries are 3.

    Returns:
        NHWC tensor with ``out_channels`` channels.
    """
    for i in range(blocks):
        kernel = kernels[i] if i < len(kernels) else 3
        x = bottleneck(
            x, out_channels, kernel=kernel, stride=stride if i == 0 else 1, shortcut_conv=i == 0, name=f"{name}_block{i + 1}"
        )
    return x


def classifier_head(x, num_classes: int):
    """Global average pooling and a dense layer named ``logits`` (no softmax).

    Returns:
        ``[batch, num_classes]`` float32 logits.
    """
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dense(num_classes, name="logits")(x)


@keras.saving.register_keras_serializable(package="edge_dct")
class ChannelSlice(layers.Layer):
    """``x[..., start:stop]`` as a named, serialisable layer (TFLite: STRIDED_SLICE).

    Args:
        start: first channel.
        stop: one past the last channel.
    """

    def __init__(self, start: int, stop: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, x):
        return x[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self) -> dict:
        return {**super().get_config(), "start": self.start, "stop": self.stop}
