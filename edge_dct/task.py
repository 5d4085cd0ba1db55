"""What every task on a bundle shares: one interpreter, per-thread tensors, batches, lifecycle.

:class:`edge_dct.Classifier` and :class:`edge_dct.ImageEmbedder` are thin layers over
:class:`BundleTask`: decoding (``prepare``, GIL released) runs in parallel on any number of
threads, each with its own preallocated tensors; inference is serialized on the one LiteRT
interpreter; ``close()`` is safe twice and both are context managers (MediaPipe Tasks' shape).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

import numpy as np

from edge_dct.bundle import ModelBundle
from edge_dct.errors import EdgeDctError
from edge_dct.jpeg import Source
from edge_dct.options import BaseOptions
from edge_dct.prepare import Window, allocate, prepare
from edge_dct.runtime import Runner

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Where the time went, in milliseconds."""

    prepare_ms: float
    inference_ms: float

    @property
    def total_ms(self) -> float:
        return self.prepare_ms + self.inference_ms


class BundleTask:
    """A bundle in one LiteRT interpreter, shared safely by threads.

    Args:
        base: The model and runtime settings.
        signature: The bundle signature to run (None: ``serving_default``, the logits).
        runner: What builds the interpreter (:class:`~edge_dct.runtime.Runner`).

    Raises:
        ModelError, AcceleratorUnavailableError, RuntimeUnavailableError: When the
            interpreter is built.
    """

    def __init__(self, base: BaseOptions, signature: str | None = None,
                 runner: Callable[..., Runner] = Runner):
        self.bundle = ModelBundle.load(base.model)
        if self.bundle.format == "onnx":
            from edge_dct.onnx_runtime import OnnxRunner as runner  # onnxruntime only when used
        self._runner = runner(self.bundle, num_threads=base.num_threads,
                              accelerator=base.accelerator, delegate_path=base.delegate_path,
                              signature=signature)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    @property
    def spec(self):
        """The bundle's InputSpec (labels included)."""
        return self.bundle.spec

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    @property
    def accelerator(self) -> str:
        """The accelerator in use (what ``"auto"`` chose)."""
        return self._runner.accelerator

    def _tensors(self, data, name: str, window: Window | None = None,
                 hflip: bool = False) -> tuple[dict[str, np.ndarray], float]:
        """This thread's input tensors filled from one JPEG (the spec's centre crop, or a
        training ``window``), and the milliseconds it took."""
        runner = self._runner
        out = getattr(self._local, "out", None)
        if out is None:
            out = self._local.out = allocate(self.spec, runner.input_dtype)
        start = time.perf_counter()
        prepare(data, self.spec, out=out, dtype=runner.input_dtype,
                quantization=runner.quantization, name=name, window=window, hflip=hflip)
        return out, (time.perf_counter() - start) * 1e3

    def _infer(self, run: Callable[[dict[str, np.ndarray]], T],
               tensors: dict[str, np.ndarray]) -> tuple[T, float]:
        """``run(tensors)`` under the interpreter's lock, and the milliseconds it took."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{type(self).__name__} is closed")
            start = time.perf_counter()
            result = run(tensors)
            return result, (time.perf_counter() - start) * 1e3

    @staticmethod
    def _map(one: Callable[[Source], T], srcs: Iterable[Source], workers: int | None,
             return_exceptions: bool) -> list:
        """``one`` over sources on ``workers`` threads (default: CPU count), in order."""
        items = list(srcs)
        workers = workers or os.cpu_count() or 1

        def safe(src: Source):
            try:
                return one(src)
            except EdgeDctError as e:
                if return_exceptions:
                    return e
                raise

        if workers == 1 or len(items) <= 1:
            return [safe(s) for s in items]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(safe, items))

    def close(self) -> None:
        """Releases the interpreter; safe to call more than once."""
        with self._lock:
            if not self._closed:
                self._runner.close()
                self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["BundleTask", "Timing"]
