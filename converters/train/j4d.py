"""Quantization tables learned by gradient for the default model (J4D's route, issue #17).

    python -m converters j4d --photos ~/edge_dct_work/tables/foldA.txt \\
        --validate ~/edge_dct_work/tables/foldB.txt --lambdas 0.03 0.1 0.3 1 3 \\
        --out ~/edge_dct_work/j4d/run1 [--rate-photos 40] [--search SEARCH_FRONT.json]

"Learned JPEG compression for DNN vision" (J4D) tunes a JPEG's quantization tables for a network
instead of for the eye. Here the network is the embedded default model
(``efficientnet_lite0_dct_exact``: an exact IDCT/colour front end + EfficientNet-Lite0), and the
JPEG step is ``edge_dct.transcode``'s requantization of an existing file, ``c' = q round(c / q)``
on its dequantized coefficients ``c``. :class:`Twin` is a differentiable copy of "transcode with
tables ``q``, then classify":

1. the file's dequantized coefficients (``edge_dct.read_dct``, cached under
   ``~/edge_dct_work/j4d/cache``) requantized with learnable steps (:func:`requantize`:
   straight-through rounding, so ``d c' / d q = round(c/q) - c/q``, LSQ's gradient);
2. the 8x8 JPEG IDCT and +128 level shift, nearest chroma upsampling (4:2:0), the JFIF
   YCbCr -> RGB matrix, clamping to ``0..255`` (:func:`pixels`);
3. the default bundle's evaluation geometry (shorter side 256 with an antialiased bilinear
   resize, centre 224 crop, the same rounding as ``edct_eval_window``), the teacher's
   ``(x - 127) / 128`` (:func:`model_view`);
4. EfficientNet-Lite0 with its ImageNet weights in PyTorch (:mod:`converters.train.torch_graph`,
   as :class:`converters.train.exact_teacher.ExactTeacher` builds it), fp32.

The rate is estimated by :func:`rate_bits`: ``log2(1 + |c/q|)`` plus 2 bits per (softly counted)
non-zero value, over the AC coefficients and the DC differences between neighbouring blocks,
summed per frequency band (:data:`BANDS`) with weights measured on training photos: each band's
real ``edge_dct.transcode`` bits per proxy bit around the starting tables
(:func:`fit_rate_weights`; ``--rate-photos 0`` sums the bands unweighted). :func:`train_tables`
minimises ``KL(p(original) || p(requantized)) + lambda * bits per pixel`` over ``log q`` (two
tables: luma for Y, chroma for Cb and Cr) with Adam from a standard table (IJG quality 75),
``q`` kept in ``[1, 255]``; one run per ``lambda`` traces a rate/agreement front. The integer
tables are then scored on the validation photos with ``edge_dct.tuning.Evaluator`` (real
``edge_dct.transcode`` bytes, top-1 agreement of the shipped int8 model with its answer on the
original file) beside the standard IJG qualities.

Writes ``OUT/j4d_front.json`` and ``OUT/j4d_front.png``; each ``lambda`` keeps a checkpoint per
epoch (``OUT/lambda_<value>.pt``) and its result (``OUT/lambda_<value>.json``), so an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from edge_dct.spec import InputSpec
from edge_dct.tuning import ZIGZAG

from ..data.workspace import work_dir
from ..zoo.dct_frontend import YCC_TO_RGB, idct_kernel

COMPONENT_TABLE = (0, 1, 1)
"""Table (0 luma, 1 chroma) of the components Y, Cb, Cr."""

NONZERO_BITS, NONZERO_SHARPNESS = 2.0, 8.0
"""The rate proxy's cost of a non-zero coefficient and the slope of its soft count
(:func:`rate_terms`; chosen on ``edge_dct.transcode`` sizes over the standard and random tables)."""

BANDS = ((0, 1), (1, 6), (6, 15), (15, 36), (36, 64))
"""Zigzag position ranges of the rate proxy's bands, per table: DC, then rings of AC."""

_BAND = torch.from_numpy(np.searchsorted([hi for _, hi in BANDS], np.argsort(ZIGZAG), side="right"))
"""Band of each natural-order coefficient."""
_IDCT = torch.from_numpy(idct_kernel())
_YCC = torch.from_numpy(YCC_TO_RGB.copy())


@dataclass(frozen=True)
class Photo:
    """One photo's dequantized coefficients (4:2:0 YCbCr, EXIF orientation 1).

    Attributes:
        path: the file.
        planes: Y, Cb, Cr int16 tensors ``[h_blocks, w_blocks, 64]``, dequantized, natural order.
        tables: ``[2, 64]`` float32, the file's luma and chroma tables (natural order).
        width: image width in pixels.
        height: image height in pixels.
    """

    path: Path
    planes: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    tables: torch.Tensor
    width: int
    height: int


def load_photo(path: Path, cache: Path) -> Photo:
    """Reads a photo's coefficients, through a cache keyed by the file's SHA-1.

    Args:
        path: a baseline or progressive 4:2:0 YCbCr JPEG without rotation.
        cache: folder of the ``.npz`` copies (created when missing).

    Raises:
        ValueError: the file is not 4:2:0 YCbCr or has an EXIF orientation other than 1.
    """
    data = Path(path).read_bytes()
    file = cache / f"{hashlib.sha1(data).hexdigest()[:20]}.npz"
    if not file.is_file():
        import edge_dct

        img = edge_dct.read_dct(data)
        if img.info.subsampling != "420" or img.info.color_space != "ycbcr" or img.info.orientation != 1:
            raise ValueError(f"{path}: J4D needs 4:2:0 YCbCr without rotation, got "
                             f"{img.info.subsampling} {img.info.color_space} orientation {img.info.orientation}")
        cache.mkdir(parents=True, exist_ok=True)
        q = img.quant_tables.reshape(-1, 64)
        np.savez(file.with_suffix(".tmp.npz"), y=img.planes[0], cb=img.planes[1], cr=img.planes[2],
                 tables=np.stack([q[0], q[1]]), size=np.array([img.info.width, img.info.height]))
        file.with_suffix(".tmp.npz").rename(file)
    with np.load(file) as z:
        planes = tuple(torch.from_numpy(z[k]) for k in ("y", "cb", "cr"))
        return Photo(Path(path), planes, torch.from_numpy(z["tables"].astype(np.float32)),
                     int(z["size"][0]), int(z["size"][1]))


def requantize(coef: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Soft requantization ``q * round(coef / q)`` with a straight-through rounding.

    Args:
        coef: ``[..., 64]`` float32 dequantized coefficients (natural order).
        q: ``[64]`` float32 step sizes (> 0).

    Returns:
        ``[..., 64]`` float32; the forward value is the hard requantization, the gradient
        ``round(coef/q) - coef/q`` w.r.t. ``q`` and the identity w.r.t. ``coef``.
    """
    y = coef / q
    return q * (y + (torch.round(y) - y).detach())


def _samples(blocks: torch.Tensor) -> torch.Tensor:
    """``[hb, wb, 64]`` coefficients -> ``[8 hb, 8 wb]`` samples (JPEG IDCT, no level shift)."""
    hb, wb, _ = blocks.shape
    s = (blocks @ _IDCT).reshape(hb, wb, 8, 8)
    return s.permute(0, 2, 1, 3).reshape(8 * hb, 8 * wb)


def pixels(planes: Sequence[torch.Tensor], width: int, height: int) -> torch.Tensor:
    """Coefficients -> the decoded photo (the shipped front end's arithmetic at full size).

    Args:
        planes: Y, Cb, Cr float32 ``[h_blocks, w_blocks, 64]`` dequantized coefficients, 4:2:0.
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        ``[3, height, width]`` float32 RGB in ``0..255`` (nearest chroma upsampling, no rounding).
    """
    y = _samples(planes[0])[:height, :width] + 128.0
    c = torch.stack([_samples(planes[1]), _samples(planes[2])])
    c = c.repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :height, :width]
    ycc = torch.cat([y[None], c])
    return torch.einsum("rc,chw->rhw", _YCC, ycc).clamp(0.0, 255.0)


def model_view(rgb: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """The model's evaluation crop of a decoded photo.

    Args:
        rgb: ``[3, H, W]`` float32 RGB ``0..255``.
        spec: the model's InputSpec (``shorter_side`` resize).

    Returns:
        ``[3, 8 grid_h, 8 grid_w]`` float32 ``(rgb - 127) / 128``: shorter side resized to
        ``spec.resize["size"]`` (antialiased bilinear), then the centre crop, rounded as
        ``edct_eval_window`` rounds it.
    """
    _, h, w = rgb.shape
    scale = spec.resize["size"] / min(w, h)
    rw, rh = math.floor(w * scale + 0.5), math.floor(h * scale + 0.5)
    ch, cw = 8 * spec.grid[0], 8 * spec.grid[1]
    left, top = math.floor((rw - cw) / 2 + 0.5), math.floor((rh - ch) / 2 + 0.5)
    x = F.interpolate(rgb[None], size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)
    return (x[0, :, top:top + ch, left:left + cw] - 127.0) / 128.0


def rate_terms(planes: Sequence[torch.Tensor], tables: torch.Tensor) -> torch.Tensor:
    """Differentiable size estimate of a photo requantized with ``tables``, per frequency band.

    Over every AC coefficient and every difference of DC coefficients between consecutive
    blocks of a row (what JPEG codes for DC), with ``y = c / q`` unrounded so that every step
    has a gradient: ``log2(1 + |y|)`` (the magnitude bits) plus :data:`NONZERO_BITS` times a
    soft "``y`` rounds to non-zero", ``sigmoid(NONZERO_SHARPNESS (|y| - 0.5))`` (the Huffman
    symbol of each non-zero value), summed per table and :data:`BANDS` band.

    Args:
        planes: Y, Cb, Cr ``[h_blocks, w_blocks, 64]`` dequantized coefficients (int16 or float).
        tables: ``[2, 64]`` float32 luma and chroma steps.

    Returns:
        ``[2 * len(BANDS)]`` float32 proxy bits, luma bands then chroma bands; each decreases
        as any step of its band grows.
    """
    per_k = torch.zeros(2, 64)
    for plane, t in zip(planes, COMPONENT_TABLE):
        y = plane.float() / tables[t]
        dc = torch.diff(y[..., 0], dim=1, prepend=torch.zeros_like(y[:, :1, 0]))
        v = torch.cat([dc[..., None], y[..., 1:]], -1).abs().reshape(-1, 64)
        bits = torch.log2(1 + v) + NONZERO_BITS * torch.sigmoid(NONZERO_SHARPNESS * (v - 0.5))
        per_k = per_k + F.one_hot(torch.tensor(t), 2).float()[:, None] * bits.sum(0)
    return torch.zeros(2, len(BANDS)).index_add(1, _BAND, per_k).reshape(-1)


def rate_bits(planes: Sequence[torch.Tensor], tables: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Scalar float32 size estimate of a photo requantized with ``tables``: :func:`rate_terms`
    summed, or weighted by ``weights`` (``[2 * len(BANDS)]``, :func:`fit_rate_weights`: real
    bits per proxy bit of each band)."""
    terms = rate_terms(planes, tables)
    return terms.sum() if weights is None else terms @ weights


def _calibration_tables(count: int, seed: int) -> list[np.ndarray]:
    """The standard tables and ``count`` random ones: a standard quality with every band of
    each table scaled by its own log-normal factor (so that the bands vary independently)."""
    import edge_dct
    from edge_dct.tuning import STANDARD_QUALITIES

    rng = np.random.default_rng(seed)
    tables = [edge_dct.standard_tables(q).array().astype(np.float64) for q in STANDARD_QUALITIES]
    band = _BAND.numpy()
    for _ in range(count):
        t = edge_dct.standard_tables(int(rng.integers(20, 96))).array().astype(np.float64)
        tables.append(np.clip(np.rint(t * np.exp(rng.normal(0.0, 0.5, (2, len(BANDS))))[:, band]), 1, 255))
    return tables


def fit_rate_weights(photos: Sequence[Photo], around: np.ndarray, factor: float = 1.5) -> np.ndarray:
    """Per-band weights of :func:`rate_bits`: ``edge_dct.transcode``'s marginal sizes near ``around``.

    For every band, the steps of that band alone are multiplied and divided by ``factor``; the
    band's weight is the change of the real size (bits) over the change of its
    :func:`rate_terms` (1 where the band's proxy does not move, e.g. all its coefficients zero).

    Args:
        photos: the photos (their files are transcoded).
        around: ``[2, 64]`` tables the slopes are measured at (the training's start).
        factor: the perturbation of the steps.

    Returns:
        ``[2 * len(BANDS)]`` float64 real bits per proxy bit of each band (>= 0).
    """
    import edge_dct

    band = _BAND.numpy()
    weights = np.ones(2 * len(BANDS))
    with torch.no_grad():
        for i in range(2 * len(BANDS)):
            sizes, proxies = [], []
            for scale in (factor, 1 / factor):
                t = np.array(around, np.float64)
                sel = band == i % len(BANDS)
                t[i // len(BANDS), sel] = np.clip(np.rint(t[i // len(BANDS), sel] * scale), 1, 255)
                tt, ti = torch.as_tensor(t, dtype=torch.float32), np.rint(t).astype(int)
                proxies.append(sum(float(rate_terms(p.planes, tt)[i]) for p in photos))
                sizes.append(sum(8.0 * len(edge_dct.transcode(p.path, tables=(ti[0], ti[1]))) for p in photos))
            if abs(proxies[1] - proxies[0]) > len(photos):  # moves by more than a bit per photo
                weights[i] = max((sizes[1] - sizes[0]) / (proxies[1] - proxies[0]), 0.0)
    return weights


class Twin(torch.nn.Module):
    """Differentiable "transcode with tables, then classify with the default model".

    Args:
        spec: the model's InputSpec (default: the embedded default bundle's).
        network: ``[b, 3, H, W]`` normalized RGB -> ``[b, classes]`` logits (default: the
            EfficientNet-Lite0 ImageNet teacher, fp32, frozen).
    """

    def __init__(self, spec: InputSpec | None = None,
                 network: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        if spec is None:
            from edge_dct.bundle import ModelBundle

            spec = ModelBundle.load().spec
        self.spec = spec
        self.network = network or _lite0(8 * spec.grid[0])

    def view(self, photo: Photo, tables: torch.Tensor | None) -> torch.Tensor:
        """``[3, 8 grid_h, 8 grid_w]`` model input of ``photo`` requantized with ``[2, 64]``
        ``tables`` (None: the file as it is)."""
        planes = [p.float() for p in photo.planes]
        if tables is not None:
            planes = [requantize(p, tables[t]) for p, t in zip(planes, COMPONENT_TABLE)]
        return model_view(pixels(planes, photo.width, photo.height), self.spec)

    def forward(self, photos: Sequence[Photo], tables: torch.Tensor | None) -> torch.Tensor:
        """``[len(photos), classes]`` logits of the photos requantized with ``tables``."""
        x = torch.stack([self.view(p, tables) for p in photos])
        return self.network(x.contiguous(memory_format=torch.channels_last))


def _lite0(image_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The frozen fp32 EfficientNet-Lite0 twin (as :class:`ExactTeacher` builds it)."""
    from ..zoo.registry import build
    from .torch_graph import TorchGraph, to_torch

    model = build("efficientnet_lite0_rgb", image_size=image_size)
    graph = TorchGraph(model, ["logits"]).to(memory_format=torch.channels_last).eval()
    to_torch(model, graph)
    for p in graph.parameters():
        p.requires_grad_(False)
    return lambda x: graph({"image": x})[0]


@torch.no_grad()
def reference_logits(twin: Twin, photos: Sequence[Photo], cache: Path | None = None,
                     batch: int = 8) -> torch.Tensor:
    """``[n, classes]`` float32 logits of the twin on each photo as it is (the KL's target),
    stored in ``cache`` (keyed by the photos' paths) when given."""
    file = None
    if cache is not None:
        key = hashlib.sha1("".join(str(p.path.resolve()) for p in photos).encode()).hexdigest()[:20]
        file = cache / f"logits_{key}.npy"
        if file.is_file():
            return torch.from_numpy(np.load(file))
    out = torch.cat([twin(photos[i:i + batch], None) for i in range(0, len(photos), batch)])
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.save(file, out.numpy())
    return out


@dataclass(frozen=True)
class TrainConfig:
    """One J4D run.

    Attributes:
        lam: weight of the rate (bits per pixel) against the KL divergence.
        epochs: passes over the training photos.
        batch: photos per step.
        lr: Adam's learning rate on ``log q``.
        seed: order of the photos in each epoch.
    """

    lam: float
    epochs: int = 3
    batch: int = 8
    lr: float = 0.01
    seed: int = 0


def train_tables(twin: Twin, photos: Sequence[Photo], reference: torch.Tensor, init: np.ndarray,
                 cfg: TrainConfig, checkpoint: Path | None = None,
                 progress: Callable[[int, dict[str, float]], None] | None = None,
                 rate_weights: np.ndarray | None = None) -> dict[str, Any]:
    """Learns two quantization tables for the twin's network.

    Args:
        twin: the differentiable transcode + classifier.
        photos: training photos.
        reference: ``[n, classes]`` logits of the twin on the photos as they are.
        init: ``[2, 64]`` starting tables (natural order).
        cfg: the run's settings.
        checkpoint: ``.pt`` file saved after every epoch and resumed from when present.
        progress: called after every step with the photos done and the running loss terms.
        rate_weights: :func:`rate_bits`'s band weights (:func:`fit_rate_weights`; None: 1).

    Returns:
        ``{"tables": [2, 64] float64 learned steps in [1, 255], "history": per-epoch means of
        "kl", "bpp" and "loss", "seconds": training time}``.
    """
    log_q = torch.tensor(np.log(np.asarray(init, np.float64)), dtype=torch.float32, requires_grad=True)
    weights = None if rate_weights is None else torch.as_tensor(rate_weights, dtype=torch.float32)
    opt = torch.optim.Adam([log_q], lr=cfg.lr)
    state = {"epoch": 0, "history": [], "seconds": 0.0}
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        with torch.no_grad():
            log_q.copy_(saved["log_q"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
    bounds = (0.0, math.log(255.0))
    for epoch in range(state["epoch"], cfg.epochs):
        start, sums = time.perf_counter(), {"kl": 0.0, "bpp": 0.0, "loss": 0.0}
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(photos))
        for k in range(0, len(order), cfg.batch):
            idx = order[k:k + cfg.batch]
            q = log_q.exp()
            batch = [photos[i] for i in idx]
            logp = F.log_softmax(twin(batch, q), 1)
            kl = F.kl_div(logp, F.log_softmax(reference[idx], 1), log_target=True, reduction="batchmean")
            bpp = torch.stack([rate_bits(p.planes, q, weights) / (p.width * p.height) for p in batch]).mean()
            loss = kl + cfg.lam * bpp
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                log_q.clamp_(*bounds)
            for name, v in (("kl", kl), ("bpp", bpp), ("loss", loss)):
                sums[name] += float(v.detach()) * len(idx)
            if progress is not None:
                progress(len(idx), {n: v / (k + len(idx)) for n, v in sums.items()})
        state["history"].append({n: v / len(photos) for n, v in sums.items()})
        state["epoch"], state["seconds"] = epoch + 1, state["seconds"] + time.perf_counter() - start
        if checkpoint is not None:
            torch.save({"log_q": log_q.detach(), "opt": opt.state_dict(), "state": state}, checkpoint)
    return {"tables": log_q.detach().double().exp().clamp(1, 255).numpy(), **state}


def integer_tables(tables: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    """``[2, 64]`` steps -> (luma, chroma) 8x8 lists of ints in ``1..255`` (natural order)."""
    t = np.clip(np.rint(tables), 1, 255).astype(int).reshape(2, 8, 8)
    return t[0].tolist(), t[1].tolist()


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (ties broken by order)."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def rate_correlation(photos: Sequence[Photo], tables: Sequence[np.ndarray],
                     weights: np.ndarray | None = None) -> dict[str, Any]:
    """How well :func:`rate_bits` follows ``edge_dct.transcode``'s real size.

    Args:
        photos: the photos (their files are transcoded).
        tables: ``[2, 64]`` table pairs.
        weights: :func:`rate_bits`'s band weights (None: 1).

    Returns:
        ``{"pearson", "spearman"}`` over the table pairs (mean proxy bits vs mean real bytes per
        photo), the same ``"pearson_pairs", "spearman_pairs"`` over every (photo, tables) pair,
        ``"bytes_per_bit"`` (least-squares slope) and the per-table ``"points"``.
    """
    import edge_dct

    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    proxy, real = np.zeros((len(tables), len(photos))), np.zeros((len(tables), len(photos)))
    with torch.no_grad():
        for i, t in enumerate(tables):
            tt, ti = torch.as_tensor(np.asarray(t), dtype=torch.float32), np.rint(t).astype(int)
            for j, p in enumerate(photos):
                proxy[i, j] = float(rate_bits(p.planes, tt, w))
                real[i, j] = len(edge_dct.transcode(p.path, tables=(ti[0], ti[1])))
    mp, mr = proxy.mean(1), real.mean(1)
    return {"pearson": float(np.corrcoef(mp, mr)[0, 1]), "spearman": spearman(mp, mr),
            "pearson_pairs": float(np.corrcoef(proxy.ravel(), real.ravel())[0, 1]),
            "spearman_pairs": spearman(proxy.ravel(), real.ravel()),
            "bytes_per_bit": float(np.polyfit(mp, mr, 1)[0]),
            "points": [{"proxy_bits": float(a), "bytes": float(b)} for a, b in zip(mp, mr)]}


def twin_agreement(twin: Twin, photos: Sequence[Photo], reference: torch.Tensor) -> dict[str, float]:
    """How closely the twin's top-1 on each photo as it is follows the shipped default model.

    Args:
        twin: the twin (EfficientNet-Lite0 network).
        photos: the photos.
        reference: ``[n, classes]`` the twin's logits on them (:func:`reference_logits`).

    Returns:
        Top-1 agreement shares: ``"twin_vs_shipped"`` (``edge_dct.classify``, the int8 bundle),
        ``"exact_fp32_vs_shipped"`` (the same fp32 network on ``edge_dct.prepare``'s own input,
        :class:`~converters.train.exact_teacher.ExactTeacher`: what int8 alone changes) and
        ``"twin_vs_exact_fp32"`` (what the twin's geometry alone changes).
    """
    import edge_dct

    from .exact_teacher import ExactTeacher

    exact = ExactTeacher(0, twin.spec)
    shipped, fp32 = [], []
    for p in photos:
        shipped.append(edge_dct.classify(p.path).categories[0].index)
        fp32.append(int(exact(edge_dct.prepare(p.path, twin.spec))[1].argmax(1)[0]))
    tw, shipped, fp32 = reference.argmax(1).numpy(), np.array(shipped), np.array(fp32)
    return {"twin_vs_shipped": float(np.mean(tw == shipped)),
            "exact_fp32_vs_shipped": float(np.mean(fp32 == shipped)),
            "twin_vs_exact_fp32": float(np.mean(tw == fp32))}


def _y(point: dict[str, Any], key: str, scale: float) -> float:
    """A plotted value: ``scale * point[key]``, NaN where missing or (KL, log axis) zero."""
    v = point.get(key, math.nan)
    return scale * v if v > 0 or key != "kl" else math.nan


def plot(results: dict[str, Any], out: Path) -> None:
    """Agreement and KL divergence against bytes per photo: the J4D tables, the standard
    qualities and, when given, the tables the sorted random search chose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=120)
    std = results["standard"]
    runs = sorted(results["j4d"], key=lambda r: r["bytes"])
    search = sorted(results.get("search", []), key=lambda r: r["bytes"])
    for ax, key, scale in ((axes[0], "agreement", 100), (axes[1], "kl", 1)):
        ax.plot([s["bytes"] / 1000 for s in std], [_y(s, key, scale) for s in std], "o-",
                c="gray", ms=3, label="standard IJG quality, re-coded for the model")
        for s in std:
            if s["quality"] in (10, 30, 50, 75, 90, 95):
                ax.annotate(f"q{s['quality']}", (s["bytes"] / 1000, _y(s, key, scale)),
                            fontsize=7, textcoords="offset points", xytext=(4, -10), color="gray")
        ax.plot([r["bytes"] / 1000 for r in runs], [_y(r, key, scale) for r in runs], "s-",
                c="C0", label="J4D (gradient, learned on the training fold)")
        for r in runs:
            ax.annotate(f"λ={r['lambda']:g}", (r["bytes"] / 1000, _y(r, key, scale)), fontsize=7,
                        textcoords="offset points", xytext=(4, 4), color="C0")
        if search and key in search[0]:
            ax.plot([r["bytes"] / 1000 for r in search], [_y(r, key, scale) for r in search], "^", c="C1", ms=8,
                    label="sorted random search (chosen tables)")
        ax.set_xlabel("mean bytes per photo after transcode, kB (validation fold)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 agreement with the original file, %")
    axes[1].set_ylabel("KL(original || transcoded) of the int8 model, nats")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Quantization tables for the default model ({results['validation_photos']} validation photos)")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def _read_list(path: Path) -> list[Path]:
    return [Path(line.strip()).expanduser() for line in path.expanduser().read_text().splitlines() if line.strip()]


def _search_point(path: Path) -> dict[str, float]:
    """The validated score (``bytes``, ``agreement``, ``kl``) of the tables an
    ``edge-dct tune-tables`` report (``tables.json``) chose."""
    chosen = json.loads(path.read_text())["validation"]["chosen"]
    return {k: float(chosen[k]) for k in ("bytes", "agreement", "kl") if k in chosen}


def _bytes_at(points: Sequence[dict[str, float]], agreement: float) -> float | None:
    """Bytes per photo a front needs for ``agreement`` (:func:`edge_dct.tuning.interpolate_bytes`),
    None when none of its points reaches it."""
    from edge_dct.tuning import Score, interpolate_bytes

    b = interpolate_bytes([Score(p["bytes"], p["agreement"], None, 0) for p in points], agreement)
    return None if math.isinf(b) else b


def _learn(twin: Twin, train: Sequence[Photo], reference: torch.Tensor, init: np.ndarray,
           cfg: TrainConfig, weights: np.ndarray | None, out: Path, evaluator: Any) -> dict[str, Any]:
    """One ``lambda``: trains (resuming its checkpoint), scores the integer tables on the
    validation photos, keeps the result in ``out/lambda_<value>.json`` and reuses it."""
    from tqdm import tqdm

    result = out / f"lambda_{cfg.lam:g}.json"
    if result.is_file():
        run = json.loads(result.read_text())
        if run["config"] == asdict(cfg) and run.get("rate_weights") == _listed(weights):
            return run
    ckpt = out / f"lambda_{cfg.lam:g}.pt"
    done = torch.load(ckpt, weights_only=False)["state"]["epoch"] if ckpt.is_file() else 0
    with tqdm(total=cfg.epochs * len(train), initial=done * len(train), desc=f"lambda {cfg.lam:g}",
              unit="photo", file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(n: int, terms: dict[str, float]) -> None:
            bar.update(n)
            bar.set_postfix(kl=f"{terms['kl']:.4f}", bpp=f"{terms['bpp']:.3f}")

        learned = train_tables(twin, train, reference, init, cfg, ckpt, progress, weights)
    luma, chroma = integer_tables(learned["tables"])
    run = {"lambda": cfg.lam, "config": asdict(cfg), "rate_weights": _listed(weights), "luma": luma, "chroma": chroma,
           "history": learned["history"], "train_seconds": learned["seconds"],
           **asdict(evaluator.score((luma, chroma)))}
    result.write_text(json.dumps(run, indent=1))
    return run


def _listed(weights: np.ndarray | None) -> list[float] | None:
    return None if weights is None else [round(float(w), 6) for w in weights]


def _rate_weights(photos: Sequence[Photo], around: np.ndarray, out: Path) -> np.ndarray:
    """:func:`fit_rate_weights` on ``photos`` at ``around``, kept in ``out/rate_weights.json``."""
    file = out / "rate_weights.json"
    if not file.is_file():
        file.write_text(json.dumps(_listed(fit_rate_weights(photos, around))))
    return np.array(json.loads(file.read_text()))


def _standard(evaluator: Any, out: Path) -> list[dict[str, Any]]:
    """Scores of the standard qualities on the validation photos, re-coded for the model like
    the learned tables (``Evaluator.score``: only what ``prepare`` reads is kept), so that the
    curves compare tables and nothing else; kept in ``out/standard_for_model.json``."""
    from tqdm import tqdm

    from edge_dct.tables import standard_tables
    from edge_dct.tuning import STANDARD_QUALITIES

    file = out / "standard_for_model.json"
    done = {s["quality"]: s for s in (json.loads(file.read_text()) if file.is_file() else [])}
    for q in tqdm([q for q in STANDARD_QUALITIES if q not in done], desc="standard qualities",
                  file=sys.stderr, dynamic_ncols=True):
        done[q] = {"quality": q, **asdict(evaluator.score(standard_tables(q)))}
        file.write_text(json.dumps([done[k] for k in sorted(done)], indent=1))
    return [done[k] for k in sorted(done)]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m converters j4d", description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, required=True, help="training photos, one path per line")
    p.add_argument("--validate", type=Path, required=True, help="validation photos, one path per line")
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0, 3.0],
                   help="rate weights, one run each")
    p.add_argument("--out", type=Path, required=True, help="folder of the checkpoints, front and plot")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--init-quality", type=int, default=75, help="IJG quality of the starting tables")
    p.add_argument("--cache", type=Path, default=work_dir() / "j4d" / "cache", help="coefficient cache")
    p.add_argument("--threads", type=int, default=1, help="PyTorch and LiteRT threads")
    p.add_argument("--search", type=Path, default=None,
                   help="an edge-dct tune-tables report (tables.json) validated on the same photos")
    p.add_argument("--rate-photos", type=int, default=40,
                   help="training photos the rate proxy's band weights are measured on (0: unweighted)")
    p.add_argument("--correlation-photos", type=int, default=50,
                   help="validation photos of the rate proxy's check (0: skip)")
    args = p.parse_args(argv)
    import edge_dct
    from edge_dct.tuning import Evaluator

    torch.set_num_threads(args.threads)
    out, cache = args.out.expanduser(), args.cache.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    train = [load_photo(x, cache) for x in _read_list(args.photos)]
    val = [load_photo(x, cache) for x in _read_list(args.validate)]
    twin = Twin()
    reference = reference_logits(twin, train, cache)
    init = edge_dct.standard_tables(args.init_quality).array().astype(np.float64)
    weights = _rate_weights(train[:args.rate_photos], init, out) if args.rate_photos else None
    evaluator = Evaluator([x.path for x in val], workers=args.threads, num_threads=args.threads)
    runs = []
    for lam in args.lambdas:
        run = _learn(twin, train, reference, init, TrainConfig(lam, args.epochs, args.batch, args.lr, args.seed),
                     weights, out, evaluator)
        runs.append(run)
        print(f"lambda {lam:g}: {run['bytes']:.0f} bytes/photo, agreement {100 * run['agreement']:.2f}% "
              f"({run['train_seconds']:.0f} s)", flush=True)
    standard = _standard(evaluator, out)
    results: dict[str, Any] = {"training_photos": len(train), "validation_photos": len(val),
                               "init_quality": args.init_quality, "j4d": runs, "standard": standard}
    twin_file = out / "twin_top1.json"
    if not twin_file.is_file():
        twin_file.write_text(json.dumps(twin_agreement(twin, val, reference_logits(twin, val, cache)), indent=1))
    results["twin_top1"] = json.loads(twin_file.read_text())
    if args.correlation_photos:
        tables = _calibration_tables(12, seed=1)
        tables += [np.array([np.ravel(r["luma"]), np.ravel(r["chroma"])], np.float64) for r in runs]
        results["rate_weights"] = _listed(weights)
        results["rate_proxy"] = {"unweighted": rate_correlation(val[:args.correlation_photos], tables)}
        if weights is not None:
            results["rate_proxy"]["weighted"] = rate_correlation(val[:args.correlation_photos], tables, weights)
    fronts = {"j4d": runs}
    if args.search is not None:
        fronts["search"] = results["search"] = [_search_point(args.search.expanduser())]
    by_bytes = sorted(standard, key=lambda x: x["bytes"])
    for point in runs + results.get("search", []):
        b = _bytes_at(standard, point["agreement"])
        point["bytes_vs_standard"] = None if b is None else point["bytes"] / b
        kl = np.interp(point["bytes"], [x["bytes"] for x in by_bytes], [x.get("kl", math.nan) for x in by_bytes])
        point["kl_vs_standard"] = point.get("kl", math.nan) / float(kl)
    q75 = next(s for s in standard if s["quality"] == 75)
    results["at_quality75"] = {"agreement": q75["agreement"], "bytes_q75": q75["bytes"]}
    for name, points in fronts.items():
        b = _bytes_at(points, q75["agreement"])
        results["at_quality75"].update({f"bytes_{name}": b, f"relative_{name}": None if b is None else b / q75["bytes"]})
    (out / "j4d_front.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "j4d_front.png")
    for name, point in [(f"lambda {r['lambda']:g}", r) for r in runs] + [("search", p) for p in results.get("search", [])]:
        ratio = point["bytes_vs_standard"]
        print(f"{name}: {point['bytes']:.0f} bytes/photo, agreement {100 * point['agreement']:.2f}%, "
              f"kl {point.get('kl', math.nan):.4f}; vs the standard curve: bytes at that agreement "
              + ("-" if ratio is None else f"{ratio:.3f}") + f", kl at those bytes {point['kl_vs_standard']:.3f}")
    print(json.dumps({k: results[k] for k in ("twin_top1", "at_quality75")}, indent=1))
    for name, rp in results.get("rate_proxy", {}).items():
        print(f"rate proxy ({name}) vs transcode bytes: pearson {rp['pearson']:.4f} spearman {rp['spearman']:.4f} "
              f"(pairs {rp['pearson_pairs']:.4f} / {rp['spearman_pairs']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
