"""Parity of two edge_dct builds (source vs wheel, x86_64 vs aarch64) on the shared corpus.

``dump`` records, with whatever edge_dct the running interpreter imports: the embedded default
model's top-5 (labels and scores) on each clothing photo; a SHA-256 of ``read_dct``'s arrays for
every JPEG of the shared corpus (where one raises: the exception's type name, then the
``strict=False`` decode's record); and a SHA-256 of the tensors ``prepare`` makes of each photo
with the model's input spec, dtype and quantization (what ``Classifier`` feeds the interpreter).
``compare`` checks two dumps and exits 1 on any mismatch, naming the file.

Usage:
    python scripts/wheels/parity.py dump OUT.json [--photos DIR] [--corpus DIR]
    python scripts/wheels/parity.py compare A.json B.json [--score-tol 1e-5] [--exact-scores]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
PHOTOS = CORPUS / "photos" / "clothing"


def jpegs(folder: Path) -> list[Path]:
    """Every .jpg/.jpeg file under ``folder`` (any case), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg"})


def digest(arrays: Iterable[Any]) -> str:
    """SHA-256 of numpy arrays: each one's dtype, shape and C-order bytes."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def decoded(path: Path) -> str:
    """``read_dct``'s record of one file: the digest of its planes and tables (and the number of
    corrupt-data warnings), or ``error:TYPE`` followed by the lenient (``strict=False``) record."""
    import edge_dct

    def once(strict: bool) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted in the record instead
            try:
                img = edge_dct.read_dct(path, strict=strict)
            except Exception as e:  # noqa: BLE001 - the failure's kind is part of the record
                return f"error:{type(e).__name__}"
        return digest([*img.planes, img.quant_tables]) + (f" warnings={len(img.warnings)}" if img.warnings else "")

    strict = once(True)
    return f"{strict} lenient={once(False)}" if strict.startswith("error:") else strict


def dump(out: Path, photos: Path, corpus: Path) -> None:
    """Writes the record of the imported edge_dct on ``photos`` and ``corpus`` to ``out``.

    Args:
        out: The JSON file to write.
        photos: Folder of the photos to classify and prepare.
        corpus: Folder of every JPEG to decode with ``read_dct``.
    """
    import edge_dct
    from edge_dct import _jpeg

    photo_files = jpegs(photos)
    if not photo_files:
        sys.exit(f"parity: no JPEG under {photos}")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    top5: dict[str, list[list[Any]]] = {}
    tensors: dict[str, dict[str, str]] = {}
    with edge_dct.Classifier(edge_dct.ClassifierOptions(max_results=5)) as clf:
        runner = clf._runner  # the input dtype/quantization Classifier prepares with
        dtype, quantization = runner.input_dtype, runner.quantization
        for p in photo_files:
            key = p.relative_to(photos).as_posix()
            top5[key] = [[c.label, c.index, c.score] for c in clf.classify(p).categories]
        seconds["classify"] = time.perf_counter() - start
        start = time.perf_counter()
        for p in photo_files:
            got = edge_dct.prepare(p, clf.spec, dtype=dtype, quantization=quantization)
            tensors[p.relative_to(photos).as_posix()] = {n: digest([a]) for n, a in sorted(got.items())}
        seconds["prepare"] = time.perf_counter() - start
    start = time.perf_counter()
    dct = {p.relative_to(corpus).as_posix(): decoded(p) for p in jpegs(corpus)}
    seconds["read_dct"] = time.perf_counter() - start
    record = {
        "edge_dct": edge_dct.__file__, "_jpeg": _jpeg.__file__, "machine": platform.machine(),
        "python": sys.version, "input_dtype": str(dtype), "seconds": seconds,
        "top5": top5, "prepare": tensors, "read_dct": dct,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    errors = sum(v.startswith("error:") for v in dct.values())
    print(f"parity dump {out}: {platform.machine()}, {len(top5)} photos, {len(dct)} JPEGs read "
          f"({errors} raise), _jpeg from {_jpeg.__file__}; "
          + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))


def compare(a_path: Path, b_path: Path, score_tol: float, exact: bool) -> int:
    """Checks two dumps against each other and prints what differs.

    Args:
        a_path: The reference dump.
        b_path: The dump checked against it.
        score_tol: Largest absolute score difference allowed.
        exact: Scores must be bit-identical (overrides ``score_tol``).

    Returns:
        0 when top-5 labels, scores, read_dct and prepare all agree, else 1.
    """
    a, b = (json.loads(p.read_text()) for p in (a_path, b_path))
    for name, r in (("A", a), ("B", b)):
        print(f"{name}: {r['machine']} Python {r['python'].split()[0]}, _jpeg {r['_jpeg']}")
    bad: list[str] = []
    worst = 0.0
    for key in sorted(set(a["top5"]) | set(b["top5"])):
        ta, tb = a["top5"].get(key), b["top5"].get(key)
        if ta is None or tb is None:
            bad.append(f"top5 {key}: only in {'B' if ta is None else 'A'}")
            continue
        if [c[:2] for c in ta] != [c[:2] for c in tb]:
            bad.append(f"top5 {key}: labels {[c[0] for c in ta]} != {[c[0] for c in tb]}")
            continue
        diff = max(abs(x[2] - y[2]) for x, y in zip(ta, tb))
        worst = max(worst, diff)
        if (diff != 0) if exact else (diff > score_tol):
            bad.append(f"top5 {key}: scores differ by {diff:.3g}")
    for section in ("read_dct", "prepare"):
        for key in sorted(set(a[section]) | set(b[section])):
            va, vb = (r[section].get(key, "missing") for r in (a, b))
            if va != vb:
                bad.append(f"{section} {key}: {va} != {vb}")
    errors = sum(str(v).startswith("error:") for v in a["read_dct"].values())
    print(f"top-5: {len(a['top5'])} photos, largest score difference {worst:.3g} "
          f"({'exact' if exact else f'tolerance {score_tol:g}'}); read_dct: {len(a['read_dct'])} "
          f"JPEGs ({errors} raise); prepare: {len(a['prepare'])} photos")
    for line in bad:
        print(f"MISMATCH {line}")
    print(f"parity: {'FAILED, ' + str(len(bad)) + ' mismatches' if bad else 'identical'}")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="record the imported edge_dct's results")
    d.add_argument("out", type=Path)
    d.add_argument("--photos", type=Path, default=PHOTOS, help=f"default {PHOTOS}")
    d.add_argument("--corpus", type=Path, default=CORPUS, help=f"default {CORPUS}")
    c = sub.add_parser("compare", help="check two dumps; exit 1 on any mismatch")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--score-tol", type=float, default=1e-5, help="absolute (default 1e-5)")
    c.add_argument("--exact-scores", action="store_true", help="scores bit-identical")
    args = ap.parse_args()
    if args.command == "dump":
        dump(args.out, args.photos.resolve(), args.corpus.resolve())
        return 0
    return compare(args.a, args.b, args.score_tol, args.exact_scores)


if __name__ == "__main__":
    sys.exit(main())
