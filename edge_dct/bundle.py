"""Model bundles: one .tflite (or .onnx) file carrying its InputSpec and labels.

The converter (``converters/``) writes InputSpec v1 + ``labels`` as JSON into a TFLite
metadata buffer named ``edge_dct``; the C core locates it (``edct_find_metadata``, shared
with the Android bridge), ``read_metadata`` decodes it and ``ModelBundle.load`` validates it.
ONNX bundles carry the same JSON in their ``metadata_props`` (:mod:`edge_dct.onnx_bundle`) and
run on ONNX Runtime (:mod:`edge_dct.onnx_runtime`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from edge_dct import _jpeg
from edge_dct.errors import (  # ModelError: re-exported (its old home)
    MetadataNotFoundError,
    ModelError,
    read_file,
)
from edge_dct.onnx_bundle import is_onnx, read_onnx_metadata
from edge_dct.spec import InputSpec, InvalidSpecError

METADATA_NAME: str = _jpeg.METADATA_NAME
"""Name of the TFLite metadata entry holding InputSpec v1 + labels (``EDCT_METADATA_NAME``)."""
MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "default.tflite"
_SPEC_FIELDS = ("version", "grid", "resize", "chroma", "layout", "channels", "normalize", "labels")

ModelSource = Union[str, os.PathLike, bytes, bytearray, memoryview]


@dataclass(frozen=True)
class ModelBundle:
    """A loaded bundle.

    Attributes:
        name: The file path, or ``<bytes>``.
        content: The .tflite (or .onnx) bytes.
        spec: The InputSpec (labels included).
        metadata: The whole JSON object (spec fields plus any extra keys).
        format: ``"tflite"`` (LiteRT) or ``"onnx"`` (ONNX Runtime).
    """

    name: str
    content: bytes = field(repr=False)
    spec: InputSpec
    metadata: dict[str, Any] = field(repr=False)
    format: str = "tflite"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels or ()

    @classmethod
    def load(cls, model: ModelSource | None = None) -> "ModelBundle":
        """Reads a bundle from a path or bytes; None means the embedded default model.

        Raises:
            ModelError: Missing or unreadable file, not a TFLite model, no ``edge_dct``
                metadata (MetadataNotFoundError), or metadata that is not a valid InputSpec
                with labels.
        """
        content, name = _read(model)
        fmt = "onnx" if is_onnx(content) else "tflite"
        meta = read_onnx_metadata(content, name) if fmt == "onnx" else read_metadata(content, name)
        if meta.get("layout") in ("rgb", "ycbcr"):
            raise ModelError(f"a pixel-input bundle (layout {meta['layout']!r}); edge_dct runs "
                             "DCT-input models (layout 'split' or 'merged')", name)
        try:
            spec = InputSpec.from_dict({k: meta[k] for k in _SPEC_FIELDS if k in meta})
        except InvalidSpecError as e:
            raise ModelError(f"bad InputSpec in metadata: {e.reason}", name) from e
        if not spec.labels:
            raise ModelError("metadata has no labels", name)
        return cls(name, bytes(content), spec, meta, fmt)


def read_metadata(content: bytes, name: str) -> dict[str, Any]:
    """The ``edge_dct`` metadata JSON object of a .tflite model (any layout, not validated).

    Args:
        content: The .tflite bytes.
        name: The model's name for error messages (its path, or ``<bytes>``).

    Returns:
        The decoded JSON object: InputSpec v1 fields, ``labels`` and any extra keys.

    Raises:
        ModelError: Not a TFLite model, a corrupt one, or metadata that is not a JSON object.
        MetadataNotFoundError: A TFLite model without the entry (not an edge_dct bundle).
    """
    offset, length = _jpeg.find_metadata(content, name)
    try:
        meta = json.loads(bytes(content[offset:offset + length]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"'{METADATA_NAME}' metadata is not JSON: {e}", name) from e
    if not isinstance(meta, dict):
        raise ModelError(f"'{METADATA_NAME}' metadata must be a JSON object", name)
    return meta


def _read(model: ModelSource | None) -> tuple[bytes, str]:
    if model is None:
        if not DEFAULT_MODEL.is_file():
            raise ModelError("the embedded default model is not installed "
                             f"(expected {DEFAULT_MODEL}); pass model=PATH", "default model")
        model = DEFAULT_MODEL
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "<bytes>"
    return read_file(model, ModelError, "model")


def available_models() -> list[Path]:
    """The bundles shipped inside the package (``edge_dct/models/*.tflite``)."""
    return sorted(MODELS_DIR.glob("*.tflite"))


__all__ = [
    "DEFAULT_MODEL",
    "METADATA_NAME",
    "MetadataNotFoundError",
    "ModelBundle",
    "ModelError",
    "ModelSource",
    "available_models",
    "read_metadata",
]
