#!/usr/bin/env python3
"""Classify every JPEG under a folder (recursively), with a progress bar and optional CSV.

A file that cannot be classified (corrupt, truncated, unreadable) is reported and counted
without stopping the run; the exit code is 1 if any file failed.

Usage:
    python examples/classify_folder.py photos/
    python examples/classify_folder.py photos/ --csv results.csv --workers 4
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

from tqdm import tqdm

import edge_dct

JPEG_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif"}


def find_jpegs(folder: Path) -> list[Path]:
    """Lists the JPEG files under ``folder`` and its subfolders, sorted.

    Args:
        folder: The folder to search.

    Returns:
        Paths of the files whose suffix is a JPEG one (case-insensitive).
    """
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in JPEG_SUFFIXES and p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Classifies the folder's JPEGs on worker threads, printing one line per image.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 if every file was classified, 1 if any failed, 2 on a usage error.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder to search for .jpg/.jpeg files")
    parser.add_argument("--csv", type=Path, metavar="OUT",
                        help="write rows file,label,score,ms,error to this CSV file")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="decoding threads (default: CPU count)")
    parser.add_argument("--model", help="an edge_dct .tflite bundle (default: the embedded model)")
    args = parser.parse_args(argv)

    files = find_jpegs(args.folder) if args.folder.is_dir() else []
    if not files:
        print(f"error: no JPEG files under {args.folder}", file=sys.stderr)
        return 2
    try:
        classifier = edge_dct.Classifier(edge_dct.ClassifierOptions(
            base_options=edge_dct.BaseOptions(model=args.model), max_results=1))
    except edge_dct.EdgeDctError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def classify(path: Path):
        # One Classifier serves all threads: decoding runs in parallel, inference in turn.
        try:
            return classifier.classify(path)
        except Exception as e:  # noqa: BLE001 - report any per-file failure, keep going
            return e

    failed, latencies = 0, []
    with classifier, ThreadPoolExecutor(max(1, args.workers)) as pool, \
            open(args.csv, "w", newline="") if args.csv else nullcontext() as out, \
            tqdm(total=len(files), unit="img", file=sys.stderr) as bar:
        writer = csv.writer(out) if out else None
        if writer:
            writer.writerow(["file", "label", "score", "ms", "error"])
        # map() keeps the files' order while the threads run ahead.
        for path, result in zip(files, pool.map(classify, files)):
            if isinstance(result, Exception):
                failed += 1
                message = str(result)  # edge_dct's errors already name the file
                bar.write(f"error: {message if str(path) in message else f'{path}: {message}'}",
                          file=sys.stderr)
                if writer:
                    writer.writerow([path, "", "", "", str(result)])
            else:
                top, ms = result.top, result.timing.total_ms
                latencies.append(ms)
                bar.write(f"{path}: {top.label} ({top.score:.3f})  latency {ms:.1f} ms")
                if writer:
                    writer.writerow([path, top.label, f"{top.score:.4f}", f"{ms:.2f}", ""])
            bar.update()

    median = f", median latency {statistics.median(latencies):.1f} ms" if latencies else ""
    print(f"{len(files) - failed} classified, {failed} failed{median}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
