"""read_dct: bit-exact against libjpeg-turbo's jpeg_read_coefficients.

The oracle (tests/oracle) reads coefficients through libjpeg's whole-image
path, which the edct core never uses, and encodes the generated files.
"""

from __future__ import annotations

import io
import itertools
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

import edge_dct
from edge_dct import EdgeDctError, EdgeDctWarning, InvalidJpegError, _jpeg
from edge_dct.prepare import allocate
from edge_dct.spec import InputSpec
from tests import oracle
from tests.conftest import CORPUS, corpus_jpegs, synthetic_image


def assert_matches_oracle(data: bytes, name: str) -> None:
    """Our quantized and dequantized planes equal libjpeg-turbo's, or both refuse."""
    try:
        expected, oracle_warnings = oracle.read_coefficients(data)
    except oracle.OracleError:
        with pytest.raises(EdgeDctError):
            edge_dct.read_dct(data, strict=False)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeDctWarning)
        img = edge_dct.read_dct(data, dequantize=False, strict=False)
        deq = edge_dct.read_dct(data, dequantize=True, strict=False)
    assert len(img.planes) == len(expected), name
    for c, (got, want) in enumerate(zip(img.planes, expected)):
        assert got.shape == want.shape, (name, c)
        assert got.dtype == np.int16
        np.testing.assert_array_equal(got, want, err_msg=f"{name} component {c}")
        q = deq.quant_tables[c].reshape(64).astype(np.int64)
        full = want.astype(np.int64) * q
        np.testing.assert_array_equal(deq.planes[c], np.clip(full, -32768, 32767),
                                      err_msg=f"{name} component {c} dequantized")
    assert bool(img.warnings) == (oracle_warnings > 0), name


@pytest.mark.parametrize("path", corpus_jpegs(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_bit_exact(path: Path) -> None:
    assert_matches_oracle(path.read_bytes(), str(path))


SUBSAMPLINGS = {"444": (1, 1), "422": (2, 1), "420": (2, 2), "440": (1, 2), "411": (4, 1)}
SIZES = [(1, 1), (1, 7), (7, 1), (8, 8), (9, 15), (16, 16), (17, 33), (1, 1000), (1000, 1),
         (149, 227), (375, 500), (480, 640), (1000, 1000)]


def generated_cases() -> list[dict]:
    """Edge sizes x every subsampling, then random codings (seeded)."""
    cases = [dict(size=s, sampling=ss, quality=75) for s in SIZES for ss in SUBSAMPLINGS]
    cases += [dict(size=s, gray=True, quality=q) for s in SIZES[:8] for q in (1, 50, 100)]
    cases += [dict(size=(64, 48), sampling=(h, v), quality=80)
              for h, v in itertools.product((1, 2, 3, 4), repeat=2) if h * v <= 8]  # MCU <= 10 blocks
    rng = random.Random(1234)
    for _ in range(120):
        arithmetic = rng.random() < 0.25
        cases.append(dict(
            size=(rng.randint(1, 300), rng.randint(1, 300)),
            sampling=rng.choice(list(SUBSAMPLINGS)),
            gray=rng.random() < 0.15,
            quality=rng.randint(1, 100),
            progressive=rng.random() < 0.4,
            arithmetic=arithmetic,
            restart_interval=rng.choice([0, 0, 1, 3, 17]),
            optimize=not arithmetic and rng.random() < 0.3,  # libjpeg: one or the other
        ))
    return cases


def case_id(case: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in case.items() if v not in (False, 0))


@pytest.mark.parametrize("case", generated_cases(), ids=case_id)
def test_generated_bit_exact(case: dict) -> None:
    h, w = case["size"]
    gray = case.get("gray", False)
    pixels = synthetic_image(h, w, 1 if gray else 3, seed=h * 1000 + w)
    ss = case.get("sampling", "444")
    data = oracle.encode(
        pixels,
        quality=case["quality"],
        sampling=SUBSAMPLINGS[ss] if isinstance(ss, str) else ss,
        progressive=case.get("progressive", False),
        arithmetic=case.get("arithmetic", False),
        restart_interval=case.get("restart_interval", 0),
        optimize=case.get("optimize", False),
    )
    info = edge_dct.read_header(data)
    assert (info.width, info.height) == (w, h)
    assert info.progressive == case.get("progressive", False)
    assert info.arithmetic == case.get("arithmetic", False)
    assert info.restart_interval == case.get("restart_interval", 0)
    if gray:
        assert info.subsampling == "gray" and info.color_space == "gray"
    elif isinstance(ss, str):
        assert info.subsampling == ss
    assert_matches_oracle(data, case_id(case))


def test_dequantize_saturates_not_wraps() -> None:
    """Quality 100 (all-ones tables) then 16-bit tables: products beyond int16 clip."""
    data = (CORPUS / "conformance/image-rs-reftest/16bit-qtables.jpg").read_bytes()
    raw = edge_dct.read_dct(data, dequantize=False)
    deq = edge_dct.read_dct(data)
    for r, d, q in zip(raw.planes, deq.planes, deq.quant_tables):
        full = r.astype(np.int64) * q.reshape(64)
        np.testing.assert_array_equal(d, np.clip(full, -32768, 32767))
    assert max(int(q.max()) for q in deq.quant_tables) > 255  # the file really has 16-bit tables


def test_natural_order_and_tables() -> None:
    """Quality 50 gives the standard Annex K tables; index k = 8*v + u."""
    data = oracle.encode(synthetic_image(32, 32), quality=50, sampling=(2, 2))
    info = edge_dct.read_header(data)
    luma = info.quant_tables[0]
    assert luma.dtype == np.uint16 and luma.shape == (8, 8)
    np.testing.assert_array_equal(luma[0], [16, 11, 10, 16, 24, 40, 51, 61])
    np.testing.assert_array_equal(luma[:, 0], [16, 12, 14, 14, 18, 24, 49, 72])
    # A vertical cosine (varies with y only) puts energy in column u=0, i.e. k = 8*v.
    y = np.arange(64)[:, None]
    stripes = np.repeat((128 + 100 * np.cos((2 * (y % 8) + 1) * np.pi / 16)), 64, 1)
    gray = oracle.encode(stripes.astype(np.uint8), quality=100, sampling=(1, 1))
    plane = edge_dct.read_dct(gray).planes[0]
    energy = np.abs(plane.astype(np.int64)).sum((0, 1))
    assert energy[8] > 10 * energy[1]  # (v=1, u=0) dominates (v=0, u=1)


def strip_tables(data: bytes) -> bytes:
    """Removes DQT and DHT segments before the first scan (an abbreviated image stream)."""
    out, i = bytearray(data[:2]), 2
    while i < len(data):
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:
            out += data[i:]
            break
        if marker not in (0xDB, 0xC4):
            out += data[i:i + 2 + length]
        i += 2 + length
    return bytes(out)


def test_abbreviated_streams() -> None:
    """T.83 B1 (tables only) + an abbreviated image stream decodes like the full stream."""
    tables = (CORPUS / "conformance/t83/p1/B1.JPG").read_bytes()
    full = (CORPUS / "conformance/t83/p1/A1.JPG").read_bytes()
    abbreviated = strip_tables(full)
    assert b"\xff\xdb" not in abbreviated[:abbreviated.index(b"\xff\xda")]
    with pytest.raises(InvalidJpegError, match="only tables"):
        edge_dct.read_dct(tables)
    with pytest.raises(InvalidJpegError):
        edge_dct.read_dct(abbreviated)
    combined = edge_dct.read_dct(tables + abbreviated)
    reference = edge_dct.read_dct(full)
    for a, b in zip(combined.planes, reference.planes):
        np.testing.assert_array_equal(a, b)


def test_mjpeg_frame_without_huffman_tables() -> None:
    data = (CORPUS / "conformance/image-rs-reftest/mjpeg.jpg").read_bytes()
    assert b"\xff\xc4" not in data  # no DHT: the standard tables apply
    assert_matches_oracle(data, "mjpeg.jpg")
    with pytest.warns(EdgeDctWarning, match="extraneous bytes"):  # padding before RST markers
        assert edge_dct.read_dct(data, strict=True).info.subsampling == "422"


@pytest.mark.parametrize("kind", ["str", "path", "bytes", "bytearray", "memoryview", "file",
                                  "array"])
def test_source_types(kind: str) -> None:
    path = CORPUS / "conformance/libjpeg-turbo/testorig.jpg"
    data = path.read_bytes()
    src = {
        "str": str(path),
        "path": path,
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "file": io.BytesIO(data),
        "array": np.frombuffer(data, np.uint8),
    }[kind]
    img = edge_dct.read_dct(src)
    assert [p.shape for p in img.planes] == [(19, 29, 64), (10, 15, 64), (10, 15, 64)]
    assert img.y is img.planes[0] and img.cb is img.planes[1] and img.cr is img.planes[2]


def test_color_spaces_and_channel_accessors() -> None:
    rs = CORPUS / "conformance/image-rs-reftest"
    assert edge_dct.read_header(rs / "rgb.jpg").color_space == "rgb"
    assert edge_dct.read_header(rs / "ycck.jpg").color_space == "ycck"
    assert edge_dct.read_header(rs / "mozilla/jpg-cmyk-1.jpg").color_space == "cmyk"
    rgb = edge_dct.read_dct(rs / "rgb.jpg")
    assert rgb.y is None and rgb.cb is None and len(rgb.planes) == 3
    gray = edge_dct.read_dct(rs / "grayscale_square.jpg")
    assert gray.y is not None and gray.cb is None and gray.cr is None


def test_t83_odd_sampling_four_components() -> None:
    """T.83 A1: 4 components with sampling factors 1..4 and restart intervals."""
    info = edge_dct.read_header(CORPUS / "conformance/t83/p1/A1.JPG")
    assert info.num_components == 4 and info.subsampling == "other"
    assert info.restart_interval > 0
    assert len(set(info.sampling)) > 2


def test_component_without_any_scan() -> None:
    """A non-interleaved file cut before its second scan: later components have no data
    (and no latched quantization table) -- zeros, not a crash (found by the fuzzer)."""
    data = (CORPUS / "conformance/t83/p2/C2.JPG").read_bytes()
    first_sos = data.index(b"\xff\xda")
    cut = data[:data.index(b"\xff\xda", first_sos + 2)]
    with pytest.raises(InvalidJpegError):
        edge_dct.read_dct(cut)
    with pytest.warns(EdgeDctWarning):
        img = edge_dct.read_dct(cut, strict=False)
    assert img.planes[0].any()
    assert not any(p.any() for p in img.planes[1:])
    assert not img.quant_tables[1:].any()


# ---- the built-in Huffman decoder against the libjpeg path ---------------------------
#
# read_dct and prepare decode sequential single-scan Huffman files with edct_huffman.c and
# fall back to libjpeg's decoder, from the start, on anything unusual.  _jpeg's private
# builtin=False runs libjpeg's decoder alone: both must give the same planes, tables,
# warnings and errors, and the path counters show which decoder ran.


def path_of(decode) -> str:
    """Which entropy path the single decode run by `decode()` took."""
    before = _jpeg.entropy_path_counts()
    try:
        decode()
    except EdgeDctError:
        pass
    after = _jpeg.entropy_path_counts()
    taken = [p for p in after if after[p] != before[p]]
    assert len(taken) == 1 and after[taken[0]] == before[taken[0]] + 1, (before, after)
    return taken[0]


def outcome(data: bytes, builtin: bool, strict: bool, dequantize: bool) -> tuple:
    """Everything _jpeg.read_dct reports: its result, or the error's type, text and offset."""
    try:
        _, planes, tables, num_warnings, first = _jpeg.read_dct(
            data, "<t>", dequantize, strict, 0, 0, builtin)
    except EdgeDctError as e:
        return type(e), str(e), e.offset
    return planes, tables, num_warnings, first


def assert_same(a: tuple, b: tuple, name: str) -> None:
    assert len(a) == len(b), (name, a[:1], b[:1])
    if isinstance(a[0], type):  # an error
        assert a == b, name
        return
    for got, want in zip(a[0], b[0]):
        np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_array_equal(a[1], b[1], err_msg=name)
    assert a[2:] == b[2:], name


def assert_builtin_like_libjpeg(data: bytes, name: str, path: str | None = None) -> None:
    """Both decoders agree in all four modes; the built-in one took `path` (when given)."""
    for strict in (True, False):
        for dequantize in (True, False):
            mode = f"{name} strict={strict} dequantize={dequantize}"
            taken = path_of(lambda: outcome(data, True, strict, dequantize))
            if path is not None:
                assert taken == path, mode
            assert_same(outcome(data, True, strict, dequantize),
                        outcome(data, False, strict, dequantize), mode)


ODD_SAMPLINGS = [  # per component (h, v), at most 10 blocks per MCU
    ((3, 1), (1, 1), (1, 1)), ((1, 3), (1, 1), (1, 1)), ((3, 2), (1, 1), (1, 1)),
    ((4, 2), (1, 1), (1, 1)), ((1, 1), (3, 1), (1, 3)), ((2, 2), (1, 2), (2, 1)),
    ((1, 4), (1, 2), (1, 1)),
]


def builtin_cases() -> list[dict]:
    """Sequential Huffman files the built-in decoder takes: geometry x coding x restarts."""
    cases = [dict(size=s, sampling=ss, restart_interval=ri)
             for s in [(1, 1), (7, 9), (17, 33), (31, 150), (149, 227)]
             for ss in SUBSAMPLINGS for ri in (0, 1, 3)]
    cases += [dict(size=(45, 61), components=cs, restart_interval=ri)
              for cs in ODD_SAMPLINGS for ri in (0, 2)]
    cases += [dict(size=(64, 80), sampling="420", quality=q, optimize=opt)
              for q in (1, 5, 25, 50, 75, 90, 97, 100) for opt in (False, True)]
    cases += [dict(size=s, gray=True, restart_interval=ri, quality=q)
              for s in [(1, 1), (9, 17), (100, 37)] for ri in (0, 5) for q in (10, 100)]
    cases += [dict(size=(33, 47), cmyk=True, components=cs, restart_interval=ri)
              for cs in [((1, 1),) * 4, ((2, 2), (1, 1), (1, 1), (2, 2)), ((2, 1), (1, 1), (1, 2), (1, 1))]
              for ri in (0, 4)]
    return cases


def encode_case(case: dict) -> bytes:
    h, w = case["size"]
    channels = 1 if case.get("gray") else 4 if case.get("cmyk") else 3
    ss = case.get("sampling", "444")
    return oracle.encode(
        synthetic_image(h, w, channels, seed=h * 7 + w), quality=case.get("quality", 85),
        sampling=SUBSAMPLINGS[ss], restart_interval=case.get("restart_interval", 0),
        optimize=case.get("optimize", False), component_sampling=case.get("components"))


@pytest.mark.parametrize("case", builtin_cases(), ids=case_id)
def test_builtin_decoder_is_bit_exact(case: dict) -> None:
    data = encode_case(case)
    assert_builtin_like_libjpeg(data, case_id(case), path="builtin")
    assert_matches_oracle(data, case_id(case))


def test_builtin_decoder_takes_the_shared_photos() -> None:
    for path in sorted((CORPUS / "photos").rglob("*.jpg")):
        assert_builtin_like_libjpeg(path.read_bytes(), str(path), path="builtin")


def test_builtin_decoder_leaves_other_codings_to_libjpeg() -> None:
    pixels = synthetic_image(40, 56)
    for coding in (dict(progressive=True), dict(arithmetic=True)):
        assert_builtin_like_libjpeg(oracle.encode(pixels, **coding), str(coding), path="libjpeg")
    # a non-interleaved sequential file: one scan per component
    assert_builtin_like_libjpeg((CORPUS / "conformance/t83/p2/C2.JPG").read_bytes(), "C2",
                                path="libjpeg")


def test_mjpeg_frame_without_dht_uses_the_standard_tables() -> None:
    """libjpeg installs the Annex K tables for a frame without DHT; the built-in decoder
    reads them from libjpeg (standard tables are what the oracle encodes without optimize)."""
    data = oracle.encode(synthetic_image(48, 64), quality=80, sampling=(2, 1),
                         restart_interval=2)
    out, i = bytearray(data[:2]), 2
    while data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] != 0xC4:
            out += data[i:i + 2 + length]
        i += 2 + length
    stripped = bytes(out + data[i:])
    assert b"\xff\xc4" not in stripped
    assert_builtin_like_libjpeg(stripped, "no DHT", path="builtin")
    for a, b in zip(edge_dct.read_dct(stripped).planes, edge_dct.read_dct(data).planes):
        np.testing.assert_array_equal(a, b)


def scan_bounds(data: bytes) -> tuple[int, int]:
    """(first entropy-coded byte, offset of the EOI marker) of a single-scan file."""
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    return start, data.rindex(b"\xff\xd9")


def marker_offsets(data: bytes, start: int, end: int) -> list[int]:
    """Offsets of the RSTn markers in scan data."""
    return [i for i in range(start, end - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]


def corrupt_variants(data: bytes) -> dict[str, tuple[bytes, str | None]]:
    """name -> (variant, path the built-in decoder must take or None when either may do)."""
    start, eoi = scan_bounds(data)
    rst = marker_offsets(data, start, eoi)
    assert rst, "the seed needs restart markers"
    rng = random.Random(len(data))
    v: dict[str, tuple[bytes, str | None]] = {
        "clean": (data, "builtin"),
        "trailing bytes after EOI": (data + b"\x00\x11garbage", "builtin"),
        "fill bytes before EOI": (data[:eoi] + b"\xff\xff\xff" + data[eoi:], "builtin"),
        "fill bytes before RST": (data[:rst[0]] + b"\xff\xff" + data[rst[0]:], "builtin"),
        "no EOI": (data[:eoi], "fallback"),
        "half an EOI": (data[:eoi + 1], "fallback"),
        "garbage before EOI": (data[:eoi] + b"\x12\x34" + data[eoi:], "fallback"),
        "COM before EOI": (data[:eoi] + b"\xff\xfe\x00\x04hi" + data[eoi:], "fallback"),
        "RST before EOI": (data[:eoi] + b"\xff\xd7" + data[eoi:], "fallback"),
        "garbage before RST": (data[:rst[1]] + b"\x55" + data[rst[1]:], "fallback"),
        "RST renumbered": (data[:rst[1] + 1] + bytes([0xD0 + (data[rst[1] + 1] + 3) % 8])
                           + data[rst[1] + 2:], "fallback"),
        "RST dropped": (data[:rst[1]] + data[rst[1] + 2:], "fallback"),
        "RST doubled": (data[:rst[1]] + data[rst[1]:rst[1] + 2] * 2 + data[rst[1] + 2:],
                        "fallback"),
        "EOI inside the scan": (data[:rst[0] - 3] + b"\xff\xd9", "fallback"),
    }
    stuffed = data.find(b"\xff\x00", start, eoi)
    if stuffed >= 0:  # libjpeg reads FF FF 00 as one FF data byte; the built-in decoder defers
        v["stuffed FF as FF FF 00"] = (data[:stuffed] + b"\xff" + data[stuffed:], "fallback")
    for n in range(12):
        cut = rng.randrange(start, eoi)
        v[f"cut at {cut}"] = (data[:cut], "fallback")
    for n in range(24):
        flipped = bytearray(data)
        at = rng.randrange(start, eoi)
        flipped[at] ^= 1 << rng.randrange(8)
        v[f"bit flip at {at}"] = (bytes(flipped), None)  # may still be a valid stream
    return v


@pytest.mark.parametrize("seed", ["baseline", "restart-1", "gray-4:2:0-photo"])
def test_builtin_decoder_corrupt_and_odd_streams_match_libjpeg(seed: str) -> None:
    """Every corruption gives libjpeg's exact planes, warnings and errors (strict and lenient)."""
    pixels = synthetic_image(61, 83)
    data = {
        "baseline": oracle.encode(pixels, quality=90, sampling=(2, 2), restart_interval=4),
        "restart-1": oracle.encode(pixels, quality=60, sampling=(2, 1), restart_interval=1,
                                   optimize=True),
        "gray-4:2:0-photo": oracle.encode(synthetic_image(64, 64, 1), quality=95,
                                          sampling=(1, 1), restart_interval=3),
    }[seed]
    for name, (variant, path) in corrupt_variants(data).items():
        assert_builtin_like_libjpeg(variant, f"{seed}: {name}", path)


def test_builtin_decoder_block_full_without_eob() -> None:
    """A block whose last coefficient sits at zigzag 63 has no EOB: the next code is the
    next block's DC.  Quality 100 noise puts coefficients everywhere."""
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = oracle.encode(noise, quality=100, sampling=(1, 1))
    img = edge_dct.read_dct(data, dequantize=False)
    assert (img.planes[0][..., 63] != 0).any()
    assert_builtin_like_libjpeg(data, "noise", path="builtin")


def prepare_outcome(data: bytes, spec, builtin: bool, strict: bool) -> tuple:
    """_jpeg.prepare's tensors and warnings, or the error's type, text and offset."""
    tensors = allocate(spec)
    outputs = [tensors[t.name] for t in spec.tensors]
    try:
        warned = _jpeg.prepare(data, "<t>", spec, outputs, False, (), (), None, False, True,
                               strict, 0, 0, None, builtin)
    except EdgeDctError as e:
        return type(e), str(e), e.offset
    return outputs, warned


@pytest.mark.parametrize("grid", [(28, 28), (4, 4)], ids=["all-frequencies", "dc-only"])
def test_prepare_builtin_is_bit_exact(grid: tuple[int, int]) -> None:
    """prepare's consumer reruns harmlessly, so it uses the built-in decoder too; with a tiny
    grid it reads DC terms only and the built-in decoder skips storing AC terms."""
    spec = InputSpec(grid=grid, resize={"mode": "stretch"})
    photos = [p.read_bytes() for p in sorted((CORPUS / "photos").rglob("*.jpg"))[:6]]
    cases = [(p, "builtin") for p in photos] + [(photos[0][:len(photos[0]) // 2], "fallback")]
    for data, path in cases:
        for strict in (True, False):
            assert path_of(lambda: prepare_outcome(data, spec, True, strict)) == path
            got, want = (prepare_outcome(data, spec, builtin, strict) for builtin in (True, False))
            if isinstance(got[0], type):
                assert got == want
                continue
            for a, b in zip(got[0], want[0]):
                np.testing.assert_array_equal(a, b)
            assert got[1] == want[1]
