"""edge_dct: classify JPEG photos straight from their DCT coefficients.

The JPEG API (this module's flat functions) reads headers and coefficients
without decompressing pixels, and writes JPEGs (``encode``) or re-codes them in
the DCT domain with new quantization tables (``transcode``); see README.md for
the coefficient order and the error types (all in ``edge_dct.errors``, all
derived from ``EdgeDctError``).
"""

from edge_dct.classifier import (
    CACHE_SIZE,
    Category,
    ClassificationResult,
    Classifier,
    classify,
)
from edge_dct.codec import encode, transcode, transcode_for_model
from edge_dct.embedder import (
    Embedding,
    EmbeddingResult,
    ImageEmbedder,
    ImageEmbedderOptions,
)
from edge_dct.errors import (
    AcceleratorUnavailableError,
    DatasetError,
    EdgeDctError,
    EdgeDctWarning,
    ErrorCode,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidJpegError,
    InvalidSpecError,
    MetadataNotFoundError,
    ModelError,
    OutOfMemoryError,
    RuntimeUnavailableError,
    UnsupportedJpegError,
)
from edge_dct.jpeg import DctImage, JpegInfo, read_dct, read_header
from edge_dct.options import BaseOptions, ClassifierOptions
from edge_dct.prepare import prepare
from edge_dct.runtime import runtime_info
from edge_dct.spec import InputSpec
from edge_dct.tables import QuantTables, file_tables, standard_tables, tables_for_model
from edge_dct.trainer import Trainer, TrainerOptions, TrainingResult, train_classifier

__version__ = "0.1.0"

__all__ = [
    "CACHE_SIZE",
    "AcceleratorUnavailableError",
    "BaseOptions",
    "Category",
    "ClassificationResult",
    "Classifier",
    "ClassifierOptions",
    "DatasetError",
    "DctImage",
    "EdgeDctError",
    "EdgeDctWarning",
    "ErrorCode",
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedder",
    "ImageEmbedderOptions",
    "ImageTooLargeError",
    "InputSpec",
    "InvalidArgumentError",
    "InvalidJpegError",
    "InvalidSpecError",
    "JpegInfo",
    "MetadataNotFoundError",
    "ModelError",
    "OutOfMemoryError",
    "QuantTables",
    "RuntimeUnavailableError",
    "Trainer",
    "TrainerOptions",
    "TrainingResult",
    "UnsupportedJpegError",
    "classify",
    "encode",
    "file_tables",
    "prepare",
    "read_dct",
    "read_header",
    "runtime_info",
    "standard_tables",
    "tables_for_model",
    "train_classifier",
    "transcode",
    "transcode_for_model",
]
