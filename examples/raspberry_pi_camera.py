#!/usr/bin/env python3
"""Raspberry Pi camera: capture stills as JPEG bytes and classify them, never decoding pixels.

Picamera2 encodes each still to JPEG in memory (``capture_file(io.BytesIO(), format="jpeg")``)
and edge_dct classifies those bytes straight from their DCT coefficients. Without a camera
(or without Picamera2), ``--source DIR`` replays the JPEG files of a folder instead.

``--save DIR`` also stores every frame re-coded for the model (``edge_dct.transcode_for_model``:
only what the model reads of that frame, its centre crop and low frequencies, with the tables
tuned for it; no pixels): the files a device keeps or uploads for the model are then much
smaller, and the model's input from them is what it was from the camera's JPEG re-coded with
those tables (see README, "Compress for the model").

Usage:
    python examples/raspberry_pi_camera.py --frames 20 --interval 0.5
    python examples/raspberry_pi_camera.py --source photos/ --frames 5 --interval 0
    python examples/raspberry_pi_camera.py --frames 100 --save frames/
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import time
from pathlib import Path
from typing import Iterator

import edge_dct

NO_PICAMERA2 = """error: cannot import Picamera2 ({error}).
On 64-bit Raspberry Pi OS install it with
    sudo apt install -y python3-picamera2
and give a virtual environment access to it: python3 -m venv --system-site-packages .venv
Without a camera, replay JPEG files instead: --source DIR"""


def camera_frames(width: int, height: int, quality: int) -> Iterator[bytes]:
    """Opens the Pi camera and returns its stills, each encoded to JPEG in memory.

    Args:
        width: Still width in pixels.
        height: Still height in pixels.
        quality: JPEG quality, 1-100.

    Returns:
        An iterator of JPEGs (bytes), one capture each, until the caller stops iterating.

    Raises:
        SystemExit: Picamera2 is not installed or no camera is connected.
    """
    try:
        from picamera2 import Picamera2  # imported here: only camera mode needs it
    except Exception as e:  # noqa: BLE001 - ImportError, or a numpy ABI mismatch in a venv
        raise SystemExit(NO_PICAMERA2.format(error=e)) from None
    try:
        picam2 = Picamera2()
    except Exception as e:  # noqa: BLE001 - IndexError/RuntimeError when no camera is found
        raise SystemExit(f"error: no camera found ({e}); check `rpicam-hello --list-cameras`, "
                         f"or replay JPEG files with --source DIR") from None
    picam2.configure(picam2.create_still_configuration(main={"size": (width, height)}))
    picam2.options["quality"] = quality
    picam2.start()

    def captures() -> Iterator[bytes]:
        try:
            while True:
                buffer = io.BytesIO()
                picam2.capture_file(buffer, format="jpeg")  # encoded in memory, never saved
                yield buffer.getvalue()
        finally:
            picam2.close()

    return captures()


def replay_frames(folder: Path) -> Iterator[bytes]:
    """Replays the JPEG files under ``folder`` as if a camera captured them, in a loop.

    Args:
        folder: Folder searched recursively for ``.jpg``/``.jpeg`` files.

    Returns:
        An iterator of each file's bytes, cycling through the files forever.

    Raises:
        SystemExit: The folder holds no JPEG file.
    """
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"error: no .jpg/.jpeg files under {folder}")
    return (path.read_bytes() for path in itertools.cycle(files))


def main(argv: list[str] | None = None) -> int:
    """Captures (or replays) frames, classifying each and printing its latency and top result.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 if every frame was classified, 1 if any failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="replay the JPEG files in DIR instead of using the camera")
    parser.add_argument("--frames", type=int, default=10, help="frames to classify (0: forever)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between captures (default 1)")
    parser.add_argument("--size", default="640x480", help="camera still size WxH (default 640x480)")
    parser.add_argument("--quality", type=int, default=90, help="camera JPEG quality (default 90)")
    parser.add_argument("--model", help="an edge_dct .tflite bundle (default: the embedded model)")
    parser.add_argument("--save", type=Path, metavar="DIR",
                        help="also save each frame re-coded for the model (frame_00001.jpg, ...)")
    args = parser.parse_args(argv)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        tuned = edge_dct.tables_for_model(args.model)
    width, height = (int(v) for v in args.size.lower().split("x"))

    frames = (replay_frames(args.source) if args.source
              else camera_frames(width, height, args.quality))
    if args.frames > 0:
        frames = itertools.islice(frames, args.frames)
    classifier = edge_dct.Classifier(edge_dct.ClassifierOptions(
        base_options=edge_dct.BaseOptions(model=args.model), max_results=1))
    failed = 0
    with classifier:
        try:
            start = time.perf_counter()
            for i, jpeg in enumerate(frames, 1):
                capture_ms = (time.perf_counter() - start) * 1e3
                try:
                    result = classifier.classify(jpeg)  # the JPEG bytes, as captured
                except edge_dct.EdgeDctError as e:
                    failed += 1
                    print(f"frame {i}: error: {e}")
                else:
                    t, top = result.timing, result.top
                    saved = ""
                    if args.save:
                        small = edge_dct.transcode_for_model(jpeg, args.model, tuned)
                        (args.save / f"frame_{i:05d}.jpg").write_bytes(small)
                        saved = f", saved {len(small) / 1024:.0f} KiB (camera {len(jpeg) / 1024:.0f} KiB)"
                    print(f"frame {i}: {top.label} ({top.score:.3f})  latency {t.total_ms:.1f} ms "
                          f"(prepare {t.prepare_ms:.1f} + inference {t.inference_ms:.1f}), "
                          f"capture {capture_ms:.1f} ms{saved}", flush=True)
                elapsed = time.perf_counter() - start
                time.sleep(max(0.0, args.interval - elapsed))
                start = time.perf_counter()
        except KeyboardInterrupt:
            pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
