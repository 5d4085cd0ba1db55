"""Speed table: LiteRT latency of the zoo at batch 1, next to the paper's FPS ratios.

Each model is converted to fp32 and int8 (placeholder calibration is fine: latency does not
depend on the ranges) and timed with ``ai_edge_litert``'s interpreter (XNNPACK) at 1 and 2
threads: the median of the timed runs of a pass, then the median over passes (passes interleave
the models, so a moment when another process holds a core spoils one pass, not the cell).
Speed-ups are ``latency(baseline) / latency(model)``, the CPU analogue of the paper's
``FPS(model) / FPS(ResNet-50 RGB)``. The tables and their rows come from the registry: every
model with a ``speed_group`` (:func:`converters.zoo.registry.speed_groups`), the group's
``baseline`` first, next to the ``paper_speedup`` it records.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Sequence

from ..data.workspace import work_dir
from ..zoo.profile import profile
from ..zoo.registry import build, get_config, speed_groups
from .calibration import default_samples
from .export import convert, input_shapes, measure_latency, model_spec

@dataclasses.dataclass
class BenchRow:
    """Latencies of one model: ``latency_ms[(quantize, threads)]`` in milliseconds."""

    name: str
    params: int
    macs: int
    latency_ms: dict[tuple[str, int], float]


def bench_model(
    name: str, quantizations: Sequence[str], threads: Sequence[int], cache: Path | None, runs: int
) -> BenchRow:
    """Convert (or reuse cached ``cache/{name}_{q}.tflite``) and time one registry model."""
    config = get_config(name)
    model = build(name)
    prof = profile(model)
    latency = {}
    for q in quantizations:
        path = cache / f"{name}_{q}.tflite" if cache else None
        if path and path.is_file():
            tflite = path.read_bytes()
        else:
            calibration = None
            if q == "int8":
                calibration, _ = default_samples(input_shapes(model), model_spec(model, config.input_spec), n=4)
            tflite = convert(model, q, calibration)
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tflite)
        for t in threads:
            latency[(q, t)] = measure_latency(tflite, t, runs=runs, statistic="median")
    return BenchRow(name, prof.params, prof.macs, latency)


def format_table(rows: list[BenchRow], reference: str, quantizations: Sequence[str], threads: Sequence[int]) -> str:
    """Markdown table of latencies and speed-ups relative to ``reference``, with the paper's speed-ups."""
    ref = next(r for r in rows if r.name == reference)
    paper = {r.name: get_config(r.name).paper_speedup for r in rows}
    cols = [(q, t) for q in quantizations for t in threads]
    head = ["model", "params (M)", "GMACs"]
    head += [f"{q} {t}T ms" for q, t in cols] + [f"speed-up {q} {t}T" for q, t in cols]
    with_paper = any(paper.values())
    if with_paper:
        head.append("paper speed-up (GPU FPS ratio)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name, f"{r.params / 1e6:.2f}", f"{r.macs / 1e9:.2f}"]
        cells += [f"{r.latency_ms[c]:.1f}" for c in cols]
        cells += [f"{ref.latency_ms[c] / r.latency_ms[c]:.2f}" for c in cols]
        if with_paper:
            cells.append(paper[r.name])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_bench(
    groups: Sequence[str] | None = None,
    quantizations: Sequence[str] = ("fp32", "int8"),
    threads: Sequence[int] = (1, 2),
    cache: Path | None = None,
    runs: int = 15,
    passes: int = 1,
    log=print,
) -> str:
    """Time every model of every group and return the markdown tables.

    Args:
        groups: speed groups of the registry (e.g. ``["resnet", "lite0"]``); None: all of them.
        quantizations: ``"fp32"``/``"fp16"``/``"int8"`` exports to time.
        threads: LiteRT thread counts.
        cache: folder for the converted models (default ``work_dir()/bench``); converted files
            found there are reused.
        runs: timed runs per configuration and pass.
        passes: passes over all models; each cell is the median of its passes' medians, so
            a moment when another process holds a core does not decide a cell.
        log: progress printer.

    Returns:
        One markdown table per group, separated by blank lines.

    Raises:
        KeyError: an unknown group, naming the known ones.
    """
    known = speed_groups()
    for g in groups or ():
        if g not in known:
            raise KeyError(f"unknown speed group {g!r}; known: {', '.join(known)}")
    tables = [known[g] for g in (groups or known)]
    cache = cache or work_dir() / "bench"
    rows: dict[str, BenchRow] = {}
    measured: dict[str, dict[tuple[str, int], list[float]]] = {}
    for p in range(passes):
        for _, names in tables:
            for name in names:
                row = bench_model(name, quantizations, threads, cache, runs)
                log(f"  pass {p + 1} {name}: " + ", ".join(f"{q}/{t}T {ms:.1f} ms" for (q, t), ms in row.latency_ms.items()))
                for c, ms in row.latency_ms.items():
                    measured.setdefault(name, {}).setdefault(c, []).append(ms)
                row.latency_ms = {c: statistics.median(v) for c, v in measured[name].items()}
                rows[name] = row
    return "\n\n".join(
        format_table([rows[n] for n in names], reference, quantizations, threads) for reference, names in tables
    )
