"""A TFLite int8 bundle's activation quantization, carried into the ONNX QDQ export (issue #19).

Two int8 conversions of one network that calibrate independently disagree on a few photos in
a hundred even when both are good: their scales differ where the converters make different
choices (LiteRT gives the inputs of a concatenation the concatenation's scale; ONNX Runtime
calibrates each input on its own), and one int8 step is enough to swap two close logits. When
an int8 ``.tflite`` bundle of the same network exists (the embedded default model), the ONNX
export therefore takes that bundle's scales and zero points, so the two bundles quantize the
same tensors onto the same grids and classify alike.

The two graphs come from different converters (Keras -> TFLite, PyTorch twin -> ONNX) and
share no tensor names, so tensors are matched by *value*: both graphs run on the same samples
(LiteRT's reference kernels with every intermediate tensor kept; ONNX Runtime with every float
tensor made an output), and each ONNX activation is paired with the LiteRT int8 tensor of the
same NHWC shape whose dequantized values correlate best with it (at least ``min_corr``, and
clearly better than the runner-up of another scale). Activations of pure data-movement nodes
(reshape, transpose, pad, resize, depth-to-space, ...) that have no LiteRT counterpart inherit
their input's parameters, as in LiteRT. Unmatched activations keep ONNX Runtime's calibration.
Weights are matched by value too and take the bundle's per-channel scales (the converters
differ on channels whose weights are all but zero), and after quantization the int32 biases
take the bundle's values (:func:`carry_biases`). What still differs is arithmetic: how each
runtime rounds when it requantizes an accumulator.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .calibration import Sample, quantize_int8

MOVES = {"Reshape", "Transpose", "Pad", "Resize", "DepthToSpace", "SpaceToDepth", "Flatten", "Squeeze",
         "Unsqueeze", "Slice", "Tile", "Expand", "Identity", "MaxPool"}
"""ONNX ops whose int8 output shares its input's scale and zero point (LiteRT's rule)."""


@dataclasses.dataclass
class RangeMatch:
    """Which ONNX activations took a LiteRT bundle's parameters.

    Attributes:
        overrides: ``TensorQuantOverrides`` for ``quantize_static``: tensor name ->
            ``[{"scale": float32, "zero_point": int8}]``.
        matched: ONNX tensor -> the LiteRT tensor whose parameters it took (by value).
        inherited: ONNX tensor -> the ONNX tensor it inherited them from (data movement).
        unmatched: float ONNX activations left to ONNX Runtime's calibration.
        weights: Conv/Gemm weights that took the bundle's per-channel scales.
        biases: int32 biases that took the bundle's values (:func:`carry_biases`, after
            quantization).
    """

    overrides: dict[str, list[dict[str, Any]]]
    matched: dict[str, str]
    inherited: dict[str, str]
    unmatched: list[str]
    weights: int = 0
    biases: int = 0

    def __str__(self) -> str:
        return (f"{len(self.matched)} activations matched to the LiteRT bundle, {len(self.inherited)} "
                f"inherited through data movement, {len(self.unmatched)} left to calibration, "
                f"{self.weights} weights took its per-channel scales and {self.biases} its int32 biases")


def _litert_tensors(bundle: Path | bytes, samples: Sequence[Sample]) -> list[tuple[str, float, int, np.ndarray]]:
    """Every per-tensor int8 activation of ``bundle`` on ``samples``: ``(name, scale,
    zero_point, dequantized values stacked over the samples, NHWC)``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"model_content": bundle} if isinstance(bundle, bytes) else {"model_path": str(bundle)}
    it = Interpreter(**kwargs, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    details = {t["index"]: t for t in it.get_tensor_details()}
    produced = {i for op in it._get_ops_details() for i in op["outputs"]}
    sigs = it.get_signature_list()  # the classifying signature (the default bundle also has ``embed``)
    key = next((k for k, v in sigs.items() if "logits" in v["outputs"]), next(iter(sigs)))
    inputs = it.get_signature_runner(key).get_input_details()  # input name -> details
    have = {n: tuple(int(v) for v in d["shape"][1:]) for n, d in inputs.items()}
    want = {n: tuple(np.shape(v)[1:]) for n, v in samples[0].items()} if samples else have
    if have != want or any(d["dtype"] != np.int8 for d in inputs.values()):
        raise ValueError(f"the reference bundle is not an int8 bundle of this network: its inputs are "
                         f"{ {n: (s, np.dtype(inputs[n]['dtype']).name) for n, s in have.items()} }, "
                         f"the model's {want} (float32, quantized to int8)")
    keep = [t for i, t in details.items()
            if (i in produced or i in {d["index"] for d in inputs.values()}) and t["dtype"] == np.int8
            and len(t["quantization_parameters"]["scales"]) == 1]
    values: dict[int, list[np.ndarray]] = {t["index"]: [] for t in keep}
    for s in samples:
        for name, d in inputs.items():
            scale, zp = d["quantization"]
            it.set_tensor(d["index"], quantize_int8(s[name], scale, zp))
        it.invoke()
        for t in keep:
            scale, zp = t["quantization"]
            values[t["index"]].append((it.get_tensor(t["index"]).astype(np.float32) - zp) * scale)
    return [(t["name"], float(t["quantization"][0]), int(t["quantization"][1]),
             np.concatenate(values[t["index"]])) for t in keep]


_LAYOUTS = {"CONV_2D": (0, 3, 1, 2), "DEPTHWISE_CONV_2D": (3, 0, 1, 2), "FULLY_CONNECTED": (0, 1)}
"""LiteRT weight layout -> ONNX's (OHWI -> OIHW, 1HWC -> C1HW, (out, in) stays): output channels first."""


@dataclasses.dataclass
class _LiteWeight:
    """One LiteRT convolution's or dense layer's int8 weights, in ONNX layout, and its bias."""

    q: np.ndarray  # int8, output channels first
    scales: np.ndarray  # float32 (out,)
    bias: np.ndarray | None  # int32 (out,), scale ``bias_scales``
    bias_scales: np.ndarray | None

    @property
    def values(self) -> np.ndarray:
        return self.q.astype(np.float32) * self.scales.reshape((-1,) + (1,) * (self.q.ndim - 1))


def _litert_weights(bundle: Path | bytes) -> list[_LiteWeight]:
    """The per-channel int8 weights (and int32 biases) of ``bundle``'s convolutions and dense layers."""
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {"model_content": bundle} if isinstance(bundle, bytes) else {"model_path": str(bundle)}
    it = Interpreter(**kwargs)
    it.allocate_tensors()
    details = {t["index"]: t for t in it.get_tensor_details()}
    out = []
    for op in it._get_ops_details():
        if op["op_name"] not in _LAYOUTS or len(op["inputs"]) < 2:
            continue
        t = details[op["inputs"][1]]
        q = t["quantization_parameters"]
        if t["dtype"] != np.int8 or not len(q["scales"]):
            continue
        w = it.get_tensor(t["index"]).transpose(_LAYOUTS[op["op_name"]])
        scales = np.broadcast_to(q["scales"], (w.shape[0],)).astype(np.float32)
        bias = bias_scales = None
        if len(op["inputs"]) > 2 and op["inputs"][2] >= 0 and details[op["inputs"][2]]["dtype"] == np.int32:
            b = details[op["inputs"][2]]
            bias = it.get_tensor(b["index"]).reshape(-1)
            bias_scales = np.broadcast_to(b["quantization_parameters"]["scales"], bias.shape).astype(np.float32)
        out.append(_LiteWeight(w, scales, bias, bias_scales))
    return out


def _weight_overrides(model: Any, bundle: Path | bytes, min_corr: float) -> dict[str, list[dict[str, Any]]]:
    """Per-channel ``TensorQuantOverrides`` giving the ONNX ``model``'s Conv and Gemm weights
    the bundle's scales, each weight matched by value to the bundle's weight of its shape."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    lite = [(v.values, v.scales) for v in _litert_weights(bundle)]
    overrides: dict[str, list[dict[str, Any]]] = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
            continue  # a (in, out) weight: no per-output-channel axis 0 to carry
        w = numpy_helper.to_array(inits[node.input[1]])
        scored = sorted(((_corr(w, v), s) for v, s in lite if v.shape == w.shape), key=lambda c: -c[0])
        if scored and scored[0][0] >= min_corr and (len(scored) < 2 or scored[0][0] - scored[1][0] >= 0.02):
            scales = scored[0][1]
            overrides[node.input[1]] = [{"axis": 0, "scale": np.array(scales[0], np.float32),
                                         "zero_point": np.array(0, np.int8)}] + \
                [{"scale": np.array(c, np.float32), "zero_point": np.array(0, np.int8)} for c in scales[1:]]
    return overrides


def carry_biases(qdq: Any, bundle: Path | bytes, *, rtol: float = 1e-5) -> int:
    """Give the quantized ONNX ``qdq`` model's int32 biases the bundle's values, in place.

    After :func:`match_ranges` both bundles quantize a layer with the same input and weight
    scales, hence the same bias scale; the int32 biases still differ by a few units where the
    two converters fold batch normalisation in different float order. Each Conv/Gemm whose
    int8 weights equal (>= 99.9% of elements) those of one of the bundle's layers, and whose
    bias scales agree within ``rtol``, takes that layer's int32 bias.

    Returns:
        How many biases were replaced.
    """
    from onnx import numpy_helper

    inits = {i.name: i for i in qdq.graph.initializer}
    made = {o: n for n in qdq.graph.node for o in n.output}
    lite = [w for w in _litert_weights(bundle) if w.bias is not None]

    def dequantized(name: str) -> tuple[Any, np.ndarray, np.ndarray] | None:
        dq = made.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            return None
        return inits[dq.input[0]], numpy_helper.to_array(inits[dq.input[0]]), numpy_helper.to_array(inits[dq.input[1]])

    replaced = 0
    for node in qdq.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3:
            continue
        w, b = dequantized(node.input[1]), dequantized(node.input[2])
        if w is None or b is None or w[1].dtype != np.int8 or b[1].dtype != np.int32:
            continue
        same = [v for v in lite if v.q.shape == w[1].shape and np.mean(v.q == w[1]) >= 0.999]
        if len(same) != 1 or same[0].bias.shape != b[1].shape:
            continue
        if not np.allclose(np.broadcast_to(b[2], b[1].shape), same[0].bias_scales, rtol=rtol, atol=0):
            continue
        b[0].CopyFrom(numpy_helper.from_array(same[0].bias.astype(np.int32), b[0].name))
        replaced += 1
    return replaced


def _onnx_tensors(model: Any, samples: Sequence[Sample], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Every float activation of the ONNX ``model`` (a ModelProto) on ``samples``, stacked
    over the samples; 4-D tensors permuted to NHWC."""
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name for i in m.graph.initializer}
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for out in node.output:
            if out and out not in have and out not in inits:
                m.graph.output.append(onnx.ValueInfoProto(name=out))
                have.add(out)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]
    got: dict[str, list[np.ndarray]] = {n: [] for n in outs}
    for s in samples:
        for n, v in zip(outs, sess.run(outs, {k: np.asarray(s[k], np.float32) for k in names})):
            got[n].append(np.asarray(v))
    result = {}
    for n, vs in got.items():
        v = np.concatenate(vs) if vs[0].ndim else np.stack(vs)
        if v.dtype != np.float32:
            continue
        result[n] = v.transpose(0, 2, 3, 1) if v.ndim == 4 else v
    return result


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def match_ranges(model: Any, bundle: Path | bytes, samples: Sequence[Sample], names: Sequence[str],
                 *, min_corr: float = 0.95) -> RangeMatch:
    """``TensorQuantOverrides`` that give the ONNX ``model``'s activations the LiteRT int8
    ``bundle``'s scales and zero points (module docstring).

    Args:
        model: the fp32 ONNX ModelProto that ``quantize_static`` will quantize.
        bundle: the int8 ``.tflite`` bundle of the same network (path or bytes).
        samples: a few samples ``{input name: float32 [1, ...]}`` both graphs run on.
        names: the model's input names (in the samples).
        min_corr: the least correlation of a match.

    Returns:
        :class:`RangeMatch`.
    """
    lite = _litert_tensors(bundle, samples)
    acts = _onnx_tensors(model, samples, names)
    by_shape: dict[tuple[int, ...], list[tuple[str, float, int, np.ndarray]]] = {}
    for t in lite:
        by_shape.setdefault(t[3].shape, []).append(t)
    params: dict[str, tuple[float, int]] = {}
    matched: dict[str, str] = {}
    for name, v in acts.items():
        scored = sorted(((_corr(v, t[3]), t) for t in by_shape.get(v.shape, [])), key=lambda c: -c[0])
        if not scored or scored[0][0] < min_corr:
            continue
        best, t = scored[0]
        rival = next((c for c, u in scored[1:] if (u[1], u[2]) != (t[1], t[2])), -1.0)
        if best - rival < 0.02:  # two different grids fit equally well: leave it to calibration
            continue
        params[name], matched[name] = (t[1], t[2]), t[0]
    inherited: dict[str, str] = {}
    for node in model.graph.node:  # topological order: a chain of moves inherits from its start
        if node.op_type in MOVES and node.input[0] in params:
            for out in node.output[:1]:
                if out not in params:
                    params[out], inherited[out] = params[node.input[0]], node.input[0]
    overrides = {n: [{"scale": np.array(s, np.float32), "zero_point": np.array(z, np.int8)}]
                 for n, (s, z) in params.items()}
    unmatched = [n for n in acts if n not in params and n not in names]
    weights = _weight_overrides(model, bundle, 0.999)
    return RangeMatch({**overrides, **weights}, matched, inherited, unmatched, len(weights))


__all__ = ["MOVES", "RangeMatch", "carry_biases", "match_ranges"]
