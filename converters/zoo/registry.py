"""Model registry: ``@register_model`` builder functions and one :class:`ModelConfig` per model.

Modelled on timm's registry. Each builder is a function ``name(**overrides) -> keras.Model``;
its :class:`ModelConfig` carries everything needed to use the model correctly (input contract,
labels, licence, weights).

Example:
    >>> import converters
    >>> converters.list_models()[:2]
    ['deconvolution_rfa', 'downsampling']
    >>> model = converters.build("upsampling", grid=(8, 8), num_classes=10)
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Any, Callable

_BUILDERS: dict[str, Callable[..., Any]] = {}
_CONFIGS: dict[str, "ModelConfig"] = {}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What a registered model needs to be used correctly.

    Attributes:
        name: registry name (the builder function's name).
        input_spec: InputSpec v1 dict at the default size (see :mod:`converters.zoo.input_spec`);
            the exporter updates ``grid`` from the built model's input shapes.
        input_names: model input names in order, e.g. ``("y", "cbcr")`` or ``("image",)``.
        num_classes: default number of outputs (logits, no softmax).
        labels: where the class names come from, e.g. ``"imagenet-1k"``.
        weights: source of the default weights, or ``None`` for random initialisation.
        licence: licence of the weights (or of the architecture when untrained).
        description: one line on what the model is.
        reference: the paper or figure the architecture follows.
        speed_group: the speed table (``python -m converters bench --group``) listing the
            model, e.g. ``"resnet"`` or ``"lite0"``; ``None`` keeps it out of the tables.
        baseline: the row of its speed group that the others' speed-ups are relative to.
        paper_speedup: the speed-up the paper reports for this architecture, as printed
            (Gueguen et al. 2018, Table 1: FPS ratio on a Pascal GPU at batch 1024).
    """

    name: str
    input_spec: dict[str, Any]
    input_names: tuple[str, ...]
    num_classes: int = 1000
    labels: str = "imagenet-1k"
    weights: str | None = None
    licence: str = "Apache-2.0 (architecture code of this repository; random weights)"
    description: str = ""
    reference: str = ""
    speed_group: str | None = None
    baseline: bool = False
    paper_speedup: str = ""


def register_model(**config: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder under its function name.

    Args:
        **config: :class:`ModelConfig` fields other than ``name``.

    Returns:
        The decorator; it returns the builder unchanged.
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        _CONFIGS[name] = ModelConfig(name=name, **config)
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_BUILDERS)


def get_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a registered model (a deep copy; safe to modify).

    Raises:
        KeyError: unknown name.
    """
    if name not in _CONFIGS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return copy.deepcopy(_CONFIGS[name])


def speed_groups() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The speed tables: group -> (baseline model, every model of the group, baseline first).

    Raises:
        ValueError: a group without exactly one baseline.
    """
    members: dict[str, list[ModelConfig]] = {}
    for config in _CONFIGS.values():
        if config.speed_group:
            members.setdefault(config.speed_group, []).append(config)
    groups = {}
    for group, configs in members.items():
        baselines = [c.name for c in configs if c.baseline]
        if len(baselines) != 1:
            raise ValueError(f"speed group {group!r} needs exactly one baseline, has {baselines}")
        groups[group] = (baselines[0], tuple(c.name for c in sorted(configs, key=lambda c: not c.baseline)))
    return groups


def accepted_overrides(name: str) -> tuple[str, ...]:
    """Keyword arguments the builder of ``name`` accepts (e.g. ``("grid", "num_classes", ...)``).

    Raises:
        KeyError: unknown name.
    """
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return tuple(inspect.signature(_BUILDERS[name]).parameters)


def build(name: str, **overrides: Any):
    """Build a registered model.

    Args:
        name: registry name.
        **overrides: builder keyword arguments, e.g. ``grid=(8, 8)``, ``num_classes=10``,
            ``width=0.25`` (ResNets), ``adapter_width=512`` or ``weights=None``
            (EfficientNet-Lite0 family). See each builder's docstring.

    Returns:
        An uncompiled ``keras.Model`` named ``name`` whose output is float32 logits
        ``[batch, num_classes]``.

    Raises:
        KeyError: unknown name.
    """
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _BUILDERS[name](**overrides)
