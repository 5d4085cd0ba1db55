"""Classifier: JPEG in, ImageNet-style categories out, straight from DCT coefficients.

Shaped after MediaPipe Tasks' ImageClassifier: options dataclasses (``BaseOptions`` for the
model and runtime, ``ClassifierOptions`` for the results), ``create_from_*`` factories, result
containers that own no native memory, ``close()`` (safe twice) and a context manager. The
bundle's embedded InputSpec and labels drive everything.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Hashable, Iterable, Iterator, Sequence

import numpy as np

from edge_dct.batching import pipelined
from edge_dct.bundle import DEFAULT_MODEL, ModelSource
from edge_dct.errors import EdgeDctError, InvalidArgumentError
from edge_dct.jpeg import Source, load_source
from edge_dct.options import BaseOptions, ClassifierOptions, flat_options
from edge_dct.prepare import prepare
from edge_dct.runtime import Runner
from edge_dct.task import BundleTask, Timing


@dataclass(frozen=True)
class Category:
    """One class: its index in the model's output, its label, its softmax score."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class ClassificationResult:
    """Categories (best first) for one image, and how long each stage took."""

    categories: list[Category]
    timing: Timing = field(compare=False)
    source: str = ""

    @property
    def top(self) -> Category | None:
        return self.categories[0] if self.categories else None


class Classifier(BundleTask):
    """Classifies JPEGs with a DCT-input LiteRT bundle.

    Thread-safe: decoding (GIL released) runs in parallel across threads; inference is
    serialized on the one interpreter.

    Example:
        >>> with Classifier.create_from_model_path("model.tflite", max_results=3) as clf:
        ...     clf.classify("photo.jpg").top.label
    """

    def __init__(self, options: ClassifierOptions):
        super().__init__(options.base_options, runner=Runner)  # this module's name: patchable
        self.options = options
        self._allowed = _allowed(self.labels, options)

    # -- factories --------------------------------------------------------------------
    @classmethod
    def create_from_options(cls, options: ClassifierOptions) -> "Classifier":
        return cls(options)

    @classmethod
    def create_from_model_path(cls, path: str | os.PathLike, **options) -> "Classifier":
        """A Classifier on a bundle file.

        Args:
            path: The bundle.
            **options: BaseOptions fields (``num_threads``, ``accelerator``, ...) and
                ClassifierOptions fields (``max_results``, ``score_threshold``, ...).
        """
        return cls(flat_options(path, **options))

    # -- classification ---------------------------------------------------------------
    def _classify(self, src: Source, options: ClassifierOptions,
                  allowed: np.ndarray) -> ClassificationResult:
        """Classifies with these result options (``allowed``: their label mask)."""
        data, name = load_source(src)
        tensors, prep_ms = self._tensors(data, name)
        logits, infer_ms = self._infer(self._runner.run, tensors)
        return self._result(logits, name, Timing(prep_ms, infer_ms), options, allowed)

    def _result(self, logits: np.ndarray, name: str, timing: Timing, options: ClassifierOptions,
                allowed: np.ndarray) -> ClassificationResult:
        """The categories the options keep from one image's (num_classes,) logits."""
        z = logits.astype(np.float64)
        scores = np.exp(z - z.max())
        scores /= scores.sum()
        idx = np.flatnonzero(allowed & (scores >= options.score_threshold))
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        if options.max_results > 0:
            idx = idx[:options.max_results]
        labels = self.labels
        cats = [Category(int(i), labels[i], float(scores[i])) for i in idx]
        return ClassificationResult(cats, timing, name)

    def classify(self, src: Source) -> ClassificationResult:
        """Classifies one JPEG (path, bytes or binary file object).

        Raises:
            InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: for the image.
        """
        return self._classify(src, self.options, self._allowed)

    def classify_batch(self, srcs: Iterable[Source], *, workers: int | None = None,
                       return_exceptions: bool = False, batch_size: int = 1) -> list:
        """Classifies many JPEGs, keeping input order.

        Decoding runs on ``workers`` threads (default: CPU count) and overlaps inference.
        With ``batch_size`` > 1 (throughput mode, bundles with a dynamic batch: ONNX) the
        schedule depends on where the network runs (:mod:`edge_dct.batching`): on CUDA or
        TensorRT the workers prepare each batch into one of two preallocated input buffers
        while the network runs the previous batch; on the CPU provider (at any batch size,
        1 included) ``workers`` streams each prepare a batch and run it with one intra-op
        thread, in parallel. A result's
        ``timing`` holds its own prepare time and its batch's inference time divided by the
        batch's size.

        Args:
            srcs: Paths, bytes or file objects.
            workers: Decoding threads.
            return_exceptions: Put a failed image's EdgeDctError in its slot instead of raising.
            batch_size: Images per network call.

        Returns:
            One ClassificationResult (or exception) per source, in order.

        Raises:
            InvalidArgumentError: ``batch_size`` < 1, or > 1 with a fixed-batch (LiteRT) bundle.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be an integer >= 1, not {batch_size!r}")
        if batch_size == 1 and not getattr(self._runner, "streams_schedule", False):
            return self._map(self.classify, srcs, workers, return_exceptions)
        if not hasattr(self._runner, "run_batch"):
            raise InvalidArgumentError(f"batch_size={batch_size} needs a bundle with a dynamic batch "
                                       "(an ONNX bundle); LiteRT bundles run one image per call")
        return self._batched(list(srcs), workers or os.cpu_count() or 1, return_exceptions, batch_size)

    def _batched(self, items: list, workers: int, return_exceptions: bool, batch_size: int) -> list:
        spec = self.spec

        def fill(buf: dict, row: int, src: Source):
            try:
                data, name = load_source(src)
                start = time.perf_counter()
                prepare(data, spec, out={n: a[row:row + 1] for n, a in buf.items()}, name=name)
                return name, (time.perf_counter() - start) * 1e3
            except EdgeDctError as e:
                return e

        streams = workers if getattr(self._runner, "streams_schedule", False) else 1

        def infer(tensors: dict) -> np.ndarray:
            if streams == 1:
                return self._infer(self._runner.run_batch, tensors)[0]
            if self._closed:  # parallel one-thread streams on the CPU cores: no lock
                raise RuntimeError(f"{type(self).__name__} is closed")
            return self._runner.run_stream(tensors)

        results = []
        for got, logits, infer_ms in pipelined(items, fill, infer, {t.name: t.shape[1:] for t in spec.tensors},
                                               batch_size, workers, streams=streams):
            if isinstance(got, EdgeDctError):
                if not return_exceptions:
                    raise got
                results.append(got)
                continue
            name, prep_ms = got
            results.append(self._result(logits, name, Timing(prep_ms, infer_ms), self.options, self._allowed))
        return results


def _allowed(labels: Sequence[str], options: ClassifierOptions) -> np.ndarray:
    """bool (num_labels,): the labels the options' allow/deny lists keep."""
    if options.category_allowlist is not None:
        return np.isin(labels, list(options.category_allowlist))
    if options.category_denylist is not None:
        return ~np.isin(labels, list(options.category_denylist))
    return np.ones(len(labels), bool)


def _model_key(model: ModelSource | None) -> str:
    """The blake2b digest of a model's content (bytes, a file, or the default model).

    A file is read and hashed once per (path, size, mtime): a rewritten file gets a new key.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        return hashlib.blake2b(model, digest_size=16).hexdigest()
    path = os.path.realpath(DEFAULT_MODEL if model is None else model)
    try:
        st = os.stat(path)
        return _file_digest(path, st.st_size, st.st_mtime_ns)
    except OSError:  # the Classifier raises ModelError naming it
        return f"unreadable:{path}"


@lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.blake2b(f.read(), digest_size=16).hexdigest()


@dataclass
class _Entry:
    classifier: Classifier
    users: int = 0  # classify() calls using it now
    evicted: bool = False


class _ClassifierCache:
    """A small LRU of Classifiers keyed by model content and runtime settings.

    An evicted Classifier is closed once no ``classify()`` call is using it any more.
    """

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @contextlib.contextmanager
    def use(self, key: Hashable, make: Callable[[], Classifier]) -> Iterator[Classifier]:
        """The cached Classifier for ``key`` (built with ``make`` when missing)."""
        idle: list[Classifier] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(make())
                while len(self._entries) > self.size:
                    _, old = self._entries.popitem(last=False)
                    old.evicted = True
                    if old.users == 0:
                        idle.append(old.classifier)
            self._entries.move_to_end(key)
            entry.users += 1
        for clf in idle:
            clf.close()
        try:
            yield entry.classifier
        finally:
            with self._lock:
                entry.users -= 1
                done = entry.evicted and entry.users == 0
            if done:
                entry.classifier.close()


CACHE_SIZE = 4
"""Classifiers (interpreters) ``classify()`` keeps: one per model x runtime settings."""

_cache = _ClassifierCache(CACHE_SIZE)


def classify(src: Source, *, model: ModelSource | None = None, max_results: int = 5,
             **options) -> ClassificationResult:
    """Classifies a JPEG with a cached, thread-safe Classifier (embedded model by default).

    Classifiers are cached by model content (a blake2b digest of the bytes or of the file,
    the file rehashed when its size or mtime changes) and runtime settings only: calls
    differing in result options share one interpreter. At most ``CACHE_SIZE`` are kept (the
    least recently used is closed once no call uses it).

    Args:
        src: Path, bytes or binary file object.
        model: A bundle path or bytes; None = the embedded default model.
        max_results: Categories returned.
        **options: Other BaseOptions fields (``num_threads``, ``accelerator``,
            ``delegate_path``) or ClassifierOptions fields (``score_threshold``, ...).

    Raises:
        InvalidArgumentError: Bad options.
        ModelError, AcceleratorUnavailableError: When the Classifier is built.
        InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: For the image.
    """
    opts = flat_options(model, max_results=max_results, **options)
    base = opts.base_options
    key = (_model_key(model), base.accelerator, base.num_threads, base.delegate_path)
    with _cache.use(key, lambda: Classifier(ClassifierOptions(base_options=base))) as clf:
        return clf._classify(src, opts, _allowed(clf.labels, opts))


__all__ = [
    "CACHE_SIZE",
    "BaseOptions",
    "Category",
    "ClassificationResult",
    "Classifier",
    "ClassifierOptions",
    "Timing",
    "classify",
]
