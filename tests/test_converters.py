"""Tests of converters/: registry, Fig. S1 shapes, the EfficientNet-Lite0 weight port, export.

Needs the converters requirements (requirements-converters.txt); skipped without TensorFlow.
The conversion of *every* registry entry to fp32 and int8 takes ~6 minutes on 2 cores; it runs
only with ``EDGE_DCT_SLOW_TESTS=1``. The default run converts a representative subset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import converters  # noqa: E402  (after the skip: imports TensorFlow)
import keras  # noqa: E402
from converters.calibration import default_samples  # noqa: E402
from converters.export import LiteRunner, compare, convert, gpu_compatibility, input_shapes, model_spec  # noqa: E402
from converters.photos import corpus_photos, load_photo  # noqa: E402

PAPER_MODELS = [
    "upsampling",
    "upsampling_rfa",
    "deconvolution_rfa",
    "downsampling",
    "late_concat",
    "late_concat_rfa",
    "late_concat_rfa_thinner",
    "resnet50_rgb",
    "resnet50_ycbcr",
]
STUDENTS = [
    "efficientnet_lite0_dct_split64",
    "efficientnet_lite0_dct_split24",
    "efficientnet_lite0_dct_merged64",
    "efficientnet_lite0_dct_merged24",
]
SLOW = os.environ.get("EDGE_DCT_SLOW_TESTS") == "1"


def small_overrides(name: str) -> dict:
    """Builder overrides giving a tiny, fast copy of a registry model (10 classes).

    Only the overrides the builder accepts are passed. The EfficientNet family keeps its
    ImageNet weights (all but ``logits``): with random weights its logits collapse to ~1e-8
    and quantization errors mean nothing.
    """
    wanted = dict(grid=(8, 8), image_size=64, num_classes=10, width=1 / 16, adapter_width=32)
    accepted = converters.registry.accepted_overrides(name)
    return {k: v for k, v in wanted.items() if k in accepted}


def layer_shapes(model) -> dict[str, tuple]:
    return {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}


# ----------------------------------------------------------------------------------- registry


def test_registry_has_the_issue_names():
    assert set(PAPER_MODELS + STUDENTS + ["efficientnet_lite0_rgb"]) <= set(converters.list_models())


@pytest.mark.parametrize("name", converters.list_models())
def test_every_entry_builds_small_and_runs(name):
    config = converters.get_config(name)
    model = converters.build(name, **small_overrides(name))
    assert tuple(t.name for t in model.inputs) == config.input_names
    rng = np.random.default_rng(0)
    x = {t.name: rng.normal(size=(2, *t.shape[1:])).astype(np.float32) for t in model.inputs}
    y = np.asarray(model(x if len(x) > 1 else next(iter(x.values()))))
    assert y.shape == (2, 10) and np.isfinite(y).all()
    spec = config.input_spec
    assert spec["version"] == 1 and {"grid", "resize", "chroma", "layout", "channels", "normalize"} <= set(spec)
    assert config.licence and config.description


def test_channel_selection_dctnet24():
    spec = converters.get_config("efficientnet_lite0_dct_split24").input_spec
    assert spec["channels"]["y"] == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]
    assert spec["channels"]["cb"] == spec["channels"]["cr"] == [0, 1, 8, 9]
    assert len(spec["normalize"]["mean"]) == len(spec["normalize"]["std"]) == 24


# --------------------------------------------------------------------- Fig. S1 shapes (full size)

FIG_S1 = {
    "upsampling": {"y": (28, 28, 64), "cbcr": (14, 14, 128), "upsample_cbcr": (28, 28, 128), "concat": (28, 28, 192),
                   "conv3_block4_out": (28, 28, 512), "conv4_block6_out": (14, 14, 1024)},
    "upsampling_rfa": {"concat": (28, 28, 192), "conv2_block3_out": (28, 28, 256), "conv3_block4_out": (28, 28, 512)},
    "deconvolution_rfa": {"deconv_cb": (28, 28, 64), "deconv_concat": (28, 28, 128), "concat": (28, 28, 192),
                          "conv2_block3_out": (28, 28, 256)},
    "downsampling": {"y_down": (14, 14, 256), "concat": (14, 14, 384), "conv3_block4_out": (14, 14, 512),
                     "conv4_block6_out": (14, 14, 1024)},
    "late_concat": {"y_cb1_block4_out": (28, 28, 512), "y_cb2_out": (14, 14, 1024), "chroma_cb_out": (14, 14, 1024),
                    "concat": (14, 14, 2048)},
    "late_concat_rfa": {"y_cb1_block3_out": (28, 28, 1024), "y_cb2_block4_out": (28, 28, 512),
                        "y_cb3_out": (14, 14, 512), "chroma_cb_out": (14, 14, 512), "concat": (14, 14, 1024)},
    "late_concat_rfa_thinner": {"y_cb1_block3_out": (28, 28, 384), "y_cb2_block4_out": (28, 28, 384),
                                "y_cb3_out": (14, 14, 768), "chroma_cb_out": (14, 14, 256), "concat": (14, 14, 1024)},
    "resnet50_rgb": {"image": (224, 224, 3), "conv2_block3_out": (56, 56, 256), "conv3_block4_out": (28, 28, 512)},
    "resnet50_ycbcr": {"image": (224, 224, 3), "conv4_block6_out": (14, 14, 1024)},
}


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_fig_s1_shapes(name):
    shapes = layer_shapes(converters.build(name))
    for layer, shape in FIG_S1[name].items():
        assert shapes[layer] == shape, layer
    assert shapes["conv5_block3_out"] == (7, 7, 2048)
    assert shapes["logits"] == (1000,)


@pytest.mark.parametrize("name", STUDENTS)
def test_student_adapter_feeds_teacher_block5(name):
    model = converters.build(name, weights=None)
    shapes = layer_shapes(model)
    assert shapes["adapter_out"] == (28, 28, 40)
    assert shapes["block5_project_bn"] == (14, 14, 80)
    assert "stem_conv" not in shapes and "block4_project_bn" not in shapes
    assert converters.build(name, weights=None, adapter_width=512).get_layer(
        "adapter_y_conv" if "split" in name else "adapter_entry_conv"
    ).output.shape[-1] == 512


def test_profile_counts():
    rgb = converters.profile("efficientnet_lite0_rgb")
    assert rgb.params == 4_694_024  # the .pth's 4,694,073 values minus 49 num_batches_tracked
    assert 3.8e9 < converters.profile("resnet50_rgb").macs < 3.9e9  # ResNet-50 v1: 3.86 GMACs
    for name in STUDENTS:
        student = converters.profile(name)
        assert student.macs < 1.1 * rgb.macs and abs(student.params - rgb.params) < 0.1 * rgb.params


# ------------------------------------------------------------ EfficientNet-Lite0 weight port

LITE0_STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
                (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]  # kernel, stride, expand, out, repeats


def _same_pad(x, k, s):
    n = x.shape[0]
    total = max((-(-n // s) - 1) * s + k - n, 0)
    a = total // 2
    return np.pad(x, ((a, total - a), (a, total - a), (0, 0))), -(-n // s)


def _conv(x, w, s):  # x (H, W, Cin), w torch (Cout, Cin, k, k); TF SAME
    k = w.shape[-1]
    xp, n = _same_pad(x, k, s)
    out = np.zeros((n, n, w.shape[0]))
    for dy in range(k):
        for dx in range(k):
            out += xp[dy : dy + s * n : s, dx : dx + s * n : s] @ w[:, :, dy, dx].T
    return out


def _dwconv(x, w, s):  # w torch (C, 1, k, k)
    k = w.shape[-1]
    xp, n = _same_pad(x, k, s)
    out = np.zeros((n, n, x.shape[-1]))
    for dy in range(k):
        for dx in range(k):
            out += xp[dy : dy + s * n : s, dx : dx + s * n : s] * w[:, 0, dy, dx]
    return out


def _bn(x, sd, p):
    return (x - sd[p + ".running_mean"]) / np.sqrt(sd[p + ".running_var"] + 1e-3) * sd[p + ".weight"] + sd[p + ".bias"]


def reference_lite0(sd, image):
    """Independent float64 numpy forward of EfficientNet-Lite0 on one (224, 224, 3) input."""
    def relu6(t):
        return np.clip(t, 0, 6)

    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    x = relu6(_bn(_conv(image.astype(np.float64), sd["_conv_stem.weight"], 2), sd, "_bn0"))
    i = 0
    for k, s, e, out, repeats in LITE0_STAGES:
        for r in range(repeats):
            p, inp = f"_blocks.{i}.", x
            if e != 1:
                x = relu6(_bn(x @ sd[p + "_expand_conv.weight"][:, :, 0, 0].T, sd, p + "_bn0"))
            x = relu6(_bn(_dwconv(x, sd[p + "_depthwise_conv.weight"], s if r == 0 else 1), sd, p + "_bn1"))
            x = _bn(x @ sd[p + "_project_conv.weight"][:, :, 0, 0].T, sd, p + "_bn2")
            if (s if r == 0 else 1) == 1 and inp.shape[-1] == out:
                x = x + inp
            i += 1
    x = relu6(_bn(x @ sd["_conv_head.weight"][:, :, 0, 0].T, sd, "_bn1"))
    return x.mean(axis=(0, 1)) @ sd["_fc.weight"].T + sd["_fc.bias"]


@pytest.fixture(scope="module")
def lite0():
    try:
        from converters.efficientnet_lite import lite0_state_dict

        sd = lite0_state_dict()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return converters.build("efficientnet_lite0_rgb"), sd


@pytest.fixture(scope="module")
def clothing_photos():
    photos = corpus_photos("clothing")
    if not photos:
        pytest.skip("shared photo corpus not found")
    return photos


def test_legacy_pth_loader(lite0):
    _, sd = lite0
    assert len(sd) == 296
    assert sum(v.size for v in sd.values()) == 4_694_073
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3) and sd["_conv_stem.weight"].dtype == np.float32
    assert sd["_fc.weight"].shape == (1000, 1280)


def test_lite0_port_matches_numpy_reference(lite0, clothing_photos):
    model, sd = lite0
    for path in clothing_photos[::11]:  # 4 photos from 4 categories
        x = (load_photo(path).astype(np.float32) - 127.0) / 128.0
        keras_logits = np.asarray(model(x[None]))[0]
        ref = reference_lite0(sd, x)
        assert np.max(np.abs(keras_logits - ref)) <= 1e-3 * np.max(np.abs(ref)), path
        assert keras_logits.argmax() == ref.argmax()


CLOTHING = {
    "jersey", "sweatshirt", "cardigan", "suit", "jean", "miniskirt", "overskirt", "hoopskirt", "gown", "sarong",
    "kimono", "pajama", "poncho", "cloak", "fur coat", "trench coat", "lab coat", "military uniform", "abaya",
    "vestment", "stole", "apron", "bib", "brassiere", "maillot", "swimming trunks", "bikini", "sock",
    "Christmas stocking", "mitten", "wool", "velvet", "sandal", "clog", "Loafer", "running shoe", "cowboy boot",
    "cowboy hat", "sombrero", "bonnet", "bathing cap", "shower cap", "ski mask", "knee pad", "bulletproof vest",
    "bow tie", "Windsor tie", "academic gown", "diaper", "purse", "wallet", "mask", "shower curtain",
}
TOP1 = {
    "shoes": {"sandal", "clog", "Loafer", "running shoe", "cowboy boot"},
    "shorts": {"swimming trunks", "miniskirt", "jean"},
    "outwear": {"trench coat", "fur coat", "cloak", "military uniform", "bulletproof vest"},
    "t-shirt": {"jersey", "sweatshirt", "bib", "poncho"},
}


def test_lite0_predictions_are_sensible(lite0, clothing_photos):
    try:
        labels = converters.imagenet_labels()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert CLOTHING <= set(labels)
    model, _ = lite0
    x = np.stack([load_photo(p) for p in clothing_photos]).astype(np.float32)
    logits = np.asarray(model.predict((x - 127.0) / 128.0, verbose=0))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    for path, row in zip(clothing_photos, top5):
        names = [labels[i] for i in row]
        assert CLOTHING & set(names), (path, names)
        if path.parent.name in TOP1:
            assert names[0] in TOP1[path.parent.name], (path, names)
    assert np.mean([labels[r[0]] in CLOTHING for r in top5]) >= 0.9


def test_imagenet_labels():
    try:
        labels = converters.imagenet_labels()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert len(labels) == 1000
    assert (labels[0], labels[207], labels[610], labels[834]) == ("tench", "golden retriever", "jersey", "suit")


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
            from converters.calibration import photo_set
            from converters.photos import corpus_dir

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


def test_bench_table_format():
    from converters.bench import BenchRow, format_table

    rows = [
        BenchRow("resnet50_rgb", 25_600_000, 3_860_000_000, {("fp32", 1): 80.0, ("int8", 1): 40.0}),
        BenchRow("downsampling", 25_500_000, 2_390_000_000, {("fp32", 1): 40.0, ("int8", 1): 40.0}),
    ]
    table = format_table(rows, "resnet50_rgb", ["fp32", "int8"], [1]).splitlines()
    assert table[0].startswith("| model |") and "paper speed-up" in table[0]
    assert table[3].rstrip(" |").split(" | ")[5:8] == ["2.00", "1.00", "2.17 (451 FPS)"]


def test_bench_cell_is_the_median_of_passes(monkeypatch):
    """A pass spoiled by another process (50 ms) does not decide the cell; the median does."""
    from converters import bench

    per_pass = {"resnet50_rgb": iter([80.0, 200.0, 84.0]), "downsampling": iter([40.0, 42.0, 100.0])}

    def timed(name, quantizations, threads, cache, runs):
        return bench.BenchRow(name, 1, 1, {("fp32", 1): next(per_pass[name])})

    monkeypatch.setattr(bench, "bench_model", timed)
    lines: list[str] = []
    table = bench.run_bench([("resnet50_rgb", ["resnet50_rgb", "downsampling"])], ["fp32"], [1],
                            cache=Path("unused"), passes=3, log=lines.append).splitlines()
    cells = [row.rstrip(" |").split(" | ") for row in table[2:]]
    assert [c[3] for c in cells] == ["84.0", "42.0"] and cells[1][4] == "2.00"
    assert len(lines) == 6 and "200.0 ms" in lines[2]  # each pass logs its own measurement
