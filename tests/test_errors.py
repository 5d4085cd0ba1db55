"""The error model: one funnel from C statuses, one hierarchy under EdgeDctError, codes."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest

import edge_dct
from edge_dct import _jpeg, bundle, errors, runtime, spec
from edge_dct.bundle import DEFAULT_MODEL, ModelBundle, read_metadata
from edge_dct.errors import ErrorCode
from edge_dct.spec import dct_spec
from tests.conftest import CORPUS, ROOT, clothing_photos
from tests.test_robustness import SMALL_PROGRESSIVE, with_frame_size

ERRORS = [errors.InvalidJpegError, errors.UnsupportedJpegError, errors.ImageTooLargeError,
          errors.OutOfMemoryError, errors.InvalidArgumentError, errors.InvalidSpecError,
          errors.ModelError, errors.MetadataNotFoundError, errors.AcceleratorUnavailableError,
          errors.RuntimeUnavailableError]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_an_edge_dct_error_with_a_code(cls: type) -> None:
    assert issubclass(cls, edge_dct.EdgeDctError)
    assert isinstance(cls.code, ErrorCode)
    assert getattr(edge_dct, cls.__name__) is cls
    e = cls("why", "src.jpg", 7)
    assert str(e) == "src.jpg: why (at byte 7)" and e.reason == "why" and e.code == cls.code


def test_builtin_bases() -> None:
    assert issubclass(errors.OutOfMemoryError, MemoryError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.InvalidSpecError, errors.InvalidArgumentError)
    assert issubclass(errors.MetadataNotFoundError, errors.ModelError)
    assert issubclass(errors.MetadataNotFoundError, LookupError)
    assert edge_dct.EdgeDctError("x", code=ErrorCode.IO).code == ErrorCode.IO


def test_exceptions_live_in_errors_and_stay_importable_where_they_were() -> None:
    assert bundle.ModelError is errors.ModelError
    assert spec.InvalidSpecError is errors.InvalidSpecError
    assert runtime.AcceleratorUnavailableError is errors.AcceleratorUnavailableError
    assert runtime.RuntimeUnavailableError is errors.RuntimeUnavailableError
    for module in (bundle, spec, runtime):
        defined = [n for n, v in vars(module).items()
                   if inspect.isclass(v) and issubclass(v, BaseException)
                   and v.__module__ == module.__name__]
        assert not defined, f"{module.__name__} defines {defined}; they belong in edge_dct.errors"


def test_status_tables_match_the_c_codes() -> None:
    """The funnel's classes carry the C status they are raised for as their code."""
    for status, cls in _jpeg._JPEG_ERRORS.items():
        assert cls.code == status, cls
    assert _jpeg._MODEL_ERRORS[2] is errors.MetadataNotFoundError


def test_jpeg_errors_carry_their_code() -> None:
    with pytest.raises(edge_dct.InvalidJpegError) as e:
        edge_dct.read_dct(b"\xff\xd8 not really")
    assert e.value.code == ErrorCode.INVALID_JPEG == 1
    with pytest.raises(edge_dct.EdgeDctError) as e:
        edge_dct.read_dct("/nonexistent/x.jpg")
    assert e.value.code == ErrorCode.IO


def test_find_metadata_goes_through_the_funnel() -> None:
    """find_metadata returns (offset, length) or raises: typed, decided in err_check."""
    assert list(inspect.signature(_jpeg.find_metadata).parameters) == ["model", "name"]
    content = DEFAULT_MODEL.read_bytes()
    offset, length = _jpeg.find_metadata(content, "m.tflite")
    assert content[offset:offset + 1] == b"{" and length > 100
    renamed = content.replace(b"edge_dct\x00", b"edge_xyz\x00", 1)
    with pytest.raises(errors.MetadataNotFoundError, match="not an edge_dct bundle") as e:
        _jpeg.find_metadata(renamed, "renamed.tflite")
    assert e.value.source == "renamed.tflite" and e.value.code == ErrorCode.INVALID_MODEL
    with pytest.raises(errors.ModelError, match="not a TFLite model") as e:
        _jpeg.find_metadata(b"junk" * 10, "junk.tflite")
    assert type(e.value) is errors.ModelError and e.value.source == "junk.tflite"
    with pytest.raises(errors.MetadataNotFoundError):
        ModelBundle.load(renamed)
    assert read_metadata(content, "m")["layout"] == "split"
    assert bundle.METADATA_NAME == "edge_dct"


def test_bad_arguments_are_invalid_argument_errors() -> None:
    s = dct_spec((28, 28))
    photo = clothing_photos()[0]
    with pytest.raises(edge_dct.InvalidArgumentError, match="window"):  # from the C core
        edge_dct.prepare(photo, s, window=(0.0, 0.0, 0.0, 10.0))
    with pytest.raises(edge_dct.InvalidArgumentError, match="hflip"):
        edge_dct.prepare(photo, s, hflip=True)
    with pytest.raises(edge_dct.InvalidArgumentError, match="quantization"):
        edge_dct.prepare(photo, s, dtype=np.int8)
    with pytest.raises(ValueError, match="must be a C-contiguous"):
        edge_dct.prepare(photo, s, out={"y": np.zeros((1, 2, 2, 64), np.float32)})


OOM_SCRIPT = """
import resource, sys
import edge_dct
from edge_dct.spec import dct_spec
data = sys.stdin.buffer.read()
spec = dct_spec((28, 28))
status = open("/proc/self/status").read()
vm = int(status.split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
try:
    edge_dct.prepare(data, spec, max_pixels=0, strict=False)
except MemoryError as e:
    print(type(e).__name__, isinstance(e, edge_dct.EdgeDctError), int(e.code), e.source)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_out_of_memory_is_an_edge_dct_error() -> None:
    """A 60000x60000 progressive file under a 1 GB address-space margin: libjpeg cannot
    allocate its coefficient buffer, and the error is OutOfMemoryError (a MemoryError)."""
    bomb = with_frame_size(SMALL_PROGRESSIVE.read_bytes(), 60000, 60000)
    run = subprocess.run([sys.executable, "-c", OOM_SCRIPT], input=bomb, cwd=ROOT,
                         capture_output=True, timeout=120)
    assert run.stdout.split() == [b"OutOfMemoryError", b"True", b"4", b"<bytes>"], run.stderr


def test_read_dct_and_prepare_warn_alike() -> None:
    """One helper turns the C core's warnings into EdgeDctWarning: same text for both."""
    data = bytearray(clothing_photos()[0].read_bytes())
    data[len(data) // 2:len(data) // 2 + 40] = bytes(40)
    data = bytes(data[:-4000])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = edge_dct.read_dct(data, strict=False)
        edge_dct.prepare(data, dct_spec((28, 28)), strict=False)
    assert len(img.warnings) == 1 and "(+" in img.warnings[0]
    assert [str(w.message) for w in caught] == [f"<bytes>: {img.warnings[0]}"] * 2
    assert all(w.category is edge_dct.EdgeDctWarning and w.filename == __file__ for w in caught)


def test_unsupported_jpeg_error_code() -> None:
    with pytest.raises(edge_dct.UnsupportedJpegError) as e:
        edge_dct.read_dct(CORPUS / "conformance/libjpeg-turbo/monkey12.jpg")
    assert e.value.code == ErrorCode.UNSUPPORTED_JPEG and "monkey12" in str(e.value)
