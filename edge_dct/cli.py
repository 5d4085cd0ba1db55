"""The ``edge-dct`` command (also ``python -m edge_dct``).

stderr carries only our messages and the progress bar: LiteRT's native log lines are
dropped unless ``--verbose`` or ``EDGE_DCT_VERBOSE=1`` asks for them (``edge_dct.native_log``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from edge_dct.errors import EdgeDctError
from edge_dct.jpeg import read_dct
from edge_dct.native_log import VERBOSE_ENV, set_verbose
from edge_dct.paths import expand_paths

_COMPONENT_NAMES = {
    "ycbcr": ("Y", "Cb", "Cr"),
    "gray": ("Y",),
    "rgb": ("R", "G", "B"),
    "cmyk": ("C", "M", "Y", "K"),
    "ycck": ("Y", "Cb", "Cr", "K"),
}


def _listed(paths: list[str]) -> list[str]:
    """JPEG files of ``paths``; ``@list.txt`` names a file listing one path per line."""
    out: list[str] = []
    for p in paths:
        if p.startswith("@"):
            try:
                out += [line.strip() for line in Path(p[1:]).read_text().splitlines() if line.strip()]
            except OSError as e:
                raise SystemExit(f"error: cannot read the photo list {p[1:]}: {e.strerror or e}") from e
        else:
            out.append(p)
    return list(expand_paths(out))


def _jpeg_files(paths: list[str]) -> list[str]:
    """The JPEG files named by ``paths`` (directories expanded, ``@list.txt`` read); says so
    on stderr when none."""
    files = _listed(paths)
    if not files:
        print("error: no JPEG files found", file=sys.stderr)
    return files


def _plane_stats(plane: np.ndarray) -> dict:
    """Statistics of one (H, W, 64) coefficient plane."""
    dc = plane[..., 0].astype(np.float64)
    ac = plane[..., 1:]
    return {
        "blocks": [int(plane.shape[0]), int(plane.shape[1])],
        "dc_mean": round(float(dc.mean()), 3),
        "dc_std": round(float(dc.std()), 3),
        "ac_nonzero_fraction": round(float(np.count_nonzero(ac)) / max(ac.size, 1), 4),
        "ac_abs_mean": round(float(np.abs(ac, dtype=np.float64).mean()), 3),
        "min": int(plane.min()),
        "max": int(plane.max()),
    }


def cmd_info(args: argparse.Namespace) -> int:
    """Prints header fields and per-component coefficient statistics."""
    failed = 0
    for path in args.paths:
        try:
            img = read_dct(path, strict=not args.lenient)
        except EdgeDctError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        info = img.info
        names = _COMPONENT_NAMES.get(info.color_space, ())
        report = {
            "file": str(path),
            "size": [info.width, info.height],
            "components": info.num_components,
            "color_space": info.color_space,
            "subsampling": info.subsampling,
            "sampling": [list(s) for s in info.sampling],
            "progressive": info.progressive,
            "arithmetic": info.arithmetic,
            "restart_interval": info.restart_interval,
            "orientation": info.orientation,
            "quant_dc": [int(q[0, 0]) for q in info.quant_tables],
            "planes": {
                (names[i] if i < len(names) else str(i)): _plane_stats(p)
                for i, p in enumerate(img.planes)
            },
            "warnings": list(img.warnings),
        }
        if args.json:
            print(json.dumps(report))
            continue
        print(f"{path}")
        print(f"  {info.width}x{info.height}  {info.color_space}  {info.subsampling}  "
              f"{'progressive' if info.progressive else 'sequential'}  "
              f"{'arithmetic' if info.arithmetic else 'huffman'}  "
              f"restart={info.restart_interval}  orientation={info.orientation}")
        for name, s in report["planes"].items():
            print(f"  {name:>3}: blocks {s['blocks'][0]}x{s['blocks'][1]}  "
                  f"DC mean {s['dc_mean']:8.2f} std {s['dc_std']:7.2f}  "
                  f"AC nonzero {100 * s['ac_nonzero_fraction']:5.1f}%  "
                  f"|AC| mean {s['ac_abs_mean']:6.2f}  range [{s['min']}, {s['max']}]")
        for w in img.warnings:
            print(f"  warning: {w}")
    return 1 if failed else 0


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)


def cmd_classify(args: argparse.Namespace) -> int:
    """Classifies JPEG files/directories/stdin; per-file errors do not stop the batch."""
    from edge_dct.classifier import Classifier
    from edge_dct.options import BaseOptions, ClassifierOptions

    try:
        base = BaseOptions(model=args.model, accelerator=args.accelerator,
                           num_threads=args.threads, delegate_path=args.delegate)
        clf = Classifier(ClassifierOptions(base_options=base, max_results=args.top_k,
                                           score_threshold=args.threshold))
    except EdgeDctError as e:  # the model, an option, the accelerator or the runtime
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = _jpeg_files(args.paths)
    if not files:
        return 2
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer:
        writer.writerow(["file", "rank", "index", "label", "score", "prepare_ms", "inference_ms"])
    bar = _progress(len(files), len(files) > 1 and not args.no_progress and sys.stderr.isatty())
    failures: list[tuple[str, str]] = []
    srcs = [sys.stdin.buffer.read() if f == "-" else f for f in files]
    names = ["<stdin>" if f == "-" else f for f in files]
    chunk = max(1, args.workers * 4, args.batch_size * 4)
    with clf:
        for start in range(0, len(srcs), chunk):
            try:
                batch = clf.classify_batch(srcs[start:start + chunk], workers=args.workers,
                                           return_exceptions=True, batch_size=args.batch_size)
            except EdgeDctError as e:  # an option the bundle cannot honour (batch size)
                print(f"error: {e}", file=sys.stderr)
                return 2
            for name, res in zip(names[start:start + chunk], batch):
                if isinstance(res, Exception):
                    failures.append((name, str(res)))
                    (bar.write if bar else lambda m: print(m, file=sys.stderr))(f"error: {res}")
                else:
                    _print_result(name, res, args, writer)
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    if failures or len(files) > 1:
        print(f"{len(files) - len(failures)} classified, {len(failures)} failed"
              f" (accelerator: {clf.accelerator})", file=sys.stderr)
    return 1 if failures else 0


def _print_result(name: str, res, args: argparse.Namespace, writer) -> None:
    cats = res.categories
    if args.json:
        print(json.dumps({"file": name, "categories": [
            {"index": c.index, "label": c.label, "score": round(c.score, 6)} for c in cats],
            "prepare_ms": round(res.timing.prepare_ms, 3),
            "inference_ms": round(res.timing.inference_ms, 3)}))
    elif writer is not None:
        for rank, c in enumerate(cats, 1):
            writer.writerow([name, rank, c.index, c.label, f"{c.score:.6f}",
                             f"{res.timing.prepare_ms:.3f}", f"{res.timing.inference_ms:.3f}"])
    else:
        top = ", ".join(f"{c.label} ({c.score:.3f})" for c in cats) or "(nothing above threshold)"
        print(f"{name}: {top}  [{res.timing.prepare_ms:.1f} + {res.timing.inference_ms:.1f} ms]")


def cmd_embed(args: argparse.Namespace) -> int:
    """Embeds JPEG files/directories into a .npy matrix (+ a .txt list of files) or JSON lines."""
    from edge_dct.embedder import ImageEmbedder, ImageEmbedderOptions
    from edge_dct.options import BaseOptions

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".jsonl"):
        print(f"error: --out must end in .npy or .jsonl, not {out.name!r}", file=sys.stderr)
        return 2
    try:
        emb = ImageEmbedder(ImageEmbedderOptions(
            BaseOptions(model=args.model, num_threads=args.threads),
            l2_normalize=args.l2_normalize, quantize=args.quantize))
    except EdgeDctError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = _jpeg_files(args.paths)
    if not files:
        return 2
    bar = _progress(len(files), len(files) > 1 and not args.no_progress and sys.stderr.isatty())
    names, vectors, failures = [], [], []
    chunk = max(1, args.workers * 8)
    with emb:
        for start in range(0, len(files), chunk):
            part = files[start:start + chunk]
            for name, res in zip(part, emb.embed_batch(part, workers=args.workers,
                                                       return_exceptions=True)):
                if isinstance(res, Exception):
                    failures.append(name)
                    (bar.write if bar else lambda m: print(m, file=sys.stderr))(f"error: {res}")
                else:
                    names.append(name)
                    vectors.append(res.embedding)
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        dim = emb.dimension
        matrix = np.stack(vectors) if vectors else np.zeros((0, dim), np.int8 if args.quantize
                                                            else np.float32)
        np.save(out, matrix)
        listing = out.with_suffix(".txt")
        listing.write_text("".join(f"{n}\n" for n in names))
        where = f"{out} {matrix.shape} {matrix.dtype} (rows: files in {listing})"
    else:
        with open(out, "w") as f:
            for n, v in zip(names, vectors):
                vals = v.tolist() if args.quantize else [round(float(x), 6) for x in v]
                f.write(json.dumps({"file": n, "embedding": vals}) + "\n")
        where = str(out)
    print(f"{len(names)} embedded, {len(failures)} failed -> {where}", file=sys.stderr)
    return 1 if failures else 0


def cmd_train(args: argparse.Namespace) -> int:
    """Trains a classifier head on a folder per class (or a CSV) and writes a new bundle."""
    from edge_dct.head_training import HeadOptions
    from edge_dct.options import BaseOptions
    from edge_dct.trainer import Trainer, TrainerOptions, write_report

    try:
        head = HeadOptions(hidden_units=args.hidden, weight_decay=args.weight_decay,
                           learning_rate=args.learning_rate, max_epochs=args.epochs,
                           patience=args.patience, dropout=args.dropout, seed=args.seed)
        options = TrainerOptions(base_options=BaseOptions(model=args.model, num_threads=args.threads),
                                 head=head, validation=args.validation, test=args.test,
                                 seed=args.seed, augment=args.augment, workers=args.workers,
                                 progress=False if args.no_progress else None)
        result = Trainer(options).fit(args.data, args.out)
    except EdgeDctError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.report())
    if args.json:
        write_report(result, args.json)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Lists the embedded bundles and the LiteRT backend in use."""
    from edge_dct.bundle import DEFAULT_MODEL, ModelBundle, ModelError, available_models
    from edge_dct.heads import has_embedding
    from edge_dct.runtime import RuntimeUnavailableError, runtime_info

    try:
        rt = runtime_info()
        print(f"runtime: {rt.backend} {rt.version}")
        for note in rt.notes:
            print(f"  note: {note}")
    except RuntimeUnavailableError as e:
        print(f"runtime: none ({e})")
    paths = [Path(p) for p in args.paths] or available_models()
    if not paths:
        print(f"no embedded models (expected {DEFAULT_MODEL})")
    for path in paths:
        try:
            b = ModelBundle.load(path)
        except ModelError as e:
            print(f"{path}: error: {e.reason}")
            continue
        s = b.spec
        chans = "/".join(str(len(s.channels[c])) for c in ("y", "cb", "cr"))
        tag = " (default)" if path.resolve() == DEFAULT_MODEL.resolve() else ""
        embed = ", embed signature (embeddings)" if has_embedding(b.content) else ""
        print(f"{path}{tag}: {len(b.content) / 1e6:.1f} MB, grid {s.grid[0]}x{s.grid[1]}, "
              f"layout {s.layout}, channels y/cb/cr {chans}, resize {s.resize}, "
              f"{len(b.labels)} labels{embed}")
    return 0


def _write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file: a failure leaves no partial file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_transcode(args: argparse.Namespace) -> int:
    """Re-codes JPEGs in the DCT domain: tables tuned for a model, given tables, or a quality."""
    from edge_dct.codec import transcode, transcode_for_model
    from edge_dct.tables import load_tables, tables_for_model

    chosen = [args.for_model is not None, args.tables is not None, args.quality is not None]
    if sum(chosen) > 1:
        print("error: give one of --for-model, --tables and --quality", file=sys.stderr)
        return 2
    try:
        tuned = None
        if args.tables is not None:
            tuned = load_tables(args.tables)
        model = None if args.for_model in (None, "default") else args.for_model
        if args.for_model is not None:
            tuned = tables_for_model(model)
    except EdgeDctError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = _jpeg_files(args.paths)
    if not files:
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = _progress(len(files), len(files) > 1 and not args.no_progress and sys.stderr.isatty())
    before = after = failed = 0
    for f in files:
        try:
            data = Path(f).read_bytes()
            coding = dict(optimize=not args.no_optimize, progressive=args.progressive,
                          keep_metadata=not args.strip_metadata, strict=not args.lenient)
            if args.for_model is not None:
                new = transcode_for_model(data, model, tuned, **coding)
            else:
                new = transcode(data, tables=tuned, quality=args.quality, **coding)
            target = out_dir / Path(f).name
            if target.resolve() == Path(f).resolve():
                raise EdgeDctError("refusing to overwrite the input (choose another --out)", f)
            _write_atomic(target, new)
            before, after = before + len(data), after + len(new)
        except (EdgeDctError, OSError) as e:
            failed += 1
            print(f"{f}: error: {e}", file=sys.stderr)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    done = len(files) - failed
    ratio = f" ({100 * (after / before - 1):+.1f}%)" if before else ""
    print(f"{done} re-coded, {failed} failed: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB{ratio} in {out_dir}",
          file=sys.stderr)
    return 1 if failed else 0


def _read_labels(path: str, files: list[str], labels: Sequence[str]) -> list[int]:
    """Class index per file from a ``path,label`` CSV (label: index or the model's label)."""
    index = {name: i for i, name in enumerate(labels)}
    by_path: dict[str, int] = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) < 2 or row[0] == "path":
                continue
            lab = row[1].strip()
            by_path[os.path.abspath(row[0])] = int(lab) if lab.isdigit() else index[lab]
    missing = [f for f in files if os.path.abspath(f) not in by_path]
    if missing:
        raise EdgeDctError(f"{len(missing)} photos have no label (first: {missing[0]})", path)
    return [by_path[os.path.abspath(f)] for f in files]


def cmd_tune_tables(args: argparse.Namespace) -> int:
    """Sorted random search of quantization tables for a model, validated on held-out photos."""
    from dataclasses import asdict

    from edge_dct.tuning import Evaluator, SearchConfig, split_photos, tune

    files = _listed(args.photos)
    if len(files) < 2:
        print("error: need at least 2 photos", file=sys.stderr)
        return 2
    if args.evaluate:
        return _evaluate_tables(args, files)
    try:
        if args.validate:
            calib, val = files, _listed(args.validate)
            if set(calib) & set(val):
                raise EdgeDctError("--validate photos must not be tuning photos")
        else:
            calib, val = split_photos(files, args.validation_share, args.seed)
        config = SearchConfig(candidates=args.candidates, rounds=args.rounds,
                              reference_quality=args.reference_quality, seed=args.seed)
        cal_ev = Evaluator(calib, args.model, workers=args.workers, num_threads=args.threads)
        labels = None
        if args.labels:
            labels = (_read_labels(args.labels, calib, cal_ev.classifier.labels),
                      _read_labels(args.labels, val, cal_ev.classifier.labels))
            cal_ev.labels = np.asarray(labels[0])
        val_ev = Evaluator(val, args.model, labels=None if labels is None else labels[1],
                           workers=args.workers, num_threads=args.threads)
    except (EdgeDctError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    state = Path(args.state) if args.state else out.with_suffix(".state.jsonl")
    bar = _progress(1 + config.candidates + config.rounds * 37, not args.no_progress)

    def progress(done: int, total: int, trial) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(f"{trial.kind} {trial.score['bytes'] / 1024:.1f} KiB "
                                f"agree {100 * trial.score['agreement']:.1f}%")
            bar.refresh()

    print(f"tuning on {len(calib)} photos, validating on {len(val)} (state: {state})", file=sys.stderr)
    report = tune(cal_ev, val_ev, config, state=state, progress=progress)
    if bar is not None:
        bar.close()
    record = asdict(report)
    record["recipe"] = " ".join(["edge-dct", "tune-tables"] + sys.argv[2:]) if sys.argv[1:2] == ["tune-tables"] else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, (json.dumps(record, indent=1) + "\n").encode())
    plot = Path(args.plot) if args.plot else out.with_suffix(".png")
    _plot(plot, record["validation"], f"{len(val)} validation photos, model {Path(report.model).name}")
    print(report.summary())
    print(f"tables: {out} ({report.seconds:.0f} s)")
    return 0


def _plot(path: Path, validation: dict, title: str) -> None:
    """The rate-agreement plot of a validation record (a note when matplotlib is missing)."""
    from edge_dct.tuning import Score, rate_accuracy_plot

    def score(d: dict) -> Score:
        return Score(**{k: v for k, v in d.items() if k != "quality"})

    try:
        rate_accuracy_plot(path, [(d["quality"], score(d)) for d in validation["standard"]],
                           [score(d) for d in validation["front"]], score(validation["chosen"]), title,
                           [(d["quality"], score(d)) for d in validation.get("for_model", ())])
        print(f"plot: {path}", file=sys.stderr)
    except ImportError:
        print("note: no plot (pip install matplotlib)", file=sys.stderr)


def _evaluate_tables(args: argparse.Namespace, files: list[str]) -> int:
    """``tune-tables --evaluate T.json``: scores given tables on PHOTOS (all held out)."""
    from edge_dct.tables import load_tables
    from edge_dct.tuning import Evaluator, validate

    try:
        tables = load_tables(args.evaluate)
        ev = Evaluator(files, args.model, workers=args.workers, num_threads=args.threads)
        if args.labels:
            ev.labels = np.asarray(_read_labels(args.labels, files, ev.classifier.labels))
    except (EdgeDctError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    record = {"tables": tables.to_dict(), "evaluated": str(args.evaluate), "model": ev.classifier.bundle.name,
              "reference_quality": args.reference_quality,
              "validation": validate(ev, tables, (), args.reference_quality)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, (json.dumps(record, indent=1) + "\n").encode())
    v, r = record["validation"]["chosen"], record["validation"]["reference"]
    _plot(Path(args.plot) if args.plot else out.with_suffix(".png"), record["validation"],
          f"{len(files)} photos, tables {Path(args.evaluate).name}")
    print(f"{len(files)} photos: {v['bytes'] / 1024:.1f} KiB/photo, agreement {100 * v['agreement']:.1f}% "
          f"vs quality {args.reference_quality}: {r['bytes'] / 1024:.1f} KiB/photo, agreement "
          f"{100 * r['agreement']:.1f}% (bytes {100 * (v['bytes'] / r['bytes'] - 1):+.1f}%)")
    if v.get("accuracy") is not None:
        print(f"label accuracy {100 * v['accuracy']:.1f}% vs "
              f"{100 * record['validation']['standard_accuracy_at_size']:.1f}% for standard tables of the same size")
    print(f"report: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-dct", description="Classify JPEG photos straight from their DCT coefficients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help=f"also show LiteRT's native log lines (or set {VERBOSE_ENV}=1)")
    info = sub.add_parser("info", parents=[common],
                          help="header and coefficient statistics of JPEG files")
    info.add_argument("paths", nargs="+", help="JPEG files")
    info.add_argument("--json", action="store_true", help="one JSON object per file")
    info.add_argument("--lenient", action="store_true",
                      help="decode corrupt/truncated files as far as possible (strict=False)")
    info.set_defaults(func=cmd_info)

    cl = sub.add_parser("classify", parents=[common],
                        help="classify JPEG files, directories or stdin ('-')")
    cl.add_argument("paths", nargs="+", help="JPEG files, directories (recursive) or - for stdin")
    cl.add_argument("--model", help="edge_dct .tflite or .onnx bundle (default: the embedded model)")
    cl.add_argument("--top-k", type=int, default=5, help="categories per image (default 5)")
    cl.add_argument("--threshold", type=float, default=0.0, help="minimum score (default 0)")
    cl.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads")
    cl.add_argument("--accelerator", default="cpu",
                    choices=["cpu", "gpu", "edgetpu", "cuda", "tensorrt", "auto"],
                    help="gpu/edgetpu: LiteRT bundles; cuda/tensorrt: .onnx bundles (ONNX Runtime)")
    cl.add_argument("--batch-size", type=int, default=1,
                    help="images per network call (throughput mode, .onnx bundles; default 1)")
    cl.add_argument("--delegate", help="delegate library (GPU delegate .so, libedgetpu.so.1)")
    cl.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="decoding threads (default: CPU count)")
    out = cl.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per image")
    out.add_argument("--csv", action="store_true", help="CSV rows: file, rank, index, label, score")
    cl.add_argument("--no-progress", action="store_true", help="no progress bar")
    cl.set_defaults(func=cmd_classify)

    em = sub.add_parser("embed", parents=[common],
                        help="feature vectors of JPEG files or directories (.npy or .jsonl)")
    em.add_argument("paths", nargs="+", help="JPEG files or directories (recursive)")
    em.add_argument("--out", required=True,
                    help="vectors.npy (matrix; row i = line i of vectors.txt) or vectors.jsonl")
    em.add_argument("--model", help="bundle with an 'embed' signature (default: the embedded model)")
    em.add_argument("--l2-normalize", action="store_true", help="unit-length vectors")
    em.add_argument("--quantize", action="store_true", help="int8 vectors (unit length x 128)")
    em.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads")
    em.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="decoding threads (default: CPU count)")
    em.add_argument("--no-progress", action="store_true", help="no progress bar")
    em.set_defaults(func=cmd_embed)

    tr = sub.add_parser("train", parents=[common],
                        help="train your own classes (a folder per class, or a CSV) into a bundle")
    tr.add_argument("data", help="folder with one sub-folder per class (or train/validation/test "
                                 "folders of them), or a CSV of path,label[,split]")
    tr.add_argument("--out", required=True, help="the new .tflite bundle")
    tr.add_argument("--model", help="base bundle (default: the embedded model)")
    tr.add_argument("--validation", type=float, default=0.1,
                    help="validation fraction per class for early stopping (default 0.1)")
    tr.add_argument("--test", type=float, default=0.2,
                    help="held-out test fraction per class (default 0.2)")
    tr.add_argument("--seed", type=int, default=0, help="seed of split, augmentation, head")
    tr.add_argument("--augment", type=int, default=1,
                    help="random crop+flip views per training photo (default 1; 0: none)")
    tr.add_argument("--hidden", type=int, default=0, help="hidden layer width (default 0: none)")
    tr.add_argument("--epochs", type=int, default=300, help="maximum epochs (default 300)")
    tr.add_argument("--patience", type=int, default=20, help="early-stopping patience (default 20)")
    tr.add_argument("--weight-decay", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    tr.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step (default 1e-3)")
    tr.add_argument("--dropout", type=float, default=0.2, help="feature dropout (default 0.2)")
    tr.add_argument("--threads", type=int, default=1, help="LiteRT threads per worker (default 1)")
    tr.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="interpreters embedding in parallel (default: CPU count)")
    tr.add_argument("--json", type=Path, help="also write the metrics here")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train)

    bench = sub.add_parser("bench", add_help=False,
                           help="DCT pipeline vs the RGB EfficientNet-Lite0 pipeline (see bench --help)")
    bench.add_argument("rest", nargs=argparse.REMAINDER)  # parsed by edge_dct.bench

    tc = sub.add_parser("transcode", parents=[common],
                        help="re-code JPEGs with new quantization tables, in the DCT domain")
    tc.add_argument("paths", nargs="+", help="JPEG files, directories (recursive) or @list.txt")
    tc.add_argument("--out", required=True, help="output folder (same file names)")
    tc.add_argument("--for-model", nargs="?", const="default", metavar="BUNDLE",
                    help="keep only what this bundle reads of each photo (its crop, its "
                         "frequencies), with the tables tuned for it (NAME.tables.json beside it; "
                         "default: the embedded model's)")
    tc.add_argument("--tables", help="a tables JSON (edge-dct tune-tables --out)")
    tc.add_argument("--quality", type=int, help="libjpeg's standard tables at this quality")
    tc.add_argument("--progressive", action="store_true", help="write progressive JPEG")
    tc.add_argument("--no-optimize", action="store_true", help="standard Huffman tables (faster)")
    tc.add_argument("--strip-metadata", action="store_true", help="drop EXIF/ICC/XMP/comments")
    tc.add_argument("--lenient", action="store_true", help="re-code corrupt files as far as they decode")
    tc.add_argument("--no-progress", action="store_true", help="no progress bar")
    tc.set_defaults(func=cmd_transcode)

    tt = sub.add_parser("tune-tables", parents=[common],
                        help="search quantization tables for a model (sorted random search)")
    tt.add_argument("photos", nargs="+", help="JPEG files, directories or @list.txt")
    tt.add_argument("--out", required=True, help="tables JSON to write (plot beside it as .png)")
    tt.add_argument("--model", help="bundle (default: the embedded model)")
    tt.add_argument("--validate", nargs="+", help="validation photos (default: a split of PHOTOS)")
    tt.add_argument("--evaluate", metavar="TABLES_JSON",
                    help="no search: score these tables on PHOTOS (all held out) against the standard qualities")
    tt.add_argument("--validation-share", type=float, default=0.5,
                    help="share of PHOTOS held out for validation without --validate (default 0.5)")
    tt.add_argument("--labels", help="CSV path,label (index or the model's label): also label accuracy")
    tt.add_argument("--candidates", type=int, default=60, help="random candidates (default 60)")
    tt.add_argument("--rounds", type=int, default=4, help="local refinement rounds (default 4)")
    tt.add_argument("--reference-quality", type=int, default=75,
                    help="standard quality the tables must match in fidelity (default 75)")
    tt.add_argument("--seed", type=int, default=0, help="seed of the split and the search")
    tt.add_argument("--state", help="resume file (default: OUT with .state.jsonl)")
    tt.add_argument("--plot", help="rate-agreement plot (default: OUT with .png)")
    tt.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="re-coding threads")
    tt.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads")
    tt.add_argument("--no-progress", action="store_true", help="no progress bar")
    tt.set_defaults(func=cmd_tune_tables)

    models = sub.add_parser("models", parents=[common],
                            help="embedded models and the LiteRT backend in use")
    models.add_argument("paths", nargs="*", help="bundles to describe (default: embedded ones)")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from edge_dct.bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.verbose:
        set_verbose(True)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
