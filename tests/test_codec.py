"""encode / transcode: custom tables round-trip, DCT-domain requantization, metadata, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import simplejpeg
from PIL import Image

import edge_dct
from edge_dct import QuantTables, encode, file_tables, standard_tables, transcode
from tests import oracle
from tests.conftest import clothing_photos, corpus_jpegs, synthetic_image
from tests.test_header import exif_app1, with_segment


def tuned_like() -> QuantTables:
    """Tables shaped like a tuned set: small steps at low frequencies, large at high."""
    v, u = np.mgrid[0:8, 0:8]
    luma = np.clip(3 + 6 * (u + v) ** 1.5, 1, 255).astype(np.uint16)
    return QuantTables(luma, np.clip(luma * 2, 1, 255).astype(np.uint16))


def coefficients(data: bytes) -> list[np.ndarray]:
    return list(edge_dct.read_dct(data, dequantize=False).planes)


def decodes_everywhere(data: bytes, shape: tuple[int, ...]) -> None:
    """Pillow, libjpeg-turbo (simplejpeg) and read_dct all read the file, at the same size."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.size == (shape[1], shape[0])
    assert simplejpeg.decode_jpeg(data, colorspace="RGB").shape[:2] == shape[:2]
    info = edge_dct.read_dct(data).info
    assert (info.height, info.width) == shape[:2]


@pytest.mark.parametrize("form", ["8x8", "64", "list"])
@pytest.mark.parametrize("channels", [3, 1])
def test_encode_round_trips_custom_tables(form: str, channels: int) -> None:
    t = tuned_like()
    tables = {"8x8": t, "64": (t.luma.reshape(64), t.chroma.reshape(64)),
              "list": (t.luma.tolist(), t.chroma.tolist())}[form]
    img = synthetic_image(37, 53, channels)
    data = encode(img, tables=tables)
    q = edge_dct.read_header(data).quant_tables
    np.testing.assert_array_equal(q[0], t.luma)
    if channels == 3:
        np.testing.assert_array_equal(q[1], t.chroma)
        np.testing.assert_array_equal(q[2], t.chroma)
    decodes_everywhere(data, img.shape)


@pytest.mark.parametrize("quality", [10, 50, 75, 95])
def test_quality_gives_libjpegs_standard_tables(quality: int) -> None:
    img = synthetic_image(32, 32)
    ours = edge_dct.read_header(encode(img, quality=quality)).quant_tables
    peer = edge_dct.read_header(simplejpeg.encode_jpeg(img, quality=quality)).quant_tables
    np.testing.assert_array_equal(ours[:2], peer[:2])
    t = standard_tables(quality)
    np.testing.assert_array_equal(t.luma, ours[0])
    np.testing.assert_array_equal(t.chroma, ours[1])


def test_encode_is_close_to_the_pixels() -> None:
    """As close as libjpeg-turbo's own encoder at the same quality (simplejpeg)."""
    img = synthetic_image(64, 96)
    ours = simplejpeg.decode_jpeg(encode(img, quality=95, subsampling="444"), colorspace="RGB")
    peer = simplejpeg.decode_jpeg(simplejpeg.encode_jpeg(img, quality=95, colorsubsampling="444"),
                                  colorspace="RGB")
    err = [np.abs(x.astype(int) - img).mean() for x in (ours, peer)]
    assert err[0] < 4.0 and abs(err[0] - err[1]) < 0.1


@pytest.mark.parametrize("subsampling", ["444", "422", "420", "440"])
def test_encode_options(subsampling: str) -> None:
    img = synthetic_image(40, 48)
    info = edge_dct.read_header(encode(img, subsampling=subsampling, progressive=True,
                                       restart_interval=2))
    assert info.subsampling == subsampling
    assert info.progressive
    assert info.restart_interval == 2
    plain = encode(img, optimize=False)
    assert len(encode(img)) < len(plain)  # optimized Huffman tables are smaller


@pytest.mark.filterwarnings("ignore::edge_dct.EdgeDctWarning")  # conformance files with junk bytes
def test_transcode_with_own_tables_keeps_every_coefficient(corpus_available) -> None:
    """Lossless on every corpus file that decodes: no tables, or the file's own two tables
    (when it has two 8-bit ones), give the same quantized coefficients."""
    checked = 0
    for path in corpus_jpegs():
        data = path.read_bytes()
        try:
            before = coefficients(data)
            info = edge_dct.read_header(data)
        except edge_dct.EdgeDctError as e:
            with pytest.raises(type(e)):
                transcode(data)
            continue
        for out in (transcode(data), transcode(data, progressive=True, optimize=False)):
            assert [np.array_equal(a, b) for a, b in zip(before, coefficients(out))] == [True] * len(before)
        q = info.quant_tables
        if q.max() <= 255 and (len(q) == 1 or all(np.array_equal(q[1], t) for t in q[2:])):
            after = coefficients(transcode(data, tables=file_tables(data)))
            assert all(np.array_equal(a, b) for a, b in zip(before, after)), path
        checked += 1
    assert checked >= 60


def requantized(c: np.ndarray, q_old: np.ndarray, q_new: np.ndarray) -> np.ndarray:
    """Reference: round(c * q_old / q_new), halves away from zero, clamped for baseline."""
    num = c.astype(np.int64) * q_old.reshape(64)
    mag = (np.abs(num) + q_new.reshape(64) // 2) // q_new.reshape(64)
    limit = np.full(64, 1023)
    mag = np.where((num < 0) & (np.arange(64) == 0), np.minimum(mag, 1024), np.minimum(mag, limit))
    return (np.sign(num) * mag).astype(np.int16)


@pytest.mark.parametrize("photo", [0, 7, 21])
def test_transcode_requantizes_each_coefficient(photo: int, corpus_available) -> None:
    path = clothing_photos()[photo]
    data = path.read_bytes()
    t = tuned_like()
    src = edge_dct.read_dct(data, dequantize=False)
    out = transcode(data, tables=t)
    dst = edge_dct.read_dct(out, dequantize=False)
    np.testing.assert_array_equal(dst.quant_tables[0], t.luma)
    for ci, (a, b) in enumerate(zip(src.planes, dst.planes)):
        expect = requantized(a, src.quant_tables[ci], t.luma if ci == 0 else t.chroma)
        np.testing.assert_array_equal(b, expect)
    assert len(out) < len(data)
    decodes_everywhere(out, (src.info.height, src.info.width))


@pytest.mark.parametrize("seed", range(6))
def test_requantization_is_exact_for_any_steps(seed: int, corpus_available) -> None:
    """Random steps 1..255 (finer and coarser than the file's, ties included) against the
    integer formula, on a photo whose coefficients span the baseline range."""
    rng = np.random.default_rng(seed)
    data = clothing_photos()[seed].read_bytes()
    t = QuantTables(rng.integers(1, 256, (8, 8)).astype(np.uint16), rng.integers(1, 256, (8, 8)).astype(np.uint16))
    src = edge_dct.read_dct(data, dequantize=False)
    dst = edge_dct.read_dct(transcode(data, tables=t, optimize=False), dequantize=False)
    for ci, (a, b) in enumerate(zip(src.planes, dst.planes)):
        np.testing.assert_array_equal(b, requantized(a, src.quant_tables[ci], t.luma if ci == 0 else t.chroma))


def fused_and_libjpeg(data: bytes, **kw) -> tuple[bytes, bytes, list[str]]:
    """transcode's bytes by its default route and through libjpeg alone, and which entropy
    decoder the default route used."""
    from edge_dct import _jpeg

    args = dict(quality=0, tables=None, optimize=False, progressive=False, restart_interval=0,
                keep_markers=True, strict=True, max_pixels=0, max_scans=0)
    args.update(kw)
    tables = args["tables"]
    if tables is not None:  # the (2, 64) uint16 array edge_dct.transcode hands on
        tables = np.stack([np.asarray(tables.luma, np.uint16).reshape(64),
                           np.asarray(tables.chroma, np.uint16).reshape(64)])
    call = [data, "<bytes>", args["quality"], tables, args["optimize"], args["progressive"],
            args["restart_interval"], args["keep_markers"], args["strict"], args["max_pixels"],
            args["max_scans"]]
    before = _jpeg.entropy_path_counts()
    fused = _jpeg.transcode(*call, True)[0]
    after = _jpeg.entropy_path_counts()
    libjpeg = _jpeg.transcode(*call, False)[0]
    return fused, libjpeg, [k for k in after if after[k] != before[k]]


@pytest.mark.filterwarnings("ignore::edge_dct.EdgeDctWarning")
@pytest.mark.parametrize("quality, restart, optimize", [
    (0, 0, False), (50, 0, False), (90, 3, False), (20, 1, False), (0, 0, True), (75, 2, True)])
def test_fused_transcode_writes_libjpegs_bytes(quality: int, restart: int, optimize: bool,
                                               corpus_available) -> None:
    """Sequential re-codes of files the built-in decoder reads go through the fused path
    (built-in decoder into the built-in writer, block by block; optimized Huffman tables from a
    first, counting pass): the very bytes libjpeg-turbo's jpeg_write_coefficients writes,
    markers, padding blocks and restarts included; every other file takes libjpeg's path."""
    paths = {"builtin": 0, "libjpeg": 0, "fallback": 0}
    for path in corpus_jpegs():
        data = path.read_bytes()
        try:
            fused, libjpeg, used = fused_and_libjpeg(data, quality=quality, restart_interval=restart,
                                                     optimize=optimize)
        except edge_dct.EdgeDctError:
            continue
        assert fused == libjpeg, path
        for name in used:
            paths[name] += 1
    assert paths["builtin"] >= 50, paths


def test_fused_transcode_with_tables_grayscale_and_odd_sizes() -> None:
    """Odd sizes need MCU padding blocks at the right and bottom edges (4:2:0 and 4:2:2 2x2 /
    2x1 luma MCUs); grayscale has one block per MCU; tables requantize on the way."""
    t = tuned_like()
    for (h, w), sampling in [((37, 53), (2, 2)), ((9, 31), (2, 1)), ((8, 8), (1, 1)), ((1, 17), (2, 2))]:
        data = oracle.encode(synthetic_image(h, w), quality=85, sampling=sampling)
        fused, libjpeg, used = fused_and_libjpeg(data, tables=t)
        assert used == ["builtin"] and fused == libjpeg, (h, w, sampling)
        decodes_everywhere(fused, (h, w))
    gray = oracle.encode(synthetic_image(23, 41, channels=1), quality=80, sampling=(1, 1))
    for optimize in (False, True):
        fused, libjpeg, used = fused_and_libjpeg(gray, quality=30, restart_interval=2, optimize=optimize)
        assert used == ["builtin"] and fused == libjpeg


TRANSCODE_MEMORY_PROBE = """
import sys
from edge_dct import transcode
data, small = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
transcode(small, quality=50, optimize=sys.argv[3] == "1")  # warm up code paths
def peak_kb():  # VmHWM: this process image's peak RSS
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
before = peak_kb()
out = transcode(data, quality=50, optimize=sys.argv[3] == "1")
print(len(out) / 1e6, (peak_kb() - before) / 1024)
"""


@pytest.mark.parametrize("optimize", [False, True])
def test_fused_transcode_peak_memory_24mp(tmp_path, optimize: bool) -> None:
    """6000x4000 (24 MP) baseline 4:2:0: the fused path holds no whole-image coefficients
    (libjpeg's path: 72 MB of them); peak RSS grows by about the output's size."""
    import subprocess
    import sys

    tile = synthetic_image(500, 500, seed=3)
    big, small = tmp_path / "24mp.jpg", tmp_path / "small.jpg"
    big.write_bytes(oracle.encode(np.tile(tile, (8, 12, 1)), quality=90, sampling=(2, 2)))
    small.write_bytes(oracle.encode(tile, quality=90, sampling=(2, 2)))
    out = subprocess.run([sys.executable, "-c", TRANSCODE_MEMORY_PROBE, str(big), str(small),
                          "1" if optimize else "0"], check=True, capture_output=True, text=True)
    out_mb, growth_mb = map(float, out.stdout.split())
    print(f"\n24 MP transcode (optimize={optimize}): {out_mb:.1f} MB out, peak RSS +{growth_mb:.1f} MB")
    assert growth_mb <= 2 * out_mb + 8, growth_mb


def crafted_15_bit_ac() -> bytes:
    """An 8x8 grayscale baseline JPEG whose one block has AC[1] = 32767: its AC table codes
    symbol 0x0F (a size of 15 bits, which decoders accept) as "00" and EOB as "01"."""
    dqt = b"\xff\xdb\x00\x43\x00" + bytes([1] * 64)
    sof = b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"
    dht_dc = b"\xff\xc4\x00\x14\x00" + bytes([0, 1] + [0] * 14) + b"\x00"
    dht_ac = b"\xff\xc4\x00\x15\x10" + bytes([0, 2] + [0] * 14) + b"\x0f\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    scan = b"\x0f\xff\x00\xef"  # DC "00", AC "00" + 15 one bits, EOB "01", 1-padding
    return b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + scan + b"\xff\xd9"


def test_out_of_range_coefficients_are_refused_not_miscoded() -> None:
    """A 15-bit AC value cannot be kept as it is (baseline codes 10 bits; libjpeg-turbo's
    encoder would write a broken stream): both routes refuse, naming the block; new tables
    clamp it and re-code."""
    data = crafted_15_bit_ac()
    assert coefficients(data)[0][0, 0, 1] == 32767
    for optimize in (False, True):
        with pytest.raises(edge_dct.UnsupportedJpegError, match=r"block \(0, 0\).*outside baseline"):
            transcode(data, optimize=optimize)
    out = transcode(data, quality=50, optimize=False)
    assert coefficients(out)[0][0, 0, 1] == 1023
    decodes_everywhere(out, (8, 8))


def crafted_dc_1500() -> bytes:
    """An 8x8 grayscale baseline JPEG whose one block has DC = 1500, beyond an 8-bit image's
    -1024..1023 (a difference of 11 bits, which baseline coding allows): its DC table codes
    symbol 0x0B as "00", its AC table EOB as "00"."""
    dqt = b"\xff\xdb\x00\x43\x00" + bytes([1] * 64)
    sof = b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"
    dht_dc = b"\xff\xc4\x00\x14\x00" + bytes([0, 1] + [0] * 14) + b"\x0b"
    dht_ac = b"\xff\xc4\x00\x14\x10" + bytes([0, 1] + [0] * 14) + b"\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    scan = b"\x2e\xe1"  # DC "00" + 1500 in 11 bits, EOB "00", 1-padding
    return b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + scan + b"\xff\xd9"


def test_out_of_range_dc_is_refused_on_both_paths() -> None:
    """A DC term beyond -1024..1023 kept as it is: the fused path refuses it as libjpeg's
    path does (found by the fuzzer: the fused writer only checked the DC difference)."""
    from edge_dct import _jpeg

    data = crafted_dc_1500()
    assert coefficients(data)[0][0, 0, 0] == 1500
    for builtin in (True, False):
        with pytest.raises(edge_dct.UnsupportedJpegError, match=r"block \(0, 0\).*outside baseline"):
            _jpeg.transcode(data, "x", 0, None, False, False, 0, True, True, 0, 0, builtin)
    out = transcode(data, quality=50, optimize=False)
    assert coefficients(out)[0][0, 0, 0] == round(1500 / int(standard_tables(50).luma[0, 0]))  # 16: 94
    decodes_everywhere(out, (8, 8))


def test_transcode_quality_matches_the_standard_tables(corpus_available) -> None:
    data = clothing_photos()[3].read_bytes()
    a = transcode(data, quality=40)
    b = transcode(data, tables=standard_tables(40))
    assert a == b
    assert edge_dct.read_header(a).quant_tables[0][0, 0] == standard_tables(40).luma[0, 0]


def test_transcode_keeps_or_strips_metadata() -> None:
    base = oracle.encode(synthetic_image(48, 64), quality=90, sampling=(2, 2))
    icc = b"\xff\xe2\x00\x10ICC_PROFILE\0\x01\x01"
    data = with_segment(with_segment(base, exif_app1(6)), icc)
    kept = transcode(data, quality=50)
    assert edge_dct.read_header(kept).orientation == 6
    assert exif_app1(6) in kept and icc in kept
    assert kept.count(b"JFIF\0") <= 1
    stripped = transcode(data, quality=50, keep_metadata=False)
    assert edge_dct.read_header(stripped).orientation == 1
    assert exif_app1(6) not in stripped and icc not in stripped


def test_corrupt_input_gives_no_output(corpus_available) -> None:
    data = clothing_photos()[0].read_bytes()
    truncated = data[: len(data) // 2]
    with pytest.raises(edge_dct.InvalidJpegError) as e:
        transcode(truncated, quality=50)
    assert e.value.source == "<bytes>"
    with pytest.warns(edge_dct.EdgeDctWarning):
        out = transcode(truncated, quality=50, strict=False)
    decodes_everywhere(out, (edge_dct.read_header(data).height, edge_dct.read_header(data).width))
    with pytest.raises(edge_dct.InvalidJpegError):
        transcode(b"not a jpeg")
    with pytest.raises(edge_dct.ImageTooLargeError):
        transcode(data, max_pixels=1000)


@pytest.mark.parametrize("tables, words", [
    ((np.zeros(64, np.uint16), np.ones(64, np.uint16)), "luma values 0..0"),
    ((np.ones(64), np.full(64, 256)), "chroma values 256..256"),
    ((np.ones((4, 16)), np.ones(64)), "shape (4, 16)"),
    ((np.ones(64),), "expected 2 tables"),
    ((np.full(64, 1.5), np.ones(64)), "dtype float64"),
    (5, "expected (luma, chroma)"),
])
def test_bad_tables_name_the_argument(tables, words: str) -> None:
    img = synthetic_image(16, 16)
    for call in (lambda: encode(img, tables=tables), lambda: transcode(encode(img), tables=tables)):
        with pytest.raises(edge_dct.InvalidArgumentError, match="tables") as e:
            call()
        assert words in str(e.value)


def test_bad_arguments() -> None:
    img = synthetic_image(16, 16)
    for kwargs, words in [({"quality": 0}, "quality=0"), ({"quality": 101}, "quality=101"),
                          ({"quality": "high"}, "quality='high'"),
                          ({"quality": 50, "tables": tuned_like()}, "not both"),
                          ({"restart_interval": -1}, "restart_interval"),
                          ({"subsampling": "411"}, "subsampling")]:
        with pytest.raises(edge_dct.InvalidArgumentError, match=words):
            encode(img, **kwargs)
    for pixels, words in [(img.astype(np.float32), "dtype float32"),
                          (img[..., :2], r"shape \(16, 16, 2\)"), ([[1, 2]], "numpy array"),
                          (np.zeros((0, 5, 3), np.uint8), "5x0 pixels")]:
        with pytest.raises(edge_dct.InvalidArgumentError, match=words):
            encode(pixels)
    with pytest.raises(edge_dct.InvalidArgumentError, match="quality"):
        standard_tables(0)


def test_strided_pixels_are_encoded_as_given() -> None:
    img = synthetic_image(40, 80)
    view = img[:, ::2]
    assert encode(view, quality=90) == encode(np.ascontiguousarray(view), quality=90)


def test_tables_for_model_errors(tmp_path) -> None:
    with pytest.raises(edge_dct.ModelError, match="tune-tables"):
        edge_dct.tables_for_model(tmp_path / "mine.tflite")
    bad = tmp_path / "mine.tables.json"
    bad.write_text("{}")
    with pytest.raises(edge_dct.ModelError, match="not a table set"):
        edge_dct.tables_for_model(tmp_path / "mine.tflite")


# A progressive 8x8 gray file made by the fuzzer whose frame names quantization table 255.
BAD_TABLE_NUMBER = ("/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMMDAsKCwsNDhIQDQ4RxAAUEAEAAAAAAAAAAAAAAAAAAAAI/9oACAEBCgcHBggMCgwMCwoLCw0OEhANDhEOCwsQFhUMDxcYFhQYEhQVFP/CAAsIAAgACAEBEf/eAP/EABQQAQAAAAAAAAAAAAAAAAAAAAj/2gAIAQEADgsLEBYVDA8XGBYUGBIUFRT/FP/CAAsIAAgACAEBEf/eAP/EABQQAQAAAAAAAAAAAAAAAAAAAAj/2gAIAQEAAQEBVP8A/9k=")


def test_an_undefined_table_number_is_an_error_on_every_path() -> None:
    """Found by the fuzzer: the fused path looked the table up before libjpeg checked the
    number (an out-of-bounds read under UBSan); now every path says what libjpeg says."""
    import base64

    from edge_dct import _jpeg

    data = base64.b64decode(BAD_TABLE_NUMBER)
    for builtin in (True, False):
        with pytest.raises(edge_dct.InvalidJpegError, match="Quantization table 0xff"):
            _jpeg.transcode(data, "x", 0, None, False, False, 0, True, True, 0, 0, builtin)
