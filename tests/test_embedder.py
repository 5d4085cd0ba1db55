"""Embeddings: the default bundle's ``embed`` signature, ImageEmbedder, ``edge-dct embed``,
the flatbuffer edit that exposes the pooled features, and examples/find_similar.py.

Real LiteRT on the real embedded bundle and the shared photos throughout.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

import edge_dct
from edge_dct import heads
from edge_dct.bundle import DEFAULT_MODEL, ModelBundle
from edge_dct.embedder import QUANTIZED_SCALE, quantize_embedding
from edge_dct.errors import InvalidArgumentError, ModelError
from edge_dct.runtime import Runner
from tests.conftest import ROOT, clothing_photos

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no embedded model")

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def photos(corpus_available):
    return clothing_photos()


@pytest.fixture(scope="module")
def embedder():
    with edge_dct.ImageEmbedder.create_from_options(edge_dct.ImageEmbedderOptions()) as e:
        yield e


def _without_embed(content: bytes) -> bytes:
    """The default bundle as it was before embeddings: one signature, one output."""
    import flatbuffers

    m = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    m.signatureDefs = [s for s in m.signatureDefs if s.signatureKey != b"embed"]
    m.subgraphs = m.subgraphs[:1]
    b = flatbuffers.Builder(len(content) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_default_bundle_has_embed_signature_next_to_unchanged_serving() -> None:
    content = DEFAULT_MODEL.read_bytes()
    interp = Interpreter(model_content=content)
    sigs = interp.get_signature_list()
    assert list(sigs) == ["serving_default", "embed"]  # signature 0 is what Android runs
    assert sigs["serving_default"]["outputs"] == ["logits"]
    assert sorted(sigs["embed"]["outputs"]) == ["embedding", "logits"]
    head = heads.find_head(content)
    assert head.features == 1280 and len(head.operators) == 1
    assert len(schema.ModelT.InitFromPackedBuf(bytearray(content), 0).subgraphs) == 2
    out = interp.get_signature_runner("embed").get_output_details()
    assert list(out["embedding"]["shape"]) == [1, 1280] and out["embedding"]["dtype"] == np.int8
    assert heads.has_embedding(content) and len(content) < 6e6


def test_expose_embedding_is_idempotent_and_keeps_logits(photos) -> None:
    content = DEFAULT_MODEL.read_bytes()
    old = _without_embed(content)
    assert not heads.has_embedding(old)
    again = heads.expose_embedding(old)
    assert heads.has_embedding(again)
    assert heads.expose_embedding(again) == heads.expose_embedding(heads.expose_embedding(again))
    plain, edited = Runner(ModelBundle.load(old)), Runner(ModelBundle.load(again), signature="embed")
    for p in photos[:4]:
        t = edge_dct.prepare(p, plain.bundle.spec, dtype=np.int8, quantization=plain.quantization)
        np.testing.assert_array_equal(plain.run(t), edited.run_all(t)["logits"])
    with pytest.raises(ModelError, match="no 'embed' signature.*expose_embedding") as e:
        edge_dct.ImageEmbedder(edge_dct.ImageEmbedderOptions(edge_dct.BaseOptions(model=old)))
    assert e.value.source == "<bytes>"


def test_embed_matches_classify_and_is_sensible(embedder, photos) -> None:
    clf = edge_dct.Classifier.create_from_model_path(str(DEFAULT_MODEL), max_results=1)
    res, logits = embedder.embed_with_logits(photos[0])
    assert res.embedding.shape == (1280,) and res.embedding.dtype == np.float32
    assert res.embedding.min() >= 0 and res.embedding.max() > 0  # pooled ReLU6 features
    assert int(np.argmax(logits)) == clf.classify(photos[0]).top.index
    assert res.source == str(photos[0]) and res.timing.inference_ms > 0
    assert embedder.dimension == 1280 and res.embeddings[0].head_name == "embedding"
    clf.close()


def test_options_normalize_and_quantize(photos) -> None:
    plain = edge_dct.ImageEmbedder.create_from_model_path(None)
    unit = edge_dct.ImageEmbedder.create_from_model_path(str(DEFAULT_MODEL), l2_normalize=True)
    quant = edge_dct.ImageEmbedder.create_from_model_path(DEFAULT_MODEL, quantize=True)
    worst = 1.0
    for p in photos:
        f, u, q = plain.embed(p), unit.embed(p), quant.embed(p)
        assert abs(np.linalg.norm(u.embedding) - 1) < 1e-5
        assert q.embedding.dtype == np.int8 and q.embeddings[0].quantized
        np.testing.assert_array_equal(q.embedding, quantize_embedding(f.embedding))
        assert edge_dct.ImageEmbedder.cosine_similarity(q, q) == pytest.approx(1.0)
        worst = min(worst, edge_dct.ImageEmbedder.cosine_similarity(f.embeddings[0], q.embeddings[0]))
    assert worst >= 0.99, worst  # the bar: quantized self-similarity
    assert np.abs(quant.embed(photos[0]).embedding).max() <= QUANTIZED_SCALE
    for e in (plain, unit, quant):
        e.close()


def test_similar_photos_are_closer_than_different_ones(embedder, photos) -> None:
    src = Image.open(photos[0])
    buf = io.BytesIO()
    src.resize((src.width * 3 // 4, src.height * 3 // 4)).save(buf, "JPEG", quality=60)
    a, copy = embedder.embed(photos[0]), embedder.embed(buf.getvalue())
    cos = edge_dct.ImageEmbedder.cosine_similarity
    same = cos(a, copy)
    others = [cos(a, embedder.embed(p)) for p in photos[1:12]]
    assert same > 0.95 and same > max(others) + 0.2, (same, max(others))


def test_batch_keeps_order_and_reports_failures(embedder, photos) -> None:
    srcs = [str(p) for p in photos[:6]] + [b"not a jpeg"]
    out = embedder.embed_batch(srcs, workers=3, return_exceptions=True)
    assert isinstance(out[-1], edge_dct.InvalidJpegError)
    for p, r in zip(photos[:6], out):
        np.testing.assert_array_equal(r.embedding, embedder.embed(p).embedding)
    with pytest.raises(edge_dct.InvalidJpegError, match="<bytes>"):
        embedder.embed_batch(srcs, workers=2)


def test_cosine_similarity_errors() -> None:
    cos = edge_dct.ImageEmbedder.cosine_similarity
    assert cos(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert cos(np.array([1, 2], np.int8), np.array([2.0, 4.0])) == pytest.approx(1.0)
    with pytest.raises(InvalidArgumentError, match="different lengths"):
        cos(np.ones(3), np.ones(4))
    with pytest.raises(InvalidArgumentError, match="zero vector"):
        cos(np.zeros(3), np.ones(3))
    with pytest.raises(InvalidArgumentError, match="1-D"):
        cos(np.ones((2, 2)), np.ones(4))


def test_lifecycle_and_errors(photos) -> None:
    e = edge_dct.ImageEmbedder.create_from_model_path(None)
    e.close()
    e.close()
    with pytest.raises(RuntimeError, match="ImageEmbedder is closed"):
        e.embed(photos[0])
    with pytest.raises(ModelError, match="cannot read model"):
        edge_dct.ImageEmbedder.create_from_model_path("/nonexistent.tflite")
    with edge_dct.ImageEmbedder.create_from_model_path(None) as e:
        with pytest.raises(edge_dct.InvalidJpegError):
            e.embed(b"\xff\xd8garbage")


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_dct", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_embed_npy_and_jsonl(tmp_path, photos, embedder) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for p in photos[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(photos[3].read_bytes()[:200])
    r = _cli("embed", folder, "--out", tmp_path / "v.npy")
    assert r.returncode == 1 and "broken.jpg" in r.stderr and "3 embedded, 1 failed" in r.stderr
    matrix = np.load(tmp_path / "v.npy")
    names = (tmp_path / "v.txt").read_text().split()
    assert matrix.shape == (3, 1280) and len(names) == 3
    np.testing.assert_allclose(matrix[0], embedder.embed(names[0]).embedding, rtol=1e-6)
    r = _cli("embed", photos[0], "--out", tmp_path / "v.jsonl", "--quantize")
    assert r.returncode == 0, r.stderr
    row = json.loads((tmp_path / "v.jsonl").read_text().splitlines()[0])
    assert row["file"] == str(photos[0]) and len(row["embedding"]) == 1280
    assert all(isinstance(v, int) for v in row["embedding"])
    r = _cli("embed", photos[0], "--out", tmp_path / "v.csv")
    assert r.returncode == 2 and ".npy or .jsonl" in r.stderr


def test_find_similar_example(tmp_path, photos) -> None:
    for p in photos[:8]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    src = Image.open(photos[2])
    src.resize((src.width // 2, src.height // 2)).save(tmp_path / "copy.jpg", quality=70)
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "find_similar.py"), str(tmp_path),
                        "--k", "2", "--json", str(tmp_path / "out.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    pairs = {frozenset(p[:2]) for p in report["pairs"]}
    assert pairs == {frozenset((str(tmp_path / photos[2].name), str(tmp_path / "copy.jpg")))}
    assert report["neighbours"][str(tmp_path / "copy.jpg")][0][0] == str(tmp_path / photos[2].name)
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "find_similar.py"), str(tmp_path),
                        "--query", str(tmp_path / "copy.jpg"), "--k", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and photos[2].name in r.stdout.split("nearest neighbours")[1]
