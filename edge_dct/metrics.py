"""Classification metrics of a trained model: accuracy, per-class precision/recall, confusion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ClassMetrics:
    """One class's numbers on one split.

    Attributes:
        label: The class.
        precision: Of the photos predicted as it, the share that are (nan when none).
        recall: Of its photos, the share predicted as it (nan when none).
        support: Its photos in the split.
    """

    label: str
    precision: float
    recall: float
    support: int

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return float("nan") if not (p + r > 0) else 2 * p * r / (p + r)


@dataclass(frozen=True)
class SplitMetrics:
    """Metrics of predictions against labels.

    Attributes:
        count: Photos.
        accuracy: Top-1 accuracy.
        per_class: One :class:`ClassMetrics` per label, in label order.
        confusion: int (C, C): row = true class, column = predicted class.
    """

    count: int
    accuracy: float
    per_class: tuple[ClassMetrics, ...]
    confusion: np.ndarray

    def to_dict(self) -> dict:
        return {"count": self.count, "accuracy": self.accuracy,
                "per_class": [{"label": c.label, "precision": c.precision, "recall": c.recall,
                               "support": c.support} for c in self.per_class],
                "confusion": self.confusion.tolist()}

    def table(self) -> str:
        """Per-class precision / recall / support and the confusion matrix, as text."""
        labels = [c.label for c in self.per_class]
        w = max(8, *(len(x) for x in labels))
        lines = [f"{'class':<{w}}  precision  recall  support"]
        for c in self.per_class:
            lines.append(f"{c.label:<{w}}  {_pct(c.precision):>9}  {_pct(c.recall):>6}  "
                         f"{c.support:>7}")
        lines.append(f"{'accuracy':<{w}}  {_pct(self.accuracy):>9}  {'':>6}  {self.count:>7}")
        lines.append("")
        lines.append("confusion (rows: true, columns: predicted)")
        cw = max(4, *(len(str(int(v))) for v in self.confusion.ravel())) + 1
        short = [x[:cw - 1] for x in labels]
        lines.append(f"{'':<{w}}" + "".join(f"{s:>{cw}}" for s in short))
        for label, row in zip(labels, self.confusion):
            lines.append(f"{label:<{w}}" + "".join(f"{int(v):>{cw}}" for v in row))
        return "\n".join(lines)


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"


def evaluate(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> SplitMetrics:
    """Accuracy, per-class precision/recall and the confusion matrix.

    Args:
        y_true: int (N,) true class indices.
        y_pred: int (N,) predicted class indices.
        labels: The C class names.
    """
    t = np.asarray(y_true, np.int64)
    p = np.asarray(y_pred, np.int64)
    c = len(labels)
    conf = np.zeros((c, c), np.int64)
    np.add.at(conf, (t, p), 1)
    per = []
    for i, label in enumerate(labels):
        predicted, actual = conf[:, i].sum(), conf[i].sum()
        per.append(ClassMetrics(label, float(conf[i, i] / predicted) if predicted else float("nan"),
                                float(conf[i, i] / actual) if actual else float("nan"), int(actual)))
    acc = float((t == p).mean()) if len(t) else float("nan")
    return SplitMetrics(len(t), acc, tuple(per), conf)


__all__ = ["ClassMetrics", "SplitMetrics", "evaluate"]
