"""Crop windows of training photos and the teacher's pixel view of a window.

A training sample is a *window* ``(x, y, w, h)`` (float, in the oriented photo's pixels) and a
mirror flag. The teacher sees the libjpeg-turbo decode of that window (:func:`teacher_crop`);
the student reads the same window of the same file through ``edge_dct.prepare(..., window=,
hflip=)``, the C core that serves it: train and serve identically.

Variant 0 of a photo is the serving geometry (:func:`edge_dct.prepare.eval_window`: shorter
side to 256, centre 224, no flip); variants 1.. are seeded random resized crops
(:data:`TRAIN_CROP`), a pure function of (variant, photo index) (:func:`crop_of`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge_dct.augment import AugmentOptions, random_window
from edge_dct.prepare import Window, eval_window, oriented_size
from edge_dct.spec import InputSpec, dct_spec

TRAIN_CROP = AugmentOptions(scale=(0.25, 1.0))
"""Random crops of variants 1..: milder than ImageNet training's 8-100%, the student only
has to follow the teacher on photos framed like the ones it will serve."""


def crop_of(data: bytes, variant: int, index: int, grid: int) -> tuple[Window, bool]:
    """The window and flip of (photo ``index``, ``variant``): a pure function of both.

    Args:
        data: the JPEG (only its oriented size is read).
        variant: 0 for the serving crop, 1.. for seeded random resized crops.
        index: the photo's position in its listing (seeds the crop).
        grid: luma blocks per side of the model input.
    """
    size = oriented_size(data)
    if variant == 0:
        return eval_window(dct_spec((grid, grid)), *size), False
    rng = np.random.default_rng([variant, index])
    window = random_window(*size, TRAIN_CROP, rng)
    return window, bool(rng.random() < TRAIN_CROP.hflip)


def decode_rgb(data: bytes) -> np.ndarray:
    """libjpeg-turbo (OpenCV) decode with EXIF orientation applied, RGB uint8 ``[h, w, 3]``.

    Raises:
        ValueError: OpenCV could not decode the data.
    """
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("OpenCV could not decode the JPEG")
    return bgr[..., ::-1]


def teacher_crop(rgb: np.ndarray, window: Window, hflip: bool, size: int) -> np.ndarray:
    """The teacher's view of a window: crop, resize to ``size``, mirror, ``(x - 127) / 128``.

    The pixels covering the window are cut out, resized by ``size / w`` and ``size / h`` (area
    averaging when shrinking, bilinear when enlarging) and the window's own ``size x size``
    part is taken at its sub-pixel offset, rounded.

    Args:
        rgb: the full decode ``[h, w, 3]`` uint8, oriented.
        window: ``(x, y, w, h)`` float crop in the decode's pixel coordinates.
        hflip: mirror the crop left-right (as ``prepare(..., hflip=True)`` does).
        size: output side in pixels (8 x grid).

    Returns:
        ``[1, size, size, 3]`` float32.
    """
    x, y, w, h = window
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    x1, y1 = min(int(math.ceil(x + w)), rgb.shape[1]), min(int(math.ceil(y + h)), rgb.shape[0])
    sx, sy = size / w, size / h
    rw, rh = max(size, round((x1 - x0) * sx)), max(size, round((y1 - y0) * sy))
    shrink = sx < 1 and sy < 1
    region = cv2.resize(rgb[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    left, top = min(round((x - x0) * sx), rw - size), min(round((y - y0) * sy), rh - size)
    crop = region[top:top + size, left:left + size]
    if hflip:
        crop = crop[:, ::-1]
    return ((crop.astype(np.float32) - 127.0) / 128.0)[None]


def serving_view(data: bytes, spec: InputSpec) -> np.ndarray:
    """The teacher's input for the serving crop of a photo: ``[1, 8G, 8G, 3]`` float32."""
    window = eval_window(spec, *oriented_size(data))
    return teacher_crop(decode_rgb(data), window, False, 8 * spec.grid[0])
