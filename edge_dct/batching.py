"""Throughput mode: batches of images prepared on worker threads and fed to a network.

One general mechanism for every pipeline that feeds a network with a dynamic batch (the
``Classifier``'s DCT inputs, the RGB baseline of ``edge-dct bench --throughput``), with two
schedules:

* **overlapped** (``streams=1``, for a network on an accelerator): two preallocated buffers
  alternate; while the network runs batch k from one, the workers (the C core releases the
  GIL) fill batch k + 1 into the other. The CPU cores only prepare.
* **streams** (``streams=N``, for a network on the CPU cores themselves): N threads each own
  one buffer and repeatedly take the next batch, prepare it and run the network on it with
  one intra-op thread. Parallelism across images replaces parallelism inside each layer,
  which for a small network on a few cores wastes less time in thread synchronisation and
  keeps every core busy during ``prepare`` as well.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

Item = TypeVar("Item")
Fill = Callable[[dict[str, np.ndarray], int, Item], Any]
Infer = Callable[[dict[str, np.ndarray]], np.ndarray]


def _buffers(shapes: Mapping[str, tuple[int, ...]], batch_size: int, dtype: Any) -> dict[str, np.ndarray]:
    return {n: np.zeros((batch_size,) + tuple(s), dtype) for n, s in shapes.items()}


def _safe_fill(fill: Fill, buf: dict[str, np.ndarray], row: int, item: Any) -> Any:
    got = fill(buf, row, item)
    if isinstance(got, Exception):
        for a in buf.values():
            a[row] = 0
    return got


Row = tuple[Any, "np.ndarray | None", float]


def _run(infer: Infer, buf: dict[str, np.ndarray], got: list) -> list[Row]:
    """``infer`` on the first ``len(got)`` rows of ``buf``: per item ``(what fill returned,
    its output row or None if it failed, the batch's inference ms per item)``."""
    start = time.perf_counter()
    result = infer({k: v[:len(got)] for k, v in buf.items()})
    ms = (time.perf_counter() - start) * 1e3 / len(got)
    return [(g, None if isinstance(g, Exception) else result[i], ms) for i, g in enumerate(got)]


def pipelined(items: Sequence[Item], fill: Fill, infer: Infer, shapes: Mapping[str, tuple[int, ...]],
              batch_size: int, workers: int, dtype: np.dtype | type = np.float32,
              streams: int = 1) -> list[Row]:
    """Runs ``infer`` on batches that ``fill`` prepares on worker threads (module docstring).

    Args:
        items: The inputs, in order.
        fill: ``fill(buffers, row, item)`` writes one item into row ``row`` of every buffer
            and returns what the caller wants back (a name, a time); an exception it returns
            instead (not raises) marks the item failed, and its row is zeroed.
        infer: Runs the network on ``{name: array (n, ...)}``; returns (n, ...) outputs. With
            ``streams`` > 1 it is called from several threads at once.
        shapes: Per input name, the shape of one item (without the batch axis).
        batch_size: Items per ``infer`` call.
        workers: Filling threads of the overlapped schedule (``streams`` == 1).
        dtype: The buffers' dtype.
        streams: 1: the overlapped schedule; N > 1: N threads that each fill and infer.

    Returns:
        Per item, in order, ``(what fill returned, its output row, its batch's inference
        milliseconds divided by the batch's size)``; the row is None for failed items.
    """
    starts = list(range(0, len(items), batch_size))
    if streams > 1:
        return _streamed(items, fill, infer, shapes, batch_size, dtype, streams, starts)
    buffers = [_buffers(shapes, batch_size, dtype) for _ in range(2)]
    out: list[Row] = []
    with ThreadPoolExecutor(workers) as pool:
        def submit(b: int) -> list:
            chunk = items[starts[b]:starts[b] + batch_size]
            return [pool.submit(_safe_fill, fill, buffers[b % 2], i, it) for i, it in enumerate(chunk)]

        pending = submit(0) if starts else []
        for b in range(len(starts)):
            got = [f.result() for f in pending]
            if b + 1 < len(starts):
                pending = submit(b + 1)  # the other buffer fills while this one runs
            out += _run(infer, buffers[b % 2], got)
    return out


def _streamed(items: Sequence[Item], fill: Fill, infer: Infer, shapes: Mapping[str, tuple[int, ...]],
              batch_size: int, dtype: Any, streams: int, starts: list[int]) -> list[Row]:
    """The streams schedule: each thread takes the next batch, fills it, runs it."""
    done: list[list[Row] | None] = [None] * len(starts)
    lock = threading.Lock()
    next_batch = iter(range(len(starts)))

    def stream() -> None:
        buf = _buffers(shapes, batch_size, dtype)
        while True:
            with lock:
                b = next(next_batch, None)
            if b is None:
                return
            chunk = items[starts[b]:starts[b] + batch_size]
            got = [_safe_fill(fill, buf, i, it) for i, it in enumerate(chunk)]
            done[b] = _run(infer, buf, got)

    with ThreadPoolExecutor(min(streams, max(len(starts), 1))) as pool:
        for f in [pool.submit(stream) for _ in range(min(streams, max(len(starts), 1)))]:
            f.result()  # re-raises what a stream raised
    return [row for rows in done for row in rows]  # type: ignore[union-attr]


__all__ = ["pipelined"]
