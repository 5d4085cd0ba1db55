"""The loop the camera examples share: classify each JPEG frame and print its latency."""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Iterable

import edge_dct


def add_stream_arguments(parser: argparse.ArgumentParser, source: str) -> None:
    """Options every camera example shares: frame count, replay of a recording, model."""
    parser.add_argument("--frames", type=int, default=0, help="frames to classify (0: all/forever)")
    parser.add_argument("--replay", metavar="FILE",
                        help=f"read a recorded MJPEG stream instead of {source} (- for stdin)")
    parser.add_argument("--boundary", help="multipart boundary of the recording (default: find "
                        "frames by their JPEG markers, which also skips multipart headers)")
    parser.add_argument("--model", help="an edge_dct .tflite or .onnx bundle (default: the embedded model)")
    parser.add_argument("--backend", choices=list(BACKENDS), default="auto",
                        help="runtime of the network: litert (.tflite) or onnxruntime (.onnx); "
                             "auto (default): the model file's")
    parser.add_argument("--accelerator", default="cpu",
                        choices=["cpu", "gpu", "edgetpu", "cuda", "tensorrt", "auto"],
                        help="cpu (default); gpu/edgetpu for .tflite bundles, cuda/tensorrt for .onnx "
                             "bundles on ONNX Runtime (auto: the best available)")


BACKENDS = {"auto": None, "litert": "tflite", "onnxruntime": "onnx"}
"""``--backend`` -> the bundle format it runs (None: whichever the model file is)."""
ONNX_HINT = ("python -m converters export default default_fp16.onnx --format onnx --quantize fp16, "
             "then --model default_fp16.onnx")


def classify_frames(frames: Iterable[bytes], model: str | None = None, limit: int = 0,
                    accelerator: str = "cpu", backend: str = "auto") -> int:
    """Classifies JPEG frames straight from their bytes, one line per frame.

    Args:
        frames: Compressed JPEG frames (never decoded to pixels here).
        model: An edge_dct bundle; None for the embedded default model.
        limit: Stop after this many frames (0: run until the source ends or Ctrl-C).
        accelerator: Where the network runs (see ``edge_dct.BaseOptions``).
        backend: ``"litert"`` or ``"onnxruntime"``: the runtime the model must run on (a
            bundle of the other format is an error, exit 2); ``"auto"``: the model file's.

    Returns:
        Exit status: 1 if any frame failed to classify, else 0.
    """
    if limit > 0:
        frames = itertools.islice(frames, limit)
    failed = 0
    try:
        wanted = BACKENDS[backend]
        fmt = edge_dct.bundle.ModelBundle.load(model).format  # before a session (TensorRT: minutes)
        if wanted is not None and fmt != wanted:
            hint = f" ({ONNX_HINT})" if wanted == "onnx" else ""
            print(f"error: --backend {backend} runs .{wanted} bundles; {model or 'the embedded model'} is "
                  f"a .{fmt} bundle{hint}")
            return 2
        options = edge_dct.ClassifierOptions(
            base_options=edge_dct.BaseOptions(model=model, accelerator=accelerator), max_results=1)
        classifier = edge_dct.Classifier(options)
    except edge_dct.EdgeDctError as e:  # the model, the accelerator or the runtime
        print(f"error: {e}")
        return 2
    print(f"network on {classifier.accelerator} ({classifier.bundle.format})", flush=True)
    with classifier:
        try:
            for i, jpeg in enumerate(frames, 1):
                start = time.perf_counter()
                try:
                    result = classifier.classify(jpeg)  # the frame's JPEG bytes, undecoded
                except edge_dct.EdgeDctError as e:
                    failed += 1
                    print(f"frame {i}: error: {e}")
                    continue
                ms = (time.perf_counter() - start) * 1e3
                t, top = result.timing, result.top
                print(f"frame {i}: {top.label} ({top.score:.3f})  latency {ms:.1f} ms "
                      f"(prepare {t.prepare_ms:.1f} + inference {t.inference_ms:.1f}), "
                      f"{len(jpeg) / 1024:.0f} KiB", flush=True)
        except KeyboardInterrupt:
            pass
    return 1 if failed else 0
