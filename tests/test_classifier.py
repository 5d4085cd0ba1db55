"""Classifier and runtime: real LiteRT on the embedded bundle and real photos."""

from __future__ import annotations

import gc
import io
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import edge_dct
from edge_dct.bundle import DEFAULT_MODEL, ModelBundle, ModelError
from edge_dct.classifier import BaseOptions, Classifier, ClassifierOptions, classify
from edge_dct.runtime import AcceleratorUnavailableError, Runner, runtime_info
from tests.conftest import CORPUS, ROOT, clothing_photos

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no embedded model")


@pytest.fixture(scope="module")
def clf():
    options = ClassifierOptions(base_options=BaseOptions(num_threads=2), max_results=5)
    with Classifier.create_from_options(options) as c:
        yield c


def test_runtime_is_litert() -> None:
    info = runtime_info()
    assert info.backend == "ai_edge_litert"


def test_classify_photo(clf: Classifier) -> None:
    res = clf.classify(clothing_photos()[0])
    assert len(res.categories) == 5
    scores = [c.score for c in res.categories]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    assert all(c.label == clf.labels[c.index] for c in res.categories)
    assert res.timing.prepare_ms > 0 and res.timing.inference_ms > 0
    assert res.source.endswith(".jpg")
    assert clf.spec.labels and len(clf.labels) == 1000


def test_embedded_labels_are_distinct(clf: Classifier) -> None:
    """No two classes print the same label (ImageNet's maillot, crane, Cardigan/cardigan)."""
    assert len({label.lower() for label in clf.labels}) == len(clf.labels) == 1000
    assert {"maillot", "maillot, tank suit", "crane (bird)", "crane (machine)"} <= set(clf.labels)


def test_sensible_imagenet_labels(clf: Classifier) -> None:
    """Clothing photos land on clothing-like ImageNet classes."""
    clothing = {"jersey", "sweatshirt", "cardigan", "suit", "jean", "miniskirt", "trench coat",
                "overskirt", "hoopskirt", "sarong", "kimono", "abaya", "cowboy hat", "sombrero",
                "running shoe", "sandal", "loafer", "clog", "cowboy boot", "Loafer", "swimming trunks",
                "bow tie", "brassiere", "maillot", "maillot, tank suit", "gown", "poncho", "lab coat", "apron", "pajama",
                "wool", "velvet", "bonnet", "shower cap", "mitten", "sock", "stole", "fur coat",
                "military uniform", "bulletproof vest", "academic gown", "Windsor tie", "bikini",
                "Christmas stocking", "backpack", "mailbag", "purse", "crash helmet", "football helmet"}
    hits = 0
    photos = clothing_photos()
    for p in photos:
        labels = {c.label for c in clf.classify(p).categories}
        hits += bool(labels & clothing)
    assert hits >= 0.7 * len(photos), hits


def test_int8_input_and_dequantized_softmax(clf: Classifier) -> None:
    """The runner's logits equal the interpreter's raw int8 output dequantized by hand."""
    runner = clf._runner
    assert runner.input_dtype == np.int8
    t = edge_dct.prepare(clothing_photos()[1], clf.spec, dtype=np.int8,
                         quantization=runner.quantization)
    raw = next(iter(runner._runner(**t).values())).reshape(-1).astype(np.float64)
    by_hand = (raw - runner.output.zero_point) * runner.output.scale
    logits = runner.run(t)
    np.testing.assert_allclose(logits, by_hand, rtol=1e-6)
    res = clf.classify(clothing_photos()[1])
    soft = np.exp(by_hand - by_hand.max())
    soft /= soft.sum()
    assert res.categories[0].index == int(np.argmax(by_hand))
    assert abs(res.categories[0].score - soft.max()) < 1e-6


def test_options(clf: Classifier) -> None:
    photo = clothing_photos()[2]
    full = clf.classify(photo).categories
    with Classifier(ClassifierOptions(max_results=-1)) as c:
        assert len(c.classify(photo).categories) == 1000
    with Classifier(ClassifierOptions(max_results=2, score_threshold=full[1].score)) as c:
        assert [x.index for x in c.classify(photo).categories] == [x.index for x in full[:2]]
    with Classifier(ClassifierOptions(category_allowlist=[full[3].label, full[4].label])) as c:
        assert [x.label for x in c.classify(photo).categories] == [full[3].label, full[4].label]
    with Classifier(ClassifierOptions(category_denylist=[full[0].label])) as c:
        assert c.classify(photo).categories[0].label == full[1].label
    with pytest.raises(edge_dct.InvalidArgumentError, match="mutually exclusive"):
        ClassifierOptions(category_allowlist=["a"], category_denylist=["b"])
    with pytest.raises(edge_dct.InvalidArgumentError, match="accelerator"):
        BaseOptions(accelerator="tpu")
    with pytest.raises(ValueError, match="num_threads"):
        BaseOptions(num_threads=0)
    with pytest.raises(ValueError, match="max_results"):
        ClassifierOptions(max_results=0)


def test_accelerators() -> None:
    bundle = ModelBundle.load()
    auto = Runner(bundle, accelerator="auto")
    assert auto.accelerator in ("cpu", "gpu")
    with pytest.raises(AcceleratorUnavailableError, match="libedgetpu"):
        Runner(bundle, accelerator="edgetpu")
    with pytest.raises(AcceleratorUnavailableError, match="nonexistent"):
        Runner(bundle, accelerator="gpu", delegate_path="/nonexistent/libgpu_delegate.so")
    try:
        gpu = Runner(bundle, accelerator="gpu")
        assert gpu.accelerator == "gpu"
    except AcceleratorUnavailableError as e:
        assert "gpu" in str(e)


def _patched(old: bytes, new: bytes) -> bytes:
    data = DEFAULT_MODEL.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    return data.replace(old, new, 1)


@pytest.mark.parametrize("model, match", [
    (b"", "not a TFLite model"),
    (b"garbage" * 10, "not a TFLite model"),
    ("/nonexistent/model.tflite", "cannot read model"),
    ("truncated", "corrupt|bad offsets|no data"),
    ("no-metadata", "not an edge_dct bundle"),
    ("bad-layout", "layout"),
    ("bad-grid", "disagree"),
])
def test_model_errors(model, match: str) -> None:
    if model == "truncated":
        model = DEFAULT_MODEL.read_bytes()[:len(DEFAULT_MODEL.read_bytes()) // 3]
    elif model == "no-metadata":
        model = _patched(b"edge_dct\x00", b"edge_xyz\x00")
    elif model == "bad-layout":
        model = _patched(b'"layout":"split"', b'"layout":"spilt"')
    elif model == "bad-grid":
        model = _patched(b'"grid":[28,28]', b'"grid":[26,28]')
    with pytest.raises(ModelError, match=match):
        Classifier(ClassifierOptions(base_options=BaseOptions(model=model)))


def test_lifecycle() -> None:
    c = Classifier(ClassifierOptions())
    c.close()
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.classify(clothing_photos()[0])


def test_bad_images_raise_typed_errors(clf: Classifier) -> None:
    with pytest.raises(edge_dct.UnsupportedJpegError, match="monkey12"):
        clf.classify(CORPUS / "conformance/libjpeg-turbo/monkey12.jpg")
    with pytest.raises(edge_dct.InvalidJpegError):
        clf.classify(b"\xff\xd8 not really")
    res = clf.classify_batch([clothing_photos()[0], b"junk", clothing_photos()[1]],
                             return_exceptions=True)
    assert isinstance(res[1], edge_dct.InvalidJpegError) and res[0].categories and res[2].categories


def test_batch_keeps_order(clf: Classifier) -> None:
    photos = clothing_photos()[:12]
    serial = [clf.classify(p).categories for p in photos]
    batch = [r.categories for r in clf.classify_batch(photos, workers=4)]
    assert serial == batch


def test_threads_stress_identical_and_no_leak(clf: Classifier) -> None:
    """8 threads x 200 images on one Classifier == serial results; RSS stays flat."""
    photos = [p.read_bytes() for p in clothing_photos()]
    expected = [clf.classify(p).categories for p in photos]
    errors: list[str] = []

    def worker(seed: int) -> None:
        for i in range(200):
            k = (seed * 7 + i) % len(photos)
            got = clf.classify(photos[k]).categories
            if got != expected[k]:
                errors.append(f"thread {seed} image {k}")

    def run() -> None:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run()
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    gc.collect()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert not errors, errors[:5]
    assert grown < 30, f"peak RSS grew {grown:.1f} MB over 1600 more classifications"


def test_module_level_classify() -> None:
    a = classify(clothing_photos()[0], max_results=3)
    b = edge_dct.classify(io.BytesIO(clothing_photos()[0].read_bytes()), max_results=3)
    assert [c.index for c in a.categories] == [c.index for c in b.categories]
    assert len(a.categories) == 3


def test_classify_cache_shares_one_interpreter_across_result_options(monkeypatch) -> None:
    """classify()'s cache is keyed on model content + runtime settings only."""
    from edge_dct import classifier

    monkeypatch.setattr(classifier, "_cache", classifier._ClassifierCache(classifier.CACHE_SIZE))
    runners = []
    real_runner = classifier.Runner

    def counting_runner(*args, **kwargs):
        runners.append(real_runner(*args, **kwargs))
        return runners[-1]

    monkeypatch.setattr(classifier, "Runner", counting_runner)
    photo = clothing_photos()[0]
    one = classify(photo, max_results=1)
    four = classify(photo, max_results=4, score_threshold=0.0)
    as_bytes = classify(photo, model=DEFAULT_MODEL.read_bytes(), max_results=2)  # same content
    denied = classify(photo, model=str(DEFAULT_MODEL), category_denylist=[one.top.label])
    assert len(runners) == 1 and len(classifier._cache) == 1
    assert len(one.categories) == 1 and len(four.categories) == 4 and len(as_bytes.categories) == 2
    assert four.categories[0] == one.categories[0] == as_bytes.categories[0]
    assert denied.top.label != one.top.label
    classify(photo, num_threads=1)  # a runtime setting: a second interpreter
    assert len(runners) == 2


def test_classify_cache_is_bounded_and_closes_what_it_evicts(monkeypatch) -> None:
    from edge_dct import classifier

    cache = classifier._ClassifierCache(classifier.CACHE_SIZE)
    monkeypatch.setattr(classifier, "_cache", cache)
    made: list[Classifier] = []

    class Recorded(Classifier):
        def __init__(self, options):
            super().__init__(options)
            made.append(self)

    monkeypatch.setattr(classifier, "Classifier", Recorded)
    photo = clothing_photos()[0]
    for threads in range(1, classifier.CACHE_SIZE + 2):
        classify(photo, num_threads=threads)
    assert len(made) == classifier.CACHE_SIZE + 1 and len(cache) == classifier.CACHE_SIZE
    assert made[0]._closed and not any(c._closed for c in made[1:])
    classify(photo, num_threads=1)  # evicted: built again, and the oldest left goes
    assert len(made) == classifier.CACHE_SIZE + 2 and made[1]._closed


def test_cache_closes_an_evicted_classifier_only_when_unused() -> None:
    from edge_dct.classifier import _ClassifierCache

    class Fake:
        closed = False

        def close(self) -> None:
            self.closed = True

    cache = _ClassifierCache(1)
    with cache.use("a", Fake) as a:
        with cache.use("b", Fake) as b:  # evicts "a" while a call still uses it
            assert not a.closed
        assert not a.closed and not b.closed
    assert a.closed and not b.closed and len(cache) == 1


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_dct", *args], cwd=ROOT, input=stdin,
                          capture_output=True, timeout=300)


def _edge_dct_command(*args: str, verbose_env: str | None = None) -> subprocess.CompletedProcess:
    """The installed ``edge-dct`` script (``python -m edge_dct`` where it is not installed)."""
    script = Path(sys.executable).with_name("edge-dct")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "edge_dct"]
    env = {k: v for k, v in os.environ.items() if k != "EDGE_DCT_VERBOSE"}
    if verbose_env is not None:
        env["EDGE_DCT_VERBOSE"] = verbose_env
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, timeout=300, env=env)


def test_cli_stderr_holds_no_runtime_logs_unless_verbose() -> None:
    photo = str(clothing_photos()[0])
    for accelerator in ("cpu", "auto"):
        r = _edge_dct_command("classify", "--accelerator", accelerator, photo)
        assert r.returncode == 0 and r.stdout.startswith(photo.encode()), r.stderr
        assert r.stderr == b"", r.stderr  # no INFO:, no DestroyAccelerator, no probe noise
    r = _edge_dct_command("classify", photo, "/nonexistent/photo.jpg")  # our messages stay
    assert r.returncode == 1 and b"INFO:" not in r.stderr
    assert b"error: /nonexistent/photo.jpg: cannot read file" in r.stderr
    assert b"1 classified, 1 failed" in r.stderr
    verbose = _edge_dct_command("classify", "--verbose", photo)
    assert verbose.returncode == 0
    assert b"INFO: Created TensorFlow Lite XNNPACK delegate" in verbose.stderr
    env = _edge_dct_command("classify", photo, verbose_env="1")
    assert b"INFO: Created TensorFlow Lite XNNPACK delegate" in env.stderr


def test_cli_classify() -> None:
    photo = str(clothing_photos()[0])
    r = _cli("classify", "--json", "--top-k", "2", photo)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.decode().splitlines()[0])
    assert len(row["categories"]) == 2 and row["file"] == photo
    r = _cli("classify", "--csv", "--top-k", "1", str(CORPUS / "photos/clothing/hat"),
             str(CORPUS / "conformance/libjpeg-turbo/monkey12.jpg"))
    assert r.returncode == 1  # one file failed, the others were classified
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("file,rank") and len(lines) == 1 + 4
    assert b"monkey12.jpg" in r.stderr and b"4 classified, 1 failed" in r.stderr
    r = _cli("classify", "-", stdin=clothing_photos()[0].read_bytes())
    assert r.returncode == 0 and r.stdout.startswith(b"<stdin>:")
    r = _cli("classify", "--model", "/nonexistent.tflite", photo)
    assert r.returncode == 2 and b"cannot read model" in r.stderr
    r = _cli("models")
    assert r.returncode == 0 and b"(default)" in r.stdout and b"ai_edge_litert" in r.stdout


def test_backend_order_reports_broken_tflite_runtime(tmp_path, monkeypatch) -> None:
    """Without ai_edge_litert, a tflite_runtime built for numpy 1.x is detected and named."""
    from edge_dct import runtime

    pkg = tmp_path / "tflite_runtime"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "interpreter.py").write_text(
        "raise AttributeError('_ARRAY_API not found (module compiled against numpy 1.x)')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in list(sys.modules):
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # "not installed"
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    runtime._backend.cache_clear()
    try:
        with pytest.raises(runtime.RuntimeUnavailableError) as err:
            runtime.runtime_info()
        text = str(err.value)
        assert "ai_edge_litert" in text and "numpy" in text and "tflite_runtime" in text
    finally:
        runtime._backend.cache_clear()
