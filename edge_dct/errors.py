"""Exception and warning types raised by edge_dct: every error derives from EdgeDctError.

Every error names the source it was reading (a path, ``<bytes>``, a file object's name or a
model) and the reason, carries an ``ErrorCode`` (``code``), and inherits a builtin so that
generic handlers (``except ValueError``, ``except MemoryError``) keep working. C statuses
become these exceptions in one place, ``err_check`` in ``cython_ext/_jpeg.pyx``.
"""

from __future__ import annotations

import enum
import os
import warnings


class ErrorCode(enum.IntEnum):
    """The library's error codes: the C core's ``edct_status`` values (1-6), then the
    model/runtime/IO codes of the Android bridge (``edcl_error.h``, ``EdgeDctException``)."""

    INVALID_JPEG = 1
    UNSUPPORTED_JPEG = 2
    IMAGE_TOO_LARGE = 3
    OUT_OF_MEMORY = 4
    BAD_ARGUMENT = 5
    ABORTED = 6
    INVALID_MODEL = 10
    RUNTIME = 11
    IO = 12


class EdgeDctError(Exception):
    """Base class of every edge_dct error.

    Attributes:
        source: What was being read: a path, ``"<bytes>"``, a stream or model name, or None.
        reason: The reason, without the source.
        offset: Byte offset in the input where the problem was found, or None.
        code: The ErrorCode (each subclass has its own; None for a bare EdgeDctError).
    """

    code: ErrorCode | None = None

    def __init__(self, reason: str, source: str | None = None, offset: int | None = None, *,
                 code: ErrorCode | None = None):
        self.reason = reason
        self.source = source
        self.offset = offset
        if code is not None:
            self.code = code
        where = f" (at byte {offset})" if offset is not None and offset >= 0 else ""
        super().__init__(f"{source}: {reason}{where}" if source else f"{reason}{where}")


class InvalidJpegError(EdgeDctError, ValueError):
    """The data is not a well-formed JPEG (corrupt, truncated, not a JPEG)."""

    code = ErrorCode.INVALID_JPEG


class UnsupportedJpegError(EdgeDctError, ValueError):
    """A valid JPEG outside edge_dct's scope (12/16-bit, lossless, hierarchical, >4 components)."""

    code = ErrorCode.UNSUPPORTED_JPEG


class ImageTooLargeError(EdgeDctError, ValueError):
    """The header declares more pixels than ``max_pixels`` allows; nothing was allocated."""

    code = ErrorCode.IMAGE_TOO_LARGE


class OutOfMemoryError(EdgeDctError, MemoryError):
    """Native memory ran out (the C core or libjpeg could not allocate)."""

    code = ErrorCode.OUT_OF_MEMORY


class InvalidArgumentError(EdgeDctError, ValueError):
    """An argument or option is inconsistent (a bad window, missing quantization, ...)."""

    code = ErrorCode.BAD_ARGUMENT


class InvalidSpecError(InvalidArgumentError):
    """An InputSpec field is missing or wrong; the message names the field."""


class DatasetError(InvalidArgumentError):
    """A training data set cannot be used: an empty class folder, a single class, no usable
    photo left, a CSV without ``path,label`` rows; the message names the file or folder."""


class ModelError(EdgeDctError, ValueError):
    """A model file is missing, corrupt, not an edge_dct bundle, or disagrees with its spec."""

    code = ErrorCode.INVALID_MODEL


class MetadataNotFoundError(ModelError, LookupError):
    """A valid .tflite model without the ``edge_dct`` metadata entry: not an edge_dct bundle."""


class AcceleratorUnavailableError(EdgeDctError, RuntimeError):
    """The requested accelerator (or its delegate library) is not available here."""

    code = ErrorCode.RUNTIME


class RuntimeUnavailableError(EdgeDctError, ImportError):
    """No LiteRT backend could be imported."""

    code = ErrorCode.RUNTIME


class EdgeDctWarning(UserWarning):
    """A JPEG decoded with ``strict=False`` was corrupt; the result may miss coefficients."""


def warn_decoded(source: str, count: int, first: str | None, *,
                 stacklevel: int = 3) -> tuple[str, ...]:
    """Turns the C core's warning report into messages, issuing one EdgeDctWarning.

    Args:
        source: The name of what was decoded.
        count: How many warnings the decoder saw (``edct_error.num_warnings``).
        first: The first warning's text.
        stacklevel: Passed to ``warnings.warn``; the default points at the caller's caller
            (the user's ``read_dct`` / ``prepare`` call).

    Returns:
        ``()`` when clean, else one message: the first warning and how many more there were.
    """
    if not count:
        return ()
    message = f"{first}{f' (+{count - 1} more)' if count > 1 else ''}"
    warnings.warn(f"{source}: {message}", EdgeDctWarning, stacklevel=stacklevel)
    return (message,)


def read_file(path: str | os.PathLike, error: type[EdgeDctError], what: str) -> tuple[bytes, str]:
    """(contents, name) of a file; an unreadable file raises ``error`` naming it.

    Args:
        path: The file.
        error: The EdgeDctError subclass to raise (with ``ErrorCode.IO``).
        what: What the file is, for the message ("file", "model").
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return f.read(), str(name)
    except OSError as e:
        raise error(f"cannot read {what}: {e.strerror or e}", str(name), code=ErrorCode.IO) from e


__all__ = [
    "AcceleratorUnavailableError",
    "DatasetError",
    "EdgeDctError",
    "EdgeDctWarning",
    "ErrorCode",
    "ImageTooLargeError",
    "InvalidArgumentError",
    "InvalidJpegError",
    "InvalidSpecError",
    "MetadataNotFoundError",
    "ModelError",
    "OutOfMemoryError",
    "RuntimeUnavailableError",
    "UnsupportedJpegError",
    "read_file",
    "warn_decoded",
]
