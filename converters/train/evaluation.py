"""How close a DCT model is to the teacher: agreement on held-back photos, bundle fidelity.

The teacher sees each photo's serving crop as pixels (:func:`converters.train.crops.serving_view`),
the model the same crop through ``edge_dct.prepare``. Agreements count top-1 matches with the
teacher, the teacher's top-1 within the model's top-5 and, where a photo's folder is an
ImageNet synset (Imagenette), top-1 against the label.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edge_dct.prepare import prepare
from edge_dct.spec import InputSpec

from ..ship.intervals import wilson_interval
from ..zoo.imagenet import imagenet_synsets
from .crops import serving_view
from .teacher import Teacher


class EvalSet(NamedTuple):
    """Held-back photos with the teacher's answers, fixed for the whole run.

    Attributes:
        inputs: model inputs ``{name: [n, ...]}`` float32 (serving crop, ``edge_dct.prepare``).
        teacher_logits: ``[n, classes]`` float32 of the teacher on the same crops.
        labels: ``[n]`` ImageNet class index of each photo's synset folder, -1 when unknown.
    """

    inputs: dict[str, np.ndarray]
    teacher_logits: np.ndarray
    labels: np.ndarray


def synset_labels(photos: list[Path]) -> np.ndarray:
    """ImageNet index of each photo's folder (Imagenette folders are synsets), -1 if unknown."""
    try:
        index = {s: i for i, s in enumerate(imagenet_synsets())}
    except FileNotFoundError:
        return np.full(len(photos), -1)
    return np.array([index.get(p.parent.name, -1) for p in photos])


def make_eval_set(photos: list[Path], spec: InputSpec, teacher: Teacher) -> EvalSet:
    """Prepares the held-back photos once (serving crop) and runs the LiteRT teacher on them."""
    inputs, logits = [], []
    for p in photos:
        data = p.read_bytes()
        inputs.append(prepare(data, spec))
        logits.append(teacher(serving_view(data, spec))[1])
    return EvalSet({n: np.concatenate([t[n] for t in inputs]) for n in inputs[0]},
                   np.stack(logits), synset_labels(photos))


def agreement(top5: np.ndarray, teacher_logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 agreement with the teacher, teacher top-1 in the model's top-5, labelled top-1.

    Args:
        top5: ``[n, 5]`` int, the model's five best classes, best first.
        teacher_logits: ``[n, classes]`` float.
        labels: ``[n]`` int, ImageNet class or -1.
    """
    teacher_top1 = teacher_logits.argmax(1)
    out = {"photos": len(teacher_top1),
           "top1_agreement": float((top5[:, 0] == teacher_top1).mean()),
           "teacher_top1_in_student_top5": float((top5 == teacher_top1[:, None]).any(1).mean())}
    known = labels >= 0
    if known.any():
        out["labelled"] = int(known.sum())
        out["top1_student"] = float((top5[known, 0] == labels[known]).mean())
        out["top1_teacher"] = float((teacher_top1[known] == labels[known]).mean())
    return out


def bundle_fidelity(bundle: Path, fp32_bundle: Path, photos: list[Path], spec: InputSpec,
                    teacher: Teacher) -> dict[str, Any]:
    """The int8 bundle (and its fp32 twin) through ``edge_dct.Classifier`` against the teacher.

    Args:
        bundle: the int8 ``.tflite`` bundle.
        fp32_bundle: the same model in fp32.
        photos: held-back JPEGs.
        spec: the bundle's InputSpec (its grid sets the teacher's crop).
        teacher: the LiteRT teacher.

    Returns:
        :func:`agreement` of the int8 bundle, the same under ``"fp32"`` for the twin, and the
        int8-vs-fp32 top-1 agreement with its 95% Wilson interval.

    Raises:
        ValueError: ``photos`` is empty.
    """
    if not photos:
        raise ValueError(f"bundle_fidelity: no photos to measure {bundle} on")
    from edge_dct import Classifier

    classifiers = [Classifier.create_from_model_path(b, max_results=5, num_threads=2)
                   for b in (bundle, fp32_bundle)]
    top5: list[list[list[int]]] = [[], []]
    teacher_logits = []
    for k, p in enumerate(photos):
        data = p.read_bytes()
        for c, out in zip(classifiers, top5):
            out.append([cat.index for cat in c.classify(data).categories])
        teacher_logits.append(teacher(serving_view(data, spec))[1])
        if (k + 1) % 500 == 0:
            print(f"  fidelity: {k + 1}/{len(photos)} photos", file=sys.stderr, flush=True)
    for c in classifiers:
        c.close()
    int8, fp32 = np.array(top5[0]), np.array(top5[1])
    logits, labels = np.stack(teacher_logits), synset_labels(photos)
    out: dict[str, Any] = agreement(int8, logits, labels)
    out["fp32"] = agreement(fp32, logits, labels)
    hits = int((int8[:, 0] == fp32[:, 0]).sum())
    out["int8_vs_fp32_top1_agreement"] = hits / len(photos)
    out["int8_vs_fp32_top1_ci95"] = list(wilson_interval(hits, len(photos)))
    return out
