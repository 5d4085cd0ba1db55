"""The cut-depth frontier of the EfficientNet-Lite0-DCT students: speed against fidelity (#15).

    python -m converters frontier --bundle cut1=RUN1/student_int8.tflite --bundle exact=edge_dct/models/default.tflite \\
        --run cut1=RUN1 --run cut2=RUN2 --out ~/edge_dct_work/cuts/frontier [--photos 2000]

For every int8 DCT bundle, in one run beside the RGB EfficientNet-Lite0 int8 pipeline
(:mod:`edge_dct.bench`, the strongest peer: libjpeg-turbo DCT-scaled decode, area resize, LiteRT):

* **speed**: network latency and end-to-end latency (``prepare`` + inference vs decode + resize +
  inference), medians per photo and the median of per-photo speed-ups, at 1 and 2 threads, on
  the small photos (default the shared clothing photos, ~400x533) and the large ones (default
  ``~/edge_dct_work/photos/large``, 5-18 MP, ``bash benchmarks/get_photos.sh``);
* **fidelity** on held-back photos never trained on (:func:`converters.data.splits.held_out_photos`),
  through ``edge_dct.Classifier``: top-1 agreement with the fp32 RGB teacher on its own decode
  (Wilson 95% interval), the teacher's top-1 inside the bundle's top-5, and 1000-way top-1 on
  the labelled (Imagenette ``val/``) ones; the RGB int8 pipeline is scored the same way.

Writes ``frontier.json`` and ``frontier.png`` (end-to-end speed-up against agreement, bars drawn)
and, for ``--run`` folders, ``learning_curves.png`` (agreement on the runs' evaluation photos
against crops seen and CPU minutes, from their ``log.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..data.splits import held_out_photos
from ..data.workspace import data_dir, work_dir
from ..ship.intervals import wilson_interval

BARS = {"agreement": 0.92, "top5": 0.99, "speedup": 1.5, "speedup_large": 1.4}
"""Issue #15's bars: top-1 agreement, teacher top-1 in top-5, end-to-end speed-up (small photos,
1 and 2 threads) and on 5-16 MP photos."""


def _named(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path).expanduser()


def fidelity(bundles: dict[str, Path], rgb_model: Path, photos: list[Path]) -> dict[str, dict[str, Any]]:
    """Agreement of each bundle and of the RGB int8 pipeline with the fp32 teacher.

    Returns:
        ``{name: agreement(...) + "top1_agreement_ci95"}``, the RGB pipeline as ``"rgb_int8"``.
    """
    from edge_dct import Classifier
    from edge_dct.bench import RgbPipeline
    from edge_dct.spec import dct_spec

    from .crops import serving_view
    from .evaluation import agreement, synset_labels
    from .teacher import Teacher, teacher_bundles

    teacher = Teacher(teacher_bundles(work_dir() / "targets", 28))
    spec = dct_spec((28, 28))
    classifiers = {n: Classifier.create_from_model_path(p, max_results=5, num_threads=2) for n, p in bundles.items()}
    rgb = RgbPipeline(rgb_model, 2)
    top5: dict[str, list[list[int]]] = {n: [] for n in [*bundles, "rgb_int8"]}
    logits = []
    for k, p in enumerate(photos):
        data = p.read_bytes()
        for n, c in classifiers.items():
            top5[n].append([cat.index for cat in c.classify(data).categories])
        top5["rgb_int8"].append(list(np.argsort(-rgb.infer(rgb.preprocess(data))[0].astype(np.float32))[:5]))
        logits.append(teacher(serving_view(data, spec))[1])
        if (k + 1) % 250 == 0:
            print(f"  fidelity: {k + 1}/{len(photos)} photos", file=sys.stderr, flush=True)
    for c in classifiers.values():
        c.close()
    teacher_logits, labels = np.stack(logits), synset_labels(photos)
    out = {}
    for n, t in top5.items():
        a = agreement(np.array(t), teacher_logits, labels)
        a["top1_agreement_ci95"] = list(wilson_interval(round(a["top1_agreement"] * len(photos)), len(photos)))
        out[n] = a
    return out


def speed(bundles: dict[str, Path], rgb_model: Path, photos: list[Path], threads: tuple[int, ...],
          repeat: int) -> dict[str, dict[str, Any]]:
    """``edge_dct.bench.run`` medians per bundle and thread count: ``{name: {"1": medians_ms, ...}}``."""
    from edge_dct.bench import run

    return {n: {str(t): run(photos, str(p), rgb_model, t, repeat)["medians_ms"] for t in threads}
            for n, p in bundles.items()}


def learning_curves(runs: dict[str, list[Path]]) -> dict[str, list[dict[str, float]]]:
    """Per chain of runs (a feature run, then the runs ``--init`` from it): the evaluations of
    their ``log.jsonl`` as ``[{"run", "step", "crops", "minutes", "top1_agreement", "top5"}]``,
    crops seen and training minutes (from each logged window's images/s) summed along the chain."""
    curves = {}
    for name, chain in runs.items():
        points, crops, minutes = [], 0, 0.0
        for run in chain:
            state = json.loads((sorted(run.glob("ckpt-*/state.json"))[-1]).read_text())
            batch, last = state["config"]["optim"]["batch"], 0
            for line in (run / "log.jsonl").read_text().splitlines():
                r = json.loads(line)
                if r.get("event") == "resume":
                    last = r["step"]
                if "loss" in r:
                    n = (r["step"] - last) * batch
                    crops, minutes, last = crops + n, minutes + n / r["images_per_s"] / 60, r["step"]
                if "eval" in r:
                    points.append({"run": run.name, "step": r["step"], "crops": crops, "minutes": round(minutes, 4),
                                   "top1_agreement": r["eval"]["top1_agreement"],
                                   "top5": r["eval"]["teacher_top1_in_student_top5"]})
        curves[name] = points
    return curves


def plot_curves(curves: dict[str, list[dict[str, float]]], out: Path) -> None:
    """``learning_curves.png``: agreement against crops seen and against training minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120, sharey=True)
    for name, pts in curves.items():
        for ax, key in zip(axes, ("crops", "minutes")):
            ax.plot([p[key] for p in pts], [100 * p["top1_agreement"] for p in pts], "o-", ms=3, label=name)
    axes[0].set_xlabel("training crops seen")
    axes[1].set_xlabel("training minutes (2-core CPU)")
    axes[0].set_ylabel("top-1 agreement with the teacher, %")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.axhline(100 * BARS["agreement"], ls="--", c="gray", lw=1)
    axes[0].legend(fontsize=8)
    fig.suptitle("agreement on the runs' evaluation photos while training (feature stage, then logits stage)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot(results: dict[str, Any], out: Path) -> None:
    """``frontier.png``: end-to-end speed-up (small photos, 1 and 2 threads) against agreement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, (name, f) in enumerate(results["fidelity"].items()):
        a = 100 * f["top1_agreement"]
        lo, hi = (100 * v for v in f["top1_agreement_ci95"])
        for t, marker in (("1", "o"), ("2", "s")):
            s = 1.0 if name == "rgb_int8" else results["speed_small"][name][t]["speedup"]
            ax.errorbar(a, s, xerr=[[a - lo], [hi - a]], fmt=marker, color=f"C{i}", capsize=3,
                        label=name if t == "1" else None)
        ax.annotate(name, (a, 1.0 if name == "rgb_int8" else results["speed_small"][name]["1"]["speedup"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axvline(100 * BARS["agreement"], ls="--", c="gray", lw=1)
    ax.axhline(BARS["speedup"], ls="--", c="gray", lw=1)
    ax.set_xlabel("top-1 agreement with the fp32 RGB teacher, % (95% interval)")
    ax.set_ylabel("end-to-end speed-up vs RGB int8 pipeline\n(circles: 1 thread, squares: 2 threads)")
    ax.set_title(f"EfficientNet-Lite0-DCT cut-depth frontier ({results['photos']} held-back photos)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    from edge_dct.bench import default_rgb_model, ensure_rgb_model
    from edge_dct.paths import expand_paths

    p = argparse.ArgumentParser(prog="python -m converters frontier", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=_named, action="append", default=[], metavar="NAME=PATH",
                   help="an int8 DCT bundle (repeat)")
    p.add_argument("--run", action="append", default=[], metavar="NAME=RUN[,RUN...]",
                   help="training runs whose learning curve to plot (a chain: feature run, then its --init runs)")
    p.add_argument("--out", type=Path, required=True, help="folder for frontier.json and the plots")
    p.add_argument("--photos", type=int, default=2000, help="held-back photos of the fidelity (0: skip)")
    p.add_argument("--data", type=Path, default=data_dir(), help="folder of the photo sets")
    p.add_argument("--small", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "corpus" /
                                          "photos" / "clothing"), help="small photos for the speed (dir or glob)")
    p.add_argument("--large", default=str(work_dir() / "photos" / "large"), help="5-18 MP photos (dir or glob)")
    p.add_argument("--min-mp", type=float, default=5.0, help="large photos: at least this many megapixels")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=5, help="timed runs per photo")
    p.add_argument("--rgb-model", type=Path, default=None, help="RGB int8 bundle (default: edge-dct bench's)")
    args = p.parse_args(argv)
    runs = {}
    for text in args.run:
        name, sep, chain = text.partition("=")
        if not sep:
            p.error(f"--run: expected NAME=RUN[,RUN...], got {text!r}")
        runs[name] = [Path(r).expanduser() for r in chain.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    if runs:
        curves = learning_curves(runs)
        (args.out / "learning_curves.json").write_text(json.dumps(curves, indent=1))
        plot_curves(curves, args.out / "learning_curves.png")
    if not args.bundle:
        return 0
    bundles = dict(args.bundle)
    for n, path in bundles.items():
        if not path.is_file():
            p.error(f"--bundle {n}: {path} not found")
    rgb_model = args.rgb_model or ensure_rgb_model(default_rgb_model())
    from edge_dct.jpeg import read_header

    small = [Path(x) for x in expand_paths([args.small])]
    large = [Path(x) for x in expand_paths([args.large])]
    large = [x for x in large if (lambda h: h.width * h.height >= 1e6 * args.min_mp)(read_header(x.read_bytes()))]
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"threads": args.threads, "small_photos": len(small), "large_photos": len(large)}
    results["speed_small"] = speed(bundles, rgb_model, small, tuple(args.threads), args.repeat)
    if large:
        results["speed_large"] = speed(bundles, rgb_model, large, tuple(args.threads), args.repeat)
    held = held_out_photos(args.data, args.photos) if args.photos else []
    results["photos"] = len(held)
    if held:
        results["fidelity"] = fidelity(bundles, rgb_model, held)
    (args.out / "frontier.json").write_text(json.dumps(results, indent=1))
    for n in bundles:
        line = [f"{n:>10}"]
        for t in map(str, args.threads):
            m = results["speed_small"][n][t]
            line.append(f"{t}T net {m['dct_infer']:.2f} vs {m['rgb_infer']:.2f} ms, e2e {m['speedup']:.2f}x")
            if large:
                line.append(f"large {results['speed_large'][n][t]['speedup']:.2f}x")
        if held:
            f = results["fidelity"][n]
            line.append(f"agreement {100 * f['top1_agreement']:.2f}% top5 {100 * f['teacher_top1_in_student_top5']:.2f}%"
                        f" top1 {100 * f.get('top1_student', float('nan')):.2f}%")
        print(" | ".join(line))
    if held:
        f = results["fidelity"]["rgb_int8"]
        print(f"  rgb_int8 | agreement {100 * f['top1_agreement']:.2f}% top5 {100 * f['teacher_top1_in_student_top5']:.2f}%"
              f" top1 {100 * f.get('top1_student', float('nan')):.2f}%")
        plot(results, args.out / "frontier.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
