"""converters: students cut after blocks 0, 1, 2 or 4 of EfficientNet-Lite0 and the online teacher.

The zoo's ``DepthToSpace`` and its PyTorch twin, the cut students' shapes and twins, the exact
teacher (the inverse of the student's input fed to the PyTorch teacher) against the Keras
exact front end and teacher, and a tiny online-teacher distillation run with resume.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from converters.train import distill  # noqa: E402
from converters.train.exact_teacher import ExactTeacher  # noqa: E402
from converters.train.torch_graph import TorchGraph, depth_to_space, nchw, to_torch  # noqa: E402
from converters.zoo.efficientnet_dct import CUTS, cut_scale, student_cut  # noqa: E402
from converters.zoo.layers import DepthToSpace  # noqa: E402
from converters.zoo.registry import build  # noqa: E402
from edge_dct.prepare import prepare  # noqa: E402
from edge_dct.spec import InputSpec  # noqa: E402

from .test_distill import GRID, TINY, data, exact_rgb  # noqa: E402,F401  (fixture)


@pytest.mark.parametrize("block", [2, 4, 8])
def test_depth_to_space_twin_is_tensorflows(block: int) -> None:
    x = np.random.default_rng(block).normal(size=(2, 3, 5, 3 * block * block)).astype(np.float32)
    want = tf.nn.depth_to_space(x, block).numpy()
    got = depth_to_space(nchw(x), block).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(got, want)
    layer = DepthToSpace(block)
    assert layer.compute_output_shape((None, 3, 5, 3 * block * block)) == (None, 3 * block, 5 * block, 3)
    assert DepthToSpace.from_config(layer.get_config()).block == block


@pytest.mark.parametrize("cut", sorted(CUTS))
def test_cut_student_emits_the_teachers_cut_tensor_and_its_twin_matches(cut: int) -> None:
    name = f"efficientnet_lite0_dct_cut{cut}"
    assert student_cut(name) == cut
    model = build(name, grid=(GRID, GRID), adapter_width=32, weights=None)
    teacher = build("efficientnet_lite0_rgb", image_size=8 * GRID, weights=None)
    assert model.get_layer("adapter_out").output.shape[1:] == teacher.get_layer(CUTS[cut]).output.shape[1:]
    assert model.get_layer("adapter_out").output.shape[1] == GRID * cut_scale(cut)
    # the pretrained tail starts right after the cut: block cut+1 is the first teacher block kept
    assert f"block{cut + 1}_dw_conv" in {layer.name for layer in model.layers}
    assert f"block{cut}_dw_conv" not in {layer.name for layer in model.layers}
    rng = np.random.default_rng(cut)
    y = rng.normal(size=(2, GRID, GRID, 64)).astype(np.float32)
    c = rng.normal(size=(2, GRID // 2, GRID // 2, 128)).astype(np.float32)
    graph = TorchGraph(model, ["adapter_out", "logits"]).eval()
    to_torch(model, graph)
    with torch.no_grad():
        feature, logits = graph({"y": nchw(y), "cbcr": nchw(c)})
    keras_logits = np.asarray(model([y, c]))
    np.testing.assert_allclose(logits.numpy(), keras_logits, rtol=1e-4, atol=1e-4)


def test_student_cut_of_other_students_is_block_4() -> None:
    assert student_cut("efficientnet_lite0_dct_split64") == 4
    with pytest.raises(ValueError, match="cut must be one of"):
        from converters.zoo.efficientnet_dct import _student
        _student("x", "split", "all64", (8, 8), 10, 32, 1, None, cut=3)


def test_exact_teacher_sees_the_exact_inverse_of_the_student_input(data: Path) -> None:
    photo = next((data / "imagenette" / "val").rglob("*.jpg"))
    spec = distill.base_spec("efficientnet_lite0_dct_cut1", GRID)
    spec = InputSpec.from_dict({**spec.to_dict(), "normalize": distill.channel_stats([photo], spec)})
    inputs = prepare(photo, spec)
    teacher = ExactTeacher(1, spec)
    pixels = teacher.pixels(nchw(inputs["y"]), nchw(inputs["cbcr"])).permute(0, 2, 3, 1).numpy()
    want = np.clip(exact_rgb(inputs, spec.normalize), -127 / 128, 1.0)  # the decoder's clamp
    np.testing.assert_allclose(pixels, want, atol=2e-4)
    keras_teacher = build("efficientnet_lite0_rgb", image_size=8 * GRID)
    import keras

    front = keras.Model(keras_teacher.input, [keras_teacher.get_layer(CUTS[1]).output, keras_teacher.output])
    feature, logits = teacher(inputs)
    want_feature, want_logits = (np.asarray(t) for t in front(want))
    np.testing.assert_allclose(feature, want_feature, atol=2e-3)
    np.testing.assert_allclose(logits, want_logits, atol=2e-3)
    # the decode source feeds the given pixels instead
    np.testing.assert_allclose(teacher(inputs, want)[1], want_logits, atol=2e-3)


def test_online_teacher_run_trains_a_shallow_cut_and_resumes(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "cut1"
    common = ["--work", str(work), "--data", str(data), "--targets", str(tmp_path / "t"), *TINY,
              "--student", "efficientnet_lite0_dct_cut1", "--adapter-blocks", "2", "--teacher", "exact",
              "--variants", "2"]
    assert distill.main([*common, "--steps", "2"]) == 0
    std = np.load(work / distill.FEATURE_STD)
    assert std.shape == (24,) and np.all(std > 0)
    assert distill.main([*common, "--steps", "3"]) == 0
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert all(0 < r["feature_mse"] < 10 for r in records if "loss" in r)  # standardised: ~1 - R^2
    assert any(r.get("event") == "resume" and r["step"] == 2 for r in records)
    # the logits stage of the same cut, from the feature run, with the online teacher's logits
    logits = tmp_path / "logits"
    args = [a if a != str(work) else str(logits) for a in common]
    assert distill.main([*args, "--stage", "logits", "--init", str(work), "--steps", "1"]) == 0
    last = [json.loads(line) for line in (logits / "log.jsonl").read_text().splitlines() if '"loss"' in line][-1]
    assert last["kl"] > 0


def test_cached_targets_serve_only_cut_4(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="online teacher"):
        distill.parse_args(["--work", str(tmp_path), "--student", "efficientnet_lite0_dct_cut2"])


def test_frontier_learning_curves_and_plots_from_a_run(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from converters.train import frontier

    work = tmp_path / "run"
    assert distill.main(["--work", str(work), "--data", str(data), "--targets", str(tmp_path / "t"), *TINY,
                         "--student", "efficientnet_lite0_dct_cut2", "--teacher", "exact", "--variants", "2",
                         "--steps", "2", "--eval-every", "1"]) == 0
    curves = frontier.learning_curves({"cut2": [work, work]})  # a chain counts on
    pts = curves["cut2"]
    assert [p["step"] for p in pts] == [1, 2, 1, 2]
    assert [p["crops"] for p in pts] == [2, 4, 6, 8] and pts[-1]["minutes"] > pts[0]["minutes"] > 0
    frontier.plot_curves(curves, tmp_path / "curves.png")
    results = {"photos": 10, "fidelity": {
        "rgb_int8": {"top1_agreement": 0.95, "top1_agreement_ci95": [0.9, 0.98]},
        "cut2": {"top1_agreement": 0.7, "top1_agreement_ci95": [0.6, 0.8]}},
        "speed_small": {"cut2": {"1": {"speedup": 1.9}, "2": {"speedup": 1.8}}}}
    frontier.plot(results, tmp_path / "frontier.png")
    for png in ("curves.png", "frontier.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_only_sets_train_repeated_and_never_hold_back(data: Path, tmp_path: Path) -> None:
    import shutil

    from converters.data import splits

    root = tmp_path / "data"
    shutil.copytree(data, root)
    wall = root / "wallpapers" / "pkg"
    wall.mkdir(parents=True)
    shutil.copy(next((data / "imagenette" / "train").rglob("*.jpg")), wall / "big.jpg")
    repeat = dict(splits.TRAINING_ONLY)["wallpapers"]
    train, held = splits.split(root)
    assert not any("wallpapers" in str(p) for p in held)
    listed = [p for p in splits.training_photos(root) if "wallpapers" in str(p)]
    assert listed == [wall / "big.jpg"] * repeat
    assert splits.training_photos(root)[:len(train)] == train


def test_decode_teacher_run_feeds_the_teacher_the_decoded_window(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "decode"
    assert distill.main(["--work", str(work), "--data", str(data), "--targets", str(tmp_path / "t"), *TINY,
                         "--student", "efficientnet_lite0_dct_cut0", "--teacher", "decode", "--variants", "2",
                         "--steps", "1"]) == 0
    assert np.load(work / distill.FEATURE_STD).shape == (16,)
    batch = next(distill.online_batches(distill.training_photos(data), 2,
                                        InputSpec.from_json((work / "spec.json").read_text()),
                                        2, 0, 0, 1, 1, decode=True))
    assert batch.pixels.shape == (2, 8 * GRID, 8 * GRID, 3) and batch.feature is None


def test_frontier_command_refuses_bad_arguments(tmp_path: Path, capsys) -> None:
    from converters.train import frontier

    for argv in (["--out", str(tmp_path), "--bundle", f"x={tmp_path / 'missing.tflite'}"],
                 ["--out", str(tmp_path), "--bundle", "no-equals-sign"],
                 ["--out", str(tmp_path), "--run", "no-equals-sign"]):
        with pytest.raises(SystemExit) as e:
            frontier.main(argv)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "missing.tflite not found" in err and "NAME=PATH" in err and "NAME=RUN" in err
