"""Editing a bundle's classifier head in the flatbuffer, with only the LiteRT runtime installed.

An edge_dct bundle ends like every Keras image classifier converted to TFLite: the backbone's
pooled features (a ``MEAN`` over the last feature map, ``[1, 1280]`` int8 for
EfficientNet-Lite0) feed one ``FULLY_CONNECTED`` layer whose output is the ``logits``.
This module edits that end of the graph with the flatbuffers object API of the TFLite schema
that ``ai_edge_litert`` ships (``schema_py_generated``, as ``converters.ship.metadata`` and
:mod:`edge_dct.bundle` use it), so no TensorFlow is needed:

* :func:`expose_embedding` adds an ``embed`` signature (outputs ``embedding`` and ``logits``)
  next to ``serving_default``. LiteRT requires a signature to name every output of its
  subgraph, so ``embed`` runs a second subgraph: a copy of the first's operator list with the
  pooled features as an extra output, sharing every weight buffer (the file grows by the
  second tensor table with its quantization parameters: 5.34 -> 5.89 MB for the default
  bundle). ``serving_default`` (signature 0, what the Android bridge and
  :class:`edge_dct.Classifier` run) is untouched: one ``logits`` output, the same operators,
  so ``classify`` costs what it did; LiteRT does prepare both subgraphs when loading (XNNPACK
  packs the weights once per subgraph: ~+5 MB of resident memory for the default bundle).
* :func:`replace_head` swaps the fully connected layer(s) after the features for new ones
  (:class:`DenseLayer`: float weights quantized here to int8 per output channel, int32 bias at
  ``input_scale * weight_scale``, int8 activations at the given ranges) and writes the new
  labels into the ``edge_dct`` metadata. Tensors and buffers no operator uses any more are
  dropped, so the file shrinks with a smaller head.

Only single-subgraph int8 models are edited (what ``python -m converters export --quantize int8``
and ``edge-dct train`` write).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edge_dct.bundle import METADATA_NAME, read_metadata
from edge_dct.errors import InvalidArgumentError, ModelError
from edge_dct.runtime import EMBED_SIGNATURE, EMBEDDING_OUTPUT, LOGITS_OUTPUT

_FILE_IDENTIFIER = b"TFL3"
_INT8_MIN, _INT8_MAX = -128, 127


@dataclass(frozen=True)
class Quantization:
    """Affine int8 parameters of an activation: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int

    @classmethod
    def from_range(cls, low: float, high: float) -> "Quantization":
        """TFLite's asymmetric int8 parameters covering ``[low, high]`` (0 always included).

        Raises:
            InvalidArgumentError: a range that is not finite.
        """
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        if not (np.isfinite(low) and np.isfinite(high)):
            raise InvalidArgumentError(f"activation range [{low}, {high}] is not finite")
        if high - low < 1e-8:
            high = low + 1e-8
        scale = (high - low) / (_INT8_MAX - _INT8_MIN)
        zero_point = int(np.clip(round(_INT8_MIN - low / scale), _INT8_MIN, _INT8_MAX))
        return cls(scale, zero_point)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """int8 of float values (rounded, saturated)."""
        return np.clip(np.round(x / self.scale) + self.zero_point, _INT8_MIN, _INT8_MAX).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """float32 of int8 values."""
        return ((q.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


@dataclass(frozen=True)
class DenseLayer:
    """One float fully connected layer of a new head: ``y = act(x @ weights + bias)``.

    Attributes:
        weights: float (in_features, out_features).
        bias: float (out_features,).
        output: int8 quantization of the layer's output (after the activation).
        relu: ReLU fused into the layer (hidden layers).
    """

    weights: np.ndarray
    bias: np.ndarray
    output: Quantization
    relu: bool = False


@dataclass(frozen=True)
class HeadInfo:
    """Where a bundle's head is.

    Attributes:
        embedding: tensor index of the pooled features (the head's input).
        logits: tensor index of the logits.
        operators: indices, in order, of the fully connected operators between them.
        features: length of the embedding.
        quantization: int8 quantization of the embedding (None: a float model).
    """

    embedding: int
    logits: int
    operators: tuple[int, ...]
    features: int
    quantization: Quantization | None


def _name(raw: bytes | str | None) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else (raw or "")


def _unpack(content: bytes, name: str) -> tuple[Any, int | None]:
    """The model as objects, reduced to its one serving subgraph (an ``embed`` copy removed).

    Returns:
        ``(model, embedding tensor index or None)``: the ``embed`` signature's embedding, when
        the model had one (the same index in subgraph 0, the copy keeps tensor indices).
    """
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    except Exception as e:  # noqa: BLE001 - flatbuffers raises anything on garbage
        raise ModelError(f"not a TFLite flatbuffer ({type(e).__name__}: {e})", name) from e
    if not model.subgraphs or not model.signatureDefs:
        raise ModelError("the model has no subgraph or no signature", name)
    embedding = None
    embed = _signature(model, EMBED_SIGNATURE)
    if embed is not None:
        embedding = _output_of(embed, EMBEDDING_OUTPUT)
        index = int(embed.subgraphIndex)
        model.signatureDefs = [sg for sg in model.signatureDefs if sg is not embed]
        if index != 0 and index == len(model.subgraphs) - 1 and \
                all(int(sg.subgraphIndex) != index for sg in model.signatureDefs):
            model.subgraphs = model.subgraphs[:index]
    if len(model.subgraphs) != 1:
        raise ModelError(f"only single-subgraph models can be edited, this one has "
                         f"{len(model.subgraphs)}", name)
    sg = model.subgraphs[0]
    sig0 = model.signatureDefs[0]
    listed = {int(o.tensorIndex) for o in sig0.outputs or []}
    sg.outputs = np.array([int(t) for t in sg.outputs if int(t) in listed], np.int32)
    return model, embedding


def _pack(model: Any, size_hint: int) -> bytes:
    builder = flatbuffers.Builder(size_hint + 4096)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _builtin(model: Any, op: Any) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def _signature(model: Any, key: str) -> Any | None:
    return next((s for s in model.signatureDefs if _name(s.signatureKey) == key), None)


def _output_of(sig: Any, name: str) -> int | None:
    return next((int(o.tensorIndex) for o in sig.outputs or [] if _name(o.name) == name), None)


def _quant(tensor: Any) -> Quantization:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        raise ValueError("not a per-tensor quantized activation")
    return Quantization(float(q.scale[0]), int(q.zeroPoint[0]))


def _find_head(model: Any, name: str, int8: bool = True, given: int | None = None) -> HeadInfo:
    sg = model.subgraphs[0]
    serving = model.signatureDefs[0]
    logits = _output_of(serving, LOGITS_OUTPUT)
    if logits is None:
        logits = int(serving.outputs[0].tensorIndex) if len(serving.outputs or []) == 1 else None
    if logits is None:
        raise ModelError("the first signature has no 'logits' output", name)
    producer = {int(t): i for i, op in enumerate(sg.operators) for t in op.outputs}
    ops: list[int] = []
    tensor = logits
    while tensor in producer and _builtin(model, sg.operators[producer[tensor]]) == \
            schema.BuiltinOperator.FULLY_CONNECTED:
        ops.insert(0, producer[tensor])
        tensor = int(sg.operators[producer[tensor]].inputs[0])
    if given is not None:
        while ops and int(sg.operators[ops[0]].inputs[0]) != given:
            ops.pop(0)
        tensor = given
    if not ops:
        raise ModelError("the logits are not computed by a FULLY_CONNECTED layer: no head "
                         "to replace", name)
    t = sg.tensors[tensor]
    if len(t.shape) != 2 or int(t.shape[0]) != 1:
        raise ModelError(f"the head's input {_name(t.name)!r} has shape {list(t.shape)}, "
                         "not [1, features]", name)
    quant = None
    if t.type == schema.TensorType.INT8:
        try:
            quant = _quant(t)
        except ValueError as e:
            raise ModelError(f"the head's input {_name(t.name)!r}: {e}", name) from e
    elif int8 or t.type != schema.TensorType.FLOAT32:
        raise ModelError(f"the head's input {_name(t.name)!r} is not int8: only int8 bundles' "
                         "heads can be replaced", name)
    return HeadInfo(tensor, logits, tuple(ops), int(t.shape[1]), quant)


def find_head(content: bytes, name: str = "<bytes>") -> HeadInfo:
    """Where the classifier head of a bundle is (see :class:`HeadInfo`).

    Raises:
        ModelError: not a TFLite model, or one whose logits do not come from fully
            connected layers on a ``[1, features]`` tensor.
    """
    model, given = _unpack(content, name)
    return _find_head(model, name, int8=False, given=given)


def has_embedding(content: bytes) -> bool:
    """Whether a model has the ``embed`` signature with an ``embedding`` output."""
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    except Exception:  # noqa: BLE001
        return False
    sig = _signature(model, EMBED_SIGNATURE)
    return sig is not None and _output_of(sig, EMBEDDING_OUTPUT) is not None


def _tensor_map(name: str, index: int) -> Any:
    m = schema.TensorMapT()
    m.name = name
    m.tensorIndex = int(index)
    return m


def _add_embed_signature(model: Any, head: HeadInfo) -> None:
    """Appends the ``embed`` subgraph (a copy of subgraph 0 that also outputs the embedding,
    weight buffers shared) and its signature. ``model`` has one subgraph."""
    sg = model.subgraphs[0]
    twin = schema.SubGraphT()
    twin.operators = sg.operators  # packed as a second vector: no object is written twice
    twin.inputs = sg.inputs
    twin.outputs = np.array([head.embedding, head.logits], np.int32)
    twin.name = EMBED_SIGNATURE
    twin.tensors = []
    for t in sg.tensors:  # the same tensors, names dropped (the file keeps one copy of them)
        c = schema.TensorT()
        for key, value in vars(t).items():
            setattr(c, key, value)
        c.name = ""
        twin.tensors.append(c)
    model.subgraphs.append(twin)
    sig = schema.SignatureDefT()
    sig.signatureKey = EMBED_SIGNATURE
    sig.subgraphIndex = len(model.subgraphs) - 1
    sig.inputs = [_tensor_map(_name(i.name), i.tensorIndex) for i in model.signatureDefs[0].inputs]
    sig.outputs = [_tensor_map(EMBEDDING_OUTPUT, head.embedding),
                   _tensor_map(LOGITS_OUTPUT, head.logits)]
    model.signatureDefs.append(sig)


def expose_embedding(content: bytes, name: str = "<bytes>") -> bytes:
    """A bundle with its pooled features as a second output and an ``embed`` signature.

    ``serving_default`` is left as it is (one ``logits`` output), the operators are the same,
    so classifying costs what it did; ``embed`` returns ``embedding`` (int8 ``[1, features]``,
    e.g. 1280 for EfficientNet-Lite0) and ``logits`` from one run. Idempotent.

    Args:
        content: a ``.tflite`` model (int8 or float; edge_dct bundle or not).
        name: the model's name for error messages.

    Returns:
        The edited flatbuffer.

    Raises:
        ModelError: not an editable model (see :func:`find_head`).
    """
    model, given = _unpack(content, name)
    _add_embed_signature(model, _find_head(model, name, int8=False, given=given))
    return _pack(model, len(content))


def _quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 (out, in) weights, float32 (out,) scales): symmetric, per output channel."""
    wt = np.ascontiguousarray(w.T, np.float64)  # TFLite FC weights are [out, in]
    scale = np.abs(wt).max(axis=1) / _INT8_MAX
    scale = np.where(scale > 0, scale, 1e-12)  # an all-zero row: any scale
    q = np.clip(np.round(wt / scale[:, None]), -_INT8_MAX, _INT8_MAX).astype(np.int8)
    return q, scale.astype(np.float32)


def quantized_layer(layer: DenseLayer, input_quant: Quantization) -> dict[str, Any]:
    """The int8 arrays TFLite runs for one layer: weights, scales, int32 bias.

    Returns:
        ``{"weights": int8 (out, in), "weight_scale": float32 (out,), "bias": int32 (out,),
        "bias_scale": float32 (out,)}``.
    """
    w, scale = _quantize_weights(np.asarray(layer.weights))
    bias_scale = (input_quant.scale * scale.astype(np.float64)).astype(np.float32)
    bias = np.round(np.asarray(layer.bias, np.float64) / bias_scale.astype(np.float64))
    bias = np.clip(bias, -2**31, 2**31 - 1).astype(np.int32)
    return {"weights": w, "weight_scale": scale, "bias": bias, "bias_scale": bias_scale}


def _qparams(scale: np.ndarray, zero_point: np.ndarray, dim: int = 0) -> Any:
    q = schema.QuantizationParametersT()
    q.scale = np.asarray(scale, np.float32).reshape(-1)
    q.zeroPoint = np.asarray(zero_point, np.int64).reshape(-1)
    q.quantizedDimension = dim
    return q


def _new_tensor(model: Any, name: str, shape: Sequence[int], ttype: int, quant: Any,
                data: np.ndarray | None) -> int:
    sg = model.subgraphs[0]
    t = schema.TensorT()
    t.name = name
    t.shape = np.array(shape, np.int32)
    t.type = ttype
    t.quantization = quant
    if data is None:
        t.buffer = 0
    else:
        buf = schema.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        model.buffers.append(buf)
        t.buffer = len(model.buffers) - 1
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _fc_options(template: Any, relu: bool) -> tuple[int, Any]:
    opts = schema.FullyConnectedOptionsT()
    if template is not None and isinstance(template, schema.FullyConnectedOptionsT):
        opts.weightsFormat = template.weightsFormat
        opts.keepNumDims = template.keepNumDims
        opts.asymmetricQuantizeInputs = template.asymmetricQuantizeInputs
    opts.fusedActivationFunction = (schema.ActivationFunctionType.RELU if relu
                                    else schema.ActivationFunctionType.NONE)
    return schema.BuiltinOptions.FullyConnectedOptions, opts


def _compact(model: Any) -> dict[int, int]:
    """Drops tensors no operator, output or signature uses, then unused buffers.

    Returns:
        old tensor index -> new tensor index.
    """
    sg = model.subgraphs[0]
    used = {int(t) for op in sg.operators for t in list(op.inputs) + list(op.outputs) if t >= 0}
    used |= {int(t) for t in sg.inputs} | {int(t) for t in sg.outputs}
    for sig in model.signatureDefs:
        used |= {int(m.tensorIndex) for m in list(sig.inputs or []) + list(sig.outputs or [])}
    keep = sorted(used)
    remap = {old: new for new, old in enumerate(keep)}

    def rm(arr):
        return np.array([remap[int(t)] if t >= 0 else -1 for t in arr], np.int32)

    sg.tensors = [sg.tensors[i] for i in keep]
    for op in sg.operators:
        op.inputs, op.outputs = rm(op.inputs), rm(op.outputs)
        if op.intermediates is not None and len(op.intermediates):
            op.intermediates = rm(op.intermediates)
    sg.inputs, sg.outputs = rm(sg.inputs), rm(sg.outputs)
    for sig in model.signatureDefs:
        for m in list(sig.inputs or []) + list(sig.outputs or []):
            m.tensorIndex = remap[int(m.tensorIndex)]
    buffers = {0} | {int(t.buffer) for t in sg.tensors}
    buffers |= {int(m.buffer) for m in model.metadata or []}
    keep_b = sorted(buffers)
    bmap = {old: new for new, old in enumerate(keep_b)}
    model.buffers = [model.buffers[i] for i in keep_b]
    for t in sg.tensors:
        t.buffer = bmap[int(t.buffer)]
    for m in model.metadata or []:
        m.buffer = bmap[int(m.buffer)]
    return remap


def set_metadata(model: Any, payload: dict[str, Any]) -> None:
    """Stores ``payload`` as the JSON ``edge_dct`` metadata buffer of an unpacked model
    (``schema.ModelT``), replacing an existing entry's buffer in place."""
    data = np.frombuffer(json.dumps(payload, separators=(",", ":")).encode("utf-8"), np.uint8)
    model.metadata = model.metadata or []
    entry = next((m for m in model.metadata if _name(m.name) == METADATA_NAME), None)
    if entry is None:
        model.buffers.append(schema.BufferT())
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    model.buffers[entry.buffer].data = data


def replace_head(content: bytes, layers: Sequence[DenseLayer], labels: Sequence[str], *,
                 metadata: dict[str, Any] | None = None, name: str = "<bytes>") -> bytes:
    """A bundle with a new int8 head (fully connected layers) on the same backbone.

    The old head's operators, weights and biases are removed; the new layers are quantized
    (weights symmetric int8 per output channel, bias int32 at ``input_scale * weight_scale``,
    outputs at each layer's :class:`Quantization`) and wired from the embedding to the same
    ``logits`` tensor, reshaped to ``[1, len(labels)]``. The result also has the ``embed``
    signature (:func:`expose_embedding`) and the ``edge_dct`` metadata with ``labels``
    replaced (plus the keys of ``metadata``).

    Args:
        content: an int8 edge_dct bundle (e.g. the embedded default model).
        layers: the new head, first layer first; the first takes the embedding's length, the
            last gives ``len(labels)`` outputs.
        labels: the class names, distinct.
        metadata: extra keys for the ``edge_dct`` metadata (provenance of the head).
        name: the model's name for error messages.

    Returns:
        The edited flatbuffer.

    Raises:
        ModelError: the model cannot be edited (see :func:`find_head`) or is no bundle.
        InvalidArgumentError: layer shapes that do not chain, or labels that do not match.
    """
    model, given = _unpack(content, name)
    head = _find_head(model, name, given=given)
    labels = [str(x) for x in labels]
    if not layers:
        raise InvalidArgumentError("a head needs at least one layer")
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise InvalidArgumentError("labels must be at least two distinct names")
    width = head.features
    for i, layer in enumerate(layers):
        w = np.asarray(layer.weights)
        if w.ndim != 2 or w.shape[0] != width or np.asarray(layer.bias).shape != (w.shape[1],):
            raise InvalidArgumentError(
                f"layer {i}: weights {w.shape} / bias {np.asarray(layer.bias).shape} do not "
                f"take {width} inputs")
        width = w.shape[1]
    if width != len(labels):
        raise InvalidArgumentError(f"the head gives {width} outputs for {len(labels)} labels")
    meta = {**read_metadata(content, name), **(metadata or {}), "labels": labels}

    sg = model.subgraphs[0]
    first_old = sg.operators[head.operators[0]]
    opcode = first_old.opcodeIndex
    template = first_old.builtinOptions
    position = min(head.operators)
    sg.operators = [op for i, op in enumerate(sg.operators) if i not in set(head.operators)]

    src, src_q = head.embedding, head.quantization
    new_ops = []
    for i, layer in enumerate(layers):
        q = quantized_layer(layer, src_q)
        out_n = q["weights"].shape[0]
        w_t = _new_tensor(model, f"edge_dct_head/dense_{i}/weights", q["weights"].shape,
                          schema.TensorType.INT8,
                          _qparams(q["weight_scale"], np.zeros(out_n)), q["weights"])
        b_t = _new_tensor(model, f"edge_dct_head/dense_{i}/bias", (out_n,),
                          schema.TensorType.INT32,
                          _qparams(q["bias_scale"], np.zeros(out_n)), q["bias"])
        last = i == len(layers) - 1
        qp = _qparams([layer.output.scale], [layer.output.zero_point])
        if last:
            out_t = head.logits
            t = sg.tensors[out_t]
            t.shape = np.array([1, out_n], np.int32)
            t.shapeSignature = None
            t.quantization = qp
        else:
            out_t = _new_tensor(model, f"edge_dct_head/dense_{i}/output", (1, out_n),
                                schema.TensorType.INT8, qp, None)
        op = schema.OperatorT()
        op.opcodeIndex = opcode
        op.inputs = np.array([src, w_t, b_t], np.int32)
        op.outputs = np.array([out_t], np.int32)
        op.builtinOptionsType, op.builtinOptions = _fc_options(template, layer.relu)
        new_ops.append(op)
        src, src_q = out_t, layer.output
    sg.operators[position:position] = new_ops
    set_metadata(model, meta)
    remap = _compact(model)
    _add_embed_signature(model, _find_head(model, name, given=remap[head.embedding]))
    return _pack(model, len(content))


__all__ = [
    "DenseLayer",
    "HeadInfo",
    "Quantization",
    "expose_embedding",
    "find_head",
    "has_embedding",
    "quantized_layer",
    "replace_head",
]
