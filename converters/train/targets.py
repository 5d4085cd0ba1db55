"""The teacher's answers on every training crop, computed once (issue #5 distillation).

    python -m converters targets --work ~/edge_dct_work/targets [--variants 2]

The RGB teacher dominates a distillation step on a CPU, and its answers do not change: this
command runs it once per (photo, variant) in LiteRT (fp32, XNNPACK) and stores, in
memory-mapped files under ``--work``:

=================  ===========================  =============================================
file               shape, dtype                 content
=================  ===========================  =============================================
``photos.txt``     N lines                      photo paths relative to ``--data``
``window.f32``     ``[V, N, 4]`` float32        crop ``(x, y, w, h)`` in oriented pixels
``hflip.u8``       ``[V, N]`` uint8             whether the crop is mirrored
``valid.u8``       ``[V, N]`` uint8             0 where the photo could not be decoded
``feature.f16``    ``[V, N, G, G, 40]`` fp16    teacher ``block4_add`` (input of block 5)
``logits.f16``     ``[V, N, 1000]`` float16     teacher logits
``done.json``      ``{"variants": [n0, ...],    photos finished per variant (resume point)
                   "grid": G}``                 and the grid (28: the teacher sees 224 px)
=================  ===========================  =============================================

Variant 0 is the serving geometry (:func:`edge_dct.prepare.eval_window`: shorter side to 256,
centre 224, no flip); variants 1.. are seeded random resized crops (area 25-100%) mirrored with
probability 1/2 (:func:`converters.train.crops.crop_of`). The teacher sees the libjpeg-turbo
decode of the window (:func:`converters.train.crops.teacher_crop`); the student later reads the
same window of the same file through ``edge_dct.prepare`` (train and serve identical). The run resumes where
``done.json`` says and fills variants in order, so training can start on variant 0 while later
variants are computed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..data.splits import training_photos
from ..data.workspace import data_dir, work_dir
from .crops import crop_of, decode_rgb, teacher_crop
from .teacher import CLASSES, FEATURE_CHANNELS, Teacher, teacher_bundles


@dataclasses.dataclass
class TargetsConfig:
    """What :func:`compute` fills.

    Attributes:
        work: folder of the target arrays (and the cached teacher halves).
        data: folder of the photo sets (``scripts/get_data.sh``).
        variants: crops per photo (variant 0: the serving crop).
        grid: luma blocks per side (the teacher sees 8x as many pixels).
        threads: LiteRT interpreters in parallel.
        chunk: photos between progress records (and resume points).
        max_minutes: stop (resumably) after this long.
    """

    work: Path = dataclasses.field(default_factory=lambda: work_dir() / "targets")
    data: Path = dataclasses.field(default_factory=data_dir)
    variants: int = 2
    grid: int = 28
    threads: int = 2
    chunk: int = 512
    max_minutes: float = 170.0


class Targets:
    """The memory-mapped target arrays of a ``--work`` folder (see the module docstring).

    Args:
        work: the folder.
        photos: N photo paths (relative to the data folder); read from ``photos.txt`` if None.
        variants: V; read from ``done.json`` if None.
        grid: G; read from ``done.json`` if None.
        mode: ``"r"`` (read) or ``"r+"`` (create missing files, then write).
    """

    def __init__(self, work: Path, photos: list[str] | None = None, variants: int | None = None,
                 grid: int | None = None, mode: str = "r"):
        self.work = work
        listing = work / "photos.txt"
        if photos is None:
            photos = listing.read_text().splitlines()
        elif listing.is_file() and listing.read_text().splitlines() != photos:
            raise SystemExit(f"error: {listing} lists other photos; use a new --work folder")
        done_path = work / "done.json"
        saved = json.loads(done_path.read_text()) if done_path.is_file() else None
        if saved is None and (variants is None or grid is None):
            raise FileNotFoundError(f"{done_path} missing: run `python -m converters targets` first")
        if saved is not None and grid is not None and saved["grid"] != grid:
            raise SystemExit(f"error: {work} holds grid {saved['grid']}, not {grid}")
        done = saved["variants"] if saved else None
        variants = len(done) if variants is None else variants
        self.grid = saved["grid"] if grid is None else grid
        self.photos, self.variants = photos, variants
        self.done = (done + [0] * variants)[:variants] if done else [0] * variants
        if mode == "r+":
            work.mkdir(parents=True, exist_ok=True)
            listing.write_text("\n".join(photos) + "\n")
        n = len(photos)
        self.window = self._map("window.f32", np.float32, (variants, n, 4), mode)
        self.hflip = self._map("hflip.u8", np.uint8, (variants, n), mode)
        self.valid = self._map("valid.u8", np.uint8, (variants, n), mode)
        self.feature = self._map("feature.f16", np.float16, (variants, n, self.grid, self.grid, FEATURE_CHANNELS), mode)
        self.logits = self._map("logits.f16", np.float16, (variants, n, CLASSES), mode)

    def _map(self, name: str, dtype, shape: tuple[int, ...], mode: str) -> np.memmap:
        path = self.work / name
        need = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if mode == "r+" and (not path.exists() or path.stat().st_size < need):
            with open(path, "ab") as f:
                f.truncate(need)
        return np.memmap(path, dtype, mode, shape=shape)

    def save_progress(self) -> None:
        """Flushes the arrays, then records :attr:`done` (so a crash never overstates it)."""
        for array in (self.window, self.hflip, self.valid, self.feature, self.logits):
            array.flush()
        tmp = self.work / "done.json.tmp"
        tmp.write_text(json.dumps({"variants": self.done, "grid": self.grid}))
        tmp.replace(self.work / "done.json")


def compute(config: TargetsConfig) -> int:
    """Fills the targets of every (variant, photo) not done yet; returns the exit status."""
    photos = [str(p.relative_to(config.data)) for p in training_photos(config.data)]
    if not photos:
        raise SystemExit(f"error: no training photos under {config.data} (bash scripts/get_data.sh)")
    targets = Targets(config.work, photos, config.variants, config.grid, mode="r+")
    teacher = Teacher(teacher_bundles(config.work, config.grid))

    def one(variant: int, i: int) -> None:
        data = (config.data / photos[i]).read_bytes()
        try:
            window, flip = crop_of(data, variant, i, config.grid)
            image = teacher_crop(decode_rgb(data), window, flip, 8 * config.grid)
        except (ValueError, cv2.error) as e:  # edge_dct errors are ValueErrors too
            print(json.dumps({"skipped": photos[i], "reason": str(e)[:200]}), flush=True)
            targets.valid[variant, i] = 0
            return
        feature, logits = teacher(image)
        targets.valid[variant, i] = 1
        targets.window[variant, i] = window
        targets.hflip[variant, i] = flip
        targets.feature[variant, i] = feature
        targets.logits[variant, i] = logits

    started = time.time()
    with ThreadPoolExecutor(config.threads) as pool:
        for v in range(config.variants):
            while targets.done[v] < len(photos):
                if time.time() - started > 60 * config.max_minutes:
                    print(json.dumps({"event": "stop", "reason": "max-minutes", "done": targets.done}))
                    return 0
                lo = targets.done[v]
                hi = min(lo + config.chunk, len(photos))
                t = time.time()
                list(pool.map(lambda i: one(v, i), range(lo, hi)))
                targets.done[v] = hi
                targets.save_progress()
                print(json.dumps({"variant": v, "done": hi, "of": len(photos),
                                  "images_per_s": round((hi - lo) / (time.time() - t), 1)}), flush=True)
    print(json.dumps({"event": "complete", "done": targets.done, "minutes": round((time.time() - started) / 60, 1)}))
    return 0


def parse_args(argv: list[str] | None = None) -> TargetsConfig:
    """The command line (see the module docstring) as a :class:`TargetsConfig`."""
    d = TargetsConfig()
    p = argparse.ArgumentParser(prog="python -m converters targets", description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=d.work)
    p.add_argument("--data", type=Path, default=d.data, help="folder of the photo sets (bash scripts/get_data.sh)")
    p.add_argument("--variants", type=int, default=d.variants, help="crops per photo (0: serving crop)")
    p.add_argument("--grid", type=int, default=d.grid, help="luma blocks per side (teacher sees 8x as pixels)")
    p.add_argument("--threads", type=int, default=d.threads, help="LiteRT interpreters in parallel")
    p.add_argument("--chunk", type=int, default=d.chunk, help="photos between progress records")
    p.add_argument("--max-minutes", type=float, default=d.max_minutes)
    return TargetsConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    return compute(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
