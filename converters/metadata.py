"""The ``edge_dct`` metadata buffer of a ``.tflite`` bundle (InputSpec v1 + labels, as JSON).

Written with the flatbuffers object API of the TFLite schema that ``ai_edge_litert`` ships
(``schema_py_generated``): unpack the model, append a buffer holding the UTF-8 JSON and a
``Metadata(name="edge_dct", buffer=<index>)`` entry, repack with the ``TFL3`` identifier.
Metadata the converter wrote (``min_runtime_version``, ``CONVERSION_METADATA``) is kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edge_dct import _jpeg

METADATA_NAME = "edge_dct"
_FILE_IDENTIFIER = b"TFL3"


def embed_metadata(tflite: bytes, payload: dict[str, Any], name: str = METADATA_NAME) -> bytes:
    """Return ``tflite`` with ``payload`` stored as the JSON metadata buffer ``name``.

    An existing entry of that name is replaced; other metadata entries are kept.

    Args:
        tflite: a TFLite flatbuffer.
        payload: JSON-serialisable dict (the InputSpec fields plus ``labels``).
        name: metadata entry name.

    Returns:
        The repacked flatbuffer.
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    data = np.frombuffer(json.dumps(payload, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != name]
    buffer = schema.BufferT()
    buffer.data = data
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(tflite) + len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def read_metadata(model: str | Path | bytes, name: str = METADATA_NAME) -> dict[str, Any]:
    """Read the JSON metadata buffer ``name`` of a ``.tflite`` file.

    Located by the C core's ``edct_find_metadata`` (the reader the runtime and Android use).

    Args:
        model: path of a ``.tflite`` file, or its bytes.
        name: metadata entry name.

    Returns:
        The decoded JSON object.

    Raises:
        KeyError: the model has no such metadata entry.
        ValueError: the file is not a readable TFLite model.
    """
    buf = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    found, status, reason = _jpeg.find_metadata(buf, str(model)[:80], name)
    if found is None:
        raise (KeyError if status == 2 else ValueError)(reason)
    offset, length = found
    return json.loads(buf[offset:offset + length].decode("utf-8"))


def _name(raw: bytes | str | None) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else (raw or "")
