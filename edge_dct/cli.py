"""The ``edge-dct`` command (also ``python -m edge_dct``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np

from edge_dct.errors import EdgeDctError
from edge_dct.jpeg import read_dct

_COMPONENT_NAMES = {
    "ycbcr": ("Y", "Cb", "Cr"),
    "gray": ("Y",),
    "rgb": ("R", "G", "B"),
    "cmyk": ("C", "M", "Y", "K"),
    "ycck": ("Y", "Cb", "Cr", "K"),
}


def _plane_stats(plane: np.ndarray) -> dict:
    """Statistics of one (H, W, 64) coefficient plane."""
    dc = plane[..., 0].astype(np.float64)
    ac = plane[..., 1:]
    return {
        "blocks": [int(plane.shape[0]), int(plane.shape[1])],
        "dc_mean": round(float(dc.mean()), 3),
        "dc_std": round(float(dc.std()), 3),
        "ac_nonzero_fraction": round(float(np.count_nonzero(ac)) / max(ac.size, 1), 4),
        "ac_abs_mean": round(float(np.abs(ac, dtype=np.float64).mean()), 3),
        "min": int(plane.min()),
        "max": int(plane.max()),
    }


def cmd_info(args: argparse.Namespace) -> int:
    """Prints header fields and per-component coefficient statistics."""
    failed = 0
    for path in args.paths:
        try:
            img = read_dct(path, strict=not args.lenient)
        except EdgeDctError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        info = img.info
        names = _COMPONENT_NAMES.get(info.color_space, ())
        report = {
            "file": str(path),
            "size": [info.width, info.height],
            "components": info.num_components,
            "color_space": info.color_space,
            "subsampling": info.subsampling,
            "sampling": [list(s) for s in info.sampling],
            "progressive": info.progressive,
            "arithmetic": info.arithmetic,
            "restart_interval": info.restart_interval,
            "orientation": info.orientation,
            "quant_dc": [int(q[0, 0]) for q in info.quant_tables],
            "planes": {
                (names[i] if i < len(names) else str(i)): _plane_stats(p)
                for i, p in enumerate(img.planes)
            },
            "warnings": list(img.warnings),
        }
        if args.json:
            print(json.dumps(report))
            continue
        print(f"{path}")
        print(f"  {info.width}x{info.height}  {info.color_space}  {info.subsampling}  "
              f"{'progressive' if info.progressive else 'sequential'}  "
              f"{'arithmetic' if info.arithmetic else 'huffman'}  "
              f"restart={info.restart_interval}  orientation={info.orientation}")
        for name, s in report["planes"].items():
            print(f"  {name:>3}: blocks {s['blocks'][0]}x{s['blocks'][1]}  "
                  f"DC mean {s['dc_mean']:8.2f} std {s['dc_std']:7.2f}  "
                  f"AC nonzero {100 * s['ac_nonzero_fraction']:5.1f}%  "
                  f"|AC| mean {s['ac_abs_mean']:6.2f}  range [{s['min']}, {s['max']}]")
        for w in img.warnings:
            print(f"  warning: {w}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-dct", description="Classify JPEG photos straight from their DCT coefficients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="header and coefficient statistics of JPEG files")
    info.add_argument("paths", nargs="+", help="JPEG files")
    info.add_argument("--json", action="store_true", help="one JSON object per file")
    info.add_argument("--lenient", action="store_true",
                      help="decode corrupt/truncated files as far as possible (strict=False)")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
