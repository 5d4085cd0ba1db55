"""How the models ship: TFLite and ONNX conversion, calibration, metadata, agreement reports, speed table.

* :mod:`~converters.ship.export` -- SavedModel -> ``.tflite`` (fp32, fp16, int8), the
  :class:`ExportReport` (fp32-vs-quantized agreement, latency, GPU-delegate check).
* :mod:`~converters.ship.onnx_export` -- the same models as ``.onnx`` bundles (fp32, fp16, int8
  QDQ) through their PyTorch twin, for ONNX Runtime (CUDA / TensorRT).
* :mod:`~converters.ship.calibration` -- calibration samples through the serving path and the
  per-channel input statistics of DCT models.
* :mod:`~converters.ship.metadata` -- the ``edge_dct`` metadata buffer (InputSpec + labels).
* :mod:`~converters.ship.intervals` -- Wilson intervals of agreements.
* :mod:`~converters.ship.speed_table` -- LiteRT latency of the zoo's speed groups.
"""

from .export import ExportReport, compare, convert, export
from .intervals import wilson_interval
from .metadata import embed_metadata, read_metadata

__all__ = ["ExportReport", "compare", "convert", "embed_metadata", "export", "read_metadata", "wilson_interval"]
