#!/usr/bin/env python3
"""Re-coding speed: edge_dct.transcode (DCT domain) vs decode + re-encode (simplejpeg, Pillow).

One thread. Every contender gets the JPEG bytes in memory and writes a JPEG with the same
target tables (libjpeg's standard tables at ``--quality``; ``--for-model``: edge_dct writes
what ``edge-dct transcode --for-model`` writes, ``edge_dct.transcode_for_model``: the embedded
default model's tuned tables fitted to the photo, and only the coefficients the model reads) and the same chroma
subsampling as the input, without Huffman optimization (neither peer optimizes by default;
``--optimize`` turns it on for edge_dct alone). Per file, each contender runs once to warm up,
then ``--repeat`` times interleaved round-robin; the per-file figure is the median, and the
summary gives the median over files of each contender and of the per-file ratios
``peer / transcode``, baseline and progressive inputs apart. ``decode_only`` is edge_dct's
entropy decoding alone (``read_dct``, no output): the floor of any re-code, printed as a share
of the 3x budget (a third of the faster peer's time).

Example:
    python benchmarks/bench_transcode.py --repeat 5 --json /tmp/transcode.json
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import simplejpeg
from PIL import Image

import edge_dct
from edge_dct.bench import cpu_model
from edge_dct.tables import standard_tables

LARGE = Path(os.environ.get("EDGE_DCT_WORK", Path.home() / "edge_dct_work")) / "photos" / "large"
_SIMPLEJPEG_SS = {"444": "444", "422": "422", "420": "420", "440": "440"}


def contenders(data: bytes, info: edge_dct.JpegInfo, quality: int, for_model: bool,
               optimize: bool) -> dict:
    tables = standard_tables(quality)
    ss = info.subsampling if info.subsampling in _SIMPLEJPEG_SS else "420"
    pil_ss = {"444": 0, "422": 1, "420": 2}.get(ss, 2)

    def ours() -> bytes:
        if for_model:  # the whole call: the header read for the photo's region and tables too
            return edge_dct.transcode_for_model(data, optimize=optimize)
        return edge_dct.transcode(data, tables=tables, optimize=optimize)

    def with_simplejpeg() -> bytes:
        return simplejpeg.encode_jpeg(simplejpeg.decode_jpeg(data), quality=quality,
                                      colorsubsampling=_SIMPLEJPEG_SS[ss])

    def with_pillow() -> bytes:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            out = io.BytesIO()
            im.save(out, "JPEG", quality=quality, subsampling=pil_ss)
            return out.getvalue()

    def decode_only() -> bytes:  # the floor: edge_dct's entropy decoding alone, no output
        edge_dct.read_dct(data, dequantize=False)
        return b""

    return {"transcode": ours, "simplejpeg": with_simplejpeg, "pillow": with_pillow,
            "decode_only": decode_only}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", default=str(LARGE), help="folder of photos (default: get_photos.sh's)")
    p.add_argument("--min-mp", type=float, default=5.0)
    p.add_argument("--max-mp", type=float, default=16.5)
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--for-model", action="store_true", help="edge_dct uses the default model's tables")
    p.add_argument("--optimize", action="store_true", help="optimized Huffman tables for edge_dct")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    files = []
    for f in sorted(glob.glob(os.path.join(args.photos, "*"))):
        try:
            info = edge_dct.read_header(f)
        except edge_dct.EdgeDctError:
            continue
        if args.min_mp * 1e6 <= info.width * info.height <= args.max_mp * 1e6:
            files.append((f, info))
    if not files:
        print(f"no {args.min_mp}-{args.max_mp} MP photos in {args.photos} (run benchmarks/get_photos.sh)",
              file=sys.stderr)
        return 2
    rows = []
    for f, info in files:
        data = Path(f).read_bytes()
        fns = contenders(data, info, args.quality, args.for_model, args.optimize)
        times = {k: [] for k in fns}
        sizes = {k: len(fn()) for k, fn in fns.items()}  # warm-up
        for _ in range(args.repeat):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(1e3 * (time.perf_counter() - t0))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"file": os.path.basename(f), "mp": info.width * info.height / 1e6,
                     "progressive": info.progressive, "subsampling": info.subsampling,
                     "ms": med, "bytes": sizes, "input_bytes": len(data)})
        print(f"{os.path.basename(f)[:48]:48s} {info.width}x{info.height} "
              f"{'prog' if info.progressive else 'base'} {info.subsampling}  "
              + "  ".join(f"{k} {v:6.1f} ms" for k, v in med.items())
              + f"  ratios sj {med['simplejpeg'] / med['transcode']:.2f}x pil {med['pillow'] / med['transcode']:.2f}x",
              flush=True)
    print(f"\nCPU: {cpu_model()}, one thread, quality {args.quality}"
          f"{', edge_dct with the model tables' if args.for_model else ''}, {args.repeat} runs per file")
    summary = {}
    for kind in ("baseline", "progressive"):
        sel = [r for r in rows if r["progressive"] == (kind == "progressive")]
        if not sel:
            continue
        s = {k: statistics.median(r["ms"][k] for r in sel) for k in sel[0]["ms"]}
        s.update({f"{peer}/transcode": statistics.median(r["ms"][peer] / r["ms"]["transcode"] for r in sel)
                  for peer in ("simplejpeg", "pillow")})
        # the 3x bar leaves transcode a third of the faster peer's time; decoding alone takes
        s["decode_only/budget"] = statistics.median(
            3 * r["ms"]["decode_only"] / min(r["ms"]["simplejpeg"], r["ms"]["pillow"]) for r in sel)
        s["files"] = len(sel)
        summary[kind] = s
        print(f"{kind:11s} ({len(sel)} files): transcode {s['transcode']:.1f} ms, simplejpeg "
              f"{s['simplejpeg']:.1f} ms ({s['simplejpeg/transcode']:.2f}x), pillow {s['pillow']:.1f} ms "
              f"({s['pillow/transcode']:.2f}x); decoding alone (read_dct) {s['decode_only']:.1f} ms, "
              f"{100 * s['decode_only/budget']:.0f}% of the 3x budget")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "rows": rows, "summary": summary,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
