"""Python side of the Android bridge's host test (make android-host-test).

    parity.py reference MODEL PHOTO_DIR OUT_JSON   # edge_dct.Classifier, 1 thread: top-5 + latency
    parity.py compare REFERENCE_JSON JAVA_JSON     # same top-5 indices, scores within 1e-5

Both runs see the same bundle; the JSON maps each photo path to its top-5 indices and scores.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

TOLERANCE = 1e-5


def reference(model: str, photo_dir: str, out: str) -> None:
    from edge_dct.classifier import BaseOptions, Classifier, ClassifierOptions

    photos = sorted(p for p in Path(photo_dir).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    result = {}
    latencies = []
    options = ClassifierOptions(base_options=BaseOptions(model=model, num_threads=1), max_results=5)
    with Classifier(options) as clf:
        for _ in range(3):
            clf.classify(str(photos[0]))
        for p in photos:
            data = p.read_bytes()
            r = clf.classify(data)
            result[str(p)] = {"indices": [c.index for c in r.categories],
                              "scores": [c.score for c in r.categories]}
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                clf.classify(data)
                runs.append((time.perf_counter() - t0) * 1e3)
            latencies.append(statistics.median(runs))
    doc = {"photos": result, "latency_ms": {"median": statistics.median(latencies),
                                            "photos": len(latencies)}}
    Path(out).write_text(json.dumps(doc, indent=1))
    print(f"python reference: {len(photos)} photos, median {doc['latency_ms']['median']:.2f} "
          "ms/image (1 thread)")


def compare(ref_path: str, java_path: str) -> int:
    ref = json.loads(Path(ref_path).read_text())
    java = json.loads(Path(java_path).read_text())
    failures = []
    max_diff = 0.0
    if set(ref["photos"]) != set(java["photos"]):
        failures.append(f"photo sets differ: {sorted(set(ref['photos']) ^ set(java['photos']))}")
    for path, r in ref["photos"].items():
        j = java["photos"].get(path)
        if j is None:
            continue
        if r["indices"] != j["indices"]:
            failures.append(f"{path}: top-5 {j['indices']} (Java) != {r['indices']} (Python)")
            continue
        diff = max(abs(a - b) for a, b in zip(r["scores"], j["scores"]))
        max_diff = max(max_diff, diff)
        if diff > TOLERANCE:
            failures.append(f"{path}: scores differ by {diff:.3g}")
    n = len(ref["photos"])
    print(f"parity: {n - len(failures)}/{n} photos with identical top-5 indices and scores, "
          f"max |score diff| {max_diff:.3g} (tolerance {TOLERANCE})")
    py, jv = ref["latency_ms"]["median"], java["latency_ms"]["median"]
    print(f"latency (median over {n} photos, 1 thread): Java/JNI {jv:.2f} ms, "
          f"Python Classifier {py:.2f} ms")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "reference":
        reference(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(*sys.argv[2:]))
    else:
        sys.exit(__doc__)
