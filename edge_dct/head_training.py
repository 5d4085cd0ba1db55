"""A classifier head trained in numpy on embeddings: softmax regression or one hidden layer.

The recipe (Model Maker's head, without TensorFlow): features centred and scaled by one
global standard deviation (folded back into the exported weights, so the head consumes the
bundle's raw pooled features), dropout on the features, an optional ReLU hidden layer,
softmax cross-entropy with L2 weight decay, Adam on mini-batches, and early stopping on the
validation loss (the best epoch's weights are kept). Deterministic under a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_dct.errors import InvalidArgumentError
from edge_dct.heads import DenseLayer, Quantization


@dataclass(frozen=True)
class HeadOptions:
    """How the head is trained.

    Attributes:
        hidden_units: Width of a ReLU hidden layer; 0 = softmax regression (one layer).
        weight_decay: L2 penalty on the weights (``wd/2 * ||W||^2`` per layer).
        learning_rate: Adam step size.
        batch_size: Mini-batch size.
        max_epochs: Upper bound on epochs.
        patience: Epochs without a better validation loss before stopping.
        dropout: Dropout rate on the features while training (0: none).
        label_smoothing: Cross-entropy target smoothing.
        seed: Seed of initialization, shuffling and dropout.
    """

    hidden_units: int = 0
    weight_decay: float = 1e-4
    learning_rate: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 300
    patience: int = 20
    dropout: float = 0.2
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden_units < 0 or self.batch_size < 1 or self.max_epochs < 1 or \
                self.patience < 1 or not 0 <= self.dropout < 1 or self.learning_rate <= 0 \
                or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise InvalidArgumentError(f"bad head options: {self}")


@dataclass
class TrainedHead:
    """A trained float head (on standardized features) and how it got there.

    Attributes:
        mean: float32 (D,) feature mean subtracted before the first layer.
        scale: The global feature standard deviation divided by.
        layers: ``(weights (in, out), bias (out,))`` per layer, ReLU between layers.
        history: Per epoch ``{"epoch", "train_loss", "val_loss", "val_accuracy"}``.
        best_epoch: The epoch whose weights were kept.
    """

    mean: np.ndarray
    scale: float
    layers: list[tuple[np.ndarray, np.ndarray]]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def num_classes(self) -> int:
        return int(self.layers[-1][0].shape[1])

    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        h = (np.asarray(x, np.float32) - self.mean) / self.scale
        acts = [h]
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        return acts

    def logits(self, features: np.ndarray) -> np.ndarray:
        """float32 (N, C) logits of the fp32 head on raw features (N, D)."""
        return self._forward(np.atleast_2d(features))[-1].astype(np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """int (N,) argmax classes."""
        return self.logits(features).argmax(1)

    def dense_layers(self, calibration: np.ndarray, margin: float = 1.1) -> list[DenseLayer]:
        """The head as :class:`~edge_dct.heads.DenseLayer` s on the raw features.

        The standardization is folded into the first layer (``W / scale``,
        ``b - (mean / scale) @ W``); each layer's int8 output range is its float range on
        ``calibration`` features (the training embeddings) times ``margin``.
        """
        acts = self._forward(np.atleast_2d(calibration))
        out = []
        for i, (w, b) in enumerate(self.layers):
            if i == 0:
                w, b = w / self.scale, b - (self.mean / self.scale) @ w
            a = acts[i + 1]
            relu = i < len(self.layers) - 1
            low = 0.0 if relu else float(a.min()) * margin
            q = Quantization.from_range(low, float(a.max()) * margin)
            out.append(DenseLayer(w.astype(np.float32), b.astype(np.float32), q, relu=relu))
        return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _loss(logits: np.ndarray, y: np.ndarray) -> float:
    p = _softmax(logits.astype(np.float64))
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def train_head(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None,
               y_val: np.ndarray | None, num_classes: int,
               options: HeadOptions = HeadOptions()) -> TrainedHead:
    """Trains a head on embeddings (module docstring).

    Args:
        x_train: float (N, D) training embeddings (augmented views included).
        y_train: int (N,) class indices.
        x_val: float (M, D) validation embeddings for early stopping, or None/empty (then
            ``max_epochs`` epochs are run).
        y_val: int (M,).
        num_classes: Number of classes C.
        options: The recipe's knobs.

    Returns:
        The :class:`TrainedHead` (weights of the best validation epoch).

    Raises:
        InvalidArgumentError: Empty or mismatched inputs, labels outside ``[0, C)``.
    """
    x_train = np.asarray(x_train, np.float32)
    y_train = np.asarray(y_train, np.int64)
    if x_train.ndim != 2 or len(x_train) == 0 or len(x_train) != len(y_train):
        raise InvalidArgumentError(f"training features {x_train.shape} and labels "
                                   f"{y_train.shape} do not match")
    if y_train.min() < 0 or y_train.max() >= num_classes:
        raise InvalidArgumentError(f"labels must lie in [0, {num_classes})")
    has_val = x_val is not None and len(x_val) > 0
    rng = np.random.default_rng(options.seed)
    mean = x_train.mean(0)
    scale = float(x_train.std()) or 1.0
    xs = (x_train - mean) / scale
    xv = (np.asarray(x_val, np.float32) - mean) / scale if has_val else None
    yv = np.asarray(y_val, np.int64) if has_val else None
    d = x_train.shape[1]
    sizes = [d] + ([options.hidden_units] if options.hidden_units else []) + [num_classes]
    params = []
    for i in range(len(sizes) - 1):
        std = np.sqrt(2.0 / sizes[i]) if i < len(sizes) - 2 else np.sqrt(1.0 / sizes[i]) * 0.1
        params += [rng.normal(0, std, (sizes[i], sizes[i + 1])).astype(np.float32),
                   np.zeros(sizes[i + 1], np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    smooth = options.label_smoothing
    target = np.full((len(y_train), num_classes), smooth / num_classes, np.float32)
    target[np.arange(len(y_train)), y_train] += 1 - smooth

    def forward(x, ps):
        acts = [x]
        h = x
        for i in range(0, len(ps), 2):
            h = h @ ps[i] + ps[i + 1]
            if i < len(ps) - 2:
                h = np.maximum(h, 0)
            acts.append(h)
        return acts

    head = TrainedHead(mean, scale, [])
    best = (np.inf, None, 0)
    bad = 0
    n = len(xs)
    for epoch in range(1, options.max_epochs + 1):
        order = rng.permutation(n)
        for start in range(0, n, options.batch_size):
            idx = order[start:start + options.batch_size]
            x = xs[idx]
            if options.dropout:
                keep = rng.random(x.shape, dtype=np.float32) >= options.dropout
                x = x * keep / (1 - options.dropout)
            acts = forward(x, params)
            grad = (_softmax(acts[-1]) - target[idx]) / len(idx)
            grads = [None] * len(params)
            for li in range(len(params) // 2 - 1, -1, -1):
                w = params[2 * li]
                grads[2 * li] = acts[li].T @ grad + options.weight_decay * w
                grads[2 * li + 1] = grad.sum(0)
                if li:
                    grad = (grad @ w.T) * (acts[li] > 0)
            step += 1
            lr = options.learning_rate * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            for p, g, mi, vi in zip(params, grads, m, v):
                mi *= b1
                mi += (1 - b1) * g
                vi *= b2
                vi += (1 - b2) * g * g
                p -= (lr * mi / (np.sqrt(vi) + eps)).astype(np.float32)
        train_loss = _loss(forward(xs, params)[-1], y_train)
        row = {"epoch": epoch, "train_loss": train_loss}
        if has_val:
            logits = forward(xv, params)[-1]
            row["val_loss"] = _loss(logits, yv)
            row["val_accuracy"] = float((logits.argmax(1) == yv).mean())
            monitor = row["val_loss"]
        else:
            monitor = train_loss
        head.history.append(row)
        if monitor < best[0] - 1e-5:
            best, bad = (monitor, [p.copy() for p in params], epoch), 0
        else:
            bad += 1
            if has_val and bad >= options.patience:
                break
    params = best[1] if best[1] is not None else params
    head.layers = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    head.best_epoch = best[2]
    return head


__all__ = ["HeadOptions", "TrainedHead", "train_head"]
