"""edge_dct workstation toolkit: the model zoo (Keras 3), training, and export to ``.tflite`` bundles.

Four rooms, named after their job:

* :mod:`converters.zoo` -- what the models *are*: registry, definitions, input specs, weights, labels;
* :mod:`converters.train` -- how they *learn*: teacher, targets, distillation, QAT, recipes;
* :mod:`converters.ship` -- how they *ship*: conversion, calibration, metadata, reports, speed table;
* :mod:`converters.data` -- where the photos are: work folder, photo listings, splits.

This module is the public entry point (``converters.build``, ``converters.export``, ...). Its
names load on first use, so ``import converters`` alone is cheap and the PyTorch-only steps
(``converters.train.qat`` training on a GPU machine) never import TensorFlow. The zoo and the
export import TensorFlow/Keras; the on-device SDK (``edge_dct``) never does.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ExportReport": "converters.ship.export",
    "export": "converters.ship.export",
    "read_metadata": "converters.ship.metadata",
    "ModelConfig": "converters.zoo.registry",
    "build": "converters.zoo",
    "get_config": "converters.zoo",
    "list_models": "converters.zoo",
    "register_model": "converters.zoo.registry",
    "Profile": "converters.zoo.profile",
    "profile": "converters.zoo.profile",
    "imagenet_labels": "converters.zoo.imagenet",
}
"""Public name -> the module defining it (the zoo package registers every model)."""

_ROOMS = ("data", "ship", "train", "zoo")
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _ROOMS:
        return importlib.import_module(f"converters.{name}")
    if name not in _PUBLIC:
        raise AttributeError(f"module 'converters' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC) | set(_ROOMS))
