"""Classifier options, split as MediaPipe Tasks splits them.

``BaseOptions`` says which model runs and how LiteRT runs it (what an interpreter is built
from); ``ClassifierOptions`` adds what is done with its scores. Changing only the latter
never needs a new interpreter, which is what ``edge_dct.classify``'s cache relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Sequence

from edge_dct.bundle import ModelSource
from edge_dct.errors import InvalidArgumentError

ACCELERATORS = ("cpu", "gpu", "edgetpu", "cuda", "tensorrt", "auto")
"""``gpu``/``edgetpu``: LiteRT bundles; ``cuda``/``tensorrt``: ONNX bundles (ONNX Runtime);
``cpu`` and ``auto`` both."""


@dataclass
class BaseOptions:
    """The model and the runtime settings of a Classifier.

    Attributes:
        model: Path or bytes of an edge_dct ``.tflite`` (LiteRT) or ``.onnx`` (ONNX Runtime)
            bundle; None = the embedded default.
        accelerator: ``"cpu"`` (XNNPACK / ONNX Runtime's CPU provider), ``"gpu"`` or
            ``"edgetpu"`` (LiteRT), ``"cuda"`` or ``"tensorrt"`` (ONNX Runtime), or ``"auto"``.
        num_threads: CPU threads (None: the runtime's default).
        delegate_path: A delegate library (GPU delegate ``.so`` or Edge TPU library).

    Raises:
        InvalidArgumentError: An unknown accelerator or ``num_threads < 1``.
    """

    model: ModelSource | None = None
    accelerator: str = "cpu"
    num_threads: int | None = None
    delegate_path: str | None = None

    def __post_init__(self) -> None:
        if self.accelerator not in ACCELERATORS:
            raise InvalidArgumentError(
                f"accelerator must be one of {ACCELERATORS}, not {self.accelerator!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise InvalidArgumentError(f"num_threads must be >= 1, not {self.num_threads}")


@dataclass
class ClassifierOptions:
    """How to build a Classifier: its BaseOptions and what is kept of its scores.

    Attributes:
        base_options: The model and the runtime settings.
        max_results: Categories returned, best first; -1 for all.
        score_threshold: Drop categories scoring below this.
        category_allowlist: Only these labels (not with ``category_denylist``).
        category_denylist: Never these labels.

    Raises:
        InvalidArgumentError: ``max_results`` 0 or below -1, or both lists given.
    """

    base_options: BaseOptions = field(default_factory=BaseOptions)
    max_results: int = 5
    score_threshold: float = 0.0
    category_allowlist: Sequence[str] | None = None
    category_denylist: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.category_allowlist is not None and self.category_denylist is not None:
            raise InvalidArgumentError(
                "category_allowlist and category_denylist are mutually exclusive")
        if self.max_results == 0 or self.max_results < -1:
            raise InvalidArgumentError(
                f"max_results must be positive or -1, not {self.max_results}")


_BASE_FIELDS = frozenset(f.name for f in fields(BaseOptions))


def flat_options(model: ModelSource | None, **options) -> ClassifierOptions:
    """ClassifierOptions from keyword options, each given to BaseOptions when it is one of its
    fields (``accelerator``, ``num_threads``, ``delegate_path``), else to ClassifierOptions.

    Raises:
        InvalidArgumentError: A bad value.
        TypeError: An unknown option.
    """
    base = BaseOptions(model=model, **{k: v for k, v in options.items() if k in _BASE_FIELDS})
    return ClassifierOptions(base_options=base,
                             **{k: v for k, v in options.items() if k not in _BASE_FIELDS})


__all__ = ["ACCELERATORS", "BaseOptions", "ClassifierOptions", "flat_options"]
