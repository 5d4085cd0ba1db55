"""The C core built with ASan + UBSan runs the whole shared corpus clean (`make sanitize`)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import CORPUS, ROOT


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("gcc") is None,
                    reason="needs make and gcc")
def test_sanitized_core_runs_corpus_clean() -> None:
    proc = subprocess.run(["make", "-s", "sanitize", f"CORPUS={CORPUS}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "ERROR: AddressSanitizer" not in out and "runtime error" not in out, out[-4000:]
    assert "ok" in out
