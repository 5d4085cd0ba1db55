"""prepare(): DCT-domain geometry against a pixel-domain reference, exact orientation.

Reference = libjpeg-turbo full decode (Pillow) -> EXIF orientation -> area resize
(cv2.INTER_AREA) -> centre crop -> YCbCr -> blockwise DCT; prepare()'s coefficients are
compared in pixels (IDCT of its un-normalized output) by PSNR.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edge_dct
from edge_dct.prepare import eval_window, prepare
from edge_dct.spec import InputSpec, dct_spec
from tests import oracle
from tests.jpeg_reference import idct_plane as blocks_to_pixels
from tests.jpeg_reference import psnr
from tests.conftest import clothing_photos, synthetic_image
from tests.test_header import exif_app1, with_segment

cv2 = pytest.importorskip("cv2")

SPEC = dct_spec((28, 28), "split", "all64")

def reference_ycbcr(data: bytes, spec: InputSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-domain reference: Y (8H, 8W), Cb and Cr (4H, 4W), level-shifted float."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB")) \
        if edge_dct.read_header(data).orientation != 1 else Image.open(io.BytesIO(data)).convert("RGB")
    rgb = np.asarray(img, np.float32)
    h, w = rgb.shape[:2]
    x, y, ww, wh = eval_window(spec, w, h)
    gh, gw = spec.grid
    scale_x, scale_y = 8 * gw / ww, 8 * gh / wh
    rw, rh = round(w * scale_x), round(h * scale_y)
    interp = cv2.INTER_AREA if scale_x < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (rw, rh), interpolation=interp)
    left, top = round(x * scale_x), round(y * scale_y)
    crop = resized[top:top + 8 * gh, left:left + 8 * gw]
    r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
    yy = 0.299 * r + 0.587 * g + 0.114 * b - 128
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    half = lambda p: p.reshape(4 * gh, 2, 4 * gw, 2).mean((1, 3))  # noqa: E731
    return yy, half(cb), half(cr)


def prepared_ycbcr(data: bytes, spec: InputSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = prepare(data, spec)
    y = blocks_to_pixels(t["y"][0])
    cbcr = t["cbcr"][0]
    return y, blocks_to_pixels(cbcr[..., :64]), blocks_to_pixels(cbcr[..., 64:])


def geometry_psnr(data: bytes, spec: InputSpec = SPEC) -> tuple[float, float, float]:
    ref = reference_ycbcr(data, spec)
    got = prepared_ycbcr(data, spec)
    return tuple(psnr(g, r) for g, r in zip(got, ref))


def test_photos_psnr() -> None:
    scores = np.array([geometry_psnr(p.read_bytes()) for p in clothing_photos()])
    med, worst = np.median(scores, 0), scores.min(0)
    print(f"\nclothing photos: median Y/Cb/Cr PSNR {med.round(1)}, worst {worst.round(1)}")
    assert (med >= 34).all() and (worst >= 28).all(), (med, worst)


SUBSAMPLINGS = {"444": (1, 1), "422": (2, 1), "420": (2, 2), "440": (1, 2), "411": (4, 1)}


@pytest.mark.parametrize("ss", SUBSAMPLINGS)
@pytest.mark.parametrize("size", [(375, 500), (301, 457), (97, 131)])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_generated_psnr(ss: str, size: tuple[int, int], orientation: int) -> None:
    h, w = size
    data = oracle.encode(synthetic_image(h, w, seed=h + w), quality=92, sampling=SUBSAMPLINGS[ss])
    if orientation != 1:
        data = with_segment(data, exif_app1(orientation))
    scores = geometry_psnr(data)
    assert min(scores) >= 28 and np.median(scores) >= 30, scores


@pytest.mark.parametrize("ss", SUBSAMPLINGS)
def test_generated_psnr_large(ss: str) -> None:
    """1200x1600: a downscale (k < 8 reduced IDCT) for every subsampling."""
    test_generated_psnr(ss, (1200, 1600), 6)


def test_grayscale_gives_zero_chroma() -> None:
    data = oracle.encode(synthetic_image(300, 400, 1), quality=90, sampling=(1, 1))
    t = prepare(data, SPEC)
    assert not t["cbcr"].any()
    ref_y = reference_ycbcr(data, SPEC)[0]
    assert psnr(blocks_to_pixels(t["y"][0]), ref_y) >= 30  # noisy synthetic content


def test_rgb_file_is_converted() -> None:
    from tests.conftest import CORPUS

    data = (CORPUS / "conformance/image-rs-reftest/rgb.jpg").read_bytes()
    assert edge_dct.read_header(data).color_space == "rgb"
    assert min(geometry_psnr(data)) >= 30


def test_cmyk_is_refused() -> None:
    from tests.conftest import CORPUS

    with pytest.raises(edge_dct.UnsupportedJpegError, match="CMYK"):
        prepare(CORPUS / "conformance/image-rs-reftest/mozilla/jpg-cmyk-1.jpg", SPEC)


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (16, 16), (100, 60)])
def test_images_smaller_than_grid(size: tuple[int, int]) -> None:
    h, w = size
    data = oracle.encode(synthetic_image(h, w), quality=95, sampling=(2, 2))
    t = prepare(data, SPEC)
    assert np.isfinite(t["y"]).all() and np.isfinite(t["cbcr"]).all()
    if h * w == 1:  # a single pixel fills the grid: only DC survives
        y = t["y"][0]
        assert np.allclose(y[..., 1:], 0, atol=1e-3)
        assert np.allclose(y[..., 0], y[0, 0, 0])
    else:
        assert min(geometry_psnr(data)) >= 28


@pytest.mark.parametrize("window", [(10, 4, 157, 126), (-50, -50, 20, 20), (0.5, 0, 300, 2)])
def test_window_beyond_a_one_block_image(window: tuple[float, float, float, float]) -> None:
    """A window reaching past every edge of a one-block image still reads that block only
    (found by the fuzzer: the window's first block column was clamped to one past the last,
    so the planned plane was empty and resampling read outside it)."""
    data = oracle.encode(synthetic_image(1, 1), quality=95, sampling=(2, 2))
    t = prepare(data, SPEC, window=window)
    whole = prepare(data, SPEC)
    for name in ("y", "cbcr"):
        assert np.isfinite(t[name]).all()
    np.testing.assert_allclose(t["y"][0, ..., 0], whole["y"][0, 0, 0, 0], atol=1e-3)
    np.testing.assert_allclose(t["y"][0, ..., 1:], 0, atol=1e-3)


def test_block_aligned_identity_is_exact_coefficients() -> None:
    """A 224x224 image with size=224 maps onto the grid 1:1: prepare == dequantized DCT."""
    data = oracle.encode(synthetic_image(224, 224), quality=90, sampling=(2, 2))
    spec = InputSpec(grid=(28, 28), resize={"mode": "shorter_side", "size": 224})
    t = prepare(data, spec)
    dct = edge_dct.read_dct(data)
    np.testing.assert_allclose(t["y"][0], dct.y, atol=0.05)
    np.testing.assert_allclose(t["cbcr"][0][..., :64], dct.cb, atol=0.05)


JPEGTRAN = {2: ["-flip", "horizontal"], 3: ["-rotate", "180"], 4: ["-flip", "vertical"],
            5: ["-transpose"], 6: ["-rotate", "90"], 7: ["-transverse"], 8: ["-rotate", "270"]}


@pytest.mark.skipif(shutil.which("jpegtran") is None, reason="jpegtran (libjpeg-turbo-progs)")
@pytest.mark.parametrize("orientation", range(2, 9))
@pytest.mark.parametrize("ss", ["420", "422", "444"])
def test_orientation_is_exact(tmp_path: Path, orientation: int, ss: str) -> None:
    """EXIF orientation o == the losslessly transformed file (jpegtran), bit for bit."""
    data = oracle.encode(synthetic_image(256, 384, seed=orientation), quality=85,
                         sampling=SUBSAMPLINGS[ss])
    src = tmp_path / "a.jpg"
    src.write_bytes(data)
    turned = subprocess.run(["jpegtran", "-perfect", *JPEGTRAN[orientation], str(src)],
                            check=True, capture_output=True).stdout
    tagged = with_segment(data, exif_app1(orientation))
    for spec in (SPEC, dct_spec((28, 28), "merged", "dctnet24"),
                 InputSpec(grid=(16, 24), resize={"mode": "stretch"})):
        a, b = prepare(tagged, spec), prepare(turned, spec)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{orientation} {name}")
    assert not np.array_equal(prepare(data, SPEC)["y"], prepare(tagged, SPEC)["y"])


def test_layouts_channels_and_normalization() -> None:
    data = clothing_photos()[3].read_bytes()
    split = prepare(data, dct_spec((28, 28), "split", "dctnet24"))
    merged = prepare(data, dct_spec((28, 28), "merged", "dctnet24"))
    assert split["y"].shape == (1, 28, 28, 16) and split["cbcr"].shape == (1, 14, 14, 8)
    assert merged["dct"].shape == (1, 28, 28, 24)
    np.testing.assert_array_equal(merged["dct"][..., :16], split["y"])
    up = np.repeat(np.repeat(split["cbcr"], 2, 1), 2, 2)
    np.testing.assert_array_equal(merged["dct"][..., 16:], up)
    full = prepare(data, SPEC)
    np.testing.assert_array_equal(split["y"], full["y"][..., list(dct_spec(selection="dctnet24").channels["y"])])
    np.testing.assert_array_equal(split["cbcr"][..., :4], full["cbcr"][..., [0, 1, 8, 9]])
    np.testing.assert_array_equal(split["cbcr"][..., 4:], full["cbcr"][..., [64, 65, 72, 73]])
    mean = np.arange(16 + 8, dtype=np.float32)
    std = np.linspace(1, 5, 24).astype(np.float32)
    normed = prepare(data, InputSpec(layout="split", channels=dct_spec(selection="dctnet24").channels,
                                     normalize={"mean": mean, "std": std}))
    np.testing.assert_allclose(normed["y"], (split["y"] - mean[:16]) / std[:16], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(normed["cbcr"], (split["cbcr"] - mean[16:]) / std[16:], rtol=1e-5,
                               atol=1e-5)


def test_int8_output_matches_float_quantized() -> None:
    data = clothing_photos()[5].read_bytes()
    q = {"y": (4.0, -3), "cbcr": (2.5, 7)}
    f = prepare(data, SPEC)
    i8 = prepare(data, SPEC, dtype=np.int8, quantization=q)
    for name, (scale, zp) in q.items():
        assert i8[name].dtype == np.int8
        want = np.clip(np.round(f[name] / scale) + zp, -128, 127)
        assert np.abs(i8[name].astype(np.int32) - want).max() <= 1  # float rounding ties
        assert (i8[name] == want).mean() > 0.999


def test_window_and_flip() -> None:
    data = oracle.encode(synthetic_image(240, 320), quality=95, sampling=(1, 1))
    spec = InputSpec(grid=(8, 8), resize={"mode": "stretch"})
    a = prepare(data, spec, window=(40, 20, 128, 128))
    b = prepare(data, spec, window=(40, 20, 128, 128), hflip=True)
    # mirroring pixels = negating odd horizontal frequencies of mirrored block order
    odd_u = np.array([(-1) ** (k % 8) for k in range(64)], np.float32)
    np.testing.assert_allclose(b["y"][0], a["y"][0][:, ::-1] * odd_u, atol=0.05)


def test_spec_validation_names_fields() -> None:
    from edge_dct.spec import InvalidSpecError

    with pytest.raises(InvalidSpecError, match="grid"):
        InputSpec(grid=(27, 28))
    with pytest.raises(InvalidSpecError, match="layout"):
        InputSpec(layout="stacked")
    with pytest.raises(InvalidSpecError, match="channels.cb"):
        InputSpec(channels={"y": [0], "cb": [70], "cr": []})
    with pytest.raises(InvalidSpecError, match="normalize.std"):
        InputSpec(channels={"y": [0], "cb": [0], "cr": [0]}, normalize={"mean": [0] * 3, "std": [1, 0, 1]})
    with pytest.raises(InvalidSpecError, match="resize.mode"):
        InputSpec.from_dict({**SPEC.to_dict(), "resize": {"mode": "fit"}})
    with pytest.raises(InvalidSpecError, match="bogus"):
        InputSpec.from_dict({**SPEC.to_dict(), "bogus": 1})
    assert InputSpec.from_json(SPEC.to_json()) == SPEC
    assert [t.name for t in SPEC.tensors] == ["y", "cbcr"]


def test_augment_deterministic_and_in_bounds() -> None:
    from edge_dct.augment import AugmentOptions, Augmenter

    photos = clothing_photos()[:6]
    a = [Augmenter(SPEC, seed=7)(p) for p in photos]
    b = [Augmenter(SPEC, seed=7)(p) for p in photos]
    c = [Augmenter(SPEC, seed=8)(p) for p in photos]
    for x, y in zip(a, b):
        assert x.window == y.window and x.hflip == y.hflip
        np.testing.assert_array_equal(x.tensors["y"], y.tensors["y"])
    assert any(x.window != z.window for x, z in zip(a, c))
    assert {s.hflip for s in a + c} == {True, False}
    for s in a + c:
        x0, y0, w, h = s.window
        assert 0 <= x0 and 0 <= y0 and x0 + w <= s.size[0] + 1e-6 and y0 + h <= s.size[1] + 1e-6
        assert 0.08 * s.size[0] * s.size[1] * 0.999 <= w * h
    no_flip = Augmenter(SPEC, AugmentOptions(scale=(1, 1), ratio=(0.75, 0.75), hflip=0), seed=1)
    assert not no_flip(photos[0]).hflip


def test_augmented_crop_matches_reference_crop() -> None:
    """The window path is the eval path with another rectangle: check it in pixels."""
    data = clothing_photos()[2].read_bytes()
    info = edge_dct.read_header(data)
    window = (50.0, 80.0, 300.0, 260.0)
    spec = InputSpec(grid=(28, 28), resize={"mode": "stretch"})
    t = prepare(data, spec, window=window)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32)
    x, y, w, h = (int(v) for v in window)
    crop = cv2.resize(rgb[y:y + h, x:x + w], (224, 224), interpolation=cv2.INTER_AREA)
    ref_y = 0.299 * crop[..., 0] + 0.587 * crop[..., 1] + 0.114 * crop[..., 2] - 128
    assert psnr(blocks_to_pixels(t["y"][0]), ref_y) >= 34
    assert info.width >= x + w and info.height >= y + h


MEMORY_PROBE = """
import sys
from edge_dct.prepare import allocate, prepare
from edge_dct.spec import dct_spec
data = open(sys.argv[1], "rb").read()
spec = dct_spec()
out = allocate(spec)
prepare(sys.argv[2], spec, out=out)  # warm up code paths on a small photo
def peak_kb():  # VmHWM: this process image's peak RSS (ru_maxrss survives fork+exec)
    line = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    return int(line.split()[1])
before = peak_kb()
prepare(data, spec, out=out)
print((peak_kb() - before) / 1024)
"""


@pytest.mark.parametrize("progressive", [False, True])
def test_peak_memory_24mp(tmp_path: Path, progressive: bool) -> None:
    """6000x4000 (24 MP): sequential files stream (<= 32 MB growth); progressive buffer."""
    import sys

    tile = synthetic_image(500, 500, seed=3)
    data = oracle.encode(np.tile(tile, (8, 12, 1)), quality=90, sampling=(2, 2),
                         progressive=progressive)
    path = tmp_path / "24mp.jpg"
    path.write_bytes(data)
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path),
                          str(clothing_photos()[0])], check=True, capture_output=True,
                         text=True).stdout
    growth_mb = float(out.strip().splitlines()[-1])
    print(f"\npeak RSS growth, 24 MP {'progressive' if progressive else 'baseline'} "
          f"({len(data) / 1e6:.1f} MB file): {growth_mb:.1f} MB")
    # a whole-image int16 coefficient buffer would be 6000*4000*1.5*2 = 72 MB
    assert growth_mb <= (80 if progressive else 32), growth_mb
