"""Tests of converters/quant_ranges.py: int8 activation ranges of least quantization error."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from converters.export import LiteRunner, convert  # noqa: E402
from converters.quant_ranges import best_range, quantization_mse  # noqa: E402


def test_best_range_clips_rare_outliers():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 1_000_000), [-50.0, 45.0]])
    lo, hi = best_range(values, -50.0, 45.0)
    assert -20 < lo < -2 and 2 < hi < 20
    assert quantization_mse(values, lo, hi) < 0.5 * quantization_mse(values, -50.0, 45.0)


def test_best_range_keeps_a_filled_range():
    values = np.random.default_rng(1).uniform(0, 6, 50_000)
    assert best_range(values, 0.0, 6.0) == (0.0, 6.0)


def test_best_range_keeps_zero_inside():
    values = np.random.default_rng(2).uniform(1, 3, 10_000)
    lo, hi = best_range(values, 1.0, 3.0)
    assert lo == 0.0 and hi >= 2.9


def _outlier_model() -> keras.Model:
    """x [1, 8, 8, 4] -> linear 1x1 conv (a residual-stream-like tensor) -> ReLU6 conv -> 10 logits."""
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 4), name="x")
    h = keras.layers.Conv2D(16, 1, name="linear")(x)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu6", name="conv")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(10, name="logits")(h))


def test_mse_ranges_cut_the_error_of_a_tensor_with_outliers():
    model = _outlier_model()
    rng = np.random.default_rng(3)
    calibration = [{"x": rng.normal(0, 1, (1, 8, 8, 4)).astype(np.float32)} for _ in range(40)]
    calibration[0]["x"][0, 0, 0] = 40.0  # one outlier pixel stretches min..max
    evaluation = [{"x": rng.normal(0, 1, (1, 8, 8, 4)).astype(np.float32)} for _ in range(20)]
    reference = np.concatenate([np.asarray(model(s["x"])) for s in evaluation])
    errors = {}
    for ranges in ("minmax", "mse"):
        runner = LiteRunner(convert(model, "int8", calibration, ranges=ranges))
        got = np.concatenate([runner(s) for s in evaluation])
        errors[ranges] = float(np.abs(got - reference).mean())
    assert errors["mse"] < 0.7 * errors["minmax"], errors


def test_unknown_ranges_are_refused():
    with pytest.raises(ValueError, match="ranges"):
        convert(_outlier_model(), "int8", [], ranges="percentile")
