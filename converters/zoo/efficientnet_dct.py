"""EfficientNet-Lite0-DCT students: a DCT-input adapter in front of the pretrained Lite0 back half.

EfficientNet-Lite0's block 5 takes a ``28 x 28 x 40`` map, the resolution of the 28x28 DCT
grid of a 224 px image. A student keeps blocks 5..15, the head and the classifier with their
ImageNet weights and replaces the stem and blocks 0..4 (about half of the teacher's int8
latency) by an adapter that maps DCT coefficients to that ``28 x 28 x 40`` map:

* ``split``: ``y [H, W, Cy]`` -> 1x1 conv (``adapter_width``); ``cbcr [H/2, W/2, Cc]`` ->
  1x1 conv (``adapter_width / 2``) -> nearest 2x upsampling; concat (``adapter_concat``);
* ``merged``: ``dct [H, W, Cy + Cc]`` (chroma already repeated 2x2) -> 1x1 conv
  (``adapter_width``);

then a 3x3 depthwise conv, a 1x1 projection to 40 channels (``adapter_project_bn``) and
``adapter_blocks`` residual MBConv blocks (expand 6, 5x5 depthwise) ending in ``adapter_out``.
Every layer is BN-folded conv / depthwise conv, ReLU6, add, concat or nearest resize, all
supported by the TFLite GPU delegate. The adapter starts from random weights; distillation from
the teacher is issue #5.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .efficientnet_lite import WEIGHTS_LICENCE, WEIGHTS_SOURCE, BLOCKS, lite0_tail, load_lite0_weights
from .input_spec import CHANNEL_SELECTIONS, dct_spec
from .layers import DepthToSpace
from .registry import register_model

FIRST_TEACHER_BLOCK = 5
"""Index of the first pretrained Lite0 block a student keeps (input 28x28x40)."""

_BN_EPS = 1e-3


def _conv_bn_relu6(x, filters: int, kernel: int, name: str, *, depthwise: bool = False, relu: bool = True):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


CUTS = {0: "block0_project_bn", 1: "block1_project_bn", 2: "block2_add", 4: "block4_add"}
"""Cut -> the teacher layer whose output the adapter replaces (the input of block ``cut + 1``):
``112 x 112 x 16`` after block 0, ``56 x 56 x 24`` after blocks 1 and 2, ``28 x 28 x 40``
after block 4."""


def cut_scale(cut: int) -> int:
    """How many times finer than the 8x8-block grid the cut tensor is (4, 2 or 1)."""
    stride = 2 * math.prod(b.stride for b in BLOCKS[:cut + 1])  # the stem has stride 2
    return 8 // stride


def student_cut(name: str) -> int:
    """The cut of a registered student: ``efficientnet_lite0_dct_cutN`` -> N, any other -> 4."""
    prefix = "efficientnet_lite0_dct_cut"
    return int(name[len(prefix):]) if name.startswith(prefix) else FIRST_TEACHER_BLOCK - 1


def _entry(layout: str, selection: str, grid: tuple[int, int], width: int):
    """The adapter's inputs and its entry 1x1 convolutions (``split``: chroma at half width,
    then nearest 2x upsampling and a concat; ``merged``: one convolution)."""
    h, w = grid
    if h % 2 or w % 2:
        raise ValueError(f"grid must be even, got {grid}")
    sel = CHANNEL_SELECTIONS[selection]
    cy, cc = len(sel["y"]), len(sel["cb"]) + len(sel["cr"])
    if layout == "split":
        y_in = keras.Input((h, w, cy), name="y")
        cbcr_in = keras.Input((h // 2, w // 2, cc), name="cbcr")
        y = _conv_bn_relu6(y_in, width, 1, "adapter_y")
        c = _conv_bn_relu6(cbcr_in, width // 2, 1, "adapter_c")
        c = layers.UpSampling2D(2, interpolation="nearest", name="adapter_c_upsample")(c)
        return [y_in, cbcr_in], layers.Concatenate(name="adapter_concat")([y, c])
    dct_in = keras.Input((h, w, cy + cc), name="dct")
    return dct_in, _conv_bn_relu6(dct_in, width, 1, "adapter_entry")


def _student(
    name: str,
    layout: str,
    selection: str,
    grid: tuple[int, int],
    num_classes: int,
    adapter_width: int,
    adapter_blocks: int,
    weights: str | None,
    cut: int = 4,
) -> keras.Model:
    """A student replacing the teacher's stem and blocks ``0..cut``.

    ``cut == 4``: entry, 3x3 depthwise, 1x1 projection to 40 and ``adapter_blocks`` residual
    MBConv blocks on the 28x28 grid. Shallow cuts (0, 1, 2) stay on the 28x28 grid too (the
    112x112 and 56x56 layers are what makes the teacher's front slow): entry, then
    ``adapter_blocks`` times a 3x3 depthwise convolution with a 1x1 convolution after each but
    the last, a linear 1x1 projection to ``s * s * C`` channels and ``DEPTH_TO_SPACE`` (``s``,
    :func:`cut_scale`) to the cut tensor (``112 x 112 x 16`` or ``56 x 56 x 24``).
    """
    if cut not in CUTS:
        raise ValueError(f"cut must be one of {sorted(CUTS)}, not {cut}")
    inputs, x = _entry(layout, selection, grid, adapter_width)
    if cut == FIRST_TEACHER_BLOCK - 1:
        x = _conv_bn_relu6(x, 0, 3, "adapter_dw", depthwise=True)
        x = _conv_bn_relu6(x, BLOCKS[cut + 1].cin, 1, "adapter_project", relu=False)
        for i in range(adapter_blocks):
            r = _conv_bn_relu6(x, 6 * x.shape[-1], 1, f"adapter_mb{i}_expand")
            r = _conv_bn_relu6(r, 0, 5, f"adapter_mb{i}_dw", depthwise=True)
            r = _conv_bn_relu6(r, x.shape[-1], 1, f"adapter_mb{i}_project", relu=False)
            x = layers.Add(name=f"adapter_mb{i}_add")([x, r])
    else:
        if adapter_blocks < 1:
            raise ValueError("a shallow-cut adapter needs adapter_blocks >= 1")
        for i in range(adapter_blocks):
            x = _conv_bn_relu6(x, 0, 3, f"adapter_dw{i}", depthwise=True)
            if i < adapter_blocks - 1:
                x = _conv_bn_relu6(x, adapter_width, 1, f"adapter_pw{i}")
        scale = cut_scale(cut)
        x = _conv_bn_relu6(x, scale * scale * BLOCKS[cut + 1].cin, 1, "adapter_project", relu=False)
        x = DepthToSpace(scale, name="adapter_d2s")(x)
    x = layers.Identity(name="adapter_out")(x)
    model = keras.Model(inputs, lite0_tail(x, cut + 1, num_classes), name=name)
    if weights == "imagenet":
        load_lite0_weights(model, skip=() if num_classes == 1000 else ("logits",))
    elif weights is not None:
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    return model


_STUDENT = dict(
    weights=WEIGHTS_SOURCE + ", blocks 5..15 and head; adapter random",
    licence=WEIGHTS_LICENCE,
    reference="Gueguen et al. 2018 (DCT input); Xu et al. 2020 (DCTNet channel selection)",
    speed_group="lite0",
)


@register_model(
    **_STUDENT,
    input_spec=dct_spec((28, 28), "split", "all64"),
    input_names=("y", "cbcr"),
    description="EfficientNet-Lite0 blocks 5.. with a DCT adapter (split, all64)",
)
def efficientnet_lite0_dct_split64(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                   adapter_width: int = 384, adapter_blocks: int = 1,
                                   weights: str | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite0-DCT student, ``split`` layout, all 64 coefficients of Y, Cb and Cr.

    Args:
        grid: luma grid ``(H, W)`` in blocks (even); 28x28 matches the teacher's block 5.
        num_classes: logits; anything but 1000 leaves ``logits`` random.
        adapter_width: channels of the adapter's entry 1x1 conv on luma (chroma gets half as
            many); the width matters for distillation, 256-512 is a good start.
        adapter_blocks: residual MBConv blocks at 40 channels ending the adapter.
        weights: ``"imagenet"`` (teacher blocks 5..15 + head) or ``None`` (all random).

    Returns:
        Model with inputs ``y [b, H, W, 64]`` and ``cbcr [b, H/2, W/2, 128]`` (float32
        dequantized coefficients, natural order ``k = 8v + u``, Cb before Cr) and float32
        logits ``[b, num_classes]``.
    """
    return _student("efficientnet_lite0_dct_split64", "split", "all64", grid, num_classes,
                    adapter_width, adapter_blocks, weights)


@register_model(
    **_STUDENT,
    input_spec=dct_spec((28, 28), "split", "dctnet24"),
    input_names=("y", "cbcr"),
    description="EfficientNet-Lite0 blocks 5.. with a DCT adapter (split, dctnet24)",
)
def efficientnet_lite0_dct_split24(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                   adapter_width: int = 384, adapter_blocks: int = 1,
                                   weights: str | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite0-DCT student, ``split`` layout, DCTNet's 24 channels.

    Args: as :func:`efficientnet_lite0_dct_split64`.

    Returns:
        Model with inputs ``y [b, H, W, 16]`` (``v, u < 4``) and ``cbcr [b, H/2, W/2, 8]``
        (Cb then Cr coefficients 0, 1, 8, 9) and float32 logits ``[b, num_classes]``.
    """
    return _student("efficientnet_lite0_dct_split24", "split", "dctnet24", grid, num_classes,
                    adapter_width, adapter_blocks, weights)


@register_model(
    **_STUDENT,
    input_spec=dct_spec((28, 28), "merged", "all64"),
    input_names=("dct",),
    description="EfficientNet-Lite0 blocks 5.. with a DCT adapter (merged, all64)",
)
def efficientnet_lite0_dct_merged64(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                    adapter_width: int = 384, adapter_blocks: int = 1,
                                    weights: str | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite0-DCT student, ``merged`` layout, all 64 coefficients.

    Args: as :func:`efficientnet_lite0_dct_split64`.

    Returns:
        Model with input ``dct [b, H, W, 192]`` (Y, then Cb and Cr repeated 2x2) and float32
        logits ``[b, num_classes]``.
    """
    return _student("efficientnet_lite0_dct_merged64", "merged", "all64", grid, num_classes,
                    adapter_width, adapter_blocks, weights)


@register_model(
    **_STUDENT,
    input_spec=dct_spec((28, 28), "merged", "dctnet24"),
    input_names=("dct",),
    description="EfficientNet-Lite0 blocks 5.. with a DCT adapter (merged, dctnet24)",
)
def efficientnet_lite0_dct_merged24(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                    adapter_width: int = 384, adapter_blocks: int = 1,
                                    weights: str | None = "imagenet") -> keras.Model:
    """EfficientNet-Lite0-DCT student, ``merged`` layout, DCTNet's 24 channels.

    Args: as :func:`efficientnet_lite0_dct_split64`.

    Returns:
        Model with input ``dct [b, H, W, 24]`` and float32 logits ``[b, num_classes]``.
    """
    return _student("efficientnet_lite0_dct_merged24", "merged", "dctnet24", grid, num_classes,
                    adapter_width, adapter_blocks, weights)


def _cut_student(cut: int, grid: tuple[int, int], num_classes: int, adapter_width: int,
                 adapter_blocks: int, weights: str | None) -> keras.Model:
    return _student(f"efficientnet_lite0_dct_cut{cut}", "split", "all64", grid, num_classes,
                    adapter_width, adapter_blocks, weights, cut=cut)


_CUT = dict(_STUDENT, input_spec=dct_spec((28, 28), "split", "all64"), input_names=("y", "cbcr"))


@register_model(**_CUT, description="EfficientNet-Lite0 blocks 1.. behind a 28x28 DCT adapter + depth_to_space")
def efficientnet_lite0_dct_cut0(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                adapter_width: int = 256, adapter_blocks: int = 2,
                                weights: str | None = "imagenet") -> keras.Model:
    """Student cut after block 0 (``block0_project_bn``, ``112 x 112 x 16``); blocks 1..15
    follow.

    Args: as :func:`efficientnet_lite0_dct_cut1`.

    Returns:
        As :func:`efficientnet_lite0_dct_cut1`, with ``adapter_out`` ``[b, 4H, 4W, 16]``.
    """
    return _cut_student(0, grid, num_classes, adapter_width, adapter_blocks, weights)


@register_model(**_CUT, description="EfficientNet-Lite0 blocks 2.. behind a 28x28 DCT adapter + depth_to_space")
def efficientnet_lite0_dct_cut1(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                adapter_width: int = 256, adapter_blocks: int = 2,
                                weights: str | None = "imagenet") -> keras.Model:
    """Student cut after block 1: the adapter emits the teacher's ``block1_project_bn``
    (``56 x 56 x 24``) and the pretrained blocks 2..15 follow.

    Args:
        grid: luma grid ``(H, W)`` in blocks (even).
        num_classes: logits; anything but 1000 leaves ``logits`` random.
        adapter_width: channels of the entry (luma; chroma half) and of the 1x1 convolutions.
        adapter_blocks: depthwise 3x3 stages on the 28x28 grid.
        weights: ``"imagenet"`` (teacher blocks 2..15 + head) or ``None``.

    Returns:
        Model with inputs ``y [b, H, W, 64]``, ``cbcr [b, H/2, W/2, 128]`` and float32 logits
        ``[b, num_classes]``; ``adapter_out`` is ``[b, 2H, 2W, 24]``.
    """
    return _cut_student(1, grid, num_classes, adapter_width, adapter_blocks, weights)


@register_model(**_CUT, description="EfficientNet-Lite0 blocks 3.. behind a 28x28 DCT adapter + depth_to_space")
def efficientnet_lite0_dct_cut2(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                adapter_width: int = 256, adapter_blocks: int = 2,
                                weights: str | None = "imagenet") -> keras.Model:
    """Student cut after block 2 (``block2_add``, ``56 x 56 x 24``); blocks 3..15 follow.

    Args: as :func:`efficientnet_lite0_dct_cut1`.

    Returns:
        As :func:`efficientnet_lite0_dct_cut1`.
    """
    return _cut_student(2, grid, num_classes, adapter_width, adapter_blocks, weights)


@register_model(**_CUT, description="EfficientNet-Lite0 blocks 5.. behind a DCT adapter (split64, width 256)")
def efficientnet_lite0_dct_cut4(grid: tuple[int, int] = (28, 28), num_classes: int = 1000,
                                adapter_width: int = 256, adapter_blocks: int = 1,
                                weights: str | None = "imagenet") -> keras.Model:
    """Student cut after block 4 (``block4_add``, ``28 x 28 x 40``): the adapter of
    :func:`efficientnet_lite0_dct_split64` at width 256 (issue #5's distilled student).

    Args: as :func:`efficientnet_lite0_dct_cut1` (``adapter_blocks``: residual MBConv blocks).

    Returns:
        Model with inputs ``y [b, H, W, 64]``, ``cbcr [b, H/2, W/2, 128]`` and float32 logits;
        ``adapter_out`` is ``[b, H, W, 40]``.
    """
    return _cut_student(4, grid, num_classes, adapter_width, adapter_blocks, weights)
