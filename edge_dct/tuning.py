"""Quantization tables tuned for a model: scoring, sorted random search, Pareto fronts.

The method is Li, De Sa and Sampson's ("Optimizing JPEG Quantization for Classification
Networks", 2020): draw tables at random, each one's 64 steps sorted so that low frequencies
(in zigzag order) get the small ones, score every candidate by re-coding photos with it and
classifying them, keep the Pareto front of (bytes, agreement), refine locally, and report
the chosen tables on photos the search never saw.

Every candidate is scored the way it would be served: :func:`edge_dct.transcode` re-codes
each calibration photo (DCT domain, no pixels) and the model classifies the new file through
``prepare``. *Agreement* is the share of photos whose top-1 class on the re-coded file equals
the model's top-1 on the original file (no labels needed); with labels, *accuracy* is the
share whose top-1 is the label.
"""

from __future__ import annotations

import json
import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge_dct.bundle import ModelSource
from edge_dct.classifier import Classifier
from edge_dct.codec import transcode
from edge_dct.errors import InvalidArgumentError
from edge_dct.options import BaseOptions, ClassifierOptions
from edge_dct.prepare import region_read
from edge_dct.tables import QuantTables, TablesLike, fitted, own_steps, standard_tables

ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
    20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
    59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63])
"""Natural index (``8*v + u``) of each zigzag position."""

STANDARD_QUALITIES = tuple(range(10, 100, 5))
"""The standard qualities 10..95 a tuned front is compared with."""


@dataclass(frozen=True)
class Score:
    """How a table set does on a photo set.

    Attributes:
        bytes: Mean size of the re-coded files, bytes per photo.
        agreement: Share of photos whose top-1 equals the model's top-1 on the original file.
        accuracy: Share whose top-1 is the label (None without labels).
        photos: How many photos were scored.
        kl: Mean KL divergence (nats) of the model's softmax on the re-coded files from its
            softmax on the originals: a smooth, label-free measure of what the tables change.
    """

    bytes: float
    agreement: float
    accuracy: float | None
    photos: int
    kl: float = 0.0


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class Evaluator:
    """Scores quantization tables for one model on one photo set.

    Args:
        photos: JPEG files (read once, kept in memory).
        model: The bundle (None: the embedded default model).
        labels: Optional class index per photo (same order as ``photos``).
        workers: Threads re-coding and preparing photos (default: CPU count); the model runs
            on one interpreter.
        num_threads: LiteRT threads of that interpreter.
    """

    def __init__(self, photos: Sequence[str | os.PathLike], model: ModelSource | None = None,
                 labels: Sequence[int] | None = None, workers: int | None = None,
                 num_threads: int | None = None):
        if not photos:
            raise InvalidArgumentError("no photos to score tables on")
        if labels is not None and len(labels) != len(photos):
            raise InvalidArgumentError(f"{len(labels)} labels for {len(photos)} photos")
        self.paths = [str(p) for p in photos]
        self.data = [Path(p).read_bytes() for p in self.paths]
        self.labels = None if labels is None else np.asarray(labels, np.int64)
        self.workers = workers or os.cpu_count() or 1
        self.classifier = Classifier(ClassifierOptions(
            base_options=BaseOptions(model=model, num_threads=num_threads), max_results=1))
        # per photo, what re-coding it for the model needs (header only): the region prepare
        # reads, and its own steps (tables are fitted to them)
        self.regions = [region_read(d, self.classifier.spec) for d in self.data]
        self.own = [own_steps(d) for d in self.data]
        logits, self._sizes = self._logits(lambda i: self.data[i])
        self.reference = logits.argmax(1)
        self._ref_logp = _log_softmax(logits)
        self._ref_p = np.exp(self._ref_logp)

    def _logits(self, recode: Callable[[int], bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Logits (photos, classes) float32 of every photo as ``recode(index)`` writes it, and
        the sizes (photos,) int64."""
        clf = self.classifier
        sizes = np.zeros(len(self.data), np.int64)
        logits: list[np.ndarray | None] = [None] * len(self.data)

        def one(i: int) -> None:
            out = recode(i)
            sizes[i] = len(out)
            tensors, _ = clf._tensors(out, self.paths[i])
            logits[i] = clf._infer(clf._runner.run, tensors)[0].astype(np.float32).copy()

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(one, range(len(self.data))))
        return np.stack(logits), sizes

    def _score(self, logits: np.ndarray, sizes: np.ndarray) -> Score:
        top = logits.argmax(1)
        acc = None if self.labels is None else float(np.mean(top == self.labels))
        logp = _log_softmax(logits)
        kl = float(np.mean(np.sum(self._ref_p * (self._ref_logp - logp), axis=1)))
        return Score(float(sizes.mean()), float(np.mean(top == self.reference)), acc,
                     len(self.data), kl)

    def score(self, tables: TablesLike, for_model: bool = True) -> Score:
        """Re-codes every photo with ``tables`` and classifies it.

        Args:
            tables: The tables.
            for_model: Re-code each photo for the model as ``edge-dct transcode --for-model`` does
                (:func:`edge_dct.transcode_for_model`): only the coefficients ``prepare``
                reads of that photo are kept (the model's input is the same as without, the
                files smaller), with the tables fitted to it (:func:`edge_dct.tables.fitted`:
                no step finer than the photo's own).
        """
        t = QuantTables.of(tables)
        if not for_model:
            return self._score(*self._logits(lambda i: transcode(self.data[i], tables=t)))
        fits = {own: fitted(t, own) for own in set(self.own)}
        return self._score(*self._logits(
            lambda i: transcode(self.data[i], tables=fits[self.own[i]], keep=self.regions[i])))

    def standard(self, quality: int) -> Score:
        """The score of libjpeg's standard tables at ``quality``, as a camera writes them
        (not re-coded for the model)."""
        return self.score(standard_tables(quality), for_model=False)

    def original(self) -> Score:
        """The photos as they are (agreement 1 by definition)."""
        return self._score(*self._logits(lambda i: self.data[i]))

    def close(self) -> None:
        self.classifier.close()


def sorted_random_tables(rng: random.Random, low: tuple[int, int] = (1, 40),
                         high: tuple[int, int] = (8, 255)) -> QuantTables:
    """One candidate of the sorted random search.

    For each of luma and chroma: a range [L, U] is drawn (L log-uniform in ``low``, U
    log-uniform in ``high`` and above L), 64 steps uniform in it, sorted ascending and laid
    out in zigzag order, so that low frequencies get the small steps.
    """
    tables = []
    for _ in range(2):
        lo = int(round(math.exp(rng.uniform(math.log(low[0]), math.log(low[1])))))
        hi = int(round(math.exp(rng.uniform(math.log(max(high[0], lo)), math.log(high[1])))))
        steps = sorted(rng.randint(lo, max(lo, hi)) for _ in range(64))
        t = np.empty(64, np.uint16)
        t[ZIGZAG] = steps
        tables.append(t.reshape(8, 8))
    return QuantTables(*tables)


BANDS = ((0, 1), (1, 3), (3, 6), (6, 10), (10, 15), (15, 21), (21, 28), (28, 36), (36, 64))
"""Zigzag bands (start, end) the refinement moves together: DC, then ever higher frequencies."""


def scaled(tables: QuantTables, which: int, band: tuple[int, int], factor: float) -> QuantTables:
    """``tables`` with one band of one table (0 luma, 1 chroma) scaled by ``factor``, rounded
    and clipped to 1..255; a step that rounding would leave unchanged moves by one."""
    arr = tables.array().astype(np.int64)
    idx = ZIGZAG[band[0]:band[1]]
    old = arr[which, idx]
    new = np.round(old * factor).astype(np.int64)
    new = np.where(new == old, old + (1 if factor > 1 else -1), new)
    arr[which, idx] = np.clip(new, 1, 255)
    return QuantTables(arr[0].reshape(8, 8).astype(np.uint16), arr[1].reshape(8, 8).astype(np.uint16))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: fewer bytes and at least the agreement
    (``points`` are ``(bytes, agreement)``); sorted by bytes."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -1.0
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def interpolate_bytes(curve: Sequence[Score], agreement: float) -> float:
    """Bytes the standard curve (scores of increasing quality) needs to reach ``agreement``,
    linearly interpolated; ``inf`` when no quality reaches it."""
    pts = sorted((s.bytes, s.agreement) for s in curve)
    best_a, prev = -1.0, None
    for b, a in pts:
        if a >= agreement:
            if prev is None or prev[1] >= a:
                return b
            return prev[0] + (b - prev[0]) * (agreement - prev[1]) / (a - prev[1])
        if a > best_a:
            best_a, prev = a, (b, a)
    return math.inf


def interpolate_accuracy(curve: Sequence[Score], size: float) -> float:
    """Label accuracy of the standard curve at ``size`` bytes per photo, linearly
    interpolated between neighbouring qualities (clamped at the ends)."""
    pts = sorted((s.bytes, s.accuracy) for s in curve if s.accuracy is not None)
    if not pts:
        raise InvalidArgumentError("the standard curve has no label accuracy")
    if size <= pts[0][0]:
        return pts[0][1]
    for (b0, a0), (b1, a1) in zip(pts, pts[1:]):
        if size <= b1:
            return a0 + (a1 - a0) * (size - b0) / (b1 - b0)
    return pts[-1][1]


@dataclass
class SearchConfig:
    """Settings of :func:`search`.

    Attributes:
        candidates: Random tables scored (sorted random search).
        rounds: Rounds of local refinement from the best candidate; each scores every band
            of both tables one step coarser and one step finer (up to 36 trials), then the
            combination of the most efficient moves.
        step: Factor of one refinement move.
        reference_quality: The standard quality whose calibration KL divergence (and
            agreement) the chosen tables must reach.
        seed: Seeds the candidates (the same seed gives the same search).
    """

    candidates: int = 60
    rounds: int = 4
    step: float = 1.5
    reference_quality: int = 75
    seed: int = 0


@dataclass
class Trial:
    """One scored table set of the search (JSON-ready through :func:`asdict`)."""

    kind: str  # "standard", "random", "probe" or "refine"
    tables: dict
    score: dict


def feasible(trial: Trial, reference: Score) -> bool:
    """Whether a trial changes the model no more than the reference quality does: KL
    divergence and agreement at least as good."""
    return trial.score["kl"] <= reference.kl and trial.score["agreement"] >= reference.agreement


def choose(trials: Sequence[Trial], reference: Score) -> int:
    """Index of the feasible trial with the fewest bytes (the reference trial, index 0, is
    feasible by definition)."""
    ok = [i for i, t in enumerate(trials) if i == 0 or feasible(t, reference)]
    return min(ok, key=lambda i: trials[i].score["bytes"])


def _efficiency(base: dict, probe: dict, coarser: bool) -> float:
    """Bytes saved per unit of KL added (coarser) or KL removed per byte added (finer)."""
    db = base["bytes"] - probe["bytes"]
    dk = probe["kl"] - base["kl"]
    if coarser:
        return db / max(dk, 1e-6) if db > 0 else -math.inf
    return -dk / max(-db, 1.0) if dk < 0 else -math.inf


def search(evaluator: Evaluator, config: SearchConfig, state: Path | None = None,
           progress: Callable[[int, int, Trial], None] | None = None) -> tuple[list[Trial], int, Score]:
    """Sorted random search, then bounded local refinement, on ``evaluator``'s photos.

    The refinement is a marginal analysis: from the current tables it measures, for each zigzag
    band of each table, the bytes one step coarser saves per unit of KL divergence it adds
    and the KL one step finer removes per byte it costs, then tries the combination that
    coarsens the most efficient bands and refines the bands where bytes buy the most
    fidelity, keeping the predicted KL at the reference's. A combination is kept when it is
    feasible (KL and agreement no worse than the reference quality's) with fewer bytes.

    Args:
        evaluator: Scores on the calibration photos.
        config: The search settings.
        state: A JSON-lines file recording every scored trial; running the same search again
            with the same state file re-scores nothing it holds (resume).
        progress: Called as ``progress(done, total, trial)`` after each trial.

    Returns:
        (trials, chosen index, reference score): every trial in order, the chosen one (the
        fewest bytes among feasible trials), and the reference quality's calibration score.
    """
    done: list[Trial] = []
    if state is not None and state.is_file():
        done = [Trial(**json.loads(line)) for line in state.read_text().splitlines() if line.strip()]
    total = 1 + config.candidates + config.rounds * (4 * len(BANDS) + 1)
    rng = random.Random(config.seed)
    trials: list[Trial] = []
    seen: dict[bytes, Trial] = {}

    def run(kind: str, tables: QuantTables) -> Trial:
        i = len(trials)
        key = tables.array().tobytes()
        if i < len(done):
            if done[i].kind != kind or done[i].tables != tables.to_dict():
                raise InvalidArgumentError(f"{state}: recorded by a different search (trial {i} differs); "
                                           "use another state file or the same settings")
            trial = done[i]
        elif key in seen:
            trial = Trial(kind, tables.to_dict(), seen[key].score)
        else:
            trial = Trial(kind, tables.to_dict(), asdict(evaluator.score(tables)))
        if i >= len(done) and state is not None:
            with open(state, "a") as f:
                f.write(json.dumps(asdict(trial)) + "\n")
        seen[key] = trial
        trials.append(trial)
        if progress is not None:
            progress(len(trials), total, trial)
        return trial

    ref_trial = run("standard", standard_tables(config.reference_quality))
    reference = Score(**ref_trial.score)
    for _ in range(config.candidates):
        run("random", sorted_random_tables(rng))
    # start from the trial nearest the reference's fidelity per byte: fewest bytes + the
    # reference's exchange rate times the KL above it
    rate = reference.bytes / max(reference.kl, 1e-6)
    current = min(trials, key=lambda t: t.score["bytes"] + rate * max(t.score["kl"] - reference.kl, 0.0)
                  + (0 if t.score["agreement"] >= reference.agreement else reference.bytes))
    for _ in range(config.rounds):
        base = QuantTables.from_dict(current.tables)
        coarse, fine = [], []
        for which in (0, 1):
            for band in BANDS:
                for factor, bucket in ((config.step, coarse), (1 / config.step, fine)):
                    t = scaled(base, which, band, factor)
                    if t == base:
                        continue
                    p = run("probe", t)
                    bucket.append((_efficiency(current.score, p.score, factor > 1), which, band, p))
        coarse.sort(key=lambda m: -m[0])
        fine.sort(key=lambda m: -m[0])
        # coarsen the two most efficient bands, then refine bands until the predicted KL is
        # back at the reference's
        combo, kl = base, current.score["kl"]
        for eff, which, band, p in coarse[:2]:
            if eff > 0:
                combo = scaled(combo, which, band, config.step)
                kl += p.score["kl"] - current.score["kl"]
        for eff, which, band, p in fine:
            if kl <= reference.kl or eff <= 0:
                break
            if (which, band) in [(w, b) for _, w, b, _ in coarse[:2]]:
                continue
            combo = scaled(combo, which, band, 1 / config.step)
            kl += p.score["kl"] - current.score["kl"]
        candidate = run("refine", combo)
        best = trials[choose(trials, reference)]
        current = best if feasible(best, reference) else candidate
    return trials, choose(trials, reference), reference


def thin(indices: Sequence[int], trials: Sequence[Trial], keep: int) -> list[int]:
    """At most ``keep`` of the front ``indices`` (sorted by bytes), spread evenly."""
    if len(indices) <= keep:
        return list(indices)
    picks = np.linspace(0, len(indices) - 1, keep).round().astype(int)
    return [indices[i] for i in sorted(set(picks))]


def split_photos(photos: Sequence[str], validation: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded, disjoint (calibration, validation) split of ``photos``."""
    if not 0.0 < validation < 1.0:
        raise InvalidArgumentError(f"validation share {validation} must be between 0 and 1")
    order = sorted(photos)
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(order) * validation)))
    if n_val >= len(order):
        raise InvalidArgumentError(f"{len(order)} photos are too few to split")
    return order[n_val:], order[:n_val]


def rate_accuracy_plot(path: Path, standard: Sequence[tuple[int, Score]],
                       front: Sequence[Score], chosen: Score, title: str,
                       for_model: Sequence[tuple[int, Score]] = ()) -> None:
    """Writes the rate-agreement plot: the tuned front, the standard qualities re-coded for
    the model and the chosen tables against the standard qualities (all on the validation
    photos)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    sb = [s.bytes / 1024 for _, s in standard]
    ax.plot(sb, [100 * s.agreement for _, s in standard], "o-", color="tab:gray",
            label="standard tables, quality 10..95")
    for q, s in standard:
        if q in (10, 30, 50, 75, 95):
            ax.annotate(f"q{q}", (s.bytes / 1024, 100 * s.agreement), textcoords="offset points",
                        xytext=(4, -10), fontsize=8, color="tab:gray")
    if for_model:
        ax.plot([s.bytes / 1024 for _, s in for_model], [100 * s.agreement for _, s in for_model],
                "^-", color="tab:orange", label="standard tables, re-coded for the model")
    fs = sorted(front, key=lambda s: s.bytes)
    if fs:
        ax.plot([s.bytes / 1024 for s in fs], [100 * s.agreement for s in fs], "s-", color="tab:blue",
                label="tuned front (sorted random search), re-coded for the model")
    ax.plot([chosen.bytes / 1024], [100 * chosen.agreement], "*", ms=14, color="tab:red",
            label="chosen tables, re-coded for the model")
    ax.set_xlabel("KiB per photo")
    ax.set_ylabel("top-1 agreement with the original files (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@dataclass
class TuneReport:
    """What :func:`tune` measured (JSON-ready through :func:`asdict`)."""

    tables: dict
    model: str
    calibration: dict
    validation: dict
    reference_quality: int
    search: dict
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for people: the chosen tables against the reference quality."""
        v, r = self.validation["chosen"], self.validation["reference"]
        lines = [f"chosen tables on {v['photos']} validation photos: {v['bytes'] / 1024:.1f} KiB/photo, "
                 f"agreement {100 * v['agreement']:.1f}%, KL {v['kl']:.4f}",
                 f"standard quality {self.reference_quality}: {r['bytes'] / 1024:.1f} KiB/photo, "
                 f"agreement {100 * r['agreement']:.1f}%, KL {r['kl']:.4f}",
                 f"bytes {100 * (v['bytes'] / r['bytes'] - 1):+.1f}% at agreement "
                 f"{100 * (v['agreement'] - r['agreement']):+.1f} points"]
        if v.get("accuracy") is not None:
            lines.append(f"label accuracy {100 * v['accuracy']:.1f}% vs {100 * self.validation['standard_accuracy_at_size']:.1f}% "
                         "for standard tables of the same size")
        return "\n".join(lines)


def validate(validation: Evaluator, chosen: QuantTables, front: Sequence[QuantTables] = (),
             reference_quality: int = 75) -> dict:
    """Scores tables on validation photos against every standard quality 10..95.

    Returns:
        ``chosen``, ``reference`` (the reference quality), ``original`` and ``front`` scores,
        ``standard`` (quality and score per quality), ``for_model`` (the same qualities
        re-coded for the model: the front ``edge-dct transcode --for-model`` gives with
        standard base tables), ``bytes_ratio`` (chosen / reference),
        ``standard_bytes_at_agreement`` and, with labels, ``standard_accuracy_at_size``.
    """
    standard = [(q, validation.standard(q)) for q in STANDARD_QUALITIES]
    for_model = [(q, validation.score(standard_tables(q))) for q in STANDARD_QUALITIES]
    ref = dict(standard).get(reference_quality) or validation.standard(reference_quality)
    got = validation.score(chosen)
    curve = [s for _, s in standard]
    out = {"chosen": asdict(got), "reference": asdict(ref), "original": asdict(validation.original()),
           "front": [asdict(validation.score(t)) for t in front],
           "standard": [{"quality": q, **asdict(s)} for q, s in standard],
           "for_model": [{"quality": q, **asdict(s)} for q, s in for_model],
           "bytes_ratio": got.bytes / ref.bytes,
           "standard_bytes_at_agreement": interpolate_bytes(curve, got.agreement)}
    if got.accuracy is not None:
        out["standard_accuracy_at_size"] = interpolate_accuracy(curve, got.bytes)
    return out


def tune(calibration: Evaluator, validation: Evaluator, config: SearchConfig,
         state: Path | None = None, front_points: int = 8,
         progress: Callable[[int, int, Trial], None] | None = None) -> TuneReport:
    """Searches tables on ``calibration`` and reports them on the disjoint ``validation``.

    Returns:
        The report: chosen tables, their calibration and validation scores, the reference
        quality's, the calibration front re-scored on validation (at most ``front_points``),
        and every standard quality 10..95 on validation.
    """
    import time

    start = time.perf_counter()
    trials, best, reference = search(calibration, config, state, progress)
    front = pareto_front([(t.score["bytes"], t.score["agreement"]) for t in trials])
    chosen = QuantTables.from_dict(trials[best].tables)
    val = validate(validation, chosen, [QuantTables.from_dict(trials[i].tables)
                                        for i in thin(front, trials, front_points)],
                   config.reference_quality)
    return TuneReport(
        tables=chosen.to_dict(), model=calibration.classifier.bundle.name,
        calibration={"chosen": trials[best].score, "reference": asdict(reference),
                     "photos": len(calibration.paths)},
        validation=val, reference_quality=config.reference_quality,
        search={**asdict(config), "trials": len(trials), "chosen_kind": trials[best].kind},
        seconds=time.perf_counter() - start)


__all__ = ["BANDS", "Evaluator", "STANDARD_QUALITIES", "Score", "SearchConfig", "Trial", "TuneReport",
           "ZIGZAG", "choose", "feasible", "interpolate_accuracy", "interpolate_bytes", "pareto_front",
           "rate_accuracy_plot", "scaled", "search", "sorted_random_tables", "split_photos", "thin",
           "tune", "validate"]
