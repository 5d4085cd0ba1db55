"""Distil the EfficientNet-Lite0 RGB teacher into an EfficientNet-Lite0-DCT student.

    python -m converters targets                       # teacher answers, once (~15 min)
    python -m converters distill --adapter-width 512 --stage feature --steps 3000 \\
        --work ~/edge_dct_work/distill/feat512
    python -m converters distill --adapter-width 512 --stage logits --steps 6000 \\
        --init ~/edge_dct_work/distill/feat512 --work ~/edge_dct_work/distill/logits512
    python -m converters distill --work ~/edge_dct_work/distill/logits512 --export student_int8.tflite

Data (train and serve identical): :mod:`converters.train.targets` stores, for every training photo
and crop variant (the serving crop, then seeded random resized crops with flips), the crop
window and the teacher's ``block4_add`` and logits on the libjpeg-turbo decode of that window.
The student reads the *same* window of the same file through the C core's ``prepare`` (the
code path that serves the model), mirrored when the teacher's input was (the teacher's input
is flipped, never its features). Batches are built by a thread pool (prepare releases the GIL)
a bounded number of steps ahead.

Training runs in PyTorch on a twin of the Keras student (:mod:`converters.train.torch_graph`; ~5x
faster than TensorFlow on a CPU for these depthwise networks); the export copies the weights
back into the Keras model and converts it like every zoo model.

Students cut before block 4 (``efficientnet_lite0_dct_cut0/1/2``, issue #15) take an *online*
teacher instead (``--teacher exact``, :mod:`converters.train.exact_teacher`): the PyTorch teacher
runs on the exact inverse of each batch's own coefficients, so nothing is cached and every crop
can be new; the feature loss is then the per-channel standardised MSE (``1 - R^2``).

Stages:

* ``feature``: MSE between the student's ``adapter_out`` (``[b, H, W, 40]``) and the teacher's
  ``block4_add`` (the input of block 5); only the adapter trains.
* ``logits``: ``T^2 KL(softmax(teacher / T) || softmax(student / T))`` plus
  ``--feature-weight`` times the feature MSE; the whole student trains, the pretrained back
  half with ``--tail-lr-scale`` times the adapter's learning rate. The back half's
  BatchNormalization layers stay in inference mode (their ImageNet statistics are kept).

AdamW with linear warm-up and cosine decay. The input normalization (per-channel centre and
largest deviation of the coefficients, as :func:`converters.ship.calibration.channel_stats`
motivates for int8 inputs) is fitted once per run on training photos and stored with the
run; ``--init`` runs inherit it.

Configuration is data: :class:`StudentConfig` (which student, which stage), :class:`OptimConfig`
(optimizer, schedule, losses), :class:`DistillConfig` (a run) and :class:`StudentExportConfig`
(an export); the command line only parses into them.

The work directory holds ``ckpt-NNNNNNN/`` checkpoints (twin weights, optimizer state,
``state.json`` with step, seed, the :class:`StudentConfig` and the whole
:class:`DistillConfig`), ``spec.json`` (the InputSpec the student is trained with) and
``log.jsonl`` (training and evaluation records, with images/s, losses, learning rate and
every ``--eval-every`` steps the agreement with the teacher on held-back photos). A run resumes from its latest checkpoint and stops at ``--steps``, after
``--max-minutes``, or on SIGTERM / Ctrl-C, checkpointing first.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import random
import shutil
import signal
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

from edge_dct.prepare import prepare
from edge_dct.spec import InputSpec

from ..data.splits import held_out_photos, training_photos
from ..data.workspace import data_dir, work_dir
from ..ship.calibration import channel_stats
from .crops import crop_of, decode_rgb, teacher_crop
from .evaluation import EvalSet, agreement, bundle_fidelity, make_eval_set
from .targets import Targets
from .teacher import Teacher, teacher_bundles

STUDENT_FEATURE = "adapter_out"
CHECKPOINT_PREFIX = "ckpt-"
ADAPTER_BN_MOMENTUM = 0.1
"""PyTorch momentum (weight of the new batch) of the adapter's BatchNormalization statistics."""
STAGES = ("feature", "logits")
TEACHERS = ("targets", "exact", "decode")
FEATURE_STD = "feature_std.npy"
"""Per-channel standard deviation of the teacher's cut tensor (online teachers), fitted once
per run: the feature loss is the MSE of ``(student - teacher) / std``, i.e. ``1 - R^2``."""


# ----------------------------------------------------------------------------- configs


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """Which student is trained and which part of it trains.

    Attributes:
        student: registry name of an EfficientNet-Lite0-DCT student.
        adapter_width: channels of the adapter's entry convolution.
        adapter_blocks: residual MBConv blocks ending the adapter.
        grid: luma blocks per side (the teacher sees 8x as many pixels).
        stage: ``"feature"`` (adapter only, feature MSE) or ``"logits"`` (whole student, KL).
    """

    student: str = "efficientnet_lite0_dct_split64"
    adapter_width: int = 384
    adapter_blocks: int = 1
    grid: int = 28
    stage: str = "feature"

    ARCHITECTURE = ("student", "adapter_width", "adapter_blocks", "grid")
    """Fields that decide the weights' shapes (what an ``--init`` run must share)."""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {self.stage!r}")

    def build(self, weights: str | None = "imagenet"):
        """The Keras student (``keras.Model``) this config names."""
        from ..zoo.registry import build

        return build(self.student, grid=(self.grid, self.grid), adapter_width=self.adapter_width,
                     adapter_blocks=self.adapter_blocks, weights=weights)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up and cosine decay, and the distillation losses.

    Attributes:
        steps: total steps (the end of the cosine schedule).
        batch: crops per step.
        lr: the adapter's peak learning rate.
        tail_lr_scale: the back half's learning rate over the adapter's (logits stage).
        warmup: linear warm-up steps (at most half of ``steps``).
        weight_decay: AdamW weight decay.
        clipnorm: gradient-norm clip.
        temperature: KL temperature of the logits stage.
        feature_weight: weight of the feature MSE in the logits stage.
    """

    steps: int = 20000
    batch: int = 64
    lr: float = 2e-3
    tail_lr_scale: float = 0.1
    warmup: int = 200
    weight_decay: float = 1e-5
    clipnorm: float = 5.0
    temperature: float = 2.0
    feature_weight: float = 0.0


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """A distillation run.

    Attributes:
        work: run folder: checkpoints, ``spec.json``, ``log.jsonl``.
        data: folder of the photo sets (``scripts/get_data.sh``).
        targets: teacher targets (``python -m converters targets``).
        model: the student and its stage.
        optim: optimizer, schedule and losses.
        teacher: where the teacher's answers come from: ``"targets"`` (the cached LiteRT
            answers of ``python -m converters targets``, ``block4_add`` only) or computed on the
            fly by the PyTorch teacher on the same crop (:mod:`converters.train.exact_teacher`):
            ``"exact"`` (the exact inverse of the student's input) or ``"decode"`` (the
            libjpeg-turbo decode of the window). The online teachers serve every cut.
        variants: crop variants per training photo of an online teacher (0: the serving crop,
            1..: random resized crops with flips, :func:`converters.train.crops.crop_of`).
        init: start from the latest checkpoint (weights, spec) of this run.
        seed: sample order, normalization photos, torch seed.
        threads: PyTorch threads (0: its default).
        workers: data threads (``prepare`` releases the GIL).
        prefetch: batches in flight.
        stats_photos: training photos fitting the input normalization.
        eval_photos: held-back photos of the periodic evaluation.
        eval_every: steps between evaluations.
        log_every: steps between training records.
        checkpoint_every: steps between checkpoints.
        keep: checkpoints kept.
        max_minutes: stop (after a checkpoint) once this much time has passed.
    """

    work: Path
    data: Path = dataclasses.field(default_factory=data_dir)
    targets: Path = dataclasses.field(default_factory=lambda: work_dir() / "targets")
    model: StudentConfig = StudentConfig()
    optim: OptimConfig = OptimConfig()
    teacher: str = "targets"
    variants: int = 8
    init: Path | None = None
    seed: int = 0
    threads: int = 0
    workers: int = 2
    prefetch: int = 3
    stats_photos: int = 400
    eval_photos: int = 500
    eval_every: int = 500
    log_every: int = 20
    checkpoint_every: int = 250
    keep: int = 2
    max_minutes: float = 170.0

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {TEACHERS}, not {self.teacher!r}")
        from ..zoo.efficientnet_dct import FIRST_TEACHER_BLOCK, student_cut

        if self.teacher == "targets" and student_cut(self.model.student) != FIRST_TEACHER_BLOCK - 1:
            raise ValueError(f"{self.model.student} is cut before block {FIRST_TEACHER_BLOCK - 1}: the cached "
                             "targets hold block4_add only, use an online teacher (--teacher exact)")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (nested configs as dicts, paths as strings)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


@dataclasses.dataclass(frozen=True)
class StudentExportConfig:
    """Export of a run's latest student.

    Attributes:
        work: the run folder.
        out: the int8 bundle; its fp32 twin goes beside it as ``<stem>_fp32.tflite``.
        data: folder of the photo sets.
        targets: teacher targets (their photo list calibrates; their teacher evaluates).
        seed: which training photos calibrate.
        calibration: training photos calibrating int8.
        eval_photos: held-back photos of the fidelity report (0: none).
    """

    work: Path
    out: Path
    data: Path = dataclasses.field(default_factory=data_dir)
    targets: Path = dataclasses.field(default_factory=lambda: work_dir() / "targets")
    seed: int = 0
    calibration: int = 300
    eval_photos: int = 500


def base_spec(student: str, grid: int) -> InputSpec:
    """A student's registry InputSpec at ``grid``, without normalization (raw coefficients).

    Args:
        student: registry name of a DCT model.
        grid: luma blocks per side; the resize is ``shorter_side`` to ``64 * grid / 7``
            (256 px for a 28-block grid, the usual 256 -> 224 evaluation).
    """
    from ..zoo.registry import get_config

    d = get_config(student).input_spec
    d.update(grid=[grid, grid], resize={"mode": "shorter_side", "size": round(64 * grid / 7)},
             normalize=None)
    return InputSpec.from_dict(d)


def resolve_feature_std(config: DistillConfig, photos: list[Path], spec: InputSpec, teacher: Any,
                        decode: bool) -> np.ndarray:
    """The run's :data:`FEATURE_STD`: its own, the ``init`` run's, or fitted on ``stats_photos``
    training photos (at most 200)."""
    own = config.work / FEATURE_STD
    source = own if own.is_file() else (config.init / FEATURE_STD if config.init else None)
    if source is not None and source.is_file():
        std = np.load(source)
    else:
        fit = random.Random(config.seed + 1).sample(photos, min(config.stats_photos, 200, len(photos)))
        std = fit_feature_std(fit, spec, teacher, decode)
    np.save(own, std)
    return std


def resolve_spec(config: DistillConfig, photos: list[Path]) -> InputSpec:
    """The run's InputSpec: its own ``spec.json``, the ``init`` run's, or freshly fitted."""
    own = config.work / "spec.json"
    source = own if own.is_file() else (config.init / "spec.json" if config.init else None)
    grid = config.model.grid
    if source is not None and source.is_file():
        spec = InputSpec.from_json(source.read_text())
    else:
        raw = base_spec(config.model.student, grid)
        fit = random.Random(config.seed).sample(photos, min(config.stats_photos, len(photos)))
        spec = InputSpec.from_dict({**raw.to_dict(), "normalize": channel_stats(fit, raw)})
    if spec.grid != (grid, grid):
        raise SystemExit(f"error: {source} has grid {spec.grid}, the run asks for {grid}")
    own.write_text(spec.to_json())
    return spec


# ----------------------------------------------------------------------------- batches


class Batch(NamedTuple):
    """One training batch.

    Attributes:
        inputs: student tensors ``{name: [b, H, W, C]}`` float32 from ``edge_dct.prepare``.
        feature: teacher ``block4_add`` ``[b, G, G, 40]`` float32 (an online teacher: the cut
            tensor, filled in by :func:`label`).
        logits: teacher logits ``[b, 1000]`` float32.
        pixels: the teacher's own view ``[b, 8G, 8G, 3]`` (online ``"decode"`` teacher), else None.
    """

    inputs: dict[str, np.ndarray]
    feature: np.ndarray | None
    logits: np.ndarray | None
    pixels: np.ndarray | None = None


def sample_pool(targets: Targets) -> list[tuple[int, int]]:
    """Every computed, decodable ``(variant, photo)`` of the targets, in a fixed order."""
    return [(v, i) for v in range(targets.variants) for i in range(targets.done[v])
            if targets.valid[v, i]]


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch, a pure function of (seed, epoch) so resumes replay it."""
    order = list(range(size))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def load_sample(targets: Targets, data: Path, spec: InputSpec, v: int, i: int) -> dict[str, np.ndarray]:
    """Student tensors of (variant ``v``, photo ``i``): the stored window through prepare()."""
    window = tuple(float(x) for x in targets.window[v, i])
    return prepare(data / targets.photos[i], spec, window=window, hflip=bool(targets.hflip[v, i]))


def prefetched(pool: list[tuple[int, int]], load: Any, batch: int, start_step: int, seed: int, workers: int,
               prefetch: int) -> Iterator[tuple[list[tuple[int, int]], list[Any]]]:
    """``(picks, load(*pick) for each pick)`` of every step from ``start_step`` on, loaded
    ``prefetch`` steps ahead by ``workers`` threads.

    Step ``s`` takes samples ``s * batch .. (s + 1) * batch`` of the epoch-wise shuffled pool,
    so a resumed run sees the batches an uninterrupted run would have seen.
    """
    pool_exec = ThreadPoolExecutor(workers, thread_name_prefix="distill-data")
    pending: deque[tuple[list[tuple[int, int]], list[Future]]] = deque()
    orders: dict[int, list[int]] = {}

    def submit(s: int) -> tuple[list[tuple[int, int]], list[Future]]:
        picks = []
        for slot in range(batch):
            epoch, index = divmod(s * batch + slot, len(pool))
            if epoch not in orders:
                orders.clear()
                orders[epoch] = epoch_order(len(pool), seed, epoch)
            picks.append(pool[orders[epoch][index]])
        return picks, [pool_exec.submit(load, *p) for p in picks]

    step = start_step
    try:
        while True:
            while len(pending) < prefetch:
                pending.append(submit(step + len(pending)))
            picks, futures = pending.popleft()
            step += 1
            yield picks, [f.result() for f in futures]
    finally:
        pool_exec.shutdown(wait=True, cancel_futures=True)


def batches(targets: Targets, pool: list[tuple[int, int]], data: Path, spec: InputSpec, batch: int,
            start_step: int, seed: int, workers: int, prefetch: int) -> Iterator[Batch]:
    """Training batches of the cached targets from ``start_step`` on (:func:`prefetched` order)."""
    with contextlib.closing(prefetched(pool, functools.partial(load_sample, targets, data, spec), batch,
                                       start_step, seed, workers, prefetch)) as steps:
        for picks, tensors in steps:
            vs, idx = np.array([p[0] for p in picks]), np.array([p[1] for p in picks])
            yield Batch({n: np.concatenate([t[n] for t in tensors]) for n in tensors[0]},
                        targets.feature[vs, idx].astype(np.float32),
                        targets.logits[vs, idx].astype(np.float32))


def online_sample(photos: list[Path], spec: InputSpec, v: int, i: int,
                  decode: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Student tensors of (variant ``v``, photo ``i``) and, with ``decode``, the teacher's view."""
    data = photos[i].read_bytes()
    window, hflip = crop_of(data, v, i, spec.grid[0])
    inputs = prepare(data, spec, window=window, hflip=hflip)
    return inputs, teacher_crop(decode_rgb(data), window, hflip, 8 * spec.grid[0]) if decode else None


def online_batches(photos: list[Path], variants: int, spec: InputSpec, batch: int, start_step: int,
                   seed: int, workers: int, prefetch: int, decode: bool) -> Iterator[Batch]:
    """Unlabelled batches of (variant, photo) crops for an online teacher (:func:`prefetched`
    order); a photo that cannot be read is replaced by the next one."""
    pool = [(v, i) for v in range(variants) for i in range(len(photos))]

    def load(v: int, i: int):
        for k in range(len(photos)):
            try:
                return online_sample(photos, spec, v, (i + k) % len(photos), decode)
            except (OSError, ValueError):  # edge_dct's JPEG errors are ValueErrors
                continue
        raise RuntimeError("no training photo could be read")

    with contextlib.closing(prefetched(pool, load, batch, start_step, seed, workers, prefetch)) as steps:
        for _, samples in steps:
            inputs = {n: np.concatenate([t[n] for t, _ in samples]) for n in samples[0][0]}
            pixels = np.concatenate([p for _, p in samples]) if decode else None
            yield Batch(inputs, None, None, pixels)


def label(batch: Batch, teacher: Any) -> Batch:
    """``batch`` with the online teacher's cut tensor (and logits, when it computes them)."""
    out = teacher(batch.inputs, batch.pixels)
    return batch._replace(feature=out[0], logits=out[1] if len(out) > 1 else None)


def fit_feature_std(photos: list[Path], spec: InputSpec, teacher: Any, decode: bool) -> np.ndarray:
    """Per-channel standard deviation ``[C]`` float32 of the teacher's cut tensor on the
    serving crops of ``photos``."""
    feats = []
    for i in range(len(photos)):
        inputs, pixels = online_sample(photos, spec, 0, i, decode)
        f = teacher(inputs, pixels)[0]
        feats.append(f.reshape(-1, f.shape[-1]))
    return np.maximum(np.concatenate(feats).std(0), 1e-3).astype(np.float32)


# ----------------------------------------------------------------------------- models


def is_adapter(layer_name: str) -> bool:
    """Whether a student layer belongs to the (randomly initialised) DCT adapter."""
    return layer_name.startswith("adapter_")


class Student:
    """The Keras student and its PyTorch twin (:class:`converters.train.torch_graph.TorchGraph`).

    Training runs on the twin; :meth:`keras_model` copies its weights back for export.
    The ``feature`` stage computes only the adapter. The pretrained back half's
    BatchNormalization layers stay in inference mode with their ImageNet statistics, and
    the head's dropout is off (the student follows the teacher's logits, not labels).

    Args:
        config: the student and its stage.
    """

    def __init__(self, config: StudentConfig):
        import torch

        from .torch_graph import TorchGraph, to_torch

        self.config = config
        self.keras = config.build()
        outputs = [STUDENT_FEATURE] + (["logits"] if config.stage == "logits" else [])
        self.graph = TorchGraph(self.keras, outputs).to(memory_format=torch.channels_last)
        to_torch(self.keras, self.graph)
        for name, module in self.graph.layers.items():
            trainable = is_adapter(name) or (config.stage == "logits" and not isinstance(module, torch.nn.BatchNorm2d))
            for p in module.parameters():
                p.requires_grad_(trainable)
            if is_adapter(name) and isinstance(module, torch.nn.BatchNorm2d):
                # Keras' 0.99 momentum needs ~1000 steps to forget the initial variance of 1,
                # far above the adapter's actual activations: track the batches faster.
                module.momentum = ADAPTER_BN_MOMENTUM

    def train(self) -> None:
        """Training mode for the adapter; inference mode for frozen BN and dropout."""
        import torch

        self.graph.train()
        for name, module in self.graph.layers.items():
            if not is_adapter(name) and isinstance(module, (torch.nn.BatchNorm2d, torch.nn.Dropout)):
                module.eval()

    def parameter_groups(self) -> tuple[list, list]:
        """(adapter, back half) trainable parameters."""
        adapter, tail = [], []
        for name, module in self.graph.layers.items():
            (adapter if is_adapter(name) else tail).extend(p for p in module.parameters() if p.requires_grad)
        return adapter, tail

    def __call__(self, inputs: dict[str, np.ndarray]):
        """Twin outputs ``[adapter_out NCHW, (logits)]`` for NHWC numpy inputs."""
        from .torch_graph import nchw

        return self.graph({k: nchw(v) for k, v in inputs.items()})

    def logits(self, inputs: dict[str, np.ndarray], batch: int) -> np.ndarray:
        """Inference-mode logits ``[n, classes]`` float32 of the whole student (whatever the stage)."""
        import torch

        from .torch_graph import TorchGraph, nchw, to_torch

        full = TorchGraph(self.keras_model()).to(memory_format=torch.channels_last).eval()
        to_torch(self.keras, full)
        n = len(next(iter(inputs.values())))
        with torch.no_grad():
            return np.concatenate([full({k: nchw(v[s:s + batch]) for k, v in inputs.items()})[0].numpy()
                                   for s in range(0, n, batch)])

    def keras_model(self):
        """The Keras student with the twin's current weights."""
        from .torch_graph import to_keras

        to_keras(self.graph, self.keras)
        return self.keras


def lr_factor(step: int, warmup: int, steps: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps (at most ``steps // 2``), then cosine decay to 0 at ``steps``."""
    warmup = min(warmup, steps // 2)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(steps - warmup, 1))))


class Trainer:
    """One AdamW step per call: adapter at ``lr``, back half at ``lr * tail_lr_scale``.

    Args:
        student: the student whose twin trains.
        optim: optimizer, schedule and losses.
        feature_std: per-channel ``[C]`` scale of the teacher's cut tensor; the feature MSE is
            then taken on standardised tensors (online teachers); None: raw MSE.
    """

    def __init__(self, student: Student, optim: OptimConfig, feature_std: np.ndarray | None = None):
        import torch

        self.student, self.optim = student, optim
        self.feature_scale = None if feature_std is None else torch.from_numpy(
            1.0 / np.asarray(feature_std, np.float32))[None, :, None, None]
        adapter, tail = student.parameter_groups()
        groups = [{"params": adapter, "lr": optim.lr}]
        if tail:
            groups.append({"params": tail, "lr": optim.lr * optim.tail_lr_scale})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=optim.weight_decay)
        self.base_lrs = [g["lr"] for g in groups]
        self.step = 0

    def losses(self, batch: Batch) -> dict[str, Any]:
        """Feature MSE and (logits stage) ``T^2 KL(teacher || student)`` at temperature T."""
        import torch
        import torch.nn.functional as F

        outputs = self.student(batch.inputs)
        teacher_feature = torch.from_numpy(batch.feature).permute(0, 3, 1, 2)
        if self.feature_scale is None:
            feat = F.mse_loss(outputs[0], teacher_feature)
        else:  # per-channel standardised: 1 - R^2
            feat = F.mse_loss(outputs[0] * self.feature_scale, teacher_feature * self.feature_scale)
        if self.student.config.stage == "feature":
            return {"loss": feat, "feature_mse": feat, "kl": torch.zeros(())}
        t = self.optim.temperature
        log_t = F.log_softmax(torch.from_numpy(batch.logits) / t, -1)
        log_s = F.log_softmax(outputs[1] / t, -1)
        kl = t * t * (log_t.exp() * (log_t - log_s)).sum(-1).mean()
        return {"loss": kl + self.optim.feature_weight * feat, "feature_mse": feat, "kl": kl}

    def __call__(self, batch: Batch) -> dict[str, float]:
        """Runs one step and returns its float losses."""
        import torch

        factor = lr_factor(self.step, self.optim.warmup, self.optim.steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        self.student.train()
        losses = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.optim.clipnorm)
        self.optimizer.step()
        self.step += 1
        return {k: float(v.detach()) for k, v in losses.items()}

    def learning_rate(self) -> float:
        """The adapter's current learning rate."""
        return self.optimizer.param_groups[0]["lr"]


# ----------------------------------------------------------------------------- checkpoints


def checkpoints(work: Path) -> list[Path]:
    """Complete checkpoints (with ``state.json``) in step order."""
    return sorted(p.parent for p in work.glob(f"{CHECKPOINT_PREFIX}*/state.json"))


def save_checkpoint(trainer: Trainer, config: DistillConfig) -> Path:
    """Writes ``ckpt-<step>/`` atomically (temp folder, then rename) and keeps the ``keep`` newest."""
    import torch

    final = config.work / f"{CHECKPOINT_PREFIX}{trainer.step:07d}"
    tmp = config.work / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trainer.student.graph.state_dict(), tmp / "student.pt")
    torch.save(trainer.optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(
        {"step": trainer.step, "seed": config.seed, "time": time.time(),
         "student": dataclasses.asdict(trainer.student.config), "config": config.to_json()}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(config.work)[:-config.keep]:
        shutil.rmtree(old)
    return final


def load_checkpoint(path: Path, student: Student, trainer: Trainer | None) -> dict[str, Any]:
    """Loads the twin's weights (all of them, or the adapter's of a feature-stage checkpoint into
    a logits-stage student) and, with ``trainer``, optimizer state and step; returns ``state.json``."""
    import torch

    weights = torch.load(path / "student.pt", weights_only=True)
    missing, unexpected = student.graph.load_state_dict(weights, strict=False)
    if unexpected or any(is_adapter(k.split(".")[1]) for k in missing):
        raise SystemExit(f"error: {path} does not fit this student (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    state = json.loads((path / "state.json").read_text())
    if trainer is not None:
        trainer.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        trainer.step = int(state["step"])
    return state


def saved_student(checkpoint: Path) -> StudentConfig:
    """The :class:`StudentConfig` a checkpoint was written with."""
    return StudentConfig(**json.loads((checkpoint / "state.json").read_text())["student"])


def load_student(run: Path) -> tuple[Student, Path]:
    """A run's latest student, whole (logits stage), with its weights; and that checkpoint.

    Raises:
        SystemExit: the run has no checkpoint.
    """
    found = checkpoints(run)
    if not found:
        raise SystemExit(f"error: no checkpoint under {run}")
    student = Student(dataclasses.replace(saved_student(found[-1]), stage="logits"))
    load_checkpoint(found[-1], student, None)
    return student, found[-1]


def check_compatible(saved: StudentConfig, wanted: StudentConfig, what: str,
                     fields: tuple[str, ...]) -> None:
    """Exits when two student configs differ in one of ``fields``, naming it."""
    for key in fields:
        if getattr(saved, key) != getattr(wanted, key):
            raise SystemExit(f"error: {what} was written with {key}={getattr(saved, key)!r}, "
                             f"this run has {getattr(wanted, key)!r}")


# ----------------------------------------------------------------------------- evaluation


def evaluate(student: Student, data: EvalSet, batch: int) -> dict[str, float]:
    """:func:`converters.train.evaluation.agreement` of the current student on the evaluation set."""
    top5 = np.argsort(-student.logits(data.inputs, batch), 1)[:, :5]
    return agreement(top5, data.teacher_logits, data.labels)


def log(work: Path, record: dict[str, Any]) -> None:
    """Appends a record to ``log.jsonl`` and prints it."""
    line = json.dumps(record)
    with open(work / "log.jsonl", "a") as f:
        f.write(line + "\n")
    print(line, flush=True)


# ----------------------------------------------------------------------------- training


class StopFlag:
    """Set by SIGTERM so the loop checkpoints and exits between steps."""

    def __init__(self) -> None:
        self.reason: str | None = None
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name


def start_state(config: DistillConfig, student: Student, trainer: Trainer) -> int:
    """Restores the latest checkpoint (or the ``init`` run's weights); returns the first step.

    Raises:
        SystemExit: the checkpoint was written for another student, stage or seed.
    """
    found = checkpoints(config.work)
    if found:
        state = json.loads((found[-1] / "state.json").read_text())
        check_compatible(saved_student(found[-1]), config.model, str(found[-1]),
                         tuple(f.name for f in dataclasses.fields(StudentConfig)))
        if state["seed"] != config.seed:
            raise SystemExit(f"error: {found[-1]} was written with seed={state['seed']!r}, "
                             f"this run has {config.seed!r}")
        state = load_checkpoint(found[-1], student, trainer)
        log(config.work, {"event": "resume", "checkpoint": found[-1].name, "step": state["step"]})
        return int(state["step"])
    if config.init:
        init = checkpoints(config.init)
        if not init:
            raise SystemExit(f"error: no checkpoint under --init {config.init}")
        check_compatible(saved_student(init[-1]), config.model, str(init[-1]), StudentConfig.ARCHITECTURE)
        load_checkpoint(init[-1], student, None)
        log(config.work, {"event": "init", "from": str(init[-1])})
    return 0


def train(config: DistillConfig) -> int:
    """The training loop; returns the process exit status."""
    import torch

    started = time.time()
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    config.work.mkdir(parents=True, exist_ok=True)
    online = config.teacher != "targets"
    if online:
        photos = training_photos(config.data)
        if not photos:
            raise SystemExit(f"error: no training photos under {config.data} (bash scripts/get_data.sh)")
        pool_size = config.variants * len(photos)
    else:
        targets = Targets(config.targets, grid=config.model.grid)
        pool = sample_pool(targets)
        if not pool:
            raise SystemExit(f"error: no teacher targets under {config.targets} (python -m converters targets)")
        photos = [config.data / p for p in targets.photos]
        pool_size = len(pool)
    spec = resolve_spec(config, photos)
    feature_std, live = None, None
    if online:
        from ..zoo.efficientnet_dct import student_cut
        from .exact_teacher import ExactTeacher

        decode = config.teacher == "decode"
        live = ExactTeacher(student_cut(config.model.student), spec, logits=config.model.stage == "logits")
        feature_std = resolve_feature_std(config, photos, spec, live, decode)
    student = Student(config.model)
    trainer = Trainer(student, config.optim, feature_std)
    step = start_state(config, student, trainer)
    teacher = Teacher(teacher_bundles(config.targets, config.model.grid))
    held = make_eval_set(held_out_photos(config.data, config.eval_photos), spec, teacher)
    stop = StopFlag()
    optim = config.optim
    log(config.work, {"event": "start", "step": step, "samples": pool_size, "photos": len(photos),
                      "eval_photos": len(held.labels), "setup_s": round(time.time() - started, 1)})
    if online:
        data = online_batches(photos, config.variants, spec, optim.batch, step, config.seed, config.workers,
                              config.prefetch, decode)
    else:
        data = batches(targets, pool, config.data, spec, optim.batch, step, config.seed, config.workers,
                       config.prefetch)
    busy, window_steps, waited = 0.0, 0, 0.0
    try:
        while step < optim.steps and stop.reason is None:
            if time.time() - started > 60 * config.max_minutes:
                stop.reason = "max-minutes"
                break
            t = time.time()
            batch = next(data)
            waited += time.time() - t
            if live is not None:
                batch = label(batch, live)
            losses = trainer(batch)
            busy += time.time() - t
            step += 1
            window_steps += 1
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"step {step}: non-finite loss {losses}")
            if step % config.log_every == 0 or step == optim.steps:
                log(config.work, {"step": step, **{k: round(v, 6) for k, v in losses.items()},
                                  "images_per_s": round(window_steps * optim.batch / busy, 1),
                                  "data_wait": round(waited / busy, 3), "lr": trainer.learning_rate(),
                                  "epoch": round(step * optim.batch / pool_size, 3)})
                busy, window_steps, waited = 0.0, 0, 0.0
            if step % config.checkpoint_every == 0:
                save_checkpoint(trainer, config)
            if step % config.eval_every == 0:
                log(config.work, {"step": step, "eval": evaluate(student, held, optim.batch)})
    except KeyboardInterrupt:
        stop.reason = "KeyboardInterrupt"
    finally:
        data.close()
    path = save_checkpoint(trainer, config)
    if step % config.eval_every:
        log(config.work, {"step": step, "eval": evaluate(student, held, optim.batch)})
    log(config.work, {"event": "stop", "step": step, "reason": stop.reason or "steps", "checkpoint": path.name,
                      "minutes": round((time.time() - started) / 60, 2)})
    return 130 if stop.reason == "KeyboardInterrupt" else 0


# ----------------------------------------------------------------------------- export


def export_student(config: StudentExportConfig) -> int:
    """Int8 (and fp32) bundles of the run's latest student, calibrated on training photos
    through prepare(), with fidelity to the teacher on the held-back photos."""
    from ..ship.export import convert
    from ..ship.metadata import embed_metadata
    from ..zoo.imagenet import imagenet_labels

    student, checkpoint = load_student(config.work)
    sc = student.config
    spec = InputSpec.from_json((config.work / "spec.json").read_text())
    model = student.keras_model()
    training = training_photos(config.data)
    photos = random.Random(config.seed).sample(training, min(config.calibration, len(training)))
    meta = {**spec.to_dict(), "labels": list(imagenet_labels()), "model": sc.student,
            "adapter_width": sc.adapter_width, "adapter_blocks": sc.adapter_blocks,
            "checkpoint": checkpoint.name, "recipe": "python -m converters distill (see converters/README.md)"}
    config.out.parent.mkdir(parents=True, exist_ok=True)
    fp32_path = config.out.with_name(config.out.stem + "_fp32.tflite")
    fp32_path.write_bytes(embed_metadata(convert(model, "fp32"), meta))
    int8 = convert(model, "int8", lambda: (prepare(p, spec) for p in photos))
    config.out.write_bytes(embed_metadata(int8, meta))
    report = {"bundle": str(config.out), "fp32_bundle": str(fp32_path), "size_bytes": config.out.stat().st_size,
              "checkpoint": str(checkpoint), "calibration_photos": len(photos)}
    if config.eval_photos:
        held = held_out_photos(config.data, config.eval_photos)
        report["fidelity"] = bundle_fidelity(config.out, fp32_path, held, spec,
                                             Teacher(teacher_bundles(config.targets, sc.grid)))
    (config.work / "export.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


# ----------------------------------------------------------------------------- command line


def _fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are fields of dataclass ``cls``."""
    return {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values}


def parse_args(argv: list[str] | None = None) -> DistillConfig | StudentExportConfig:
    """The command line (see the module docstring): a training config, or with ``--export`` an export one."""
    d, s, o = DistillConfig(work=Path()), StudentConfig(), OptimConfig()
    p = argparse.ArgumentParser(prog="python -m converters distill", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="run folder: checkpoints, spec.json, log.jsonl")
    p.add_argument("--data", type=Path, default=d.data, help="folder of the photo sets (bash scripts/get_data.sh)")
    p.add_argument("--targets", type=Path, default=d.targets, help="teacher targets (python -m converters targets)")
    p.add_argument("--student", default=s.student)
    p.add_argument("--adapter-width", type=int, default=s.adapter_width)
    p.add_argument("--adapter-blocks", type=int, default=s.adapter_blocks)
    p.add_argument("--grid", type=int, default=s.grid, help="luma blocks per side (teacher sees 8x as pixels)")
    p.add_argument("--stage", choices=STAGES, default=s.stage)
    p.add_argument("--teacher", choices=TEACHERS, default=d.teacher,
                   help="cached LiteRT targets (cut 4 only) or an online PyTorch teacher on the exact "
                        "inverse of the student's input / on the decode of the same window")
    p.add_argument("--variants", type=int, default=d.variants, help="crop variants per photo (online teacher)")
    p.add_argument("--init", type=Path, help="start from the latest checkpoint of this run (weights, spec)")
    p.add_argument("--steps", type=int, default=o.steps, help="total steps (end of the cosine schedule)")
    p.add_argument("--batch", type=int, default=o.batch)
    p.add_argument("--lr", type=float, default=o.lr, help="adapter peak learning rate")
    p.add_argument("--tail-lr-scale", type=float, default=o.tail_lr_scale, help="back half LR / adapter LR (logits stage)")
    p.add_argument("--warmup", type=int, default=o.warmup)
    p.add_argument("--weight-decay", type=float, default=o.weight_decay)
    p.add_argument("--clipnorm", type=float, default=o.clipnorm)
    p.add_argument("--temperature", type=float, default=o.temperature)
    p.add_argument("--feature-weight", type=float, default=o.feature_weight, help="feature MSE weight in the logits stage")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads, help="PyTorch threads (0: its default)")
    p.add_argument("--workers", type=int, default=d.workers, help="data threads")
    p.add_argument("--prefetch", type=int, default=d.prefetch, help="batches in flight")
    p.add_argument("--stats-photos", type=int, default=d.stats_photos, help="photos for the input normalization")
    p.add_argument("--eval-photos", type=int, default=d.eval_photos, help="held-back photos (export: all evaluated)")
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--keep", type=int, default=d.keep, help="checkpoints kept")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes)
    p.add_argument("--export", type=Path, metavar="OUT", help="write the int8 bundle of the run's student and exit")
    p.add_argument("--calibration", type=int, default=300, help="training photos calibrating int8 (--export)")
    values = vars(p.parse_args(argv))
    if values["export"] is not None:
        return StudentExportConfig(out=values.pop("export"), **_fields(StudentExportConfig, values))
    return DistillConfig(model=StudentConfig(**_fields(StudentConfig, values)),
                         optim=OptimConfig(**_fields(OptimConfig, values)), **_fields(DistillConfig, values))


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    config = parse_args(argv)
    return export_student(config) if isinstance(config, StudentExportConfig) else train(config)


if __name__ == "__main__":
    sys.exit(main())
