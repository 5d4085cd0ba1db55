"""Command line: ``python -m converters COMMAND ...``.

Zoo and export: ``list``, ``export``, ``bench``. Training (each forwards to its module's own
command line, ``python -m converters COMMAND --help``): ``targets``, ``distill``, ``qat``,
``default-model``, ``frontier`` (measurement of bundles and runs) and ``j4d`` (learned
quantization tables).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path
from typing import Any, Sequence

TRAINING_COMMANDS = {
    "targets": ("converters.train.targets", "the teacher's answers on every training crop, once"),
    "distill": ("converters.train.distill", "distil the RGB teacher into a DCT student; --export a run"),
    "qat": ("converters.train.qat", "quantization-aware fine-tuning: pool, train, export"),
    "default-model": ("converters.train.default_model", "rebuild the embedded default model"),
    "frontier": ("converters.train.frontier", "speed against fidelity of DCT bundles, learning curves, plots"),
    "j4d": ("converters.train.j4d", "learn quantization tables for the default model by gradient (J4D, #17)"),
}
"""Command -> (module whose ``main(argv)`` runs it, help line)."""


def _override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # plain string, e.g. weights=imagenet


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m converters",
                                description="edge_dct model zoo, training, export and benchmarks.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_line) in TRAINING_COMMANDS.items():
        sub.add_parser(name, help=help_line, add_help=False)

    ls = sub.add_parser("list", help="list registered models")
    ls.add_argument("--profile", action="store_true", help="also build each model and print params and MACs")

    ex = sub.add_parser("export", help="export a registry model to a .tflite (or .onnx) bundle and print its report")
    ex.add_argument("model", help="registry name (see `list`); with --format onnx also `default` (the embedded "
                                  "default model) or a .tflite bundle rebuilt from its metadata")
    ex.add_argument("out", type=Path, help="output .tflite (or .onnx) path")
    ex.add_argument("--format", choices=("tflite", "onnx"), default="tflite",
                    help="bundle format (onnx: NHWC float32 I/O, dynamic batch; converters/README.md)")
    ex.add_argument("--quantize", choices=("fp32", "fp16", "int8"), default=None,
                    help="precision (default: int8 for tflite, fp32 for onnx; onnx int8 is QDQ with float I/O)")
    ex.add_argument(
        "--set",
        dest="overrides",
        type=_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder override, Python literal values, e.g. --set grid=(14,14) --set num_classes=10",
    )
    ex.add_argument("--calibration", metavar="DIR_OR_GLOB",
                    help="int8 calibration photos (default: half of the shared corpus photos)")
    ex.add_argument("--evaluation", metavar="DIR_OR_GLOB",
                    help="photos for the fp32-vs-exported agreement (default: the other half)")
    ex.add_argument("--count", type=int, default=300, help="photos sampled from each of those sets")
    ex.add_argument("--threads", type=int, nargs="*", default=[1], help="LiteRT threads to time (default: 1)")
    ex.add_argument("--no-gpu-check", action="store_true", help="skip the fp16 GPU-delegate compatibility analysis")

    be = sub.add_parser("bench", help="LiteRT speed table of the zoo vs the paper's FPS ratios")
    be.add_argument("--group", nargs="+", default=None, metavar="GROUP",
                    help="speed groups of the registry (`list` shows them; default: all)")
    be.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    be.add_argument("--quantize", nargs="+", choices=("fp32", "fp16", "int8"), default=["fp32", "int8"])
    be.add_argument("--runs", type=int, default=15, help="timed runs per configuration")
    be.add_argument("--passes", type=int, default=3, help="passes over all models; each cell is the median of the passes' medians")
    be.add_argument("--cache", type=Path, default=None, help="folder for converted models (reused when present)")
    return p


def _export_onnx(args: argparse.Namespace) -> Any:
    """``export --format onnx``: a registry model, or the model of a bundle (``default``: the
    embedded default model, calibrated like its recipe for int8)."""
    from .data.photos import photo_set
    from .ship.onnx_export import export_onnx, model_from_bundle

    quantize = args.quantize or "fp32"
    calibration = photo_set(args.calibration, args.count) if args.calibration else None
    if args.model != "default" and not args.model.endswith(".tflite"):
        try:
            return export_onnx(args.model, args.out, quantize=quantize, calibration=calibration,
                               overrides=dict(args.overrides))
        except (KeyError, ValueError) as e:
            raise SystemExit(f"error: {e.args[0] if e.args else e}") from None
    from .train.default_model import DefaultModelConfig

    recipe = DefaultModelConfig()
    bundle = recipe.out if args.model == "default" else Path(args.model)
    model, meta = model_from_bundle(bundle)
    if quantize == "int8" and calibration is None and args.model == "default":
        import random

        from .data.splits import jpegs

        # the recipe's calibration photos (build_default_model: Random(0).sample of Imagenette train/)
        train = jpegs(recipe.data / "imagenette", "train")
        if not train:
            raise SystemExit(f"error: no Imagenette photos under {recipe.data}: "
                             "run scripts/get_data.sh or pass --calibration")
        calibration = random.Random(0).sample(train, min(recipe.calibration, len(train)))
    # int8: the bundle's own activation scales where its tensors match (converters/ship/onnx_ranges.py)
    return export_onnx(model, args.out, quantize=quantize, calibration=calibration, metadata=meta,
                       reference=bundle if quantize == "int8" else None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TRAINING_COMMANDS:
        return importlib.import_module(TRAINING_COMMANDS[argv[0]][0]).main(argv[1:])
    args = _parser().parse_args(argv)
    import converters
    from converters.zoo.registry import accepted_overrides

    if args.command == "list":
        for name in converters.list_models():
            cfg = converters.get_config(name)
            line = f"{name:32s} inputs={','.join(cfg.input_names):8s} {cfg.description}"
            if cfg.speed_group:
                line += f"  [speed group {cfg.speed_group}{', baseline' if cfg.baseline else ''}]"
            line += f"  (overrides: {', '.join(accepted_overrides(name))})"
            if args.profile:
                prof = converters.profile(name)
                line += f"  [{prof.params / 1e6:.2f} M params, {prof.macs / 1e9:.3f} GMACs]"
            print(line)
    elif args.command == "export" and args.format == "onnx":
        print(_export_onnx(args))
    elif args.command == "export":
        from .data.photos import photo_set

        if args.model == "default" or args.model.endswith(".tflite"):
            raise SystemExit("error: a bundle's model is rebuilt for --format onnx only; the TFLite "
                             "default model is `python -m converters default-model`")
        report = converters.export(
            args.model,
            args.out,
            quantize=args.quantize or "int8",
            calibration=photo_set(args.calibration, args.count) if args.calibration else None,
            evaluation=photo_set(args.evaluation, args.count, seed=1) if args.evaluation else None,
            overrides=dict(args.overrides),
            threads=tuple(args.threads),
            check_gpu=not args.no_gpu_check,
        )
        print(report)
    else:
        from .ship.speed_table import run_bench

        try:
            print(run_bench(args.group, args.quantize, args.threads, args.cache, args.runs, args.passes))
        except KeyError as e:
            raise SystemExit(f"error: {e.args[0]}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
