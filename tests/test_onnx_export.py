"""converters.ship.onnx_export: ``.onnx`` bundles (issue #19) against the TFLite fp32 export.

Needs onnx, onnxruntime, PyTorch and TensorFlow (requirements-converters.txt); skipped without
them. A small copy of the registry's ``upsampling`` (8x8 grid, 10 classes) keeps it ~20 s.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import keras  # noqa: E402

import edge_dct  # noqa: E402
from converters.__main__ import main  # noqa: E402
from converters.data.photos import corpus_photos  # noqa: E402
from converters.ship.export import LiteRunner, convert, model_spec  # noqa: E402
from converters.ship.onnx_export import METADATA_KEY, SPEC_FIELDS, export_onnx, read_onnx_metadata  # noqa: E402
from converters.zoo.registry import build, get_config  # noqa: E402
from edge_dct.spec import InputSpec  # noqa: E402

from .test_zoo import small_overrides  # noqa: E402

NAME = "upsampling"


def _session(path) -> "ort.InferenceSession":
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    photos = corpus_photos("clothing") or corpus_photos()
    if len(photos) < 9:
        pytest.skip("needs the shared photo corpus")
    out = tmp_path_factory.mktemp("onnx")
    keras.utils.set_random_seed(0)
    model = build(NAME, **small_overrides(NAME))
    spec = model_spec(model, get_config(NAME).input_spec)
    samples = [edge_dct.prepare(p, InputSpec.from_dict(spec)) for p in photos[:3]]
    paths = {q: out / f"{NAME}_{q}.onnx" for q in ("fp32", "fp16", "int8")}
    reports = {q: export_onnx(model, p, quantize=q, calibration=photos[3:9] if q == "int8" else None)
               for q, p in paths.items()}
    return {"model": model, "spec": spec, "samples": samples, "paths": paths, "reports": reports,
            "tflite": convert(model, "fp32")}


def test_fp32_matches_tflite_fp32_at_batch_1_and_3(bundles):
    lite = LiteRunner(bundles["tflite"])
    ref = np.concatenate([lite(s) for s in bundles["samples"]])
    sess = _session(bundles["paths"]["fp32"])
    one = np.concatenate([sess.run(["logits"], s)[0] for s in bundles["samples"]])
    three = sess.run(["logits"], {k: np.concatenate([s[k] for s in bundles["samples"]]) for k in ("y", "cbcr")})[0]
    for got in (one, three):
        assert got.shape == (3, 10) and got.dtype == np.float32
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    assert (np.argsort(-three, 1)[:, :5] == np.argsort(-ref, 1)[:, :5]).all()


def test_inputs_are_nhwc_with_a_dynamic_batch(bundles):
    for q, path in bundles["paths"].items():
        graph = onnx.load(str(path)).graph
        shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
        assert shapes == {"y": ["batch", 8, 8, 64], "cbcr": ["batch", 4, 4, 128]}, q
        assert [o.name for o in graph.output] == ["logits", "embedding"]
        float32 = onnx.TensorProto.FLOAT
        assert all(v.type.tensor_type.elem_type == float32 for v in [*graph.input, *graph.output]), q
        assert bundles["reports"][q].inputs == shapes


def test_embedding_output_is_the_heads_input(bundles):
    """``embedding`` is what the dense head reads (the pooled features), at every precision,
    and ``edge_dct.ImageEmbedder`` runs it."""
    model = bundles["model"]
    features = keras.Model(model.inputs, model.get_layer("logits").input)
    x = {k: np.concatenate([s[k] for s in bundles["samples"]]) for k in ("y", "cbcr")}
    want = np.asarray(features(x, training=False))
    for q, tol in (("fp32", 1e-4), ("fp16", 2e-2), ("int8", 0.25)):
        got = _session(bundles["paths"][q]).run(["embedding"], x)[0]
        assert got.shape == want.shape and got.dtype == np.float32, q
        assert np.abs(got - want).max() <= tol * np.abs(want).max(), q
    with edge_dct.ImageEmbedder.create_from_model_path(str(bundles["paths"]["fp32"])) as e:
        assert e.dimension == want.shape[1]
        got = e.embed(corpus_photos("clothing")[0]).embedding
        np.testing.assert_allclose(got, np.asarray(features(bundles["samples"][0], training=False))[0],
                                   atol=1e-4 * np.abs(want).max())


def test_metadata_props_round_trip(bundles):
    spec = bundles["spec"]
    for q, path in bundles["paths"].items():
        meta = read_onnx_metadata(path)
        assert meta == {**spec, "labels": [f"class_{i}" for i in range(10)], "format": "onnx", "precision": q}
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert json.loads(props[METADATA_KEY]) == meta
        InputSpec.from_dict({k: meta[k] for k in (*SPEC_FIELDS, "labels")})  # a valid InputSpec v1
    assert read_onnx_metadata(bundles["paths"]["fp32"].read_bytes())["precision"] == "fp32"


def test_fp16_and_int8_load_and_run(bundles):
    x = {k: np.concatenate([s[k] for s in bundles["samples"]]) for k in ("y", "cbcr")}
    ref = _session(bundles["paths"]["fp32"]).run(["logits"], x)[0]
    for q in ("fp16", "int8"):
        got = _session(bundles["paths"][q]).run(["logits"], x)[0]
        assert got.shape == (3, 10) and got.dtype == np.float32 and np.isfinite(got).all()
        assert bundles["reports"][q].size_bytes < bundles["reports"]["fp32"].size_bytes
    model16 = onnx.load(str(bundles["paths"]["fp16"]))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model16.graph.initializer)
    ops8 = {n.op_type for n in onnx.load(str(bundles["paths"]["int8"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops8
    assert bundles["reports"]["int8"].calibration_samples == 6
    g16 = _session(bundles["paths"]["fp16"]).run(["logits"], x)[0]
    assert np.abs(g16 - ref).max() <= 1e-2 * np.abs(ref).max()


def test_command_line(tmp_path, capsys):
    out = tmp_path / "small.onnx"
    sets = [a for k, v in small_overrides(NAME).items() for a in ("--set", f"{k}={v!r}")]
    assert main(["export", NAME, str(out), "--format", "onnx", *sets]) == 0
    assert "onnx fp32" in capsys.readouterr().out
    assert read_onnx_metadata(out)["grid"] == [8, 8]
    with pytest.raises(SystemExit) as e:
        main(["export", NAME, str(tmp_path / "x.pb"), "--format", "pb"])
    assert e.value.code == 2
    assert "invalid choice: 'pb'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["resnet50_rgb", "deconvolution_rfa"])
def test_every_layer_kind_of_the_zoo_exports(name, tmp_path):
    """ResNet50's max pooling and the deconvolution's transposed convolutions and channel
    slices: the ONNX bundle computes what the TFLite fp32 conversion does."""
    keras.utils.set_random_seed(0)
    model = build(name, **small_overrides(name))
    export_onnx(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    x = {t.name: rng.standard_normal((2, *t.shape[1:])).astype(np.float32) for t in model.inputs}
    lite = LiteRunner(convert(model, "fp32"))
    ref = np.concatenate([lite({k: v[i:i + 1] for k, v in x.items()}) for i in range(2)])
    got = _session(tmp_path / "m.onnx").run(["logits"], x)[0]
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_unsupported_layer_is_named():
    from converters.ship.onnx_export import torch_twin

    x = keras.Input((8, 8, 3), name="image")
    model = keras.Model(x, keras.layers.Dense(2, name="logits")(
        keras.layers.Flatten()(keras.layers.AveragePooling2D(2, name="pool")(x))))
    with pytest.raises(ValueError, match=r"pool \(AveragePooling2D\)"):
        torch_twin(model)


def test_int8_takes_a_tflite_bundles_scales(bundles, tmp_path):
    """With ``reference`` (an int8 .tflite of the same network), the QDQ bundle quantizes onto
    the bundle's grids: its activation and per-channel weight scales are the bundle's, and its
    logits follow the bundle's more closely than an own calibration does."""
    photos = corpus_photos("clothing") or corpus_photos()
    spec = InputSpec.from_dict(bundles["spec"])
    cal = [edge_dct.prepare(p, spec) for p in photos[3:9]]
    lite8 = convert(bundles["model"], "int8", cal)
    report = export_onnx(bundles["model"], tmp_path / "m.onnx", quantize="int8", calibration=cal,
                         reference=lite8)
    counts = re.search(r"(\d+) activations matched.* (\d+) weights took .* and (\d+) its int32 biases", report.ranges)
    assert counts and all(int(c) > 0 for c in counts.groups()), report.ranges

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=lite8)
    lite_scales = {round(float(t["quantization"][0]), 9) for t in it.get_tensor_details()
                   if t["dtype"] == np.int8 and t["quantization"][0] > 0}
    model = onnx.load(str(tmp_path / "m.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    acts = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    carried = sum(round(float(inits[n.input[1]]), 9) in lite_scales for n in acts)
    assert carried >= 0.8 * len(acts), f"{carried} of {len(acts)} activation scales are the bundle's"

    lite = LiteRunner(lite8)
    ref = np.concatenate([lite(s) for s in bundles["samples"]])
    x = {k: np.concatenate([s[k] for s in bundles["samples"]]) for k in ("y", "cbcr")}
    carried_err = np.abs(_session(tmp_path / "m.onnx").run(["logits"], x)[0] - ref).mean()
    own_err = np.abs(_session(bundles["paths"]["int8"]).run(["logits"], x)[0] - ref).mean()
    assert carried_err < own_err


def test_a_reference_of_another_network_is_refused(bundles, tmp_path):
    from edge_dct.bundle import DEFAULT_MODEL

    photos = corpus_photos("clothing") or corpus_photos()
    with pytest.raises(ValueError, match="not an int8 bundle of this network"):
        export_onnx(bundles["model"], tmp_path / "m.onnx", quantize="int8", calibration=photos[3:9],
                    reference=DEFAULT_MODEL)
    with pytest.raises(ValueError, match="applies to int8 exports, not fp16"):
        export_onnx(bundles["model"], tmp_path / "m.onnx", quantize="fp16", reference=DEFAULT_MODEL)
