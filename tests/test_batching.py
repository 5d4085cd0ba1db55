"""edge_dct.batching: throughput mode's two schedules (overlapped, streams) on a synthetic network."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge_dct.batching import pipelined

SHAPES = {"x": (3,), "y": (2, 2)}


def fill(buf: dict, row: int, item: int):
    """Writes ``item`` into every element of its row; odd multiples of 7 fail."""
    if item % 7 == 0 and item % 2:
        return ValueError(f"item {item}")
    buf["x"][row] = item
    buf["y"][row] = -item
    return f"item {item}"


def infer(tensors: dict) -> np.ndarray:
    """(n, 2): each row's sum of x and of y."""
    return np.stack([tensors["x"].sum(1), tensors["y"].reshape(len(tensors["y"]), -1).sum(1)], 1)


@pytest.mark.parametrize("streams", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 4, 5])
def test_rows_come_back_in_order_with_failures_marked(streams: int, batch_size: int) -> None:
    items = list(range(23))
    rows = pipelined(items, fill, infer, SHAPES, batch_size, workers=2, streams=streams)
    assert len(rows) == len(items)
    for item, (got, out, ms) in zip(items, rows):
        if item % 7 == 0 and item % 2:
            assert isinstance(got, ValueError) and out is None
        else:
            assert got == f"item {item}"
            np.testing.assert_array_equal(out, [3 * item, -4 * item])
        assert ms >= 0


def test_a_failed_row_is_zeroed_before_inference() -> None:
    seen = []

    def spy(tensors: dict) -> np.ndarray:
        seen.append(tensors["x"].copy())
        return infer(tensors)

    pipelined([8, 7, 9], fill, spy, SHAPES, 3, workers=1, streams=2)  # 7 fails after 8 filled row 0
    np.testing.assert_array_equal(seen[0][:, 0], [8, 0, 9])


def test_streams_run_the_network_in_parallel() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def slow(tensors: dict) -> np.ndarray:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return infer(tensors)

    pipelined(list(range(16)), fill, slow, SHAPES, 2, workers=2, streams=3)
    assert peak[0] == 3
    peak[0] = 0
    pipelined(list(range(16)), fill, slow, SHAPES, 2, workers=2, streams=1)
    assert peak[0] == 1  # overlapped: one network call at a time


@pytest.mark.parametrize("streams", [1, 2])
def test_a_network_error_is_raised_and_empty_input_is_fine(streams: int) -> None:
    def broken(tensors: dict) -> np.ndarray:
        raise RuntimeError("network failed")

    with pytest.raises(RuntimeError, match="network failed"):
        pipelined(list(range(5)), fill, broken, SHAPES, 2, workers=2, streams=streams)
    assert pipelined([], fill, infer, SHAPES, 2, workers=2, streams=streams) == []
