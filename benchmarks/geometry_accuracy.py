"""Accuracy of prepare()'s DCT-domain geometry against a pixel-domain reference.

Reference = libjpeg-turbo full decode (Pillow) -> EXIF orientation -> area resize
(INTER_AREA) -> centre crop -> YCbCr -> blockwise DCT. prepare()'s un-normalized
coefficients are turned back into pixels (IDCT) and compared by PSNR, per channel, on:
the shared ~500x375 photos, generated files of every subsampling and orientation, and the
5-16 MP photos. Bars (issue #3): median Y PSNR >= 34 dB, worst >= 28 dB; chroma likewise.

Usage: python benchmarks/geometry_accuracy.py [--large DIR] [--picture OUT.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_decode import DEFAULT_LARGE, large_files  # noqa: E402
from tests import oracle  # noqa: E402
from tests.conftest import clothing_photos, synthetic_image  # noqa: E402
from tests.test_geometry import (SPEC, SUBSAMPLINGS, geometry_psnr, prepared_ycbcr,  # noqa: E402
                                 reference_ycbcr)
from tests.test_header import exif_app1, with_segment  # noqa: E402


def report(name: str, scores: list[tuple[float, float, float]]) -> bool:
    a = np.array(scores)
    med, worst = np.median(a, 0), a.min(0)
    ok = bool((med >= 34).all() and (worst >= 28).all())
    print(f"{name:34s} n={len(a):3d}  median Y/Cb/Cr {med[0]:5.1f} {med[1]:5.1f} {med[2]:5.1f} dB"
          f"   worst {worst[0]:5.1f} {worst[1]:5.1f} {worst[2]:5.1f} dB   {'PASS' if ok else 'FAIL'}")
    return ok


def generated() -> list[bytes]:
    files = []
    for ss, sampling in SUBSAMPLINGS.items():
        for orientation in range(1, 9):
            h, w = (480, 640) if orientation % 2 else (333, 517)
            data = oracle.encode(synthetic_image(h, w, seed=orientation), quality=90, sampling=sampling)
            files.append(with_segment(data, exif_app1(orientation)) if orientation > 1 else data)
    return files


def picture(data: bytes, out: Path) -> None:
    """Side by side: reference Y, prepare() Y (both 224x224), and 8x their difference."""
    from PIL import Image

    ref, got = reference_ycbcr(data, SPEC)[0], prepared_ycbcr(data, SPEC)[0]
    diff = np.clip(128 + 8 * (got - ref), 0, 255)
    row = np.concatenate([ref + 128, np.full((224, 8), 255), got + 128, np.full((224, 8), 255), diff], 1)
    Image.fromarray(np.clip(row, 0, 255).astype(np.uint8)).resize((row.shape[1] * 2, 448)).save(out)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=Path, default=DEFAULT_LARGE)
    parser.add_argument("--picture", type=Path, help="write a reference/prepare/difference PNG")
    args = parser.parse_args(argv)
    ok = report("shared photos (~400x533)", [geometry_psnr(p.read_bytes()) for p in clothing_photos()])
    ok &= report("generated (5 subsamplings x 8 EXIF)", [geometry_psnr(d) for d in generated()])
    large = large_files(args.large, 5.0) if args.large.is_dir() else []
    if large:
        ok &= report("photos >= 5 MP", [geometry_psnr(p.read_bytes()) for p in large])
    if args.picture:
        picture((large or clothing_photos())[0].read_bytes(), args.picture)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
