"""Training your own classes: data sets and their bad inputs, the numpy head, the flatbuffer
head edit (against numpy's int8 arithmetic and against the TensorFlow converter), and the whole
loop on tiny data sets built from the shared clothing photos (train, export, reload, classify,
metrics, ``edge-dct train``, the Android bridge).

Real LiteRT on real bundles; no mocks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_dct
from edge_dct import heads
from edge_dct.bundle import DEFAULT_MODEL, ModelBundle, read_metadata
from edge_dct.datasets import duplicates_across, load_dataset, split_dataset
from edge_dct.errors import DatasetError, InvalidArgumentError
from edge_dct.head_training import HeadOptions, train_head
from edge_dct.runtime import Runner
from tests.conftest import CLOTHING, ROOT, clothing_photos

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no embedded model")


def _copy_classes(dst: Path, classes: list[str], per_class: int = 4) -> Path:
    for c in classes:
        (dst / c).mkdir(parents=True)
        for p in sorted((CLOTHING / c).glob("*.jpg"))[:per_class]:
            shutil.copy(p, dst / c / p.name)
    return dst


@pytest.fixture(scope="module")
def clothing_dir(corpus_available) -> Path:
    return CLOTHING


@pytest.fixture(scope="module")
def trained(tmp_path_factory, clothing_dir):
    """The whole loop once on the 10 clothing classes (40 photos)."""
    out = tmp_path_factory.mktemp("trained") / "clothing.tflite"
    result = edge_dct.train_classifier(clothing_dir, out, augment=2, seed=0, progress=False)
    return result, out


# -- data sets ----------------------------------------------------------------------------
def test_folder_per_class_and_seeded_stratified_split(clothing_dir) -> None:
    ds = load_dataset(clothing_dir)
    assert len(ds.labels) == 10 and len(ds.examples) == 40 and not ds.skipped
    assert all(n == 4 for n in ds.counts().values())
    a = split_dataset(ds, validation=0.25, test=0.25, seed=1)
    b = split_dataset(ds, validation=0.25, test=0.25, seed=1)
    c = split_dataset(ds, validation=0.25, test=0.25, seed=2)
    assert a == b and a != c
    for split, n in (("train", 20), ("validation", 10), ("test", 10)):
        assert len(a[split]) == n and {e.label for e in a[split]} == set(ds.labels)  # stratified
    assert not duplicates_across(a)
    assert sum(len(v) for v in a.values()) == 40
    with pytest.raises(InvalidArgumentError, match="fractions"):
        split_dataset(ds, validation=0.6, test=0.5)


def test_csv_with_header_and_given_splits(tmp_path, clothing_dir) -> None:
    photos = clothing_photos()
    rows = ["path,label,split"]
    for i, p in enumerate(photos[:16]):
        rows.append(f"{p},{p.parent.name},{'test' if i % 4 == 0 else 'train'}")
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(tmp_path / "d.csv")
    assert ds.given_splits and len(ds.labels) == 4
    s = split_dataset(ds, validation=0.25, test=0.5)  # validation drawn from train; test given
    assert len(s["test"]) == 4 and len(s["validation"]) == 4 and len(s["train"]) == 8
    rel = tmp_path / "rel"
    _copy_classes(rel, ["hat", "shoes"], 2)
    (rel / "list.csv").write_text("hat/" + "\nhat/".join(p.name for p in (rel / "hat").iterdir())
                                  .replace(".jpg", ".jpg,hat") + "\n" + "\n".join(
        f"shoes/{p.name},shoes" for p in (rel / "shoes").iterdir()))
    assert load_dataset(rel / "list.csv").counts() == {"hat": 2, "shoes": 2}
    (tmp_path / "bad.csv").write_text("only_a_path.jpg\n")
    with pytest.raises(DatasetError, match="row 1 is not 'path,label") as e:
        load_dataset(tmp_path / "bad.csv")
    assert e.value.source == str(tmp_path / "bad.csv")


def test_bad_inputs_get_clear_messages(tmp_path, clothing_dir) -> None:
    d = _copy_classes(tmp_path / "d", ["hat", "shoes"])
    (d / "empty").mkdir()
    with pytest.raises(DatasetError, match="class folder 'empty' has no files") as e:
        load_dataset(d)
    assert e.value.source == str(d / "empty")
    (d / "empty").rmdir()
    (d / "hat" / "notes.txt").write_text("not a photo")
    (d / "hat" / "truncated.jpg").write_bytes(b"\xff\xd8\xff")
    os.symlink(d / "missing.jpg", d / "shoes" / "dangling.jpg")
    ds = load_dataset(d)
    reasons = dict(ds.skipped)
    assert set(reasons) == {str(d / "hat" / "notes.txt"), str(d / "hat" / "truncated.jpg"),
                            str(d / "shoes" / "dangling.jpg")}
    assert "not a usable JPEG" in reasons[str(d / "hat" / "notes.txt")]
    assert "unreadable" in reasons[str(d / "shoes" / "dangling.jpg")]
    assert ds.counts() == {"hat": 4, "shoes": 4}
    one = _copy_classes(tmp_path / "one", ["hat"])
    with pytest.raises(DatasetError, match="at least two classes, found one: 'hat'"):
        load_dataset(one)
    junk = tmp_path / "junk"
    for c in ("a", "b"):
        (junk / c).mkdir(parents=True)
        (junk / c / "x.jpg").write_bytes(b"GIF89a")
    with pytest.raises(DatasetError, match="no usable JPEG photos; 2 files skipped"):
        load_dataset(junk)
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(tmp_path / "nowhere")
    (junk / "a" / "x.jpg").write_bytes(clothing_photos()[0].read_bytes())
    with pytest.raises(DatasetError, match="'b' have no usable JPEG"):
        load_dataset(junk)


def test_duplicates_across_given_splits_are_detected(tmp_path, clothing_dir) -> None:
    root = tmp_path / "d"
    _copy_classes(root / "train", ["hat", "shoes"])
    _copy_classes(root / "test", ["hat", "shoes"], 1)  # the first photo of each: in train too
    extra = sorted((CLOTHING / "hat").glob("*.jpg"))[0]
    shutil.copy(extra, root / "train" / "shoes" / "mislabelled.jpg")  # same bytes, other label
    ds = load_dataset(root)
    assert ds.given_splits
    why = dict(ds.duplicates)
    assert any("no leak into evaluation" in w for w in why.values())
    assert any("labelled differently" in w for w in why.values())
    s = split_dataset(ds, validation=0.0, test=0.0)
    assert not duplicates_across(s)
    assert s["test"] == []  # both test photos are copies of training photos
    assert ds.counts() == {"hat": 3, "shoes": 4}  # the photo labelled both ways is left out
    assert all(e.path != str(root / "train" / "shoes" / "mislabelled.jpg")
               for split in s.values() for e in split)


# -- the numpy head ------------------------------------------------------------------------
def _blobs(n: int, d: int, c: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 2, (c, d))
    y = rng.integers(0, c, n)
    return np.maximum(centres[y] + rng.normal(0, 0.6, (n, d)), 0).astype(np.float32), y


@pytest.mark.parametrize("hidden", [0, 16])
def test_head_learns_and_stops_early(hidden: int) -> None:
    x, y = _blobs(600, 64, 4, 0)
    xv, yv = _blobs(200, 64, 4, 0)
    opts = HeadOptions(hidden_units=hidden, max_epochs=400, patience=5, seed=3)
    head = train_head(x[:400], y[:400], x[400:], y[400:], 4, opts)
    assert (head.predict(x[400:]) == y[400:]).mean() > 0.9
    assert head.best_epoch < len(head.history) <= 400 and len(head.history) < 400
    again = train_head(x[:400], y[:400], x[400:], y[400:], 4, opts)
    np.testing.assert_array_equal(head.layers[0][0], again.layers[0][0])  # seeded
    assert len(head.layers) == (2 if hidden else 1)
    with pytest.raises(InvalidArgumentError, match="labels must lie"):
        train_head(x, y + 10, None, None, 4)
    with pytest.raises(InvalidArgumentError):
        HeadOptions(dropout=1.5)


# -- the flatbuffer edit -------------------------------------------------------------------
def _int8_fc(q_in: np.ndarray, in_q: heads.Quantization, layer: heads.DenseLayer) -> np.ndarray:
    """TFLite's int8 fully connected layer in numpy (float requantization; int8 rounding)."""
    ql = heads.quantized_layer(layer, in_q)
    acc = (q_in.astype(np.int64) - in_q.zero_point) @ ql["weights"].T.astype(np.int64) + ql["bias"]
    real = acc * ql["bias_scale"].astype(np.float64)
    if layer.relu:
        real = np.maximum(real, 0)
    return layer.output.quantize(real)


@pytest.fixture(scope="module")
def embeddings(corpus_available):
    with edge_dct.ImageEmbedder.create_from_model_path(None) as e:
        raw = []
        runner = e._runner
        for p in clothing_photos():
            t, _ = e._tensors(p.read_bytes(), str(p))
            raw.append(runner.run_raw(t)["embedding"])
    head = heads.find_head(DEFAULT_MODEL.read_bytes())
    return np.stack(raw).astype(np.int8), head.quantization


def test_replace_head_matches_int8_arithmetic(embeddings) -> None:
    q_emb, in_q = embeddings
    rng = np.random.default_rng(0)
    hidden = heads.DenseLayer(rng.normal(0, 0.05, (1280, 24)), rng.normal(0, 0.1, 24),
                              heads.Quantization.from_range(0, 3), relu=True)
    last = heads.DenseLayer(rng.normal(0, 0.3, (24, 3)), rng.normal(0, 0.1, 3),
                            heads.Quantization.from_range(-4, 4))
    content = heads.replace_head(DEFAULT_MODEL.read_bytes(), [hidden, last], ["a", "b", "c"],
                                 metadata={"head": {"test": True}})
    assert read_metadata(content, "x")["labels"] == ["a", "b", "c"]
    assert read_metadata(content, "x")["head"] == {"test": True}
    assert len(content) < 5e6  # the 1000-class weights are gone
    bundle = ModelBundle.load(content)
    runner = Runner(bundle, signature="embed")
    for p, qe in zip(clothing_photos()[:10], q_emb):
        t = edge_dct.prepare(p, bundle.spec, dtype=np.int8, quantization=runner.quantization)
        out = runner.run_raw(t)
        np.testing.assert_array_equal(out["embedding"], qe)  # the backbone is untouched
        ref = _int8_fc(_int8_fc(qe[None], in_q, hidden), hidden.output, last)[0]
        assert np.abs(out["logits"].astype(int) - ref.astype(int)).max() <= 1  # rounding
    twice = heads.replace_head(content, [last.__class__(rng.normal(0, .1, (1280, 2)), np.zeros(2),
                                                         last.output)], ["x", "y"])
    assert heads.find_head(twice).operators == (70,) and ModelBundle.load(twice).labels == ("x", "y")
    with pytest.raises(InvalidArgumentError, match="do not take 1280 inputs"):
        heads.replace_head(content, [last], ["a", "b", "c"])
    with pytest.raises(InvalidArgumentError, match="3 outputs for 2 labels"):
        heads.replace_head(content, [hidden, last], ["a", "b"])


def test_replace_head_agrees_with_the_tensorflow_converter(embeddings, tmp_path) -> None:
    """The same trained head converted by TFLiteConverter (int8, calibrated on the same
    embeddings) gives the same logits as the flatbuffer edit, within int8 rounding."""
    tf = pytest.importorskip("tensorflow")
    q_emb, in_q = embeddings
    feats = in_q.dequantize(q_emb)
    labels = np.array([clothing_photos().index(p) // 4 for p in clothing_photos()])
    head = train_head(feats, labels, feats, labels, 10, HeadOptions(max_epochs=60, seed=0))
    (layer,) = head.dense_layers(feats)
    inp = tf.keras.Input((1280,), name="embedding")
    dense = tf.keras.layers.Dense(10, name="logits")
    model = tf.keras.Model(inp, dense(inp))
    dense.set_weights([layer.weights, layer.bias])
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([f[None]] for f in feats)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    from ai_edge_litert.interpreter import Interpreter

    ref = Interpreter(model_content=conv.convert())
    ref.allocate_tensors()
    i_d, o_d = ref.get_input_details()[0], ref.get_output_details()[0]
    ref_in = heads.Quantization(*i_d["quantization"])
    ref_out = heads.Quantization(*o_d["quantization"])
    ours = heads.replace_head(DEFAULT_MODEL.read_bytes(), [layer], [f"c{i}" for i in range(10)])
    bundle = ModelBundle.load(ours)
    runner = Runner(bundle, signature="embed")
    out_q = runner.outputs["logits"]
    diffs, agree = [], 0
    for p, f in zip(clothing_photos(), feats):
        t = edge_dct.prepare(p, bundle.spec, dtype=np.int8, quantization=runner.quantization)
        mine = runner.run_all(t)["logits"]
        ref.set_tensor(i_d["index"], ref_in.quantize(f)[None])
        ref.invoke()
        theirs = ref_out.dequantize(ref.get_tensor(o_d["index"])[0])
        diffs.append(np.abs(mine - theirs).max())
        agree += int(mine.argmax() == theirs.argmax())
    step = max(out_q.scale, ref_out.scale)
    assert max(diffs) <= 3 * step + 2 * ref_in.scale * np.abs(layer.weights).sum(0).max() / 10, \
        (max(diffs), step)
    assert np.median(diffs) <= 1.5 * step
    assert agree >= 39  # of 40


# -- the whole loop ------------------------------------------------------------------------
def test_whole_loop_train_export_reload_classify(trained, clothing_dir) -> None:
    result, out = trained
    assert result.model_path == str(out) and out.stat().st_size == result.size_bytes <= 6e6
    assert result.labels == tuple(sorted(p.name for p in clothing_dir.iterdir() if p.is_dir()))
    assert result.split_sizes == {"train": 30, "validation": 0, "test": 10}
    assert result.embedding_views == 30 * 3 + 10
    assert result.metrics["train"].accuracy == 1.0  # 3 photos a class are memorized
    test = result.metrics["test"]
    assert test.count == 10 and test.confusion.sum() == 10 and test.confusion.shape == (10, 10)
    assert test.accuracy >= 0.5  # 10 unseen photos, 10 classes (chance: 0.1)
    assert result.int8_metrics.count == 10 and result.int8_agreement >= 0.9
    assert {c.label for c in test.per_class} == set(result.labels)
    report = result.report()
    assert "confusion (rows: true, columns: predicted)" in report and "precision" in report
    json.dumps(result.to_dict(), default=float)
    meta = read_metadata(out.read_bytes(), str(out))
    assert meta["labels"] == list(result.labels) and meta["head"]["recipe"] == "edge-dct train"
    assert meta["grid"] == [28, 28] and meta["layout"] == "split"
    # reload and classify: the bundle works everywhere a model works
    with edge_dct.Classifier.create_from_model_path(out, max_results=3) as clf:
        train_photo = next(p for p in clothing_photos() if p.parent.name == "shoes")
        assert clf.labels == result.labels
        res = clf.classify(train_photo)
        assert len(res.categories) == 3 and res.categories[0].score > res.categories[1].score
    assert edge_dct.classify(train_photo, model=str(out)).top.label in result.labels
    with edge_dct.ImageEmbedder.create_from_model_path(out) as e, \
            edge_dct.ImageEmbedder.create_from_model_path(None) as base:
        np.testing.assert_array_equal(e.embed(train_photo).embedding, base.embed(train_photo).embedding)
    # memorized training photos come back with their own label through LiteRT
    hits = sum(edge_dct.classify(p, model=str(out)).top.label == p.parent.name
               for p in clothing_photos())
    assert hits >= 36


def test_hidden_layer_bundle_and_given_splits(tmp_path, clothing_dir) -> None:
    root = tmp_path / "d"
    _copy_classes(root / "train", ["hat", "pants", "shoes"], 3)
    for c in ("hat", "pants", "shoes"):
        (root / "val" / c).mkdir(parents=True)
        shutil.copy(sorted((CLOTHING / c).glob("*.jpg"))[3], root / "val" / c / "v.jpg")
    r = edge_dct.Trainer(edge_dct.TrainerOptions(head=HeadOptions(hidden_units=16), augment=1,
                                                 test=0.0, progress=False)
                         ).fit(root, tmp_path / "h.tflite")
    assert r.split_sizes == {"train": 9, "validation": 3, "test": 0}  # test=0: none drawn
    assert "validation" in r.metrics and r.int8_metrics.count == 3
    assert heads.find_head((tmp_path / "h.tflite").read_bytes()).operators == (70, 71)
    losses = [h["val_loss"] for h in r.head.history]  # monitored on the given validation split
    assert r.head.best_epoch == 1 + int(np.argmin(losses))


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_dct", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_train_then_classify(tmp_path, clothing_dir) -> None:
    d = _copy_classes(tmp_path / "d", ["hat", "shoes", "pants"])
    (d / "hat" / "readme.txt").write_text("x")
    whole = next((d / "pants").iterdir()).read_bytes()
    (d / "pants" / "cut.jpg").write_bytes(whole[:len(whole) // 2])  # header fine, data cut
    out = tmp_path / "m.tflite"
    r = _cli("train", d, "--out", out, "--test", "0.25", "--validation", "0", "--augment", "1",
             "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    assert f"skipped {d / 'hat' / 'readme.txt'}: not a usable JPEG" in r.stdout
    assert f"skipped {d / 'pants' / 'cut.jpg'}: failed to decode" in r.stdout
    assert "confusion (rows: true, columns: predicted)" in r.stdout and "int8 bundle" in r.stdout
    assert json.loads((tmp_path / "m.json").read_text())["split_sizes"]["test"] == 3
    r = _cli("classify", "--model", out, "--top-k", "1", next((d / "shoes").iterdir()))
    assert r.returncode == 0 and ": shoes (" in r.stdout, r.stdout + r.stderr
    r = _cli("models", out)
    assert "3 labels" in r.stdout
    one = _copy_classes(tmp_path / "one", ["hat"])
    r = _cli("train", one, "--out", tmp_path / "x.tflite")
    assert r.returncode == 2 and "at least two classes" in r.stderr and "Traceback" not in r.stderr


def test_trained_bundle_runs_on_the_android_bridge(trained) -> None:
    """``make android-host-test`` with the trained bundle: the JNI library and Java API load it,
    and its top-5 equals edge_dct.Classifier's on the shared photos."""
    from tests.test_android_bridge import _make, _need, _need_native

    _need_native()
    _need("javac", "java")
    _, out = trained
    proc = subprocess.run(["make", "-s", "android-host-test", f"AB_MODEL={out}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "HostTest OK" in output and "parity: 40/40" in output


@pytest.mark.skipif(os.environ.get("EDGE_DCT_SLOW_TESTS") != "1",
                    reason="converts a whole network (~3 min): EDGE_DCT_SLOW_TESTS=1")
def test_workstation_finetune_exports_the_same_kind_of_bundle(tmp_path, clothing_dir) -> None:
    """converters.train.finetune: last block + head fine-tuned in PyTorch, int8 bundle out."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    from converters.train.finetune import FinetuneConfig, finetune

    d = _copy_classes(tmp_path / "d", ["hat", "shoes", "pants"])
    out = tmp_path / "tuned.tflite"
    report = finetune(FinetuneConfig(d, out, work=tmp_path / "work", epochs=2, calibration=4,
                                     validation=0.25, test=0.25))
    assert report["finetuned"]["epochs"] >= 1 and report["splits"]["test"] == 3
    assert 0 <= report["finetuned"]["test_top1_int8"] <= 1
    assert heads.has_embedding(out.read_bytes()) and out.stat().st_size <= 6e6
    with edge_dct.Classifier.create_from_model_path(out) as clf:
        assert clf.labels == ("hat", "pants", "shoes")
        assert clf.classify(next((d / "shoes").iterdir())).top.label in clf.labels
    with edge_dct.ImageEmbedder.create_from_model_path(out) as e:
        assert e.embed(next((d / "hat").iterdir())).embedding.shape == (1280,)
