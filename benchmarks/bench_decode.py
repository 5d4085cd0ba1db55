#!/usr/bin/env python3
"""Decode speed: edge_dct.read_dct vs libjpeg-turbo (full and 1/8-scaled) and jpeg2dct.

One thread.  Every contender gets the JPEG bytes already in memory.  For each
file, each contender runs once to warm up and then ``--repeat`` times,
interleaved round-robin (so background load hits all contenders alike); the
per-file figure is the median.  Workloads:

* small: ~500x375 photos (default: the 40 shared clothing photos);
* large: photos of at least ``--min-mp`` megapixels (selected by header) in
  ``--large`` (default: where ``benchmarks/get_photos.sh`` puts them).

The summary gives, per workload and for its baseline / progressive files
apart, the median over files of each contender, and the ratios the issue's
bars judge: ``read_dct / best 1/8-scaled`` (bar <= 1.3) and
``jpeg2dct / read_dct`` (bar >= 2), plus ``read_dct / best full decode``.
"best" is the faster of the two libjpeg-turbo bindings, file by file.

Example:
    python benchmarks/bench_decode.py --repeat 7 --json /tmp/bench.json
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread: set before numpy / cv2 start their pools

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import simplejpeg  # noqa: E402

import edge_dct  # noqa: E402
from edge_dct import _jpeg  # noqa: E402 - its entropy-path counters say which decoder ran
from edge_dct.bench import cpu_model  # noqa: E402

try:
    from jpeg2dct.numpy import loads as jpeg2dct_loads  # PyPI "jpeg2dct-numpy"
except ImportError:  # reported as n/a
    jpeg2dct_loads = None

cv2.setNumThreads(1)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SMALL = str(ROOT.parent / "shared" / "corpus" / "photos" / "clothing" / "*" / "*.jpg")
DEFAULT_LARGE = Path(os.environ.get("EDGE_DCT_WORK", Path.home() / "edge_dct_work")) / "photos" / "large"
CV2_FLAGS_FULL = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
CV2_FLAGS_EIGHTH = cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION

CONTENDERS = ("read_dct", "sj_full", "cv2_full", "sj_1/8", "cv2_1/8", "jpeg2dct")
"""Column order.  sj = simplejpeg (TurboJPEG API), cv2 = OpenCV imdecode."""

BAR_EIGHTH = 1.3  # read_dct / best 1/8-scaled decode must be <= this
BAR_JPEG2DCT = 2.0  # jpeg2dct / read_dct must be >= this


@dataclass
class FileResult:
    """Median seconds per contender for one file (None: the contender failed on it)."""

    path: Path
    width: int
    height: int
    subsampling: str
    progressive: bool
    seconds: dict[str, float | None] = field(default_factory=dict)
    entropy: str = "?"  # read_dct's entropy decoder: builtin, libjpeg, or fallback (builtin gave up)

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def best(self, *names: str) -> float | None:
        """Fastest of the given contenders on this file."""
        times = [self.seconds[n] for n in names if self.seconds.get(n) is not None]
        return min(times) if times else None


def make_calls(data: bytes, info: edge_dct.JpegInfo) -> dict[str, Callable[[], object]]:
    """Zero-argument decode calls for every contender, all on the same in-memory bytes.

    The 1/8-scaled simplejpeg call asks for ``ceil(h / 8) x ceil(w / 8)``,
    the smallest size libjpeg-turbo reaches with its 1/8 scale factor.
    """
    buf = np.frombuffer(data, np.uint8)
    eighth_h, eighth_w = math.ceil(info.height / 8), math.ceil(info.width / 8)
    calls: dict[str, Callable[[], object]] = {
        "read_dct": lambda: edge_dct.read_dct(data),
        "sj_full": lambda: simplejpeg.decode_jpeg(data),
        "cv2_full": lambda: cv2.imdecode(buf, CV2_FLAGS_FULL),
        "sj_1/8": lambda: simplejpeg.decode_jpeg(data, min_height=eighth_h, min_width=eighth_w),
        "cv2_1/8": lambda: cv2.imdecode(buf, CV2_FLAGS_EIGHTH),
    }
    if jpeg2dct_loads is not None:
        calls["jpeg2dct"] = lambda: jpeg2dct_loads(data)
    return calls


def check_output(name: str, out: object, info: edge_dct.JpegInfo) -> None:
    """Checks a decoder produced the pixel size it is benchmarked for.

    Raises:
        RuntimeError: Wrong size (the contender is then reported n/a for the file).
    """
    if name.endswith("1/8"):
        expected = (math.ceil(info.height / 8), math.ceil(info.width / 8))
    elif name.endswith("full"):
        expected = (info.height, info.width)
    else:
        return
    if out is None or tuple(out.shape[:2]) != expected:
        shape = None if out is None else out.shape
        raise RuntimeError(f"{name} returned {shape}, expected {expected} pixels")


def time_calls(calls: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each call: ``repeat`` interleaved rounds, GC off (warm-up is the caller's)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def entropy_path(call: Callable[[], object]) -> tuple[str, object]:
    """Which entropy decoder a read_dct call used (edge_dct's built-in one, libjpeg's, or
    libjpeg's after the built-in one gave up), and what the call returned."""
    before = _jpeg.entropy_path_counts()
    out = call()
    after = _jpeg.entropy_path_counts()
    return next((p for p in after if after[p] != before[p]), "?"), out


def time_file(path: Path, repeat: int) -> FileResult:
    """Times every contender on one file: one warm-up, then ``repeat`` interleaved rounds."""
    data = path.read_bytes()
    info = edge_dct.read_header(data)
    result = FileResult(path, info.width, info.height, info.subsampling, info.progressive)
    calls = {}
    for name, call in make_calls(data, info).items():
        try:
            if name == "read_dct":
                result.entropy, out = entropy_path(call)
            else:
                out = call()
            check_output(name, out, info)
            calls[name] = call
        except Exception as e:  # noqa: BLE001 - a contender failing on a file is a result (n/a)
            print(f"  {name} failed on {path.name}: {type(e).__name__}: {e}", file=sys.stderr)
    medians = time_calls(calls, repeat)
    result.seconds = {n: medians.get(n) for n in CONTENDERS}
    return result


def _header(path: Path) -> edge_dct.JpegInfo | None:
    """The file's header, or None (with a note on stderr) when edge_dct cannot read it."""
    try:
        return edge_dct.read_header(path)
    except edge_dct.EdgeDctError as e:
        print(f"  skipped {path}: {e}", file=sys.stderr)
        return None


def small_files(pattern: str) -> list[Path]:
    """Readable JPEGs in a directory (recursively) or matching a glob."""
    root = Path(pattern).expanduser()
    if root.is_dir():
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    else:
        paths = sorted(Path(p) for p in glob.glob(str(root), recursive=True))
    return [p for p in paths if _header(p) is not None]


def large_files(directory: Path, min_mp: float) -> list[Path]:
    """JPEGs in ``directory`` whose header declares at least ``min_mp`` megapixels."""
    found = []
    for path in sorted(directory.expanduser().glob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        info = _header(path)
        if info is not None and info.width * info.height >= min_mp * 1e6:
            found.append(path)
    return found


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.2f}"


def print_files(workload: str, results: list[FileResult]) -> None:
    """One compact row per file: size, sampling, baseline/progressive, median ms per contender."""
    print(f"\n== {workload}: per-file medians (ms); huff = read_dct's entropy decoder ==")
    header = (f"{'file':<40} {'MP':>5} {'samp':>4} {'B/P':>3} {'huff':>8} "
              + " ".join(f"{c:>9}" for c in CONTENDERS))
    print(header)
    for r in results:
        name = r.path.name if len(r.path.name) <= 40 else "..." + r.path.name[-37:]
        cells = " ".join(f"{_ms(r.seconds[c]):>9}" for c in CONTENDERS)
        print(f"{name:<40} {r.megapixels:5.1f} {r.subsampling:>4} {'P' if r.progressive else 'B':>3} "
              f"{r.entropy:>8} {cells}")


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


@dataclass(frozen=True)
class Ratio:
    """A ratio ``numerator / denominator`` between two per-file times, and its bar.

    Attributes:
        name: Label, e.g. ``"read_dct/best_1/8"``.
        numerator: Per-file time of the numerator.
        denominator: Per-file time of the denominator.
        passes: The bar, None when the issue sets none.
        bar: The bar in words.
    """

    name: str
    numerator: Callable[[FileResult], float | None]
    denominator: Callable[[FileResult], float | None]
    passes: Callable[[float], bool] | None = None
    bar: str = ""

    def of_medians(self, results: list[FileResult]) -> float | None:
        """Median numerator over median denominator, over the files where both exist."""
        pairs = [(self.numerator(r), self.denominator(r)) for r in results]
        pairs = [(n, d) for n, d in pairs if n is not None and d is not None]
        return _ratio(_median([n for n, _ in pairs]), _median([d for _, d in pairs]))

    def median_per_file(self, results: list[FileResult]) -> float | None:
        """Median over files of the per-file ratio."""
        return _median([_ratio(self.numerator(r), self.denominator(r)) for r in results])

    def verdict(self, value: float | None) -> str:
        if self.passes is None:
            return ""
        return "n/a" if value is None else ("PASS" if self.passes(value) else "FAIL")


RATIOS = (
    Ratio("read_dct/best_1/8", lambda r: r.seconds["read_dct"], lambda r: r.best("sj_1/8", "cv2_1/8"),
          lambda x: x <= BAR_EIGHTH, f"bar <={BAR_EIGHTH:g}"),
    Ratio("jpeg2dct/read_dct", lambda r: r.seconds["jpeg2dct"], lambda r: r.seconds["read_dct"],
          lambda x: x >= BAR_JPEG2DCT, f"bar >={BAR_JPEG2DCT:g}"),
    Ratio("read_dct/best_full", lambda r: r.seconds["read_dct"], lambda r: r.best("sj_full", "cv2_full")),
)


def summarize(results: list[FileResult]) -> dict[str, float | int | str | None]:
    """Medians over files and the ratios for one group of files.

    Returns:
        Dict with ``files``, per-contender medians (seconds), ``best_1/8`` and
        ``best_full`` (per-file fastest binding, median over files), and per
        ratio ``NAME``/``NAME per-file`` (of medians / median per file) with
        ``NAME verdict``/``NAME per-file verdict`` where the ratio has a bar.
    """
    summary: dict[str, float | int | str | None] = {"files": len(results)}
    for c in CONTENDERS:
        summary[c] = _median([r.seconds[c] for r in results])
    summary["best_1/8"] = _median([r.best("sj_1/8", "cv2_1/8") for r in results])
    summary["best_full"] = _median([r.best("sj_full", "cv2_full") for r in results])
    for ratio in RATIOS:
        for key, value in ((ratio.name, ratio.of_medians(results)),
                           (f"{ratio.name} per-file", ratio.median_per_file(results))):
            summary[key] = value
            if ratio.passes is not None:
                summary[f"{key} verdict"] = ratio.verdict(value)
    return summary


def _fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def print_summary(workload: str, results: list[FileResult]) -> dict[str, dict]:
    """Prints (and returns) the summary of a workload: all files, then baseline and progressive apart."""
    groups = {
        "all": results,
        "baseline": [r for r in results if not r.progressive],
        "progressive": [r for r in results if r.progressive],
    }
    out = {f"{label} ({len(g)})": summarize(g) for label, g in groups.items() if g}
    print(f"\n== {workload}: summary (median over files, ms) ==")
    cols = (*CONTENDERS, "best_1/8", "best_full")
    print(f"{'files':<16} " + " ".join(f"{c:>9}" for c in cols))
    for label, s in out.items():
        print(f"{label:<16} " + " ".join(f"{_ms(s[c]):>9}" for c in cols))
    print(f"\n== {workload}: ratios (ratio of medians | median of per-file ratios) ==")
    print(f"{'files':<16} " + " ".join(f"{(r.name + ' ' + r.bar).strip():>29}" for r in RATIOS))
    for label, s in out.items():
        cells = []
        for r in RATIOS:
            cell = " | ".join(
                f"{_fmt_ratio(s[key])} {s.get(key + ' verdict', '')}".strip()
                for key in (r.name, f"{r.name} per-file")
            )
            cells.append(f"{cell:>29}")
        print(f"{label:<16} " + " ".join(cells))
    return out


def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _embedded_libjpeg_turbo(paths: list[Path]) -> str:
    """The "libjpeg-turbo version X" string compiled into a shared library, if any."""
    for path in paths:
        match = re.search(rb"libjpeg-turbo version ([0-9][0-9.]*)", path.read_bytes())
        if match:
            return match.group(1).decode()
    return "unknown"


def machine_info() -> dict[str, str]:
    """CPU, load, library versions: what a reader needs to judge the numbers."""
    cpu = cpu_model()
    cv2_jpeg = next((ln.split(":", 1)[1].strip() for ln in cv2.getBuildInformation().splitlines()
                     if ln.strip().startswith("JPEG:")), "unknown")
    j2d_libs = []
    if jpeg2dct_loads is not None:
        import jpeg2dct  # noqa: PLC0415 - only its location is needed

        j2d_libs = sorted(Path(jpeg2dct.__file__).parents[1].glob("jpeg2dct*.libs/libjpeg*.so*"))
    return {
        "cpu": cpu,
        "cpus_online": str(os.cpu_count()),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "edge_dct": edge_dct.__version__,
        "libjpeg-turbo (system, pkg-config libjpeg; edge_dct links it)": _run("pkg-config", "--modversion", "libjpeg"),
        "simplejpeg": f"{simplejpeg.__version__} (bundles libjpeg-turbo "
        f"{_embedded_libjpeg_turbo([Path(simplejpeg._jpeg.__file__)])})",
        "opencv": f"{cv2.__version__} (JPEG: {cv2_jpeg})",
        "jpeg2dct": "not installed" if jpeg2dct_loads is None
        else f"jpeg2dct-numpy (bundles libjpeg-turbo {_embedded_libjpeg_turbo(j2d_libs)})",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--small", default=DEFAULT_SMALL,
                        help="directory or glob of ~500x375 photos (default: the shared clothing photos)")
    parser.add_argument("--large", type=Path, default=DEFAULT_LARGE,
                        help="directory of large photos (default: %(default)s, from benchmarks/get_photos.sh)")
    parser.add_argument("--min-mp", type=float, default=5.0,
                        help="large workload: keep files with at least this many megapixels (default: 5)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per file and contender (default: 7)")
    parser.add_argument("--json", type=Path, help="also write per-file times and summaries here")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info()
    print("== machine ==")
    for key, value in info.items():
        print(f"{key}: {value}")
    print(f"threads: 1 (OMP_NUM_THREADS=1, cv2.setNumThreads(1)); repeat={args.repeat} after 1 warm-up")
    workloads = {
        "small": small_files(args.small),
        f"large (>= {args.min_mp:g} MP)": large_files(args.large, args.min_mp) if args.large.is_dir() else [],
    }
    report: dict[str, object] = {"machine": info, "repeat": args.repeat, "workloads": {}}
    for workload, paths in workloads.items():
        if not paths:
            print(f"\n== {workload}: no files found, skipped ==")
            continue
        results = [time_file(p, args.repeat) for p in paths]
        print_files(workload, results)
        summary = print_summary(workload, results)
        report["workloads"][workload] = {
            "summary": summary,
            "files": [
                {"path": str(r.path), "width": r.width, "height": r.height, "subsampling": r.subsampling,
                 "progressive": r.progressive, "entropy": r.entropy, "seconds": r.seconds}
                for r in results
            ],
        }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
