"""The examples: each one run as a user would, on a stand-in source, plus the MJPEG splitter.

Cameras are replaced by the shared photos: the photo and folder examples read them directly,
the Raspberry Pi example replays them with ``--source``, and the webcam and Jetson examples
replay MJPEG streams generated here from them (640x480 frames, concatenated or multipart, one
frame carrying an EXIF thumbnail whose own EOI must not end the frame).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import edge_dct
from edge_dct.bundle import DEFAULT_MODEL
from tests.conftest import ROOT, clothing_photos

Image = pytest.importorskip("PIL.Image")

EXAMPLES = ROOT / "examples"
SCRIPTS = ["classify_photo.py", "classify_folder.py", "raspberry_pi_camera.py",
           "usb_webcam_mjpeg.py", "jetson_gstreamer.py"]
FRAME_LINE = re.compile(r"^frame (\d+): (.+) \((\d\.\d{3})\)  latency (\d+\.\d) ms", re.M)
BOUNDARY = "edgedctframe"

spec = importlib.util.spec_from_file_location("mjpeg_stream", EXAMPLES / "mjpeg_stream.py")
mjpeg_stream = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mjpeg_stream)
iter_jpeg_frames = mjpeg_stream.iter_jpeg_frames

needs_model = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no embedded model")


def run(script: str, *args, env: dict | None = None, stdin: bytes | None = None,
        ) -> subprocess.CompletedProcess:
    """Runs an example like a user: ``python examples/SCRIPT ARGS`` from the repository root."""
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=ROOT,
                          input=stdin, capture_output=True, timeout=120, env=env)


def frame_results(stdout: bytes) -> list[tuple[int, str, float, float]]:
    """(frame number, top label, score, latency ms) of every per-frame line."""
    return [(int(n), label, float(score), float(ms))
            for n, label, score, ms in FRAME_LINE.findall(stdout.decode())]


def encode(img, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def with_exif_thumbnail(jpeg: bytes, thumbnail: bytes) -> bytes:
    """``jpeg`` with an APP1 EXIF segment (orientation 1) embedding ``thumbnail`` (a JPEG).

    The thumbnail brings its own SOI and EOI (FF D8 ... FF D9) into the frame's header, where a
    splitter that cuts at the first FF D9 would end the frame.
    """
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0)  # Orientation = 1
    ifd1_offset = 8 + len(ifd0) + 4
    thumb_offset = ifd1_offset + 2 + 2 * 12 + 4
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_offset)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0))
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + struct.pack("<I", ifd1_offset) + ifd1
    payload = b"Exif\x00\x00" + tiff + thumbnail
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def multipart(frames: list[bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart/x-mixed-replace body as MJPEG HTTP cameras serve it.

    Odd parts carry a Content-Length, even ones do not (both occur in the wild).
    """
    out = []
    for i, frame in enumerate(frames):
        headers = "Content-Type: image/jpeg\r\n"
        if i % 2:
            headers += f"Content-Length: {len(frame)}\r\n"
        out.append(f"--{boundary}\r\n{headers}\r\n".encode() + frame + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()


@pytest.fixture(scope="module")
def photos(corpus_available) -> list[Path]:
    return clothing_photos()


@pytest.fixture(scope="module")
def frames(photos) -> list[bytes]:
    """Six 640x480 camera-like frames from the shared photos; the third has an EXIF thumbnail."""
    out = []
    for path in photos[::7][:6]:
        with Image.open(path) as im:
            img = im.convert("RGB").resize((640, 480))
        out.append(encode(img, quality=85))
    with Image.open(photos[1]) as im:
        thumb = encode(im.convert("RGB").resize((160, 120)), quality=75)
    out[2] = with_exif_thumbnail(out[2], thumb)
    return out


@pytest.fixture(scope="module")
def streams(frames, tmp_path_factory) -> dict[str, Path]:
    """The frames recorded as a concatenated and as a multipart MJPEG file."""
    d = tmp_path_factory.mktemp("mjpeg")
    (d / "concat.mjpeg").write_bytes(b"".join(frames))
    (d / "multipart.mjpeg").write_bytes(multipart(frames))
    return {"concat": d / "concat.mjpeg", "multipart": d / "multipart.mjpeg"}


@pytest.fixture(scope="module")
def expected(frames) -> list[str]:
    """Top label of every frame, classified in-process."""
    with edge_dct.Classifier(edge_dct.ClassifierOptions(max_results=1)) as clf:
        return [clf.classify(f).top.label for f in frames]


# -- the MJPEG splitter -------------------------------------------------------------------

def test_exif_frame_has_an_early_eoi(frames) -> None:
    exif = frames[2]
    assert exif.find(b"\xff\xd9") + 2 < len(exif)  # a first-FFD9 splitter would cut it here
    assert edge_dct.read_header(exif).orientation == 1


@pytest.mark.parametrize("chunk_size", [1, 97, 4096, 1 << 16])
def test_split_concatenated(frames, chunk_size) -> None:
    got = list(iter_jpeg_frames(io.BytesIO(b"".join(frames)), chunk_size=chunk_size))
    assert got == frames  # count and bytes


@pytest.mark.parametrize("boundary", [None, BOUNDARY, "--" + BOUNDARY])
@pytest.mark.parametrize("chunk_size", [61, 1 << 16])
def test_split_multipart(frames, boundary, chunk_size) -> None:
    got = list(iter_jpeg_frames(io.BytesIO(multipart(frames)), boundary=boundary,
                                chunk_size=chunk_size))
    assert got == frames


def test_split_multipart_lf_headers_and_other_parts(frames) -> None:
    data = (b"--b\nContent-Type: text/plain\nContent-Length: 5\n\nhello\n"
            + b"--b\nContent-Type: image/jpeg\n\n" + frames[0] + b"\n"
            + b"--b\nContent-Type: image/jpeg\nContent-Length: %d\n\n" % len(frames[1])
            + frames[1] + b"\n--b--\n")
    assert list(iter_jpeg_frames(io.BytesIO(data), boundary="b")) == frames[:2]
    assert list(iter_jpeg_frames(io.BytesIO(data))) == frames[:2]


def test_split_wrong_boundary(frames) -> None:
    with pytest.raises(ValueError, match="boundary"):
        list(iter_jpeg_frames(io.BytesIO(multipart(frames)), boundary="nope"))


def test_split_progressive_and_restart_markers(photos) -> None:
    with Image.open(photos[0]) as im:
        img = im.convert("RGB")
    variants = [encode(img, progressive=True), encode(img, quality=95, subsampling=0)]
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    ok, rst = cv2.imencode(".jpg", np.asarray(img)[..., ::-1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 3])
    assert ok and b"\xff\xd0" in rst.tobytes()
    variants.append(rst.tobytes())
    data = b"\r\n".join(variants)
    for chunk_size in (113, 1 << 16):
        assert list(iter_jpeg_frames(io.BytesIO(data), chunk_size=chunk_size)) == variants


def test_split_skips_truncated_frames(frames) -> None:
    data = frames[0] + frames[1][:3000] + frames[3] + frames[4][: len(frames[4]) // 2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = list(iter_jpeg_frames(io.BytesIO(data)))
    assert got == [frames[0], frames[3]]
    assert len(caught) == 2 and all("skipped" in str(w.message) for w in caught)


def test_split_short_reads(frames) -> None:
    class Trickle(io.RawIOBase):
        """A socket-like stream: at most 1000 bytes per read."""

        def __init__(self, data: bytes):
            self.data, self.pos = data, 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            chunk = self.data[self.pos:self.pos + min(n if n >= 0 else 1000, 1000)]
            self.pos += len(chunk)
            return chunk

    assert list(iter_jpeg_frames(Trickle(multipart(frames)))) == frames


def test_split_garbage_and_empty() -> None:
    assert list(iter_jpeg_frames(io.BytesIO(b""))) == []
    assert list(iter_jpeg_frames(io.BytesIO(b"\xff\xd8 not a jpeg \xff\xd9" * 100))) == []


def test_jpeg_end(frames) -> None:
    f = frames[2]
    assert mjpeg_stream.jpeg_end(f + b"\x00" * 10) == len(f)
    assert mjpeg_stream.jpeg_end(f[:-1]) is None


# -- the examples, as subprocesses ---------------------------------------------------------

@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script) -> None:
    res = run(script, "--help")
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.startswith(b"usage:")


@needs_model
def test_classify_photo(photos) -> None:
    res = run("classify_photo.py", photos[0], "--top-k", "3")
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    top = edge_dct.classify(photos[0], max_results=1).top.label
    assert f"top: {top} (" in out
    assert re.search(r"^latency: \d+\.\d ms \(prepare \d+\.\d ms \+ inference \d+\.\d ms\)$",
                     out, re.M)
    assert len(re.findall(r"^\d\. ", out, re.M)) == 3


def test_classify_photo_not_a_jpeg(tmp_path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    res = run("classify_photo.py", bad)
    assert res.returncode == 1
    assert b"error:" in res.stderr and b"bad.jpg" in res.stderr


@needs_model
def test_classify_folder(photos, tmp_path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, path in enumerate(photos[:4]):
        shutil.copy(path, folder / ("sub" if i % 2 else "") / path.name)
    (folder / "sub" / "corrupt.jpg").write_bytes(photos[4].read_bytes()[:2000])
    (folder / "notes.txt").write_text("not a photo")
    out_csv = tmp_path / "out.csv"
    res = run("classify_folder.py", folder, "--csv", out_csv, "--workers", 2)
    assert res.returncode == 1, res.stderr.decode()
    stderr = res.stderr.decode()
    assert re.search(r"error: .*corrupt\.jpg", stderr)
    assert "4 classified, 1 failed" in stderr
    stdout = res.stdout.decode()
    assert len(re.findall(r": .+ \(\d\.\d{3}\)  latency \d+\.\d ms$", stdout, re.M)) == 4

    rows = list(csv.DictReader(out_csv.open()))
    assert set(rows[0]) >= {"file", "label", "score", "ms"}
    assert len(rows) == 5
    by_name = {Path(r["file"]).name: r for r in rows}
    assert by_name["corrupt.jpg"]["label"] == "" and by_name["corrupt.jpg"]["error"]
    for path in photos[:4]:
        row = by_name[path.name]
        assert row["label"] == edge_dct.classify(path, max_results=1).top.label
        assert 0 < float(row["score"]) <= 1 and float(row["ms"]) > 0

    (folder / "sub" / "corrupt.jpg").unlink()
    res = run("classify_folder.py", folder)
    assert res.returncode == 0, res.stderr.decode()
    assert "4 classified, 0 failed" in res.stderr.decode()


def test_classify_folder_empty(tmp_path) -> None:
    res = run("classify_folder.py", tmp_path)
    assert res.returncode == 2 and b"no JPEG files" in res.stderr


@needs_model
def test_raspberry_pi_replay(photos, tmp_path) -> None:
    for path in photos[:3]:
        shutil.copy(path, tmp_path / path.name)
    res = run("raspberry_pi_camera.py", "--source", tmp_path, "--frames", 5, "--interval", 0)
    assert res.returncode == 0, res.stderr.decode()
    got = frame_results(res.stdout)
    assert [n for n, *_ in got] == [1, 2, 3, 4, 5]
    files = sorted(tmp_path.glob("*.jpg"))
    want = [edge_dct.classify(files[i % 3], max_results=1).top.label for i in range(5)]
    assert [label for _, label, _, _ in got] == want
    assert all(ms > 0 for *_, ms in got)


@needs_model
def test_raspberry_pi_saves_frames_for_the_model(photos, tmp_path) -> None:
    """--save keeps each frame re-coded for the model: decodable, no larger than the camera's
    file, and it is what edge_dct.transcode_for_model writes."""
    src, saved = tmp_path / "src", tmp_path / "saved"
    src.mkdir()
    for path in photos[:2]:
        shutil.copy(path, src / path.name)
    res = run("raspberry_pi_camera.py", "--source", src, "--frames", 2, "--interval", 0, "--save", saved)
    assert res.returncode == 0, res.stderr.decode()
    assert b"saved" in res.stdout
    frames = sorted(saved.glob("frame_*.jpg"))
    originals = sorted(src.glob("*.jpg"))
    assert len(frames) == 2
    for frame, original in zip(frames, originals):
        data = original.read_bytes()
        assert frame.read_bytes() == edge_dct.transcode_for_model(data)
        assert frame.stat().st_size <= len(data)


def test_raspberry_pi_without_picamera2() -> None:
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("Picamera2 is installed")
    res = run("raspberry_pi_camera.py", "--frames", 1)
    assert res.returncode != 0
    assert b"python3-picamera2" in res.stderr and b"--source" in res.stderr


@needs_model
@pytest.mark.parametrize("script", ["usb_webcam_mjpeg.py", "jetson_gstreamer.py"])
@pytest.mark.parametrize("kind,boundary", [("concat", None), ("multipart", None),
                                           ("multipart", BOUNDARY)])
def test_replay(script, kind, boundary, streams, expected) -> None:
    args = ["--replay", streams[kind]] + (["--boundary", boundary] if boundary else [])
    res = run(script, *args)
    assert res.returncode == 0, res.stderr.decode()
    got = frame_results(res.stdout)
    assert [n for n, *_ in got] == list(range(1, len(expected) + 1))
    assert [label for _, label, _, _ in got] == expected
    assert all(0 < score <= 1 and ms > 0 for _, _, score, ms in got)


@needs_model
@pytest.mark.parametrize("script", ["usb_webcam_mjpeg.py", "jetson_gstreamer.py"])
def test_replay_stdin_frames_limit(script, streams, expected) -> None:
    res = run(script, "--replay", "-", "--frames", 2, stdin=streams["multipart"].read_bytes())
    assert res.returncode == 0, res.stderr.decode()
    assert [label for _, label, _, _ in frame_results(res.stdout)] == expected[:2]


@pytest.fixture(scope="module")
def no_capture_libs(tmp_path_factory) -> dict:
    """An environment where importing cv2, gi and picamera2 fails, as on a bare machine."""
    d = tmp_path_factory.mktemp("blocked")
    for name in ("cv2", "gi", "picamera2"):
        (d / name).mkdir()
        (d / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    return {**os.environ, "PYTHONPATH": str(d)}


@needs_model
@pytest.mark.parametrize("script", ["usb_webcam_mjpeg.py", "jetson_gstreamer.py"])
def test_replay_needs_no_capture_libs(script, streams, expected, no_capture_libs) -> None:
    res = run(script, "--replay", streams["concat"], env=no_capture_libs)
    assert res.returncode == 0, res.stderr.decode()
    assert len(frame_results(res.stdout)) == len(expected)


@pytest.mark.parametrize("script,hint", [("usb_webcam_mjpeg.py", b"opencv-python-headless"),
                                         ("jetson_gstreamer.py", b"python3-gi"),
                                         ("raspberry_pi_camera.py", b"python3-picamera2")])
def test_camera_mode_without_libs_explains(script, hint, no_capture_libs) -> None:
    res = run(script, "--frames", 1, env=no_capture_libs)
    assert res.returncode != 0
    assert hint in res.stderr and (b"--replay" in res.stderr or b"--source" in res.stderr)
    assert b"Traceback" not in res.stderr


def _gi_path() -> str | None:
    """A PYTHONPATH entry holding GStreamer's Python bindings (gi) alone, if the system has them."""
    for site in ("/usr/lib/python3/dist-packages",):
        if (Path(site) / "gi").is_dir():
            return site
    return None


@needs_model
def test_jetson_live_gstreamer_pipeline(tmp_path) -> None:
    """The gi capture path for real, with a test source standing in for the camera."""
    site = _gi_path()
    if site is None:
        pytest.skip("no GStreamer Python bindings (python3-gi)")
    (tmp_path / "gi").symlink_to(Path(site) / "gi")  # gi only, not the rest of dist-packages
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    probe = subprocess.run([sys.executable, "-c", "import gi; gi.require_version('Gst', '1.0'); "
                            "from gi.repository import Gst; Gst.init(None); "
                            "assert Gst.ElementFactory.find('jpegenc')"],
                           env=env, capture_output=True)
    if probe.returncode != 0:
        pytest.skip("GStreamer bindings or jpegenc unavailable: " + probe.stderr.decode()[-200:])
    pipeline = ("videotestsrc num-buffers=3 ! video/x-raw,width=640,height=480 ! jpegenc ! "
                "image/jpeg ! appsink name=sink sync=false")
    res = run("jetson_gstreamer.py", "--capture", "gi", "--pipeline", pipeline, env=env)
    assert res.returncode == 0, res.stderr.decode()
    assert b"GStreamer via gi" in res.stderr
    assert [n for n, *_ in frame_results(res.stdout)] == [1, 2, 3]


@needs_model
def test_backend_picks_the_runtime(streams, tmp_path) -> None:
    """``--backend onnxruntime`` runs an .onnx bundle on ONNX Runtime; a bundle of the other
    format is refused with exit 2, naming it (and how to make an .onnx one)."""
    res = run("jetson_gstreamer.py", "--replay", streams["concat"], "--backend", "onnxruntime")
    assert res.returncode == 2
    assert b"--backend onnxruntime runs .onnx bundles" in res.stdout and b"converters export default" in res.stdout
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from edge_dct.bundle import ModelBundle
    from tests.test_onnx_runtime import tiny_bundle

    model = tmp_path / "tiny.onnx"
    model.write_bytes(tiny_bundle(dict(ModelBundle.load().metadata, format="onnx", precision="fp32"))[0])
    res = run("jetson_gstreamer.py", "--replay", streams["concat"], "--frames", 2, "--backend", "onnxruntime",
              "--accelerator", "cpu", "--model", model)
    assert res.returncode == 0, res.stderr.decode()
    assert b"network on cpu (onnx)" in res.stdout and len(frame_results(res.stdout)) == 2
    res = run("usb_webcam_mjpeg.py", "--replay", streams["concat"], "--backend", "litert", "--model", model)
    assert res.returncode == 2 and b"is a .onnx bundle" in res.stdout
