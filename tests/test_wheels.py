"""The binary wheel: built by scripts/wheels/build.sh for this machine's Python, then installed
into a fresh venv and checked against the source build by scripts/wheels/test_x86_64.sh (no
system libjpeg linked, the 40 clothing photos classified, top-5/scores/read_dct/prepare
identical to the source build).  aarch64 runs under qemu in `make aarch64-wheel-test`."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"

pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64" or shutil.which("nasm") is None or shutil.which("cmake") is None,
    reason="the wheel build runs on x86_64 hosts with nasm and cmake (scripts/setup.sh --test)")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    env = dict(os.environ, ARCHS="x86_64", PYVERS=PY, OUT=str(out))
    subprocess.run(["bash", str(ROOT / "scripts/wheels/build.sh")], check=True, env=env,
                   timeout=1200)
    (whl,) = out.glob(f"edge_dct-*-{TAG}-{TAG}-manylinux_2_28_x86_64.whl")
    return whl


def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert f"edge_dct/_jpeg.cpython-{TAG[2:]}-x86_64-linux-gnu.so" in names
    assert "edge_dct/models/default.tflite" in names
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL"))
    for lic in ("LICENSE", "NOTICE", "libjpeg-turbo/LICENSE.md", "libjpeg-turbo/README.ijg"):
        assert f"{info}/licenses/{lic}" in names
    wheel_file = zipfile.ZipFile(wheel).read(f"{info}/WHEEL").decode()
    assert f"Tag: {TAG}-{TAG}-manylinux_2_28_x86_64" in wheel_file
    assert "Root-Is-Purelib: false" in wheel_file
    assert wheel.stat().st_size <= 12 * 1024 * 1024


def test_wheel_matches_source_build(wheel: Path, tmp_path: Path) -> None:
    env = dict(os.environ, WHEEL_BENCH="0", OUT=str(tmp_path), PYTHON=sys.executable)
    run = subprocess.run(["bash", str(ROOT / "scripts/wheels/test_x86_64.sh"), str(wheel)],
                         env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert "40 classified, 0 failed" in log
    assert "parity: identical" in log
