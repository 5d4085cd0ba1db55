"""edge-dct bench: the RGB baseline bundle is built on first use, or its command printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_dct import bench
from edge_dct.bundle import DEFAULT_MODEL
from edge_dct.paths import work_dir
from tests.conftest import ROOT, clothing_photos


def test_default_bundle_is_cached_in_the_work_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGE_DCT_WORK", str(tmp_path))
    assert work_dir() == tmp_path
    assert bench.default_rgb_model() == tmp_path / "bundles" / "efficientnet_lite0_rgb_int8.tflite"


def test_missing_bundle_without_converters_prints_the_command(tmp_path: Path, monkeypatch,
                                                              capsys) -> None:
    monkeypatch.setattr(bench, "can_export", lambda: False)
    missing = tmp_path / "bundles" / "rgb.tflite"
    with pytest.raises(SystemExit) as exit_:
        bench.ensure_rgb_model(missing)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "TensorFlow" in message
    command = message.splitlines()[-1].strip()
    assert command == ("python -m converters export efficientnet_lite0_rgb "
                       f"{missing} --quantize int8 --no-gpu-check")
    assert not missing.parent.exists()


def test_missing_bundle_is_exported_by_the_converters_command(tmp_path: Path, monkeypatch,
                                                               capsys) -> None:
    """The export subprocess (here a stand-in script) writes a temporary file, renamed once
    complete; its failure is reported with its last lines and leaves nothing behind."""
    monkeypatch.setattr(bench, "can_export", lambda: True)
    calls = []

    def fake_command(out: Path) -> list[str]:
        calls.append(out)
        return [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(b'TFL3')",
                str(out)]

    monkeypatch.setattr(bench, "export_command", fake_command)
    target = tmp_path / "bundles" / "rgb.tflite"
    assert bench.ensure_rgb_model(target) == target and target.read_bytes() == b"TFL3"
    assert calls[0] != target and calls[0].parent == target.parent
    assert "exporting the RGB baseline bundle" in capsys.readouterr().err
    assert bench.ensure_rgb_model(target) == target and len(calls) == 1  # cached: no export

    monkeypatch.setattr(bench, "export_command", lambda out: [
        sys.executable, "-c", "import sys; sys.exit('no weights here')", str(out)])
    other = tmp_path / "bundles" / "other.tflite"
    with pytest.raises(SystemExit, match="no weights here"):
        bench.ensure_rgb_model(other)
    assert sorted(p.name for p in other.parent.iterdir()) == ["rgb.tflite"]


@pytest.mark.skipif(not bench.can_export(), reason="converters needs TensorFlow and Keras")
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no embedded model")
def test_real_export_then_bench(tmp_path: Path, capsys) -> None:
    """The real converters command makes a bundle the benchmark runs (about a minute)."""
    rgb = bench.ensure_rgb_model(tmp_path / "bundles" / "efficientnet_lite0_rgb_int8.tflite")
    assert rgb.is_file() and "exporting" in capsys.readouterr().err
    assert not list(rgb.parent.glob("*.partial*"))
    env = {k: v for k, v in os.environ.items() if k != "EDGE_DCT_VERBOSE"}
    run = subprocess.run([sys.executable, "-m", "edge_dct", "bench", str(clothing_photos()[0]),
                          "--repeat", "1", "--rgb-model", str(rgb)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "speed-up" in run.stdout and "INFO:" not in run.stderr
