"""ONNX Runtime backend: .onnx bundles, provider selection, throughput mode (CPU only here)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import edge_dct
from edge_dct.bundle import ModelBundle
from edge_dct.onnx_bundle import read_onnx_metadata
from tests.conftest import ROOT, clothing_photos

onnx = pytest.importorskip("onnx", reason="ONNX bundles need onnx (pip install onnx) to be built here")
ort = pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime (edge-dct[onnx])")
from onnx import TensorProto, helper  # noqa: E402


def tiny_bundle(metadata: dict | None, seed: int = 0) -> bytes:
    """A real ONNX model on the default InputSpec: mean of each input channel over the grid,
    concatenated (192), times a random (192, 1000) matrix -> logits; dynamic batch."""
    spec = ModelBundle.load().spec
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, (192, len(spec.labels))).astype(np.float32)
    b = rng.normal(0, 0.1, len(spec.labels)).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["y", "axes"], ["my"], keepdims=0),
             helper.make_node("ReduceMean", ["cbcr", "axes"], ["mc"], keepdims=0),
             helper.make_node("Concat", ["my", "mc"], ["feat"], axis=1),
             helper.make_node("MatMul", ["feat", "w"], ["z"]),
             helper.make_node("Add", ["z", "b"], ["logits"])]
    inputs = [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, ["batch", *t.shape[1:]])
              for t in spec.tensors]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(spec.labels)])
    init = [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
            helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.reshape(-1)),
            helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)]
    model = helper.make_model(helper.make_graph(nodes, "tiny", inputs, [out], init),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if metadata is not None:
        helper.set_model_props(model, {"edge_dct": json.dumps(metadata)})
    return model.SerializeToString(), w, b


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    meta = dict(ModelBundle.load().metadata, format="onnx", precision="fp32")
    content, w, b = tiny_bundle(meta)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    path.write_bytes(content)
    return path, w, b


def reference(path, w, b) -> np.ndarray:
    t = edge_dct.prepare(path, ModelBundle.load().spec)
    feat = np.concatenate([t["y"].mean(axis=(1, 2)), t["cbcr"].mean(axis=(1, 2))], axis=1)
    return (feat @ w + b)[0]


def test_metadata_is_read_without_onnx(bundle) -> None:
    path, _, _ = bundle
    b = ModelBundle.load(path)
    assert b.format == "onnx" and b.spec == ModelBundle.load().spec and b.metadata["precision"] == "fp32"


def test_classify_matches_the_graph(bundle, corpus_available) -> None:
    path, w, b = bundle
    with edge_dct.Classifier.create_from_model_path(path, max_results=5) as clf:
        assert clf.accelerator == "cpu"
        for photo in clothing_photos()[:5]:
            got = clf.classify(photo)
            z = reference(photo, w, b)
            p = np.exp(z - z.max())
            p /= p.sum()
            assert [c.index for c in got.categories] == list(np.argsort(-p, kind="stable")[:5])
            np.testing.assert_allclose([c.score for c in got.categories], np.sort(p)[::-1][:5], rtol=1e-4)


def test_throughput_mode_equals_one_by_one(bundle, corpus_available) -> None:
    path, _, _ = bundle
    photos = clothing_photos()[:11] + [b"not a jpeg"]
    with edge_dct.Classifier.create_from_model_path(path, max_results=3) as clf:
        assert clf._runner.streams_schedule  # the CPU provider: parallel one-thread streams
        single = [clf.classify(p) for p in photos[:-1]]
        for size in (1, 4):
            batched = clf.classify_batch(photos, return_exceptions=True, batch_size=size, workers=2)
            assert isinstance(batched[-1], edge_dct.InvalidJpegError)
            for a, b in zip(single, batched[:-1]):
                assert [c.index for c in a.categories] == [c.index for c in b.categories]
                np.testing.assert_allclose([c.score for c in a.categories], [c.score for c in b.categories],
                                           rtol=1e-5)
                assert b.timing.prepare_ms > 0 and b.timing.inference_ms > 0
        with pytest.raises(edge_dct.InvalidJpegError):
            clf.classify_batch(photos, batch_size=4)
        with pytest.raises(edge_dct.InvalidArgumentError, match="batch_size"):
            clf.classify_batch(photos, batch_size=0)
    with pytest.raises(RuntimeError, match="closed"):  # the streams run without the lock: checked
        clf.classify_batch(photos[:2], batch_size=1, workers=2)
    with edge_dct.Classifier.create_from_model_path(edge_dct.bundle.DEFAULT_MODEL) as lite:
        with pytest.raises(edge_dct.InvalidArgumentError, match="dynamic batch"):
            lite.classify_batch(photos, batch_size=4)


def test_embedder_needs_an_embedding_output(bundle, tmp_path, corpus_available) -> None:
    """ImageEmbedder on ONNX bundles: the ``embedding`` output (the pooled features) when the
    bundle has one; otherwise a ModelError that says how to export it."""
    path, _, _ = bundle
    with pytest.raises(edge_dct.ModelError, match="no 'embedding' output.*converters export"):
        edge_dct.ImageEmbedder.create_from_model_path(str(path))
    model = onnx.load(str(path))
    model.graph.node.append(helper.make_node("Identity", ["feat"], ["embedding"]))
    model.graph.output.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 192]))
    with_embedding = tmp_path / "embedding.onnx"
    onnx.save(model, str(with_embedding))
    photo = clothing_photos()[0]
    t = edge_dct.prepare(photo, ModelBundle.load().spec)
    feat = np.concatenate([t["y"].mean(axis=(1, 2)), t["cbcr"].mean(axis=(1, 2))], axis=1)[0]
    with edge_dct.ImageEmbedder.create_from_model_path(str(with_embedding)) as e:
        assert e.dimension == 192
        np.testing.assert_allclose(e.embed(photo).embedding, feat, rtol=1e-5, atol=1e-6)
    with edge_dct.Classifier.create_from_model_path(str(with_embedding)) as c:  # logits as before
        assert len(c.classify(photo).categories) == 5


def test_providers_and_accelerators(bundle) -> None:
    path, _, _ = bundle
    available = ort.get_available_providers()
    with edge_dct.Classifier.create_from_model_path(path, accelerator="auto") as clf:
        expect = "tensorrt" if "TensorrtExecutionProvider" in available else \
            "cuda" if "CUDAExecutionProvider" in available else "cpu"
        assert clf.accelerator == expect
    if "CUDAExecutionProvider" in available:
        pytest.skip("this onnxruntime has CUDA: the missing-provider error cannot be shown here")
    for acc, missing in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")):
        with pytest.raises(edge_dct.AcceleratorUnavailableError, match=missing):
            edge_dct.Classifier.create_from_model_path(path, accelerator=acc)
    with pytest.raises(edge_dct.AcceleratorUnavailableError, match="ONNX bundles"):
        edge_dct.Classifier.create_from_model_path(edge_dct.bundle.DEFAULT_MODEL, accelerator="cuda")
    with pytest.raises(edge_dct.InvalidArgumentError, match="LiteRT"):
        edge_dct.Classifier.create_from_model_path(path, accelerator="gpu")


def test_bad_onnx_bundles(tmp_path) -> None:
    content, _, _ = tiny_bundle(None)
    with pytest.raises(edge_dct.MetadataNotFoundError, match="edge_dct"):
        read_onnx_metadata(content, "x.onnx")
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(content)
    with pytest.raises(edge_dct.MetadataNotFoundError):
        edge_dct.Classifier.create_from_model_path(plain)
    meta = dict(ModelBundle.load().metadata)
    good, _, _ = tiny_bundle(meta)
    for cut in (len(good) // 2, 7, 3):
        with pytest.raises(edge_dct.ModelError):
            ModelBundle.load(good[:cut])
    wrong = dict(meta, grid=[14, 14])  # the graph's inputs stay 28x28
    bad, _, _ = tiny_bundle(wrong)
    with pytest.raises(edge_dct.ModelError, match="disagree"):
        edge_dct.Classifier.create_from_model_path(_write(tmp_path / "wrong.onnx", bad))


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def test_cli_batch_size_and_no_tensorflow(bundle, corpus_available) -> None:
    path, _, _ = bundle
    photos = [str(p) for p in clothing_photos()[:6]]
    code = ("import sys, edge_dct.cli as c; rc = c.main(['classify', '--model', sys.argv[1], '--batch-size', '4', "
            "'--top-k', '1', '--no-progress', *sys.argv[2:]]); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, str(path), *photos], capture_output=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    assert len(lines) == 6 and all(":" in line for line in lines)


def test_bench_throughput_compares_both_pipelines_per_schedule(bundle, tmp_path, corpus_available) -> None:
    """``edge-dct bench --throughput`` on ONNX bundles: medians of interleaved passes, the
    streams schedule on the CPU provider, both pipelines; a real (tiny) RGB ONNX graph."""
    from edge_dct.bench import throughput

    labels = ModelBundle.load().spec.labels
    w = np.random.default_rng(1).normal(0, 0.05, (3, len(labels))).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["logits"])]
    model = helper.make_model(helper.make_graph(
        nodes, "tiny_rgb", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
         helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.reshape(-1))]),
        opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta = {"version": 1, "grid": [28, 28], "resize": {"mode": "shorter_side", "size": 256}, "chroma": "444",
            "layout": "rgb", "channels": ["R", "G", "B"], "normalize": {"mean": [127.0] * 3, "std": [128.0] * 3},
            "labels": list(labels), "format": "onnx", "precision": "fp32"}
    helper.set_model_props(model, {"edge_dct": json.dumps(meta)})
    rgb = tmp_path / "rgb.onnx"
    rgb.write_bytes(model.SerializeToString())
    r = throughput(clothing_photos()[:3], str(bundle[0]), rgb, None, "cpu", 2, 2, 6, repeat=3)
    assert r["schedule"] == "streams" and r["images"] == 6 and r["repeat"] == 3
    for kind in ("dct", "rgb"):
        assert r[kind]["accelerator"] == "cpu"
        assert all(len(r[kind]["runs"][m]) == 3 for m in ("single", "batched"))
        assert r[kind]["single"] > 0 and r[kind]["batched"] > 0
    assert throughput(clothing_photos()[:2], str(bundle[0]), rgb, None, "cpu", None, 2, 2, repeat=1)["batch_size"] == 1


def test_tensorrt_engines_are_cached(tmp_path, monkeypatch) -> None:
    """The provider list asked of ONNX Runtime: TensorRT with its engine cache under the
    XDG cache folder, the others plain, missing ones dropped; no cache on a read-only home."""
    from edge_dct.onnx_runtime import _PROVIDERS, providers

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    got = providers(_PROVIDERS["tensorrt"], {"TensorrtExecutionProvider", "CPUExecutionProvider"})
    engines = tmp_path / "edge_dct" / "tensorrt"
    assert got == [("TensorrtExecutionProvider", {"trt_engine_cache_enable": "True",
                                                   "trt_engine_cache_path": str(engines)}),
                   "CPUExecutionProvider"]
    assert engines.is_dir()
    (tmp_path / "ro").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ro"))
    assert providers(_PROVIDERS["tensorrt"], {"TensorrtExecutionProvider"}) == ["TensorrtExecutionProvider"]
