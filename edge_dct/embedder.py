"""ImageEmbedder: a feature vector per JPEG, straight from DCT coefficients.

Shaped after MediaPipe Tasks' ``ImageEmbedder``: ``ImageEmbedderOptions`` (``base_options``,
``l2_normalize``, ``quantize``), ``create_from_options`` / ``create_from_model_path``
factories, ``embed(src) -> EmbeddingResult``, the static ``cosine_similarity(a, b)``,
``close()`` (safe twice) and a context manager; plus ``embed_batch`` on worker threads.

The vector is the bundle's ``embedding`` output of its ``embed`` signature: the backbone's
pooled features (1280 values for the embedded EfficientNet-Lite0 model, non-negative: pooled
ReLU6 activations), int8 in the bundle and returned dequantized (float32) unless
``quantize``. The same interpreter run also yields the logits, so one call costs one
``classify``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Union

import numpy as np

from edge_dct.errors import InvalidArgumentError
from edge_dct.jpeg import Source, load_source
from edge_dct.options import BaseOptions
from edge_dct.prepare import Window
from edge_dct.runtime import EMBED_SIGNATURE, EMBEDDING_OUTPUT
from edge_dct.task import BundleTask, Timing

QUANTIZED_SCALE = 128.0
"""A quantized embedding is ``round(unit_vector * 128)`` saturated to int8 (MediaPipe's)."""


@dataclass
class ImageEmbedderOptions:
    """How to build an ImageEmbedder.

    Attributes:
        base_options: The model (a bundle with an ``embed`` signature; None = the embedded
            default) and the runtime settings.
        l2_normalize: Scale each embedding to unit L2 norm.
        quantize: Return int8 embeddings: the unit vector (normalized even when
            ``l2_normalize`` is False, as a quantized embedding must lie in [-1, 1]) times 128,
            rounded and saturated. 4x smaller; cosine similarities within ~0.001 of float.
    """

    base_options: BaseOptions = field(default_factory=BaseOptions)
    l2_normalize: bool = False
    quantize: bool = False


@dataclass(frozen=True)
class Embedding:
    """One embedding.

    Attributes:
        embedding: float32 (D,) or, when quantized, int8 (D,).
        head_index: Index of the output it came from (0: the bundle's one embedding).
        head_name: Name of that output (``"embedding"``).
    """

    embedding: np.ndarray = field(repr=False)
    head_index: int = 0
    head_name: str = EMBEDDING_OUTPUT

    @property
    def quantized(self) -> bool:
        return self.embedding.dtype == np.int8


@dataclass(frozen=True)
class EmbeddingResult:
    """The embeddings of one image (one per head; edge_dct bundles have one), with timings.

    Attributes:
        embeddings: The embeddings.
        timing: Prepare and inference milliseconds.
        source: The image's name (its path, ``<bytes>``, ...).
    """

    embeddings: list[Embedding]
    timing: Timing = field(compare=False)
    source: str = ""

    @property
    def embedding(self) -> np.ndarray:
        """The first (only) head's vector."""
        return self.embeddings[0].embedding


Vector = Union[Embedding, EmbeddingResult, np.ndarray]


def _vector(x: Vector, which: str) -> np.ndarray:
    if isinstance(x, EmbeddingResult):
        x = x.embeddings[0]
    if isinstance(x, Embedding):
        x = x.embedding
    v = np.asarray(x)
    if v.ndim != 1 or v.size == 0 or not (np.issubdtype(v.dtype, np.number)):
        raise InvalidArgumentError(f"cosine_similarity: {which} is not a 1-D numeric vector "
                                   f"(shape {v.shape}, dtype {v.dtype})")
    return v.astype(np.float64)


def l2_normalized(x: np.ndarray) -> np.ndarray:
    """x / ||x|| (rows of a 2-D array), float32; zero vectors stay zero."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def quantize_embedding(x: np.ndarray) -> np.ndarray:
    """int8 scalar quantization of embeddings: ``round(unit(x) * 128)`` saturated (rows)."""
    return np.clip(np.round(l2_normalized(x) * QUANTIZED_SCALE), -128, 127).astype(np.int8)


class ImageEmbedder(BundleTask):
    """Embeds JPEGs with a DCT-input LiteRT bundle that has an ``embed`` signature.

    Thread-safe like :class:`edge_dct.Classifier` (parallel decoding, serialized inference).

    Example:
        >>> with ImageEmbedder.create_from_model_path("model.tflite", l2_normalize=True) as e:
        ...     a, b = e.embed("a.jpg"), e.embed("b.jpg")
        ...     ImageEmbedder.cosine_similarity(a.embeddings[0], b.embeddings[0])

    Raises:
        ModelError: The bundle has no ``embed`` signature (made before embeddings; the
            message says how to add it) or is not a bundle.
    """

    def __init__(self, options: ImageEmbedderOptions):
        super().__init__(options.base_options, signature=EMBED_SIGNATURE)
        self.options = options

    # -- factories --------------------------------------------------------------------
    @classmethod
    def create_from_options(cls, options: ImageEmbedderOptions) -> "ImageEmbedder":
        return cls(options)

    @classmethod
    def create_from_model_path(cls, path: str | os.PathLike | None = None, *,
                               l2_normalize: bool = False, quantize: bool = False,
                               **base) -> "ImageEmbedder":
        """An ImageEmbedder on a bundle file (None: the embedded default model).

        Args:
            path: The bundle.
            l2_normalize, quantize: See :class:`ImageEmbedderOptions`.
            **base: BaseOptions fields (``num_threads``, ``accelerator``, ``delegate_path``).
        """
        return cls(ImageEmbedderOptions(BaseOptions(model=path, **base),
                                        l2_normalize=l2_normalize, quantize=quantize))

    # -- properties -------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        """Length of the embeddings (1280 for EfficientNet-Lite0)."""
        return int(np.prod(self._runner.outputs[EMBEDDING_OUTPUT].shape))

    # -- embedding --------------------------------------------------------------------
    def embed_with_logits(self, src: Source, *, window: Window | None = None,
                          hflip: bool = False) -> tuple[EmbeddingResult, np.ndarray]:
        """The embedding and the float32 logits of one run (what training evaluates).

        Args:
            src: The JPEG.
            window: A crop ``(x, y, width, height)`` in oriented pixels instead of the
                spec's centre crop (training augmentation, :mod:`edge_dct.augment`).
            hflip: Mirror the crop.

        Raises:
            InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: For the image.
        """
        data, name = load_source(src)
        tensors, prep_ms = self._tensors(data, name, window, hflip)
        outs, infer_ms = self._infer(self._runner.run_all, tensors)
        return (self._result(outs[EMBEDDING_OUTPUT], Timing(prep_ms, infer_ms), name),
                outs["logits"])

    def _result(self, vector: np.ndarray, timing: Timing, name: str) -> EmbeddingResult:
        if self.options.quantize:
            vector = quantize_embedding(vector)
        elif self.options.l2_normalize:
            vector = l2_normalized(vector)
        return EmbeddingResult([Embedding(vector)], timing, name)

    def embed(self, src: Source) -> EmbeddingResult:
        """Embeds one JPEG (path, bytes or binary file object).

        Returns:
            An EmbeddingResult whose ``embedding`` is float32 (D,), or int8 with ``quantize``.

        Raises:
            InvalidJpegError, UnsupportedJpegError, ImageTooLargeError: For the image.
        """
        return self.embed_with_logits(src)[0]

    def embed_batch(self, srcs: Iterable[Source], *, workers: int | None = None,
                    return_exceptions: bool = False) -> list:
        """Embeds many JPEGs, keeping input order; decoding on ``workers`` threads overlaps
        inference.

        Args:
            srcs: Paths, bytes or file objects.
            workers: Decoding threads (default: CPU count).
            return_exceptions: Put a failed image's EdgeDctError in its slot instead of raising.

        Returns:
            One EmbeddingResult (or exception) per source, in order.
        """
        return self._map(self.embed, srcs, workers, return_exceptions)

    @staticmethod
    def cosine_similarity(u: Vector, v: Vector) -> float:
        """Cosine similarity of two embeddings (Embedding, EmbeddingResult or 1-D arrays).

        Float and quantized embeddings may be mixed: cosine ignores the quantized scale.

        Raises:
            InvalidArgumentError: Different lengths, not vectors, or a zero vector.
        """
        a, b = _vector(u, "the first embedding"), _vector(v, "the second embedding")
        if a.shape != b.shape:
            raise InvalidArgumentError(
                f"cosine_similarity: embeddings of different lengths ({a.size} and {b.size})")
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na == 0 or nb == 0:
            raise InvalidArgumentError("cosine_similarity: a zero vector has no direction")
        return float(np.dot(a, b) / (na * nb))


def embed(src: Source, *, model=None, l2_normalize: bool = False,
          quantize: bool = False) -> EmbeddingResult:
    """One-off embedding with a fresh ImageEmbedder (use the class for many images)."""
    with ImageEmbedder.create_from_model_path(model, l2_normalize=l2_normalize,
                                              quantize=quantize) as e:
        return e.embed(src)


__all__ = [
    "Embedding",
    "EmbeddingResult",
    "ImageEmbedder",
    "ImageEmbedderOptions",
    "QUANTIZED_SCALE",
    "embed",
    "l2_normalized",
    "quantize_embedding",
]
