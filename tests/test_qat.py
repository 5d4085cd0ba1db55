"""converters.train.qat: the int8 simulation, the training pool, fine-tuning and the command line.

The simulation is checked against TFLite's own int8 kernels on a real (ImageNet-weight)
EfficientNet-Lite0 at 64 px; the command line runs pool -> train (with a resume) -> export on
a tiny distillation run over synthetic photos (fixtures of tests/test_distill.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from converters.ship.calibration import default_samples  # noqa: E402
from converters.ship.export import LiteRunner, convert, input_shapes, model_spec  # noqa: E402
from converters.train import distill, qat  # noqa: E402
from converters.train.torch_graph import TorchGraph, graph_plan, nchw, to_torch  # noqa: E402
from converters.zoo.registry import build, get_config  # noqa: E402

from .test_distill import TINY, data, target_dir  # noqa: E402,F401  (fixtures)


def test_fake_quant_matches_torch_and_passes_gradients_inside_the_range() -> None:
    x = (torch.randn(2, 3, 5, 5) * 4).requires_grad_()
    y = qat._FakeQuant.apply(x, 0.05, 10)  # range [-6.9, 5.85]: some values fall outside
    want = torch.fake_quantize_per_tensor_affine(x.detach(), 0.05, 10, -128, 127)
    torch.testing.assert_close(y, want, rtol=0, atol=1e-6)
    y.sum().backward()
    inside = (x.detach() >= -6.9) & (x.detach() <= 5.85)
    assert not inside.all() and torch.equal(x.grad, inside.float())

    relu6 = torch.rand(4, 8) * 6  # a ReLU6 output on TFLite's [0, 6] grid: gradient unmasked
    relu6.requires_grad_()
    qat._FakeQuant.apply(relu6, 6 / 255, -128).sum().backward()
    assert torch.equal(relu6.grad, torch.ones_like(relu6))


@pytest.mark.parametrize("name", ["efficientnet_lite0_rgb", "efficientnet_lite0_dct_split64"])
def test_graph_plan_rebuilds_the_twin_without_keras(name: str) -> None:
    model = build(name, **({"image_size": 64} if name.endswith("rgb") else {"grid": (8, 8), "adapter_width": 32}))
    graph = TorchGraph(model).eval()
    to_torch(model, graph)
    plan = json.loads(json.dumps(graph_plan(model)))  # plain data
    rebuilt = TorchGraph(plan).eval()
    rebuilt.load_state_dict(graph.state_dict())
    rng = np.random.default_rng(0)
    inputs = {t.name: nchw(rng.standard_normal((2, *t.shape[1:])).astype(np.float32)) for t in model.inputs}
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(inputs)[0], graph(inputs)[0], rtol=0, atol=0)


@pytest.fixture(scope="module")
def lite0_64():
    """EfficientNet-Lite0 (ImageNet weights) at 64 px, its int8 conversion and evaluation samples."""
    model = build("efficientnet_lite0_rgb", image_size=64)
    spec = model_spec(model, get_config("efficientnet_lite0_rgb").input_spec)
    calibration, evaluation = default_samples(input_shapes(model), spec)
    return model, convert(model, "int8", calibration), evaluation


def test_simulation_reproduces_tflite_int8(lite0_64) -> None:
    model, int8, evaluation = lite0_64
    grid = qat.activation_grid(int8)
    runner = LiteRunner(int8)
    scale, zero = runner.input_details["image"]["quantization"]
    assert grid["image"] == pytest.approx((scale, zero)) and qat.OUTPUT in grid
    assert {"stem_relu", "block2_add", "avg_pool"} <= set(grid)  # fused ops named by their last layer
    graph = TorchGraph(model).eval()
    to_torch(model, graph)
    sim = qat.QuantGraph(graph, grid)  # raises if a grid name is not a layer of the graph
    x = {"image": nchw(np.concatenate([s["image"] for s in evaluation]))}
    with torch.no_grad():
        fp32, simulated = graph(x)[0].numpy(), sim(x)[0].numpy()
    lite = np.concatenate([runner(s) for s in evaluation])
    # The simulation explains most of what int8 changes: it is much closer to TFLite than fp32 is.
    quantization_error = np.abs(lite - fp32).mean()
    assert quantization_error > 0.01
    assert np.abs(lite - simulated).mean() < 0.6 * quantization_error


def test_finetune_trains_weights_follows_the_original_and_resumes(lite0_64, tmp_path: Path) -> None:
    model, int8, evaluation = lite0_64
    grid = qat.activation_grid(int8)
    crops = np.concatenate([np.clip(np.round(s["image"] * 128 + 127), 0, 255).astype(np.uint8) for s in evaluation])
    pool = qat.Pool({"image": crops[:8]}, "pixel", grid)
    graph = TorchGraph(model).eval()
    to_torch(model, graph)
    original = {k: v.clone() for k, v in graph.state_dict().items()}
    records: list[dict] = []
    qat.finetune(graph, grid, pool, steps=4, batch=4, lr=1e-5, checkpoint=tmp_path / "c.pt", log=records.append)
    after = graph.state_dict()
    kernels = [k for k in after if k.endswith(".weight")]
    stats = [k for k in after if "running_" in k]
    assert all(not torch.equal(after[k], original[k]) for k in kernels)  # every weight trains
    assert all(torch.equal(after[k], original[k]) for k in stats)  # BN statistics stay frozen
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    assert saved["step"] == 4 and all(np.isfinite(r["loss"]) for r in records if "loss" in r)
    for k, v in original.items():  # the reference is the original model, kept with the weights
        torch.testing.assert_close(saved["reference"][k], v, rtol=0, atol=0)

    # Resuming to 6 steps continues from the checkpoint (step, weights and optimizer moments).
    fresh = TorchGraph(model).eval()
    to_torch(model, fresh)
    records.clear()
    qat.finetune(fresh, grid, pool, steps=6, batch=4, lr=1e-5, checkpoint=tmp_path / "c.pt", log=records.append)
    assert records[0] == {"event": "resume", "step": 4}
    assert torch.load(tmp_path / "c.pt", weights_only=True)["step"] == 6


def test_pool_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grid = {"y": (0.01, 3), "cbcr": (0.02, -5)}
    dct = qat.Pool({"y": rng.integers(-128, 128, (3, 4, 4, 8), dtype=np.int8),
                    "cbcr": rng.integers(-128, 128, (3, 2, 2, 16), dtype=np.int8)}, "dct", grid)
    dct.save(tmp_path / "d.npz")
    back = qat.Pool.load([tmp_path / "d.npz"], grid)
    for k in dct.arrays:
        np.testing.assert_array_equal(back.arrays[k], dct.arrays[k])
    x = back.batch(torch.tensor([1]))
    torch.testing.assert_close(x["y"][0].permute(1, 2, 0), torch.from_numpy((dct.arrays["y"][1] - 3.0) * 0.01).float())

    import cv2

    smooth = np.stack([cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (0, 0), 2) for _ in range(2)])
    pixel = qat.Pool({"image": smooth}, "pixel", {})
    pixel.save(tmp_path / "p.npz")
    back = qat.Pool.load([tmp_path / "p.npz"], {})
    assert np.abs(back.arrays["image"].astype(int) - smooth).mean() < 3.0  # JPEG q95, 4:2:0 chroma


def test_command_line_pool_train_resume_export(data: Path, target_dir: Path, tmp_path: Path) -> None:
    run, work = tmp_path / "run", tmp_path / "qat"
    common = ["--data", str(data), "--targets", str(target_dir), *TINY]
    assert distill.main(["--work", str(run), *common, "--steps", "1", "--stage", "logits"]) == 0

    assert qat.main(["pool", "--run", str(run), "--work", str(work), "--data", str(data),
                     "--photos", "4", "--monitor", "2"]) == 0
    package = torch.load(work / "package.pt", weights_only=False)
    assert package["kind"] == "dct" and {"y", "cbcr", qat.OUTPUT} <= set(package["grid"])
    pool = qat.Pool.load([work / "pool-0.npz"], package["grid"])
    assert len(pool) == 4 and pool.arrays["y"].dtype == np.int8

    train = ["train", "--work", str(work), "--batch", "2", "--device", "cpu", "--eval-every", "1"]
    assert qat.main([*train, "--steps", "2"]) == 0
    assert qat.main([*train, "--steps", "3"]) == 0
    records = [json.loads(line) for line in (work / "tuned.log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "resume" and r["step"] == 2 for r in records)
    assert any("simulated_agreement" in r for r in records)

    # --init continues from a finished fine-tuning; the reference stays the original model.
    assert qat.main([*train, "--steps", "1", "--name", "second", "--init", "tuned"]) == 0
    saved = torch.load(work / "second.ckpt.pt", weights_only=True)
    tuned = torch.load(work / "tuned.pt", weights_only=True)
    changed = [k for k, v in package["state"].items() if not torch.equal(tuned[k], v)]
    assert changed
    for k, v in package["state"].items():
        torch.testing.assert_close(saved["reference"][k], v, rtol=0, atol=0)

    assert qat.main(["export", "--work", str(work), "--data", str(data), "--targets", str(target_dir),
                     "--count", "4"]) == 0
    report = json.loads((work / "tuned.export.json").read_text())
    fidelity = report["fidelity"]
    assert fidelity["photos"] == 4 and 0 <= fidelity["int8_vs_fp32_top1_agreement"] <= 1
    low, high = fidelity["int8_vs_fp32_top1_ci95"]  # 4 photos: a wide Wilson interval around it
    assert low <= fidelity["int8_vs_fp32_top1_agreement"] <= high and high - low > 0.3
    from edge_dct import Classifier

    with Classifier.create_from_model_path(report["bundle"], max_results=3) as c:
        assert len(c.classify(data / "imagenette" / "val" / "n01440764" / "n01440764_0.jpg").categories) == 3


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"package\.pt does not exist \(run `python -m converters qat pool`"):
        qat.main(["train", "--work", str(tmp_path), "--device", "cpu"])
    with pytest.raises(SystemExit, match="package.pt does not exist"):
        qat.main(["export", "--work", str(tmp_path)])
    torch.save({"plan": {"inputs": [], "outputs": [], "layers": []}, "state": {}, "grid": {}}, tmp_path / "package.pt")
    with pytest.raises(SystemExit, match="no pool-"):
        qat.main(["train", "--work", str(tmp_path), "--device", "cpu"])
    with pytest.raises(SystemExit, match="no finished fine-tuning named 'missing'"):
        qat.main(["export", "--work", str(tmp_path), "--name", "missing"])
    with pytest.raises(SystemExit, match="missing.pt does not exist"):
        qat.main(["train", "--work", str(tmp_path), "--device", "cpu", "--init", "missing"])
    (tmp_path / "pool-0.npz").write_bytes(b"not a pool")
    with pytest.raises(ValueError, match="pool-0.npz: not a training pool"):
        qat.Pool.load([tmp_path / "pool-0.npz"], {})
    # Pixel pools hold the teacher's (x - 127) / 128 RGB crops: other pixel models are refused.
    with pytest.raises(SystemExit, match="resnet50_ycbcr: pixel pools hold the teacher's RGB crops"):
        qat.main(["pool", "--model", "resnet50_ycbcr", "--work", str(tmp_path / "w")])
