"""Fixtures for the GUI tests (run offscreen): isolated QSettings, a tiny random OS2D model, a window whose
QMessageBoxes are recorded instead of blocking, and a synthetic target image."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from app.main import configure_pyqtgraph  # noqa: E402

JOB_TIMEOUT_MS = 120_000


@pytest.fixture(autouse=True, scope="session")
def _pyqtgraph_options():
    configure_pyqtgraph()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Recent files and window state go to a temporary folder, never the user's config; so do the files
    the app saves by default (Documents/os2d-studio)."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("OS2D_STUDIO_DOCUMENTS", str(tmp_path / "documents"))
    yield


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A random-weight OS2D with a ResNet-18 trunk, saved in our format (a few seconds to build)."""
    from core.model.checkpoint import save_model
    from core.model.os2d import ModelConfig, OS2DModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny18.pt"
    save_model(OS2DModel(ModelConfig(backbone="resnet18")), path, meta={"eval_scale": 480})
    return path


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> tuple[Path, list[tuple[int, int, int, int]]]:
    """A 640x480 target with two patches pasted twice each, and the patch boxes (x0, y0, x1, y1)."""
    from app.selftest import _synthetic_scene

    return _synthetic_scene(tmp_path_factory.mktemp("scene"))


class MessageBoxes(list):
    """Records every QMessageBox shown; `answer` is the button each one returns."""

    answer = QMessageBox.StandardButton.Ok

    def texts(self) -> list[str]:
        return [m["text"] for m in self]


@pytest.fixture
def message_boxes(monkeypatch) -> MessageBoxes:
    """QMessageBox.exec is recorded and answered without blocking."""
    shown = MessageBoxes()

    def fake_exec(self):
        shown.append({"icon": self.icon(), "title": self.windowTitle(), "text": self.text(),
                      "details": self.detailedText()})
        return shown.answer

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture
def window(qtbot, message_boxes):
    from app.main_window import MainWindow
    from app.state import Session

    w = MainWindow(Session(QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "t", "t")))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.runner.shutdown(10_000)
    message_boxes.answer = QMessageBox.StandardButton.Discard  # no unsaved-changes question at teardown
    w.close()


@pytest.fixture
def wait_idle(qtbot):
    """wait_idle(window[, timeout_ms]): spin the event loop until the window's runner has no job."""

    def wait(window, timeout_ms: int = JOB_TIMEOUT_MS) -> None:
        qtbot.waitUntil(lambda: not window.runner.busy, timeout=timeout_ms)

    return wait


@pytest.fixture
def loaded(window, wait_idle, tiny_model_path):
    """The window with the tiny model loaded through the worker."""
    assert window.controller.open_model(tiny_model_path)
    wait_idle(window)
    assert window.session.model is not None
    return window


# -- the pruning workbench ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bench_model_path(tmp_path_factory) -> Path:
    """The embedded default model's weights, evaluated at a small scale (eval_scale 256): the flows a
    user runs on the default model, with jobs fast enough for a test (cost depends on size, not weights)."""
    from core.model.checkpoint import load_model, save_model
    from core.resources import default_model_path

    path = tmp_path_factory.mktemp("bench") / "bench18.pt"
    save_model(load_model(default_model_path()).model, path, meta={"eval_scale": 256})
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A tiny one-shot benchmark in the OS2D CSV format: 4 train / 2 val classes, 4 / 2 images of 320x240."""
    from core.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("data") / "tiny"
    generate(out, SynthConfig(num_train_classes=4, num_val_classes=2, num_train_images=4, num_val_images=2,
                              image_size=(320, 240), eval_scale=240, demo_video=False))
    return out


@pytest.fixture
def bench(window, wait_idle, bench_model_path, tiny_dataset, tmp_path):
    """The window with the bench model loaded, the tiny dataset chosen and quick job settings."""
    assert window.controller.open_model(bench_model_path)
    wait_idle(window)
    assert window.session.model_info is not None and window.session.model_info.units
    window.session.set_dataset(str(tiny_dataset))
    window.workbench.latency_repeats = 1
    return window


class TimerGaps:
    """A 10 ms timer on the GUI thread while jobs run in the worker: how long the event loop stalled.

    Bounds are relative to one job's own duration, never absolute milliseconds: a loaded machine stretches
    both alike, while a job run on the GUI thread shows as one gap as long as that job."""

    def __init__(self, qtbot, window, wait_idle) -> None:
        self.qtbot, self.window, self.wait_idle = qtbot, window, wait_idle
        self.gaps: list[int] = []
        self.elapsed = 0.0

    def run(self, start, jobs: int = 1, min_seconds: float = 0.5, max_rounds: int = 20) -> "TimerGaps":
        """Run `start` (which starts `jobs` jobs) until the worker is idle, again until at least
        `min_seconds` passed: a fast machine gets as many timer ticks to judge as a slow one."""
        from PySide6.QtCore import QElapsedTimer, QTimer
        import time

        import gc

        gaps, clock, timer = [], QElapsedTimer(), QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: gaps.append(clock.restart()))
        # what the earlier tests of this process left alive is not the jobs' doing: after a whole test run a
        # full garbage collection takes 200-350 ms (any thread that triggers it stalls the event loop), so
        # the objects alive now are moved out of the collector's sight for the measurement
        gc.collect()
        gc.freeze()
        clock.start()
        timer.start()
        t0 = time.monotonic()
        rounds = 0
        try:
            while rounds == 0 or (time.monotonic() - t0 < min_seconds and rounds < max_rounds):
                assert start()
                self.wait_idle(self.window)
                rounds += 1
        finally:
            self.elapsed = time.monotonic() - t0
            timer.stop()
            gc.unfreeze()
        self.gaps, self.jobs = gaps[1:], jobs * rounds
        return self

    def assert_responsive(self, what: str) -> None:
        per_job_ms = self.elapsed * 1000 / self.jobs
        worst = max(self.gaps) if self.gaps else 0
        print(f"{what}: {self.elapsed:.2f} s, {self.jobs} jobs, {len(self.gaps)} ticks, worst gap {worst} ms")
        assert len(self.gaps) >= 10, f"{what}: only {len(self.gaps)} timer ticks in {self.elapsed:.1f} s"
        # a job run on the GUI thread stalls it for about the job's whole duration; showing a result (a
        # ResNet-50's layer table after a 0.1 s prune) legitimately takes a few tens of milliseconds
        assert worst < per_job_ms / 2, f"{what}: worst timer gap {worst} ms, a job takes {per_job_ms:.0f} ms"


@pytest.fixture
def timer_gaps(qtbot, wait_idle):
    return lambda window: TimerGaps(qtbot, window, wait_idle)
