"""``classify`` inference time of two bundles, interleaved: e.g. the default bundle before and
after its ``embed`` signature was added (issue #16: classifying must cost what it did).

    git show HEAD~1:edge_dct/models/default.tflite > /tmp/before.tflite   # any older bundle
    python benchmarks/bench_classify_models.py /tmp/before.tflite edge_dct/models/default.tflite \\
        ../shared/corpus/photos/clothing --threads 1 2 --passes 5

Prints, per thread count, the median over passes of each pass's median inference time, and
whether both bundles gave identical categories and scores on every photo.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import edge_dct
from edge_dct.paths import expand_paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("photos", nargs="+")
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--passes", type=int, default=5)
    args = p.parse_args(argv)
    photos = list(expand_paths(args.photos))
    for threads in args.threads:
        clfs = {m: edge_dct.Classifier.create_from_model_path(m, num_threads=threads, max_results=-1)
                for m in (args.a, args.b)}
        times = {m: [] for m in clfs}
        for c in clfs.values():
            for ph in photos[:5]:
                c.classify(ph)
        for _ in range(args.passes):
            for m, c in clfs.items():
                times[m].append(statistics.median(c.classify(ph).timing.inference_ms for ph in photos))
        same = all(clfs[args.a].classify(ph).categories == clfs[args.b].classify(ph).categories
                   for ph in photos)
        print(f"{threads} thread(s), {len(photos)} photos, {args.passes} passes: " + ", ".join(
            f"{m} {statistics.median(v):.2f} ms" for m, v in times.items())
            + f"; identical results: {same}")
        for c in clfs.values():
            c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
