"""The DCT ResNet-50 variants of Gueguen et al. (NeurIPS 2018, Fig. S1) and the pixel baselines.

Inputs of the DCT nets (grid ``(H, W)`` = 28x28 luma blocks for 224 px):

* ``y``    ``[batch, H, W, 64]``      dequantized luma coefficients, natural order ``k = 8v + u``;
* ``cbcr`` ``[batch, H/2, W/2, 128]`` Cb's 64 coefficients then Cr's 64.

Notation below: ``CBn(k, s)`` is ResNet-50's ConvBlock of stage ``n`` (``n``'s channel count,
middle kernel ``k`` = 3 and stride ``s`` = 2 unless given), ``IB(k)`` an IdentityBlock.
Fig. S1 leaves a few details open; the choices made here (all shape-preserving) are:

* a BatchNormalization on each raw DCT input path or right after the first concat, as drawn
  for UpSampling (``concat_bn``, ``y_bn``, ``cbcr_bn``);
* DownSampling: the figure prints the concat as (14, 14, 192), which cannot hold with
  ``C(256, 2, 2)`` on Y giving (14, 14, 256) plus 128 chroma channels; the conv is kept and the
  concat is (14, 14, 384);
* Late-Concat: Y ``CB3(s=1), IB x3, CB4`` gives (14, 14, 1024), chroma ``CB4(k=1, s=1)`` gives
  (14, 14, 1024); the IdentityBlocks after the (14, 14, 2048) concat keep 2048 channels
  (bottleneck 256);
* Late-Concat-RFA: Y ``CB(k=1, s=1) -> 1024, IB(k=2), IB, CB(s=1) -> 512, IB x3,
  CB(s=2) -> 512``; chroma ``CB(k=1, s=1) -> 512``; concat (14, 14, 1024) then the standard
  stage 4 IdentityBlocks. Thinner: Y {384, 384, 768}, chroma 256, concat again 1024.

Every builder takes ``grid`` (or ``image_size``), ``num_classes`` and ``width`` (a channel
multiplier; 1.0 is the paper's network) so tests can build small copies.
"""

from __future__ import annotations

import keras
from keras import layers

from .input_spec import dct_spec, pixel_spec
from .registry import register_model
from .resnet_blocks import STAGE_CHANNELS, ChannelSlice, bottleneck, classifier_head, conv_bn, scaled, stage

_PAPER = "Gueguen et al., Faster Neural Networks Straight from JPEG, NeurIPS 2018, Fig. S1"
_DCT = dict(
    input_spec=dct_spec((28, 28), "split"),
    input_names=("y", "cbcr"),
    reference=_PAPER,
    speed_group="resnet",
)


def _dct_inputs(grid: tuple[int, int]):
    h, w = grid
    if h % 4 or w % 4:
        raise ValueError(f"grid must be a multiple of 4 blocks, got {grid}")
    return keras.Input((h, w, 64), name="y"), keras.Input((h // 2, w // 2, 128), name="cbcr")


def _ch(stage_n: int, width: float) -> int:
    return scaled(STAGE_CHANNELS[stage_n], width)


def _tail_from_stage4(x, width: float, num_classes: int, *, conv4_stride: int):
    x = stage(x, _ch(4, width), 6, stride=conv4_stride, name="conv4")
    x = stage(x, _ch(5, width), 3, stride=2, name="conv5")
    return classifier_head(x, num_classes)


def _identity_blocks(x, count: int, name: str):
    for i in range(count):
        x = bottleneck(x, x.shape[-1], shortcut_conv=False, name=f"{name}_block{i + 2}")
    return x


def _upsampling_rfa_trunk(concat, width: float, num_classes: int):
    x = layers.BatchNormalization(name="concat_bn")(concat)
    x = stage(x, _ch(2, width), 3, stride=1, kernels=(1, 2), name="conv2")
    x = stage(x, _ch(3, width), 4, stride=1, name="conv3")
    return _tail_from_stage4(x, width, num_classes, conv4_stride=2)


def _late_concat_rfa(grid, num_classes, width, y_channels, chroma_channels, name):
    y_in, cbcr_in = _dct_inputs(grid)
    y = layers.BatchNormalization(name="y_bn")(y_in)
    y = stage(y, scaled(y_channels[0], width), 3, stride=1, kernels=(1, 2), name="y_cb1")
    y = stage(y, scaled(y_channels[1], width), 4, stride=1, name="y_cb2")
    y = bottleneck(y, scaled(y_channels[2], width), stride=2, shortcut_conv=True, name="y_cb3")
    c = layers.BatchNormalization(name="cbcr_bn")(cbcr_in)
    c = bottleneck(c, scaled(chroma_channels, width), kernel=1, stride=1, shortcut_conv=True, name="chroma_cb")
    x = layers.Concatenate(name="concat")([y, c])
    x = _identity_blocks(x, 5, "conv4")
    x = stage(x, _ch(5, width), 3, stride=2, name="conv5")
    return keras.Model([y_in, cbcr_in], classifier_head(x, num_classes), name=name)


@register_model(
    **_DCT,
    paper_speedup="~1.9 (396-401 FPS)",
    description="UpSampling: Cb, Cr duplicated 2x, concat with Y (28,28,192), BN, CB3(s=1), CB4, CB5",
)
def upsampling(grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """UpSampling (Fig. S1). ``concat`` is ``(H, W, 192)``; ``conv3`` runs at the Y grid.

    Args:
        grid: luma grid ``(H, W)`` in blocks, multiples of 4.
        num_classes: number of logits.
        width: channel multiplier of every ResNet stage.

    Returns:
        Model with inputs ``y`` ``[b, H, W, 64]`` and ``cbcr`` ``[b, H/2, W/2, 128]`` (float32)
        and float32 logits ``[b, num_classes]``.
    """
    y_in, cbcr_in = _dct_inputs(grid)
    up = layers.UpSampling2D(2, interpolation="nearest", name="upsample_cbcr")(cbcr_in)
    x = layers.Concatenate(name="concat")([y_in, up])
    x = layers.BatchNormalization(name="concat_bn")(x)
    x = stage(x, _ch(3, width), 4, stride=1, name="conv3")
    return keras.Model([y_in, cbcr_in], _tail_from_stage4(x, width, num_classes, conv4_stride=2), name="upsampling")


@register_model(
    **_DCT,
    paper_speedup="~1.3",
    description="UpSampling-RFA: UpSampling keeping CB2 (k=1, s=1), IB(k=2), IB before CB3(s=1)",
)
def upsampling_rfa(grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """UpSampling-RFA (Fig. S1): receptive field grows as in ResNet-50 through a kept CB2.

    Args and Returns: as :func:`upsampling`.
    """
    y_in, cbcr_in = _dct_inputs(grid)
    up = layers.UpSampling2D(2, interpolation="nearest", name="upsample_cbcr")(cbcr_in)
    concat = layers.Concatenate(name="concat")([y_in, up])
    return keras.Model([y_in, cbcr_in], _upsampling_rfa_trunk(concat, width, num_classes), name="upsampling_rfa")


@register_model(
    **_DCT,
    paper_speedup="1.29 (268 FPS)",
    description="Deconvolution-RFA: Cb, Cr each through Deconv(64, 2, 2) -> (28,28,128), then as UpSampling-RFA",
)
def deconvolution_rfa(grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """Deconvolution-RFA (Fig. S1): learned 2x2/2 transposed convs replace pixel duplication.

    Args and Returns: as :func:`upsampling`.
    """
    y_in, cbcr_in = _dct_inputs(grid)
    deconv = scaled(64, width)
    cb = ChannelSlice(0, 64, name="cb")(cbcr_in)
    cr = ChannelSlice(64, 128, name="cr")(cbcr_in)
    cb = layers.Conv2DTranspose(deconv, 2, strides=2, name="deconv_cb")(cb)
    cr = layers.Conv2DTranspose(deconv, 2, strides=2, name="deconv_cr")(cr)
    chroma = layers.Concatenate(name="deconv_concat")([cb, cr])
    concat = layers.Concatenate(name="concat")([y_in, chroma])
    return keras.Model([y_in, cbcr_in], _upsampling_rfa_trunk(concat, width, num_classes), name="deconvolution_rfa")


@register_model(
    **_DCT,
    paper_speedup="2.17 (451 FPS)",
    description="DownSampling: Y through C(256, 2, 2) to the chroma grid, concat, CB3(s=1), CB4(s=1), CB5",
)
def downsampling(grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """DownSampling (Fig. S1): everything from CB3 runs at the chroma grid (14x14).

    Args and Returns: as :func:`upsampling`.
    """
    y_in, cbcr_in = _dct_inputs(grid)
    y = layers.Conv2D(scaled(256, width), 2, strides=2, name="y_down")(y_in)
    x = layers.Concatenate(name="concat")([y, cbcr_in])
    x = layers.BatchNormalization(name="concat_bn")(x)
    x = stage(x, _ch(3, width), 4, stride=1, name="conv3")
    return keras.Model([y_in, cbcr_in], _tail_from_stage4(x, width, num_classes, conv4_stride=1), name="downsampling")


@register_model(
    **_DCT,
    paper_speedup="~1.9 (396-401 FPS)",
    description="Late-Concat: Y through CB3(s=1), IB x3, CB4; Cb, Cr through CB4(k=1, s=1); concat at 14x14",
)
def late_concat(grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """Late-Concat (Fig. S1): Y and chroma go separate ways until the chroma resolution.

    Args and Returns: as :func:`upsampling`.
    """
    y_in, cbcr_in = _dct_inputs(grid)
    y = layers.BatchNormalization(name="y_bn")(y_in)
    y = stage(y, _ch(3, width), 4, stride=1, name="y_cb1")
    y = bottleneck(y, _ch(4, width), stride=2, shortcut_conv=True, name="y_cb2")
    c = layers.BatchNormalization(name="cbcr_bn")(cbcr_in)
    c = bottleneck(c, _ch(4, width), kernel=1, stride=1, shortcut_conv=True, name="chroma_cb")
    x = layers.Concatenate(name="concat")([y, c])
    x = _identity_blocks(x, 5, "conv4")
    x = stage(x, _ch(5, width), 3, stride=2, name="conv5")
    return keras.Model([y_in, cbcr_in], classifier_head(x, num_classes), name="late_concat")


@register_model(
    **_DCT,
    paper_speedup="~1.3",
    description="Late-Concat-RFA: Y through three CBs {1024, 512, 512} mimicking ResNet-50's receptive field",
)
def late_concat_rfa(grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """Late-Concat-RFA (Fig. S1).

    Args and Returns: as :func:`upsampling`.
    """
    return _late_concat_rfa(grid, num_classes, width, (1024, 512, 512), 512, "late_concat_rfa")


@register_model(
    **_DCT,
    paper_speedup="1.77 (369 FPS)",
    description="Late-Concat-RFA-Thinner: Late-Concat-RFA with Y channels {384, 384, 768} and a 256-channel chroma CB",
)
def late_concat_rfa_thinner(
    grid: tuple[int, int] = (28, 28), num_classes: int = 1000, width: float = 1.0
) -> keras.Model:
    """Late-Concat-RFA-Thinner (Fig. S1; about ResNet-50's accuracy at 1.77x its speed).

    Args and Returns: as :func:`upsampling`.
    """
    return _late_concat_rfa(grid, num_classes, width, (384, 384, 768), 256, "late_concat_rfa_thinner")


def _resnet50_pixels(image_size: int, num_classes: int, width: float, name: str) -> keras.Model:
    image = keras.Input((image_size, image_size, 3), name="image")
    x = conv_bn(image, scaled(64, width), 7, 2, "conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = stage(x, _ch(2, width), 3, stride=1, name="conv2")
    x = stage(x, _ch(3, width), 4, stride=2, name="conv3")
    return keras.Model(image, _tail_from_stage4(x, width, num_classes, conv4_stride=2), name=name)


@register_model(
    input_spec=pixel_spec((28, 28), "rgb", mean=127.5, std=127.5),
    input_names=("image",),
    reference=_PAPER + " (baseline)",
    description="ResNet-50 on RGB pixels (the paper's baseline)",
    speed_group="resnet",
    baseline=True,
    paper_speedup="1.00 (208 FPS)",
)
def resnet50_rgb(image_size: int = 224, num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """ResNet-50 v1 on RGB pixels.

    Args:
        image_size: side of the square input, a multiple of 32.
        num_classes: number of logits.
        width: channel multiplier.

    Returns:
        Model with input ``image`` ``[b, S, S, 3]`` float32 and logits ``[b, num_classes]``.
    """
    return _resnet50_pixels(image_size, num_classes, width, "resnet50_rgb")


@register_model(
    input_spec=pixel_spec((28, 28), "ycbcr", mean=127.5, std=127.5),
    input_names=("image",),
    reference=_PAPER + " (baseline)",
    description="ResNet-50 on full-resolution YCbCr pixels (the paper's YCbCr baseline)",
    speed_group="resnet",
    paper_speedup="1.00 (207 FPS)",
)
def resnet50_ycbcr(image_size: int = 224, num_classes: int = 1000, width: float = 1.0) -> keras.Model:
    """ResNet-50 v1 on YCbCr pixels (same graph as :func:`resnet50_rgb`, other input contract).

    Args and Returns: as :func:`resnet50_rgb`.
    """
    return _resnet50_pixels(image_size, num_classes, width, "resnet50_ycbcr")
