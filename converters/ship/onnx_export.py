"""Keras 3 model -> ``.onnx`` bundle (fp32, fp16 or int8 QDQ) with ``edge_dct`` metadata (issue #19).

Route: the Keras model is interpreted in PyTorch by its twin
(:class:`converters.train.torch_graph.TorchGraph`, weights copied by layer name; nested
functional models such as the default model's teacher are inlined), wrapped in a module that
takes the bundle's **NHWC** inputs and permutes them to NCHW, then written by
``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``, opset 17) with the batch axis
dynamic (``dim_param "batch"``). TensorFlow -> ONNX converters are avoided: tf2onnx does not
read Keras 3 models. This is the one ``ship -> train`` import of the package (the twin lives in
``train/`` because distillation trains it; ``torch_graph`` imports nothing of ``converters``).

The bundle contract (what ``edge_dct``'s onnxruntime backend reads):

* inputs named as the InputSpec tensors (``y`` ``[N, H, W, Cy]`` and ``cbcr``
  ``[N, H/2, W/2, Ccb+Ccr]``, or ``dct`` ``[N, H, W, C]``; ``image`` for pixel models), float32;
  outputs ``logits`` ``[N, classes]`` and, for a model ending in a dense head, ``embedding``
  ``[N, features]`` (the head's input), float32; ``N`` dynamic;
* ``metadata_props["edge_dct"]``: the JSON object a ``.tflite`` bundle of the same model embeds
  (InputSpec v1 fields, ``labels``, provenance) plus ``"format": "onnx"`` and
  ``"precision"`` (``fp32``, ``fp16`` or ``int8``).

Precisions: ``fp32``; ``fp16``: weights and activations float16 inside, float32 inputs and
output (``onnxruntime.transformers.float16``, ``keep_io_types``); ``int8``: QDQ static
quantization (``onnxruntime.quantization.quantize_static``, per-channel int8 weights, int8
activations, MinMax) calibrated on the samples the TFLite int8 export uses
(:mod:`converters.ship.calibration`: the photos through ``edge_dct.prepare``), inputs and
output float32.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from edge_dct.onnx_bundle import METADATA_KEY
from edge_dct.onnx_bundle import read_onnx_metadata as sdk_read_onnx_metadata

from ..zoo.registry import accepted_overrides, build, get_config, list_models
from .calibration import SampleSource, default_samples, iterate, spec_samples
from .export import QUANTIZATIONS, default_labels, input_shapes, is_photo_list, model_spec, resolve_model
from .metadata import read_metadata
from .onnx_ranges import RangeMatch, carry_biases, match_ranges

"""``metadata_props`` key of the bundle's JSON (same name as the TFLite metadata buffer)."""
SPEC_FIELDS = ("version", "grid", "resize", "chroma", "layout", "channels", "normalize")
"""The InputSpec v1 fields of the metadata (``labels`` and provenance keys aside)."""
OPSET = 17
FORMATS = ("tflite", "onnx")


@dataclasses.dataclass
class OnnxExportReport:
    """What :func:`export_onnx` wrote.

    Attributes:
        model: model name.
        path: the ``.onnx`` file.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        size_bytes: file size.
        inputs: input name -> shape (``"batch"`` for the dynamic axis).
        seconds: wall time of the export (twin, ``torch.onnx.export``, fp16/int8 pass, metadata).
        calibration_samples: samples the int8 calibration saw (0 otherwise).
        ranges: int8 with a reference bundle: how many activations took its parameters.
        embedding: whether the bundle has the ``embedding`` output.
    """

    model: str
    path: str
    precision: str
    size_bytes: int
    inputs: dict[str, list[Any]]
    seconds: float
    calibration_samples: int = 0
    ranges: str = ""
    embedding: bool = False

    def __str__(self) -> str:
        shapes = ", ".join(f"{k} {v}" for k, v in self.inputs.items())
        cal = f", calibrated on {self.calibration_samples} samples" if self.calibration_samples else ""
        cal += f"; {self.ranges}" if self.ranges else ""
        return (f"{self.model} -> {self.path} (onnx {self.precision}, {self.size_bytes / 1e6:.2f} MB, "
                f"{self.seconds:.1f} s{cal})\n  inputs: {shapes} float32; outputs logits [batch, classes]"
                f"{' and embedding [batch, features]' if self.embedding else ''} float32")


# ------------------------------------------------------------------------------ PyTorch twin


class _LayerIndex:
    """``get_layer(name)`` over the layers of a flattened (nested-model-inlined) Keras graph,
    what :func:`converters.train.torch_graph.to_torch` asks of a model."""

    def __init__(self, layers: dict[str, Any]):
        self._layers = layers

    def get_layer(self, name: str) -> Any:
        return self._layers[name]


def flat_plan(model: keras.Model) -> tuple[dict[str, Any], dict[str, Any]]:
    """A :func:`converters.train.torch_graph.graph_plan` of ``model`` with nested functional
    models inlined (the default model calls EfficientNet-Lite0 as one layer).

    Returns:
        ``(plan, layers)``: the plan (``inputs``, ``outputs``, ``layers``) and layer name ->
        Keras layer, for the weight copy.

    Raises:
        ValueError: two inlined layers share a name.
    """
    from ..train.torch_graph import _sources, describe

    steps: list[dict[str, Any]] = []
    layers: dict[str, Any] = {}

    def visit(m: keras.Model, alias: dict[str, str]) -> str:
        for layer in m.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            if isinstance(layer, keras.Model):
                # a nested model's ``input`` is its own Input: its call in ``m`` is its inbound node
                if len(layer._inbound_nodes) != 1:
                    raise ValueError(f"{model.name}: nested model {layer.name!r} is called "
                                     f"{len(layer._inbound_nodes)} times")
                sources = [alias.get(t._keras_history.operation.name, t._keras_history.operation.name)
                           for t in layer._inbound_nodes[0].input_tensors]
                inner = [t._keras_history.operation.name for t in layer.inputs]
                alias[layer.name] = visit(layer, {**alias, **dict(zip(inner, sources))})
                continue
            sources = [alias.get(s, s) for s in _sources(layer)]
            if layer.name in layers:
                raise ValueError(f"{model.name}: layer name {layer.name!r} occurs twice after inlining")
            steps.append({**describe(layer), "sources": sources})
            layers[layer.name] = layer
        out = m.output._keras_history.operation.name
        return alias.get(out, out)

    output = visit(model, {})
    plan = {"inputs": [t._keras_history.operation.name for t in model.inputs], "outputs": [output], "layers": steps}
    return plan, layers


def torch_twin(model: keras.Model):
    """The model as a ``torch.nn.Module`` taking NHWC float32 inputs (in ``model.inputs`` order)
    and returning ``logits`` ``[N, classes]``; eval mode, the Keras weights copied in.

    Raises:
        ValueError: the model has layers the PyTorch twin has no form for (named).
    """
    import torch

    from ..train.torch_graph import TorchGraph, _module, to_torch

    plan, layers = flat_plan(model)
    missing = []
    for d in plan["layers"]:
        try:
            _module(d)
        except NotImplementedError:
            missing.append(f"{d['name']} ({d['kind']})")
    if missing:
        raise ValueError(f"{model.name}: no ONNX export: the PyTorch twin (converters.train.torch_graph) "
                         f"has no form for layer(s) {', '.join(missing)}")
    graph = TorchGraph(plan).eval()
    to_torch(_LayerIndex(layers), graph)

    class NHWC(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.graph = graph
            self.names = list(plan["inputs"])

        def forward(self, *xs: torch.Tensor) -> torch.Tensor:
            return self.graph({n: x.permute(0, 3, 1, 2) for n, x in zip(self.names, xs)})[0]

    return NHWC().eval()


# ------------------------------------------------------------------------------ ONNX passes


def fp32_onnx(model: keras.Model, opset: int = OPSET) -> bytes:
    """The fp32 ONNX model (no metadata): NHWC float32 inputs named as ``model.inputs``,
    outputs ``logits`` and, where the model ends in a dense head, ``embedding``
    (:func:`expose_embedding`); dynamic batch."""
    import torch

    twin = torch_twin(model)
    names = [t.name for t in model.inputs]
    example = tuple(torch.zeros((2, *(int(d) for d in t.shape[1:])), dtype=torch.float32) for t in model.inputs)
    axes = {n: {0: "batch"} for n in [*names, "logits"]}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the twin's TF padding arithmetic on (static) spatial sizes is traced as constants
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript exporter: torch.export needs onnxscript
        torch.onnx.export(twin, example, buf, dynamo=False, opset_version=opset, input_names=names,
                          output_names=["logits"], dynamic_axes=axes, do_constant_folding=True)
    import onnx

    proto = onnx.load_from_string(buf.getvalue())
    expose_embedding(proto)
    return proto.SerializeToString()


def expose_embedding(onnx_model: Any) -> bool:
    """Adds the classifier head's input, the pooled features, as a second graph output
    ``embedding`` ``[N, features]`` (what ``edge_dct.ImageEmbedder`` reads; the ``.tflite``
    bundles' ``embed`` signature), in place. The head is the Gemm (or MatMul, + Add) node that
    makes ``logits``, reached back through Identity/Flatten/Reshape/Dropout nodes.

    Returns:
        Whether an output was added (False: no such head, or ``embedding`` already there).
    """
    import onnx

    graph = onnx_model.graph
    if any(o.name == "embedding" for o in graph.output):
        return False
    made = {o: n for n in graph.node for o in n.output}
    node = made.get("logits")
    while node is not None and node.op_type in ("Identity", "Add", "Flatten", "Reshape", "Dropout"):
        if node.op_type == "Add":  # MatMul + bias: the MatMul side
            node = next((made[i] for i in node.input if i in made and made[i].op_type == "MatMul"), None)
        else:
            node = made.get(node.input[0])
    if node is None or node.op_type not in ("Gemm", "MatMul"):
        return False
    features = node.input[0]
    graph.node.append(onnx.helper.make_node("Identity", [features], ["embedding"], name="embedding"))
    graph.output.append(onnx.helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", None]))
    return True


def to_fp16(onnx_model: Any) -> Any:
    """Float16 weights and activations, float32 inputs and output (``keep_io_types``)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx_model, keep_io_types=True)


def to_int8(fp32: bytes, calibration: SampleSource, names: Sequence[str],
            reference: Path | bytes | None = None, match_samples: int = 4) -> tuple[Any, int, RangeMatch | None]:
    """QDQ static quantization of an fp32 ONNX model.

    Per-channel int8 weights, int8 activations (MinMax over the samples: the calibration graph
    reduces each tensor to its min and max, so memory does not grow with the samples),
    float32 inputs and output (the graph quantizes and dequantizes inside). With
    ``reference``, an int8 ``.tflite`` bundle of the same network, the activations it has take
    its scales and zero points instead, its weights its per-channel scales and its biases its
    int32 values (:mod:`converters.ship.onnx_ranges`, matched on the first ``match_samples``
    samples).

    Returns:
        ``(model, calibration samples, the range match or None)``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = iterate(calibration)
    head = list(itertools.islice(source, match_samples if reference is not None else 0))

    class Reader(CalibrationDataReader):
        """The samples as onnxruntime's calibration reader (input name -> float32 array)."""

        def __init__(self) -> None:
            self.samples, self.count = itertools.chain(head, source), 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            s = next(self.samples, None)
            if s is None:
                return None
            self.count += 1
            return {n: np.asarray(s[n], np.float32) for n in names}

    reader = Reader()
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(fp32)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        match = None if reference is None else match_ranges(onnx.load(str(pre)), reference, head, names)
        quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        extra_options={"TensorQuantOverrides": match.overrides} if match else None)
        proto = onnx.load(str(out))
        if match is not None:
            match.biases = carry_biases(proto, reference)
        return proto, reader.count, match


def set_onnx_metadata(onnx_model: Any, payload: dict[str, Any]) -> None:
    """Store ``payload`` as the JSON ``metadata_props`` entry ``edge_dct`` (replacing one)."""
    text = json.dumps(payload, separators=(",", ":"))
    for prop in onnx_model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = text
            return
    onnx_model.metadata_props.add(key=METADATA_KEY, value=text)


def read_onnx_metadata(model: str | Path | bytes) -> dict[str, Any]:
    """The ``edge_dct`` JSON of an ``.onnx`` bundle (not validated): the SDK's reader
    (:func:`edge_dct.onnx_bundle.read_onnx_metadata`) on a path or bytes.

    Raises:
        LookupError: the model has no ``edge_dct`` entry (``MetadataNotFoundError``).
    """
    if isinstance(model, (bytes, bytearray)):
        return sdk_read_onnx_metadata(bytes(model), "<bytes>")
    return sdk_read_onnx_metadata(Path(model).read_bytes(), str(model))


# ------------------------------------------------------------------------------ models


def model_from_bundle(bundle: str | Path) -> tuple[keras.Model, dict[str, Any]]:
    """Rebuild the Keras model of a ``.tflite`` bundle from its ``edge_dct`` metadata.

    The metadata names the registry model (``model``); its ``grid`` and, when the builder
    takes one, ``normalize`` (the default model folds it into its front end) are passed to the
    builder, which loads the model's own weights. Only bundles whose weights the builder
    reproduces (the embedded default model, ``efficientnet_lite0_dct_exact``) give the bundle's
    network; a distilled student's trained adapter is not in the registry.

    Returns:
        ``(model, metadata)``: the metadata is the bundle's, unchanged.

    Raises:
        ValueError: the metadata names no registered model.
    """
    meta = read_metadata(bundle)
    name = meta.get("model")
    if name not in list_models():
        raise ValueError(f"{bundle}: its metadata names model {name!r}, not a registry model")
    accepted = accepted_overrides(name)
    overrides: dict[str, Any] = {}
    if "grid" in accepted:
        overrides["grid"] = tuple(meta["grid"])
    if "num_classes" in accepted:
        overrides["num_classes"] = len(meta["labels"])
    if "normalize" in accepted:
        overrides["normalize"] = meta.get("normalize")
    return build(name, **overrides), meta


def export_onnx(
    model_or_name: keras.Model | str,
    out_path: str | Path,
    *,
    quantize: str = "fp32",
    calibration: SampleSource | Sequence[Path] | None = None,
    overrides: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    reference: str | Path | bytes | None = None,
) -> OnnxExportReport:
    """Export a registry model (or a built one) to an ``.onnx`` bundle (module docstring).

    Args:
        model_or_name: registry name, or a built ``keras.Model`` whose ``name`` is registered.
        out_path: the ``.onnx`` file to write.
        quantize: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        calibration: int8 samples ``{input_name: float32 [1, ...]}`` (iterable or callable) or
            photo paths turned into samples the model's way; default the TFLite export's
            (:func:`converters.ship.calibration.default_samples`).
        overrides: builder overrides when ``model_or_name`` is a name.
        labels: class names (default as :func:`converters.ship.export.export`).
        metadata: the whole ``edge_dct`` payload instead of the registry's InputSpec + labels
            (e.g. a bundle's, :func:`model_from_bundle`); ``format``/``precision`` are added.
        reference: int8 only: an int8 ``.tflite`` bundle of the same network whose activation
            scales and zero points, per-channel weight scales and int32 biases the QDQ model
            takes (:mod:`converters.ship.onnx_ranges`), so that both bundles classify alike.

    Returns:
        :class:`OnnxExportReport` (also printable).
    """
    import onnx

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, not {quantize!r}")
    if reference is not None and quantize != "int8":
        raise ValueError(f"reference (an int8 bundle's quantization) applies to int8 exports, not {quantize}")
    start = time.perf_counter()
    model = resolve_model(model_or_name, overrides, registered=metadata is None)
    num_classes = int(model.outputs[0].shape[-1])
    if metadata is None:
        config = get_config(model.name)
        spec = model_spec(model, config.input_spec)
        metadata = {**spec, "labels": labels if labels is not None else default_labels(config, num_classes)}
    elif labels is not None:
        metadata = {**metadata, "labels": labels}
    if len(metadata["labels"]) != num_classes:
        raise ValueError(f"{len(metadata['labels'])} labels for {num_classes} outputs")

    names = [t.name for t in model.inputs]
    fp32 = fp32_onnx(model)
    count, match = 0, None
    if quantize == "fp32":
        proto = onnx.load_from_string(fp32)
    elif quantize == "fp16":
        proto = to_fp16(onnx.load_from_string(fp32))
    else:
        shapes = input_shapes(model)
        spec = {k: v for k, v in metadata.items() if k in SPEC_FIELDS}  # provenance keys are no InputSpec
        if is_photo_list(calibration):
            calibration = spec_samples(calibration, shapes, spec)
        elif calibration is None:
            calibration = default_samples(shapes, spec)[0]
        ref = Path(reference) if isinstance(reference, str) else reference
        proto, count, match = to_int8(fp32, calibration, names, reference=ref)
    proto.producer_name = "edge_dct.converters"
    set_onnx_metadata(proto, {**metadata, "format": "onnx", "precision": quantize})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out_path))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    return OnnxExportReport(model=model.name, path=str(out_path), precision=quantize,
                            size_bytes=out_path.stat().st_size, inputs=inputs,
                            seconds=time.perf_counter() - start, calibration_samples=count,
                            ranges=str(match) if match else "",
                            embedding=any(o.name == "embedding" for o in proto.graph.output))
