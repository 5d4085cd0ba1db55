"""read_header: fields, EXIF orientation, APPn placement."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import edge_dct
from tests import oracle
from tests.conftest import CORPUS, clothing_photos, synthetic_image


def exif_app1(orientation: int, *, big_endian: bool = True, tag_type: int = 3,
              count: int = 1, extra_entries: int = 0) -> bytes:
    """An APP1 segment holding a TIFF IFD0 with an Orientation entry."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    entries = [struct.pack(e + "HHI", 0x010F, 2, 4) + b"Cam\0"] * extra_entries  # Make
    if tag_type == 3:
        value = struct.pack(e + "HH", orientation, 0)
    else:
        value = struct.pack(e + "I", orientation)
    entries.append(struct.pack(e + "HHI", 0x0112, tag_type, count) + value)
    ifd = struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)
    payload = b"Exif\0\0" + tiff + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_segment(jpeg: bytes, segment: bytes, after_soi: bool = True) -> bytes:
    """Inserts a marker segment right after SOI, or just before the first SOS."""
    if after_soi:
        return jpeg[:2] + segment + jpeg[2:]
    at = jpeg.index(b"\xff\xda")
    return jpeg[:at] + segment + jpeg[at:]


@pytest.fixture(scope="module")
def small_jpeg() -> bytes:
    return oracle.encode(synthetic_image(24, 40), quality=80, sampling=(2, 2))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("big_endian", [True, False])
def test_exif_orientation(small_jpeg: bytes, orientation: int, big_endian: bool) -> None:
    data = with_segment(small_jpeg, exif_app1(orientation, big_endian=big_endian, extra_entries=2))
    assert edge_dct.read_header(data).orientation == orientation
    assert edge_dct.read_dct(data).info.orientation == orientation


def test_exif_after_other_segments(small_jpeg: bytes) -> None:
    """APPn in any order: EXIF after the quantization/Huffman tables still counts."""
    data = with_segment(small_jpeg, exif_app1(6), after_soi=False)
    assert edge_dct.read_header(data).orientation == 6
    app2 = b"\xff\xe2\x00\x06ABCD"
    data = with_segment(with_segment(small_jpeg, exif_app1(3)), app2)
    assert edge_dct.read_header(data).orientation == 3


@pytest.mark.parametrize("segment", [
    exif_app1(9),                            # out of range
    exif_app1(0),
    exif_app1(6, tag_type=5),                # RATIONAL: not an orientation
    exif_app1(6, count=2),
    exif_app1(6)[:20],                       # IFD cut short (length says 18 bytes)
    b"\xff\xe1\x00\x10http://ns.adobe",      # XMP-like APP1, no EXIF
    b"\xff\xe1\x00\x02",                     # empty APP1
])
def test_bad_exif_means_orientation_1(small_jpeg: bytes, segment: bytes) -> None:
    if segment.startswith(exif_app1(6)[:20]) and len(segment) == 20:
        segment = segment[:2] + struct.pack(">H", 18) + segment[4:]
    data = with_segment(small_jpeg, segment)
    assert edge_dct.read_header(data).orientation == 1
    edge_dct.read_dct(data)  # the image itself still decodes


def test_long_exif_orientation_and_first_valid_wins(small_jpeg: bytes) -> None:
    data = with_segment(small_jpeg, exif_app1(8, tag_type=4))
    assert edge_dct.read_header(data).orientation == 8
    data = with_segment(with_segment(small_jpeg, exif_app1(5)), exif_app1(2))
    assert edge_dct.read_header(data).orientation == 2


def test_header_of_photo_matches_decode() -> None:
    path = clothing_photos()[0]
    info = edge_dct.read_header(path)
    img = edge_dct.read_dct(path)
    assert info == img.info
    assert info.subsampling == "420" and info.color_space == "ycbcr"
    assert info.precision == 8 and not info.progressive
    assert [p.shape[:2] for p in img.planes] == list(info.blocks)
    for q_header, q_used in zip(info.quant_tables, img.quant_tables):
        np.testing.assert_array_equal(q_header, q_used)


def test_header_fields_of_conformance_files() -> None:
    lj = CORPUS / "conformance/libjpeg-turbo"
    ari = edge_dct.read_header(lj / "testimgari.jpg")
    assert ari.arithmetic and not ari.progressive
    prog = edge_dct.read_header(CORPUS / "conformance/image-rs-reftest/progressive3.jpg")
    assert prog.progressive and prog.subsampling == "444"
    rst = edge_dct.read_header(CORPUS / "conformance/image-rs-reftest/restarts.jpg")
    assert rst.restart_interval > 0
    info = edge_dct.read_header(lj / "testorig.jpg")
    assert (info.width, info.height) == (227, 149)
    assert info.sampling == ((2, 2), (1, 1), (1, 1))
    assert info.blocks == ((19, 29), (10, 15), (10, 15))


def test_read_header_does_not_decode_scans() -> None:
    """A file cut right after its first SOS header still has a readable header."""
    data = (CORPUS / "conformance/libjpeg-turbo/testorig.jpg").read_bytes()
    sos = data.index(b"\xff\xda")
    length = int.from_bytes(data[sos + 2:sos + 4], "big")
    info = edge_dct.read_header(data[:sos + 2 + length])
    assert (info.width, info.height) == (227, 149)
