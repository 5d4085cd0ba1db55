"""Training augmentation through the same C core as inference.

A random resized crop (torchvision's recipe: area fraction and aspect-ratio ranges) and a
horizontal flip are only a different *window* for :func:`edge_dct.prepare`, so training
tensors come from exactly the code path that serves the model. The evaluation transform is
``prepare(src, spec)`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_dct.jpeg import Source, load_source, read_header
from edge_dct.prepare import Window, prepare
from edge_dct.spec import InputSpec


@dataclass(frozen=True)
class AugmentOptions:
    """Random resized crop + flip parameters.

    Attributes:
        scale: Range of the crop's area as a fraction of the image's.
        ratio: Range of the crop's aspect ratio (width / height), sampled log-uniformly.
        hflip: Probability of mirroring the crop left-right.
    """

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5


@dataclass(frozen=True)
class Augmented:
    """One augmented sample: the tensors and the geometry that produced them.

    Attributes:
        tensors: name -> float32 array, as prepare() returns.
        window: (x, y, width, height) of the crop in EXIF-oriented pixels.
        hflip: Whether the crop was mirrored.
        size: (width, height) of the oriented image.
    """

    tensors: dict[str, np.ndarray]
    window: Window
    hflip: bool
    size: tuple[int, int]


def random_window(width: int, height: int, options: AugmentOptions,
                  rng: np.random.Generator) -> Window:
    """Samples a crop window (x, y, w, h) of a width x height image; centre crop fallback."""
    area = width * height
    log_ratio = (math.log(options.ratio[0]), math.log(options.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*options.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = math.sqrt(target * aspect)
        h = math.sqrt(target / aspect)
        if 0 < w <= width and 0 < h <= height:
            return (float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h)
    aspect = width / height
    if aspect < options.ratio[0]:
        w, h = float(width), width / options.ratio[0]
    elif aspect > options.ratio[1]:
        w, h = height * options.ratio[1], float(height)
    else:
        w, h = float(width), float(height)
    return ((width - w) / 2, (height - h) / 2, w, h)


class Augmenter:
    """Deterministic (seeded) random-resized-crop + flip, decoded by the C core.

    Example:
        >>> aug = Augmenter(spec, seed=0)
        >>> sample = aug("photo.jpg")   # sample.tensors["y"].shape == (1, 28, 28, 64)
    """

    def __init__(self, spec: InputSpec, options: AugmentOptions = AugmentOptions(),
                 seed: int | None = None):
        self.spec = spec
        self.options = options
        self.rng = np.random.default_rng(seed)

    def __call__(self, src: Source) -> Augmented:
        data, _ = load_source(src)
        info = read_header(data)
        size = (info.height, info.width) if info.orientation >= 5 else (info.width, info.height)
        window = random_window(*size, self.options, self.rng)
        flip = bool(self.rng.random() < self.options.hflip)
        tensors = prepare(data, self.spec, window=window, hflip=flip)
        return Augmented(tensors, window, flip, size)
