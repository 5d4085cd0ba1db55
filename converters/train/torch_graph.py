"""Run a Keras zoo model in PyTorch, weights shared both ways (fast CPU training for issue #5).

TensorFlow's CPU kernels for depthwise convolutions and their gradients are slow: on the 2-core
workstation a distillation step of an EfficientNet-Lite0-DCT student runs ~15 images/s in
TensorFlow and ~4-8x faster in PyTorch with channels-last tensors. The zoo stays defined in
Keras 3 (one definition, exported by :mod:`converters.ship.export`); :class:`TorchGraph` interprets
a functional Keras model layer by layer in PyTorch, and :func:`to_torch` / :func:`to_keras`
copy weights (including BatchNormalization statistics) between the two by layer name.
:func:`graph_plan` describes the model as plain data, from which a :class:`TorchGraph` is
rebuilt without Keras (``TorchGraph(plan)``; :mod:`converters.train.qat` trains from such a package
on machines that have only PyTorch).

Supported layers are the ones the zoo uses: ``InputLayer``, ``Conv2D`` and ``DepthwiseConv2D``
(TensorFlow ``SAME``/``VALID`` padding), ``Conv2DTranspose`` (``VALID``, no output padding),
``MaxPooling2D`` (``SAME``/``VALID``), ``BatchNormalization``, ``ReLU``, ``Add``,
``Concatenate``, ``UpSampling2D`` (nearest), the zoo's ``DepthToSpace`` and ``ChannelSlice``,
``Identity``, ``GlobalAveragePooling2D``, ``Dropout`` and ``Dense``. Tensors are NCHW in PyTorch (stored
channels-last); Keras NHWC inputs are transposed by the caller (:func:`nchw`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (before, after) of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Conv(nn.Module):
    """Keras ``Conv2D`` / ``DepthwiseConv2D`` (depth multiplier 1) with TF padding."""

    def __init__(self, d: dict[str, Any]):
        super().__init__()
        kh, kw = d["kernel"]
        self.stride = d["stride"]
        # Stride 1 SAME padding of an odd kernel is symmetric: the convolution pads itself.
        # Otherwise (stride 2, or an even kernel) TF pads more after than before: F.pad in forward.
        self.explicit_pad = d["padding"] == "same" and (self.stride > 1 or kh % 2 == 0 or kw % 2 == 0)
        own = (kh // 2, kw // 2) if d["padding"] == "same" and not self.explicit_pad else 0
        depthwise = d["kind"] == "DepthwiseConv2D"
        self.conv = nn.Conv2d(d["cin"], d["cin"] if depthwise else d["cout"], (kh, kw), self.stride, own,
                              groups=d["cin"] if depthwise else 1, bias=d["bias"])

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """The convolution, with the module's own kernel and bias or with ``weight``/``bias``
        (same shapes; :mod:`converters.train.qat` passes folded, fake-quantized ones)."""
        if self.explicit_pad:
            kh, kw = self.conv.kernel_size
            top, bottom = _same_pad(x.shape[2], kh, self.stride)
            left, right = _same_pad(x.shape[3], kw, self.stride)
            x = F.pad(x, (left, right, top, bottom)).contiguous(memory_format=torch.channels_last)
        if weight is None:
            return self.conv(x)
        c = self.conv
        return F.conv2d(x, weight, bias, c.stride, c.padding, c.dilation, c.groups)


class _MaxPool(nn.Module):
    """Keras ``MaxPooling2D``; TensorFlow ``SAME`` padding pads with -inf (padding never wins)."""

    def __init__(self, d: dict[str, Any]):
        super().__init__()
        self.pool, self.stride, self.same = tuple(d["pool"]), tuple(d["stride"]), d["padding"] == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            top, bottom = _same_pad(x.shape[2], self.pool[0], self.stride[0])
            left, right = _same_pad(x.shape[3], self.pool[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.pool, self.stride)


def _transposed(d: dict[str, Any]) -> nn.Module:
    """Keras ``Conv2DTranspose`` with ``VALID`` padding and no output padding (the zoo's
    deconvolution: output size = (input - 1) * stride + kernel, as PyTorch's)."""
    if d["padding"] != "valid" or d.get("output_padding") is not None:
        raise NotImplementedError(f"TorchGraph: Conv2DTranspose {d['name']} needs padding 'valid' "
                                  "and no output_padding")
    return nn.ConvTranspose2d(d["cin"], d["cout"], tuple(d["kernel"]), tuple(d["stride"]), bias=d["bias"])


class _Lambda(nn.Module):
    """A parameter-free layer."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


def describe(layer: Any) -> dict[str, Any]:
    """Plain-data description of one Keras layer: what :func:`_module` needs to rebuild it."""
    kind = type(layer).__name__
    d: dict[str, Any] = {"name": layer.name, "kind": kind, "sources": _sources(layer)}
    cin = int(layer.input.shape[-1]) if not isinstance(layer.input, (list, tuple)) else None
    if kind in ("Conv2D", "DepthwiseConv2D"):
        d.update(kernel=list(layer.kernel_size), stride=int(layer.strides[0]), padding=layer.padding, cin=cin,
                 cout=int(getattr(layer, "filters", None) or cin), bias=bool(layer.use_bias))
    elif kind == "Conv2DTranspose":
        d.update(kernel=list(layer.kernel_size), stride=list(layer.strides), padding=layer.padding, cin=cin,
                 cout=int(layer.filters), bias=bool(layer.use_bias),
                 output_padding=None if layer.output_padding is None else list(layer.output_padding))
    elif kind == "MaxPooling2D":
        d.update(pool=list(layer.pool_size), stride=list(layer.strides), padding=layer.padding)
    elif kind == "ChannelSlice":
        d.update(start=int(layer.start), stop=int(layer.stop))
    elif kind == "BatchNormalization":
        d.update(cin=cin, eps=float(layer.epsilon), momentum=float(layer.momentum))
    elif kind == "ReLU":
        d.update(max_value=None if layer.max_value is None else float(layer.max_value))
    elif kind == "UpSampling2D":
        d.update(size=list(layer.size))
    elif kind == "DepthToSpace":
        d.update(block=int(layer.block))
    elif kind == "Dropout":
        d.update(rate=float(layer.rate))
    elif kind == "Dense":
        d.update(cin=cin, units=int(layer.units))
    return d


def _module(d: dict[str, Any]) -> nn.Module:
    """The PyTorch module standing for one described Keras layer."""
    kind = d["kind"]
    if kind in ("Conv2D", "DepthwiseConv2D"):
        return _Conv(d)
    if kind == "Conv2DTranspose":
        return _transposed(d)
    if kind == "MaxPooling2D":
        return _MaxPool(d)
    if kind == "ChannelSlice":
        start, stop = d["start"], d["stop"]
        return _Lambda(lambda x: x[:, start:stop])
    if kind == "BatchNormalization":
        return nn.BatchNorm2d(d["cin"], eps=d["eps"], momentum=1.0 - d["momentum"])
    if kind == "ReLU":
        return _Lambda((lambda x: F.relu6(x)) if d["max_value"] == 6.0 else (lambda x: F.relu(x)))
    if kind == "Add":
        return _Lambda(lambda *xs: sum(xs[1:], xs[0]))
    if kind == "Concatenate":
        return _Lambda(lambda *xs: torch.cat(xs, 1))
    if kind == "UpSampling2D":
        factor = tuple(d["size"])
        return _Lambda(lambda x: F.interpolate(x, scale_factor=factor, mode="nearest"))
    if kind == "DepthToSpace":
        return _Lambda(functools.partial(depth_to_space, block=d["block"]))
    if kind == "Identity":
        return _Lambda(lambda x: x)
    if kind == "GlobalAveragePooling2D":
        return _Lambda(lambda x: x.mean((2, 3)))
    if kind == "Dropout":
        return nn.Dropout(d["rate"])
    if kind == "Dense":
        return nn.Linear(d["cin"], d["units"])
    raise NotImplementedError(f"TorchGraph: no PyTorch form for Keras layer {d['name']} ({kind})")


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """TensorFlow's ``depth_to_space`` on NCHW: channel ``(i * block + j) * C + c`` goes to
    ``[c, block * h + i, block * w + j]`` (``F.pixel_shuffle`` orders channels the other way)."""
    n, cin, h, w = x.shape
    c = cin // (block * block)
    x = x.reshape(n, block, block, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c, h * block, w * block).contiguous(memory_format=torch.channels_last)


def _sources(layer: Any) -> list[str]:
    """Names of the layers whose outputs feed ``layer``."""
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [t._keras_history.operation.name for t in inputs]


def graph_plan(model: Any, outputs: list[str] | None = None) -> dict[str, Any]:
    """Plain-data plan of a functional Keras model (JSON-ready; rebuilds a :class:`TorchGraph`
    without Keras, e.g. on a training machine that has only PyTorch).

    Returns:
        ``{"inputs": [names], "outputs": [names], "layers": [describe(layer), ...]}`` holding
        the layers on a path to ``outputs`` (default the model's output), in model order.
    """
    outputs = outputs or [model.output._keras_history.operation.name]
    by_name = {layer.name: layer for layer in model.layers}
    needed, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        if type(by_name[name]).__name__ != "InputLayer":
            todo.extend(_sources(by_name[name]))
    return {"inputs": [t._keras_history.operation.name for t in model.inputs], "outputs": outputs,
            "layers": [describe(layer) for layer in model.layers
                       if type(layer).__name__ != "InputLayer" and layer.name in needed]}


class TorchGraph(nn.Module):
    """A functional Keras model executed in PyTorch.

    Args:
        model: a functional ``keras.Model`` of supported layers, or its :func:`graph_plan`.
        outputs: layer names whose outputs :meth:`forward` returns, default the model's output
            (ignored for a plan, which names its outputs).

    Call with ``{input name: NCHW float32 tensor}``; returns one tensor per name in ``outputs``
    (NCHW maps, ``[b, units]`` for dense layers).
    """

    def __init__(self, model: Any, outputs: list[str] | None = None):
        super().__init__()
        self.plan = model if isinstance(model, dict) else graph_plan(model, outputs)
        self.inputs, self.outputs = list(self.plan["inputs"]), list(self.plan["outputs"])
        self.steps: list[tuple[str, list[str]]] = []
        self.layers = nn.ModuleDict()
        for d in self.plan["layers"]:
            self.layers[d["name"]] = _module(d)
            self.steps.append((d["name"], list(d["sources"])))

    def forward(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        values = dict(inputs)
        for name, sources in self.steps:
            values[name] = self.layers[name](*(values[s] for s in sources))
        return [values[name] for name in self.outputs]


def _torch_arrays(layer: Any) -> list[np.ndarray]:
    """A Keras layer's weights in the PyTorch module's parameter + buffer order."""
    kind = type(layer).__name__
    w = layer.get_weights()
    if kind == "Conv2D":
        return [w[0].transpose(3, 2, 0, 1)] + w[1:]
    if kind == "Conv2DTranspose":  # Keras (kh, kw, out, in) -> PyTorch (in, out, kh, kw)
        return [w[0].transpose(3, 2, 0, 1)] + w[1:]
    if kind == "DepthwiseConv2D":
        return [w[0].transpose(2, 3, 0, 1)] + w[1:]
    if kind == "Dense":
        return [w[0].T, w[1]]
    return w  # BatchNormalization: gamma, beta, moving mean, moving variance


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    """A module's parameters then running statistics, in the order of :func:`_torch_arrays`."""
    if isinstance(module, nn.BatchNorm2d):
        return [module.weight, module.bias, module.running_mean, module.running_var]
    if isinstance(module, _Conv):
        module = module.conv
    return [t for t in (getattr(module, "weight", None), getattr(module, "bias", None)) if t is not None]


def to_torch(model: Any, graph: TorchGraph) -> None:
    """Copies every weight of ``model`` into the matching modules of ``graph``."""
    with torch.no_grad():
        for name, module in graph.layers.items():
            arrays, tensors = _torch_arrays(model.get_layer(name)), _tensors(module)
            if [tuple(a.shape) for a in arrays] != [tuple(t.shape) for t in tensors]:
                raise ValueError(f"{name}: Keras shapes {[a.shape for a in arrays]} != "
                                 f"PyTorch {[tuple(t.shape) for t in tensors]}")
            for t, a in zip(tensors, arrays):
                t.copy_(torch.from_numpy(np.ascontiguousarray(a)))


def to_keras(graph: TorchGraph, model: Any) -> None:
    """Copies the weights of ``graph`` back into ``model`` (inverse of :func:`to_torch`)."""
    for name, module in graph.layers.items():
        layer = model.get_layer(name)
        tensors = [t.detach().cpu().numpy() for t in _tensors(module)]
        kind = type(layer).__name__
        if kind in ("Conv2D", "Conv2DTranspose"):  # both transposes are their own inverse pair
            tensors[0] = tensors[0].transpose(2, 3, 1, 0)
        elif kind == "DepthwiseConv2D":
            tensors[0] = tensors[0].transpose(2, 3, 0, 1)
        elif kind == "Dense":
            tensors[0] = tensors[0].T
        if tensors:
            layer.set_weights([np.ascontiguousarray(t) for t in tensors])


def nchw(array: np.ndarray) -> torch.Tensor:
    """NHWC numpy batch -> NCHW float32 tensor stored channels-last (no copy of the data)."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(0, 3, 1, 2)
    return t.contiguous(memory_format=torch.channels_last)
