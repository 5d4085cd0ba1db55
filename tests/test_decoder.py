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
from edge_dct import EdgeDctError, EdgeDctWarning, InvalidJpegError
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
