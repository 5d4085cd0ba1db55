"""edge_dct: classify JPEG photos straight from their DCT coefficients.

The JPEG API (this module's flat functions) reads headers and coefficients
without decompressing pixels; see README.md for the coefficient order and the
error types.
"""

from edge_dct.bundle import ModelError
from edge_dct.classifier import (
    Category,
    ClassificationResult,
    Classifier,
    ClassifierOptions,
    classify,
)
from edge_dct.errors import (
    EdgeDctError,
    EdgeDctWarning,
    ImageTooLargeError,
    InvalidJpegError,
    UnsupportedJpegError,
)
from edge_dct.jpeg import DctImage, JpegInfo, read_dct, read_header
from edge_dct.prepare import prepare
from edge_dct.runtime import AcceleratorUnavailableError, runtime_info
from edge_dct.spec import InputSpec, InvalidSpecError

__version__ = "0.1.0"

__all__ = [
    "AcceleratorUnavailableError",
    "Category",
    "ClassificationResult",
    "Classifier",
    "ClassifierOptions",
    "DctImage",
    "ModelError",
    "EdgeDctError",
    "EdgeDctWarning",
    "ImageTooLargeError",
    "InputSpec",
    "InvalidSpecError",
    "InvalidJpegError",
    "JpegInfo",
    "UnsupportedJpegError",
    "classify",
    "prepare",
    "read_dct",
    "read_header",
    "runtime_info",
]
