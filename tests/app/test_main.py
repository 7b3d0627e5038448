"""The entry point: --self-test with a given model, its failure report, --screenshot, and the PySide6 workaround."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from app.main import main
from app.selftest import SELF_TEST_STEPS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_self_test_passes_with_a_given_model(tiny_model_path, capsys):
    assert main([str(tiny_model_path), "--self-test"]) == 0
    out = capsys.readouterr().out
    for name, _ in SELF_TEST_STEPS:
        assert f"[ok]   {name}" in out
    assert "detections after NMS" in out
    assert "combined on 3 calibration images" in out  # importance, then pruning by it
    assert "30 % by combined" in out
    assert "original" in out and "pruned" in out and "side-by-side" in out
    summary = out.split("summary:\n", 1)[1]
    for topic in ("model", "importance", "pruning", "detection", "video"):
        assert f"  {topic} " in summary
    assert f"self-test passed ({len(SELF_TEST_STEPS)} steps)" in out


@pytest.mark.slow
def test_self_test_without_bundled_samples(tiny_model_path, tmp_path, monkeypatch, capsys):
    """Calibration images, detection target and video frames then come from the synthetic scene."""
    monkeypatch.setenv("OS2D_STUDIO_RESOURCES", str(tmp_path / "no-resources"))
    assert main([str(tiny_model_path), "--self-test"]) == 0
    out = capsys.readouterr().out
    assert "combined on 3 calibration images (synthetic scene" in out
    assert "synthetic scene (no bundled samples): original" in out
    assert "frames: 4 frames at 384" in out
    assert f"self-test passed ({len(SELF_TEST_STEPS)} steps)" in out


def test_self_test_names_the_failing_step(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    assert main([str(bad), "--self-test"]) == 1
    out = capsys.readouterr().out
    assert "[ok]   start window" in out
    assert "self-test FAILED at step 'load model'" in out
    assert "not a PyTorch checkpoint" in out


def test_self_test_without_a_model_file(tmp_path, capsys):
    assert main([str(tmp_path / "missing.pt"), "--self-test"]) == 1
    assert "FAILED at step 'load model'" in capsys.readouterr().out


def test_screenshot(tiny_model_path, tmp_path):
    out = tmp_path / "shot.png"
    assert main([str(tiny_model_path), "--screenshot", str(out), "--tab", "detection"]) == 0
    img = QImage(str(out))
    assert img.width() >= 800 and img.height() >= 600


def test_python_m_app_help():
    r = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and "--self-test" in r.stdout and "--screenshot" in r.stdout


def test_many_qt_calls_do_not_abort_the_interpreter():
    """PySide6 6.12.0 on CPython 3.11 drops a reference to None/True per call; `import app` pins them."""
    code = ("import app\n"
            "from PySide6.QtCore import QObject, Signal\n"
            "class O(QObject):\n    s = Signal(int)\n"
            "o = O()\n"
            "for i in range(300_000):\n    o.s.emit(i)\n    o.setObjectName('x')\n"
            "print('alive')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0 and "alive" in r.stdout, r.stderr[-500:]
