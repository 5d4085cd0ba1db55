"""``edge-dct bench``: the DCT pipeline against the RGB EfficientNet-Lite0 pipeline.

Both pipelines classify the same in-memory JPEG bytes with LiteRT on the same number of
threads:

* DCT: ``Classifier.classify`` = ``prepare`` (C core, DCT domain) + the bundle's inference;
* RGB: libjpeg-turbo decode with DCT scaling where it helps (the largest 1/2, 1/4 or 1/8
  reduction that keeps the shorter side >= 256; OpenCV, else Pillow's draft mode), area
  resize of the shorter side to 256, centre crop 224, int8 quantization, and the RGB
  EfficientNet-Lite0 int8 bundle.

The RGB bundle is made by ``converters`` (TensorFlow): on first use, when a source checkout
with TensorFlow and Keras installed is at hand, it is exported into the work folder
(``$EDGE_DCT_WORK/bundles``, default ``~/edge_dct_work/bundles``) and reused; otherwise the
command that makes it is printed. Medians over files of per-file medians, and the speed-up
RGB / DCT, are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge_dct.batching import pipelined
from edge_dct.bundle import read_metadata
from edge_dct.classifier import Classifier
from edge_dct.errors import EdgeDctError
from edge_dct.jpeg import read_header
from edge_dct.native_log import set_verbose
from edge_dct.onnx_bundle import is_onnx, read_onnx_metadata
from edge_dct.options import BaseOptions, ClassifierOptions
from edge_dct.paths import expand_paths, work_dir
from edge_dct.runtime import open_interpreter

RGB_MODEL = "efficientnet_lite0_rgb"
"""The converters registry name of the RGB baseline."""

SOURCE_ROOT = Path(__file__).resolve().parents[1]
"""The checkout edge_dct runs from; ``converters/`` is there when installed in place."""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for benchmark reports; else what ``platform``
    knows (processor or machine)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_rgb_model() -> Path:
    """Where the RGB int8 bundle is cached: ``work_dir()/bundles``."""
    return work_dir() / "bundles" / f"{RGB_MODEL}_int8.tflite"


def export_command(out: Path) -> list[str]:
    """The command (run in the source checkout) that writes the RGB int8 bundle to ``out``."""
    return [sys.executable, "-m", "converters", "export", RGB_MODEL, str(out),
            "--quantize", "int8", "--no-gpu-check"]


def can_export() -> bool:
    """Whether ``converters`` can run here: a source checkout beside edge_dct, and TensorFlow
    and Keras importable (looked up, not imported)."""
    return ((SOURCE_ROOT / "converters" / "__main__.py").is_file()
            and all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "keras")))


def ensure_rgb_model(path: Path) -> Path:
    """The RGB bundle at ``path``, exported there first when it is missing and can be made.

    The export runs ``converters`` in a subprocess (TensorFlow never enters this process)
    into a temporary name, renamed when complete.

    Args:
        path: The bundle file (normally ``default_rgb_model()``).

    Returns:
        ``path``, which then exists.

    Raises:
        SystemExit: It is missing and cannot be exported here (the message gives the one
            command that makes it), or the export failed (with the exporter's last lines).
    """
    if path.is_file():
        return path
    if not can_export():
        command = shlex.join(["python", *export_command(path)[1:]])
        raise SystemExit(f"error: the RGB baseline bundle {path} is missing and cannot be made "
                         "here (converters needs a source checkout with TensorFlow and Keras: "
                         "pip install -r requirements-converters.txt). Make it in the "
                         f"repository with:\n    {command}")
    print(f"edge-dct bench: first use, exporting the RGB baseline bundle to {path} "
          "(a few minutes; reused afterwards)", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    run = subprocess.run(export_command(partial), cwd=SOURCE_ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if run.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = "\n".join(run.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"error: exporting the RGB baseline bundle failed "
                         f"({shlex.join(export_command(path))}):\n{tail}")
    os.replace(partial, path)
    return path


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

    def __init__(self, model: Path, threads: int, accelerator: str = "cpu"):
        content = model.read_bytes()
        self.onnx = is_onnx(content)
        try:
            meta = (read_onnx_metadata if self.onnx else read_metadata)(content, str(model))
        except EdgeDctError as e:
            raise SystemExit(f"error: {e}") from e
        if meta.get("layout") != "rgb":
            raise SystemExit(f"error: {model} is not an RGB pixel bundle (layout {meta.get('layout')})")
        self.mean = np.asarray(meta["normalize"]["mean"], np.float32)
        self.std = np.asarray(meta["normalize"]["std"], np.float32)
        self.crop = 8 * meta["grid"][0]
        self.shorter = meta["resize"]["size"]
        self.decoder_name, self.decode = _decoder()
        if self.onnx:  # the same ONNX Runtime provider as the DCT bundle's
            from edge_dct.onnx_runtime import session

            self.session, self.accelerator = session(content, str(model), accelerator, threads)
            # throughput mode on the CPU provider: parallel streams, one intra-op thread each
            self.stream = session(content, str(model), "cpu", 1)[0] if self.accelerator == "cpu" else None
            self.name = self.session.get_inputs()[0].name
            self.dtype, self.scale, self.zero = np.dtype(np.float32), 0.0, 0
            return
        self.accelerator = "cpu"
        self.interp, self.runner = open_interpreter(content, threads)
        (self.name, d), = self.runner.get_input_details().items()
        self.dtype = np.dtype(d["dtype"])
        self.scale, self.zero = d["quantization"]

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

    def infer(self, x: np.ndarray, stream: bool = False) -> np.ndarray:
        """Logits of a batch ``x`` (N, H, W, 3) (N > 1 for ONNX bundles only); ``stream``: on
        the one-intra-op-thread session of throughput mode's streams."""
        if self.onnx:
            return (self.stream if stream and self.stream else self.session).run(None, {self.name: x})[0]
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
    clf = Classifier(ClassifierOptions(base_options=BaseOptions(model=model, num_threads=threads),
                                       max_results=1))
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


def throughput(paths: list[Path], model: str | None, rgb_model: Path, threads: int | None,
               accelerator: str, batch_size: int | None, workers: int, images: int, repeat: int = 5) -> dict:
    """Images/s of one-by-one classification and of throughput mode, DCT and RGB pipelines on
    the same backend and accelerator, over ``images`` photos (``paths`` repeated): the median
    of ``repeat`` passes of each, the four kinds of pass interleaved so that a noisy spell of a
    shared machine does not fall on one of them. ``batch_size`` None: 1 where the network runs
    on the CPU cores (the streams schedule: the activations of a small batch stay in cache),
    16 on an accelerator.

    Returns:
        ``{"dct": {"single": ips, "batched": ips}, "rgb": {...}, ...}``; the RGB pipeline's
        ``batched`` is None when its bundle has a fixed batch (LiteRT).
    """
    datas = [p.read_bytes() for p in paths]
    datas = (datas * (images // len(datas) + 1))[:images]
    clf = Classifier(ClassifierOptions(base_options=BaseOptions(
        model=model, num_threads=threads, accelerator=accelerator), max_results=1))
    rgb = RgbPipeline(rgb_model, threads or os.cpu_count() or 1, accelerator)
    if batch_size is None:
        batch_size = 1 if clf.accelerator == "cpu" else 16

    def rate(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return len(datas) / (time.perf_counter() - start)

    def rgb_fill(buf: dict, row: int, data: bytes):
        buf[rgb.name][row] = rgb.preprocess(data)[0]

    shape = {rgb.name: (rgb.crop, rgb.crop, 3)}
    streams = workers if getattr(rgb, "stream", None) is not None else 1  # as Classifier.classify_batch
    passes = {
        ("dct", "single"): lambda: [clf.classify(d) for d in datas],
        ("dct", "batched"): (lambda: clf.classify_batch(datas, batch_size=batch_size, workers=workers))
        if hasattr(clf._runner, "run_batch") else None,
        ("rgb", "single"): lambda: [rgb.infer(rgb.preprocess(d)) for d in datas],
        ("rgb", "batched"): (lambda: pipelined(datas, rgb_fill, lambda t: rgb.infer(t[rgb.name], streams > 1),
                                               shape, batch_size, workers, streams=streams))
        if rgb.onnx else None,
    }
    rates: dict[tuple[str, str], list[float]] = {k: [] for k, fn in passes.items() if fn}
    for k in rates:
        passes[k]()  # warm-up
    for _ in range(repeat):
        for k in rates:
            rates[k].append(rate(passes[k]))
    out = {"images": len(datas), "batch_size": batch_size, "workers": workers, "repeat": repeat,
           "schedule": "streams" if streams > 1 else "overlapped"}
    for kind, acc in (("dct", clf.accelerator), ("rgb", rgb.accelerator)):
        out[kind] = {"accelerator": acc, **{m: statistics.median(rates[kind, m]) if (kind, m) in rates else None
                                            for m in ("single", "batched")},
                     "runs": {m: rates.get((kind, m)) for m in ("single", "batched")}}
    clf.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-dct bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="JPEG files or directories")
    parser.add_argument("--model", help="DCT bundle (default: the embedded model)")
    parser.add_argument("--rgb-model", type=Path, default=None,
                        help="RGB EfficientNet-Lite0 int8 bundle (default: "
                             f"{default_rgb_model()}, exported there on first use)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="LiteRT threads, e.g. 1 2")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per file (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--verbose", action="store_true", help="also show LiteRT's native log lines")
    parser.add_argument("--throughput", action="store_true",
                        help="images/s, one by one and in throughput mode (ONNX bundles: --batch-size)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="throughput mode batch (default: 1 on the CPU provider, 16 on a GPU)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="prepare/decode threads")
    parser.add_argument("--accelerator", default="cpu", help="both pipelines' accelerator (default cpu)")
    parser.add_argument("--images", type=int, default=256, help="images per throughput run (default 256)")
    args = parser.parse_args(argv)
    if args.verbose:
        set_verbose(True)
    paths = [Path(p) for p in expand_paths(args.paths)]
    if not paths:
        parser.error("no JPEG files")
    if args.rgb_model is not None and not args.rgb_model.is_file():
        parser.error(f"RGB model not found: {args.rgb_model}")
    rgb_model = args.rgb_model or ensure_rgb_model(default_rgb_model())
    if args.throughput:
        r = throughput(paths, args.model, rgb_model, args.threads[0] if args.threads != [1] else None,
                       args.accelerator, args.batch_size, args.workers, args.images, args.repeat)
        print(f"{cpu_model()}; {r['images']} images x {r['repeat']} passes (medians), {args.workers} workers, "
              f"throughput schedule: {r['schedule']}")
        for kind in ("dct", "rgb"):
            t = r[kind]
            batched = (f"{t['batched']:7.1f} images/s (batch {r['batch_size']}, {t['batched'] / t['single']:.2f}x)"
                       if t["batched"] else "n/a (fixed batch)")
            print(f"{kind.upper()} pipeline on {t['accelerator']}: one by one {t['single']:7.1f} images/s, "
                  f"throughput mode {batched}")
        best = {k: max(v for v in (r[k]["single"], r[k]["batched"]) if v) for k in ("dct", "rgb")}
        print(f"DCT / RGB (best of each): {best['dct'] / best['rgb']:.2f}x")
        if args.json:
            args.json.write_text(json.dumps(r, indent=1))
        return 0
    results = []
    for t in args.threads:
        r = run(paths, args.model, rgb_model, t, args.repeat)
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
