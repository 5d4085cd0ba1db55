"""The distillation teacher: EfficientNet-Lite0 RGB (ImageNet weights) in two LiteRT halves.

The teacher is cut at :data:`TEACHER_FEATURE` (``block4_add``, 28x28x40 at 224 px, the input
of block 5 that every EfficientNet-Lite0-DCT student keeps). Its front half maps an image to
that feature, its back half the feature to the logits; both run in LiteRT (fp32, XNNPACK),
one pair of interpreters per thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

TEACHER = "efficientnet_lite0_rgb"
"""Registry name of the teacher."""
TEACHER_FEATURE = "block4_add"
"""Teacher layer whose output (28x28x40 at 224 px) is the input of block 5."""
FEATURE_CHANNELS = 40
"""Channels of :data:`TEACHER_FEATURE`."""
CLASSES = 1000


def teacher_bundles(work: Path, grid: int) -> tuple[bytes, bytes]:
    """fp32 ``.tflite`` halves of the teacher: image -> ``block4_add``, then -> logits (cached).

    Two models rather than one with two outputs: XNNPACK does not write an output tensor that
    other operators of the same delegated partition also read.

    Args:
        work: folder caching ``teacher_front_{grid}.tflite`` and ``teacher_back_{grid}.tflite``.
        grid: luma blocks per side; the teacher sees ``8 * grid`` pixels.

    Returns:
        (front, back) flatbuffers.
    """
    paths = work / f"teacher_front_{grid}.tflite", work / f"teacher_back_{grid}.tflite"
    if all(p.is_file() for p in paths):
        return paths[0].read_bytes(), paths[1].read_bytes()
    import keras

    from ..ship.export import convert
    from ..zoo.efficientnet_dct import FIRST_TEACHER_BLOCK
    from ..zoo.efficientnet_lite import lite0_tail, load_lite0_weights
    from ..zoo.registry import build

    teacher = build(TEACHER, image_size=8 * grid)
    front = keras.Model(teacher.input, teacher.get_layer(TEACHER_FEATURE).output)
    feature = keras.Input((grid, grid, FEATURE_CHANNELS), name="feature")
    back = keras.Model(feature, lite0_tail(feature, FIRST_TEACHER_BLOCK, CLASSES))
    load_lite0_weights(back)
    work.mkdir(parents=True, exist_ok=True)
    for model, path in ((front, paths[0]), (back, paths[1])):
        path.write_bytes(convert(model, "fp32"))
    return paths[0].read_bytes(), paths[1].read_bytes()


class Teacher:
    """The two teacher halves in LiteRT, one pair of interpreters per thread.

    Args:
        halves: (front, back) flatbuffers of :func:`teacher_bundles`.
    """

    def __init__(self, halves: tuple[bytes, bytes]):
        self.halves, self.local = halves, threading.local()

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[1, 8G, 8G, 3]`` float32 -> (``[G, G, 40]`` feature, ``[1000]`` logits)."""
        if not hasattr(self.local, "runs"):
            from ai_edge_litert.interpreter import Interpreter

            self.local.runs = []
            for tflite in self.halves:
                interp = Interpreter(model_content=tflite, num_threads=1)
                interp.allocate_tensors()
                self.local.runs.append((interp, interp.get_input_details()[0]["index"],
                                        interp.get_output_details()[0]["index"]))
        x = image
        outputs = []
        for interp, inp, out in self.local.runs:
            interp.set_tensor(inp, x)
            interp.invoke()
            x = interp.get_tensor(out)
            outputs.append(x[0])
        return outputs[0], outputs[1]
