"""Throughput mode: worker threads fill batch buffers while the network runs the last batch.

One general mechanism for every pipeline that feeds a network with a dynamic batch (the
``Classifier``'s DCT inputs, the RGB baseline of ``edge-dct bench --throughput``): two
preallocated buffers alternate; while the network runs batch k from one, the workers (the C
core releases the GIL) fill batch k + 1 into the other.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

Item = TypeVar("Item")


def pipelined(items: Sequence[Item], fill: Callable[[dict[str, np.ndarray], int, Item], Any],
              infer: Callable[[dict[str, np.ndarray]], np.ndarray],
              shapes: Mapping[str, tuple[int, ...]], batch_size: int, workers: int,
              dtype: np.dtype | type = np.float32) -> list[tuple[Any, np.ndarray | None]]:
    """Runs ``infer`` on batches that ``fill`` prepares on worker threads.

    Args:
        items: The inputs, in order.
        fill: ``fill(buffers, row, item)`` writes one item into row ``row`` of every buffer
            and returns what the caller wants back (a name, a time); an exception it returns
            instead (not raises) marks the item failed, and its row is zeroed.
        infer: Runs the network on ``{name: array (n, ...)}``; returns (n, ...) outputs.
        shapes: Per input name, the shape of one item (without the batch axis).
        batch_size: Items per ``infer`` call.
        workers: Filling threads.
        dtype: The buffers' dtype.

    Returns:
        Per item, ``(what fill returned, its output row)``; the row is None for failed items.
    """
    buffers = [{n: np.zeros((batch_size,) + tuple(s), dtype) for n, s in shapes.items()}
               for _ in range(2)]
    starts = list(range(0, len(items), batch_size))
    out: list[tuple[Any, np.ndarray | None]] = []

    def safe_fill(buf: dict[str, np.ndarray], row: int, item: Item) -> Any:
        got = fill(buf, row, item)
        if isinstance(got, Exception):
            for a in buf.values():
                a[row] = 0
        return got

    with ThreadPoolExecutor(workers) as pool:
        def submit(b: int) -> list:
            chunk = items[starts[b]:starts[b] + batch_size]
            return [pool.submit(safe_fill, buffers[b % 2], i, it) for i, it in enumerate(chunk)]

        pending = submit(0) if starts else []
        for b in range(len(starts)):
            got = [f.result() for f in pending]
            if b + 1 < len(starts):
                pending = submit(b + 1)  # the other buffer fills while this one runs
            n = len(got)
            result = infer({k: v[:n] for k, v in buffers[b % 2].items()})
            out += [(g, None if isinstance(g, Exception) else result[i]) for i, g in enumerate(got)]
    return out


__all__ = ["pipelined"]
