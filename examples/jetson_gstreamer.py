#!/usr/bin/env python3
"""Jetson: classify JPEG frames from a GStreamer pipeline, never decoding them.

The pipeline ends in ``image/jpeg ! appsink``: a USB webcam's own MJPEG frames (``v4l2src``,
the default), or a CSI camera's frames JPEG-encoded by the Jetson's hardware encoder
(``nvarguscamerasrc ... ! nvjpegenc``, with ``--csi``). Frames are pulled with the GStreamer
Python bindings (``gi``) or, failing those, OpenCV built with GStreamer (``cv2.CAP_GSTREAMER``)
and classified from their bytes. Without a camera, ``--replay FILE`` reads a recorded MJPEG
stream (concatenated JPEGs or multipart, ``-`` for stdin).
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterator

from frame_loop import add_stream_arguments, classify_frames  # examples/frame_loop.py
from mjpeg_stream import iter_jpeg_frames  # examples/mjpeg_stream.py

APPSINK = "appsink name=sink max-buffers=2 drop=true sync=false"
USB_PIPELINE = ("v4l2src device={device} ! image/jpeg,width={width},height={height},"
                "framerate={fps}/1 ! " + APPSINK)
CSI_PIPELINE = ("nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width=1280,"
                "height=720,framerate={fps}/1 ! nvvidconv ! video/x-raw(memory:NVMM),"
                "width={width},height={height},format=I420 ! nvjpegenc quality=90 ! image/jpeg ! "
                + APPSINK)

EPILOG = f"""pipelines (--pipeline replaces them; end yours in image/jpeg and "appsink name=sink"):
  USB webcam (default):
    {USB_PIPELINE}
  CSI camera, hardware JPEG encoder (--csi):
    {CSI_PIPELINE}
  (where nvjpegenc is missing, encode on the CPU instead: replace "nvjpegenc quality=90" with
   "nvvidconv ! video/x-raw,format=I420 ! jpegenc quality=90")

examples:
  python3 examples/jetson_gstreamer.py --device /dev/video0 --size 640x480 --frames 100
  python3 examples/jetson_gstreamer.py --csi --size 640x480
  python3 examples/jetson_gstreamer.py --replay recording.mjpeg
  python3 examples/jetson_gstreamer.py --backend onnxruntime --accelerator tensorrt --model default_fp16.onnx
"""

NO_GSTREAMER = """error: no GStreamer support for Python: {errors}.
On JetPack, install the bindings: sudo apt install python3-gi gir1.2-gstreamer-1.0 \\
    gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-good
(a virtual environment needs --system-site-packages to see them), or use an OpenCV built with
GStreamer (JetPack's python3-opencv; pip's opencv-python has no GStreamer).
Without a camera, classify a recorded stream instead: --replay FILE.mjpeg"""


def gi_frames(pipeline: str) -> Iterator[bytes]:
    """Starts ``pipeline`` with the GStreamer bindings and returns its appsink's buffers.

    Args:
        pipeline: A gst-launch description ending in ``appsink name=sink``.

    Returns:
        An iterator of frames (bytes), one per appsink buffer, ending at end of stream.

    Raises:
        ImportError: The ``gi`` bindings or GStreamer's introspection data are missing.
        SystemExit: The pipeline cannot be built or reports an error.
    """
    import gi  # imported here: replay mode needs no GStreamer

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    try:
        pipe = Gst.parse_launch(pipeline)
    except Exception as e:  # noqa: BLE001 - GLib.Error: unknown element, bad caps
        raise SystemExit(f"error: cannot build the pipeline: {e}") from None
    sink = pipe.get_by_name("sink")
    if sink is None:
        raise SystemExit('error: the pipeline has no "appsink name=sink"')
    pipe.set_state(Gst.State.PLAYING)

    def frames() -> Iterator[bytes]:
        try:
            while True:
                sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
                if sample is None:
                    msg = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
                    if msg is not None:
                        raise SystemExit(f"error: {msg.parse_error()[0].message}")
                    if sink.get_property("eos"):
                        return
                    raise SystemExit("error: no frame for 5 s")
                buffer = sample.get_buffer()
                ok, info = buffer.map(Gst.MapFlags.READ)
                try:
                    yield bytes(info.data)
                finally:
                    buffer.unmap(info)
        finally:
            pipe.set_state(Gst.State.NULL)

    return frames()


def opencv_frames(pipeline: str) -> Iterator[bytes]:
    """Opens ``pipeline`` with OpenCV's GStreamer backend and returns its JPEG frames.

    With ``image/jpeg`` caps on the appsink, OpenCV hands out each frame's bytes undecoded
    (a 1 x N uint8 array).

    Args:
        pipeline: A gst-launch description ending in ``appsink``.

    Returns:
        An iterator of frames (bytes), ending when the pipeline stops.

    Raises:
        ImportError: OpenCV is missing or was built without GStreamer.
        SystemExit: The pipeline cannot be opened.
    """
    import cv2  # imported here: replay mode needs no OpenCV

    if "GStreamer:                   YES" not in cv2.getBuildInformation():
        raise ImportError(f"OpenCV {cv2.__version__} was built without GStreamer")
    cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    if not cap.isOpened():
        raise SystemExit("error: OpenCV cannot open the pipeline (run it with gst-launch-1.0 "
                         "to see why)")

    def frames() -> Iterator[bytes]:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame.tobytes()
        finally:
            cap.release()

    return frames()


def camera_frames(pipeline: str, capture: str) -> Iterator[bytes]:
    """Opens the pipeline with the first capture path that works (``gi``, then ``opencv``).

    Args:
        pipeline: A gst-launch description ending in an appsink with ``image/jpeg`` caps.
        capture: ``"auto"``, ``"gi"`` or ``"opencv"``.

    Returns:
        An iterator of JPEG frames (bytes).

    Raises:
        SystemExit: No capture path is available, with what to install.
    """
    errors = []
    for name, opener in (("gi", gi_frames), ("opencv", opencv_frames)):
        if capture in ("auto", name):
            try:
                frames = opener(pipeline)
            except (ImportError, ValueError) as e:  # gi raises ValueError for a missing Gst
                errors.append(f"{name}: {e}")
                continue
            print(f"GStreamer via {name}: {pipeline}", file=sys.stderr)
            return frames
    raise SystemExit(NO_GSTREAMER.format(errors="; ".join(errors)))


def main(argv: list[str] | None = None) -> int:
    """Classifies camera (or replayed) frames, printing per-frame latency and the top result.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 if every frame was classified, 1 if any failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="/dev/video0", help="USB camera (default /dev/video0)")
    parser.add_argument("--csi", action="store_true",
                        help="CSI camera through nvarguscamerasrc and nvjpegenc")
    parser.add_argument("--sensor", type=int, default=0, help="CSI sensor-id (default 0)")
    parser.add_argument("--size", default="640x480", help="frame size WxH (default 640x480)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    parser.add_argument("--pipeline", help="a full gst-launch pipeline instead of the above")
    parser.add_argument("--capture", choices=["auto", "gi", "opencv"], default="auto",
                        help="how to pull frames from GStreamer (default: gi, else OpenCV)")
    add_stream_arguments(parser, "a camera")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    if args.replay:
        stream = sys.stdin.buffer if args.replay == "-" else open(args.replay, "rb")
        frames = iter_jpeg_frames(stream, boundary=args.boundary)
    else:
        pipeline = args.pipeline or (CSI_PIPELINE if args.csi else USB_PIPELINE).format(
            device=args.device, sensor=args.sensor, width=width, height=height, fps=args.fps)
        frames = camera_frames(pipeline, args.capture)
    return classify_frames(frames, args.model, args.frames, args.accelerator, args.backend)


if __name__ == "__main__":
    sys.exit(main())
