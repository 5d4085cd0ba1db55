"""LiteRT's native log lines, kept off stderr unless asked for.

LiteRT (and the TFLite interpreter inside it) writes ``INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.``, ``INFO: [accelerator_registry.cc:43] DestroyAccelerator ...`` and, while
accelerators are probed, pages of warnings straight to file descriptor 2, from native code:
no Python logger, environment variable (``TF_CPP_MIN_LOG_LEVEL`` included) or API of
``ai_edge_litert`` turns them off. ``runtime_logs()`` therefore points fd 2 at a temporary
file around the native calls that log (interpreter creation and first allocation,
accelerator probing, destruction) and afterwards writes back to the real stderr everything
but LiteRT's ``INFO:``/``VERBOSE:`` lines, so our own messages, Python warnings and
tracebacks are never lost. ``EDGE_DCT_VERBOSE=1`` (or ``edge-dct --verbose``, which calls
``set_verbose``) leaves stderr alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator

VERBOSE_ENV = "EDGE_DCT_VERBOSE"
"""Set to 1 to see LiteRT's native log lines."""

_RUNTIME_INFO = (b"INFO: ", b"VERBOSE: ")
_lock = threading.RLock()
_depth = 0
_verbose: bool | None = None


def set_verbose(enabled: bool | None) -> None:
    """Shows (True) or hides (False) LiteRT's log lines; None: follow ``EDGE_DCT_VERBOSE``."""
    global _verbose
    _verbose = enabled


def verbose() -> bool:
    """Whether LiteRT's log lines reach stderr."""
    if _verbose is not None:
        return _verbose
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def runtime_logs(*, probe: bool = False) -> Iterator[None]:
    """Runs a block of LiteRT calls with their log lines kept off stderr (unless verbose).

    Process-wide (fd 2 is shared): blocks of different threads run one at a time, and
    output other threads write meanwhile is delayed, not lost. Nested blocks are part of the
    outermost one.

    Args:
        probe: The block tries an accelerator that may be missing: everything written to
            fd 2 meanwhile is dropped (a failure becomes our exception, naming the reason),
            not only the ``INFO:`` lines.
    """
    global _depth
    if verbose():
        yield
        return
    with _lock:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep clean
            yield
            return
        _depth = 1
        try:
            with tempfile.TemporaryFile() as capture:
                _flush_stderr()
                os.dup2(capture.fileno(), 2)
                try:
                    yield
                finally:
                    _flush_stderr()
                    os.dup2(saved, 2)
                    capture.seek(0)
                    if not probe:
                        _write_back(capture.read())
        finally:
            os.close(saved)
            _depth = 0


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


def _write_back(written: bytes) -> None:
    """Writes to fd 2 what a block wrote, less LiteRT's ``INFO:``/``VERBOSE:`` lines."""
    kept = b"".join(line for line in written.splitlines(keepends=True)
                    if not line.startswith(_RUNTIME_INFO))
    view = memoryview(kept)
    while view:
        view = view[os.write(2, view):]


__all__ = ["VERBOSE_ENV", "runtime_logs", "set_verbose", "verbose"]
