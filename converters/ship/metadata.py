"""The ``edge_dct`` metadata buffer of a ``.tflite`` bundle (InputSpec v1 + labels, as JSON).

Written with the flatbuffers object API of the TFLite schema that ``ai_edge_litert`` ships
(``schema_py_generated``): unpack the model, append a buffer holding the UTF-8 JSON and a
``Metadata(name="edge_dct", buffer=<index>)`` entry, repack with the ``TFL3`` identifier.
Metadata the converter wrote (``min_runtime_version``, ``CONVERSION_METADATA``) is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from edge_dct import bundle
from edge_dct.heads import set_metadata
_FILE_IDENTIFIER = b"TFL3"


def embed_metadata(tflite: bytes, payload: dict[str, Any]) -> bytes:
    """Return ``tflite`` with ``payload`` stored as the JSON metadata buffer ``edge_dct``.

    An existing ``edge_dct`` entry is replaced in place (its buffer takes the new JSON, so a
    re-embedded bundle carries no stale copy); other metadata entries are kept.

    Args:
        tflite: a TFLite flatbuffer.
        payload: JSON-serialisable dict (the InputSpec fields plus ``labels``).

    Returns:
        The repacked flatbuffer.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    set_metadata(model, payload)
    builder = flatbuffers.Builder(len(tflite) + 65536)  # a size hint; the builder grows
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def read_metadata(model: str | Path | bytes) -> dict[str, Any]:
    """Read the ``edge_dct`` JSON metadata of a ``.tflite`` file (any layout, not validated).

    The runtime's reader (:func:`edge_dct.bundle.read_metadata`, over the C core's
    ``edct_find_metadata`` that Android uses too).

    Args:
        model: path of a ``.tflite`` file, or its bytes.

    Returns:
        The decoded JSON object.

    Raises:
        edge_dct.MetadataNotFoundError: the model has no ``edge_dct`` entry (a ``LookupError``).
        edge_dct.ModelError: the file is not a readable TFLite model (a ``ValueError``).
    """
    if isinstance(model, (bytes, bytearray)):
        return bundle.read_metadata(bytes(model), "<bytes>")
    return bundle.read_metadata(Path(model).read_bytes(), str(model))
