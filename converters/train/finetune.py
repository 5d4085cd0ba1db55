"""Fine-tuning more than the head: the last MBConv blocks of the default model, through PyTorch.

The workstation variant of ``edge-dct train`` (issue #16) for users with more photos and a bigger
machine. Same data handling, split and augmented views as ``edge-dct train``
(:mod:`edge_dct.datasets`, :func:`edge_dct.trainer.plan_views`), same kind of bundle out (int8,
``serving_default`` + ``embed`` signatures, the new labels in the metadata):

1. ``edge-dct train``'s head on the same split (the baseline, and the warm start of the new
   classifier layer);
2. every view through ``edge_dct.prepare`` (the C core), the exact DCT front end (Keras) and
   EfficientNet-Lite0 up to the cut (the input of block ``16 - blocks``) in PyTorch
   (:class:`converters.train.torch_graph.TorchGraph`), cached;
3. the tail — blocks ``16 - blocks``..15, the 1280 head convolution and the new classifier —
   trained in PyTorch on the cached maps (BatchNorm statistics frozen, Adam, early stopping on
   the validation loss);
4. the tail's weights copied back into ``efficientnet_lite0_dct_exact(num_classes=C)``,
   full-integer int8 conversion calibrated on training photos through ``edge_dct.prepare``,
   metadata, ``embed`` signature (:func:`edge_dct.heads.expose_embedding`);
5. both bundles through ``edge_dct.Classifier`` on the held-out test photos.

    python -m converters.train.finetune DATA --out tuned.tflite [--blocks 1] [--per-class N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

import edge_dct
from edge_dct.bundle import ModelBundle
from edge_dct.datasets import load_dataset, split_dataset, subsample
from edge_dct.heads import expose_embedding
from edge_dct.trainer import Trainer, TrainerOptions, plan_views

from ..data.workspace import work_dir
from ..ship.export import convert
from ..ship.metadata import embed_metadata

RECIPE = "python -m converters.train.finetune"


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """The recipe's inputs.

    Attributes:
        data: a class-per-folder directory, given splits or a CSV (as ``edge-dct train``).
        out: the fine-tuned int8 bundle.
        work: folder for the head-only bundle and ``report.json``.
        blocks: MBConv blocks fine-tuned, counted from the last (1: block 15; at most 4).
        per_class: at most this many photos of each class (seeded subsample; None: all).
        validation, test, seed, augment: as ``edge-dct train``.
        epochs: upper bound on fine-tuning epochs.
        patience: epochs without a better validation loss before stopping.
        lr: Adam step of the blocks (the classifier layer takes 10x).
        weight_decay: L2 penalty.
        batch: mini-batch size.
        calibration: training photos calibrating the int8 conversion.
    """

    data: Path
    out: Path
    work: Path = dataclasses.field(default_factory=lambda: work_dir() / "finetune")
    blocks: int = 1
    per_class: int | None = None
    validation: float = 0.1
    test: float = 0.2
    seed: int = 0
    augment: int = 1
    epochs: int = 12
    patience: int = 3
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch: int = 32
    calibration: int = 200


def _accuracy(bundle: Path, photos, labels: tuple[str, ...]) -> float:
    with edge_dct.Classifier.create_from_model_path(bundle, max_results=1, num_threads=2) as clf:
        hits = [clf.classify(e.path).top.label == e.label for e in photos]
    return float(np.mean(hits))


def finetune(config: FinetuneConfig) -> dict:
    """Runs the recipe (module docstring); returns the report also written to ``work``.

    Raises:
        edge_dct.DatasetError: unusable data.
        ValueError: ``blocks`` outside 1..4.
    """
    import keras
    import torch

    from ..zoo.dct_frontend import efficientnet_lite0_dct_exact
    from ..zoo.efficientnet_lite import BLOCKS, lite0_tail, load_lite0_weights
    from .torch_graph import TorchGraph, to_keras, to_torch

    if not 1 <= config.blocks <= 4:
        raise ValueError(f"blocks must be 1..4, not {config.blocks}")
    torch.manual_seed(config.seed)
    config.work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = subsample(load_dataset(config.data), config.per_class, config.seed)
    splits = split_dataset(ds, validation=config.validation, test=config.test, seed=config.seed)
    index = {label: i for i, label in enumerate(ds.labels)}
    c = len(ds.labels)

    print("1/5 head only (edge-dct train)", file=sys.stderr)
    head_bundle = config.work / "head_only.tflite"
    opts = TrainerOptions(validation=config.validation, test=config.test, seed=config.seed,
                          augment=config.augment, progress=False)
    base = Trainer(opts).fit(ds, head_bundle)
    times["head_only"] = time.perf_counter() - t0
    (dense,) = base.head.dense_layers(base.embeddings["train"][0])

    print("2/5 cut features", file=sys.stderr)
    t1 = time.perf_counter()
    spec = ModelBundle.load(None).spec
    first = 16 - config.blocks
    cut = f"block{first - 1}_add"
    dct = efficientnet_lite0_dct_exact(normalize=spec.normalize)
    teacher = dct.get_layer("efficientnet_lite0_rgb")
    front = keras.Model(dct.inputs, dct.get_layer("frontend_rgb").output)
    body = TorchGraph(teacher, outputs=[cut]).eval()
    to_torch(teacher, body)
    views, owner = plan_views(splits, config.augment, opts.augment_options, config.seed)
    feats = []
    from tqdm import tqdm

    with torch.no_grad(), tqdm(total=len(views), desc="cut features", unit="img",
                               file=sys.stderr) as bar:
        for start in range(0, len(views), 32):
            batch = [edge_dct.prepare(p, spec, window=w, hflip=f) for p, w, f in views[start:start + 32]]
            rgb = front.predict({"y": np.concatenate([b["y"] for b in batch]),
                                 "cbcr": np.concatenate([b["cbcr"] for b in batch])}, verbose=0)
            x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))
            feats.append(body({"image": x.contiguous(memory_format=torch.channels_last)})[0]
                         .to(torch.float16).contiguous())
            bar.update(len(batch))
    feats = torch.cat(feats)
    y = torch.tensor([index[splits[s.replace("_aug", "")][i].label] for s, i in owner])
    kind = np.array([s.replace("_aug", "") for s, _ in owner])
    times["features"] = time.perf_counter() - t1

    print(f"3/5 fine-tuning blocks {first}..15 + head on {int((kind == 'train').sum())} views",
          file=sys.stderr)
    t2 = time.perf_counter()
    tail_in = keras.Input(tuple(int(d) for d in feats.shape[2:]) + (int(feats.shape[1]),),
                          name=cut)
    assert BLOCKS[first].cin == int(feats.shape[1])
    tail = keras.Model(tail_in, lite0_tail(tail_in, first, c), name="tail")
    load_lite0_weights(tail, skip=("logits",))
    tail.get_layer("logits").set_weights([dense.weights, dense.bias])
    graph = TorchGraph(tail)
    to_torch(tail, graph)
    logits_params = list(graph.layers["logits"].parameters())
    others = [p for n, p in graph.named_parameters() if not n.startswith("layers.logits.")]
    optim = torch.optim.AdamW([{"params": others, "lr": config.lr},
                               {"params": logits_params, "lr": 10 * config.lr}],
                              weight_decay=config.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    tr = np.flatnonzero(kind == "train")
    va = np.flatnonzero(kind == "validation")
    gen = torch.Generator().manual_seed(config.seed)

    def run(idx):
        x = feats[idx].float().contiguous(memory_format=torch.channels_last)
        return graph({cut: x})[0]

    def freeze_bn():
        for m in graph.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()

    def val_loss() -> float:
        graph.eval()
        with torch.no_grad():
            idx = va if len(va) else tr
            return float(loss_fn(run(torch.from_numpy(idx)), y[idx]))

    best, bad, history = val_loss(), 0, [{"epoch": 0, "val_loss": None}]
    best_state = {k: t.detach().clone() for k, t in graph.state_dict().items()}  # the warm start
    history[0]["val_loss"] = best
    print(f"  epoch 0 (head-only warm start): validation loss {best:.4f}", file=sys.stderr)
    for epoch in range(1, config.epochs + 1):
        graph.train()
        freeze_bn()
        order = tr[torch.randperm(len(tr), generator=gen).numpy()]
        for s in range(0, len(order), config.batch):
            idx = torch.from_numpy(order[s:s + config.batch])
            loss = loss_fn(run(idx), y[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
        v = val_loss()
        history.append({"epoch": epoch, "val_loss": v})
        print(f"  epoch {epoch}: validation loss {v:.4f}", file=sys.stderr)
        if v < best - 1e-4:
            best, bad = v, 0
            best_state = {k: t.detach().clone() for k, t in graph.state_dict().items()}
        else:
            bad += 1
            if bad >= config.patience:
                break
    graph.load_state_dict(best_state)  # the best epoch (0: fine-tuning did not help)
    graph.eval()
    with torch.no_grad():
        te = np.flatnonzero(kind == "test")
        fp32_test = float((run(torch.from_numpy(te)).argmax(1) == y[te]).float().mean()) \
            if len(te) else None
    times["finetune"] = time.perf_counter() - t2

    print("4/5 export (int8)", file=sys.stderr)
    t3 = time.perf_counter()
    to_keras(graph, tail)
    model = efficientnet_lite0_dct_exact(num_classes=c, normalize=spec.normalize)
    inner = model.get_layer("efficientnet_lite0_rgb")
    for layer in tail.layers:
        if layer.get_weights():
            inner.get_layer(layer.name).set_weights(layer.get_weights())
    rng = np.random.default_rng(config.seed)
    train = splits["train"]
    cal = [train[i].path for i in rng.permutation(len(train))[:config.calibration]]

    def samples():
        for p in cal:
            t = edge_dct.prepare(p, spec)
            yield {"y": t["y"], "cbcr": t["cbcr"]}

    meta = {**spec.to_dict(), "labels": list(ds.labels),
            "model": f"efficientnet_lite0_dct_exact, blocks {first}..15 fine-tuned",
            "recipe": RECIPE, "licence": "Apache-2.0",
            "head": {"recipe": RECIPE, "blocks": config.blocks, "seed": config.seed}}
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_bytes(expose_embedding(embed_metadata(convert(model, "int8", samples), meta)))
    times["export"] = time.perf_counter() - t3

    print("5/5 evaluating both bundles on the test photos", file=sys.stderr)
    test = splits["test"]
    report = {"data": str(config.data), "photos": len(ds.examples), "classes": c,
              "splits": {k: len(v) for k, v in splits.items()}, "blocks": config.blocks,
              "head_only": {"bundle": str(head_bundle), "test_top1_fp32": base.test_accuracy,
                            "test_top1_int8": _accuracy(head_bundle, test, ds.labels)},
              "finetuned": {"bundle": str(config.out), "size_bytes": config.out.stat().st_size,
                            "test_top1_fp32": fp32_test,
                            "test_top1_int8": _accuracy(config.out, test, ds.labels),
                            "epochs": len(history) - 1, "history": history,
                            "best_epoch": min(history, key=lambda h: h["val_loss"])["epoch"]},
              "seconds": times}
    (config.work / "report.json").write_text(json.dumps(report, indent=1))
    return report


def parse_args(argv: list[str] | None = None) -> FinetuneConfig:
    """The command line as a :class:`FinetuneConfig`."""
    p = argparse.ArgumentParser(prog=RECIPE, description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, required=True)
    d = FinetuneConfig(Path("."), Path("."))
    for f in dataclasses.fields(FinetuneConfig):
        if f.name in ("data", "out"):
            continue
        default = getattr(d, f.name)
        kind = Path if f.name == "work" else (int if f.name == "per_class" else type(default))
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default)
    return FinetuneConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    print(json.dumps(finetune(parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
