"""Top-1 parity of ONNX bundles with the LiteRT bundles of the same network (issue #19).

For each ``--onnx`` bundle, through ``edge_dct.Classifier`` (the serving path, ``prepare``
included): top-1 identical to the int8 ``--tflite`` bundle on the clothing photos of the
shared corpus and on held-back Imagenette ``val/`` photos, and top-1 agreement with the fp32
``--reference`` bundle on the held-back photos, with the int8 LiteRT bundle's own agreement
beside it. Rates carry 95% Wilson intervals. With ``--fp32-pair A.onnx B.tflite`` it also
compares two fp32 bundles of one network on the clothing photos: the largest logit difference
relative to the largest logit, and how many top-5 lists are identical.

Usage:
    python benchmarks/onnx_parity.py --onnx default_int8.onnx [more.onnx ...] --reference default_fp32.onnx
        [--tflite edge_dct/models/default.tflite] [--val ~/edge_dct_work/data/imagenette/val] [--count 0]
        [--fp32-pair default_fp32.onnx default_fp32.tflite]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from converters.ship.intervals import wilson_interval  # noqa: E402
from edge_dct import Classifier  # noqa: E402
from edge_dct.bench import cpu_model  # noqa: E402
from edge_dct.bundle import DEFAULT_MODEL  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "corpus" / "photos" / "clothing"


def jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"})


def top1(model: str | Path, photos: list[Path]) -> np.ndarray:
    """(n,) int: the model's top-1 class of each photo."""
    with Classifier.create_from_model_path(str(model), max_results=1) as c:
        return np.array([c.classify(p).categories[0].index for p in photos])


def rate(hits: np.ndarray) -> str:
    lo, hi = wilson_interval(int(hits.sum()), len(hits))
    return f"{int(hits.sum())}/{len(hits)} = {hits.mean():.2%} ({lo:.1%}-{hi:.1%})"


def fp32_pair(a: str, b: str, photos: list[Path]) -> str:
    """Logits and top-5 of two fp32 bundles of one network on ``photos``."""
    with Classifier.create_from_model_path(a, max_results=5) as ca, \
            Classifier.create_from_model_path(b, max_results=5) as cb:
        rel, same = [], 0
        for p in photos:
            data = p.read_bytes()
            la = ca._runner.run({k: v.copy() for k, v in ca._tensors(data, str(p))[0].items()})
            lb = cb._runner.run({k: v.copy() for k, v in cb._tensors(data, str(p))[0].items()})
            rel.append(float(np.abs(la - lb).max() / np.abs(lb).max()))
            same += [c.index for c in ca.classify(data).categories] == [c.index for c in cb.classify(data).categories]
    return (f"{Path(a).name} vs {Path(b).name}: logits within {max(rel):.1e} relative (max |a-b| / max |b|), "
            f"top-5 identical {same}/{len(photos)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", nargs="+", required=True, help="ONNX bundles to compare")
    p.add_argument("--reference", required=True, help="fp32 bundle of the same network (.onnx or .tflite)")
    p.add_argument("--tflite", default=str(DEFAULT_MODEL), help="int8 LiteRT bundle (default: the embedded model)")
    p.add_argument("--val", type=Path, default=Path.home() / "edge_dct_work" / "data" / "imagenette" / "val",
                   help="held-back photos (scripts/get_data.sh)")
    p.add_argument("--count", type=int, default=0, help="held-back photos, seeded sample (0: all)")
    p.add_argument("--fp32-pair", nargs=2, metavar=("A", "B"), help="two fp32 bundles of one network to compare")
    args = p.parse_args(argv)
    clothing, held = jpegs(CLOTHING), jpegs(args.val)
    if not clothing or not held:
        p.error(f"needs the clothing photos ({CLOTHING}) and held-back photos ({args.val}: scripts/get_data.sh)")
    if args.count:
        held = sorted(random.Random(0).sample(held, min(args.count, len(held))))
    print(f"{cpu_model()}; {len(clothing)} clothing photos, {len(held)} held-back photos from {args.val}")
    if args.fp32_pair:
        print(fp32_pair(*args.fp32_pair, clothing))
    lite_c, lite_h, ref_h = top1(args.tflite, clothing), top1(args.tflite, held), top1(args.reference, held)
    print(f"{Path(args.tflite).name} (int8 LiteRT): agreement with fp32 {rate(lite_h == ref_h)}")
    for m in args.onnx:
        c, h = top1(m, clothing), top1(m, held)
        print(f"{Path(m).name}: top-1 = LiteRT int8 on clothing {rate(c == lite_c)}, on held-back "
              f"{rate(h == lite_h)}; agreement with fp32 {rate(h == ref_h)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
