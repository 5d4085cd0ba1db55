"""Android bridge (android_bridge/): the real JNI library, Java API and C drivers, via make.

* ``make android-host-test``: JNI library on the host (system libjpeg-turbo + the ai-edge-litert
  wheel's libLiteRt.so), Java API + HostTest on the JDK, top-5 parity with edge_dct.Classifier.
* ``make android-asan-test``: the native classifier under ASan+UBSan (corpus, mutations, corrupt
  models).
* ``make arm64-test``: the core cross-built for aarch64, run under qemu, tensors bit-identical.

Each test skips only when its tools are not installed (android_bridge/scripts/install_tools.sh
installs them); once they are, any failure fails loudly with make's output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
LITERT = sorted(ROOT.glob(".venv/lib/python3*/site-packages/ai_edge_litert/libLiteRt.so"))


def _make(target: str, timeout: int = 1200) -> str:
    proc = subprocess.run(["make", "-s", target], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"make {target} failed (exit {proc.returncode}):\n{output[-6000:]}"
    return output


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (android_bridge/scripts/install_tools.sh)")


def _need_native() -> None:
    _need("make", "cc", "pkg-config")
    if not LITERT:
        pytest.skip("ai-edge-litert (libLiteRt.so) is not installed in .venv")
    if not (CORPUS / "photos").is_dir():
        pytest.skip(f"shared corpus missing: {CORPUS}")


def test_android_host_parity():
    _need_native()
    _need("javac", "java")
    out = _make("android-host-test")
    assert "HostTest OK" in out
    assert "parity:" in out and "FAIL" not in out


def test_android_native_asan():
    _need_native()
    _need("gcc")
    out = _make("android-asan-test")
    assert "\nOK" in out and "FAIL" not in out


def test_arm64_bit_identical():
    _need("make", "cc", "pkg-config", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-nm", "qemu-aarch64")
    if not Path("/usr/lib/aarch64-linux-gnu/libjpeg.so").exists():
        pytest.skip("libjpeg62-turbo-dev:arm64 not installed (android_bridge/scripts/install_tools.sh)")
    out = _make("arm64-test")
    assert "tensors bit-identical" in out
