"""JPEG quantization tables: standard ones, a file's own, and table sets tuned for a model.

A table set tuned for a bundle ``NAME.tflite`` is the JSON file ``NAME.tables.json`` beside
it (written by ``edge-dct tune-tables``); the embedded default model's ships as
``edge_dct/models/default.tables.json``. Its ``tables`` entry holds ``luma`` and ``chroma``
as 8x8 lists (natural order, values 1..255); everything else in it (how it was tuned and
measured) is a record for people.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from edge_dct import _jpeg
from edge_dct.bundle import ModelBundle, ModelSource
from edge_dct.errors import InvalidArgumentError, ModelError
from edge_dct.jpeg import DEFAULT_MAX_PIXELS, Source, load_source, read_header
from edge_dct.prepare import Region, region_read
from edge_dct.spec import InputSpec

TablesLike = Union["QuantTables", Sequence[Any], np.ndarray]
"""A :class:`QuantTables` or ``(luma, chroma)``: 64 values or 8x8 each."""

DEFAULT_TABLES = Path(__file__).resolve().parent / "models" / "default.tables.json"
"""The table set tuned for the embedded default model."""


@dataclass(frozen=True, eq=False)
class QuantTables:
    """A luma and a chroma quantization table.

    Attributes:
        luma: (8, 8) uint16, natural order (row = vertical frequency), values 1..255.
        chroma: (8, 8) uint16, the same for Cb and Cr.
    """

    luma: np.ndarray
    chroma: np.ndarray

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuantTables) and np.array_equal(self.array(), other.array())

    def __hash__(self) -> int:
        return hash(self.array().tobytes())

    def array(self) -> np.ndarray:
        """Both tables as one (2, 64) uint16 array (luma first)."""
        return np.stack([self.luma.reshape(64), self.chroma.reshape(64)]).astype(np.uint16)

    def to_dict(self) -> dict[str, list[list[int]]]:
        """``{"luma": 8x8 list, "chroma": 8x8 list}`` (JSON-ready)."""
        return {"luma": self.luma.tolist(), "chroma": self.chroma.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QuantTables":
        """Inverse of :meth:`to_dict` (checked like any tables argument)."""
        try:
            pair = (d["luma"], d["chroma"])
        except (KeyError, TypeError) as e:
            raise InvalidArgumentError("tables: expected 'luma' and 'chroma' entries") from e
        return cls.of(pair)

    @classmethod
    def of(cls, tables: TablesLike, name: str = "tables") -> "QuantTables":
        """Checked QuantTables from anything ``tables`` arguments accept."""
        arr = as_table_array(tables, name)
        return cls(arr[0].reshape(8, 8).copy(), arr[1].reshape(8, 8).copy())

    def mean_step(self) -> float:
        """Mean of the 128 steps (a rough coarseness measure for reports)."""
        return float(self.array().mean())


def as_table_array(tables: TablesLike, name: str = "tables") -> np.ndarray:
    """Checks a tables argument and returns it as a C-contiguous (2, 64) uint16 array.

    Raises:
        InvalidArgumentError: Not two tables of 64 integers 1..255 (the message names ``name``).
    """
    if isinstance(tables, QuantTables):
        tables = (tables.luma, tables.chroma)
    try:
        parts = [np.asarray(t) for t in tables]
    except TypeError as e:
        raise InvalidArgumentError(f"{name}: expected (luma, chroma), got {type(tables).__name__}") from e
    if len(parts) != 2:
        raise InvalidArgumentError(f"{name}: expected 2 tables (luma, chroma), got {len(parts)}")
    out = np.empty((2, 64), np.uint16)
    for i, (which, t) in enumerate(zip(("luma", "chroma"), parts)):
        if t.shape not in ((64,), (8, 8)):
            raise InvalidArgumentError(f"{name}: {which} has shape {t.shape}, expected (64,) or (8, 8)")
        if t.dtype.kind not in "iu" and not (t.dtype.kind == "f" and np.all(t == np.round(t))):
            raise InvalidArgumentError(f"{name}: {which} has dtype {t.dtype}, expected integers")
        if t.min() < 1 or t.max() > 255:
            raise InvalidArgumentError(
                f"{name}: {which} values {int(t.min())}..{int(t.max())}, baseline JPEG needs 1..255")
        out[i] = t.reshape(64)
    return out


@lru_cache(maxsize=128)
def standard_tables(quality: int) -> QuantTables:
    """libjpeg's standard (IJG, JPEG Annex K) tables scaled to ``quality``, as libjpeg-turbo
    writes them (read back from a tiny encoded image, so they are exactly libjpeg's).

    Args:
        quality: 1..100.
    """
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise InvalidArgumentError(f"quality={quality!r}: expected an integer 1..100")
    tiny = _jpeg.encode(np.zeros((16, 16, 3), np.uint8), int(quality), None, "420", False, False, 0)
    q = read_header(tiny).quant_tables
    return QuantTables(q[0].copy(), q[1].copy())


def file_tables(src: Source) -> QuantTables:
    """A JPEG's own luma and chroma tables (component 0's and component 1's; a gray file's
    luma table twice)."""
    q = read_header(src).quant_tables
    return QuantTables(q[0].copy(), q[min(1, len(q) - 1)].copy())


def load_tables(path: str | os.PathLike) -> QuantTables:
    """The tables of a table-set JSON file (``edge-dct tune-tables --out``).

    Raises:
        ModelError: The file cannot be read or holds no valid tables (names the file).
    """
    try:
        record = json.loads(Path(path).read_text())
        return QuantTables.from_dict(record["tables"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"not a table set ({e})", os.fspath(path)) from e


def tables_for_model(model: str | os.PathLike | None = None) -> QuantTables:
    """The table set tuned for a bundle: ``NAME.tables.json`` beside ``NAME.tflite``, or
    the default model's (``model`` None).

    Raises:
        ModelError: No table set was tuned for that bundle (the message says how to make one).
    """
    if model is None:
        return load_tables(DEFAULT_TABLES)
    path = Path(model)
    candidate = path.with_suffix(".tables.json")
    if not candidate.is_file():
        raise ModelError(f"no table set tuned for this bundle (expected {candidate}; make one with "
                         f"`edge-dct tune-tables PHOTOS --model {path} --out {candidate}`)", str(path))
    return load_tables(candidate)


def fitted(tables: QuantTables, own: QuantTables) -> QuantTables:
    """The tables to re-code one photo with: ``tables``, never finer than the photo's own
    steps (``own``): a finer step cannot bring back what the file already lost, it only costs
    bytes, while the file's own step keeps its coefficients exactly.  (What the model never
    reads needs no coarse step: re-coding for the model drops it, see ``transcode(keep=)``.)
    """
    return QuantTables(np.minimum(np.maximum(tables.luma, own.luma), 255).astype(np.uint16),
                       np.minimum(np.maximum(tables.chroma, own.chroma), 255).astype(np.uint16))


def own_steps(src: Source) -> QuantTables:
    """The coarsest step a photo's components already use, per frequency: component 0's
    table as luma, the element-wise maximum of the others' as chroma (gray: luma twice)."""
    q = read_header(src).quant_tables
    chroma = q[1:].max(axis=0) if len(q) > 1 else q[0]
    return QuantTables(q[0].copy(), chroma.copy())


def _model_spec(model: ModelSource | None) -> InputSpec:
    """A bundle's InputSpec, read once per file version (a stream of photos re-coded for one
    model would otherwise read the whole bundle per photo)."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return ModelBundle.load(model).spec
    path = Path(model) if model is not None else None
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return ModelBundle.load(model).spec  # its error names the file
    return _cached_spec(None if path is None else str(path),
                        None if st is None else (st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=16)
def _cached_spec(path: str | None, version: tuple[int, int] | None) -> InputSpec:
    return ModelBundle.load(path).spec


@dataclass(frozen=True)
class Recoding:
    """How ``edge-dct transcode --for-model`` re-codes one photo: ``tables`` (the tuned
    tables :func:`fitted` to it) and ``keep``, what ``prepare`` reads of it for the model
    (:func:`edge_dct.prepare.region_read`; every other coefficient becomes 0)."""

    tables: QuantTables
    keep: Region


def recoding_for_photo(src: Source, model: ModelSource | None = None,
                       tables: QuantTables | None = None,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> Recoding:
    """The :class:`Recoding` of one photo for a model: its tuned tables (``tables``, else
    :func:`tables_for_model`) :func:`fitted` to the photo (never finer than its own steps),
    and the region ``prepare`` reads of it.
    Reads the header only (refusing more than ``max_pixels``);
    :func:`edge_dct.codec.transcode_for_model` applies it.
    """
    spec = _model_spec(model)
    if tables is None:
        tables = tables_for_model(model)
    data, _ = load_source(src)
    region = region_read(data, spec, max_pixels=max_pixels)
    return Recoding(fitted(tables, own_steps(data)), region)


__all__ = ["DEFAULT_TABLES", "QuantTables", "Recoding", "TablesLike", "as_table_array",
           "file_tables", "fitted", "load_tables", "own_steps", "recoding_for_photo",
           "standard_tables", "tables_for_model"]
