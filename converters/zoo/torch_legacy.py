"""Numpy-only reader for legacy (non-zip) PyTorch ``.pth`` state dicts.

PyTorch before 1.6 saved ``torch.save(obj, f)`` as a sequence of pickles followed by raw
storage blobs:

1. magic number, protocol version and a system-info dict (three small pickles);
2. the object itself, pickled with *persistent ids* standing in for tensor storages
   (``("storage", storage_type, key, location, numel, view_metadata)``) and tensors rebuilt
   through ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``;
3. a pickled list of storage keys, in the order their blobs follow;
4. for each key: an int64 element count, then that many little-endian elements.

This module reads that layout with :mod:`pickle` and :mod:`numpy` only, so neither the
runtime nor CI needs ``torch`` to use the EfficientNet-Lite0 weights.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _Storage:
    """Placeholder for one storage; its data is filled in after the main pickle."""

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _PendingTensor:
    """A tensor view on a storage, resolved once the storage blobs are read."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def resolve(self) -> np.ndarray:
        data = self.storage.data
        assert data is not None, "storage blob was not read"
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)  # own, contiguous copy


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> _PendingTensor:
    return _PendingTensor(storage, storage_offset, size, stride)


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co. inside the pickle."""

    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class _LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO) -> None:
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"legacy .pth: unsupported global {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, numel, view_metadata = pid
        if kind != "storage" or view_metadata is not None:
            raise pickle.UnpicklingError(f"legacy .pth: unsupported persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return self.storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) PyTorch state dict into numpy arrays.

    Args:
        path: a ``.pth`` file written by ``torch.save`` with the legacy format.

    Returns:
        Ordered mapping from parameter name to a C-contiguous numpy array with the tensor's
        shape and dtype (float32 for ordinary weights, int64 for ``num_batches_tracked``),
        in the order the file stores them.

    Raises:
        ValueError: the file is not a legacy PyTorch pickle (e.g. a zip-format checkpoint).
    """
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch file (bad magic number)")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian checkpoints are not supported")
        unpickler = _LegacyUnpickler(f)
        obj = unpickler.load()
        keys = pickle.load(f)
        for key in keys:
            storage = unpickler.storages[key]
            (numel,) = np.frombuffer(f.read(8), dtype="<i8")
            if numel != storage.numel:
                raise ValueError(f"{path}: storage {key} has {numel} elements, expected {storage.numel}")
            nbytes = int(numel) * storage.dtype.itemsize
            storage.data = np.frombuffer(f.read(nbytes), dtype=storage.dtype, count=int(numel))
    return collections.OrderedDict((name, t.resolve()) for name, t in obj.items())
