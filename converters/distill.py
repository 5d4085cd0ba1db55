"""Distil the EfficientNet-Lite0 RGB teacher into an EfficientNet-Lite0-DCT student (issue #5).

    python -m converters.distill --student efficientnet_lite0_dct_split64 --adapter-width 384 \\
        --stage feature --steps 20000 --batch 64 --work ~/edge_dct_work/distill/feat384
    python -m converters.distill --student efficientnet_lite0_dct_split64 --adapter-width 384 \\
        --stage logits --steps 40000 --batch 64 --work ~/edge_dct_work/distill/logits384 \\
        --init ~/edge_dct_work/distill/feat384
    python -m converters.distill --work ~/edge_dct_work/distill/logits384 --export student_int8.tflite

Data (train and serve identical): every training photo goes through
:class:`edge_dct.augment.Augmenter` (random resized crop + flip as a window of the C core's
``prepare``, the code path that serves the model); the teacher sees the *same* window of the
libjpeg-turbo (OpenCV) decode, resized with area averaging and mirrored when the student's
window was (the teacher's input is flipped, never its features). Batches are built by a
thread pool (decoding releases the GIL) a bounded number of steps ahead.

Stages:

* ``feature``: MSE between the student's ``adapter_out`` (``[b, H, W, 40]``) and the teacher's
  ``block4_add`` (the input of block 5); only the adapter trains.
* ``logits``: ``T^2 KL(softmax(teacher / T) || softmax(student / T))`` plus
  ``--feature-weight`` times the feature MSE; the whole student trains, the pretrained back
  half with ``--tail-lr-scale`` times the adapter's learning rate. The back half's
  BatchNormalization layers stay in inference mode (their ImageNet statistics are kept).

AdamW with linear warm-up and cosine decay; bfloat16 mixed precision on a GPU. The input
normalization (per-channel centre and largest deviation of the coefficients, as
:func:`converters.calibration.channel_stats` motivates for int8 inputs) is fitted once per
run on training photos and stored with the run; ``--init`` runs inherit it.

The work directory holds ``ckpt-NNNNNNN/`` checkpoints (student weights, optimizer state,
``state.json`` with step, seed and arguments), ``spec.json`` (the InputSpec the student is
trained with) and ``log.jsonl`` (training and evaluation records). A run resumes from its
latest checkpoint and stops at ``--steps``, after ``--max-minutes``, or on SIGTERM / Ctrl-C,
checkpointing first.
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

from edge_dct.augment import Augmenter
from edge_dct.prepare import Window, eval_window, oriented_size, prepare
from edge_dct.spec import InputSpec

from .calibration import channel_stats
from .default_model import jpegs
from .registry import get_config

TEACHER = "efficientnet_lite0_rgb"
TEACHER_FEATURE = "block4_add"
"""Teacher layer whose output (28x28x40 at 224 px) is the input of block 5."""
STUDENT_FEATURE = "adapter_out"
CHECKPOINT_PREFIX = "ckpt-"
STRUCTURAL = ("student", "adapter_width", "adapter_blocks", "grid", "stage", "seed")
"""Arguments a resumed run must share with the run that wrote the checkpoint."""


# ----------------------------------------------------------------------------- data


class Sample(NamedTuple):
    """One training or evaluation example.

    Attributes:
        student: prepare() tensors (batch 1), name -> float32 array.
        teacher: ``[1, S, S, 3]`` float32 ``(rgb - 127) / 128`` of the same crop.
        window: the crop ``(x, y, w, h)`` in oriented pixels.
        hflip: whether both views are mirrored.
    """

    student: dict[str, np.ndarray]
    teacher: np.ndarray
    window: Window
    hflip: bool


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


def train_sample(path: Path, spec: InputSpec, seed: int) -> Sample:
    """A random resized crop (+ flip) of one photo, seen by the student and the teacher."""
    data = path.read_bytes()
    aug = Augmenter(spec, seed=seed)(data)
    teacher = teacher_crop(decode_rgb(data), aug.window, aug.hflip, 8 * spec.grid[0])
    return Sample(aug.tensors, teacher, aug.window, aug.hflip)


def eval_sample(path: Path, spec: InputSpec) -> Sample:
    """The evaluation transform (shorter side, centre crop) for both views."""
    data = path.read_bytes()
    window = eval_window(spec, *oriented_size(data))
    teacher = teacher_crop(decode_rgb(data), window, False, 8 * spec.grid[0])
    return Sample(prepare(data, spec), teacher, window, False)


def collate(samples: list[Sample]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Stack samples into ``({input: [b, ...]}, teacher [b, S, S, 3])``."""
    names = samples[0].student
    return ({n: np.concatenate([s.student[n] for s in samples]) for n in names},
            np.concatenate([s.teacher for s in samples]))


def epoch_order(num_photos: int, seed: int, epoch: int) -> list[int]:
    """The photo order of one epoch, a pure function of (seed, epoch) so resumes replay it."""
    order = list(range(num_photos))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def sample_seed(seed: int, step: int, slot: int) -> int:
    """Augmentation seed of one slot of one step."""
    return (seed * 1_000_003 + step) * 4096 + slot


def batches(photos: list[Path], spec: InputSpec, batch: int, start_step: int, seed: int,
            workers: int, prefetch: int) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Training batches from ``start_step`` on, built ``prefetch`` steps ahead by ``workers`` threads.

    Step ``s`` uses photos ``s * batch .. (s + 1) * batch`` of the epoch-wise shuffled list
    and per-sample augmentation seeds derived from ``(seed, s)``: a resumed run sees the
    batches an uninterrupted run would have seen.
    """
    pool = ThreadPoolExecutor(workers, thread_name_prefix="distill-data")
    pending: deque[list[Future]] = deque()
    orders: dict[int, list[int]] = {}
    step = start_step

    def submit(s: int) -> list[Future]:
        futures = []
        for slot in range(batch):
            epoch, index = divmod(s * batch + slot, len(photos))
            if epoch not in orders:
                orders.clear()
                orders[epoch] = epoch_order(len(photos), seed, epoch)
            path = photos[orders[epoch][index]]
            futures.append(pool.submit(train_sample, path, spec, sample_seed(seed, s, slot)))
        return futures

    try:
        while True:
            while len(pending) < prefetch:
                pending.append(submit(step + len(pending)))
            futures = pending.popleft()
            step += 1
            yield collate([f.result() for f in futures])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def training_photos(data: Path) -> list[Path]:
    """Imagenette ``train/`` photos minus the exclude list (``val/`` never trains)."""
    return jpegs(data / "imagenette", "train")


def held_out_photos(data: Path, n: int) -> list[Path]:
    """A fixed, seeded subset of Imagenette ``val/`` (minus the exclude list) for evaluation."""
    val = jpegs(data / "imagenette", "val")
    return sorted(random.Random(0).sample(val, min(n, len(val))))


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


# ----------------------------------------------------------------------------- models


class Models(NamedTuple):
    """The networks of a run.

    Attributes:
        student: the DCT student (``{input: tensor} -> logits``).
        student_view: student -> ``[adapter_out]`` (feature stage) or ``[adapter_out, logits]``.
        teacher: the RGB teacher (logits), frozen.
        teacher_view: teacher -> ``[block4_add]`` or ``[block4_add, logits]``, like the student's.
    """

    student: Any
    student_view: Any
    teacher: Any
    teacher_view: Any


def gpu_present() -> bool:
    """Whether TensorFlow sees a GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def build_student(args: argparse.Namespace, weights: str | None = "imagenet"):
    """The student named by the run's arguments."""
    from .registry import build

    return build(args.student, grid=(args.grid, args.grid), adapter_width=args.adapter_width,
                 adapter_blocks=args.adapter_blocks, weights=weights)


def build_models(args: argparse.Namespace, mixed: bool) -> Models:
    """Teacher (float32) and student (bfloat16 mixed precision when ``mixed``) with their views."""
    import keras

    from .registry import build

    teacher = build(TEACHER, image_size=8 * args.grid)
    teacher.trainable = False
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    student = build_student(args)
    keras.mixed_precision.set_global_policy("float32")
    set_trainable(student, args.stage)
    logits = args.stage == "logits"
    t_out = [teacher.get_layer(TEACHER_FEATURE).output] + ([teacher.output] if logits else [])
    s_out = [student.get_layer(STUDENT_FEATURE).output] + ([student.output] if logits else [])
    return Models(student, keras.Model(student.inputs, s_out), teacher, keras.Model(teacher.input, t_out))


def is_adapter(layer_name: str) -> bool:
    """Whether a student layer belongs to the (randomly initialised) DCT adapter."""
    return layer_name.startswith("adapter_")


def set_trainable(student, stage: str) -> None:
    """Adapter only (``feature``) or everything (``logits``); the back half's BN stays frozen."""
    import keras

    for layer in student.layers:
        if is_adapter(layer.name):
            layer.trainable = True
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        else:
            layer.trainable = stage == "logits"


def variable_groups(student) -> tuple[list, list]:
    """(adapter, back half) trainable variables."""
    adapter, tail = [], []
    for layer in student.layers:
        (adapter if is_adapter(layer.name) else tail).extend(layer.trainable_weights)
    return adapter, tail


def make_optimizer(lr: float, args: argparse.Namespace):
    """AdamW with linear warm-up to ``lr`` and cosine decay to 0 at ``args.steps``."""
    import keras

    warmup = min(args.warmup, args.steps // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(args.steps - warmup, 1), warmup_target=lr, warmup_steps=warmup)
    return keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay, clipnorm=args.clipnorm)


# ----------------------------------------------------------------------------- losses


def feature_loss(student_feature, teacher_feature):
    """Mean squared error between adapter output and the teacher's block-4 output."""
    import tensorflow as tf

    return tf.reduce_mean(tf.square(tf.cast(student_feature, tf.float32) - teacher_feature))


def logit_loss(student_logits, teacher_logits, temperature: float):
    """``T^2 KL(softmax(t / T) || softmax(s / T))``, averaged over the batch."""
    import tensorflow as tf

    t = tf.nn.log_softmax(teacher_logits / temperature)
    s = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / temperature)
    return temperature ** 2 * tf.reduce_mean(tf.reduce_sum(tf.exp(t) * (t - s), -1))


class Trainer:
    """One optimizer step per call; optimizers per variable group (adapter, back half)."""

    def __init__(self, models: Models, args: argparse.Namespace):
        import tensorflow as tf

        self.models, self.args = models, args
        adapter, tail = variable_groups(models.student)
        self.groups = [(make_optimizer(args.lr, args), adapter)]
        if args.stage == "logits":
            self.groups.append((make_optimizer(args.lr * args.tail_lr_scale, args), tail))
        for opt, variables in self.groups:
            opt.build(variables)
        self.step_fn = tf.function(self._step)

    def _step(self, inputs, teacher_images):
        import tensorflow as tf

        targets = self.models.teacher_view(teacher_images, training=False)
        targets = targets if isinstance(targets, (list, tuple)) else [targets]
        variables = [v for _, group in self.groups for v in group]
        with tf.GradientTape() as tape:
            outputs = self.models.student_view(inputs, training=True)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            feat = feature_loss(outputs[0], targets[0])
            if self.args.stage == "feature":
                kl, loss = tf.constant(0.0), feat
            else:
                kl = logit_loss(outputs[1], targets[1], self.args.temperature)
                loss = kl + self.args.feature_weight * feat
        grads = tape.gradient(loss, variables)
        start = 0
        for opt, group in self.groups:
            opt.apply_gradients(zip(grads[start:start + len(group)], group))
            start += len(group)
        return {"loss": loss, "feature_mse": feat, "kl": kl}

    def __call__(self, inputs: dict[str, np.ndarray], teacher_images: np.ndarray) -> dict[str, float]:
        """Runs one step and returns its float losses."""
        return {k: float(v) for k, v in self.step_fn(inputs, teacher_images).items()}

    def learning_rate(self) -> float:
        """The adapter's current learning rate."""
        opt = self.groups[0][0]
        return float(opt.learning_rate)

    def optimizer_state(self) -> list[np.ndarray]:
        """All optimizer variables (iterations, moments), in a fixed order."""
        return [v.numpy() for opt, _ in self.groups for v in opt.variables]

    def load_optimizer_state(self, arrays: list[np.ndarray]) -> None:
        """Restores :meth:`optimizer_state`'s arrays."""
        variables = [v for opt, _ in self.groups for v in opt.variables]
        if len(variables) != len(arrays):
            raise ValueError(f"checkpoint holds {len(arrays)} optimizer arrays, the run has {len(variables)}")
        for v, a in zip(variables, arrays):
            v.assign(a)


# ----------------------------------------------------------------------------- checkpoints


def checkpoints(work: Path) -> list[Path]:
    """Complete checkpoints (with ``state.json``) in step order."""
    return sorted(p.parent for p in work.glob(f"{CHECKPOINT_PREFIX}*/state.json"))


def save_checkpoint(work: Path, step: int, models: Models, trainer: Trainer,
                    args: argparse.Namespace, keep: int) -> Path:
    """Writes ``ckpt-<step>/`` atomically (temp folder, then rename) and keeps the ``keep`` newest."""
    final = work / f"{CHECKPOINT_PREFIX}{step:07d}"
    tmp = work / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    models.student.save_weights(tmp / "student.weights.h5")
    state = trainer.optimizer_state()
    np.savez(tmp / "optimizer.npz", *state)
    (tmp / "state.json").write_text(json.dumps(
        {"step": step, "seed": args.seed, "time": time.time(), "args": args_json(args)}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(work)[:-keep]:
        shutil.rmtree(old)
    return final


def load_checkpoint(path: Path, models: Models, trainer: Trainer | None) -> dict[str, Any]:
    """Loads student weights (and optimizer state when ``trainer``); returns ``state.json``."""
    models.student.load_weights(path / "student.weights.h5")
    if trainer is not None:
        with np.load(path / "optimizer.npz") as z:
            trainer.load_optimizer_state([z[f"arr_{i}"] for i in range(len(z.files))])
    return json.loads((path / "state.json").read_text())


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


def make_eval_set(photos: list[Path], spec: InputSpec, teacher, batch: int) -> EvalSet:
    """Prepares the held-back photos once and runs the teacher on them."""
    samples = [eval_sample(p, spec) for p in photos]
    inputs, images = collate(samples)
    logits = teacher.predict(images, batch_size=batch, verbose=0)
    return EvalSet(inputs, logits, synset_labels(photos))


def evaluate(student, data: EvalSet, batch: int) -> dict[str, float]:
    """Top-1 agreement with the teacher, teacher top-1 in student top-5, labelled top-1."""
    logits = student.predict(data.inputs, batch_size=batch, verbose=0).astype(np.float32)
    teacher_top1 = data.teacher_logits.argmax(1)
    top5 = np.argsort(-logits, 1)[:, :5]
    out = {"photos": len(teacher_top1),
           "top1_agreement": float((top5[:, 0] == teacher_top1).mean()),
           "teacher_top1_in_student_top5": float((top5 == teacher_top1[:, None]).any(1).mean())}
    known = data.labels >= 0
    if known.any():
        out["top1_student"] = float((top5[known, 0] == data.labels[known]).mean())
        out["top1_teacher"] = float((teacher_top1[known] == data.labels[known]).mean())
    return out


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


def start_state(args: argparse.Namespace, models: Models, trainer: Trainer) -> int:
    """Restores the latest checkpoint (or the ``--init`` run's weights); returns the first step."""
    found = checkpoints(args.work)
    if found:
        check_compatible(json.loads((found[-1] / "state.json").read_text())["args"], args, str(found[-1]))
        state = load_checkpoint(found[-1], models, trainer)
        log(args.work, {"event": "resume", "checkpoint": found[-1].name, "step": state["step"]})
        return int(state["step"])
    if args.init:
        init = checkpoints(args.init)
        if not init:
            raise SystemExit(f"error: no checkpoint under --init {args.init}")
        saved = json.loads((init[-1] / "state.json").read_text())["args"]
        check_compatible(saved, args, str(init[-1]), ("student", "adapter_width", "adapter_blocks", "grid"))
        load_checkpoint(init[-1], models, None)
        log(args.work, {"event": "init", "from": str(init[-1])})
    return 0


def train(args: argparse.Namespace) -> int:
    """The training loop; returns the process exit status."""
    started = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    photos = training_photos(args.data)
    if not photos:
        raise SystemExit(f"error: no training photos under {args.data}/imagenette (scripts/get_data.sh)")
    spec = resolve_spec(args, photos)
    mixed = gpu_present()
    models = build_models(args, mixed)
    trainer = Trainer(models, args)
    step = start_state(args, models, trainer)
    held = make_eval_set(held_out_photos(args.data, args.eval_photos), spec, models.teacher, args.batch)
    stop = StopFlag()
    log(args.work, {"event": "start", "step": step, "photos": len(photos), "mixed_precision": mixed,
                    "eval_photos": len(held.labels), "setup_s": round(time.time() - started, 1)})
    data = batches(photos, spec, args.batch, step, args.seed, args.workers, args.prefetch)
    busy, window_steps, waited = 0.0, 0, 0.0
    try:
        while step < args.steps and stop.reason is None:
            if time.time() - started > 60 * args.max_minutes:
                stop.reason = "max-minutes"
                break
            t = time.time()
            inputs, images = next(data)
            waited += time.time() - t
            losses = trainer(inputs, images)
            busy += time.time() - t
            step += 1
            window_steps += 1
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"step {step}: non-finite loss {losses}")
            if step % args.log_every == 0 or step == args.steps:
                log(args.work, {"step": step, **{k: round(v, 6) for k, v in losses.items()},
                                "images_per_s": round(window_steps * args.batch / busy, 1),
                                "data_wait": round(waited / busy, 3), "lr": trainer.learning_rate()})
                busy, window_steps, waited = 0.0, 0, 0.0
            if step % args.checkpoint_every == 0:
                save_checkpoint(args.work, step, models, trainer, args, args.keep)
            if step % args.eval_every == 0:
                log(args.work, {"step": step, "eval": evaluate(models.student, held, args.batch)})
    except KeyboardInterrupt:
        stop.reason = "KeyboardInterrupt"
    finally:
        data.close()
    path = save_checkpoint(args.work, step, models, trainer, args, args.keep)
    if step % args.eval_every:
        log(args.work, {"step": step, "eval": evaluate(models.student, held, args.batch)})
    log(args.work, {"event": "stop", "step": step, "reason": stop.reason or "steps", "checkpoint": path.name,
                    "minutes": round((time.time() - started) / 60, 2)})
    return 130 if stop.reason == "KeyboardInterrupt" else 0


# ----------------------------------------------------------------------------- export


def export_student(args: argparse.Namespace) -> int:
    """Int8 bundle of the run's latest student, calibrated on training photos through prepare()."""
    from .export import compare, convert
    from .imagenet import imagenet_labels
    from .metadata import embed_metadata

    found = checkpoints(args.work)
    if not found:
        raise SystemExit(f"error: no checkpoint under {args.work}")
    saved = json.loads((found[-1] / "state.json").read_text())["args"]
    for key in ("student", "adapter_width", "adapter_blocks", "grid"):
        setattr(args, key, saved[key])
    spec = InputSpec.from_json((args.work / "spec.json").read_text())
    student = build_student(args, weights=None)
    student.load_weights(found[-1] / "student.weights.h5")
    photos = random.Random(args.seed).sample(training_photos(args.data), args.calibration)
    held = held_out_photos(args.data, args.eval_photos)
    tflite = convert(student, "int8", lambda: (prepare(p, spec) for p in photos))
    meta = {**spec.to_dict(), "labels": list(imagenet_labels()), "model": args.student,
            "checkpoint": found[-1].name, "recipe": "python -m converters.distill"}
    tflite = embed_metadata(tflite, meta)
    args.export.parent.mkdir(parents=True, exist_ok=True)
    args.export.write_bytes(tflite)
    stats = compare(student, tflite, (prepare(p, spec) for p in held))
    print(json.dumps({"bundle": str(args.export), "size_bytes": len(tflite), "checkpoint": str(found[-1]),
                      "calibration_photos": len(photos), "int8_vs_fp32": stats}, indent=1))
    return 0


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m converters.distill", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="run folder: checkpoints, spec.json, log.jsonl")
    p.add_argument("--data", type=Path, default=Path.home() / "edge_dct_work" / "data",
                   help="folder holding imagenette/{train,val} (scripts/get_data.sh)")
    p.add_argument("--student", default="efficientnet_lite0_dct_split64")
    p.add_argument("--adapter-width", type=int, default=384)
    p.add_argument("--adapter-blocks", type=int, default=1)
    p.add_argument("--grid", type=int, default=28, help="luma blocks per side (teacher sees 8x as pixels)")
    p.add_argument("--stage", choices=("feature", "logits"), default="feature")
    p.add_argument("--init", type=Path, help="start from the latest checkpoint of this run (weights, spec)")
    p.add_argument("--steps", type=int, default=20000, help="total steps (end of the cosine schedule)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="adapter peak learning rate")
    p.add_argument("--tail-lr-scale", type=float, default=0.1, help="back half LR / adapter LR (logits stage)")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--clipnorm", type=float, default=5.0)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--feature-weight", type=float, default=0.0, help="feature MSE weight in the logits stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=8, help="data threads")
    p.add_argument("--prefetch", type=int, default=4, help="batches in flight")
    p.add_argument("--stats-photos", type=int, default=400, help="photos for the input normalization")
    p.add_argument("--eval-photos", type=int, default=500, help="held-back val/ photos")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--checkpoint-every", type=int, default=1000)
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
