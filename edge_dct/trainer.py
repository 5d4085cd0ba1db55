"""Your own classes from your own JPEGs, on the device: ``edge_dct.train_classifier`` / ``Trainer``.

The loop (``edge-dct train`` runs it), with only the LiteRT runtime installed:

1. **Data** (:mod:`edge_dct.datasets`): one folder per class, given splits or a CSV of
   ``path,label``; bad files skipped and listed, duplicates detected; seeded stratified
   train / validation / test split unless the data set gives its own.
2. **Embeddings through the C core**: every photo goes through ``prepare`` (no pixel is
   decoded) into the base bundle's ``embed`` signature; training photos also give
   ``augment`` random-resized-crop + flip views, drawn in the DCT domain as a ``prepare``
   window (:mod:`edge_dct.augment`). One interpreter per worker thread.
3. **Head** (:mod:`edge_dct.head_training`): softmax regression (or one hidden layer) with
   weight decay and early stopping on validation, in numpy.
4. **Bundle** (:mod:`edge_dct.heads`): the same backbone, the new head quantized to int8 in the
   flatbuffer, the new labels in its metadata; then run through LiteRT on the test photos
   against the fp32 head.

The :class:`TrainingResult` holds the metrics (per split and per class, confusion matrices),
the int8-vs-fp32 agreement, what was skipped and the time of each stage.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge_dct.augment import AugmentOptions, random_window
from edge_dct.bundle import ModelBundle
from edge_dct.datasets import Dataset, Example, duplicates_across, load_dataset, split_dataset
from edge_dct.embedder import ImageEmbedder, ImageEmbedderOptions
from edge_dct.errors import DatasetError, EdgeDctError, InvalidArgumentError
from edge_dct.head_training import HeadOptions, TrainedHead, train_head
from edge_dct.heads import expose_embedding, has_embedding, replace_head
from edge_dct.metrics import SplitMetrics, evaluate
from edge_dct.options import BaseOptions
from edge_dct.prepare import Window

RECIPE = "edge-dct train"


@dataclass(frozen=True)
class TrainerOptions:
    """Everything a training run needs besides the data.

    Attributes:
        base_options: The base bundle (None = the embedded default model) and LiteRT threads
            per interpreter (default 1: parallelism comes from ``workers`` interpreters).
        head: The head's recipe (:class:`~edge_dct.head_training.HeadOptions`).
        validation: Fraction of each class for early stopping (drawn splits only).
        test: Held-out fraction of each class (drawn splits only).
        seed: Seed of the split, the augmentation and the head.
        augment: Random-resized-crop + flip views per training photo, besides its centre crop.
        augment_options: Their crop area / aspect ranges and flip probability.
        workers: Interpreters embedding in parallel (default: CPU count).
        progress: Progress bars and stage lines on stderr (None: when stderr is a terminal).
    """

    base_options: BaseOptions = field(default_factory=lambda: BaseOptions(num_threads=1))
    head: HeadOptions = field(default_factory=HeadOptions)
    validation: float = 0.1
    test: float = 0.2
    seed: int = 0
    augment: int = 1
    augment_options: AugmentOptions = AugmentOptions(scale=(0.35, 1.0))
    workers: int | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.augment < 0:
            raise InvalidArgumentError(f"augment must be >= 0, not {self.augment}")
        if self.workers is not None and self.workers < 1:
            raise InvalidArgumentError(f"workers must be >= 1, not {self.workers}")


@dataclass
class TrainingResult:
    """What a training run did and measured.

    Attributes:
        model_path: The bundle written (None when no ``out`` was given).
        labels: The class names, index-aligned with the bundle's output.
        split_sizes: Photos per split (``train`` counts photos, not augmented views).
        metrics: ``"train"``, ``"validation"``, ``"test"`` -> fp32-head metrics on the centre
            crops (absent for an empty split).
        int8_metrics: The exported int8 bundle through LiteRT on the test photos (validation
            when there is no test split).
        int8_agreement: Share of those photos where the int8 bundle's top-1 equals the fp32
            head's.
        size_bytes: The bundle's size.
        skipped: ``(path, reason)`` of files left out (also photos that failed to decode).
        duplicates: ``(path, reason)`` of identical copies left out.
        timings: Seconds per stage: ``listing``, ``embedding``, ``training``, ``export``,
            ``evaluation``.
        head: The trained float head.
        embedding_views: Embedded views (photos x views).
        embeddings: ``split -> (float32 (N, D) centre-crop embeddings, int (N,) labels)``,
            for reuse (nearest-neighbour search, another head) without embedding again.
    """

    model_path: str | None
    labels: tuple[str, ...]
    split_sizes: dict[str, int]
    metrics: dict[str, SplitMetrics]
    int8_metrics: SplitMetrics | None
    int8_agreement: float | None
    size_bytes: int
    skipped: list[tuple[str, str]]
    duplicates: list[tuple[str, str]]
    timings: dict[str, float]
    head: TrainedHead = field(repr=False)
    embedding_views: int = 0
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def test_accuracy(self) -> float | None:
        m = self.metrics.get("test")
        return m.accuracy if m else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no weights)."""
        return {"model_path": self.model_path, "labels": list(self.labels),
                "split_sizes": self.split_sizes,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "int8_metrics": self.int8_metrics.to_dict() if self.int8_metrics else None,
                "int8_agreement": self.int8_agreement, "size_bytes": self.size_bytes,
                "skipped": self.skipped, "duplicates": self.duplicates,
                "timings": self.timings, "embedding_views": self.embedding_views,
                "best_epoch": self.head.best_epoch, "epochs": len(self.head.history)}

    def report(self) -> str:
        """The human summary ``edge-dct train`` prints."""
        lines = [f"classes: {len(self.labels)}; photos: " + ", ".join(
            f"{k} {v}" for k, v in self.split_sizes.items())
            + f"; {self.embedding_views} views embedded"]
        for path, why in self.skipped:
            lines.append(f"skipped {path}: {why}")
        for path, why in self.duplicates:
            lines.append(f"duplicate {path}: {why}")
        lines.append(f"head: best epoch {self.head.best_epoch} of {len(self.head.history)}")
        for split in ("train", "validation", "test"):
            if split in self.metrics:
                lines.append(f"{split} top-1 (fp32 head): {100 * self.metrics[split].accuracy:.2f}%"
                             f" of {self.metrics[split].count}")
        final = self.metrics.get("test") or self.metrics.get("validation")
        if final is not None:
            lines += ["", f"{'test' if 'test' in self.metrics else 'validation'} split, fp32 head:",
                      final.table()]
        if self.int8_metrics is not None:
            lines += ["", f"int8 bundle (LiteRT): top-1 {100 * self.int8_metrics.accuracy:.2f}%, "
                      f"agrees with the fp32 head on {100 * self.int8_agreement:.2f}% of "
                      f"{self.int8_metrics.count} photos"]
        if self.model_path:
            lines.append(f"wrote {self.model_path} ({self.size_bytes / 1e6:.2f} MB)")
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
        return "\n".join(lines)


def _show_progress(flag: bool | None) -> bool:
    return flag if flag is not None else bool(sys.stderr and sys.stderr.isatty())


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)


def embed_views(model: bytes | str | os.PathLike | None, views: Sequence[tuple[str, Window | None, bool]],
                *, workers: int | None = None, num_threads: int | None = 1,
                progress: bool = False, desc: str = "embedding",
                with_logits: bool = False) -> tuple[np.ndarray, list[str | None], np.ndarray | None]:
    """Embeddings of many (photo, window, flip) views, one interpreter per worker thread.

    Args:
        model: A bundle with an ``embed`` signature (path or bytes; None: the default).
        views: ``(path, window or None for the spec's centre crop, hflip)``.
        workers: Parallel interpreters (default: CPU count).
        num_threads: LiteRT threads per interpreter.
        progress: Show a progress bar on stderr.
        desc: The bar's label.
        with_logits: Also return the bundle's float logits.

    Returns:
        ``(float32 (N, D) embeddings — NaN rows for failures, per view the error message or
        None, float32 (N, C) logits or None)``.
    """
    workers = workers or os.cpu_count() or 1
    local = threading.local()
    made: list[ImageEmbedder] = []
    lock = threading.Lock()
    base = BaseOptions(model=model, num_threads=num_threads)

    def embedder() -> ImageEmbedder:
        e = getattr(local, "embedder", None)
        if e is None:
            e = local.embedder = ImageEmbedder(ImageEmbedderOptions(base))
            with lock:
                made.append(e)
        return e

    def one(view):
        path, window, hflip = view
        try:
            res, logits = embedder().embed_with_logits(path, window=window, hflip=hflip)
            return res.embedding, logits, None
        except EdgeDctError as e:
            return None, None, str(e.reason if e.source else e)

    bar = _bar(len(views), desc, progress)
    rows, errors, logit_rows = [], [], []
    try:
        with ThreadPoolExecutor(workers) as pool:
            for vec, logits, err in pool.map(one, views, chunksize=8):
                rows.append(vec)
                logit_rows.append(logits)
                errors.append(err)
                if bar:
                    bar.update(1)
    finally:
        if bar:
            bar.close()
        for e in made:
            e.close()
    dim = next((r.size for r in rows if r is not None), 0)
    out = np.full((len(rows), dim), np.nan, np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            out[i] = r
    logits = None
    if with_logits:
        c = next((r.size for r in logit_rows if r is not None), 0)
        logits = np.full((len(rows), c), np.nan, np.float32)
        for i, r in enumerate(logit_rows):
            if r is not None:
                logits[i] = r
    return out, errors, logits


def plan_views(splits: dict[str, Sequence[Example]], augment: int,
               options: AugmentOptions, seed: int
               ) -> tuple[list[tuple[str, Window | None, bool]], list[tuple[str, int]]]:
    """The views to embed: every photo's centre crop, plus ``augment`` seeded random
    resized crops + flips of each training photo.

    Returns:
        ``(views, owners)``: ``(path, window or None, hflip)`` and, per view, ``(kind, i)``
        with kind ``"train"``, ``"train_aug"``, ``"validation"`` or ``"test"`` and ``i`` the
        photo's index in its split.
    """
    rng = np.random.default_rng(seed)
    views: list[tuple[str, Window | None, bool]] = []
    owner: list[tuple[str, int]] = []
    for split in ("train", "validation", "test"):
        for i, e in enumerate(splits.get(split, ())):
            views.append((e.path, None, False))
            owner.append((split, i))
            if split == "train":
                for _ in range(augment):
                    views.append((e.path, random_window(*e.size, options, rng),
                                  bool(rng.random() < options.hflip)))
                    owner.append(("train_aug", i))
    return views, owner


class Trainer:
    """Trains a classifier head on a base bundle's embeddings and writes a new int8 bundle.

    Example:
        >>> result = Trainer(TrainerOptions(augment=1)).fit("photos/", "my_model.tflite")
        >>> result.metrics["test"].accuracy, result.int8_agreement
    """

    def __init__(self, options: TrainerOptions | None = None):
        self.options = options or TrainerOptions()

    def _say(self, message: str) -> None:
        if _show_progress(self.options.progress):
            print(message, file=sys.stderr, flush=True)

    def base_bundle(self) -> tuple[bytes, str]:
        """(content with an ``embed`` signature, name) of the base bundle."""
        bundle = ModelBundle.load(self.options.base_options.model)
        content = bundle.content
        if not has_embedding(content):
            content = expose_embedding(content, bundle.name)
        return content, bundle.name

    def fit(self, data: str | os.PathLike | Dataset,
            out: str | os.PathLike | None = None) -> TrainingResult:
        """Runs the whole loop (module docstring).

        Args:
            data: A class-per-folder directory, a CSV of ``path,label[,split]``, or a
                :class:`~edge_dct.datasets.Dataset`.
            out: Where to write the new bundle (None: evaluate in memory only).

        Returns:
            The :class:`TrainingResult`.

        Raises:
            DatasetError: Unusable data (empty class folder, one class, nothing left, ...).
            ModelError: A base bundle whose head cannot be replaced.
            InvalidArgumentError: Bad options.
        """
        o = self.options
        show = _show_progress(o.progress)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        ds = data if isinstance(data, Dataset) else load_dataset(data)
        splits = split_dataset(ds, validation=o.validation, test=o.test, seed=o.seed)
        leaks = duplicates_across(splits)
        if leaks:  # load_dataset removed copies; anything left is a bug worth stopping for
            raise DatasetError(f"identical files in different splits: {leaks[:3]}", ds.source)
        timings["listing"] = time.perf_counter() - t0
        self._say(f"{len(ds.labels)} classes, {len(ds.examples)} photos "
                  f"({', '.join(f'{k} {len(v)}' for k, v in splits.items())}); "
                  f"{len(ds.skipped)} skipped, {len(ds.duplicates)} duplicates")
        content, base_name = self.base_bundle()
        index = {label: i for i, label in enumerate(ds.labels)}

        views, owner = plan_views(splits, o.augment, o.augment_options, o.seed)
        t1 = time.perf_counter()
        feats, errors, _ = embed_views(content, views, workers=o.workers,
                                       num_threads=o.base_options.num_threads, progress=show)
        timings["embedding"] = time.perf_counter() - t1

        skipped = list(ds.skipped)
        failed = {}
        for (split, i), err in zip(owner, errors):
            if err is not None:
                key = (split.replace("_aug", ""), i)
                if key not in failed:
                    failed[key] = err
        for (split, i), err in failed.items():
            skipped.append((splits[split][i].path, f"failed to decode: {err}"))

        def rows(kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[int]]:
            sel = [k for k, (s, i) in enumerate(owner)
                   if s in kinds and (s.replace("_aug", ""), i) not in failed]
            ex = [splits[owner[k][0].replace("_aug", "")][owner[k][1]] for k in sel]
            y = np.array([index[e.label] for e in ex], np.int64)
            return feats[sel] if sel else np.zeros((0, feats.shape[1]), np.float32), y, sel

        x_tr, y_tr, _ = rows(("train", "train_aug"))
        if len(x_tr) == 0:
            raise DatasetError("no training photo could be embedded", ds.source)
        missing = sorted(set(ds.labels) - {ds.labels[k] for k in set(y_tr.tolist())})
        if missing:
            raise DatasetError(f"class(es) {missing} have no training photo left (too few "
                               "photos, or all failed to decode)", ds.source)
        x_val, y_val, _ = rows(("validation",))
        t2 = time.perf_counter()
        head = train_head(x_tr, y_tr, x_val, y_val, len(ds.labels), o.head)
        timings["training"] = time.perf_counter() - t2

        metrics: dict[str, SplitMetrics] = {}
        centre: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in ("train", "validation", "test"):
            x, y, _ = rows((split,))
            centre[split] = (x, y)
            if len(x):
                metrics[split] = evaluate(y, head.predict(x), ds.labels)

        t3 = time.perf_counter()
        layers = head.dense_layers(x_tr)
        provenance = {
            "model": f"{ModelBundle.load(content).metadata.get('model', 'bundle')} + trained head",
            "base_model": base_name,
            "head": {"recipe": RECIPE, "hidden_units": o.head.hidden_units,
                     "weight_decay": o.head.weight_decay, "seed": o.seed, "augment": o.augment,
                     "train_photos": int(sum(1 for s, _ in owner if s == "train")),
                     "best_epoch": head.best_epoch},
            "recipe": RECIPE,
        }
        bundle = replace_head(content, layers, ds.labels, metadata=provenance, name=base_name)
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_bytes(bundle)
        timings["export"] = time.perf_counter() - t3

        t4 = time.perf_counter()
        eval_split = "test" if splits["test"] else "validation" if splits["validation"] else None
        int8_metrics = agreement = None
        if eval_split:
            good = [(i, e) for i, e in enumerate(splits[eval_split]) if (eval_split, i) not in failed]
            if good:
                emb, errs, logits = embed_views(bundle, [(e.path, None, False) for _, e in good],
                                                workers=o.workers,
                                                num_threads=o.base_options.num_threads,
                                                progress=show, desc="int8 check",
                                                with_logits=True)
                ok = [k for k, err in enumerate(errs) if err is None]
                y = np.array([index[good[k][1].label] for k in ok])
                q_pred = logits[ok].argmax(1)
                f_pred = head.predict(emb[ok])
                int8_metrics = evaluate(y, q_pred, ds.labels)
                agreement = float((q_pred == f_pred).mean())
        timings["evaluation"] = time.perf_counter() - t4
        return TrainingResult(
            model_path=str(out) if out is not None else None, labels=ds.labels,
            split_sizes={k: len(v) for k, v in splits.items()}, metrics=metrics,
            int8_metrics=int8_metrics, int8_agreement=agreement, size_bytes=len(bundle),
            skipped=skipped, duplicates=list(ds.duplicates), timings=timings, head=head,
            embedding_views=len(views), embeddings=centre)


_TRAINER_FIELDS = {f.name for f in fields(TrainerOptions)}
_HEAD_FIELDS = {f.name for f in fields(HeadOptions)}


def train_classifier(data: str | os.PathLike | Dataset, out: str | os.PathLike | None = None, *,
                     model=None, num_threads: int | None = 1, **options) -> TrainingResult:
    """Trains your classes on the embedded default model (or ``model``) and writes a bundle.

    Args:
        data: A class-per-folder directory, a CSV of ``path,label[,split]`` or a Dataset.
        out: The new ``.tflite`` bundle (None: do not write).
        model: The base bundle (None: the embedded default).
        num_threads: LiteRT threads per interpreter.
        **options: :class:`TrainerOptions` fields (``validation``, ``test``, ``seed``,
            ``augment``, ``workers``, ``progress``) and :class:`HeadOptions` fields
            (``hidden_units``, ``weight_decay``, ``learning_rate``, ``max_epochs``, ...).

    Returns:
        The :class:`TrainingResult`.

    Raises:
        TypeError: An unknown option.
    """
    unknown = set(options) - _TRAINER_FIELDS - _HEAD_FIELDS
    if unknown:
        raise TypeError(f"unknown options: {sorted(unknown)}")
    head = HeadOptions(**{k: v for k, v in options.items() if k in _HEAD_FIELDS})
    trainer = TrainerOptions(base_options=BaseOptions(model=model, num_threads=num_threads),
                             head=head, **{k: v for k, v in options.items()
                                           if k in _TRAINER_FIELDS and k != "head"})
    return Trainer(trainer).fit(data, out)


def write_report(result: TrainingResult, path: str | os.PathLike) -> None:
    """Writes ``result.to_dict()`` as JSON."""
    Path(path).write_text(json.dumps(result.to_dict(), indent=1, default=float))


__all__ = ["RECIPE", "Trainer", "TrainerOptions", "TrainingResult", "embed_views", "plan_views",
           "train_classifier", "write_report"]
