"""``edge-dct bench``: the DCT pipeline against the RGB EfficientNet-Lite0 pipeline.

Both pipelines classify the same in-memory JPEG bytes with LiteRT on the same number of
threads:

* DCT: ``Classifier.classify`` = ``prepare`` (C core, DCT domain) + the bundle's inference;
* RGB: libjpeg-turbo decode with DCT scaling where it helps (the largest 1/2, 1/4 or 1/8
  reduction that keeps the shorter side >= 256; OpenCV, else Pillow's draft mode), area
  resize of the shorter side to 256, centre crop 224, int8 quantization, and the RGB
  EfficientNet-Lite0 int8 bundle (``python -m converters export efficientnet_lite0_rgb``).

Medians over files of per-file medians, and the speed-up RGB / DCT, are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge_dct import _jpeg
from edge_dct.classifier import Classifier, ClassifierOptions
from edge_dct.jpeg import read_header
from edge_dct.runtime import _backend

DEFAULT_RGB_MODEL = Path.home() / "edge_dct_work" / "bundles" / "efficientnet_lite0_rgb_int8.tflite"


def _decoder() -> tuple[str, Callable[[bytes, int], np.ndarray]]:
    """(name, decode(data, reduction) -> RGB uint8) with libjpeg-turbo's DCT scaling."""
    try:
        import cv2

        cv2.setNumThreads(1)
        flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}

        def decode(data: bytes, reduction: int) -> np.ndarray:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags[reduction])
            return bgr[..., ::-1]

        return "opencv", decode
    except ImportError:
        import io

        from PIL import Image

        def decode(data: bytes, reduction: int) -> np.ndarray:
            img = Image.open(io.BytesIO(data))
            img.draft("RGB", (img.width // reduction, img.height // reduction))
            return np.asarray(img.convert("RGB"))

        return "pillow", decode


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    try:
        import cv2

        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    except ImportError:
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize(size, Image.BOX))


class RgbPipeline:
    """Decode (DCT-scaled) -> resize -> crop -> quantize -> LiteRT, the RGB baseline."""

    def __init__(self, model: Path, threads: int):
        content = model.read_bytes()
        found, _, reason = _jpeg.find_metadata(content, str(model), "edge_dct")
        if found is None:
            raise SystemExit(f"error: {model}: {reason}")
        meta = json.loads(content[found[0]:found[0] + found[1]])
        if meta.get("layout") != "rgb":
            raise SystemExit(f"error: {model} is not an RGB pixel bundle (layout {meta.get('layout')})")
        self.mean = np.asarray(meta["normalize"]["mean"], np.float32)
        self.std = np.asarray(meta["normalize"]["std"], np.float32)
        self.crop = 8 * meta["grid"][0]
        self.shorter = meta["resize"]["size"]
        backend, _ = _backend()
        self.interp = backend.interpreter(model_content=content, num_threads=threads)
        self.runner = self.interp.get_signature_runner()
        (self.name, d), = self.runner.get_input_details().items()
        self.dtype = np.dtype(d["dtype"])
        self.scale, self.zero = d["quantization"]
        self.decoder_name, self.decode = _decoder()

    def preprocess(self, data: bytes) -> np.ndarray:
        info = read_header(data)
        shorter = min(info.width, info.height)
        reduction = max([r for r in (1, 2, 4, 8) if shorter // r >= self.shorter] or [1])
        rgb = self.decode(data, reduction)
        h, w = rgb.shape[:2]
        s = self.shorter / min(h, w)
        rw, rh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
        rgb = _resize(rgb, (rw, rh))
        top, left = (rh - self.crop) // 2, (rw - self.crop) // 2
        x = (rgb[top:top + self.crop, left:left + self.crop].astype(np.float32) - self.mean) / self.std
        if self.dtype == np.int8:
            x = np.clip(np.round(x / self.scale) + self.zero, -128, 127).astype(np.int8)
        return x[None]

    def infer(self, x: np.ndarray) -> np.ndarray:
        return next(iter(self.runner(**{self.name: x}).values()))


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def run(paths: list[Path], model: str | None, rgb_model: Path, threads: int, repeat: int) -> dict:
    clf = Classifier(ClassifierOptions(model=model, num_threads=threads, max_results=1))
    rgb = RgbPipeline(rgb_model, threads)
    rows = []
    for p in paths:
        data = p.read_bytes()
        tensors = {}

        def dct_prepare() -> None:
            tensors["t"] = clf._tensors(data, str(p))[0]

        def rgb_pre() -> None:
            tensors["x"] = rgb.preprocess(data)

        row = {
            "file": str(p),
            "dct_prepare": _median_ms(dct_prepare, repeat),
            "dct_infer": _median_ms(lambda: clf._runner.run(tensors["t"]), repeat),
            "dct_total": _median_ms(lambda: clf.classify(data), repeat),
            "rgb_pre": _median_ms(rgb_pre, repeat),
            "rgb_infer": _median_ms(lambda: rgb.infer(tensors["x"]), repeat),
            "rgb_total": _median_ms(lambda: rgb.infer(rgb.preprocess(data)), repeat),
        }
        rows.append(row)
    clf.close()
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "file"}
    med["speedup"] = statistics.median(r["rgb_total"] / r["dct_total"] for r in rows)
    return {"files": len(rows), "threads": threads, "decoder": rgb.decoder_name,
            "medians_ms": med, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-dct bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="JPEG files or directories")
    parser.add_argument("--model", help="DCT bundle (default: the embedded model)")
    parser.add_argument("--rgb-model", type=Path, default=DEFAULT_RGB_MODEL,
                        help="RGB EfficientNet-Lite0 int8 bundle (default: %(default)s; make it with "
                             "`python -m converters export efficientnet_lite0_rgb --quantize int8`)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="LiteRT threads, e.g. 1 2")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per file (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    from edge_dct.cli import expand_paths

    paths = [Path(p) for p in expand_paths(args.paths)]
    if not paths:
        parser.error("no JPEG files")
    if not args.rgb_model.is_file():
        parser.error(f"RGB model not found: {args.rgb_model} (see --help)")
    results = []
    for t in args.threads:
        r = run(paths, args.model, args.rgb_model, t, args.repeat)
        results.append(r)
        m = r["medians_ms"]
        print(f"{len(paths)} files, {t} thread(s), RGB decoder {r['decoder']}; medians in ms")
        print(f"  DCT pipeline: prepare {m['dct_prepare']:6.2f} + inference {m['dct_infer']:6.2f}"
              f" = {m['dct_total']:6.2f}")
        print(f"  RGB pipeline: decode+resize {m['rgb_pre']:6.2f} + inference {m['rgb_infer']:6.2f}"
              f" = {m['rgb_total']:6.2f}")
        print(f"  speed-up (RGB / DCT, median of per-file ratios): {m['speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
