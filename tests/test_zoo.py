"""converters.zoo: the registry, Fig. S1 shapes, the EfficientNet-Lite0 weight port, labels.

Needs the converters requirements (requirements-converters.txt); skipped without TensorFlow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import converters  # noqa: E402
from converters.data.photos import corpus_photos, load_photo  # noqa: E402

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
    accepted = converters.zoo.accepted_overrides(name)
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
        from converters.zoo.efficientnet_lite import lite0_state_dict

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
    "vestment", "stole", "apron", "bib", "brassiere", "maillot", "maillot, tank suit", "swimming trunks", "bikini", "sock",
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
    # Classes sharing a first lemma are told apart, and every label is short.
    assert len({label.lower() for label in labels}) == 1000
    assert {"maillot", "maillot, tank suit", "crane (bird)", "crane (machine)", "cardigan",
            "Cardigan, Cardigan Welsh corgi"} <= set(labels)
    assert max(len(label) for label in labels) <= 40


def test_speed_groups_come_from_the_registry():
    groups = converters.zoo.speed_groups()
    assert groups["resnet"][0] == "resnet50_rgb" and set(PAPER_MODELS) <= set(groups["resnet"][1])
    assert groups["lite0"][0] == "efficientnet_lite0_rgb" and set(STUDENTS) <= set(groups["lite0"][1])
    for baseline, names in groups.values():
        assert names[0] == baseline and converters.get_config(baseline).baseline
    assert converters.get_config("downsampling").paper_speedup == "2.17 (451 FPS)"
    with pytest.raises(KeyError, match="unknown speed group 'nope'; known: "):
        from converters.ship.speed_table import run_bench

        run_bench(["nope"])
