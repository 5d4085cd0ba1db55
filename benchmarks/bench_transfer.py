"""Transfer learning and embeddings: the DCT path (``edge-dct train``) against the RGB path.

For one labelled photo set, the same split (seeded, stratified), the same augmented views
(the same crop windows and flips) and the same head recipe:

* **DCT**: ``edge_dct.Trainer.fit`` — embeddings through ``prepare`` (C core, DCT domain) and
  the default bundle's ``embed`` signature, numpy head, int8 bundle written by the flatbuffer
  edit, that bundle through LiteRT on the test photos;
* **RGB** (what Model Maker does): libjpeg-turbo decode (OpenCV, DCT-scaled for centre crops),
  crop / area resize / flip in pixels, RGB EfficientNet-Lite0 (``efficientnet_lite0_rgb``,
  fp32 — Model Maker's float feature extractor — and int8) with its pooled features exposed
  the same way (:func:`edge_dct.heads.expose_embedding`), the same numpy head.

Reported: test top-1 of both heads, the int8 bundle's agreement with its fp32 head and size,
1-nearest-neighbour top-1 (cosine, train centre crops as the index) on both embeddings,
cosine of float vs ``quantize=True`` embeddings of each test photo, and the wall time of
embedding + training (DCT) against the RGB embedding step, in the same run, median of
``--repeat`` runs.

    python benchmarks/bench_transfer.py ~/edge_dct_work/data/intel --per-class 170 \\
        --rgb-model ~/edge_dct_work/bundles/efficientnet_lite0_rgb_fp32.tflite \\
        --rgb-model ~/edge_dct_work/bundles/efficientnet_lite0_rgb_int8.tflite
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import edge_dct
from edge_dct.bench import cpu_model
from edge_dct.bundle import read_metadata
from edge_dct.datasets import load_dataset, split_dataset, subsample
from edge_dct.embedder import l2_normalized, quantize_embedding
from edge_dct.head_training import HeadOptions, train_head
from edge_dct.heads import expose_embedding, has_embedding
from edge_dct.runtime import EMBED_SIGNATURE, EMBEDDING_OUTPUT, open_interpreter
from edge_dct.trainer import Trainer, TrainerOptions, plan_views


class RgbEmbedder:
    """Pixels -> RGB EfficientNet-Lite0 pooled features (one interpreter per thread)."""

    def __init__(self, model: Path, threads: int = 1):
        content = model.read_bytes()
        self.meta = read_metadata(content, str(model))
        if not has_embedding(content):
            content = expose_embedding(content, str(model))
        self.content = content
        self.mean = np.asarray(self.meta["normalize"]["mean"], np.float32)
        self.std = np.asarray(self.meta["normalize"]["std"], np.float32)
        self.crop = 8 * self.meta["grid"][0]
        self.shorter = self.meta["resize"]["size"]
        self.threads = threads
        self._local = threading.local()
        import cv2

        cv2.setNumThreads(1)
        self.cv2 = cv2

    def _runner(self):
        r = getattr(self._local, "runner", None)
        if r is None:
            _, r = open_interpreter(self.content, self.threads, signature=EMBED_SIGNATURE)
            (name, d), = r.get_input_details().items()
            self._local.runner = r = (r, name, np.dtype(d["dtype"]), d["quantization"],
                                      r.get_output_details()[EMBEDDING_OUTPUT]["quantization"])
        return r

    def pixels(self, path: str, window, hflip: bool) -> np.ndarray:
        cv2 = self.cv2
        data = np.fromfile(path, np.uint8)
        if window is None:  # the evaluation transform: shorter side 256 (DCT-scaled), centre crop
            info = edge_dct.read_header(data)
            shorter = min(info.width, info.height)
            red = max([r for r in (1, 2, 4, 8) if shorter // r >= self.shorter] or [1])
            flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                     4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[red]
            rgb = cv2.imdecode(data, flags)[..., ::-1]
            h, w = rgb.shape[:2]
            s = self.shorter / min(h, w)
            rw, rh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (rw, rh), interpolation=interp)
            top, left = (rh - self.crop) // 2, (rw - self.crop) // 2
            rgb = rgb[top:top + self.crop, left:left + self.crop]
        else:  # the training views: the same window as prepare's, cut from the full decode
            rgb = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
            x, y, w, h = window
            x0, y0 = int(round(x)), int(round(y))
            x1, y1 = max(x0 + 1, int(round(x + w))), max(y0 + 1, int(round(y + h)))
            rgb = rgb[y0:y1, x0:x1]
            interp = cv2.INTER_AREA if rgb.shape[0] > self.crop else cv2.INTER_LINEAR
            rgb = cv2.resize(np.ascontiguousarray(rgb), (self.crop, self.crop), interpolation=interp)
            if hflip:
                rgb = rgb[:, ::-1]
        return rgb

    def __call__(self, view) -> np.ndarray:
        runner, name, dtype, (scale, zp), (oscale, ozp) = self._runner()
        x = (self.pixels(*view).astype(np.float32) - self.mean) / self.std
        if dtype == np.int8:
            x = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
        out = runner(**{name: x[None]})[EMBEDDING_OUTPUT].reshape(-1)
        if out.dtype == np.int8:
            return (out.astype(np.float32) - ozp) * oscale
        return out.astype(np.float32)

    def embed(self, views, workers: int) -> np.ndarray:
        with ThreadPoolExecutor(workers) as pool:
            return np.stack(list(pool.map(self, views, chunksize=8)))


def knn_top1(train_x, train_y, test_x, test_y) -> float:
    """1-nearest-neighbour (cosine) accuracy."""
    a, b = l2_normalized(train_x), l2_normalized(test_x)
    return float((train_y[(b @ a.T).argmax(1)] == test_y).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="class-per-folder directory, given splits or CSV")
    p.add_argument("--per-class", type=int, default=None, help="photos per class (subsample)")
    p.add_argument("--validation", type=float, default=0.1)
    p.add_argument("--test", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", type=int, default=1)
    p.add_argument("--hidden", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=3, help="timed runs (medians)")
    p.add_argument("--rgb-model", type=Path, action="append", default=[])
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_transfer.tflite"))
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)

    ds = subsample(load_dataset(a.data), a.per_class, a.seed)
    head_opts = HeadOptions(hidden_units=a.hidden, seed=a.seed)
    opts = TrainerOptions(head=head_opts, validation=a.validation, test=a.test, seed=a.seed,
                          augment=a.augment, workers=a.workers, progress=False)
    splits = split_dataset(ds, validation=a.validation, test=a.test, seed=a.seed)
    views, owner = plan_views(splits, opts.augment, opts.augment_options, opts.seed)
    index = {label: i for i, label in enumerate(ds.labels)}
    report = {"data": a.data, "photos": len(ds.examples), "classes": len(ds.labels),
              "splits": {k: len(v) for k, v in splits.items()}, "views": len(views),
              "cpu": f"{cpu_model()}, {os.cpu_count()} CPUs", "runs": a.repeat, "workers": a.workers}
    print(f"{a.data}: {len(ds.examples)} photos, {len(ds.labels)} classes, "
          f"splits {report['splits']}, {len(views)} views; {report['cpu']}", flush=True)

    dct_times, results = [], []
    rgb_times: dict[str, list[float]] = {str(m): [] for m in a.rgb_model}
    rgb_feats: dict[str, np.ndarray] = {}
    rgb_embedders = {str(m): RgbEmbedder(m) for m in a.rgb_model}
    for run in range(a.repeat):  # interleaved, so both paths see the same machine load
        r = Trainer(opts).fit(ds, a.out)
        results.append(r)
        dct_times.append(r.timings["embedding"] + r.timings["training"])
        for name, emb in rgb_embedders.items():
            t = time.perf_counter()
            rgb_feats[name] = emb.embed(views, a.workers)
            rgb_times[name].append(time.perf_counter() - t)
        print(f"run {run + 1}: DCT embedding+training {dct_times[-1]:.1f} s; RGB embedding "
              + ", ".join(f"{Path(n).name} {v[-1]:.1f} s" for n, v in rgb_times.items()), flush=True)
    r = results[-1]
    dct_med = statistics.median(dct_times)
    dct = {"test_top1": r.test_accuracy, "int8_test_top1": r.int8_metrics.accuracy,
           "int8_agreement": r.int8_agreement, "bundle_bytes": r.size_bytes,
           "embedding_plus_training_s": dct_med, "runs_s": dct_times,
           "embedding_s": statistics.median(x.timings["embedding"] for x in results),
           "training_s": statistics.median(x.timings["training"] for x in results),
           "best_epoch": r.head.best_epoch}
    (xtr, ytr), (xte, yte) = r.embeddings["train"], r.embeddings["test"]
    dct["knn_top1"] = knn_top1(xtr, ytr, xte, yte)
    q = quantize_embedding(xte).astype(np.float64)
    cos = np.sum(l2_normalized(xte) * l2_normalized(q), 1)
    dct["quantized_self_cosine_min"] = float(cos.min())
    dct["quantized_self_cosine_median"] = float(np.median(cos))
    report["dct"] = dct
    print(f"DCT: test top-1 {100 * dct['test_top1']:.2f}% (int8 bundle {100 * dct['int8_test_top1']:.2f}%,"
          f" agreement with fp32 head {100 * dct['int8_agreement']:.2f}%, {r.size_bytes / 1e6:.2f} MB); "
          f"1-NN {100 * dct['knn_top1']:.2f}%; quantized self-cosine min {dct['quantized_self_cosine_min']:.4f}; "
          f"embedding+training {dct_med:.1f} s (median of {a.repeat})")

    report["rgb"] = {}
    for name, feats in rgb_feats.items():
        sel = {k: [i for i, (s, _) in enumerate(owner) if s in kinds] for k, kinds in
               (("train", ("train", "train_aug")), ("validation", ("validation",)),
                ("test", ("test",)), ("train_centre", ("train",)))}
        y = {k: np.array([index[splits[owner[i][0].replace("_aug", "")][owner[i][1]].label]
                          for i in v]) for k, v in sel.items()}
        t = time.perf_counter()
        head = train_head(feats[sel["train"]], y["train"], feats[sel["validation"]],
                          y["validation"], len(ds.labels), head_opts)
        train_s = time.perf_counter() - t
        top1 = float((head.predict(feats[sel["test"]]) == y["test"]).mean())
        knn = knn_top1(feats[sel["train_centre"]], y["train_centre"], feats[sel["test"]], y["test"])
        emb_s = statistics.median(rgb_times[name])
        row = {"test_top1": top1, "knn_top1": knn, "embedding_s": emb_s, "runs_s": rgb_times[name],
               "training_s": train_s, "speedup_vs_dct": emb_s / dct_med}
        report["rgb"][name] = row
        print(f"RGB {Path(name).name}: test top-1 {100 * top1:.2f}% "
              f"(DCT {100 * (dct['test_top1'] - top1):+.2f} points); 1-NN {100 * knn:.2f}% "
              f"(DCT {100 * (dct['knn_top1'] - knn):+.2f}); embedding {emb_s:.1f} s = "
              f"{emb_s / dct_med:.2f}x DCT embedding+training")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
