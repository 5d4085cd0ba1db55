"""converters.train (targets, crops, teacher, distill, torch_graph): the distillation path.

Teacher targets computed once in LiteRT, crop geometry shared by student and teacher, the
PyTorch twin of the Keras student, checkpoint and resume. A tiny configuration (8x8 grid,
i.e. 64 px for the teacher, adapter width 32) on synthetic JPEGs laid out like Imagenette.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
cv2 = pytest.importorskip("cv2")
torch = pytest.importorskip("torch")

from converters.data import splits  # noqa: E402
from converters.train import distill, targets  # noqa: E402
from converters.train.crops import crop_of, decode_rgb, teacher_crop  # noqa: E402
from converters.train.evaluation import bundle_fidelity  # noqa: E402
from converters.train.teacher import TEACHER, TEACHER_FEATURE  # noqa: E402
from converters.train.torch_graph import TorchGraph, nchw, to_keras, to_torch  # noqa: E402
from converters.zoo.dct_frontend import dct_to_rgb_input  # noqa: E402
from converters.zoo.registry import build  # noqa: E402
from edge_dct.prepare import prepare  # noqa: E402

from .conftest import synthetic_image  # noqa: E402

GRID = 8
TINY = ["--grid", str(GRID), "--adapter-width", "32", "--batch", "2", "--workers", "2",
        "--threads", "2",
        "--prefetch", "2", "--stats-photos", "4", "--eval-photos", "4", "--log-every", "1",
        "--checkpoint-every", "1", "--eval-every", "100", "--warmup", "1"]


def smooth_photo(height: int, width: int, seed: int) -> np.ndarray:
    """A synthetic photo, blurred so that resampling methods agree closely."""
    return cv2.GaussianBlur(synthetic_image(height, width, seed=seed), (0, 0), 2.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """``imagenette/{train,val}/n01440764/*.jpg`` with a few synthetic photos of varied shape."""
    root = tmp_path_factory.mktemp("data")
    for split, count in (("train", 6), ("val", 4)):
        folder = root / "imagenette" / split / "n01440764"
        folder.mkdir(parents=True)
        for i in range(count):
            h, w = (180, 240) if i % 2 else (256, 200)
            ok, jpg = cv2.imencode(".jpg", smooth_photo(h, w, i), [cv2.IMWRITE_JPEG_QUALITY, 95])
            assert ok
            (folder / f"n01440764_{i}.jpg").write_bytes(jpg.tobytes())
    return root


def exact_rgb(tensors: dict[str, np.ndarray], normalize: dict) -> np.ndarray:
    """The teacher input that the student's coefficients represent (exact IDCT + colour)."""
    import keras

    y = keras.Input(tensors["y"].shape[1:])
    c = keras.Input(tensors["cbcr"].shape[1:])
    model = keras.Model([y, c], dct_to_rgb_input(y, c, normalize))
    return np.asarray(model([tensors["y"], tensors["cbcr"]]))


@pytest.fixture(scope="module")
def target_dir(data: Path, tmp_path_factory) -> Path:
    """Teacher targets of the synthetic photos: 2 variants at grid 8."""
    work = tmp_path_factory.mktemp("targets")
    args = ["--work", str(work), "--data", str(data), "--grid", str(GRID), "--variants", "2", "--chunk", "4"]
    assert targets.main(args) == 0
    return work


def test_targets_complete_and_resume_is_a_no_op(data: Path, target_dir: Path) -> None:
    t = targets.Targets(target_dir)
    assert t.grid == GRID and t.done == [6, 6] and t.valid.all()
    assert t.photos == [str(p.relative_to(data)) for p in splits.training_photos(data)]
    before = np.array(t.logits)
    assert targets.main(["--work", str(target_dir), "--data", str(data), "--grid", str(GRID),
                         "--variants", "2"]) == 0
    np.testing.assert_array_equal(np.array(targets.Targets(target_dir).logits), before)


def test_targets_are_the_keras_teacher_on_the_stored_crop(data: Path, target_dir: Path) -> None:
    import keras

    t = targets.Targets(target_dir)
    teacher = build(TEACHER, image_size=8 * GRID)
    view = keras.Model(teacher.input, [teacher.get_layer(TEACHER_FEATURE).output, teacher.output])
    for v in range(2):
        for i in range(len(t.photos)):
            raw = (data / t.photos[i]).read_bytes()
            window, flip = crop_of(raw, v, i, GRID)
            assert tuple(t.window[v, i]) == pytest.approx(window) and bool(t.hflip[v, i]) == flip
            image = teacher_crop(decode_rgb(raw), window, flip, 8 * GRID)
            feature, logits = view.predict(image, verbose=0)
            np.testing.assert_allclose(t.feature[v, i], feature[0], atol=0.02 + 2e-3 * np.abs(feature).max())
            np.testing.assert_allclose(t.logits[v, i], logits[0], atol=0.02)


def test_teacher_crop_matches_student_window(data: Path, tmp_path: Path) -> None:
    # Full size: no network runs here, and 224 px keeps resampling differences small.
    config = distill.parse_args(["--work", str(tmp_path), "--data", str(data), *TINY, "--grid", "28"])
    photos = splits.training_photos(data)
    spec = distill.resolve_spec(config, photos)
    raw = photos[1].read_bytes()
    flips = set()
    for variant in range(12):
        window, flip = crop_of(raw, variant, 1, 28)
        teacher = teacher_crop(decode_rgb(raw), window, flip, 224)
        assert teacher.shape == (1, 224, 224, 3)
        student_view = exact_rgb(prepare(raw, spec, window=window, hflip=flip), spec.normalize)
        err = np.abs(student_view - teacher).mean()
        mirrored = np.abs(student_view - teacher[:, :, ::-1]).mean()
        assert err < 0.04, (variant, err)  # 5 grey levels: resampling differences only (~0.02)
        assert err < 0.2 * mirrored, (variant, err, mirrored)
        flips.add(flip)
    assert flips == {False, True}


@pytest.mark.parametrize("name", ["efficientnet_lite0_rgb", "efficientnet_lite0_dct_split64",
                                  "efficientnet_lite0_dct_merged24", "resnet50_rgb", "deconvolution_rfa"])
def test_torch_twin_computes_the_keras_model(name: str) -> None:
    """Every layer kind of the zoo (ResNet50's MaxPooling2D, the deconvolution's
    Conv2DTranspose and ChannelSlice included) computes in PyTorch what it does in Keras."""
    import keras

    from .test_zoo import small_overrides

    model = build(name, **small_overrides(name))
    rng = np.random.default_rng(0)
    inputs = {t.name: rng.standard_normal((2, *t.shape[1:])).astype(np.float32) for t in model.inputs}
    graph = TorchGraph(model).eval()
    to_torch(model, graph)
    with torch.no_grad():
        got = graph({k: nchw(v) for k, v in inputs.items()})[0].numpy()
    want = np.asarray(model(inputs if len(inputs) > 1 else next(iter(inputs.values())), training=False))
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
    # and back: perturbed twin weights land in a fresh Keras model unchanged
    with torch.no_grad():
        for p in graph.parameters():
            p.add_(0.01)
    fresh = keras.models.clone_model(model)
    to_keras(graph, fresh)
    with torch.no_grad():
        got = graph({k: nchw(v) for k, v in inputs.items()})[0].numpy()
    want = np.asarray(fresh(inputs if len(inputs) > 1 else next(iter(inputs.values())), training=False))
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def read_log(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]


def test_checkpoint_and_resume(data: Path, target_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "run"
    common = ["--work", str(work), "--data", str(data), "--targets", str(target_dir), *TINY]
    assert distill.main([*common, "--steps", "2"]) == 0
    assert [p.name for p in distill.checkpoints(work)] == ["ckpt-0000001", "ckpt-0000002"]

    config = distill.parse_args([*common, "--steps", "4"])
    student = distill.Student(config.model)
    trainer = distill.Trainer(student, config.optim)
    assert distill.start_state(config, student, trainer) == 2 and trainer.step == 2
    saved = torch.load(distill.checkpoints(work)[-1] / "student.pt", weights_only=True)
    for k, v in student.graph.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)
    assert trainer.optimizer.state_dict()["state"], "optimizer moments restored"

    assert distill.main([*common, "--steps", "4"]) == 0
    records = read_log(work)
    resumes = [r for r in records if r.get("event") == "resume"]
    assert resumes[-1]["step"] == 2
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in steps)
    state = json.loads((distill.checkpoints(work)[-1] / "state.json").read_text())
    assert state["step"] == 4 and state["student"]["adapter_width"] == 32
    assert state["config"]["optim"]["steps"] == 4 and state["config"]["work"] == str(work)
    assert any("eval" in r and 0 <= r["eval"]["top1_agreement"] <= 1 for r in records)

    # A resume that would silently train another model is refused, naming the argument.
    with pytest.raises(SystemExit, match="adapter_width=32"):
        distill.main([*common, "--steps", "5", "--adapter-width", "48"])


def test_feature_stage_trains_only_the_adapter(data: Path, target_dir: Path, tmp_path: Path) -> None:
    config = distill.parse_args(["--work", str(tmp_path), "--data", str(data), "--targets", str(target_dir),
                                 *TINY, "--steps", "3"])
    student = distill.Student(config.model)
    before = {k: v.clone() for k, v in student.graph.state_dict().items()}
    assert distill.main(["--work", str(tmp_path), "--data", str(data), "--targets", str(target_dir),
                         *TINY, "--steps", "3"]) == 0
    after = torch.load(distill.checkpoints(tmp_path)[-1] / "student.pt", weights_only=True)
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("layers.adapter_") for k in changed)


def test_logits_stage_starts_from_feature_run_and_exports(data: Path, target_dir: Path, tmp_path: Path) -> None:
    feature, logits = tmp_path / "feature", tmp_path / "logits"
    common = ["--data", str(data), "--targets", str(target_dir), *TINY]
    assert distill.main(["--work", str(feature), *common, "--steps", "1"]) == 0
    assert distill.main(["--work", str(logits), *common, "--steps", "1",
                         "--stage", "logits", "--init", str(feature), "--feature-weight", "0.5"]) == 0
    assert (logits / "spec.json").read_text() == (feature / "spec.json").read_text()
    step = [r for r in read_log(logits) if "loss" in r][-1]
    assert np.isfinite(step["kl"]) and step["kl"] > 0 and step["feature_mse"] > 0

    out = tmp_path / "student_int8.tflite"
    assert distill.main(["--work", str(logits), *common, "--export", str(out), "--calibration", "3"]) == 0
    report = json.loads((logits / "export.json").read_text())
    assert report["fidelity"]["photos"] == 4 and 0 <= report["fidelity"]["int8_vs_fp32_top1_agreement"] <= 1
    from edge_dct import Classifier

    with Classifier.create_from_model_path(out, max_results=3) as c:
        assert len(c.classify((data / "imagenette" / "val" / "n01440764" / "n01440764_0.jpg")).categories) == 3


def test_adapter_bn_tracks_batches_and_back_half_bn_stays_frozen(data: Path, target_dir: Path, tmp_path: Path) -> None:
    config = distill.parse_args(["--work", str(tmp_path), "--data", str(data), "--targets", str(target_dir),
                                 *TINY, "--stage", "logits"])
    student = distill.Student(config.model)
    student.train()
    bns = {n: m for n, m in student.graph.layers.items() if isinstance(m, torch.nn.BatchNorm2d)}
    adapter = [m for n, m in bns.items() if distill.is_adapter(n)]
    tail = [m for n, m in bns.items() if not distill.is_adapter(n)]
    assert adapter and tail
    # Keras' 0.99 momentum would keep ~97% of the initial variance of 1 after 3 steps.
    assert all(m.training and m.momentum == distill.ADAPTER_BN_MOMENTUM for m in adapter)
    assert all(not m.training and not m.weight.requires_grad for m in tail)
    before = [m.running_var.clone() for m in tail]
    trainer = distill.Trainer(student, config.optim)
    t = targets.Targets(target_dir)
    pool = distill.sample_pool(t)
    spec = distill.resolve_spec(config, [data / p for p in t.photos])
    batch = next(distill.batches(t, pool, data, spec, 2, 0, 0, 1, 1))
    trainer(batch)
    assert all(torch.equal(m.running_var, b) for m, b in zip(tail, before))


def test_photo_split_holds_back_and_skips_excluded(tmp_path: Path, monkeypatch) -> None:
    """Imagenette val/ and every 20th photo of the other sets are held back, never trained on;
    files of the exclude list are in neither."""
    for rel in ["imagenette/train/n1/a.jpg", "imagenette/train/n1/b.jpg", "imagenette/val/n1/c.jpg",
                *(f"intel/buildings/{i:03d}.jpg" for i in range(45))]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("# overlap with the evaluation set\ntrain/n1/b.jpg\nbuildings/020.jpg\n")
    monkeypatch.setenv("EDGE_DCT_EXCLUDE", str(exclude))

    train = {str(p.relative_to(tmp_path)) for p in splits.training_photos(tmp_path)}
    held = {str(p.relative_to(tmp_path)) for p in splits.held_out_photos(tmp_path, 1000)}
    intel = [f"intel/buildings/{i:03d}.jpg" for i in range(45) if i != 20]
    assert not train & held
    assert held == {"imagenette/val/n1/c.jpg", *intel[::splits.HOLD_BACK_EVERY]}
    assert train == {"imagenette/train/n1/a.jpg"} | (set(intel) - held)
    assert "imagenette/train/n1/b.jpg" not in train | held and "intel/buildings/020.jpg" not in train | held


def test_missing_data_and_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no training photos.*get_data.sh"):
        targets.main(["--work", str(tmp_path / "t"), "--data", str(tmp_path / "none"), "--grid", str(GRID)])
    with pytest.raises(SystemExit, match="no checkpoint under"):
        distill.main(["--work", str(tmp_path / "run"), "--data", str(tmp_path), *TINY,
                      "--export", str(tmp_path / "s.tflite")])
    with pytest.raises(ValueError, match=r"bundle_fidelity: no photos to measure .*s\.tflite"):
        bundle_fidelity(tmp_path / "s.tflite", tmp_path / "f.tflite", [], None, None)
