"""edge_dct.native_log: LiteRT's fd-2 log lines dropped, everything else kept."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import os, sys, warnings
from edge_dct.native_log import runtime_logs
print("before", file=sys.stderr)
with runtime_logs():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    print("ours, inside", file=sys.stderr)
    with runtime_logs():  # nested: part of the outer block
        os.write(2, b"INFO: [accelerator_registry.cc:43] DestroyAccelerator: ptr=0x1\\n")
    os.write(2, b"WARNING: a runtime warning stays\\n")
    warnings.warn("a Python warning stays")
with runtime_logs(probe=True):
    os.write(2, b"ERROR: probing noise goes\\n")
print("after", file=sys.stderr)
with runtime_logs():
    os.write(2, b"INFO: before the traceback\\n")
    raise SystemExit("our error message stays")
"""


def _run(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "EDGE_DCT_VERBOSE"}
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**clean, **env})
    assert run.returncode == 1
    return run.stderr


def test_runtime_info_lines_are_dropped_ours_kept() -> None:
    err = _run()
    assert "INFO:" not in err and "probing noise" not in err
    for kept in ("before", "ours, inside", "WARNING: a runtime warning stays",
                 "a Python warning stays", "after", "our error message stays"):
        assert kept in err, err
    assert err.index("before") < err.index("ours, inside") < err.index("after")


def test_verbose_environment_variable_keeps_everything() -> None:
    err = _run(EDGE_DCT_VERBOSE="1")
    assert "INFO: Created TensorFlow Lite XNNPACK" in err and "DestroyAccelerator" in err
    assert "probing noise" in err and "our error message stays" in err
