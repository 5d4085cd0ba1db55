#!/usr/bin/env python3
"""Classify one JPEG photo straight from its DCT coefficients.

Usage:
    python examples/classify_photo.py photo.jpg
    python examples/classify_photo.py photo.jpg --model my_model.tflite --top-k 3
"""

from __future__ import annotations

import argparse
import sys

import edge_dct


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, classifies the photo and prints its top categories and latency.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 on success, 1 if the photo or the model could not be read.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", help="a JPEG file")
    parser.add_argument("--model", help="an edge_dct .tflite bundle (default: the embedded model)")
    parser.add_argument("--top-k", type=int, default=5, help="categories to print (default 5)")
    args = parser.parse_args(argv)

    try:
        options = edge_dct.ClassifierOptions(base_options=edge_dct.BaseOptions(model=args.model),
                                             max_results=args.top_k)
        with edge_dct.Classifier(options) as classifier:
            result = classifier.classify(args.photo)
    except edge_dct.EdgeDctError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    for rank, category in enumerate(result.categories, 1):
        print(f"{rank}. {category.label:<30} {category.score:.3f}")
    top = result.top
    print(f"top: {top.label} ({top.score:.3f})" if top else "top: (nothing)")
    t = result.timing
    print(f"latency: {t.total_ms:.1f} ms (prepare {t.prepare_ms:.1f} ms + "
          f"inference {t.inference_ms:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
