"""Distil the EfficientNet-Lite0 RGB teacher into an EfficientNet-Lite0-DCT student (issue #5).

    python -m converters.targets                       # teacher answers, once (~15 min)
    python -m converters.distill --adapter-width 512 --stage feature --steps 3000 \\
        --work ~/edge_dct_work/distill/feat512
    python -m converters.distill --adapter-width 512 --stage logits --steps 6000 \\
        --init ~/edge_dct_work/distill/feat512 --work ~/edge_dct_work/distill/logits512
    python -m converters.distill --work ~/edge_dct_work/distill/logits512 --export student_int8.tflite

Data (train and serve identical): :mod:`converters.targets` stores, for every training photo
and crop variant (the serving crop, then seeded random resized crops with flips), the crop
window and the teacher's ``block4_add`` and logits on the libjpeg-turbo decode of that window.
The student reads the *same* window of the same file through the C core's ``prepare`` (the
code path that serves the model), mirrored when the teacher's input was (the teacher's input
is flipped, never its features). Batches are built by a thread pool (prepare releases the GIL)
a bounded number of steps ahead.

Training runs in PyTorch on a twin of the Keras student (:mod:`converters.torch_graph`; ~5x
faster than TensorFlow on a CPU for these depthwise networks); the export copies the weights
back into the Keras model and converts it like every zoo model.

Stages:

* ``feature``: MSE between the student's ``adapter_out`` (``[b, H, W, 40]``) and the teacher's
  ``block4_add`` (the input of block 5); only the adapter trains.
* ``logits``: ``T^2 KL(softmax(teacher / T) || softmax(student / T))`` plus
  ``--feature-weight`` times the feature MSE; the whole student trains, the pretrained back
  half with ``--tail-lr-scale`` times the adapter's learning rate. The back half's
  BatchNormalization layers stay in inference mode (their ImageNet statistics are kept).

AdamW with linear warm-up and cosine decay. The input normalization (per-channel centre and
largest deviation of the coefficients, as :func:`converters.calibration.channel_stats`
motivates for int8 inputs) is fitted once per run on training photos and stored with the
run; ``--init`` runs inherit it.

The work directory holds ``ckpt-NNNNNNN/`` checkpoints (twin weights, optimizer state,
``state.json`` with step, seed and arguments), ``spec.json`` (the InputSpec the student is
trained with) and ``log.jsonl`` (training and evaluation records, with images/s, losses,
learning rate and every ``--eval-every`` steps the agreement with the teacher on held-back
photos). A run resumes from its latest checkpoint and stops at ``--steps``, after
``--max-minutes``, or on SIGTERM / Ctrl-C, checkpointing first.
"""

from __future__ import annotations

import argparse
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

import cv2
import numpy as np

from edge_dct.prepare import Window, eval_window, oriented_size, prepare
from edge_dct.spec import InputSpec

from .calibration import channel_stats
from .default_model import jpegs
from .intervals import wilson_interval
from .registry import get_config
from .targets import Teacher, Targets, teacher_bundles

TEACHER = "efficientnet_lite0_rgb"
TEACHER_FEATURE = "block4_add"
"""Teacher layer whose output (28x28x40 at 224 px) is the input of block 5."""
STUDENT_FEATURE = "adapter_out"
CHECKPOINT_PREFIX = "ckpt-"
ADAPTER_BN_MOMENTUM = 0.1
"""PyTorch momentum (weight of the new batch) of the adapter's BatchNormalization statistics."""
STRUCTURAL = ("student", "adapter_width", "adapter_blocks", "grid", "stage", "seed")
"""Arguments a resumed run must share with the run that wrote the checkpoint."""


# ----------------------------------------------------------------------------- data


def decode_rgb(data: bytes) -> np.ndarray:
    """libjpeg-turbo (OpenCV) decode with EXIF orientation applied, RGB uint8 ``[h, w, 3]``."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("OpenCV could not decode the JPEG")
    return bgr[..., ::-1]


def teacher_crop(rgb: np.ndarray, window: Window, hflip: bool, size: int) -> np.ndarray:
    """The teacher's view of a window: crop, resize to ``size``, mirror, ``(x - 127) / 128``.

    The pixels covering the window are cut out, resized by ``size / w`` and ``size / h`` (area
    averaging when shrinking, bilinear when enlarging) and the window's own ``size x size``
    part is taken at its sub-pixel offset, rounded.

    Args:
        rgb: the full decode ``[h, w, 3]`` uint8, oriented.
        window: ``(x, y, w, h)`` float crop in the decode's pixel coordinates.
        hflip: mirror the crop left-right (as ``prepare(..., hflip=True)`` does).
        size: output side in pixels (8 x grid).

    Returns:
        ``[1, size, size, 3]`` float32.
    """
    x, y, w, h = window
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    x1, y1 = min(int(math.ceil(x + w)), rgb.shape[1]), min(int(math.ceil(y + h)), rgb.shape[0])
    sx, sy = size / w, size / h
    rw, rh = max(size, round((x1 - x0) * sx)), max(size, round((y1 - y0) * sy))
    shrink = sx < 1 and sy < 1
    region = cv2.resize(rgb[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    left, top = min(round((x - x0) * sx), rw - size), min(round((y - y0) * sy), rh - size)
    crop = region[top:top + size, left:left + size]
    if hflip:
        crop = crop[:, ::-1]
    return ((crop.astype(np.float32) - 127.0) / 128.0)[None]


PHOTO_SETS = ("imagenette", "intel", "catsdogs", "flowers", "clothing")
"""Folders of ``--data`` (``scripts/get_data.sh``); Imagenette's ``val/`` never trains."""
HOLD_BACK_EVERY = 20
"""Of the other sets, every 20th photo (sorted order) is held back for evaluation."""


def _split(data: Path) -> tuple[list[Path], list[Path]]:
    """(training, held-back) photos of every set present, minus the exclude list."""
    train, held = jpegs(data / "imagenette", "train"), jpegs(data / "imagenette", "val")
    for name in PHOTO_SETS[1:]:
        photos = jpegs(data / name, "")
        held += photos[::HOLD_BACK_EVERY]
        train += [p for i, p in enumerate(photos) if i % HOLD_BACK_EVERY]
    return train, held


def training_photos(data: Path) -> list[Path]:
    """Every photo set's training part (Imagenette ``train/`` and 19 of 20 of the others)."""
    return _split(data)[0]


def held_out_photos(data: Path, n: int) -> list[Path]:
    """A fixed, seeded subset of the held-back photos (Imagenette ``val/`` + 1 in 20 of the others)."""
    held = _split(data)[1]
    return sorted(random.Random(0).sample(held, min(n, len(held))))


def base_spec(student: str, grid: int) -> InputSpec:
    """The student's registry InputSpec at ``grid``, without normalization (raw coefficients)."""
    d = get_config(student).input_spec
    d.update(grid=[grid, grid], resize={"mode": "shorter_side", "size": round(64 * grid / 7)},
             normalize=None)
    return InputSpec.from_dict(d)


def resolve_spec(args: argparse.Namespace, photos: list[Path]) -> InputSpec:
    """The run's InputSpec: its own ``spec.json``, the ``--init`` run's, or freshly fitted."""
    own = args.work / "spec.json"
    source = own if own.is_file() else (args.init / "spec.json" if args.init else None)
    if source is not None and source.is_file():
        spec = InputSpec.from_json(source.read_text())
    else:
        raw = base_spec(args.student, args.grid)
        fit = random.Random(args.seed).sample(photos, min(args.stats_photos, len(photos)))
        spec = InputSpec.from_dict({**raw.to_dict(), "normalize": channel_stats(fit, raw)})
    if spec.grid != (args.grid, args.grid):
        raise SystemExit(f"error: {source} has grid {spec.grid}, the run asks for {args.grid}")
    own.write_text(spec.to_json())
    return spec


# ----------------------------------------------------------------------------- batches


class Batch(NamedTuple):
    """One training batch.

    Attributes:
        inputs: student tensors ``{name: [b, H, W, C]}`` float32 from ``edge_dct.prepare``.
        feature: teacher ``block4_add`` ``[b, G, G, 40]`` float32.
        logits: teacher logits ``[b, 1000]`` float32.
    """

    inputs: dict[str, np.ndarray]
    feature: np.ndarray
    logits: np.ndarray


def sample_pool(targets: Targets) -> list[tuple[int, int]]:
    """Every computed, decodable ``(variant, photo)`` of the targets, in a fixed order."""
    return [(v, i) for v in range(targets.variants) for i in range(targets.done[v])
            if targets.valid[v, i]]


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch, a pure function of (seed, epoch) so resumes replay it."""
    order = list(range(size))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def load_sample(targets: Targets, data: Path, spec: InputSpec, v: int, i: int):
    """Student tensors of (variant ``v``, photo ``i``): the stored window through prepare()."""
    window = tuple(float(x) for x in targets.window[v, i])
    return prepare(data / targets.photos[i], spec, window=window, hflip=bool(targets.hflip[v, i]))


def batches(targets: Targets, pool: list[tuple[int, int]], data: Path, spec: InputSpec, batch: int,
            start_step: int, seed: int, workers: int, prefetch: int) -> Iterator[Batch]:
    """Training batches from ``start_step`` on, built ``prefetch`` steps ahead by ``workers`` threads.

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
        return picks, [pool_exec.submit(load_sample, targets, data, spec, v, i) for v, i in picks]

    step = start_step
    try:
        while True:
            while len(pending) < prefetch:
                pending.append(submit(step + len(pending)))
            picks, futures = pending.popleft()
            step += 1
            tensors = [f.result() for f in futures]
            vs, idx = np.array([p[0] for p in picks]), np.array([p[1] for p in picks])
            yield Batch({n: np.concatenate([t[n] for t in tensors]) for n in tensors[0]},
                        targets.feature[vs, idx].astype(np.float32),
                        targets.logits[vs, idx].astype(np.float32))
    finally:
        pool_exec.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- models


def build_student(args: argparse.Namespace, weights: str | None = "imagenet"):
    """The Keras student named by the run's arguments."""
    from .registry import build

    return build(args.student, grid=(args.grid, args.grid), adapter_width=args.adapter_width,
                 adapter_blocks=args.adapter_blocks, weights=weights)


def is_adapter(layer_name: str) -> bool:
    """Whether a student layer belongs to the (randomly initialised) DCT adapter."""
    return layer_name.startswith("adapter_")


class Student:
    """The Keras student and its PyTorch twin (:class:`converters.torch_graph.TorchGraph`).

    Training runs on the twin; :meth:`keras_model` copies its weights back for export.
    The ``feature`` stage computes only the adapter. The pretrained back half's
    BatchNormalization layers stay in inference mode with their ImageNet statistics, and
    the head's dropout is off (the student follows the teacher's logits, not labels).
    """

    def __init__(self, args: argparse.Namespace):
        import torch

        from .torch_graph import TorchGraph, to_torch

        self.args = args
        self.keras = build_student(args)
        outputs = [STUDENT_FEATURE] + (["logits"] if args.stage == "logits" else [])
        self.graph = TorchGraph(self.keras, outputs).to(memory_format=torch.channels_last)
        to_torch(self.keras, self.graph)
        for name, module in self.graph.layers.items():
            trainable = is_adapter(name) or (args.stage == "logits" and not isinstance(module, torch.nn.BatchNorm2d))
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
        """Inference-mode logits ``[n, classes]`` of the whole student (whatever the stage)."""
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


def lr_factor(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up to 1 over ``--warmup`` steps, then cosine decay to 0 at ``--steps``."""
    warmup = min(args.warmup, args.steps // 2)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(args.steps - warmup, 1))))


class Trainer:
    """One AdamW step per call: adapter at ``--lr``, back half at ``--lr * --tail-lr-scale``."""

    def __init__(self, student: Student, args: argparse.Namespace):
        import torch

        self.student, self.args = student, args
        adapter, tail = student.parameter_groups()
        groups = [{"params": adapter, "lr": args.lr}]
        if tail:
            groups.append({"params": tail, "lr": args.lr * args.tail_lr_scale})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
        self.base_lrs = [g["lr"] for g in groups]
        self.step = 0

    def losses(self, batch: Batch) -> dict[str, Any]:
        """Feature MSE and (logits stage) ``T^2 KL(teacher || student)`` at temperature T."""
        import torch
        import torch.nn.functional as F

        outputs = self.student(batch.inputs)
        teacher_feature = torch.from_numpy(batch.feature).permute(0, 3, 1, 2)
        feat = F.mse_loss(outputs[0], teacher_feature)
        if self.args.stage == "feature":
            return {"loss": feat, "feature_mse": feat, "kl": torch.zeros(())}
        t = self.args.temperature
        log_t = F.log_softmax(torch.from_numpy(batch.logits) / t, -1)
        log_s = F.log_softmax(outputs[1] / t, -1)
        kl = t * t * (log_t.exp() * (log_t - log_s)).sum(-1).mean()
        return {"loss": kl + self.args.feature_weight * feat, "feature_mse": feat, "kl": kl}

    def __call__(self, batch: Batch) -> dict[str, float]:
        """Runs one step and returns its float losses."""
        import torch

        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * lr_factor(self.step, self.args)
        self.student.train()
        losses = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.args.clipnorm)
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


def save_checkpoint(work: Path, trainer: Trainer, args: argparse.Namespace, keep: int) -> Path:
    """Writes ``ckpt-<step>/`` atomically (temp folder, then rename) and keeps the ``keep`` newest."""
    import torch

    final = work / f"{CHECKPOINT_PREFIX}{trainer.step:07d}"
    tmp = work / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(trainer.student.graph.state_dict(), tmp / "student.pt")
    torch.save(trainer.optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(
        {"step": trainer.step, "seed": args.seed, "time": time.time(), "args": args_json(args)}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(work)[:-keep]:
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


def args_json(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments as JSON-ready values (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def check_compatible(saved: dict[str, Any], args: argparse.Namespace, what: str,
                     keys: tuple[str, ...] = STRUCTURAL) -> None:
    """Exits when ``args`` differ from a checkpoint's in a structural argument."""
    for key in keys:
        if saved.get(key) != getattr(args, key):
            raise SystemExit(f"error: {what} was written with {key}={saved.get(key)!r}, "
                             f"this run has {getattr(args, key)!r}")


# ----------------------------------------------------------------------------- evaluation


class EvalSet(NamedTuple):
    """Held-back photos with the teacher's answers, fixed for the whole run.

    Attributes:
        inputs: student inputs ``{name: [n, ...]}`` (evaluation transform).
        teacher_logits: ``[n, classes]`` of the teacher on the same centre crops.
        labels: ``[n]`` ImageNet class index of each photo's synset folder, -1 when unknown.
    """

    inputs: dict[str, np.ndarray]
    teacher_logits: np.ndarray
    labels: np.ndarray


def synset_labels(photos: list[Path]) -> np.ndarray:
    """ImageNet index of each photo's folder (Imagenette folders are synsets), -1 if unknown."""
    from .imagenet import imagenet_synsets

    try:
        index = {s: i for i, s in enumerate(imagenet_synsets())}
    except FileNotFoundError:
        return np.full(len(photos), -1)
    return np.array([index.get(p.parent.name, -1) for p in photos])


def make_eval_set(photos: list[Path], spec: InputSpec, teacher: Teacher) -> EvalSet:
    """Prepares the held-back photos once (serving crop) and runs the LiteRT teacher on them."""
    inputs, logits = [], []
    for p in photos:
        data = p.read_bytes()
        window = eval_window(spec, *oriented_size(data))
        inputs.append(prepare(data, spec))
        logits.append(teacher(teacher_crop(decode_rgb(data), window, False, 8 * spec.grid[0]))[1])
    return EvalSet({n: np.concatenate([t[n] for t in inputs]) for n in inputs[0]},
                   np.stack(logits), synset_labels(photos))


def agreement(top5: np.ndarray, teacher_logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 agreement with the teacher, teacher top-1 in student top-5, labelled top-1.

    Args:
        top5: ``[n, 5]`` the student's five best classes, best first.
        teacher_logits: ``[n, classes]``.
        labels: ``[n]`` ImageNet class or -1.
    """
    teacher_top1 = teacher_logits.argmax(1)
    out = {"photos": len(teacher_top1),
           "top1_agreement": float((top5[:, 0] == teacher_top1).mean()),
           "teacher_top1_in_student_top5": float((top5 == teacher_top1[:, None]).any(1).mean())}
    known = labels >= 0
    if known.any():
        out["labelled"] = int(known.sum())
        out["top1_student"] = float((top5[known, 0] == labels[known]).mean())
        out["top1_teacher"] = float((teacher_top1[known] == labels[known]).mean())
    return out


def evaluate(student: Student, data: EvalSet, batch: int) -> dict[str, float]:
    """:func:`agreement` of the current student on the evaluation set."""
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


def start_state(args: argparse.Namespace, student: Student, trainer: Trainer) -> int:
    """Restores the latest checkpoint (or the ``--init`` run's weights); returns the first step."""
    found = checkpoints(args.work)
    if found:
        check_compatible(json.loads((found[-1] / "state.json").read_text())["args"], args, str(found[-1]))
        state = load_checkpoint(found[-1], student, trainer)
        log(args.work, {"event": "resume", "checkpoint": found[-1].name, "step": state["step"]})
        return int(state["step"])
    if args.init:
        init = checkpoints(args.init)
        if not init:
            raise SystemExit(f"error: no checkpoint under --init {args.init}")
        saved = json.loads((init[-1] / "state.json").read_text())["args"]
        check_compatible(saved, args, str(init[-1]), ("student", "adapter_width", "adapter_blocks", "grid"))
        load_checkpoint(init[-1], student, None)
        log(args.work, {"event": "init", "from": str(init[-1])})
    return 0


def train(args: argparse.Namespace) -> int:
    """The training loop; returns the process exit status."""
    import torch

    started = time.time()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    targets = Targets(args.targets, grid=args.grid)
    pool = sample_pool(targets)
    if not pool:
        raise SystemExit(f"error: no teacher targets under {args.targets} (python -m converters.targets)")
    photos = [args.data / p for p in targets.photos]
    spec = resolve_spec(args, photos)
    student = Student(args)
    trainer = Trainer(student, args)
    step = start_state(args, student, trainer)
    teacher = Teacher(teacher_bundles(args.targets, args.grid))
    held = make_eval_set(held_out_photos(args.data, args.eval_photos), spec, teacher)
    stop = StopFlag()
    log(args.work, {"event": "start", "step": step, "samples": len(pool), "photos": len(photos),
                    "eval_photos": len(held.labels), "setup_s": round(time.time() - started, 1)})
    data = batches(targets, pool, args.data, spec, args.batch, step, args.seed, args.workers, args.prefetch)
    busy, window_steps, waited = 0.0, 0, 0.0
    try:
        while step < args.steps and stop.reason is None:
            if time.time() - started > 60 * args.max_minutes:
                stop.reason = "max-minutes"
                break
            t = time.time()
            batch = next(data)
            waited += time.time() - t
            losses = trainer(batch)
            busy += time.time() - t
            step += 1
            window_steps += 1
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"step {step}: non-finite loss {losses}")
            if step % args.log_every == 0 or step == args.steps:
                log(args.work, {"step": step, **{k: round(v, 6) for k, v in losses.items()},
                                "images_per_s": round(window_steps * args.batch / busy, 1),
                                "data_wait": round(waited / busy, 3), "lr": trainer.learning_rate(),
                                "epoch": round(step * args.batch / len(pool), 3)})
                busy, window_steps, waited = 0.0, 0, 0.0
            if step % args.checkpoint_every == 0:
                save_checkpoint(args.work, trainer, args, args.keep)
            if step % args.eval_every == 0:
                log(args.work, {"step": step, "eval": evaluate(student, held, args.batch)})
    except KeyboardInterrupt:
        stop.reason = "KeyboardInterrupt"
    finally:
        data.close()
    path = save_checkpoint(args.work, trainer, args, args.keep)
    if step % args.eval_every:
        log(args.work, {"step": step, "eval": evaluate(student, held, args.batch)})
    log(args.work, {"event": "stop", "step": step, "reason": stop.reason or "steps", "checkpoint": path.name,
                    "minutes": round((time.time() - started) / 60, 2)})
    return 130 if stop.reason == "KeyboardInterrupt" else 0


# ----------------------------------------------------------------------------- export


def export_student(args: argparse.Namespace) -> int:
    """Int8 (and fp32) bundles of the run's latest student, calibrated on training photos
    through prepare(), with fidelity to the teacher on the held-back photos."""
    from .export import convert
    from .imagenet import imagenet_labels
    from .metadata import embed_metadata

    found = checkpoints(args.work)
    if not found:
        raise SystemExit(f"error: no checkpoint under {args.work}")
    saved = json.loads((found[-1] / "state.json").read_text())["args"]
    for key in ("student", "adapter_width", "adapter_blocks", "grid"):
        setattr(args, key, saved[key])
    args.stage = "logits"
    spec = InputSpec.from_json((args.work / "spec.json").read_text())
    student = Student(args)
    load_checkpoint(found[-1], student, None)
    model = student.keras_model()
    targets = Targets(args.targets, grid=args.grid)
    photos = [args.data / targets.photos[i] for i in
              random.Random(args.seed).sample(range(len(targets.photos)), args.calibration)]
    meta = {**spec.to_dict(), "labels": list(imagenet_labels()), "model": args.student,
            "adapter_width": args.adapter_width, "adapter_blocks": args.adapter_blocks,
            "checkpoint": found[-1].name, "recipe": "python -m converters.distill (see converters/README.md)"}
    args.export.parent.mkdir(parents=True, exist_ok=True)
    fp32_path = args.export.with_name(args.export.stem + "_fp32.tflite")
    fp32_path.write_bytes(embed_metadata(convert(model, "fp32"), meta))
    int8 = convert(model, "int8", lambda: (prepare(p, spec) for p in photos))
    args.export.write_bytes(embed_metadata(int8, meta))
    report = {"bundle": str(args.export), "fp32_bundle": str(fp32_path), "size_bytes": args.export.stat().st_size,
              "checkpoint": str(found[-1]), "calibration_photos": len(photos)}
    if args.eval_photos:
        held = held_out_photos(args.data, args.eval_photos)
        report["fidelity"] = bundle_fidelity(args.export, fp32_path, held, spec,
                                             Teacher(teacher_bundles(args.targets, args.grid)))
    (args.work / "export.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


def bundle_fidelity(bundle: Path, fp32_bundle: Path, photos: list[Path], spec: InputSpec,
                    teacher: Teacher) -> dict[str, Any]:
    """The int8 bundle (and its fp32 twin) through ``edge_dct.Classifier`` against the teacher.

    Raises:
        ValueError: ``photos`` is empty.
    """
    if not photos:
        raise ValueError(f"bundle_fidelity: no photos to measure {bundle} on")
    from edge_dct import Classifier

    classifiers = [Classifier.create_from_model_path(b, max_results=5, num_threads=2)
                   for b in (bundle, fp32_bundle)]
    top5 = [[], []]
    teacher_logits = []
    for k, p in enumerate(photos):
        data = p.read_bytes()
        for c, out in zip(classifiers, top5):
            out.append([cat.index for cat in c.classify(data).categories])
        window = eval_window(spec, *oriented_size(data))
        teacher_logits.append(teacher(teacher_crop(decode_rgb(data), window, False, 8 * spec.grid[0]))[1])
        if (k + 1) % 500 == 0:
            print(f"  fidelity: {k + 1}/{len(photos)} photos", file=sys.stderr, flush=True)
    int8, fp32 = np.array(top5[0]), np.array(top5[1])
    teacher_logits, labels = np.stack(teacher_logits), synset_labels(photos)
    out = agreement(int8, teacher_logits, labels)
    out["fp32"] = agreement(fp32, teacher_logits, labels)
    hits = int((int8[:, 0] == fp32[:, 0]).sum())
    out["int8_vs_fp32_top1_agreement"] = hits / len(photos)
    out["int8_vs_fp32_top1_ci95"] = list(wilson_interval(hits, len(photos)))
    return out


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m converters.distill", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="run folder: checkpoints, spec.json, log.jsonl")
    p.add_argument("--data", type=Path, default=Path.home() / "edge_dct_work" / "data",
                   help="folder of the photo sets (bash scripts/get_data.sh)")
    p.add_argument("--targets", type=Path, default=Path.home() / "edge_dct_work" / "targets",
                   help="teacher targets (python -m converters.targets)")
    p.add_argument("--student", default="efficientnet_lite0_dct_split64")
    p.add_argument("--adapter-width", type=int, default=384)
    p.add_argument("--adapter-blocks", type=int, default=1)
    p.add_argument("--grid", type=int, default=28, help="luma blocks per side (teacher sees 8x as pixels)")
    p.add_argument("--stage", choices=("feature", "logits"), default="feature")
    p.add_argument("--init", type=Path, help="start from the latest checkpoint of this run (weights, spec)")
    p.add_argument("--steps", type=int, default=20000, help="total steps (end of the cosine schedule)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="adapter peak learning rate")
    p.add_argument("--tail-lr-scale", type=float, default=0.1, help="back half LR / adapter LR (logits stage)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--clipnorm", type=float, default=5.0)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--feature-weight", type=float, default=0.0, help="feature MSE weight in the logits stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: its default)")
    p.add_argument("--workers", type=int, default=2, help="data threads")
    p.add_argument("--prefetch", type=int, default=3, help="batches in flight")
    p.add_argument("--stats-photos", type=int, default=400, help="photos for the input normalization")
    p.add_argument("--eval-photos", type=int, default=500, help="held-back photos (export: all evaluated)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--keep", type=int, default=2, help="checkpoints kept")
    p.add_argument("--max-minutes", type=float, default=170.0)
    p.add_argument("--export", type=Path, help="write the int8 bundle of the run's student and exit")
    p.add_argument("--calibration", type=int, default=300, help="training photos calibrating int8")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    return export_student(args) if args.export else train(args)


if __name__ == "__main__":
    sys.exit(main())
