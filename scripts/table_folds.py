#!/usr/bin/env python3
"""Writes the photo lists that tune and validate the default model's quantization tables.

    python scripts/table_folds.py            # after scripts/get_data.sh and benchmarks/get_photos.sh

Into ``$EDGE_DCT_WORK/tables`` (default ``~/edge_dct_work/tables``), one path per line:

- ``foldA.txt`` / ``foldB.txt``: two disjoint sets of 400 cat/dog photos (~500x375, high-quality
  originals; ``catsdogs/dataset/training_set``, seeded shuffle) — tune on one, validate on the other;
- ``largeA.txt`` / ``largeB.txt``: the 2-16 MP benchmark photos (``photos/large``), split in two;
- ``imagenette_val.txt`` + ``imagenette_val.csv`` (``path,label``, ImageNet index from the folder's
  synset): 600 Imagenette ``val/`` photos minus the exclude list, for label accuracy.
"""

from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # converters/, run from anywhere

import edge_dct  # noqa: E402

WORK = Path(os.environ.get("EDGE_DCT_WORK", Path.home() / "edge_dct_work"))
EXCLUDE = Path(__file__).resolve().parents[2] / "shared" / "data" / "exclude-from-training.txt"


def shuffled(paths: list[Path], seed: int = 0) -> list[Path]:
    out = sorted(paths)
    random.Random(seed).shuffle(out)
    return out


def main() -> int:
    data, out = WORK / "data", WORK / "tables"
    out.mkdir(parents=True, exist_ok=True)
    cats = shuffled(list((data / "catsdogs" / "dataset" / "training_set").rglob("*.jpg")))
    large = []
    for p in sorted((WORK / "photos" / "large").glob("*.jp*")):
        try:
            edge_dct.read_header(p)
            large.append(p)
        except edge_dct.EdgeDctError:
            pass
    large = shuffled(large)
    if len(cats) < 800 or not large:
        print("run scripts/get_data.sh and benchmarks/get_photos.sh first", file=sys.stderr)
        return 1
    excluded = set()
    if EXCLUDE.is_file():
        excluded = {Path(line.strip()).name for line in EXCLUDE.read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
    from converters.zoo.imagenet import imagenet_synsets  # the model's label order

    index = {s: i for i, s in enumerate(imagenet_synsets())}
    val = [p for p in shuffled(list((data / "imagenette" / "val").rglob("*.JPEG")))[:600]
           if p.name not in excluded]
    lists = {"foldA": cats[:400], "foldB": cats[400:800], "largeA": large[0::2], "largeB": large[1::2],
             "imagenette_val": val}
    for name, paths in lists.items():
        (out / f"{name}.txt").write_text("".join(f"{p}\n" for p in paths))
        print(f"{out / name}.txt: {len(paths)} photos")
    with open(out / "imagenette_val.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows([str(p), index[p.parent.name]] for p in val)
    return 0


if __name__ == "__main__":
    sys.exit(main())
