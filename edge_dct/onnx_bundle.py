"""ONNX bundles: the ``edge_dct`` metadata entry of an ``.onnx`` model, read without onnx.

An edge_dct ONNX bundle (``python -m converters export MODEL OUT.onnx --format onnx``) carries
the same JSON object as a ``.tflite`` bundle (InputSpec v1 + labels) in the model's
``metadata_props`` under the key ``edge_dct``. This module walks the ModelProto's top-level
protobuf fields to find it, with every length checked against the buffer, so that loading a
bundle needs neither the ``onnx`` package nor an inference session.
"""

from __future__ import annotations

import json
from typing import Any

from edge_dct.errors import MetadataNotFoundError, ModelError

METADATA_KEY = "edge_dct"
_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto
_GRAPH = 7  # ModelProto.graph: every real model has one


def is_onnx(content: bytes) -> bool:
    """Whether ``content`` looks like an ONNX ModelProto rather than a TFLite flatbuffer
    (``TFL3`` at byte 4) — its first field is a protobuf key of ModelProto."""
    if len(content) >= 8 and content[4:8] == b"TFL3":
        return False
    return len(content) >= 2 and content[0] in (0x08, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A)


def _varint(buf: bytes, pos: int, name: str) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ModelError("corrupt ONNX model (a varint runs past the end)", name)
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _fields(buf: bytes, name: str):
    """(field number, wire type, value) of one protobuf message; value is an int for varints
    and a memoryview slice for length-delimited fields."""
    view = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, name)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, name)
        elif wire == 2:
            length, pos = _varint(buf, pos, name)
            if length > len(buf) - pos:
                raise ModelError("corrupt ONNX model (a field runs past the end)", name)
            value, pos = view[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if size > len(buf) - pos:
                raise ModelError("corrupt ONNX model (a field runs past the end)", name)
            value, pos = None, pos + size
        else:
            raise ModelError(f"corrupt ONNX model (wire type {wire})", name)
        yield number, wire, value


def read_onnx_metadata(content: bytes, name: str) -> dict[str, Any]:
    """The ``edge_dct`` JSON object of an ONNX model's ``metadata_props``.

    Raises:
        ModelError: A corrupt model, or metadata that is not a JSON object.
        MetadataNotFoundError: An ONNX model without the entry (not an edge_dct bundle).
    """
    found, has_graph = None, False
    for number, wire, value in _fields(bytes(content), name):
        has_graph |= number == _GRAPH and wire == 2
        if number != _METADATA_PROPS or wire != 2:
            continue
        entry = {n: bytes(v) for n, w, v in _fields(bytes(value), name) if w == 2}
        if entry.get(1) == METADATA_KEY.encode():
            found = entry.get(2, b"")
    if not has_graph:
        raise ModelError("not an ONNX model (no graph)", name)
    if found is None:
        raise MetadataNotFoundError(f"ONNX model without '{METADATA_KEY}' metadata "
                                    "(export it with python -m converters export ... --format onnx)", name)
    try:
        meta = json.loads(found.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"'{METADATA_KEY}' metadata is not JSON: {e}", name) from e
    if not isinstance(meta, dict):
        raise ModelError(f"'{METADATA_KEY}' metadata must be a JSON object", name)
    return meta


__all__ = ["METADATA_KEY", "is_onnx", "read_onnx_metadata"]
