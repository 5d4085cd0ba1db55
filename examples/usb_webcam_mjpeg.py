#!/usr/bin/env python3
"""USB webcam: classify the camera's MJPEG frames straight from their bytes, never decoding them.

Most UVC webcams can send Motion-JPEG: every frame is already a JPEG. OpenCV's V4L2 backend is
asked for the MJPG format with RGB conversion off, so ``read()`` returns each frame's
compressed bytes (a 1 x N uint8 array) instead of decoded pixels, and edge_dct classifies them
from their DCT coefficients.

Without a camera, ``--replay FILE`` reads a recorded MJPEG stream: JPEGs simply concatenated,
or a multipart/x-mixed-replace stream as MJPEG HTTP cameras serve it (``-`` reads stdin).

Usage:
    python examples/usb_webcam_mjpeg.py --device /dev/video0 --size 640x480 --frames 100
    python examples/usb_webcam_mjpeg.py --replay recording.mjpeg
    curl -s http://camera.local/stream | python examples/usb_webcam_mjpeg.py --replay -
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Iterator

import numpy as np

from frame_loop import add_stream_arguments, classify_frames  # examples/frame_loop.py
from mjpeg_stream import iter_jpeg_frames  # examples/mjpeg_stream.py

NO_OPENCV = """error: cannot import OpenCV ({error}).
Install it with `pip install opencv-python-headless` (or `sudo apt install python3-opencv`).
Without a camera, classify a recorded stream instead: --replay FILE.mjpeg"""


def webcam_frames(device: str, width: int, height: int, fps: int) -> Iterator[np.ndarray]:
    """Opens a V4L2 webcam in MJPG mode and returns its frames, still JPEG-compressed.

    Args:
        device: ``/dev/videoN`` or the index N.
        width: Frame width asked of the camera.
        height: Frame height asked of the camera.
        fps: Frame rate asked of the camera.

    Returns:
        An iterator of frames, each a 1-D uint8 array holding one JPEG.

    Raises:
        SystemExit: OpenCV is missing, the camera cannot be opened, or it does not send MJPG.
    """
    try:
        import cv2  # imported here: replay mode does not need OpenCV
    except ImportError as e:
        raise SystemExit(NO_OPENCV.format(error=e)) from None
    index = re.fullmatch(r"(?:/dev/video)?(\d+)", device)  # /dev/videoN: open by index N
    cap = cv2.VideoCapture(int(index[1]) if index else device, cv2.CAP_V4L2)
    if not cap.isOpened():
        raise SystemExit(f"error: cannot open {device} with V4L2 (`v4l2-ctl --list-devices` "
                         f"lists the cameras); without one, use --replay FILE.mjpeg")
    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))  # before the size
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    cap.set(cv2.CAP_PROP_FPS, fps)
    cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)  # read() hands out the compressed frame as it came
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace")
    if fourcc != "MJPG":
        cap.release()
        raise SystemExit(f"error: {device} sends {fourcc!r}, not MJPG, at {width}x{height}; "
                         f"`v4l2-ctl -d {device} --list-formats-ext` lists what it can send")
    print(f"{device}: MJPG {int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x"
          f"{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))} @ {cap.get(cv2.CAP_PROP_FPS):g} fps",
          file=sys.stderr)

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    raise SystemExit(f"error: {device} stopped sending frames")
                if frame.ndim != 2 or frame.shape[0] != 1:  # decoded pixels: conversion is on
                    raise SystemExit(f"error: got a decoded {frame.shape} frame, not MJPEG bytes; "
                                     f"this OpenCV build ignores CAP_PROP_CONVERT_RGB=0")
                yield frame.reshape(-1)
        finally:
            cap.release()

    return frames()


def replay_frames(path: str, boundary: str | None) -> Iterator[bytes]:
    """Returns the JPEG frames of a recorded MJPEG stream (``-``: stdin).

    Args:
        path: The recording, or ``-`` for standard input.
        boundary: The multipart boundary, or None to find frames by their JPEG markers.

    Returns:
        An iterator of JPEG frames (bytes).
    """
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")

    def frames() -> Iterator[bytes]:
        with stream:
            yield from iter_jpeg_frames(stream, boundary=boundary)

    return frames()


def main(argv: list[str] | None = None) -> int:
    """Classifies webcam (or replayed) frames, printing per-frame latency and the top result.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 if every frame was classified, 1 if any failed.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__.split("Usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="/dev/video0", help="V4L2 device (default /dev/video0)")
    parser.add_argument("--size", default="640x480", help="frame size WxH (default 640x480)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    add_stream_arguments(parser, "the camera")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    frames = (replay_frames(args.replay, args.boundary) if args.replay
              else webcam_frames(args.device, width, height, args.fps))
    return classify_frames(frames, args.model, args.frames, args.accelerator, args.backend)


if __name__ == "__main__":
    sys.exit(main())
