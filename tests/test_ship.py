"""converters.ship and the command line: export to TFLite, metadata, GPU check, speed table.

Needs the converters requirements (requirements-converters.txt); skipped without TensorFlow.
The conversion of *every* registry entry to fp32 and int8 takes ~6 minutes on 2 cores; it runs
only with ``EDGE_DCT_SLOW_TESTS=1``. The default run converts a representative subset.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import converters  # noqa: E402
import edge_dct  # noqa: E402
import keras  # noqa: E402
from converters.ship.calibration import default_samples  # noqa: E402
from converters.ship.export import LiteRunner, compare, convert, gpu_compatibility, input_shapes, model_spec  # noqa: E402

from .test_zoo import PAPER_MODELS, SLOW, STUDENTS, small_overrides  # noqa: E402


# ------------------------------------------------------------------------------------ export


@pytest.fixture(scope="module")
def exported_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    reports = {}
    for q in ("fp32", "int8"):
        # int8: photo paths (what `python -m converters export --calibration DIR` passes),
        # turned into samples the model's way; fp32: the default corpus samples.
        photos = {}
        if q == "int8":
            from converters.data.photos import corpus_dir, photo_set

            photos = {"calibration": photo_set(str(corpus_dir() / "clothing"), 6),
                      "evaluation": photo_set(str(corpus_dir() / "clothing"), 9, seed=1)}
        reports[q] = converters.export(
            "upsampling", out / f"upsampling_{q}.tflite", quantize=q, overrides=small_overrides("upsampling"),
            check_gpu=q == "fp32", **photos,
        )
    return reports


def test_fp32_export_matches_keras(exported_small):
    r = exported_small["fp32"]
    assert r.inputs["y"]["shape"] == [1, 8, 8, 64] and r.inputs["cbcr"]["shape"] == [1, 4, 4, 128]
    assert r.inputs["y"]["dtype"] == "float32"
    assert r.eval_samples >= 8 and r.top1_agreement == 1.0
    assert r.max_abs_logit_error <= 1e-4 * r.logit_range
    assert r.latency_ms[1] > 0
    assert r.gpu_fallback_ops == [], r.gpu_analyzer_output
    assert "GPU" in str(r)


def test_int8_export_runs_with_int8_io(exported_small):
    r = exported_small["int8"]
    assert r.inputs["y"]["dtype"] == r.inputs["cbcr"]["dtype"] == "int8"
    assert r.inputs["y"]["scale"] > 0
    assert r.eval_samples == 9
    assert r.top1_agreement >= 0.75
    low, high = r.top1_agreement_ci95
    assert low <= r.top1_agreement <= high and high - low > 0.1  # 9 samples: a wide interval
    assert "95% interval" in str(r)
    with pytest.raises(ValueError, match="compare: no samples"):
        compare(None, Path(r.path).read_bytes(), [])
    assert r.mean_abs_logit_error <= 0.05 * r.logit_range
    assert r.size_bytes < os.path.getsize(exported_small["fp32"].path)


def test_metadata_round_trip(exported_small):
    from ai_edge_litert import schema_py_generated as schema

    r = exported_small["int8"]
    md = converters.read_metadata(r.path)
    assert md["version"] == 1 and md["grid"] == [8, 8] and md["layout"] == "split" and md["chroma"] == "420"
    assert md["channels"]["y"] == list(range(64)) and md["labels"] == [f"class_{i}" for i in range(10)]
    buf = open(r.path, "rb").read()
    assert buf[4:8] == b"TFL3"
    root = schema.Model.GetRootAsModel(buf, 0)
    names = {root.Metadata(i).Name().decode() for i in range(root.MetadataLength())}
    assert {"edge_dct", "min_runtime_version"} <= names


def test_metadata_re_embedded_in_place(exported_small):
    """Re-embedding (e.g. new labels) rewrites the one edge_dct buffer: no stale JSON, same weights."""
    from ai_edge_litert import schema_py_generated as schema

    from converters.ship.metadata import embed_metadata

    buf = open(exported_small["int8"].path, "rb").read()
    md = converters.read_metadata(buf)
    relabelled = embed_metadata(buf, {**md, "labels": [f"thing {i}" for i in range(10)]})
    assert converters.read_metadata(relabelled)["labels"][3] == "thing 3"
    assert b"class_3" not in relabelled and abs(len(relabelled) - len(buf)) < 200
    before, after = (schema.Model.GetRootAsModel(b, 0) for b in (buf, relabelled))
    assert after.BuffersLength() == before.BuffersLength()
    assert [after.Metadata(i).Name() for i in range(after.MetadataLength())].count(b"edge_dct") == 1
    rng = np.random.default_rng(0)
    x = {k: rng.standard_normal(v["shape"]).astype(np.float32) for k, v in exported_small["int8"].inputs.items()}
    np.testing.assert_array_equal(LiteRunner(buf)(x), LiteRunner(relabelled)(x))
    with pytest.raises(edge_dct.MetadataNotFoundError, match="not an edge_dct bundle"):
        converters.read_metadata(convert(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), "fp32"))


@pytest.mark.parametrize("name", ["efficientnet_lite0_dct_split24", "efficientnet_lite0_dct_merged64"])
def test_students_are_gpu_delegate_compatible(name):
    model = converters.build(name, **small_overrides(name))
    ops, text = gpu_compatibility(convert(model, "fp16"))
    assert ops == [], text


def _convert_and_check(name: str, quantize: str) -> None:
    keras.utils.set_random_seed(0)
    model = converters.build(name, **small_overrides(name))
    spec = model_spec(model, converters.get_config(name).input_spec)
    calibration, evaluation = default_samples(input_shapes(model), spec, n=4)
    tflite = convert(model, quantize, calibration if quantize == "int8" else None)
    assert set(LiteRunner(tflite).input_details) == set(converters.get_config(name).input_names)
    stats = compare(model, tflite, evaluation)
    if quantize == "fp32":
        assert stats["max_abs"] <= 1e-4 * stats["range"]
    else:
        assert np.isfinite(stats["max_abs"]) and stats["mean_abs"] <= 0.1 * stats["range"]


@pytest.mark.parametrize("name", ["efficientnet_lite0_dct_split64", "late_concat_rfa_thinner"])
def test_representative_entries_convert_fp32(name):
    _convert_and_check(name, "fp32")


@pytest.mark.skipif(not SLOW, reason="set EDGE_DCT_SLOW_TESTS=1 (about 7 minutes)")
@pytest.mark.parametrize("quantize", ["fp32", "int8"])
@pytest.mark.parametrize("name", converters.list_models())
def test_every_entry_converts(name, quantize):
    _convert_and_check(name, quantize)


def test_cli_list_and_help(capsys):
    from converters.__main__ import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PAPER_MODELS + STUDENTS)
    for argv in (["--help"], ["export", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "--quantize" in capsys.readouterr().out
    # The training commands run under the same entry point, each with its own options.
    for command, option in (("targets", "--variants"), ("distill", "--adapter-width"), ("qat", "pool"),
                            ("default-model", "--calibration")):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        help_text = capsys.readouterr().out
        assert f"python -m converters {command}" in help_text and option in help_text
    with pytest.raises(SystemExit, match="unknown speed group 'nope'"):
        main(["bench", "--group", "nope"])


def test_training_step_imports_without_tensorflow():
    """QAT training needs only PyTorch: `import converters` is lazy, so a GPU box needs no TensorFlow."""
    code = ("import sys, converters.train.qat, converters.train.crops, converters.data.splits; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bench_table_format():
    from converters.ship.speed_table import BenchRow, format_table

    rows = [
        BenchRow("resnet50_rgb", 25_600_000, 3_860_000_000, {("fp32", 1): 80.0, ("int8", 1): 40.0}),
        BenchRow("downsampling", 25_500_000, 2_390_000_000, {("fp32", 1): 40.0, ("int8", 1): 40.0}),
    ]
    table = format_table(rows, "resnet50_rgb", ["fp32", "int8"], [1]).splitlines()
    assert table[0].startswith("| model |") and "paper speed-up" in table[0]
    assert table[3].rstrip(" |").split(" | ")[5:8] == ["2.00", "1.00", "2.17 (451 FPS)"]


def test_bench_cell_is_the_median_of_passes(monkeypatch):
    """A pass spoiled by another process (50 ms) does not decide the cell; the median does."""
    from converters.ship import speed_table as bench

    per_pass = {"resnet50_rgb": iter([80.0, 200.0, 84.0]), "downsampling": iter([40.0, 42.0, 100.0])}

    def timed(name, quantizations, threads, cache, runs):
        return bench.BenchRow(name, 1, 1, {("fp32", 1): next(per_pass[name])})

    monkeypatch.setattr(bench, "bench_model", timed)
    monkeypatch.setattr(bench, "speed_groups", lambda: {"t": ("resnet50_rgb", ("resnet50_rgb", "downsampling"))})
    lines: list[str] = []
    table = bench.run_bench(["t"], ["fp32"], [1],
                            cache=Path("unused"), passes=3, log=lines.append).splitlines()
    cells = [row.rstrip(" |").split(" | ") for row in table[2:]]
    assert [c[3] for c in cells] == ["84.0", "42.0"] and cells[1][4] == "2.00"
    assert len(lines) == 6 and "200.0 ms" in lines[2]  # each pass logs its own measurement
