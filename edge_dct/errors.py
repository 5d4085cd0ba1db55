"""Exception and warning types raised by edge_dct.

Every error names the source it was reading (a path, ``<bytes>`` or a file
object's name) and the reason, and inherits a builtin so that generic
handlers (``except ValueError``) keep working.
"""

from __future__ import annotations

import os


class EdgeDctError(Exception):
    """Base class of every edge_dct error.

    Attributes:
        source: What was being read: a path, ``"<bytes>"`` or a stream name.
        reason: The reason, without the source.
        offset: Byte offset in the input where the problem was found, or None.
    """

    def __init__(self, reason: str, source: str | None = None, offset: int | None = None):
        self.reason = reason
        self.source = source
        self.offset = offset
        where = f" (at byte {offset})" if offset is not None and offset >= 0 else ""
        super().__init__(f"{source}: {reason}{where}" if source else f"{reason}{where}")


class InvalidJpegError(EdgeDctError, ValueError):
    """The data is not a well-formed JPEG (corrupt, truncated, not a JPEG)."""


class UnsupportedJpegError(EdgeDctError, ValueError):
    """A valid JPEG outside edge_dct's scope (12/16-bit, lossless, hierarchical, >4 components)."""


class ImageTooLargeError(EdgeDctError, ValueError):
    """The header declares more pixels than ``max_pixels`` allows; nothing was allocated."""


class EdgeDctWarning(UserWarning):
    """A JPEG decoded with ``strict=False`` was corrupt; the result may miss coefficients."""


def read_file(path: str | os.PathLike, error: type[EdgeDctError], what: str) -> tuple[bytes, str]:
    """(contents, name) of a file; an unreadable file raises ``error`` naming it.

    Args:
        path: The file.
        error: The EdgeDctError subclass to raise.
        what: What the file is, for the message ("file", "model").
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return f.read(), str(name)
    except OSError as e:
        raise error(f"cannot read {what}: {e.strerror or e}", str(name)) from e
