"""converters.distill: crop geometry shared by student and teacher, checkpoint and resume.

A tiny configuration (8x8 grid, i.e. 64 px for the teacher, adapter width 32) on synthetic
JPEGs laid out like Imagenette, so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
cv2 = pytest.importorskip("cv2")

from converters import distill  # noqa: E402
from converters.dct_frontend import dct_to_rgb_input  # noqa: E402
from edge_dct.augment import Augmenter  # noqa: E402

from .conftest import synthetic_image  # noqa: E402

GRID = 8
TINY = ["--grid", str(GRID), "--adapter-width", "32", "--batch", "2", "--workers", "2",
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


def test_teacher_crop_matches_student_window(data: Path, tmp_path: Path) -> None:
    # Full size: no network runs here, and 224 px keeps resampling differences small.
    args = distill.parse_args(["--work", str(tmp_path), "--data", str(data), *TINY, "--grid", "28"])
    spec = distill.resolve_spec(args, distill.training_photos(data))
    photo = distill.training_photos(data)[1]
    flips = set()
    for seed in range(12):
        sample = distill.train_sample(photo, spec, seed)
        again = Augmenter(spec, seed=seed)(photo.read_bytes())
        assert sample.window == again.window and sample.hflip == again.hflip
        assert sample.teacher.shape == (1, 224, 224, 3)
        student_view = exact_rgb(sample.student, spec.normalize)
        err = np.abs(student_view - sample.teacher).mean()
        mirrored = np.abs(student_view - sample.teacher[:, :, ::-1]).mean()
        assert err < 0.04, (seed, err)  # 5 grey levels: resampling differences only (~0.02)
        assert err < 0.2 * mirrored, (seed, err, mirrored)
        flips.add(sample.hflip)
    assert flips == {False, True}


def read_log(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]


def test_checkpoint_and_resume(data: Path, tmp_path: Path) -> None:
    work = tmp_path / "run"
    common = ["--work", str(work), "--data", str(data), *TINY]
    assert distill.main([*common, "--steps", "2"]) == 0
    assert [p.name for p in distill.checkpoints(work)] == ["ckpt-0000001", "ckpt-0000002"]

    args = distill.parse_args([*common, "--steps", "4"])
    models = distill.build_models(args, mixed=False)
    trainer = distill.Trainer(models, args)
    assert distill.start_state(args, models, trainer) == 2
    saved = distill.build_student(args, weights=None)
    saved.load_weights(distill.checkpoints(work)[-1] / "student.weights.h5")
    for a, b in zip(models.student.weights, saved.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(trainer.groups[0][0].iterations.numpy()) == 2

    assert distill.main([*common, "--steps", "4"]) == 0
    records = read_log(work)
    resumes = [r for r in records if r.get("event") == "resume"]
    assert resumes[-1]["step"] == 2
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in steps)
    state = json.loads((distill.checkpoints(work)[-1] / "state.json").read_text())
    assert state["step"] == 4 and state["args"]["adapter_width"] == 32
    assert any("eval" in r and 0 <= r["eval"]["top1_agreement"] <= 1 for r in records)


def test_logits_stage_starts_from_feature_run(data: Path, tmp_path: Path) -> None:
    feature, logits = tmp_path / "feature", tmp_path / "logits"
    assert distill.main(["--work", str(feature), "--data", str(data), *TINY, "--steps", "1"]) == 0
    assert distill.main(["--work", str(logits), "--data", str(data), *TINY, "--steps", "1",
                         "--stage", "logits", "--init", str(feature), "--feature-weight", "0.5"]) == 0
    assert (logits / "spec.json").read_text() == (feature / "spec.json").read_text()
    step = [r for r in read_log(logits) if "loss" in r][-1]
    assert np.isfinite(step["kl"]) and step["kl"] > 0 and step["feature_mse"] > 0
