"""Classifier: JPEG in, ImageNet-style categories out, straight from DCT coefficients.

Shaped after MediaPipe Tasks' ImageClassifier: an options dataclass, ``create_from_*``
factories, result containers that own no native memory, ``close()`` (safe twice) and a
context manager. The bundle's embedded InputSpec and labels drive everything.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from edge_dct.bundle import ModelBundle, ModelSource
from edge_dct.jpeg import Source, load_source
from edge_dct.prepare import allocate, prepare
from edge_dct.runtime import ACCELERATORS, Runner


@dataclass
class ClassifierOptions:
    """How to build a Classifier.

    Attributes:
        model: Path or bytes of an edge_dct ``.tflite`` bundle; None = the embedded default.
        max_results: Categories returned, best first; -1 for all.
        score_threshold: Drop categories scoring below this.
        category_allowlist: Only these labels (not with ``category_denylist``).
        category_denylist: Never these labels.
        num_threads: LiteRT CPU threads (None: LiteRT's default).
        accelerator: ``"cpu"`` (XNNPACK), ``"gpu"``, ``"edgetpu"`` or ``"auto"``.
        delegate_path: A delegate library (GPU delegate ``.so`` or Edge TPU library).
    """

    model: ModelSource | None = None
    max_results: int = 5
    score_threshold: float = 0.0
    category_allowlist: Sequence[str] | None = None
    category_denylist: Sequence[str] | None = None
    num_threads: int | None = None
    accelerator: str = "cpu"
    delegate_path: str | None = None

    def __post_init__(self) -> None:
        if self.category_allowlist is not None and self.category_denylist is not None:
            raise ValueError("category_allowlist and category_denylist are mutually exclusive")
        if self.max_results == 0 or self.max_results < -1:
            raise ValueError(f"max_results must be positive or -1, not {self.max_results}")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator must be one of {ACCELERATORS}, not {self.accelerator!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, not {self.num_threads}")


@dataclass(frozen=True)
class Category:
    """One class: its index in the model's output, its label, its softmax score."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Timing:
    """Where the time went, in milliseconds."""

    prepare_ms: float
    inference_ms: float

    @property
    def total_ms(self) -> float:
        return self.prepare_ms + self.inference_ms


@dataclass(frozen=True)
class ClassificationResult:
    """Categories (best first) for one image, and how long each stage took."""

    categories: list[Category]
    timing: Timing = field(compare=False)
    source: str = ""

    @property
    def top(self) -> Category | None:
        return self.categories[0] if self.categories else None


class Classifier:
    """Classifies JPEGs with a DCT-input LiteRT bundle.

    Thread-safe: decoding (GIL released) runs in parallel across threads; inference is
    serialized on the one interpreter.

    Example:
        >>> with Classifier.create_from_model_path("model.tflite", max_results=3) as clf:
        ...     clf.classify("photo.jpg").top.label
    """

    def __init__(self, options: ClassifierOptions):
        self.options = options
        self.bundle = ModelBundle.load(options.model)
        self._runner = Runner(self.bundle, num_threads=options.num_threads,
                              accelerator=options.accelerator, delegate_path=options.delegate_path)
        self._lock = threading.Lock()
        self._local = threading.local()
        labels = self.bundle.labels
        allowed = np.ones(len(labels), bool)
        if options.category_allowlist is not None:
            allowed = np.isin(labels, list(options.category_allowlist))
        if options.category_denylist is not None:
            allowed = ~np.isin(labels, list(options.category_denylist))
        self._allowed = allowed
        self._closed = False

    # -- factories --------------------------------------------------------------------
    @classmethod
    def create_from_options(cls, options: ClassifierOptions) -> "Classifier":
        return cls(options)

    @classmethod
    def create_from_model_path(cls, path: str | os.PathLike, **options) -> "Classifier":
        return cls(ClassifierOptions(model=path, **options))

    # -- properties -------------------------------------------------------------------
    @property
    def spec(self):
        return self.bundle.spec

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    @property
    def accelerator(self) -> str:
        """The accelerator in use (what ``"auto"`` chose)."""
        return self._runner.accelerator

    # -- classification ---------------------------------------------------------------
    def _tensors(self, data, name: str) -> tuple[dict[str, np.ndarray], float]:
        runner = self._runner
        out = getattr(self._local, "out", None)
        if out is None:
            out = self._local.out = allocate(self.spec, runner.input_dtype)
        start = time.perf_counter()
        prepare(data, self.spec, out=out, dtype=runner.input_dtype,
                quantization=runner.quantization, name=name)
        return out, (time.perf_counter() - start) * 1e3

    def _infer(self, tensors: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
        with self._lock:
            if self._closed:
                raise RuntimeError("Classifier is closed")
            start = time.perf_counter()
            logits = self._runner.run(tensors)
            return logits, (time.perf_counter() - start) * 1e3

    def _result(self, logits: np.ndarray, prepare_ms: float, infer_ms: float,
                name: str) -> ClassificationResult:
        z = logits.astype(np.float64)
        scores = np.exp(z - z.max())
        scores /= scores.sum()
        ok = self._allowed & (scores >= self.options.score_threshold)
        idx = np.flatnonzero(ok)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        if self.options.max_results > 0:
            idx = idx[:self.options.max_results]
        labels = self.labels
        cats = [Category(int(i), labels[i], float(scores[i])) for i in idx]
        return ClassificationResult(cats, Timing(prepare_ms, infer_ms), name)

    def classify(self, src: Source) -> ClassificationResult:
        """Classifies one JPEG (path, bytes or binary file object).

        Raises:
            InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: for the image.
        """
        data, name = load_source(src)
        tensors, prep_ms = self._tensors(data, name)
        logits, infer_ms = self._infer(tensors)
        return self._result(logits, prep_ms, infer_ms, name)

    def classify_batch(self, srcs: Iterable[Source], *, workers: int | None = None,
                       return_exceptions: bool = False) -> list:
        """Classifies many JPEGs, keeping input order.

        Decoding runs on ``workers`` threads (default: CPU count) and overlaps inference.

        Args:
            srcs: Paths, bytes or file objects.
            workers: Decoding threads.
            return_exceptions: Put a failed image's EdgeDctError in its slot instead of raising.

        Returns:
            One ClassificationResult (or exception) per source, in order.
        """
        from edge_dct.errors import EdgeDctError

        items = list(srcs)
        workers = workers or os.cpu_count() or 1

        def one(src: Source):
            try:
                return self.classify(src)
            except EdgeDctError as e:
                if return_exceptions:
                    return e
                raise

        if workers == 1 or len(items) <= 1:
            return [one(s) for s in items]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, items))

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Releases the interpreter; safe to call more than once."""
        with self._lock:
            if not self._closed:
                self._runner.close()
                self._closed = True

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_lock = threading.Lock()
_default: dict[tuple, Classifier] = {}


def classify(src: Source, *, model: ModelSource | None = None, max_results: int = 5,
             **options) -> ClassificationResult:
    """Classifies a JPEG with a cached, thread-safe Classifier (embedded model by default).

    Args:
        src: Path, bytes or binary file object.
        model: A bundle path; None = the embedded default model.
        max_results: Categories returned.
        **options: Other ClassifierOptions fields (score_threshold, num_threads, ...).
    """
    key_model = model if not isinstance(model, (bytes, bytearray, memoryview)) else hash(bytes(model))
    key = (key_model, max_results, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _default_lock:
        clf = _default.get(key)
        if clf is None:
            clf = _default[key] = Classifier(ClassifierOptions(model=model, max_results=max_results,
                                                               **options))
    return clf.classify(src)
