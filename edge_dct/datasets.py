"""Labelled photo sets for training: listing, checking, de-duplicating and splitting.

A data set is either

* a folder with **one sub-folder per class** (``DATA/cat/*.jpg``, ``DATA/dog/*.jpg``), or with
  given splits, ``DATA/{train,validation,test}/CLASS/*.jpg`` (``val`` is accepted for
  ``validation``; a missing ``validation`` or ``test`` is drawn from ``train``), or
* a **CSV** of ``path,label`` rows (optionally a third ``split`` column, ``train`` /
  ``validation`` / ``test``; an optional header row naming the columns; relative paths are
  relative to the CSV's folder).

Every file is checked before any training (its JPEG header is read, its content hashed):
unreadable and non-JPEG files are **skipped and listed** (never fatal unless nothing is left),
byte-identical files are detected — a copy is used once, copies in different given splits are
dropped from validation/test so nothing leaks into the evaluation, and copies labelled
differently are all dropped. A class folder without JPEGs, a single class, or no usable photo
at all raise :class:`edge_dct.errors.DatasetError` naming the folder or file.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from edge_dct.errors import DatasetError, EdgeDctError
from edge_dct.jpeg import read_header

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation",
                  "valid": "validation", "validation": "validation", "test": "test"}
_IGNORED = ("Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class Example:
    """One labelled photo.

    Attributes:
        path: The file.
        label: Its class name.
        split: ``"train"``, ``"validation"``, ``"test"`` when the data set gives it, else None.
        size: ``(width, height)`` after EXIF orientation (from the header).
        digest: blake2b of the file's bytes (duplicate detection).
    """

    path: str
    label: str
    split: str | None = None
    size: tuple[int, int] = (0, 0)
    digest: str = ""


@dataclass
class Dataset:
    """A checked data set.

    Attributes:
        source: The folder or CSV it was read from.
        labels: Class names, sorted.
        examples: The usable photos (one per distinct content).
        skipped: ``(path, reason)`` of every file left out (unreadable, not a JPEG, ...).
        duplicates: ``(path, reason)`` of every byte-identical copy left out.
        given_splits: Whether the data set named each photo's split.
    """

    source: str
    labels: tuple[str, ...]
    examples: list[Example]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    given_splits: bool = False

    def counts(self) -> dict[str, int]:
        """Photos per class."""
        out = {label: 0 for label in self.labels}
        for e in self.examples:
            out[e.label] += 1
        return out


def _files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files)
                if not f.startswith(".") and f not in _IGNORED]
    return out


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_rows(cls: Path, split: str | None) -> list[tuple[Path, str, str | None]]:
    """``(file, class, split)`` of one class folder; an empty one is a :class:`DatasetError`."""
    files = _files(cls)
    if not files:
        where = f" of the {split} split" if split else ""
        raise DatasetError(f"class folder '{cls.name}'{where} has no files; add photos or remove "
                           "the folder", str(cls))
    return [(f, cls.name, split) for f in files]


def _from_folder(root: Path) -> tuple[list[tuple[Path, str, str | None]], bool]:
    subs = _class_folders(root)
    named = {_SPLIT_ALIASES.get(p.name.lower()): p for p in subs if p.name.lower() in _SPLIT_ALIASES}
    if "train" in named and all(p.name.lower() in _SPLIT_ALIASES for p in subs):
        rows = []
        for split, folder in named.items():
            for cls in _class_folders(folder):
                rows += _class_rows(cls, split)
        return rows, True
    if not subs:
        raise DatasetError("no class folders: expected one sub-folder per class "
                           "(DATA/cat/*.jpg, DATA/dog/*.jpg) or a CSV of path,label", str(root))
    rows = []
    for cls in subs:
        rows += _class_rows(cls, None)
    return rows, False


def _from_csv(path: Path) -> tuple[list[tuple[Path, str, str | None]], bool]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            table = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"cannot read the CSV: {e}", str(path)) from e
    if table and [c.strip().lower() for c in table[0][:2]] == ["path", "label"]:
        table = table[1:]
    rows, given = [], False
    for n, r in enumerate(table, 1):
        if len(r) < 2 or not r[0].strip() or not r[1].strip():
            raise DatasetError(f"row {n} is not 'path,label[,split]': {r}", str(path))
        split = None
        if len(r) > 2 and r[2].strip():
            split = _SPLIT_ALIASES.get(r[2].strip().lower())
            if split is None:
                raise DatasetError(f"row {n}: unknown split {r[2]!r} (train, validation, test)",
                                   str(path))
            given = True
        p = Path(r[0].strip())
        rows.append((p if p.is_absolute() else path.parent / p, r[1].strip(), split))
    if given and any(s is None for _, _, s in rows):
        raise DatasetError("some rows name a split and others do not", str(path))
    return rows, given


def _check(path: Path) -> tuple[tuple[int, int], str]:
    """(oriented size, digest) of a JPEG file; raises EdgeDctError for a bad one."""
    data = path.read_bytes()
    info = read_header(data)
    size = (info.height, info.width) if info.orientation >= 5 else (info.width, info.height)
    return size, hashlib.blake2b(data, digest_size=16).hexdigest()


def load_dataset(source: str | os.PathLike) -> Dataset:
    """Lists and checks a data set (module docstring): folder per class, given splits or CSV.

    Args:
        source: The folder or the ``.csv`` file.

    Returns:
        The :class:`Dataset` (skipped files and duplicates listed in it).

    Raises:
        DatasetError: A missing source, an empty class folder, a bad CSV row, fewer than two
            classes with usable photos, or no usable photo at all.
    """
    src = Path(source)
    if src.is_dir():
        rows, given = _from_folder(src)
    elif src.is_file():
        rows, given = _from_csv(src)
    else:
        raise DatasetError("no such folder or CSV file", str(src))
    skipped: list[tuple[str, str]] = []
    duplicates: list[tuple[str, str]] = []
    by_digest: dict[str, list[Example]] = {}
    for path, label, split in rows:
        try:
            size, digest = _check(path)
        except OSError as e:
            skipped.append((str(path), f"unreadable: {e.strerror or e}"))
            continue
        except EdgeDctError as e:
            skipped.append((str(path), f"not a usable JPEG: {e.reason}"))
            continue
        by_digest.setdefault(digest, []).append(Example(str(path), label, split, size, digest))
    examples: list[Example] = []
    rank = {s: i for i, s in enumerate(SPLITS)}
    for digest, copies in by_digest.items():
        labels = sorted({e.label for e in copies})
        if len(labels) > 1:
            for e in copies:
                duplicates.append((e.path, "identical files labelled differently ("
                                   + ", ".join(labels) + "): all copies left out"))
            continue
        keep = min(copies, key=lambda e: (rank.get(e.split or "train", 0), e.path))
        examples.append(keep)
        for e in copies:
            if e is keep:
                continue
            where = (f" (in {e.split}, kept in {keep.split}: no leak into evaluation)"
                     if e.split != keep.split else "")
            duplicates.append((e.path, f"identical to {keep.path}{where}"))
    examples.sort(key=lambda e: (e.label, e.path))
    if not examples:
        why = f"; {len(skipped)} files skipped, e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise DatasetError(f"no usable JPEG photos{why}", str(src))
    present = sorted({e.label for e in examples})
    empty = sorted({label for _, label, _ in rows} - set(present))
    if empty:
        raise DatasetError(f"class(es) {', '.join(map(repr, empty))} have no usable JPEG "
                           "photo (all skipped); fix or remove them", str(src))
    if len(present) < 2:
        raise DatasetError(f"a classifier needs at least two classes, found one: {present[0]!r}",
                           str(src))
    return Dataset(str(src), tuple(present), examples, skipped, duplicates, given)


def subsample(dataset: Dataset, per_class: int | None, seed: int) -> Dataset:
    """At most ``per_class`` photos of each class, seeded (None or 0: the dataset as it is);
    given splits keep their shares."""
    if not per_class:
        return dataset
    rng = np.random.default_rng(seed)
    keep = []
    for label in dataset.labels:
        items = [e for e in dataset.examples if e.label == label]
        keep += [items[i] for i in sorted(rng.permutation(len(items))[:per_class])]
    return replace(dataset, examples=keep)


def split_dataset(dataset: Dataset, *, validation: float = 0.1, test: float = 0.2,
                  seed: int = 0) -> dict[str, list[Example]]:
    """Train / validation / test lists: the data set's own splits, else a seeded stratified
    draw.

    Drawn splits take ``round(n * validation)`` and ``round(n * test)`` photos of each class
    (at least one photo of a class always stays in train). Given splits are used as they are;
    a missing validation (or test) split is drawn from train with the same fractions.

    Args:
        dataset: From :func:`load_dataset`.
        validation: Fraction for early stopping (0: none).
        test: Held-out fraction (0: none).
        seed: Seed of the draw.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}``, each sorted by label, path.

    Raises:
        InvalidArgumentError: fractions outside [0, 1) or summing to 1 or more.
    """
    from edge_dct.errors import InvalidArgumentError

    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise InvalidArgumentError(f"validation ({validation}) and test ({test}) must be "
                                   "fractions in [0, 1) summing to less than 1")
    rng = np.random.default_rng(seed)
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    if dataset.given_splits:
        for e in dataset.examples:
            out[e.split or "train"].append(e)
        pool = out["train"]
        draw_val = validation if not out["validation"] else 0.0
        draw_test = test if not out["test"] else 0.0
    else:
        pool, draw_val, draw_test = list(dataset.examples), validation, test
    if draw_val or draw_test or not dataset.given_splits:
        out["train"] = []
        for label in dataset.labels:
            items = [e for e in pool if e.label == label]
            order = rng.permutation(len(items))
            n = len(items)
            n_test = int(round(n * draw_test))
            n_val = int(round(n * draw_val))
            while n_test + n_val >= n and (n_val or n_test):
                if n_val >= n_test and n_val:
                    n_val -= 1
                else:
                    n_test -= 1
            for rank, i in enumerate(order):
                split = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
                out[split].append(replace(items[i], split=split))
    return {s: sorted(v, key=lambda e: (e.label, e.path)) for s, v in out.items()}


def duplicates_across(splits: dict[str, Sequence[Example]]) -> list[tuple[str, str]]:
    """``(path, path)`` pairs of identical files in different splits (should be none)."""
    seen: dict[str, str] = {}
    found = []
    for s in SPLITS:
        for e in splits.get(s, ()):
            if e.digest and e.digest in seen and seen[e.digest] != e.path:
                found.append((seen[e.digest], e.path))
            seen.setdefault(e.digest, e.path)
    return found


__all__ = ["SPLITS", "Dataset", "Example", "duplicates_across", "load_dataset", "split_dataset"]
