"""Layers the zoo adds to Keras' own, with a PyTorch twin in :mod:`converters.train.torch_graph`."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="edge_dct")
class DepthToSpace(keras.layers.Layer):
    """TensorFlow's ``depth_to_space`` (TFLite ``DEPTH_TO_SPACE``): ``[b, H, W, s*s*C]`` ->
    ``[b, s*H, s*W, C]``, channel ``(i * s + j) * C + c`` landing at row offset ``i``, column
    offset ``j``.

    Args:
        block: the factor ``s``.
    """

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, x):
        import tensorflow as tf

        return tf.nn.depth_to_space(x, self.block)

    def compute_output_shape(self, shape):
        b, h, w, c = shape
        s = self.block
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self):
        return {**super().get_config(), "block": self.block}
