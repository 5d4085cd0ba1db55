"""Split an MJPEG stream into its JPEG frames, without decoding them.

Reads a plain concatenation of JPEG files (what ``ffmpeg -c:v copy -f mjpeg`` or a webcam
recording writes) or a ``multipart/x-mixed-replace`` stream as MJPEG HTTP cameras serve it
(``curl http://camera/stream > rec.mjpeg``), from a file, a pipe or a socket.

Frames are found by walking their JPEG marker structure, never by searching for the first
``FF D9`` (EOI) after an ``FF D8`` (SOI): marker segments are skipped by their lengths up to
the start of scan, so an EXIF thumbnail inside APP1 (a whole JPEG with its own EOI) cannot end
a frame early; in the entropy-coded data ``FF`` is always followed by a stuffed ``00`` or a
restart marker, so the first other marker there is the real one (EOI, or the next scan of a
progressive frame).

Example:
    >>> from mjpeg_stream import iter_jpeg_frames
    >>> with open("recording.mjpeg", "rb") as f:
    ...     for frame in iter_jpeg_frames(f):
    ...         print(len(frame), frame[:2] == b"\\xff\\xd8")
"""

from __future__ import annotations

import warnings
from typing import BinaryIO, Iterator

SOI = b"\xff\xd8\xff"  # start of image, followed by the first marker's FF


class BrokenFrame(Exception):
    """The marker structure of a frame is broken at ``pos`` (e.g. a frame cut short)."""

    def __init__(self, pos: int):
        super().__init__(pos)
        self.pos = pos


def jpeg_end(buf: bytes | bytearray, start: int = 0) -> int | None:
    """Finds where the JPEG that starts at ``buf[start]`` ends.

    Args:
        buf: Bytes holding a JPEG from its SOI marker on.
        start: Index of the SOI marker (``FF D8``).

    Returns:
        The index just past the frame's EOI marker, or None when ``buf`` ends first.

    Raises:
        BrokenFrame: The bytes at ``BrokenFrame.pos`` are not where a marker must be, or a new
            SOI appears inside the frame (the frame was truncated and the next one begins).
    """
    n = len(buf)
    pos = start + 2
    while True:
        # A marker: FF (fill bytes FF allowed), then its code.
        if pos + 1 >= n:
            return None
        if buf[pos] != 0xFF:
            raise BrokenFrame(pos)
        while buf[pos + 1] == 0xFF:
            pos += 1
            if pos + 1 >= n:
                return None
        code = buf[pos + 1]
        if code == 0xD9:  # EOI
            return pos + 2
        if code in (0xD8, 0x00):  # SOI inside a frame, or a stuffed byte outside a scan
            raise BrokenFrame(pos)
        if 0xD0 <= code <= 0xD7 or code == 0x01:  # RSTn, TEM: no length
            pos += 2
            continue
        if pos + 3 >= n:
            return None
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        if length < 2:
            raise BrokenFrame(pos)
        pos += 2 + length  # skips APPn (EXIF thumbnails included), DQT, DHT, SOFn, SOS header
        if code != 0xDA:  # not SOS: the next marker follows right away
            continue
        # Entropy-coded data: FF 00 is a stuffed FF, FF D0..D7 a restart marker, FF FF fill.
        while True:
            ff = buf.find(b"\xff", pos)
            if ff < 0 or ff + 1 >= n:
                return None
            code = buf[ff + 1]
            if code == 0x00 or 0xD0 <= code <= 0xD7:
                pos = ff + 2
            elif code == 0xFF:
                pos = ff + 1
            else:
                pos = ff  # a real marker: EOI, or DHT/SOS/... of the next progressive scan
                break


class _Reader:
    """A growing buffer over a binary file object, with the stream offset of its first byte."""

    def __init__(self, fileobj: BinaryIO, chunk_size: int):
        # read1 returns what a pipe or socket has now instead of waiting for a full chunk.
        self.read = getattr(fileobj, "read1", fileobj.read)
        self.chunk_size = chunk_size
        self.buf = bytearray()
        self.offset = 0

    def more(self) -> bool:
        """Reads more (at least as much again as buffered, so rescans stay linear)."""
        data = self.read(max(self.chunk_size, len(self.buf)))
        self.buf += data
        return bool(data)

    def drop(self, n: int) -> None:
        del self.buf[:n]
        self.offset += n


def iter_jpeg_frames(fileobj: BinaryIO, *, boundary: str | None = None,
                     chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Yields the JPEG frames of an MJPEG stream, byte for byte as recorded.

    Anything between frames (multipart delimiters and part headers, padding) is skipped. A frame
    cut short (a camera glitch, a recording stopped mid-frame) is skipped with a warning.

    Args:
        fileobj: A binary file object: a file, ``sys.stdin.buffer``, a socket's ``makefile("rb")``.
        boundary: The multipart boundary (from ``Content-Type: multipart/x-mixed-replace;
            boundary=...``), with or without its leading ``--``. When given, the stream is read
            as multipart: each part's ``Content-Length`` header, where present, cuts its frame
            without scanning it, and parts that are not ``image/jpeg`` are skipped. None: frames
            are found by their markers alone, which works for multipart streams too.
        chunk_size: Bytes per read.

    Yields:
        Each frame's bytes, from its SOI to its EOI marker.

    Raises:
        ValueError: ``boundary`` was given but no part delimited by it was found.
    """
    reader = _Reader(fileobj, chunk_size)
    if boundary is None:
        yield from _by_markers(reader)
    else:
        yield from _by_parts(reader, b"--" + boundary.encode("ascii").lstrip(b"-"))


def _next_frame(reader: _Reader) -> bytes | None:
    """The next whole frame in the stream, skipping other bytes; None at the end."""
    while True:
        soi = reader.buf.find(SOI)
        if soi < 0:
            reader.drop(max(0, len(reader.buf) - (len(SOI) - 1)))  # keep a split SOI's head
            if not reader.more():
                return None
            continue
        reader.drop(soi)
        try:
            end = jpeg_end(reader.buf)
        except BrokenFrame as e:
            warnings.warn(f"skipped a broken JPEG frame at stream offset {reader.offset} "
                          f"(no marker where one must be, offset {reader.offset + e.pos})")
            reader.drop(e.pos)  # resynchronize: the next SOI is searched from here
            continue
        if end is None:
            if reader.more():
                continue
            if reader.buf:
                warnings.warn(f"skipped a truncated JPEG frame at the end of the stream "
                              f"(offset {reader.offset})")
            return None
        frame = bytes(reader.buf[:end])
        reader.drop(end)
        return frame


def _by_markers(reader: _Reader) -> Iterator[bytes]:
    while (frame := _next_frame(reader)) is not None:
        yield frame


def _header_end(buf: bytearray, start: int) -> tuple[int, int]:
    """Index of the blank line ending the part headers after ``start``, and its length."""
    found = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := buf.find(sep, start)) >= 0]
    return min(found) if found else (-1, 0)


def _by_parts(reader: _Reader, delimiter: bytes) -> Iterator[bytes]:
    parts = 0
    while True:
        at = reader.buf.find(delimiter)
        after = at + len(delimiter)
        if at >= 0 and len(reader.buf) >= after + 2 and reader.buf[after:after + 2] == b"--":
            return  # the closing delimiter
        hdr, sep_len = _header_end(reader.buf, at) if at >= 0 else (-1, 0)
        if hdr < 0:
            if not reader.more():
                if not parts:
                    raise ValueError(f"no multipart part delimited by {delimiter.decode()!r} "
                                     f"found; check the boundary")
                return
            continue
        parts += 1
        headers = {}
        for line in bytes(reader.buf[after:hdr]).decode("latin-1").splitlines()[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        reader.drop(hdr + sep_len)
        is_jpeg = headers.get("content-type", "image/jpeg").lower().startswith("image/jpeg")
        length = headers.get("content-length", "")
        if length.isdigit():  # the part's size is known: cut it without scanning
            length = int(length)
            while len(reader.buf) < length:
                if not reader.more():
                    warnings.warn("skipped a truncated part at the end of the stream")
                    return
            end = _whole_jpeg_end(reader.buf[:length]) if is_jpeg else None
            if end is not None:
                yield bytes(reader.buf[:end])
            elif is_jpeg:
                warnings.warn(f"skipped a part that is not a whole JPEG at stream offset "
                              f"{reader.offset}")
            reader.drop(length)
        elif is_jpeg:  # no Content-Length: the frame's markers tell where it ends
            frame = _next_frame(reader)
            if frame is None:
                return
            yield frame


def _whole_jpeg_end(body: bytes | bytearray) -> int | None:
    """End of the JPEG filling ``body`` (trailing padding allowed), None if it is not one."""
    if not body.startswith(SOI):
        return None
    try:
        return jpeg_end(body)
    except BrokenFrame:
        return None
