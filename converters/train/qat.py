"""Quantization-aware fine-tuning: int8 bundles whose top-1 follows the fp32 model (issue #4).

Post-training int8 quantization of EfficientNet-Lite0 flips 3-6% of top-1 decisions: a few
outliers stretch the ranges of the projection and residual tensors, and low-margin decisions
spread over the network tip over (converters/README.md, "Export"). Better post-training ranges
did not help; this module fine-tunes the weights *through* a simulation of the int8 network:

1. ``pool``: convert the model to int8 once (post-training calibration, as
   :func:`converters.ship.export.convert` does) and read the scale and zero point TFLite chose for
   every activation tensor (:func:`activation_grid`); store the model's twin
   (:func:`converters.train.torch_graph.graph_plan` + weights), that grid, and a pool of training
   crops made by the model's own input path (the teacher's OpenCV crop for pixel models, the
   C core's ``edge_dct.prepare`` for DCT models: train and serve identically), from training
   photos disjoint from every photo the agreement is measured on.
2. ``train`` (PyTorch only, CPU or GPU): :class:`QuantGraph` runs the twin as the int8 kernels
   see it (BatchNormalization folded into the convolution before it, kernels fake-quantized
   per output channel on +-127, every tensor TFLite quantizes fake-quantized per tensor on
   TFLite's grid, straight-through gradients); the weights are trained so that the simulated
   int8 logits follow the frozen fp32 model's (KL divergence at T=1).
3. ``export``: the fine-tuned weights go back into the Keras model, which is converted like
   every model (post-training calibration on the photos of step 1); the int8 bundle is compared
   with the *original* fp32 model.

    python -m converters qat pool --model efficientnet_lite0_rgb --work ~/edge_dct_work/qat/rgb
    python -m converters qat train --work ~/edge_dct_work/qat/rgb --steps 1500 [--device cuda]
    python -m converters qat export --work ~/edge_dct_work/qat/rgb

``--run DIR`` instead of ``--model`` takes a distillation run's student. Step 2 needs only
PyTorch, NumPy and OpenCV (``import converters`` is lazy: TensorFlow loads only when a zoo
model or an export is touched), so it also runs on a GPU machine without TensorFlow. Each step
takes a dataclass config (:class:`PoolConfig`, :class:`TuneConfig`, :class:`TunedExportConfig`);
the command line only parses into them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.splits import held_out_photos, training_photos
from ..data.workspace import data_dir, work_dir
from .crops import crop_of, decode_rgb, teacher_crop
from .torch_graph import TorchGraph, _Conv, to_keras, to_torch

WEIGHT_LEVELS = 127
"""Symmetric int8 kernel range of TFLite's per-channel quantization."""
OUTPUT = "<output>"
"""Key of the model's output tensor in an activation grid."""
CALIBRATION_PHOTOS = 300
"""Training photos calibrating the int8 conversion (the grid, then the final export)."""

PIXEL_NORMALIZE = {"mean": [127.0] * 3, "std": [128.0] * 3}
"""The pixel normalization of pixel pools (the teacher's crops, :func:`converters.train.crops.teacher_crop`)."""

Grid = dict[str, tuple[float, int]]


# ----------------------------------------------------------------------------- int8 simulation


def _layer_of(tensor_name: str) -> str:
    """Keras layer name in a TFLite tensor name (``model_1/block2_add_1/Add;...`` -> ``block2_add``)."""
    parts = tensor_name.split(";")[0].split("/")
    return re.sub(r"_\d+$", "", parts[1]) if len(parts) > 1 else parts[0]


def activation_grid(tflite: bytes) -> Grid:
    """Scale and zero point of every int8 activation tensor of a full-integer bundle.

    Args:
        tflite: the int8 flatbuffer (``converters.ship.export.convert(..., "int8", ...)``).

    Returns:
        Keras layer name (input name for inputs, :data:`OUTPUT` for the output) ->
        ``(scale, zero_point)``.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    details = {d["index"]: d for d in interp.get_tensor_details()}
    grid: Grid = {}
    for name, d in interp.get_signature_runner().get_input_details().items():
        grid[name] = (float(d["quantization"][0]), int(d["quantization"][1]))
    out_index = interp.get_output_details()[0]["index"]
    for op in interp._get_ops_details():
        for t in op["outputs"]:
            d = details[t]
            if d["dtype"] == np.int8:
                key = OUTPUT if t == out_index else _layer_of(d["name"])
                grid[key] = (float(d["quantization"][0]), int(d["quantization"][1]))
    return grid


class _FakeQuant(torch.autograd.Function):
    """Per-tensor int8 fake quantization with a straight-through gradient inside the range.

    The values of ``torch.fake_quantize_per_tensor_affine`` (an integer zero point only moves
    the range), 4x faster on a CPU; the gradient is passed unmasked when the whole tensor lies
    inside the range (ReLU6 outputs on TFLite's [0, 6] grid, most tensors of these networks).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
        lo, hi = (-128 - zero) * scale, (127 - zero) * scale
        low, high = torch.aminmax(x.detach())
        inside = bool(low >= lo) and bool(high <= hi)
        ctx.bounds = None if inside else (lo, hi)
        if not inside:
            ctx.save_for_backward(x)
            x = torch.clamp(x, lo, hi)
        return torch.round(x * (1.0 / scale)).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        if ctx.bounds is None:
            return grad, None, None
        (x,), (lo, hi) = ctx.saved_tensors, ctx.bounds
        return grad * ((x >= lo) & (x <= hi)), None, None


def _fake_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel (axis 0) symmetric int8 fake quantization of a kernel."""
    amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, amax / WEIGHT_LEVELS, zero, 0, -WEIGHT_LEVELS, WEIGHT_LEVELS)


class QuantGraph(nn.Module):
    """A :class:`TorchGraph` computed the way TFLite's int8 kernels compute it.

    Args:
        graph: the twin whose parameters are trained (shared, not copied).
        grid: :func:`activation_grid` of an int8 conversion of the same model.

    Call like the graph (``{input: NCHW float32}``); returns the dequantized outputs. Layers
    missing from ``grid`` stay float (TFLite fuses them into a neighbour).
    """

    def __init__(self, graph: TorchGraph, grid: Grid):
        super().__init__()
        self.graph = graph
        self.grid = {graph.outputs[0] if k == OUTPUT else k: tuple(v) for k, v in grid.items()}
        uses: dict[str, int] = {}
        for _, sources in graph.steps:
            for s in sources:
                uses[s] = uses.get(s, 0) + 1
        self.fold: dict[str, str] = {}  # convolution -> the BatchNormalization folded into it
        for name, sources in graph.steps:
            if (isinstance(graph.layers[name], nn.BatchNorm2d) and len(sources) == 1
                    and sources[0] in graph.layers and isinstance(graph.layers[sources[0]], _Conv)
                    and uses[sources[0]] == 1):
                self.fold[sources[0]] = name
        self.folded = set(self.fold.values())
        missing = [n for n in self.grid if n not in graph.layers and n not in graph.inputs]
        if missing:
            raise ValueError(f"activation grid names layers the graph lacks: {missing[:5]}")

    def _quantize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name not in self.grid:
            return x
        scale, zero = self.grid[name]
        return _FakeQuant.apply(x, scale, zero)

    def _conv(self, conv: _Conv, bn: nn.BatchNorm2d | None, x: torch.Tensor) -> torch.Tensor:
        w, b = conv.conv.weight, conv.conv.bias
        if bn is not None:
            factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            w = w * factor.view(-1, 1, 1, 1)
            b = bn.bias + ((b if b is not None else 0.0) - bn.running_mean) * factor
        return conv(x, _fake_weight(w), b)

    def forward(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        values = {k: self._quantize(k, v) for k, v in inputs.items()}
        for name, sources in self.graph.steps:
            module, args = self.graph.layers[name], [values[s] for s in sources]
            if name in self.folded:
                y = args[0]
            elif isinstance(module, _Conv):
                bn = self.fold.get(name)
                y = self._conv(module, self.graph.layers[bn] if bn else None, args[0])
            elif isinstance(module, nn.Linear):
                y = F.linear(args[0], _fake_weight(module.weight), module.bias)
            else:
                y = module(*args)
            values[name] = self._quantize(self.fold.get(name, name), y)
        return [values[n] for n in self.graph.outputs]


# ----------------------------------------------------------------------------- training pool


class Pool:
    """Training crops stored compactly, decoded to model inputs on the training device.

    Pixel models keep ``[n, S, S, 3]`` uint8 crops (JPEG quality 95 on disk), fed as
    ``(pixel - mean) / std`` and mirrored at random; DCT models keep each input as int8 on
    the bundle's own input grid (exactly what the int8 bundle is fed), fed dequantized.

    Args:
        arrays: input name -> ``[n, H, W, C]`` uint8 (pixel) or int8 (DCT) array.
        kind: ``"pixel"`` or ``"dct"``.
        grid: the activation grid (input scales for DCT pools).
        normalize: ``(mean, std)`` of a pixel model.
    """

    def __init__(self, arrays: dict[str, np.ndarray], kind: str, grid: Grid,
                 normalize: tuple[float, float] = (127.0, 128.0)):
        self.arrays, self.kind, self.grid, self.normalize = arrays, kind, grid, normalize
        self.device_arrays: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def to(self, device: str) -> "Pool":
        """Moves the stored crops to ``device`` (NCHW, still 8-bit)."""
        self.device_arrays = {k: torch.from_numpy(v).permute(0, 3, 1, 2).contiguous().to(device)
                              for k, v in self.arrays.items()}
        return self

    def batch(self, index: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Float32 NCHW (channels-last) model inputs of the crops ``index``."""
        if not self.device_arrays:
            self.to("cpu")
        out = {}
        for name, stored in self.device_arrays.items():
            x = stored[index.to(stored.device)].float()
            if self.kind == "pixel":
                mean, std = self.normalize
                x = (x - mean) / std
                flip = torch.rand(len(index), generator=generator).to(x.device) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            else:
                scale, zero = self.grid[name]
                x = (x - zero) * scale
            out[name] = x.contiguous(memory_format=torch.channels_last)
        return out

    def save(self, path: Path) -> None:
        """Writes the pool (``.npz``; pixel crops as JPEG bytes)."""
        import cv2

        if self.kind == "pixel":
            (name, crops), = self.arrays.items()
            blobs = [cv2.imencode(".jpg", c[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for c in crops]
            np.savez(path, kind="pixel", name=name, jpeg=np.frombuffer(b"".join(blobs), np.uint8),
                     sizes=np.array([len(b) for b in blobs]), normalize=np.array(self.normalize))
        else:
            np.savez_compressed(path, kind="dct", **{f"input_{k}": v for k, v in self.arrays.items()})

    @classmethod
    def load(cls, paths: list[Path], grid: Grid) -> "Pool":
        """Reads and concatenates pools written by :meth:`save`."""
        import cv2

        parts: dict[str, list[np.ndarray]] = {}
        kind, normalize = "dct", (127.0, 128.0)
        for path in paths:
            try:
                z = np.load(path)
                kind = str(z["kind"])
            except (OSError, ValueError, KeyError) as e:
                raise ValueError(f"{path}: not a training pool written by Pool.save ({e})") from e
            if kind == "pixel":
                normalize = tuple(float(v) for v in z["normalize"])
                ends = np.cumsum(z["sizes"])
                crops = [cv2.imdecode(z["jpeg"][e - s:e], cv2.IMREAD_COLOR)[..., ::-1] for s, e in zip(z["sizes"], ends)]
                parts.setdefault(str(z["name"]), []).append(np.stack(crops))
            else:
                for key in z.files:
                    if key.startswith("input_"):
                        parts.setdefault(key[len("input_"):], []).append(z[key])
        return cls({k: np.concatenate(v) for k, v in parts.items()}, kind, grid, normalize)


# ----------------------------------------------------------------------------- fine-tuning


def frozen(graph: TorchGraph) -> TorchGraph:
    """An inference-mode copy of ``graph`` without gradients (the fp32 reference)."""
    ref = copy.deepcopy(graph).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


@torch.no_grad()
def simulated_agreement(qgraph: QuantGraph, reference: TorchGraph, pool: Pool, batch: int = 100) -> float:
    """Top-1 agreement of the simulated int8 model with the fp32 reference on a whole pool."""
    hits = 0
    for s in range(0, len(pool), batch):
        index = torch.arange(s, min(s + batch, len(pool)))
        x = pool.batch(index, torch.Generator().manual_seed(s))
        hits += int((qgraph(x)[0].argmax(1) == reference(x)[0].argmax(1)).sum())
    return hits / len(pool)


def finetune(graph: TorchGraph, grid: Grid, pool: Pool, *, steps: int, batch: int = 64, lr: float = 3e-5,
             checkpoint: Path | None = None, checkpoint_every: int = 100, max_minutes: float | None = None,
             monitor: Pool | None = None, eval_every: int = 0, device: str = "cpu", seed: int = 0,
             reference: TorchGraph | None = None,
             log: Callable[[dict[str, Any]], None] = lambda r: print(json.dumps(r), flush=True)) -> TorchGraph:
    """Fine-tune ``graph`` so that its int8 simulation follows the original fp32 outputs.

    Args:
        graph: the model's twin, modified in place; BatchNormalization statistics and dropout
            stay in inference mode, every weight (kernels, BN scale and offset, dense) trains.
        grid: :func:`activation_grid` of the original model's int8 conversion.
        pool: training crops (:class:`Pool`).
        steps: optimizer steps (AdamW without weight decay, cosine decay from ``lr``).
        batch: crops per step, drawn at random from the pool.
        lr: peak learning rate.
        checkpoint: file saved every ``checkpoint_every`` steps (and at the end) and resumed from.
        max_minutes: stop (after saving) once this much time has passed.
        monitor: crops whose simulated agreement is logged every ``eval_every`` steps.
        device: torch device.
        seed: batch order and flips.
        reference: the fp32 model to follow when ``graph`` does not hold it any more (a
            fine-tuning continued from an earlier one); default a frozen copy of ``graph``.
        log: receives one dict per record.

    Returns:
        ``graph`` (on the CPU) with the fine-tuned weights.
    """
    if str(device).startswith("cuda"):  # full fp32 convolutions: TF32 would blur the int8 simulation
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    graph.to(device).eval()
    reference = frozen(reference if reference is not None else graph).to(device)
    for p in graph.parameters():
        p.requires_grad_(True)
    qgraph = QuantGraph(graph, grid)
    pool.to(device)
    if monitor is not None:
        monitor.to(device)
    optimizer = torch.optim.AdamW(graph.parameters(), lr=lr, weight_decay=0.0)
    step = 0
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        graph.load_state_dict(saved["graph"])
        reference.load_state_dict(saved["reference"])
        optimizer.load_state_dict(saved["optimizer"])
        step = int(saved["step"])
        log({"event": "resume", "step": step})

    def save() -> None:
        if checkpoint is not None:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"graph": graph.state_dict(), "reference": reference.state_dict(),
                        "optimizer": optimizer.state_dict(), "step": step}, tmp)
            tmp.replace(checkpoint)

    def evaluate() -> None:
        if monitor is not None and eval_every:
            log({"step": step, "simulated_agreement": round(simulated_agreement(qgraph, reference, monitor), 4),
                 "n": len(monitor)})

    if step == 0:
        evaluate()
    start, first = time.time(), step
    while step < steps:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        x = pool.batch(torch.randint(0, len(pool), (batch,), generator=gen), gen)
        for g in optimizer.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        with torch.no_grad():
            target = F.log_softmax(reference(x)[0], 1)
        out = F.log_softmax(qgraph(x)[0], 1)
        loss = F.kl_div(out, target, log_target=True, reduction="batchmean")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 20 == 0 or step == steps:
            log({"step": step, "loss": round(loss.item(), 5), "lr": optimizer.param_groups[0]["lr"],
                 "batch_agreement": float((out.argmax(1) == target.argmax(1)).float().mean()),
                 "crops_per_s": round((step - first) * batch / (time.time() - start), 1)})
        if eval_every and step % eval_every == 0:
            evaluate()
        if step % checkpoint_every == 0 or step == steps:
            save()
        if max_minutes and time.time() - start > 60 * max_minutes:
            save()
            log({"event": "time limit", "step": step})
            break
    return graph.cpu()


# ----------------------------------------------------------------------------- workstation side


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """``pool``: what is fine-tuned and on which crops.

    Attributes:
        work: folder for ``package.pt``, the pools, weights and reports.
        model: registry model with its released weights (or ``run``).
        run: a distillation run (its latest student), instead of ``model``.
        data: folder of the photo sets (``scripts/get_data.sh``).
        photos: training crops in the pool.
        monitor: other training photos' serving crops, for monitoring.
        workers: threads building crops.
        seed: which photos, which crops.
    """

    work: Path
    model: str | None = None
    run: Path | None = None
    data: Path = dataclasses.field(default_factory=data_dir)
    photos: int = 3000
    monitor: int = 200
    workers: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.model is None) == (self.run is None):
            raise ValueError("PoolConfig needs exactly one of model= or run=")


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """``train``: one fine-tuning of the package under ``work``.

    Attributes:
        work: the folder written by ``pool``.
        name: name of this fine-tuning's files (``NAME.pt``, ``NAME.ckpt.pt``, ``NAME.log.jsonl``).
        init: start from the weights of fine-tuning ``init`` (the reference stays the original).
        steps: optimizer steps.
        batch: crops per step.
        lr: peak learning rate.
        device: torch device.
        threads: PyTorch CPU threads (0: its default).
        eval_every: steps between monitor evaluations.
        max_minutes: stop (after saving) once this much time has passed.
        seed: batch order and flips.
    """

    work: Path
    name: str = "tuned"
    init: str | None = None
    steps: int = 1500
    batch: int = 64
    lr: float = 3e-5
    device: str = "cpu"
    threads: int = 0
    eval_every: int = 250
    max_minutes: float | None = None
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class TunedExportConfig:
    """``export``: the int8 bundle of a fine-tuning and its agreement report.

    Attributes:
        work: the folder written by ``pool`` and ``train``.
        name: the fine-tuning to export.
        out: bundle path (default ``work/NAME_int8.tflite``).
        data: folder of the photo sets (calibration; held-back photos of DCT students).
        evaluation: pixel models: photos of the agreement check.
        count: photos of the agreement check (DCT students: held-back photos).
        targets: teacher bundles (DCT students).
    """

    work: Path
    name: str = "tuned"
    out: Path | None = None
    data: Path = dataclasses.field(default_factory=data_dir)
    evaluation: Path = dataclasses.field(default_factory=lambda: data_dir() / "imagenette" / "val")
    count: int = 300
    targets: Path = dataclasses.field(default_factory=lambda: work_dir() / "targets")


def subject(model: str | None, run: Path | None):
    """(Keras model, InputSpec dict, kind, source) of a registry model or a distillation run.

    Args:
        model: registry name (its released weights), or None.
        run: a ``converters distill`` run folder (its latest student), or None.

    Returns:
        ``kind`` is ``"pixel"`` or ``"dct"``; ``source`` is the JSON-ready provenance.

    Raises:
        SystemExit: a pixel model whose input is not the teacher's RGB crop, or a run without checkpoint.
    """
    if run is not None:
        from .distill import load_student

        student, checkpoint = load_student(run)
        spec = json.loads((run / "spec.json").read_text())
        return student.keras_model(), spec, "dct", {"run": str(run), "checkpoint": checkpoint.name}
    from ..ship.export import model_spec
    from ..zoo.registry import build, get_config

    keras_model = build(model)
    spec = model_spec(keras_model, get_config(model).input_spec)
    if spec["layout"] in ("rgb", "ycbcr") and (spec["layout"], spec["normalize"]) != ("rgb", PIXEL_NORMALIZE):
        raise SystemExit(f"error: {model}: pixel pools hold the teacher's RGB crops, normalized "
                         f"(x - 127) / 128; this model wants {spec['layout']} {spec['normalize']}")
    return keras_model, spec, ("pixel" if spec["layout"] in ("rgb", "ycbcr") else "dct"), {"model": model}


def _input_of(kind: str, spec: dict[str, Any], path: Path, variant: int, index: int) -> dict[str, np.ndarray]:
    """The model's float input for one crop of a photo (variant 0: the serving crop)."""
    from edge_dct.prepare import prepare
    from edge_dct.spec import InputSpec

    data = path.read_bytes()
    window, flip = crop_of(data, variant, index, spec["grid"][0])
    if kind == "pixel":
        return {"image": teacher_crop(decode_rgb(data), window, flip, 8 * spec["grid"][0])}
    return prepare(data, InputSpec.from_dict(spec), window=window, hflip=flip)


def _calibration(data: Path, spec: dict[str, Any], shapes) -> list[dict[str, np.ndarray]]:
    """The int8 calibration samples: :data:`CALIBRATION_PHOTOS` seeded training photos, served way."""
    from ..ship.calibration import spec_samples

    photos = training_photos(data)
    photos = sorted(random.Random(1).sample(photos, min(CALIBRATION_PHOTOS, len(photos))))
    return spec_samples(photos, shapes, spec)


def make_pool(config: PoolConfig) -> int:
    """``pool``: int8 grid, twin package and training crops of the subject under ``work``."""
    from concurrent.futures import ThreadPoolExecutor

    from ..ship.export import convert, input_shapes

    config.work.mkdir(parents=True, exist_ok=True)
    model, spec, kind, source = subject(config.model, config.run)
    ptq = config.work / "ptq_int8.tflite"
    if not ptq.is_file():
        print("converting the original model to int8 (post-training) for its activation grid ...", file=sys.stderr)
        ptq.write_bytes(convert(model, "int8", _calibration(config.data, spec, input_shapes(model))))
    grid = activation_grid(ptq.read_bytes())
    graph = TorchGraph(model)
    to_torch(model, graph)
    torch.save({"plan": graph.plan, "state": graph.state_dict(), "grid": grid, "kind": kind, "spec": spec,
                "source": source}, config.work / "package.pt")
    photos = training_photos(config.data)
    order = random.Random(config.seed).sample(range(len(photos)), min(len(photos), config.photos + config.monitor))
    # Training crops: one in four the serving crop, the others random resized crops with flips.
    # Monitor crops: serving crops of other training photos (generalization of the fine-tuning).
    jobs = {f"pool-{config.seed}.npz": [(i, 0 if k % 4 == 0 else 1 + config.seed * 1000 + k % 997)
                                        for k, i in enumerate(order[:config.photos])],
            "pool-monitor.npz": [(i, 0) for i in order[config.photos:]]}
    for file, picks in jobs.items():
        if not picks:
            continue
        arrays: dict[str, list[np.ndarray]] = {}
        with ThreadPoolExecutor(config.workers) as ex:
            samples = ex.map(lambda p: _input_of(kind, spec, photos[p[0]], p[1], p[0]), picks)
            for k, sample in enumerate(samples):
                for name, x in sample.items():
                    if kind == "pixel":
                        q = np.clip(np.round(x[0] * 128.0 + 127.0), 0, 255).astype(np.uint8)
                    else:
                        scale, zero = grid[name]
                        q = np.clip(np.round(x[0] / scale + zero), -128, 127).astype(np.int8)
                    arrays.setdefault(name, []).append(q)
                if (k + 1) % 500 == 0:
                    print(f"  {file}: {k + 1}/{len(picks)} crops", file=sys.stderr, flush=True)
        Pool({k: np.stack(v) for k, v in arrays.items()}, kind, grid).save(config.work / file)
        print(json.dumps({"pool": str(config.work / file), "crops": len(picks),
                          "bytes": (config.work / file).stat().st_size}))
    print(json.dumps({"package": str(config.work / "package.pt"), "activation_tensors": len(grid)}))
    return 0


def _existing(path: Path, how: str) -> Path:
    """``path``, or a clear exit naming it and the command that writes it."""
    if not path.is_file():
        raise SystemExit(f"error: {path} does not exist ({how})")
    return path


def _package(work: Path) -> dict[str, Any]:
    """The ``package.pt`` written by ``pool``."""
    return torch.load(_existing(work / "package.pt", "run `python -m converters qat pool` first"), weights_only=False)


def tune(config: TuneConfig) -> int:
    """``train``: fine-tune the package's twin on the pools under ``work`` (PyTorch only)."""
    package = _package(config.work)
    graph = TorchGraph(package["plan"]).to(memory_format=torch.channels_last)
    graph.load_state_dict(package["state"])
    reference = None
    if config.init:  # continue an earlier fine-tuning; the reference stays the original model
        reference = graph
        graph = copy.deepcopy(graph)
        graph.load_state_dict(torch.load(_existing(config.work / f"{config.init}.pt", "--init names no finished "
                                                   "fine-tuning"), weights_only=True))
    grid = package["grid"]
    pools = sorted(config.work.glob("pool-*.npz"))
    if not pools:
        raise SystemExit(f"error: no pool-*.npz under {config.work} (run `pool` first)")
    monitor = [p for p in pools if p.name == "pool-monitor.npz"]
    pool = Pool.load([p for p in pools if p not in monitor], grid)
    log_path = config.work / f"{config.name}.log.jsonl"

    def log(record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)
        with log_path.open("a") as f:
            f.write(json.dumps({**record, "time": round(time.time(), 1)}) + "\n")

    log({"event": "start", "crops": len(pool), "steps": config.steps, "batch": config.batch, "lr": config.lr,
         "device": config.device, "init": config.init})
    if config.threads:
        torch.set_num_threads(config.threads)
    graph = finetune(graph, grid, pool, steps=config.steps, batch=config.batch, lr=config.lr,
                     checkpoint=config.work / f"{config.name}.ckpt.pt", max_minutes=config.max_minutes,
                     monitor=Pool.load(monitor, grid) if monitor else None, eval_every=config.eval_every,
                     device=config.device, seed=config.seed, reference=reference, log=log)
    torch.save(graph.state_dict(), config.work / f"{config.name}.pt")
    return 0


def export_tuned(config: TunedExportConfig) -> int:
    """``export``: int8 bundle of the fine-tuned weights and its agreement with the original fp32 model."""
    from ..data.photos import photo_set
    from ..ship.calibration import spec_samples
    from ..ship.export import compare, convert, input_shapes
    from ..ship.metadata import embed_metadata
    from ..zoo.imagenet import imagenet_labels

    package = _package(config.work)
    tuned = torch.load(_existing(config.work / f"{config.name}.pt", f"no finished fine-tuning named {config.name!r}"),
                       weights_only=True)
    run = package["source"].get("run")
    model, spec, kind, source = subject(package["source"].get("model"), Path(run) if run else None)
    graph = TorchGraph(package["plan"])
    graph.load_state_dict(tuned)
    fp32 = convert(model, "fp32") if kind == "dct" else None  # the original student, before the change
    to_keras(graph, model)
    shapes = input_shapes(model)
    int8 = convert(model, "int8", _calibration(config.data, spec, shapes))
    meta = {**spec, "labels": list(imagenet_labels()), **source, "recipe": "python -m converters qat"}
    out = config.out or config.work / f"{config.name}_int8.tflite"
    out.write_bytes(embed_metadata(int8, meta))
    report: dict[str, Any] = {"bundle": str(out), "size_bytes": out.stat().st_size, **source}
    if kind == "pixel":
        from ..zoo.registry import build

        original = build(package["source"]["model"])
        evaluation = spec_samples(photo_set(str(config.evaluation), config.count, seed=1), shapes, spec)
        report["int8_vs_original_fp32"] = compare(original, int8, evaluation)
        report["int8_vs_tuned_fp32"] = compare(model, int8, evaluation)
        report["post_training_int8_vs_original_fp32"] = compare(
            original, (config.work / "ptq_int8.tflite").read_bytes(), evaluation)
        report["evaluation"] = f"{config.count} photos of {config.evaluation} (seed 1)"
    else:
        from edge_dct.spec import InputSpec

        from .evaluation import bundle_fidelity
        from .teacher import Teacher, teacher_bundles

        fp32_path = out.with_name(out.stem + "_original_fp32.tflite")
        fp32_path.write_bytes(embed_metadata(fp32, meta))
        ptq_path = out.with_name(out.stem + "_post_training.tflite")
        ptq_path.write_bytes(embed_metadata((config.work / "ptq_int8.tflite").read_bytes(), meta))
        held = held_out_photos(config.data, config.count)
        teacher = Teacher(teacher_bundles(config.targets, spec["grid"][0]))
        report["fidelity"] = bundle_fidelity(out, fp32_path, held, InputSpec.from_dict(spec), teacher)
        report["post_training_fidelity"] = bundle_fidelity(ptq_path, fp32_path, held, InputSpec.from_dict(spec),
                                                           teacher)
    (config.work / f"{config.name}.export.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


STEPS = {"pool": (PoolConfig, make_pool), "train": (TuneConfig, tune), "export": (TunedExportConfig, export_tuned)}
"""Command -> (config class, function)."""


def parse_args(argv: list[str] | None = None) -> tuple[str, PoolConfig | TuneConfig | TunedExportConfig]:
    """The command line (see the module docstring) as (command, config)."""
    pd, td, ed = PoolConfig(Path(), model="x"), TuneConfig(Path()), TunedExportConfig(Path())
    p = argparse.ArgumentParser(prog="python -m converters qat", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in STEPS:
        s = sub.add_parser(name)
        s.add_argument("--work", type=Path, required=True, help="folder: package.pt, pools, weights, reports")
        if name in ("pool", "train"):
            s.add_argument("--seed", type=int, default=0)
        if name in ("pool", "export"):
            s.add_argument("--data", type=Path, default=pd.data, help="photo sets (scripts/get_data.sh)")
        if name in ("train", "export"):
            s.add_argument("--name", default=td.name, help="name of this fine-tuning's files")
    pool, train_p, export_p = (sub.choices[n] for n in STEPS)
    src = pool.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="registry model with its released weights")
    src.add_argument("--run", type=Path, help="a `converters distill` run (its latest student)")
    pool.add_argument("--photos", type=int, default=pd.photos, help="training crops in the pool")
    pool.add_argument("--monitor", type=int, default=pd.monitor, help="other photos' serving crops, for monitoring")
    pool.add_argument("--workers", type=int, default=pd.workers)
    train_p.add_argument("--init", metavar="NAME", help="start from the weights of fine-tuning NAME")
    train_p.add_argument("--steps", type=int, default=td.steps)
    train_p.add_argument("--batch", type=int, default=td.batch)
    train_p.add_argument("--lr", type=float, default=td.lr)
    train_p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    train_p.add_argument("--threads", type=int, default=td.threads, help="PyTorch CPU threads (0: default)")
    train_p.add_argument("--eval-every", type=int, default=td.eval_every, help="steps between monitor evaluations")
    train_p.add_argument("--max-minutes", type=float, default=td.max_minutes)
    export_p.add_argument("--out", type=Path, help="bundle path (default WORK/NAME_int8.tflite)")
    export_p.add_argument("--evaluation", type=Path, default=ed.evaluation,
                          help="pixel models: photos of the agreement check")
    export_p.add_argument("--count", type=int, default=ed.count,
                          help="photos of the agreement check (DCT students: held-back photos)")
    export_p.add_argument("--targets", type=Path, default=ed.targets, help="teacher bundles (DCT students)")
    values = vars(p.parse_args(argv))
    command = values.pop("command")
    return command, STEPS[command][0](**values)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    command, config = parse_args(argv)
    return STEPS[command][1](config)


if __name__ == "__main__":
    sys.exit(main())
