"""Decode speed of two builds of ``edge_dct._jpeg`` in one process (wheel vs source build).

Loads each extension file under its own module, then times ``read_dct`` (the builtin entropy
decoder, and libjpeg-turbo's with ``builtin=False``) and ``read_header`` on the same JPEG bytes,
interleaved round-robin so background load hits both alike.  Prints per-workload medians and
the ratio wheel / source (bar: within 5%).

Usage:
    python scripts/wheels/bench_builds.py SOURCE_EXT.so WHEEL_EXT.so [--repeat 9] [DIR ...]
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

from edge_dct.bench import cpu_model  # also imports edge_dct, whose errors the extensions load

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIRS = [ROOT.parent / "shared" / "corpus" / "photos",
                Path(os.environ.get("EDGE_DCT_WORK", Path.home() / "edge_dct_work")) / "photos" / "large"]


def load(path: str, alias: str) -> ModuleType:
    """Imports the extension file ``path`` as a fresh module (its init is PyInit__jpeg)."""
    loader = importlib.machinery.ExtensionFileLoader("_jpeg", path)
    spec = importlib.util.spec_from_file_location("_jpeg", path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules.pop("_jpeg", None)
    mod.__name__ = alias
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("wheel")
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()

    builds = {"source": load(args.source, "source"), "wheel": load(args.wheel, "wheel")}
    files = sorted(p for d in (args.dirs or DEFAULT_DIRS) if d.is_dir()
                   for p in d.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    work = []
    for p in files:
        data = p.read_bytes()
        try:
            info = builds["source"].read_header(data, str(p))
        except Exception:  # noqa: BLE001 - unreadable files are not a workload
            continue
        mp = info["width"] * info["height"] / 1e6
        kind = ("progressive" if info.get("progressive") else "baseline") + (" >=2MP" if mp >= 2 else " <2MP")
        work.append((kind, p, data))
    calls = {"read_dct": lambda m, d, n: m.read_dct(d, n),
             "read_dct builtin=False": lambda m, d, n: m.read_dct(d, n, builtin=False)}
    print(f"CPU: {cpu_model()}; {len(work)} files; repeat {args.repeat}; one thread")
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for call, fn in calls.items():
        for kind, p, data in work:
            times = {b: [] for b in builds}
            for b, m in builds.items():
                fn(m, data, str(p))  # warm-up
            for _ in range(args.repeat):
                for b, m in builds.items():
                    t = time.perf_counter()
                    fn(m, data, str(p))
                    times[b].append(time.perf_counter() - t)
            per = results.setdefault((call, kind), {b: [] for b in builds})
            for b in builds:
                per[b].append(statistics.median(times[b]))
    print(f"{'call':24s} {'workload':22s} {'files':>5s} {'source ms':>10s} {'wheel ms':>9s} {'wheel/source':>12s}")
    worst = 0.0
    for (call, kind), per in sorted(results.items()):
        ratios = [w / s for s, w in zip(per["source"], per["wheel"])]
        ratio = statistics.median(ratios)
        worst = max(worst, ratio)
        print(f"{call:24s} {kind:22s} {len(ratios):5d} {1e3 * statistics.median(per['source']):10.2f} "
              f"{1e3 * statistics.median(per['wheel']):9.2f} {ratio:12.3f}")
    print(f"worst median ratio wheel/source: {worst:.3f} (bar <= 1.05)")


if __name__ == "__main__":
    main()
