"""Thread safety and GIL release of the decoder.

Scaling numbers are measured by benchmarks/bench_threads.py, not asserted here.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import edge_dct
from tests import oracle
from tests.conftest import clothing_photos, synthetic_image


def test_parallel_decodes_equal_serial() -> None:
    files = [p.read_bytes() for p in clothing_photos()]
    serial = [edge_dct.read_dct(d).planes for d in files]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            parallel = list(pool.map(lambda d: edge_dct.read_dct(d).planes, files))
            for a, b in zip(serial, parallel):
                for pa, pb in zip(a, b):
                    np.testing.assert_array_equal(pa, pb)


def test_gil_released_while_decoding() -> None:
    """A Python thread keeps running while another thread decodes a large image."""
    data = oracle.encode(synthetic_image(2048, 2048), quality=95, sampling=(1, 1))
    done = threading.Event()
    ticks = 0

    def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        before = ticks
        for _ in range(5):
            edge_dct.read_dct(data)
        during = ticks - before
    finally:
        done.set()
        spinner.join()
    # With the GIL held for a whole decode, the spinner would only run at the
    # interpreter's switch points between decodes (a handful of ticks).
    assert during > 10_000, during
