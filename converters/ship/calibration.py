"""Sample sources for int8 calibration and fp32-vs-quantized agreement checks.

A *sample* is a dict ``{input_name: float32 array [1, ...]}`` matching the model's inputs
(batch 1); the converter's representative dataset is fed per signature by input name.

* Pixel models (``layout`` ``rgb``/``ycbcr``): real photos from the shared corpus, decoded by
  Pillow with the model's resize/crop and normalisation.
* DCT models: the same photos through ``edge_dct.prepare``, the C core that serves the
  model, so calibration sees exactly the tensors the runtime feeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence, Union

import numpy as np
from PIL import Image

import edge_dct
from edge_dct.spec import InputSpec

from ..data.photos import corpus_photos, load_photo

Sample = dict[str, np.ndarray]
SampleSource = Union[Iterable[Sample], Callable[[], Iterable[Sample]]]


def quantize_int8(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """A float tensor on an int8 input's grid, as LiteRT and ONNX Runtime quantize it:
    ``round(x / scale) + zero_point`` (halves to even), saturated to [-128, 127]; int8."""
    return np.clip(np.round(np.asarray(x, np.float32) / scale) + zero_point, -128, 127).astype(np.int8)


def iterate(source: SampleSource) -> Iterator[Sample]:
    """Iterate a sample source (an iterable, or a callable returning one)."""
    return iter(source() if callable(source) else source)


def photo_samples(paths: Sequence[str | Path | BinaryIO], spec: dict[str, Any], image_size: int) -> list[Sample]:
    """Samples ``{"image": [1, S, S, 3] float32}`` for a pixel model from photo files.

    Args:
        paths: JPEG files (paths or binary file objects).
        spec: the model's InputSpec (``layout`` ``rgb`` or ``ycbcr``, ``normalize``,
            ``resize.size`` for this input size).
        image_size: the model's input side ``S``.

    Returns:
        One sample per path, normalised as ``(pixel - mean) / std``.
    """
    mean = np.asarray(spec["normalize"]["mean"], np.float32)
    std = np.asarray(spec["normalize"]["std"], np.float32)
    out = []
    for path in paths:
        rgb = load_photo(path, size=image_size, resize_shorter=spec["resize"]["size"])
        if spec["layout"] == "ycbcr":
            rgb = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
        out.append({"image": ((rgb.astype(np.float32) - mean) / std)[None]})
    return out


def dct_samples(paths: Sequence[str | Path | BinaryIO], spec: dict[str, Any]) -> list[Sample]:
    """Samples for a DCT model: the photos through ``edge_dct.prepare`` (the serving path).

    Args:
        paths: JPEG files.
        spec: the model's InputSpec dict (``grid``, ``layout``, ``channels``, ``normalize``).

    Returns:
        One ``{input_name: float32 [1, ...]}`` per photo, exactly what the runtime feeds.
    """
    sdk_spec = InputSpec.from_dict({k: v for k, v in spec.items() if k != "labels"})
    return [edge_dct.prepare(p, sdk_spec) for p in paths]


def spec_samples(paths: Sequence[str | Path | BinaryIO], input_shapes: dict[str, tuple[int, ...]],
                 spec: dict[str, Any]) -> list[Sample]:
    """Samples of any model from photos: Pillow pixels for pixel models, ``prepare`` for DCT ones."""
    if spec["layout"] in ("rgb", "ycbcr"):
        return photo_samples(paths, spec, input_shapes["image"][0])
    return dct_samples(paths, spec)


def default_samples(
    input_shapes: dict[str, tuple[int, ...]], spec: dict[str, Any], n: int = 16
) -> tuple[list[Sample], list[Sample]]:
    """Disjoint (calibration, evaluation) samples for a model.

    The corpus photos, split alternately (at most ``n`` each), decoded by Pillow for pixel
    models and by ``edge_dct.prepare`` for DCT models.

    Args:
        input_shapes: input name -> shape without batch.
        spec: the model's InputSpec.
        n: samples per set.

    Returns:
        ``(calibration, evaluation)`` lists of samples.
    """
    photos = corpus_photos()
    if not photos:
        raise FileNotFoundError("no photos in the corpus; pass calibration= and evaluation=")
    cal, ev = photos[0::2][:n], photos[1::2][:n]
    return spec_samples(cal, input_shapes, spec), spec_samples(ev, input_shapes, spec)


def channel_stats(photos: list[Path], spec: InputSpec) -> dict[str, list[float]]:
    """InputSpec ``normalize`` fitted on photos: per channel the mean and the largest deviation.

    The largest deviation, not the standard deviation: the model input is quantized per
    tensor and AC coefficients are heavy-tailed (maxima of 30+ standard deviations), so
    scaling by std would leave the DC term a dozen int8 levels; scaling every channel into
    [-1, 1] gives each its 8 bits (measured on the default model: 83% -> 92% top-1 agreement
    with the teacher; a 99.99% quantile range, clipping the rarest values, 89%).

    Args:
        photos: JPEGs (evaluation transform).
        spec: the student's spec without normalization (raw dequantized coefficients).

    Returns:
        ``{"mean": [...], "std": [...]}`` in the spec's channel order (y, cb, cr).
    """
    per_tensor: dict[str, list[np.ndarray]] = {t.name: [] for t in spec.tensors}
    for p in photos:
        for name, t in edge_dct.prepare(p, spec).items():
            per_tensor[name].append(t.reshape(-1, t.shape[-1]))
    mean, dev = [], []
    for name in per_tensor:
        values = np.concatenate(per_tensor[name]).astype(np.float64)
        mean.append(values.mean(0))
        dev.append(np.maximum(np.abs(values - mean[-1]).max(0), 1e-3))
    return {"mean": [round(float(v), 4) for v in np.concatenate(mean)],
            "std": [round(float(v), 4) for v in np.concatenate(dev)]}
