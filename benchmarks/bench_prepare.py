"""prepare() (JPEG -> 28x28 DCT model input) against the strongest pixel-path peers.

One thread, the same in-memory bytes for every contender, medians of interleaved runs:

* large photos (>= 5 MP): prepare vs libjpeg-turbo's 1/8-scaled decode (OpenCV
  IMREAD_REDUCED_COLOR_8, simplejpeg min_height/min_width) and its full decode;
  bars: prepare <= 1.1x the best 1/8 decode and <= 0.6x the best full decode;
* ~500x375 photos: prepare vs the RGB pipeline's decode + resize (INTER_AREA, shorter
  side 256) + centre crop 224 (the work in front of EfficientNet-Lite0); bar <= 1.0x;
* webcam-style MJPEG frames (640x480 and 1280x720, 4:2:2, quality 80, made here from the
  large photos): reported;
* training augmentation (random resized crop + flip through prepare): images/s.

Usage: python benchmarks/bench_prepare.py [--small GLOB] [--large DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import Image

import edge_dct
from bench_decode import DEFAULT_LARGE, DEFAULT_SMALL, large_files, machine_info, small_files, time_calls
from edge_dct.augment import Augmenter
from edge_dct.prepare import allocate, prepare
from edge_dct.spec import dct_spec

cv2.setNumThreads(1)
SPEC = dct_spec((28, 28), "split", "all64")
BAR_EIGHTH, BAR_FULL, BAR_RGB = 1.1, 0.6, 1.0


def rgb_pipeline(decode):
    """decode -> resize shorter side to 256 (INTER_AREA) -> centre crop 224."""
    def run(data: bytes) -> np.ndarray:
        img = decode(data)
        h, w = img.shape[:2]
        s = 256 / min(h, w)
        rw, rh = round(w * s), round(h * s)
        img = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        top, left = (rh - 224) // 2, (rw - 224) // 2
        return np.ascontiguousarray(img[top:top + 224, left:left + 224])
    return run


def cv2_full(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def sj_full(data: bytes) -> np.ndarray:
    return simplejpeg.decode_jpeg(data)


def contenders(data: bytes) -> dict:
    info = edge_dct.read_header(data)
    out = allocate(SPEC)
    eh, ew = math.ceil(info.height / 8), math.ceil(info.width / 8)
    buf = np.frombuffer(data, np.uint8)
    return {
        "prepare": lambda: prepare(data, SPEC, out=out),
        "cv2_1/8": lambda: cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_8),
        "sj_1/8": lambda: simplejpeg.decode_jpeg(data, min_height=eh, min_width=ew),
        "cv2_full": lambda: cv2_full(data),
        "sj_full": lambda: sj_full(data),
        "rgb_cv2": lambda: rgb_pipeline(cv2_full)(data),
        "rgb_sj": lambda: rgb_pipeline(sj_full)(data),
    }


def run_workload(name: str, blobs: list[tuple[str, bytes, bool]], repeat: int) -> list[dict]:
    rows = []
    for label, data, progressive in blobs:
        calls = contenders(data)
        for call in calls.values():
            call()  # warm-up
        med = time_calls(calls, repeat)
        med = {k: v * 1e3 for k, v in med.items()}
        med["best_1/8"] = min(med["cv2_1/8"], med["sj_1/8"])
        med["best_full"] = min(med["cv2_full"], med["sj_full"])
        med["best_rgb"] = min(med["rgb_cv2"], med["rgb_sj"])
        rows.append({"file": label, "progressive": progressive, **med})
    print(f"\n== {name}: per file (ms, median of {repeat}) ==")
    print(f"{'file':44s} {'prepare':>8s} {'best1/8':>8s} {'bestfull':>8s} {'RGBpipe':>8s}")
    for r in rows:
        print(f"{r['file'][-44:]:44s} {r['prepare']:8.2f} {r['best_1/8']:8.2f} "
              f"{r['best_full']:8.2f} {r['best_rgb']:8.2f}{'  (progressive)' if r['progressive'] else ''}")
    return rows


def summarize(name: str, rows: list[dict], bars: dict[str, float]) -> None:
    groups = {"all": rows, "baseline": [r for r in rows if not r["progressive"]],
              "progressive": [r for r in rows if r["progressive"]]}
    print(f"\n== {name}: median over files of per-file ratios ==")
    for gname, g in groups.items():
        if not g:
            continue
        parts = []
        for peer, bar in bars.items():
            ratio = statistics.median(r["prepare"] / r[peer] for r in g)
            verdict = "" if bar is None else (" PASS" if ratio <= bar else " FAIL") + f" (bar <= {bar})"
            parts.append(f"prepare/{peer} {ratio:.2f}x{verdict}")
        med = statistics.median(r["prepare"] for r in g)
        print(f"  {gname} ({len(g)} files, prepare median {med:.2f} ms): " + "; ".join(parts))


def mjpeg_frames(paths: list[Path], size: tuple[int, int], count: int = 8) -> list[tuple[str, bytes, bool]]:
    """Webcam-like frames: photos resized to `size`, 4:2:2 at quality 80 (Pillow)."""
    frames = []
    for p in paths[:count]:
        img = Image.open(p).convert("RGB").resize(size, Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80, subsampling=1)
        frames.append((f"{p.stem[-28:]}@{size[0]}x{size[1]}", buf.getvalue(), False))
    return frames


def augment_rate(paths: list[Path], seconds: float = 3.0) -> float:
    blobs = [p.read_bytes() for p in paths]
    aug = Augmenter(SPEC, seed=0)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        aug(blobs[n % len(blobs)])
        n += 1
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", default=DEFAULT_SMALL, help="glob or directory of ~500x375 photos")
    parser.add_argument("--large", type=Path, default=DEFAULT_LARGE, help="directory of large photos")
    parser.add_argument("--min-mp", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    print("== machine ==")
    for k, v in machine_info().items():
        print(f"{k}: {v}")
    print("spec: grid 28x28, split, all 64 channels, shorter side 256 + centre crop; 1 thread")

    large = large_files(args.large, args.min_mp) if args.large.is_dir() else []
    small = small_files(args.small)
    if large:
        blobs = [(p.name, p.read_bytes(), edge_dct.read_header(p).progressive) for p in large]
        rows = run_workload(f"large (>= {args.min_mp:g} MP)", blobs, args.repeat)
        summarize("large", rows, {"best_1/8": BAR_EIGHTH, "best_full": BAR_FULL, "best_rgb": None})
    if small:
        blobs = [(str(p.relative_to(p.parents[1])), p.read_bytes(), False) for p in small]
        rows = run_workload("small (~500x375)", blobs, args.repeat)
        summarize("small", rows, {"best_rgb": BAR_RGB, "best_1/8": None, "best_full": None})
    sources = large or small
    for size in ((640, 480), (1280, 720)):
        rows = run_workload(f"MJPEG-style frames {size[0]}x{size[1]}", mjpeg_frames(sources, size),
                            args.repeat)
        summarize(f"frames {size[0]}x{size[1]}", rows, {"best_rgb": None, "best_1/8": None})
    if small:
        print(f"\n== augmentation (random resized crop + flip via prepare, 1 thread) ==\n"
              f"  {augment_rate(small):.0f} images/s on the ~500x375 photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
