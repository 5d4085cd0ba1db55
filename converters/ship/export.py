"""Keras 3 model -> ``.tflite`` bundle (fp32, fp16 or full-integer int8) with ``edge_dct`` metadata.

Path: ``keras.export.ExportArchive`` (SavedModel, one ``serving_default`` signature, batch fixed
at 1, inputs named as the model's inputs, output ``logits``) ->
``tf.lite.TFLiteConverter.from_saved_model`` -> metadata embedding
(:mod:`converters.ship.metadata`). ``TFLiteConverter.from_keras_model`` is avoided on purpose: it has
known failures with Keras 3.

``int8`` is full-integer quantization with int8 inputs and output; its representative dataset
is fed per signature by input name (``{"y": ..., "cbcr": ...}``), so input order cannot flip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from ..zoo.imagenet import imagenet_labels
from ..zoo.input_spec import resize_for_grid
from ..zoo.registry import build, get_config, list_models
from .calibration import Sample, SampleSource, default_samples, iterate, quantize_int8, spec_samples
from .intervals import wilson_interval
from .metadata import embed_metadata

QUANTIZATIONS = ("fp32", "fp16", "int8")


@dataclasses.dataclass
class ExportReport:
    """What :func:`export` wrote and how the bundle behaves.

    Attributes:
        model: model name.
        path: the ``.tflite`` file.
        quantize: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        size_bytes: file size.
        inputs: input name -> ``{"shape", "dtype", "scale", "zero_point"}`` of the bundle.
        eval_samples: samples compared (disjoint from the calibration samples).
        top1_agreement: fraction of samples whose argmax equals Keras fp32's.
        top1_agreement_ci95: its 95% Wilson interval (:func:`converters.ship.intervals.wilson_interval`).
        max_abs_logit_error: max |LiteRT logit - Keras logit| over all samples and classes.
        mean_abs_logit_error: mean of the same.
        logit_range: max - min of the Keras logits over the samples (scale of the errors).
        latency_ms: threads -> median LiteRT latency in milliseconds (batch 1).
        gpu_fallback_ops: ops of the fp16 model the GPU delegate would leave to the CPU
            (empty: fully compatible; ``None``: not checked).
        gpu_analyzer_output: the text of ``tf.lite.experimental.Analyzer`` (GPU check).
    """

    model: str
    path: str
    quantize: str
    size_bytes: int
    inputs: dict[str, dict[str, Any]]
    eval_samples: int = 0
    top1_agreement: float | None = None
    top1_agreement_ci95: tuple[float, float] | None = None
    max_abs_logit_error: float | None = None
    mean_abs_logit_error: float | None = None
    logit_range: float | None = None
    latency_ms: dict[int, float] = dataclasses.field(default_factory=dict)
    gpu_fallback_ops: list[str] | None = None
    gpu_analyzer_output: str = ""

    def __str__(self) -> str:
        lines = [
            f"{self.model} -> {self.path} ({self.quantize}, {self.size_bytes / 1e6:.2f} MB)",
            "  inputs: " + ", ".join(f"{k} {v['shape']} {v['dtype']}" for k, v in self.inputs.items()),
        ]
        if self.eval_samples:
            lines.append(
                f"  vs Keras fp32 on {self.eval_samples} samples: top-1 agreement {self.top1_agreement:.1%} "
                f"(95% interval {self.top1_agreement_ci95[0]:.1%}-{self.top1_agreement_ci95[1]:.1%}), "
                f"logit error max {self.max_abs_logit_error:.4g} / mean {self.mean_abs_logit_error:.4g} "
                f"(logit range {self.logit_range:.4g})"
            )
        if self.latency_ms:
            lines.append("  LiteRT latency: " + ", ".join(f"{ms:.2f} ms @ {t} thr" for t, ms in self.latency_ms.items()))
        if self.gpu_fallback_ops is not None:
            verdict = "fully compatible" if not self.gpu_fallback_ops else "CPU fallback: " + ", ".join(self.gpu_fallback_ops)
            lines.append(f"  GPU delegate (fp16 model): {verdict}")
        return "\n".join(lines)


def input_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """Model input name -> shape without the batch dimension."""
    return {t.name: tuple(int(d) for d in t.shape[1:]) for t in model.inputs}


def model_spec(model: keras.Model, base_spec: dict[str, Any]) -> dict[str, Any]:
    """The InputSpec of a built model: ``base_spec`` with ``grid``/``resize`` from its inputs."""
    shapes = input_shapes(model)
    if "image" in shapes:
        grid = (shapes["image"][0] // 8, shapes["image"][1] // 8)
    else:
        grid = (shapes["y"] if "y" in shapes else shapes["dct"])[:2]
    return {**base_spec, "grid": list(grid), "resize": resize_for_grid(grid)}


def saved_model(model: keras.Model, directory: str | Path) -> None:
    """Write ``model`` as a SavedModel with one batch-1 ``serving_default`` signature.

    Args:
        model: a functional Keras model with named inputs and one output.
        directory: output folder.
    """
    names = [t.name for t in model.inputs]
    specs = [tf.TensorSpec([1, *t.shape[1:]], tf.float32, name=t.name) for t in model.inputs]

    @tf.function(input_signature=specs)
    def serve(*args):
        return {"logits": model(args[0] if len(args) == 1 else dict(zip(names, args)), training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(directory), verbose=False)


def convert(model: keras.Model, quantize: str, calibration: SampleSource | None = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer (no metadata).

    Args:
        model: functional Keras model with named float32 inputs.
        quantize: ``"fp32"``, ``"fp16"`` (fp16 weights, float32 I/O) or ``"int8"`` (full
            integer, int8 inputs and output).
        calibration: samples ``{input_name: float32 [1, ...]}``; required for ``"int8"``.

    Returns:
        The ``.tflite`` bytes.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, not {quantize!r}")
    with tempfile.TemporaryDirectory() as tmp:
        saved_model(model, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        if quantize == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            if calibration is None:
                raise ValueError("int8 export needs calibration samples")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                {k: np.asarray(v, np.float32) for k, v in s.items()} for s in iterate(calibration)
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()


class LiteRunner:
    """Run a ``.tflite`` bundle's signature on float samples (quantizing int8 I/O as needed).

    Args:
        tflite: the flatbuffer bytes.
        threads: CPU threads of the LiteRT interpreter.
    """

    def __init__(self, tflite: bytes, threads: int = 1) -> None:
        self._interpreter = Interpreter(model_content=tflite, num_threads=threads)
        self._runner = self._interpreter.get_signature_runner()
        self.input_details = self._runner.get_input_details()
        self._output = self._runner.get_output_details()["logits"]

    def quantized_inputs(self, sample: Sample) -> dict[str, np.ndarray]:
        """``sample`` converted to the bundle's input dtypes (int8 with its scale/zero point)."""
        out = {}
        for name, d in self.input_details.items():
            x = np.asarray(sample[name], np.float32)
            if d["dtype"] == np.int8:
                scale, zp = d["quantization"]
                x = quantize_int8(x, scale, zp)
            out[name] = x
        return out

    def run_raw(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Invoke with inputs already in the bundle's dtypes; returns the raw output."""
        return self._runner(**inputs)["logits"]

    def __call__(self, sample: Sample) -> np.ndarray:
        """Float32 logits ``[1, classes]`` for a float sample."""
        y = self.run_raw(self.quantized_inputs(sample))
        if self._output["dtype"] == np.int8:
            scale, zp = self._output["quantization"]
            return (y.astype(np.float32) - zp) * scale
        return y.astype(np.float32)


def measure_latency(
    tflite: bytes, threads: int = 1, runs: int = 20, max_seconds: float = 20.0, statistic: str = "median"
) -> float:
    """LiteRT latency of one batch-1 inference in milliseconds.

    Args:
        tflite: the flatbuffer bytes.
        threads: interpreter threads.
        runs: timed runs after two warm-up runs (fewer if ``max_seconds`` is reached).
        max_seconds: time budget of the timed runs.
        statistic: ``"median"``, or ``"min"`` (robust to other processes sharing the CPU).

    Returns:
        Wall time in ms.
    """
    runner = LiteRunner(tflite, threads)
    inputs = {n: np.zeros(d["shape"], d["dtype"]) for n, d in runner.input_details.items()}
    for _ in range(2):
        runner.run_raw(inputs)
    times, start = [], time.perf_counter()
    while len(times) < runs and (len(times) < 3 or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        runner.run_raw(inputs)
        times.append(time.perf_counter() - t0)
    return 1e3 * (min(times) if statistic == "min" else statistics.median(times))


def gpu_compatibility(tflite: bytes) -> tuple[list[str], str]:
    """Check a model with ``tf.lite.experimental.Analyzer(gpu_compatibility=True)``.

    Args:
        tflite: flatbuffer bytes (the fp16 model is what the GPU delegate is for).

    Returns:
        ``(ops that would fall back to the CPU, sorted and unique; the analyzer's text)``.
    """
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=tflite, gpu_compatibility=True)
    out = text.getvalue()
    ops = set()
    for line in out.splitlines():
        if "GPU COMPATIBILITY WARNING" in line:
            m = re.search(r"Op#\d+\s+(\w+)", line) or re.search(r"'(\w+)'", line)
            ops.add(m.group(1) if m else line.strip())
    return sorted(ops), out


def keras_logits(model: keras.Model, sample: Sample) -> np.ndarray:
    """Keras inference on one sample; returns float32 logits ``[1, classes]``."""
    names = [t.name for t in model.inputs]
    x = sample[names[0]] if len(names) == 1 else {n: sample[n] for n in names}
    return np.asarray(model(x, training=False), np.float32)


def compare(model: keras.Model, tflite: bytes, samples: Iterable[Sample]) -> dict[str, Any]:
    """Keras fp32 vs LiteRT logits on samples.

    Returns:
        ``{"n", "top1_agreement", "top1_agreement_ci95", "max_abs", "mean_abs", "range"}``
        (``top1_agreement_ci95``: ``[low, high]`` 95% Wilson interval).

    Raises:
        ValueError: ``samples`` is empty.
    """
    runner = LiteRunner(tflite)
    ref, got = [], []
    for s in samples:
        ref.append(keras_logits(model, s)[0])
        got.append(runner(s)[0])
    if not ref:
        raise ValueError("compare: no samples to compare the bundle on")
    ref, got = np.stack(ref), np.stack(got)
    err = np.abs(ref - got)
    hits = int(np.sum(ref.argmax(1) == got.argmax(1)))
    return {
        "n": len(ref),
        "top1_agreement": hits / len(ref),
        "top1_agreement_ci95": list(wilson_interval(hits, len(ref))),
        "max_abs": float(err.max()),
        "mean_abs": float(err.mean()),
        "range": float(ref.max() - ref.min()),
    }


def is_photo_list(source: Any) -> bool:
    """Whether a calibration/evaluation argument is a list of photo paths (not samples)."""
    return isinstance(source, (list, tuple)) and bool(source) and isinstance(source[0], (str, Path))


def resolve_model(model_or_name: keras.Model | str, overrides: dict[str, Any] | None = None,
                  registered: bool = True) -> keras.Model:
    """The model to export: built from a registry name (with ``overrides``), or a built model,
    whose name must be registered when ``registered`` (its InputSpec comes from the registry)."""
    if isinstance(model_or_name, str):
        return build(model_or_name, **(overrides or {}))
    if registered and model_or_name.name not in list_models():
        raise ValueError(f"model name {model_or_name.name!r} is not registered; its InputSpec is unknown")
    return model_or_name


def default_labels(config: Any, num_classes: int) -> list[str]:
    """ImageNet-1k names for 1000-class ImageNet models, else ``class_0 ...``."""
    if config.labels == "imagenet-1k" and num_classes == 1000:
        return list(imagenet_labels())
    return [f"class_{i}" for i in range(num_classes)]


def export(
    model_or_name: keras.Model | str,
    out_path: str | Path,
    *,
    quantize: str = "int8",
    calibration: SampleSource | Sequence[Path] | None = None,
    evaluation: SampleSource | Sequence[Path] | None = None,
    overrides: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    threads: tuple[int, ...] = (1,),
    check_gpu: bool = True,
) -> ExportReport:
    """Export a registry model (or a built one) to a ``.tflite`` bundle and report on it.

    Args:
        model_or_name: registry name, or a built ``keras.Model`` whose ``name`` is registered.
        out_path: the ``.tflite`` file to write.
        quantize: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        calibration: int8 representative samples ``{input_name: float32 [1, ...]}`` (an
            iterable, or a callable returning one), or a list of photo paths turned into
            samples the model's way (:func:`converters.ship.calibration.spec_samples`). Default: corpus photos for pixel models,
            the same photos through ``edge_dct.prepare`` for DCT models (see :mod:`converters.ship.calibration`).
        evaluation: samples disjoint from ``calibration`` for the agreement check (same
            defaults, the other half / another seed).
        overrides: builder overrides when ``model_or_name`` is a name.
        labels: class names; default ImageNet-1k for 1000-class ImageNet models, else
            ``class_0 ...``.
        threads: LiteRT thread counts to time; empty to skip timing.
        check_gpu: run the GPU-delegate compatibility analysis on the fp16 model (converting
            an fp16 copy when ``quantize`` is not ``"fp16"``).

    Returns:
        :class:`ExportReport` (also printable).
    """
    model = resolve_model(model_or_name, overrides)
    config = get_config(model.name)
    spec = model_spec(model, config.input_spec)
    num_classes = int(model.outputs[0].shape[-1])
    if labels is None:
        labels = default_labels(config, num_classes)
    if len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels for {num_classes} outputs")
    shapes = input_shapes(model)
    calibration, evaluation = (
        (lambda paths=src: spec_samples(paths, shapes, spec)) if is_photo_list(src) else src
        for src in (calibration, evaluation))
    if calibration is None or evaluation is None:
        default_cal, default_eval = default_samples(shapes, spec)
        calibration = default_cal if calibration is None else calibration
        evaluation = default_eval if evaluation is None else evaluation

    tflite = convert(model, quantize, calibration if quantize == "int8" else None)
    tflite = embed_metadata(tflite, {**spec, "labels": labels})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(tflite)

    runner = LiteRunner(tflite)
    report = ExportReport(
        model=model.name,
        path=str(out_path),
        quantize=quantize,
        size_bytes=len(tflite),
        inputs={
            name: {
                "shape": [int(d) for d in det["shape"]],
                "dtype": np.dtype(det["dtype"]).name,
                "scale": float(det["quantization"][0]),
                "zero_point": int(det["quantization"][1]),
            }
            for name, det in runner.input_details.items()
        },
    )
    stats = compare(model, tflite, iterate(evaluation))
    report.eval_samples = stats["n"]
    report.top1_agreement = stats["top1_agreement"]
    report.top1_agreement_ci95 = tuple(stats["top1_agreement_ci95"])
    report.max_abs_logit_error = stats["max_abs"]
    report.mean_abs_logit_error = stats["mean_abs"]
    report.logit_range = stats["range"]
    report.latency_ms = {t: measure_latency(tflite, t) for t in threads}
    if check_gpu:
        fp16 = tflite if quantize == "fp16" else convert(model, "fp16")
        report.gpu_fallback_ops, report.gpu_analyzer_output = gpu_compatibility(fp16)
    return report
