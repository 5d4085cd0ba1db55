#!/usr/bin/env python3
"""Find near-duplicates and nearest neighbours in a folder of JPEGs, from their embeddings.

Every photo is embedded once (``edge_dct.ImageEmbedder``, unit-length vectors straight from
the DCT coefficients, no pixel decoded), then compared by cosine similarity: pairs at or
above ``--threshold`` are reported as near-duplicates (re-encoded, resized or lightly cropped
copies of one photo score ~0.9 and more; different photos of one subject usually well below),
and each photo's ``--k`` nearest neighbours are listed (or only those of ``--query``).

Usage:
    python examples/find_similar.py photos/
    python examples/find_similar.py photos/ --query photos/cat.jpg --k 3
    python examples/find_similar.py photos/ --threshold 0.95 --json pairs.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

import edge_dct

JPEG_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif"}


def find_jpegs(folder: Path) -> list[Path]:
    """The JPEG files under ``folder`` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in JPEG_SUFFIXES and p.is_file())


def embed_all(embedder: edge_dct.ImageEmbedder, files: list[Path], workers: int
              ) -> tuple[list[Path], np.ndarray, list[str]]:
    """(embedded files, float32 (N, D) unit vectors, error messages of the failed files)."""
    kept, rows, errors = [], [], []
    chunk = max(1, workers * 8)
    with tqdm(total=len(files), unit="img", file=sys.stderr) as bar:
        for start in range(0, len(files), chunk):
            part = files[start:start + chunk]
            for path, res in zip(part, embedder.embed_batch(part, workers=workers,
                                                            return_exceptions=True)):
                if isinstance(res, Exception):
                    errors.append(str(res))
                    bar.write(f"error: {res}", file=sys.stderr)
                else:
                    kept.append(path)
                    rows.append(res.embedding)
                bar.update()
    dim = embedder.dimension
    return kept, (np.stack(rows) if rows else np.zeros((0, dim), np.float32)), errors


def near_duplicates(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, cosine) of every pair i < j with cosine >= threshold, most similar first.

    Args:
        vectors: float (N, D) unit vectors.
        threshold: The cosine similarity from which two photos count as copies.
    """
    pairs = []
    for start in range(0, len(vectors), 1024):  # blocks of rows bound the memory
        sims = vectors[start:start + 1024] @ vectors.T
        for r, c in zip(*np.nonzero(sims >= threshold)):
            i = start + int(r)
            if i < c:
                pairs.append((i, int(c), float(sims[r, c])))
    return sorted(pairs, key=lambda p: -p[2])


def neighbours(vectors: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None
               ) -> list[tuple[int, float]]:
    """The ``k`` rows of ``vectors`` most similar to ``query`` (a unit vector), best first."""
    sims = vectors @ query
    if exclude is not None:
        sims[exclude] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return [(int(i), float(sims[i])) for i in order if np.isfinite(sims[i])]


def main(argv: list[str] | None = None) -> int:
    """Embeds the folder, prints near-duplicate pairs and nearest neighbours.

    Returns:
        0 on success, 1 when some files could not be embedded, 2 on a usage error.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder to search for JPEG files")
    parser.add_argument("--query", type=Path, help="list only this photo's neighbours")
    parser.add_argument("--k", type=int, default=3, help="neighbours per photo (default 3)")
    parser.add_argument("--threshold", type=float, default=0.9,
                        help="cosine similarity from which a pair is a near-duplicate (default 0.9)")
    parser.add_argument("--model", help="bundle with an 'embed' signature (default: the embedded model)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decoding threads")
    parser.add_argument("--json", type=Path, help="also write pairs and neighbours here")
    args = parser.parse_args(argv)

    files = find_jpegs(args.folder) if args.folder.is_dir() else []
    if not files:
        print(f"error: no JPEG files under {args.folder}", file=sys.stderr)
        return 2
    if args.k < 1:
        print("error: --k must be at least 1", file=sys.stderr)
        return 2
    try:
        embedder = edge_dct.ImageEmbedder.create_from_model_path(args.model, l2_normalize=True)
    except edge_dct.EdgeDctError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with embedder:
        kept, vectors, errors = embed_all(embedder, files, args.workers)
        query = None
        if args.query is not None:
            try:
                query = embedder.embed(args.query).embedding
            except edge_dct.EdgeDctError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2

    pairs = near_duplicates(vectors, args.threshold)
    print(f"near-duplicates (cosine >= {args.threshold}): {len(pairs)}")
    for i, j, s in pairs:
        print(f"  {s:.4f}  {kept[i]}  {kept[j]}")
    report = {"pairs": [[str(kept[i]), str(kept[j]), s] for i, j, s in pairs], "neighbours": {}}
    if query is not None:  # a query inside the folder is not its own neighbour
        own = next((i for i, p in enumerate(kept) if p.resolve() == args.query.resolve()), None)
        targets = [(args.query, query, own)]
    else:
        targets = [(p, vectors[i], i) for i, p in enumerate(kept)]
    print(f"nearest neighbours (k={args.k}):")
    for path, vec, own in targets:
        near = neighbours(vectors, vec, args.k, exclude=own)
        report["neighbours"][str(path)] = [[str(kept[i]), s] for i, s in near]
        print(f"  {path}: " + ", ".join(f"{kept[i].name} ({s:.3f})" for i, s in near))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(f"{len(kept)} embedded, {len(errors)} failed", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
